//! Drives one simulated test: clients and the workload generator, the
//! nemesis schedule, the faulty phase, the heal, and the final phase of
//! repeated final reads until the nodes agree.

mod faults;
mod final_phase;
pub mod record;

use std::collections::BTreeMap;
use std::path::PathBuf;

use ladon_adapters::node::{Cluster, Node, NodeId, ReqId, Request, Role};
use ladon_checker::history::{EventType, Mop, F_FINAL, F_TXN};
use ladon_workloads::{Generator, WorkloadConfig, WorkloadKind};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::nemesis::{Action, Nemesis, NemesisConfig};
use crate::options::{ClientMode, Dur, RunOptions};
use crate::schedule::ScheduleStep;
use crate::sim::{
    rng_stream, MsgStats, NoObserver, NodeStatus, Observer, Output, World, WorldConfig,
};
use faults::apply_fault;
use final_phase::agree;
pub use record::{CountingSink, FileObserver, HistorySink, Recorder};

/// Everything a run needs besides the cluster.
pub struct RunContext<'h, 'p> {
    /// Resolved options (seed set, swarm applied).
    pub options: RunOptions,
    pub seed: u64,
    pub history: &'h mut dyn HistorySink,
    /// Where `messages.jsonl` and `nodes/*.log` go; `None` to skip them.
    pub run_dir: Option<PathBuf>,
    /// Called now and then with (virtual now, virtual time the faulty phase ends).
    pub progress: Option<&'p mut dyn FnMut(u64, u64)>,
}

/// What a run observed, beyond the history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    pub events: u64,
    /// Client operations (txn and final) that completed.
    pub completed_ops: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub messages_dropped: u64,
    pub messages_duplicated: u64,
    /// Write micro-operations clients invoked.
    pub writes: u64,
    pub messages_per_write: Option<f64>,
    /// Virtual time of the heal that ended the faulty phase.
    pub heal_ns: u64,
    /// Virtual time at which all final reads first agreed (`None`: never).
    pub converged_ns: Option<u64>,
    pub end_ns: u64,
    /// The nemesis steps applied in the faulty phase, in order: the run's
    /// schedule as data (`--nemesis-schedule` takes it back). Not stored.
    #[serde(skip)]
    pub schedule: Vec<ScheduleStep>,
}

#[derive(Debug)]
pub(crate) enum Tick {
    Client(usize),
    Timeout(ReqId),
    Nemesis,
    Fault(Action),
    EndFaulty,
    FinalRound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Client(usize),
    Final(usize),
}

struct Pending {
    owner: Owner,
    process: u64,
    node: usize,
    f: &'static str,
    ops: Vec<Mop>,
}

struct Client {
    process: u64,
    home: usize,
    busy: bool,
    context: Json,
}

#[derive(PartialEq, Eq)]
enum Phase {
    Faulty,
    Healed,
    Done,
}

/// Runs a test of `cluster` under the simulator.
pub fn simulate<C: Cluster>(cluster: C, ctx: &mut RunContext<'_, '_>) -> anyhow::Result<RunOutcome>
where
    C::Node: 'static,
{
    let o = ctx.options.clone();
    let seed = ctx.seed;
    let net = o.net.config();
    let specs = cluster.specs();
    let n = specs.len();
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let observer: Box<dyn Observer<<C::Node as Node>::Msg>> = match &ctx.run_dir {
        Some(dir) => Box::new(FileObserver::<C::Node>::create(dir, names.clone())?),
        None => Box::new(NoObserver),
    };
    let mut world: World<C, Tick> =
        World::with_observer(cluster, WorldConfig::new(seed, net), observer);
    // Driver streams sit above the nodes' (1..=n).
    let mut rng = rng_stream(seed, n as u64 + 1);
    let mut gen = Generator::new(
        WorkloadConfig {
            kind: o.workload,
            txn_size: o.txn_size,
            max_writes_per_key: o.max_writes_per_key,
            active_keys: o.keys,
            read_fraction: 0.5,
        },
        seed ^ 0x9e37_79b9_7f4a_7c15,
    );
    let leaders: Vec<usize> = (0..n).filter(|&i| specs[i].role == Role::Leader).collect();
    anyhow::ensure!(
        !leaders.is_empty(),
        "adapter {:?} laid out no leader node",
        o.adapter
    );
    let leader_of = |i: usize| match specs[i].role {
        Role::Leader => i,
        Role::Follower { leader } => leader.0,
    };
    let mut drifts = vec![0i64; n];
    if o.clock_drift_ppm != 0 {
        let b = o.clock_drift_ppm.abs();
        for (i, d) in drifts.iter_mut().enumerate() {
            *d = rng.random_range(-b..=b);
            world.clocks_mut().set_drift(i, 0, *d);
        }
    }

    let mut rec = Recorder::new(ctx.history, names);
    let mut clients: Vec<Client> = (0..o.concurrency)
        .map(|i| Client {
            process: i as u64,
            home: i % n,
            busy: false,
            context: Json::Null,
        })
        .collect();
    let mut next_process = o.concurrency as u64;
    let mut next_req = 0u64;
    let mut pending: BTreeMap<ReqId, Pending> = BTreeMap::new();
    let mean_think = o.concurrency as f64 / o.rate * 1e9;
    let think = |rng: &mut ChaCha8Rng| (rng.random_range(0.0..2.0) * mean_think) as u64;
    for c in 0..clients.len() {
        let t = think(&mut rng);
        world.schedule(t, Tick::Client(c));
    }
    let mut nemesis = Nemesis::new(NemesisConfig {
        kinds: o.nemesis.0.clone(),
        interval_ns: o.nemesis_interval.ns(),
        shapes: o.net.partition_shapes.0.clone(),
        clock_skew_ns: o.clock_skew.ns(),
        loss: o.net.nemesis_loss,
        dup: o.net.nemesis_dup,
    });
    match &o.nemesis_schedule {
        // An explicit schedule draws nothing from the seed.
        Some(schedule) => {
            for step in &schedule.steps {
                world.schedule(step.at.ns(), Tick::Fault(step.action.clone()));
            }
        }
        None => {
            if !nemesis.is_empty() {
                let d = nemesis.next_delay(&mut rng);
                world.schedule(d, Tick::Nemesis);
            }
        }
    }
    let time_limit = o.time_limit.ns();
    world.schedule(time_limit, Tick::EndFaulty);

    let mut phase = Phase::Faulty;
    let mut out = RunOutcome::default();
    let mut final_procs: Vec<u64> = Vec::new();
    let mut final_last: Vec<Option<Vec<Mop>>> = vec![None; n];
    let mut final_outstanding = 0usize;
    let mut deadline = u64::MAX;
    let mut round_scheduled = false;
    let mut steps = 0u64;
    let mut invoked = 0u64;
    let set_like = o.workload == WorkloadKind::Set;

    while phase != Phase::Done {
        let Some(output) = world.step() else { break };
        let now = world.now();
        steps += 1;
        if steps.is_multiple_of(1024) {
            if let Some(p) = ctx.progress.as_mut() {
                p(now, time_limit);
            }
        }
        // The owner of an operation that completed (or timed out), and
        // whether its process must be replaced.
        let mut completed: Option<(Owner, bool)> = None;
        match output {
            Output::Ext(Tick::Client(c)) => {
                if phase != Phase::Faulty
                    || clients[c].busy
                    || o.max_ops.is_some_and(|m| invoked >= m)
                {
                    continue;
                }
                invoked += 1;
                let ops = gen.next_txn(true);
                let writes = ops.iter().filter(|m| m.is_write()).count();
                let node = match o.clients {
                    ClientMode::Sticky => {
                        let home = clients[c].home;
                        if writes > 0 {
                            leader_of(home)
                        } else {
                            // `--read-from`: the adapter may send reads elsewhere.
                            world.cluster().read_target(NodeId(home), &mut rng).0
                        }
                    }
                    ClientMode::Roaming => {
                        if writes > 0 {
                            leaders[rng.random_range(0..leaders.len())]
                        } else {
                            rng.random_range(0..n)
                        }
                    }
                };
                out.writes += writes as u64;
                next_req += 1;
                let id = ReqId(next_req);
                let cl = &mut clients[c];
                cl.busy = true;
                let ops = rec.client(
                    now,
                    EventType::Invoke,
                    cl.process,
                    node,
                    F_TXN,
                    ops,
                    None,
                    None,
                )?;
                let req = Request {
                    id,
                    ops: ops.clone(),
                    context: cl.context.clone(),
                };
                world.request(node, req);
                pending.insert(
                    id,
                    Pending {
                        owner: Owner::Client(c),
                        process: cl.process,
                        node,
                        f: F_TXN,
                        ops,
                    },
                );
                world.schedule(now + o.op_timeout.ns(), Tick::Timeout(id));
            }
            Output::Reply { req, result, .. } => {
                let Some(p) = pending.remove(&req) else {
                    continue;
                };
                out.completed_ops += 1;
                let fresh = match result {
                    Ok(ok) => {
                        let ops = ok.ops;
                        let ops = rec.client(
                            now,
                            EventType::Ok,
                            p.process,
                            p.node,
                            p.f,
                            ops,
                            None,
                            ok.meta,
                        )?;
                        if let Owner::Client(c) = p.owner {
                            clients[c].context = ok.context;
                        } else if let Owner::Final(node) = p.owner {
                            final_last[node] = Some(ops);
                        }
                        false
                    }
                    Err(e) => {
                        let kind = if e.definite {
                            EventType::Fail
                        } else {
                            EventType::Info
                        };
                        rec.client(
                            now,
                            kind,
                            p.process,
                            p.node,
                            p.f,
                            p.ops,
                            Some(e.reason),
                            None,
                        )?;
                        !e.definite
                    }
                };
                completed = Some((p.owner, fresh));
            }
            Output::Ext(Tick::Timeout(req)) => {
                let Some(p) = pending.remove(&req) else {
                    continue;
                };
                rec.client(
                    now,
                    EventType::Info,
                    p.process,
                    p.node,
                    p.f,
                    p.ops,
                    Some("timeout".into()),
                    None,
                )?;
                completed = Some((p.owner, true));
            }
            Output::Ext(Tick::Nemesis) => {
                if phase != Phase::Faulty {
                    continue;
                }
                let busiest = world.network().busiest();
                for (offset, action) in nemesis.step(n, busiest, &mut rng) {
                    if offset == 0 {
                        out.schedule.push(ScheduleStep {
                            at: Dur(now),
                            action: action.clone(),
                        });
                        apply_fault(&mut world, &mut rec, action, &drifts)?;
                    } else {
                        world.schedule(now + offset, Tick::Fault(action));
                    }
                }
                let d = nemesis.next_delay(&mut rng);
                world.schedule(now + d, Tick::Nemesis);
            }
            Output::Ext(Tick::Fault(action)) => {
                if phase == Phase::Faulty {
                    out.schedule.push(ScheduleStep {
                        at: Dur(now),
                        action: action.clone(),
                    });
                    apply_fault(&mut world, &mut rec, action, &drifts)?;
                }
            }
            Output::Ext(Tick::EndFaulty) => {
                phase = Phase::Healed;
                out.heal_ns = now;
                world.heal_network();
                rec.nemesis(now, "heal", Json::Null)?;
                // Undo what the nemesis left behind, as its own actions would.
                apply_fault(&mut world, &mut rec, Action::ClockReset, &drifts)?;
                for status in [NodeStatus::Crashed, NodeStatus::Paused] {
                    let nodes: Vec<usize> = (0..n).filter(|&i| world.status(i) == status).collect();
                    if nodes.is_empty() {
                        continue;
                    }
                    let undo = if status == NodeStatus::Crashed {
                        Action::Restart(nodes)
                    } else {
                        Action::Resume(nodes)
                    };
                    apply_fault(&mut world, &mut rec, undo, &drifts)?;
                }
                deadline = now + o.converge_timeout.ns();
                world.schedule(now + o.final_interval.ns(), Tick::FinalRound);
                round_scheduled = true;
            }
            Output::Ext(Tick::FinalRound) => {
                round_scheduled = false;
                if final_outstanding > 0 {
                    continue;
                }
                let reads = gen.final_read();
                final_last = vec![None; n];
                for node in 0..n {
                    if final_procs.len() <= node {
                        final_procs.push(next_process);
                        next_process += 1;
                    }
                    next_req += 1;
                    let id = ReqId(next_req);
                    let process = final_procs[node];
                    rec.client(
                        now,
                        EventType::Invoke,
                        process,
                        node,
                        F_FINAL,
                        reads.clone(),
                        None,
                        None,
                    )?;
                    world.request(
                        node,
                        Request {
                            id,
                            ops: reads.clone(),
                            context: Json::Null,
                        },
                    );
                    pending.insert(
                        id,
                        Pending {
                            owner: Owner::Final(node),
                            process,
                            node,
                            f: F_FINAL,
                            ops: reads.clone(),
                        },
                    );
                    world.schedule(now + o.op_timeout.ns(), Tick::Timeout(id));
                    final_outstanding += 1;
                }
            }
        }
        if let Some((owner, fresh)) = completed {
            settle(
                owner,
                fresh,
                &mut clients,
                &mut final_procs,
                &mut next_process,
            );
            match owner {
                Owner::Client(c) => {
                    if phase == Phase::Faulty {
                        let t = think(&mut rng);
                        world.schedule(now + t, Tick::Client(c));
                    }
                }
                Owner::Final(_) => final_outstanding -= 1,
            }
        }
        if phase == Phase::Healed
            && final_outstanding == 0
            && !final_procs.is_empty()
            && !round_scheduled
        {
            let now = world.now();
            if agree(&final_last, set_like) {
                out.converged_ns = Some(now);
                phase = Phase::Done;
            } else if now >= deadline {
                phase = Phase::Done;
            } else {
                world.schedule(now + o.final_interval.ns(), Tick::FinalRound);
                round_scheduled = true;
            }
        }
    }
    let stats: MsgStats = world.stats().clone();
    out.events = rec.len();
    out.end_ns = world.now();
    out.messages_sent = stats.sent;
    out.messages_delivered = stats.delivered;
    out.messages_dropped = stats.dropped;
    out.messages_duplicated = stats.duplicated;
    out.messages_per_write = (out.writes > 0).then(|| stats.sent as f64 / out.writes as f64);
    Ok(out)
}

/// After an operation completes: a client is free again, and after an
/// indeterminate result it gets a fresh process id.
fn settle(
    owner: Owner,
    fresh: bool,
    clients: &mut [Client],
    final_procs: &mut [u64],
    next: &mut u64,
) {
    match owner {
        Owner::Client(c) => {
            clients[c].busy = false;
            if fresh {
                clients[c].process = *next;
                *next += 1;
                // A fresh process is a new session: it inherits no causal
                // context (the checker links no session edge across ids).
                clients[c].context = Json::Null;
            }
        }
        Owner::Final(node) => {
            if fresh {
                final_procs[node] = *next;
                *next += 1;
            }
        }
    }
}
