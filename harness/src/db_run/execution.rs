//! The database execution: one run of a real database behind the
//! [`Execution`](crate::execution::Execution) seam.
//!
//! 1. setup: the nodes start ([`Database::start_nodes`]), a
//!    [`LinkProxy`] opens for every directed replication link, and
//!    replication is set up through the proxies ([`Database::replicate`]);
//! 2. the faulty phase: one SQL client per logical client, bound to a node
//!    (`k mod nodes`), runs the live runner's generator's transactions one
//!    at a time; the fault schedule runs alongside ([`super::faults`]);
//! 3. the final phase: heal everything, then final reads on every node
//!    until they agree ([`super::final_reads`]);
//! 4. on every exit path (error, SIGINT/SIGTERM, success): the servers'
//!    logs are copied into `nodes/<id>.log` and the cluster is torn down.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ladon_adapters::db::postgres::Postgres;
use ladon_adapters::db::proxy::LinkProxy;
use ladon_adapters::db::{ClusterSpec, Database, DbClient, TxnOutcome};
use ladon_adapters::process::Workload;
use ladon_checker::history::{EventType, F_FINAL, F_TXN};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;

use super::faults::{self, FaultCtx, Links, SharedDb};
use super::final_reads::{self, FinalCtx};
use super::DbSpec;
use crate::adapters::Mode;
use crate::live::final_phase::FinalReads;
use crate::live::generator::Generator;
use crate::live::recorder::Recorder;
use crate::nemesis::FaultKind;
use crate::options::AdapterKind;
use crate::runner::RunOutcome;

/// The cluster of `spec`'s system, not started yet.
pub fn build(spec: &DbSpec) -> anyhow::Result<Box<dyn Database>> {
    let cluster = ClusterSpec {
        nodes: spec.nodes,
        topology: spec.topology,
        dir: std::env::temp_dir(),
    };
    let mut db: Box<dyn Database> = match spec.adapter {
        AdapterKind::PostgresPglogical => Box::new(Postgres::new(cluster)?),
        other => anyhow::bail!("internal: --adapter {other} is not a database"),
    };
    if spec.nemesis.0.contains(&FaultKind::Clock) {
        let lib = spec.faketime_library.clone().unwrap_or_else(|| {
            std::path::PathBuf::from(ladon_adapters::process::clock::LIBFAKETIME)
        });
        db.enable_clock_faults(&lib)?;
    }
    Ok(db)
}

/// What a finished (not interrupted) run adds to its report and summary.
#[derive(Debug, Clone, Default)]
struct Figures {
    setup: Duration,
    finals: Option<FinalReads>,
    /// Completion minus invoke of every `ok` client transaction.
    latencies_ns: Vec<u64>,
    faulty_phase: Duration,
}

/// A live run of a real database.
pub struct DatabaseExecution {
    pub spec: DbSpec,
    db: SharedDb,
    figures: Figures,
}

impl DatabaseExecution {
    pub fn new(spec: DbSpec, db: Box<dyn Database>) -> DatabaseExecution {
        DatabaseExecution {
            spec,
            db: Arc::new(Mutex::new(db)),
            figures: Figures::default(),
        }
    }

    fn interrupted(run_dir: &Path, started: Instant, signal: &str) -> RunOutcome {
        let history = std::fs::read(run_dir.join("history.jsonl")).unwrap_or_default();
        RunOutcome {
            events: history.iter().filter(|&&c| c == b'\n').count() as u64,
            end_ns: started.elapsed().as_nanos() as u64,
            interrupted: Some(signal.to_string()),
            ..RunOutcome::default()
        }
    }

    fn run(
        &mut self,
        rt: &tokio::runtime::Runtime,
        run_dir: &Path,
        progress: Option<&mut dyn FnMut(u64, u64)>,
    ) -> anyhow::Result<RunOutcome> {
        let started = Instant::now();
        // An empty history from the start: an interrupted setup still
        // leaves a well-formed (empty) run.
        let history = run_dir.join("history.jsonl");
        std::fs::File::create(&history)
            .with_context(|| format!("creating {}", history.display()))?;
        let name = self.spec.adapter;
        let n = self.spec.nodes;
        {
            let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
            db.start_nodes()
                .with_context(|| format!("--adapter {name}: starting the nodes"))?;
        }
        if let Some(signal) = crate::interrupt::requested() {
            return Ok(Self::interrupted(run_dir, started, signal));
        }
        let addrs: Vec<_> = {
            let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
            (0..n).map(|i| db.addr(i)).collect()
        };
        let latency = Duration::from_nanos(self.spec.latency_ns);
        let proxies = rt.block_on(async {
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
        });
        let links = Arc::new(Links {
            proxies: proxies.context("starting the link proxies on loopback")?,
            mode: self.spec.partition_mode,
        });
        {
            let via: std::collections::BTreeMap<(usize, usize), std::net::SocketAddr> =
                links.proxies.iter().map(|(k, p)| (*k, p.addr())).collect();
            let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
            db.replicate(&|from, to| via[&(from, to)])
                .with_context(|| format!("--adapter {name}: setting up replication"))?;
        }
        self.figures.setup = started.elapsed();
        eprintln!(
            "ladon: {n} nodes up and replicating in {:.1} s",
            self.figures.setup.as_secs_f64()
        );
        if let Some(signal) = crate::interrupt::requested() {
            return Ok(Self::interrupted(run_dir, started, signal));
        }
        let recorder = Recorder::create(&history, Instant::now())
            .with_context(|| format!("creating {}", history.display()))?;
        let total = self.spec.time_limit.ns();
        let phase_start = Instant::now();
        let mut progress = progress;
        let ended = rt.block_on(async {
            let run = drive(&self.spec, &self.db, &links, &recorder);
            tokio::pin!(run);
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    r = &mut run => return Ok(r),
                    signal = crate::interrupt::wait() => return Err(signal),
                    _ = tick.tick() => {
                        if let Some(p) = progress.as_mut() {
                            p(phase_start.elapsed().as_nanos() as u64, total);
                        }
                    }
                }
            }
        });
        drop(links);
        let finals = match ended {
            Ok(finals) => finals,
            Err(signal) => return Ok(Self::interrupted(run_dir, started, signal)),
        };
        if let Some(e) = recorder.write_error() {
            anyhow::bail!("{e} ({})", history.display());
        }
        let events = recorder.events();
        let completed_ops = events
            .iter()
            .filter(|e| e.kind != EventType::Invoke && (e.f == F_TXN || e.f == F_FINAL))
            .count() as u64;
        let writes = events
            .iter()
            .filter(|e| e.kind == EventType::Invoke && e.f == F_TXN)
            .map(|e| e.value.ops().iter().filter(|m| m.is_write()).count() as u64)
            .sum();
        let mut invoked = std::collections::HashMap::new();
        for e in events.iter().filter(|e| e.f == F_TXN) {
            match e.kind {
                EventType::Invoke => {
                    invoked.insert(e.process.clone(), e.time);
                }
                EventType::Ok => {
                    if let Some(t) = invoked.remove(&e.process) {
                        self.figures.latencies_ns.push(e.time.saturating_sub(t));
                    }
                }
                _ => {
                    invoked.remove(&e.process);
                }
            }
        }
        self.figures.faulty_phase = Duration::from_nanos(self.spec.time_limit.ns());
        let outcome = RunOutcome {
            events: events.len() as u64,
            completed_ops,
            writes,
            heal_ns: finals.started_ns,
            converged_ns: finals.converged_ns,
            end_ns: events.last().map_or(0, |e| e.time),
            ..RunOutcome::default()
        };
        self.figures.finals = Some(finals);
        Ok(outcome)
    }
}

/// The faulty phase, then the final phase; the final reads.
async fn drive(
    spec: &DbSpec,
    db: &SharedDb,
    links: &Arc<Links>,
    recorder: &Recorder,
) -> FinalReads {
    let names: Vec<String> = (1..=spec.nodes).map(|i| format!("n{i}")).collect();
    let fresh = Arc::new(AtomicU64::new(spec.concurrency as u64));
    let stop = Arc::new(AtomicBool::new(false));
    let generator = Arc::new(Mutex::new(
        Generator::new(
            spec.workload,
            ChaCha8Rng::seed_from_u64(spec.seed),
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
        let node = k % names.len();
        clients.push(tokio::spawn(client_loop(ClientCtx {
            index: k,
            workload: spec.workload,
            node: (node, names[node].clone()),
            db: db.clone(),
            generator: generator.clone(),
            recorder: recorder.clone(),
            timeout,
            think,
            stop: stop.clone(),
            fresh: fresh.clone(),
        })));
    }
    let fctx = FaultCtx {
        names: names.clone(),
        db: db.clone(),
        links: links.clone(),
        recorder: recorder.clone(),
        kinds: spec.nemesis.0.clone(),
        interval: Duration::from_nanos(spec.nemesis_interval.ns()),
        shapes: spec.shapes.clone(),
        clock_skew_ns: spec.clock_skew.ns(),
        paused: Arc::new(Mutex::new(vec![false; spec.nodes])),
    };
    let (stop_faults, stop_rx) = watch::channel(false);
    let nemesis = tokio::spawn(faults::run(fctx.clone(), spec.seed, stop_rx));
    tokio::time::sleep(Duration::from_nanos(spec.time_limit.ns())).await;
    let _ = stop_faults.send(true);
    let _ = nemesis.await;
    stop.store(true, Ordering::SeqCst);
    for h in clients {
        let _ = h.await;
    }
    faults::heal_all(&fctx, spec.nemesis.0.contains(&FaultKind::Clock));
    let keys = generator
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .written_keys();
    final_reads::final_reads(&FinalCtx {
        workload: spec.workload,
        names,
        db: db.clone(),
        recorder: recorder.clone(),
        keys,
        timeout,
        converge_timeout: Duration::from_nanos(spec.converge_timeout.ns()),
        fresh,
    })
    .await
}

struct ClientCtx {
    index: usize,
    workload: Workload,
    node: (usize, String),
    db: SharedDb,
    generator: Arc<Mutex<Generator>>,
    recorder: Recorder,
    timeout: Duration,
    think: Duration,
    stop: Arc<AtomicBool>,
    fresh: Arc<AtomicU64>,
}

/// One logical client: connects to its node (again after any error),
/// runs one transaction at a time, records invoke and completion; after
/// `info` it continues under a fresh process id.
async fn client_loop(ctx: ClientCtx) {
    let mut process = ctx.index as u64;
    let mut conn: Option<Box<dyn DbClient>> = None;
    let node = ctx.node.1.as_str();
    let rec = &ctx.recorder;
    while !ctx.stop.load(Ordering::SeqCst) {
        let client = match conn.as_mut() {
            Some(c) => c,
            None => match final_reads::connect(&ctx.db, ctx.node.0, ctx.timeout).await {
                Ok(c) => conn.insert(c),
                // Nothing was sent: no operation to record. The node is
                // down, paused or cut off; try again shortly.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
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
        match client.txn(ctx.workload.kind(), &ops).await {
            TxnOutcome::Ok(done) => {
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
        if !ctx.think.is_zero() {
            tokio::time::sleep(ctx.think).await;
        }
    }
}

impl crate::execution::Execution for DatabaseExecution {
    fn mode(&self) -> Mode {
        Mode::Live
    }

    fn execute(
        &mut self,
        run_dir: &Path,
        progress: Option<&mut dyn FnMut(u64, u64)>,
    ) -> anyhow::Result<RunOutcome> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let result = self.run(&rt, run_dir, progress);
        // Clients and proxies stop with the runtime; then the servers.
        rt.shutdown_timeout(Duration::from_secs(1));
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let nodes_dir = run_dir.join("nodes");
        let logs = db.collect_logs(&nodes_dir);
        let down = db.teardown();
        let outcome = result?;
        logs.with_context(|| format!("copying the servers' logs into {}", nodes_dir.display()))?;
        down.context("tearing the cluster down")?;
        Ok(outcome)
    }

    fn annotate(&self, report: &mut ladon_checker::report::Report) {
        if let Some(finals) = &self.figures.finals {
            crate::live::process_run::annotate_window(report, finals);
        }
    }

    fn notes(&self) -> Vec<String> {
        let f = &self.figures;
        let mut out = vec![format!(
            "setup: {} nodes up and replicating in {:.1} s; partitions through a TCP proxy per directed link",
            self.spec.nodes,
            f.setup.as_secs_f64()
        )];
        if !f.latencies_ns.is_empty() {
            let mut l = f.latencies_ns.clone();
            l.sort_unstable();
            let ms = |ns: u64| ns as f64 / 1e6;
            out.push(format!(
                "clients: {} ok transactions, {:.1}/s over the {:.0} s faulty phase; latency median {:.2} ms, p99 {:.2} ms",
                l.len(),
                l.len() as f64 / f.faulty_phase.as_secs_f64().max(1e-9),
                f.faulty_phase.as_secs_f64(),
                ms(l[l.len() / 2]),
                ms(l[(l.len() * 99 / 100).min(l.len() - 1)])
            ));
        }
        if let Some(fin) = &f.finals {
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
        out
    }
}
