//! The live runner: real node processes speaking Maelstrom's protocol, the
//! router applying the simulator's network fault model in real time, live
//! clients, the nemesis (partitions, clock skew through libfaketime,
//! crashes, pauses, loss, duplication, clogs), and the final phase.
//!
//! ```text
//! clients ──requests──▶ router ──stdin──▶ node process (n1, n2, ...)
//!    ▲                    │ ▲                  │
//!    └──────replies───────┘ └──────stdout──────┘   (node↔node via net::Network)
//! ```

pub mod budget;
pub mod client;
pub mod final_phase;
pub mod nemesis;
pub mod nodes;
pub mod process_run;
pub mod recorder;
pub mod router;
pub mod services;
pub mod topology;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ladon_adapters::process::child::{check_executable, ChildSpec};
use ladon_adapters::process::clock::Faketime;
use ladon_adapters::process::Workload;
use ladon_checker::history::Event;
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};

use crate::events::{EventBus, Listeners, RunEvent, RunListener};
use crate::nemesis::{FaultKind, FaultList};
use crate::net::{NetConfig, Shape};
use nemesis::NemesisCtx;
use nodes::NodeSet;
use recorder::Recorder;
use router::{Control, Router, RouterConfig, RouterIn, RouterStats};
use topology::Topology;

/// Every option of a live run.
#[derive(Debug, Clone, Serialize)]
pub struct LiveOptions {
    pub bin: PathBuf,
    pub bin_args: Vec<String>,
    #[serde(serialize_with = "as_str")]
    pub workload: Workload,
    pub nodes: usize,
    pub concurrency: usize,
    /// Client operations per second, all clients together.
    pub rate: f64,
    pub time_limit: Duration,
    pub op_timeout: Duration,
    pub init_timeout: Duration,
    pub converge_timeout: Duration,
    pub seed: u64,
    pub net: NetConfig,
    pub nemesis: FaultList,
    pub nemesis_interval: Duration,
    pub partition_shapes: Vec<Shape>,
    /// Clock offsets the clock fault sets are drawn from `-bound..=bound`.
    pub max_clock_skew_ns: u64,
    /// Loss and duplication probabilities the `loss` and `dup` faults inject.
    pub fault_loss: f64,
    pub fault_duplicate: f64,
    #[serde(serialize_with = "topo")]
    pub topology: Topology,
    pub txn_size: usize,
    pub max_writes_per_key: u64,
    pub faketime_library: Option<PathBuf>,
    /// Where the run's files go (`history.jsonl`, `messages.jsonl`, `nodes/`).
    pub run_dir: PathBuf,
    /// Node `i` runs on `remote[i]`'s host (`--hosts`, connected and
    /// prepared by [`crate::hosts::prepare`]); empty: every node here.
    #[serde(skip)]
    pub remote: Vec<ladon_adapters::process::child::RemoteNode>,
}

fn as_str<S: serde::Serializer>(w: &Workload, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(w.as_str())
}
fn topo<S: serde::Serializer>(t: &Topology, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.as_str())
}

impl LiveOptions {
    /// Defaults for `bin` running `workload`, writing into `run_dir`.
    pub fn new(bin: PathBuf, workload: Workload, run_dir: PathBuf) -> LiveOptions {
        LiveOptions {
            bin,
            bin_args: Vec::new(),
            workload,
            nodes: 3,
            concurrency: 3,
            rate: 100.0,
            time_limit: Duration::from_secs(10),
            op_timeout: Duration::from_secs(1),
            init_timeout: Duration::from_secs(10),
            converge_timeout: Duration::from_secs(10),
            seed: 0,
            net: NetConfig::default(),
            nemesis: FaultList::default(),
            nemesis_interval: Duration::from_secs(2),
            partition_shapes: vec![Shape::One, Shape::Halves],
            max_clock_skew_ns: 2_000_000_000,
            fault_loss: 0.3,
            fault_duplicate: 0.3,
            topology: Topology::Grid,
            txn_size: 3,
            max_writes_per_key: 32,
            faketime_library: None,
            run_dir,
            remote: Vec::new(),
        }
    }
}

/// What a live run produced.
#[derive(Debug)]
pub struct LiveOutcome {
    pub history: PathBuf,
    /// The history ([`run`] keeps it in memory; empty from [`run_recorded`],
    /// whose listeners have it).
    pub events: Vec<Event>,
    /// What the recorder counted.
    pub tally: recorder::Tally,
    /// Harness time at which all nodes' final reads first agreed.
    pub converged_ns: Option<u64>,
    pub router: RouterStats,
    /// Node-to-node messages per acknowledged write.
    pub messages_per_write: Option<f64>,
    /// Process ids of every node process the run started (all reaped by now).
    pub pids: Vec<i32>,
    /// Times Ladon paused reading each node's stdout (backpressure), by node.
    pub backpressure: Vec<(String, u64)>,
    /// Final reads: the rounds, and whether states were still changing when
    /// the window ended (see [`final_phase::FinalReads`]).
    pub finals: final_phase::FinalReads,
}

/// The node names of a run of `nodes` nodes.
pub fn node_names(nodes: usize) -> Vec<String> {
    (1..=nodes).map(|i| format!("n{i}")).collect()
}

/// Runs one live test into `opts.run_dir` with the shared listeners
/// (`listeners::for_run_dir`) and keeps its history in memory too
/// ([`LiveOutcome::events`]). Every child is killed and reaped before this
/// returns, on success and on error; dropping the future (Ctrl-C) kills
/// them too.
pub async fn run(opts: &LiveOptions) -> anyhow::Result<LiveOutcome> {
    std::fs::create_dir_all(&opts.run_dir)
        .with_context(|| format!("cannot create {}", opts.run_dir.display()))?;
    let mut listeners = crate::listeners::for_run_dir(&opts.run_dir, Listeners::new())
        .with_context(|| {
            format!(
                "cannot create the run's files in {}",
                opts.run_dir.display()
            )
        })?;
    let kept = Arc::new(Mutex::new(Vec::new()));
    listeners.push(Keep(kept.clone()));
    let bus = EventBus::new(listeners);
    let recorder = Recorder::new(bus.clone(), node_names(opts.nodes), Instant::now());
    let out = run_recorded(opts, &recorder).await;
    bus.take().finish().context("writing the run's files")?;
    let mut out = out?;
    out.events = std::mem::take(&mut *kept.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(out)
}

/// Keeps the history in memory for [`run`].
struct Keep(Arc<Mutex<Vec<Event>>>);
impl RunListener for Keep {
    fn on_event(&mut self, event: &RunEvent<'_>) -> std::io::Result<()> {
        if let Some(e) = event.history() {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.clone());
        }
        Ok(())
    }
}

/// Runs one live test, recording through `recorder` (whose listeners write
/// the history, `messages.jsonl` and the node logs). Every child is killed
/// and reaped before this returns, on success and on error; dropping the
/// future (a signal) kills them too.
pub async fn run_recorded(opts: &LiveOptions, recorder: &Recorder) -> anyhow::Result<LiveOutcome> {
    check_executable(&opts.bin).map_err(anyhow::Error::msg)?;
    // Daemonized grandchildren of nodes are reparented to us, to be killed and reaped.
    ladon_adapters::process::child::become_subreaper();
    anyhow::ensure!(opts.nodes >= 1, "--nodes must be at least 1");
    let clocks = opts.nemesis.0.contains(&FaultKind::Clock);
    let nodes_dir = opts.run_dir.join("nodes");
    std::fs::create_dir_all(&nodes_dir)
        .with_context(|| format!("cannot create {}", nodes_dir.display()))?;
    let start = recorder.start();
    let history = opts.run_dir.join("history.jsonl");
    let names = node_names(opts.nodes);
    let bus = recorder.bus();
    bus.emit(&RunEvent::Start {
        nodes: &names,
        messages: true,
    })
    .context("cannot create the node logs")?;

    let (router_tx, router_rx) = mpsc::channel::<RouterIn>(8192);
    let router = Router::new(RouterConfig {
        nodes: names.clone(),
        net: opts.net.clone(),
        seed: opts.seed,
        events: Some(bus.clone()),
        start,
    })
    .context("cannot start the router")?;
    let router_task = tokio::spawn(router.run(router_rx));

    anyhow::ensure!(
        opts.remote.is_empty() || opts.remote.len() == names.len(),
        "{} remote nodes prepared for {} nodes",
        opts.remote.len(),
        names.len()
    );
    let mut specs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let remote = opts.remote.get(i).cloned();
        let faketime = match (&remote, clocks) {
            (_, false) => None,
            (None, true) => Some(Faketime::new(
                opts.faketime_library.as_deref(),
                nodes_dir.join(format!("{name}.faketime")),
            )?),
            (Some(r), true) => Some(Faketime::remote(
                r.host.clone(),
                opts.faketime_library.as_deref(),
                format!("{}/{name}.faketime", r.dir),
            )?),
        };
        specs.push(ChildSpec {
            node: name.clone(),
            bin: opts.bin.clone(),
            args: opts.bin_args.clone(),
            log: nodes_dir.join(format!("{name}.log")),
            faketime,
            remote,
        });
    }
    let setup: Vec<Vec<serde_json::Value>> = match opts.workload {
        Workload::Broadcast => {
            let topo = opts.topology.neighbours(&names);
            names
                .iter()
                .map(|_| vec![json!({"type": "topology", "topology": topo})])
                .collect()
        }
        _ => names.iter().map(|_| Vec::new()).collect(),
    };
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel();
    let nodes = Arc::new(tokio::sync::Mutex::new(NodeSet::new(
        specs,
        setup,
        opts.init_timeout,
        router_tx.clone(),
        exit_tx,
    )));

    let result = drive(
        opts,
        &names,
        recorder,
        &router_tx,
        &nodes,
        &mut exit_rx,
        clocks,
    )
    .await;
    let (pids, backpressure) = {
        let mut set = nodes.lock().await;
        set.shutdown().await;
        let pauses = set
            .names
            .iter()
            .zip(&set.budgets)
            .filter(|(_, b)| b.pauses() > 0)
            .map(|(n, b)| (n.clone(), b.pauses()))
            .collect();
        (set.spawned.clone(), pauses)
    };
    let (tx, rx) = oneshot::channel();
    let _ = router_tx
        .send(RouterIn::Control(Control::Shutdown(tx)))
        .await;
    let stats = rx.await.unwrap_or_default();
    let _ = router_task.await;
    let finals = result?;
    let converged_ns = finals.converged_ns;
    if let Some(e) = recorder.write_error() {
        anyhow::bail!("{e} ({})", history.display());
    }
    let tally = recorder.tally();
    let writes = tally.acknowledged_writes;
    let messages_per_write = (writes > 0).then(|| stats.sent as f64 / writes as f64);
    Ok(LiveOutcome {
        history,
        events: Vec::new(),
        tally,
        converged_ns,
        router: stats,
        messages_per_write,
        pids,
        backpressure,
        finals,
    })
}

async fn drive(
    opts: &LiveOptions,
    names: &[String],
    recorder: &Recorder,
    router_tx: &mpsc::Sender<RouterIn>,
    nodes: &nodes::SharedNodes,
    exit_rx: &mut mpsc::UnboundedReceiver<(usize, u64, String)>,
    clocks: bool,
) -> anyhow::Result<final_phase::FinalReads> {
    {
        let mut set = nodes.lock().await;
        set.prestart_remote().await?;
        for (i, name) in names.iter().enumerate() {
            set.start(i)
                .await
                .with_context(|| format!("cannot start node {name}"))?;
        }
    }
    // Nodes that exit on their own are recorded, and stay down until the final phase.
    let exit_watch = {
        let (nodes, recorder) = (nodes.clone(), recorder.clone());
        let names = names.to_vec();
        let mut rx = std::mem::replace(exit_rx, mpsc::unbounded_channel().1);
        tokio::spawn(async move {
            while let Some((i, generation, why)) = rx.recv().await {
                if let Some(status) = nodes.lock().await.exited(i, generation).await {
                    recorder.nemesis(
                        "node-exit",
                        json!({"node": names[i], "status": status, "reason": why}),
                    );
                }
            }
        })
    };

    let fresh = Arc::new(AtomicU64::new(opts.concurrency as u64));
    let stop = Arc::new(AtomicBool::new(false));
    let generator = Arc::new(Mutex::new(ladon_workloads::rpc::RpcGenerator::new(
        opts.workload.shape(),
        opts.seed,
        opts.txn_size,
        opts.max_writes_per_key,
        opts.concurrency.max(2),
    )));
    let think = if opts.rate > 0.0 {
        Duration::from_secs_f64(opts.concurrency as f64 / opts.rate)
    } else {
        Duration::ZERO
    };
    let mut clients = Vec::new();
    for k in 0..opts.concurrency {
        let node = k % names.len();
        clients.push(tokio::spawn(client::client_loop(client::ClientCtx {
            index: k,
            workload: opts.workload,
            node: (node, names[node].clone()),
            generator: generator.clone(),
            recorder: recorder.clone(),
            router: router_tx.clone(),
            timeout: opts.op_timeout,
            think,
            stop: stop.clone(),
            fresh: fresh.clone(),
        })));
    }
    let (stop_nemesis, stop_rx) = watch::channel(false);
    let nctx = NemesisCtx {
        names: names.to_vec(),
        router: router_tx.clone(),
        nodes: nodes.clone(),
        recorder: recorder.clone(),
        kinds: opts.nemesis.0.clone(),
        interval: opts.nemesis_interval,
        shapes: opts.partition_shapes.clone(),
        clock_skew_ns: opts.max_clock_skew_ns,
        loss: opts.fault_loss,
        duplicate: opts.fault_duplicate,
    };
    let nemesis = tokio::spawn(nemesis::run(nctx, opts.seed, stop_rx));

    tokio::time::sleep(opts.time_limit).await;
    let _ = stop_nemesis.send(true);
    let _ = nemesis.await;
    stop.store(true, Ordering::SeqCst);
    for h in clients {
        let _ = h.await;
    }
    let fctx = final_phase::FinalCtx {
        workload: opts.workload,
        names: names.to_vec(),
        router: router_tx.clone(),
        nodes: nodes.clone(),
        recorder: recorder.clone(),
        reads: {
            let g = generator.lock().unwrap_or_else(|p| p.into_inner());
            g.final_reads(&g.written_keys())
        },
        timeout: opts.op_timeout,
        converge_timeout: opts.converge_timeout,
        fresh,
        clocks,
    };
    final_phase::heal_all(&fctx).await;
    let converged = final_phase::final_reads(&fctx).await;
    exit_watch.abort();
    Ok(converged)
}
