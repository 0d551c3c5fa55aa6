//! The database execution: one run of a real database behind the
//! [`Execution`](crate::execution::Execution) seam.
//!
//! 1. setup: the nodes start ([`Database::start_nodes`]), a
//!    [`LinkProxy`] opens for every directed replication link, and
//!    replication is set up through the proxies ([`Database::replicate`]);
//! 2. the faulty phase: one SQL client per logical client, bound to a node
//!    (`k mod nodes`), runs the shared generator's transactions
//!    (`ladon_workloads::rpc`) one at a time; the shared schedule
//!    (`crate::faults::play`) runs alongside on the servers and proxies
//!    ([`super::faults::DbTarget`]);
//! 3. the final phase: the shared heal (`crate::faults::heal_all`), then
//!    final reads on every node until they agree ([`super::final_reads`],
//!    the shared `crate::final_phase::FinalRounds`);
//! 4. on every exit path (error, SIGINT/SIGTERM, success): the servers'
//!    logs are appended to `nodes/<id>.log` and the cluster is torn down.
//!
//! Everything is recorded through the shared live recorder into the run's
//! listeners (`crate::events`): the history, the node logs, the progress.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ladon_adapters::db::netns::Network;
use ladon_adapters::db::proxy::LinkProxy;
use ladon_adapters::db::{ClusterSpec, Database, DbClient, TxnOutcome};
use ladon_adapters::process::Workload;
use ladon_checker::history::{EventType, F_TXN};
use ladon_workloads::rpc::RpcGenerator;
use tokio::sync::watch;

use super::faults::{DbTarget, Links, SharedDb};
use super::final_reads::{self, FinalCtx};
use super::spec::DbSpec;
use crate::adapters::Mode;
use crate::events::{EventBus, Listeners, RunEvent};
use crate::final_phase::FinalReads;
use crate::live::recorder::Recorder;
use crate::nemesis::NemesisConfig;
use crate::options::{AdapterKind, NetworkMode};
use crate::runner::RunOutcome;

/// A cluster not started yet, its network namespaces (`--network
/// netns`) and its hosts (`--hosts`).
pub type Built = (
    Box<dyn Database>,
    Option<Arc<Network>>,
    Option<Arc<crate::hosts::PreparedDb>>,
);

/// The cluster of `spec`'s system, not started yet, and with
/// `--network netns` its network (made now: the servers start inside it).
pub fn build(spec: &DbSpec) -> anyhow::Result<Built> {
    // Networks of killed runs go whichever mode this run uses.
    if ladon_adapters::db::netns::unavailable().is_none() {
        let swept = ladon_adapters::db::netns::sweep()
            .context("removing the network namespaces of killed runs")?;
        if !swept.is_empty() {
            tracing::warn!(
                "removed {} network namespace(s) left behind by a killed run",
                swept.len()
            );
        }
    }
    let network = match spec.network {
        _ if spec.hosts.is_some() => None,
        NetworkMode::Netns => Some(Arc::new(
            Network::create(spec.nodes).context("--network netns: creating the namespaces")?,
        )),
        _ => None,
    };
    let cluster = ClusterSpec {
        nodes: spec.nodes,
        topology: spec.topology,
        dir: std::env::temp_dir(),
        network: network.clone(),
    };
    let lib = spec.clock_faults().then(|| {
        spec.faketime_library.clone().unwrap_or_else(|| {
            std::path::PathBuf::from(ladon_adapters::process::clock::LIBFAKETIME)
        })
    });
    let hosts = match &spec.hosts {
        None => None,
        Some(file) => Some(Arc::new(prepare_hosts(spec, file, lib.clone())?)),
    };
    let mut db: Box<dyn Database> = match spec.adapter {
        #[cfg(feature = "postgres")]
        AdapterKind::PostgresPglogical if hosts.is_some() => {
            let h = hosts.as_ref().expect("hosts");
            Box::new(ladon_adapters::db::postgres::Postgres::on_hosts(
                cluster,
                h.nodes.clone(),
                &h.bin,
            )?)
        }
        #[cfg(feature = "postgres")]
        AdapterKind::PostgresPglogical => {
            Box::new(ladon_adapters::db::postgres::Postgres::new(cluster)?)
        }
        #[cfg(feature = "couchdb")]
        AdapterKind::CouchDb => {
            use ladon_adapters::db::couch::{Couch, Replication};
            let mut couch = Couch::new(cluster)?;
            couch.replication = match spec.flags.couch_replication {
                crate::options::CouchReplication::Rounds => Replication::Rounds,
                crate::options::CouchReplication::Continuous => Replication::Continuous,
            };
            Box::new(couch)
        }
        #[cfg(feature = "mariadb")]
        AdapterKind::MariaDb => {
            use ladon_adapters::db::mariadb::{MariaDb, MariaDbOptions, SlaveExecMode};
            let options = MariaDbOptions {
                slave_exec_mode: match spec.flags.slave_exec_mode {
                    crate::options::SlaveExecMode::Strict => SlaveExecMode::Strict,
                    crate::options::SlaveExecMode::Idempotent => SlaveExecMode::Idempotent,
                },
                log_slave_updates: spec.flags.log_slave_updates,
            };
            Box::new(MariaDb::new(cluster, options)?)
        }
        other => anyhow::bail!("--adapter {other}: {}", super::spec::needs_feature(other)),
    };
    if let Some(lib) = &lib {
        db.enable_clock_faults(lib)?;
    }
    Ok((db, network, hosts))
}

/// Connects to and checks `--hosts`' hosts for a database run (one line
/// naming the host and what is missing on failure).
fn prepare_hosts(
    spec: &DbSpec,
    file: &crate::hosts::HostsFile,
    faketime: Option<std::path::PathBuf>,
) -> anyhow::Result<crate::hosts::PreparedDb> {
    let names = crate::live::node_names(spec.nodes);
    let needs = crate::hosts::DbNeeds {
        server_user: "postgres",
        faketime,
        nftables: spec.partitions(),
    };
    let prepared = crate::hosts::prepare_db(file, &names, &needs).map_err(anyhow::Error::msg)?;
    if spec.partitions() {
        // A partition is cut by address: nodes that share one cannot be
        // cut from each other.
        let n = &prepared.nodes;
        for i in 0..n.len() {
            if let Some(j) = (0..i).find(|&j| n[j].addr == n[i].addr) {
                anyhow::bail!(
                    "--hosts {}: {} and {} both run at {}, so a partition cannot cut them apart \
                     (partitions are nftables rules on the hosts' addresses): give each node a \
                     host of its own, or run without partitions",
                    file.path.display(),
                    names[j],
                    names[i],
                    n[i].addr
                );
            }
        }
    }
    Ok(prepared)
}

/// A failed run keeps its nodes' data directories in `RUN_DIR/data/<node>`
/// (the nodes are killed first, so each is as a crash left it; the
/// teardown then removes the originals). Best effort: what cannot be
/// copied is said on stderr.
fn keep_data(db: &mut dyn Database, run_dir: &Path) {
    let mut dirs = Vec::new();
    for (i, name) in db.nodes().into_iter().enumerate() {
        if let Some(dir) = db.data_dir(i).filter(|d| d.exists()) {
            let _ = db.kill(i);
            dirs.push((name, dir));
        }
    }
    for (name, kept) in copy_data(&dirs, run_dir) {
        match kept {
            Ok(to) => eprintln!(
                "ladon: the run failed; {name}'s data is kept in {}",
                to.display()
            ),
            Err(e) => eprintln!("ladon: the run failed; could not keep {name}'s data: {e}"),
        }
    }
}

/// Copies each `(node, dir)` to `run_dir/data/<node>` (`cp -a`: owners and
/// modes kept); where each went, or why not.
fn copy_data(
    dirs: &[(String, std::path::PathBuf)],
    run_dir: &Path,
) -> Vec<(String, Result<std::path::PathBuf, String>)> {
    dirs.iter()
        .map(|(name, dir)| {
            let to = run_dir.join("data").join(name);
            let copied = std::fs::create_dir_all(run_dir.join("data"))
                .map_err(|e| format!("create {}: {e}", run_dir.join("data").display()))
                .and_then(|()| {
                    let out = std::process::Command::new("cp")
                        .arg("-a")
                        .arg(dir)
                        .arg(&to)
                        .output()
                        .map_err(|e| format!("run cp: {e}"))?;
                    if out.status.success() {
                        Ok(to.clone())
                    } else {
                        Err(format!(
                            "cp -a {} {}: {}",
                            dir.display(),
                            to.display(),
                            String::from_utf8_lossy(&out.stderr).trim()
                        ))
                    }
                });
            (name.clone(), copied)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_runs_data_directories_are_copied_into_the_run_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let n1 = tmp.path().join("cluster/n1");
        std::fs::create_dir_all(n1.join("base")).unwrap();
        std::fs::write(n1.join("base/PG_VERSION"), "15\n").unwrap();
        let run = tmp.path().join("run");
        let missing = tmp.path().join("cluster/n2");
        let out = copy_data(
            &[("n1".into(), n1.clone()), ("n2".into(), missing.clone())],
            &run,
        );
        assert_eq!(out[0], ("n1".to_string(), Ok(run.join("data/n1"))));
        assert_eq!(
            std::fs::read_to_string(run.join("data/n1/base/PG_VERSION")).unwrap(),
            "15\n"
        );
        let (name, err) = &out[1];
        assert_eq!(name, "n2");
        let err = err.clone().unwrap_err();
        assert!(
            err.starts_with(&format!("cp -a {}", missing.display())),
            "{err}"
        );
    }
}

/// How partitions are made in this run, in a line.
pub fn network_line(spec: &DbSpec) -> String {
    if let Some(h) = &spec.hosts {
        return format!(
            "nodes on the hosts of {} over SSH; partitions: nftables rules on the hosts (--hosts)",
            h.path.display()
        );
    }
    match spec.network {
        NetworkMode::Netns => {
            "partitions: nftables rules in a network namespace per node (--network netns)".into()
        }
        _ => format!(
            "partitions: a TCP proxy per directed replication link on loopback, {} on a cut \
             (--network proxy{})",
            match spec.partition_mode {
                crate::net::PartitionMode::Drop => "connections dropped",
                crate::net::PartitionMode::Hold => "traffic held",
            },
            if spec.network_why.is_empty() {
                String::new()
            } else {
                format!("; auto: {}", spec.network_why)
            }
        ),
    }
}

/// What a finished (not interrupted) run adds to its report and summary.
#[derive(Debug, Clone, Default)]
struct Figures {
    setup: Duration,
    finals: Option<FinalReads>,
    /// What the clients measured.
    times: ClientTimes,
    faulty_phase: Duration,
    /// Replication that had stopped by the end of the final phase, with
    /// the servers' errors ([`Database::replication_problems`]).
    replication_problems: Vec<String>,
    /// Servers that exited by themselves during the run
    /// ([`Database::exited_by_themselves`]).
    server_exits: Vec<String>,
}

/// Servers found exited by themselves, as the run goes.
type Exits = Arc<Mutex<Vec<String>>>;

/// Asks `db` which servers exited by themselves since the last call;
/// records and logs each.
fn poll_exits(db: &SharedDb, exits: &Exits) {
    let found = db
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .exited_by_themselves();
    for line in &found {
        tracing::warn!("{line}");
    }
    exits
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(found);
}

/// A live run of a real database.
pub struct DatabaseExecution {
    pub spec: DbSpec,
    db: SharedDb,
    /// With `--network netns`; dropped (namespaces deleted) after the
    /// servers are torn down.
    network: Option<Arc<Network>>,
    /// With `--hosts`; dropped (partitions healed, connections closed)
    /// after the servers are torn down.
    hosts: Option<Arc<crate::hosts::PreparedDb>>,
    figures: Figures,
}

/// How the faulty and final phases ended.
enum Ended {
    Done(FinalReads),
    Interrupted(&'static str),
}

impl DatabaseExecution {
    pub fn new(
        spec: DbSpec,
        db: Box<dyn Database>,
        network: Option<Arc<Network>>,
        hosts: Option<Arc<crate::hosts::PreparedDb>>,
    ) -> DatabaseExecution {
        DatabaseExecution {
            spec,
            db: Arc::new(Mutex::new(db)),
            network,
            hosts,
            figures: Figures::default(),
        }
    }

    fn names(&self) -> Vec<String> {
        crate::live::node_names(self.spec.nodes)
    }

    /// Setup: nodes, link proxies, replication through them. `None` when
    /// interrupted on the way.
    fn setup(&mut self, rt: &tokio::runtime::Runtime) -> anyhow::Result<Option<Arc<Links>>> {
        let started = Instant::now();
        let name = self.spec.adapter;
        let n = self.spec.nodes;
        {
            let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
            db.start_nodes()
                .with_context(|| format!("--adapter {name}: starting the nodes"))?;
        }
        if crate::interrupt::requested().is_some() {
            return Ok(None);
        }
        let addrs: Vec<_> = {
            let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
            (0..n).map(|i| db.addr(i)).collect()
        };
        let latency = Duration::from_nanos(self.spec.latency_ns);
        // In namespaces the nodes reach each other directly (cuts are
        // rules there); on loopback through a proxy per directed link.
        let direct = self.network.is_some() || self.hosts.is_some();
        let proxies = match direct {
            true => Ok(std::collections::BTreeMap::new()),
            false => rt.block_on(async {
                let mut proxies = std::collections::BTreeMap::new();
                for to in 0..n {
                    for from in (0..n).filter(|&f| f != to) {
                        let p = LinkProxy::start(addrs[from]).await?;
                        if !latency.is_zero() {
                            p.set(ladon_adapters::db::proxy::LinkState { cut: None, latency });
                        }
                        proxies.insert((from, to), p);
                    }
                }
                std::io::Result::Ok(proxies)
            }),
        };
        let links = Arc::new(Links {
            proxies: proxies.context("starting the link proxies on loopback")?,
            network: self.network.clone(),
            hosts: self.hosts.clone(),
            mode: self.spec.partition_mode,
        });
        {
            let via: std::collections::BTreeMap<(usize, usize), std::net::SocketAddr> =
                links.proxies.iter().map(|(k, p)| (*k, p.addr())).collect();
            let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
            db.replicate(&|from, to| via.get(&(from, to)).copied().unwrap_or(addrs[from]))
                .with_context(|| format!("--adapter {name}: setting up replication"))?;
        }
        self.figures.setup = started.elapsed();
        eprintln!(
            "ladon: {n} nodes up and replicating in {:.1} s",
            self.figures.setup.as_secs_f64()
        );
        if crate::interrupt::requested().is_some() {
            return Ok(None);
        }
        Ok(Some(links))
    }

    fn run(&mut self, rt: &tokio::runtime::Runtime, bus: &EventBus) -> anyhow::Result<RunOutcome> {
        let names = self.names();
        bus.emit(&RunEvent::Start {
            nodes: &names,
            messages: false,
        })
        .context("cannot create the node logs")?;
        let setup_started = Instant::now();
        let links = self.setup(rt)?;
        // Time 0 of the history is the end of setup (the first operation).
        let rec = Recorder::new(bus.clone(), names.clone(), Instant::now());
        let Some(links) = links else {
            let signal = crate::interrupt::requested().unwrap_or("SIGINT");
            return Ok(RunOutcome {
                end_ns: setup_started.elapsed().as_nanos() as u64,
                interrupted: Some(signal.to_string()),
                ..RunOutcome::default()
            });
        };
        let total = self.spec.time_limit.ns();
        let times = Arc::new(Mutex::new(ClientTimes::default()));
        let exits = Exits::default();
        let ended = rt.block_on(async {
            let run = drive(&self.spec, &names, &self.db, &links, &rec, &times, &exits);
            tokio::pin!(run);
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    r = &mut run => return r.map(Ended::Done),
                    signal = crate::interrupt::wait() => return Ok(Ended::Interrupted(signal)),
                    _ = tick.tick() => {
                        rec.progress(total);
                        poll_exits(&self.db, &exits);
                    }
                }
            }
        });
        // Replication's state at the end of the final phase, read while the
        // link proxies still forward (without them every connection would
        // be reconnecting) and the servers still run.
        let problems = match &ended {
            Ok(Ended::Done(_)) => self
                .db
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .replication_problems(),
            _ => Vec::new(),
        };
        drop(links);
        let tally = rec.tally();
        let finals = match ended? {
            Ended::Done(finals) => finals,
            Ended::Interrupted(signal) => return Ok(rec.interrupted_outcome(signal)),
        };
        if let Some(e) = rec.write_error() {
            anyhow::bail!("{e}");
        }
        self.figures.times = std::mem::take(&mut *times.lock().unwrap_or_else(|p| p.into_inner()));
        self.figures.faulty_phase = Duration::from_nanos(total);
        self.figures.finals = Some(finals.clone());
        self.figures.replication_problems = problems;
        poll_exits(&self.db, &exits);
        self.figures.server_exits =
            std::mem::take(&mut *exits.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(RunOutcome {
            events: tally.events,
            completed_ops: tally.completed_ops,
            writes: tally.writes,
            heal_ns: finals.started_ns,
            converged_ns: finals.converged_ns,
            end_ns: tally.end_ns,
            finals: Some(finals),
            ..RunOutcome::default()
        })
    }
}

/// The faulty phase, then the final phase; the final reads.
async fn drive(
    spec: &DbSpec,
    names: &[String],
    db: &SharedDb,
    links: &Arc<Links>,
    recorder: &Recorder,
    times: &Arc<Mutex<ClientTimes>>,
    exits: &Exits,
) -> anyhow::Result<FinalReads> {
    let fresh = Arc::new(AtomicU64::new(spec.concurrency as u64));
    let stop = Arc::new(AtomicBool::new(false));
    let generator = Arc::new(Mutex::new(
        RpcGenerator::new(
            spec.workload.shape(),
            spec.seed,
            spec.txn_size,
            spec.max_writes_per_key,
            spec.concurrency.max(2),
        )
        .with_delete_share(spec.delete_share),
    ));
    let think = Duration::from_secs_f64(spec.concurrency as f64 / spec.rate);
    let timeout = Duration::from_nanos(spec.op_timeout.ns());
    let mut clients = Vec::new();
    for k in 0..spec.concurrency {
        clients.push(tokio::spawn(client_loop(ClientCtx {
            index: k,
            workload: spec.workload,
            node: k % names.len(),
            db: db.clone(),
            generator: generator.clone(),
            recorder: recorder.clone(),
            timeout,
            think,
            stop: stop.clone(),
            fresh: fresh.clone(),
            times: times.clone(),
        })));
    }
    let clocks = spec.clock_faults();
    let mut target = DbTarget::new(names.to_vec(), db.clone(), links.clone(), recorder.clone());
    target.clocks = clocks;
    let config = NemesisConfig {
        kinds: spec.nemesis.0.clone(),
        interval_ns: spec.nemesis_interval.ns(),
        shapes: spec.shapes.clone(),
        clock_skew_ns: spec.clock_skew.ns(),
        loss: 0.0,
        dup: 0.0,
    };
    let (stop_faults, stop_rx) = watch::channel(false);
    let seed = spec.seed;
    let steps = spec.options.nemesis_schedule.clone();
    let nemesis = tokio::spawn(async move {
        match steps {
            Some(schedule) => {
                crate::faults::play_steps(&mut target, &schedule.steps, stop_rx).await
            }
            None => crate::faults::play(&mut target, config, seed, stop_rx).await,
        }
        target.stop_strobes();
        target
    });
    tokio::time::sleep(Duration::from_nanos(spec.time_limit.ns())).await;
    let _ = stop_faults.send(true);
    let mut target = nemesis.await.context("internal: the nemesis task failed")?;
    stop.store(true, Ordering::SeqCst);
    for h in clients {
        let _ = h.await;
    }
    // The live recorder keeps its own write errors.
    let _ = crate::faults::heal_all(&mut target).await;
    let reads = {
        let g = generator.lock().unwrap_or_else(|p| p.into_inner());
        g.final_reads(&g.written_keys())
    };
    Ok(final_reads::final_reads(&FinalCtx {
        workload: spec.workload,
        names: names.to_vec(),
        db: db.clone(),
        recorder: recorder.clone(),
        reads,
        timeout,
        converge_timeout: Duration::from_nanos(spec.converge_timeout.ns()),
        fresh,
        exits: exits.clone(),
    })
    .await)
}

struct ClientCtx {
    index: usize,
    workload: Workload,
    node: usize,
    db: SharedDb,
    generator: Arc<Mutex<RpcGenerator>>,
    recorder: Recorder,
    timeout: Duration,
    think: Duration,
    stop: Arc<AtomicBool>,
    fresh: Arc<AtomicU64>,
    times: Arc<Mutex<ClientTimes>>,
}

/// What the clients measured, in nanoseconds.
#[derive(Debug, Clone, Default)]
struct ClientTimes {
    /// The round trip of every `ok` transaction (sent to answered).
    latencies: Vec<u64>,
    /// The harness's own time around every transaction: generating it and
    /// recording its invoke and completion.
    overheads: Vec<u64>,
}

/// One logical client: connects to its node (again after any error),
/// runs one transaction at a time, records invoke and completion; after
/// `info` it continues under a fresh process id.
async fn client_loop(ctx: ClientCtx) {
    let mut process = ctx.index as u64;
    let mut conn: Option<Box<dyn DbClient>> = None;
    let node = ctx.node;
    let rec = &ctx.recorder;
    let mut times = ClientTimes::default();
    while !ctx.stop.load(Ordering::SeqCst) {
        let client = match conn.as_mut() {
            Some(c) => c,
            None => match final_reads::connect(&ctx.db, node, ctx.timeout).await {
                Ok(c) => conn.insert(c),
                // Nothing was sent: no operation to record. The node is
                // down, paused or cut off; try again shortly.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // The harness's own time per transaction: generating it and
        // recording its invoke and completion (the history, node logs and
        // progress listeners), measured around the client's round trip.
        let begun = Instant::now();
        let ops = ctx
            .generator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_op();
        rec.client(
            EventType::Invoke,
            process,
            node,
            F_TXN,
            ops.clone(),
            None,
            None,
        );
        let sent = Instant::now();
        let outcome = client.txn(ctx.workload.kind(), &ops).await;
        let answered = Instant::now();
        match outcome {
            TxnOutcome::Ok(done) => {
                times.latencies.push((answered - sent).as_nanos() as u64);
                rec.client(EventType::Ok, process, node, F_TXN, done, None, None);
            }
            TxnOutcome::Fail(why) => {
                rec.client(EventType::Fail, process, node, F_TXN, ops, Some(why), None);
                conn = None;
            }
            TxnOutcome::Info(why) => {
                rec.client(EventType::Info, process, node, F_TXN, ops, Some(why), None);
                conn = None;
                process = ctx.fresh.fetch_add(1, Ordering::SeqCst);
            }
        }
        times
            .overheads
            .push(((sent - begun) + answered.elapsed()).as_nanos() as u64);
        if !ctx.think.is_zero() {
            tokio::time::sleep(ctx.think).await;
        }
    }
    let mut all = ctx.times.lock().unwrap_or_else(|p| p.into_inner());
    all.latencies.extend(times.latencies);
    all.overheads.extend(times.overheads);
}

impl crate::execution::Execution for DatabaseExecution {
    fn mode(&self) -> Mode {
        Mode::Live
    }

    fn execute(&mut self, run_dir: &Path, events: &mut Listeners) -> anyhow::Result<RunOutcome> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        // The clients, the nemesis and the final readers share the listeners.
        let bus = EventBus::new(std::mem::take(events));
        let result = self.run(&rt, &bus);
        // Clients and proxies stop with the runtime; then the servers.
        rt.shutdown_timeout(Duration::from_secs(1));
        *events = bus.take();
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let nodes_dir = run_dir.join("nodes");
        let logs = db.collect_logs(&nodes_dir);
        if result.is_err() {
            keep_data(&mut **db, run_dir);
        }
        let down = db.teardown();
        drop(db);
        // The servers are gone: now the namespaces, bridge and rules, or
        // the hosts' rules and connections.
        if let Some(net) = &self.network {
            net.teardown();
        }
        self.hosts = None;
        let outcome = result?;
        logs.with_context(|| format!("copying the servers' logs into {}", nodes_dir.display()))?;
        down.context("tearing the cluster down")?;
        Ok(outcome)
    }

    fn annotate(&self, report: &mut ladon_checker::report::Report) {
        if let Some(finals) = &self.figures.finals {
            crate::live::process_run::annotate_window(report, finals);
        }
        let exits = &self.figures.server_exits;
        if !exits.is_empty() {
            crate::report::extras::HarnessExtra::ServerExits(exits.clone()).set(report);
        }
        let problems = &self.figures.replication_problems;
        if !problems.is_empty() {
            crate::report::extras::HarnessExtra::ReplicationProblems(problems.clone()).set(report);
            // Why the nodes disagree, on the examples that show it.
            if let Some(finding) = report
                .anomalies
                .get_mut(&ladon_checker::report::Anomaly::Divergence)
            {
                for ex in &mut finding.examples {
                    ex.explanation
                        .push_str(&format!(" ({})", problems.join("; ")));
                }
            }
        }
    }

    fn notes(&self) -> Vec<String> {
        let f = &self.figures;
        let mut out = vec![format!(
            "setup: {} nodes up and replicating in {:.1} s; {}",
            self.spec.nodes,
            f.setup.as_secs_f64(),
            network_line(&self.spec)
        )];
        if !f.times.latencies.is_empty() {
            let mut l = f.times.latencies.clone();
            l.sort_unstable();
            let ms = |ns: u64| ns as f64 / 1e6;
            let median = l[l.len() / 2];
            out.push(format!(
                "clients: {} ok transactions, {:.1}/s over the {:.0} s faulty phase; latency median {:.2} ms, p99 {:.2} ms",
                l.len(),
                l.len() as f64 / f.faulty_phase.as_secs_f64().max(1e-9),
                f.faulty_phase.as_secs_f64(),
                ms(median),
                ms(l[(l.len() * 99 / 100).min(l.len() - 1)])
            ));
            let mut o = f.times.overheads.clone();
            o.sort_unstable();
            if let Some(&om) = o.get(o.len() / 2) {
                out.push(format!(
                    "harness overhead: median {:.1} µs per transaction (generating and recording it), \
                     {:.1}% of the median client latency; p99 {:.1} µs",
                    om as f64 / 1e3,
                    100.0 * om as f64 / median.max(1) as f64,
                    o[(o.len() * 99 / 100).min(o.len() - 1)] as f64 / 1e3
                ));
            }
        }
        if let Some(fin) = &f.finals {
            if let Some((t, why)) = &fin.ended_early {
                out.push(format!(
                    "final phase: ended {:.1} s after the heal ({} rounds of final reads), \
                     before --converge-timeout {}, because the nodes cannot converge: {why}",
                    t.saturating_sub(fin.started_ns) as f64 / 1e9,
                    fin.rounds,
                    self.spec.converge_timeout
                ));
            } else {
                out.push(match fin.time_to_converge_s() {
                Some(t) => format!(
                    "final phase: nodes agreed {t:.2} s after the heal ({} rounds of final reads)",
                    fin.rounds
                ),
                None => format!(
                    "final phase: {} rounds of final reads, no agreement within --converge-timeout {}",
                    fin.rounds, self.spec.converge_timeout
                ),
            });
            }
        }
        out.extend(f.server_exits.iter().cloned());
        out.extend(f.replication_problems.iter().cloned());
        out
    }
}
