//! Drives one simulated test: clients and the workload generator, the
//! nemesis schedule, the faulty phase, the heal, and the final phase of
//! repeated final reads until the nodes agree.

mod faults;
pub mod record;
mod tick;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use ladon_adapters::node::{Cluster, NodeId, ReqId, Request, Role};
use ladon_checker::history::{EventType, Mop, F_FINAL, F_TXN};
use ladon_workloads::{Generator, WorkloadConfig, WorkloadKind};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::events::{RunEvent, RunListener};
use crate::final_phase::{Compare, FinalReads, FinalRounds};
use crate::nemesis::{Action, Nemesis, NemesisConfig};
use crate::options::{ClientMode, Dur, RunOptions};
use crate::schedule::ScheduleStep;
use crate::sim::{rng_stream, MsgStats, Output, World, WorldConfig};
use faults::{apply_fault, heal_all};
pub use record::{CountingSink, EventObserver, Recorder};
pub(crate) use tick::Tick;

/// Everything a run needs besides the cluster.
pub struct RunContext<'h> {
    /// Resolved options (seed set, swarm applied).
    pub options: RunOptions,
    pub seed: u64,
    /// Where the run's events go: the history, messages, node logs and
    /// progress (virtual now of the faulty phase's end, every 1024 steps).
    pub events: &'h mut dyn RunListener,
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
    /// The signal that stopped the run before its end (SIGINT, SIGTERM):
    /// faults and clients stopped where they were, no final phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
    /// The final phase's rounds (`None`: it did not start). Not stored.
    #[serde(skip)]
    pub finals: Option<FinalReads>,
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

/// Runs a test of `cluster` under the simulator: the faulty phase (clients
/// and nemesis), the heal, then rounds of final reads until the nodes agree
/// or `--converge-timeout` passes (or a signal stops it: see
/// `crate::interrupt`).
pub fn simulate<C: Cluster>(cluster: C, ctx: &mut RunContext<'_>) -> anyhow::Result<RunOutcome>
where
    C::Node: 'static,
{
    let mut d = Driver::new(cluster, ctx)?;
    let mut steps = 0u64;
    while d.phase != Phase::Done {
        let Some(output) = d.world.step() else {
            if let Some(why) = d.world.storm() {
                d.out.interrupted = Some(why.to_string());
            }
            break;
        };
        let now = d.world.now();
        steps += 1;
        if steps.is_multiple_of(1024) {
            d.rec.emit(&RunEvent::Progress {
                now,
                end: d.time_limit,
            })?;
            if let Some(signal) = crate::interrupt::requested() {
                d.out.interrupted = Some(signal.to_string());
                break;
            }
        }
        let step = match output {
            Output::Ext(Tick::Client(c)) => d.invoke(c, now)?,
            Output::Reply { req, result, .. } => d.reply(req, result, now)?,
            Output::Ext(Tick::Timeout(req)) => d.timeout(req, now)?,
            Output::Ext(Tick::Nemesis) => d.nemesis_step(now)?,
            Output::Ext(Tick::Fault(action)) => d.fault(action, now)?,
            Output::Ext(Tick::EndFaulty) => d.end_faulty(now)?,
            Output::Ext(Tick::FinalRound) => d.final_round(now)?,
        };
        // `Skip`: nothing changed that the checks below look at.
        let Step::Done(completed) = step else {
            continue;
        };
        if let Some((owner, fresh)) = completed {
            d.completed(owner, fresh, now);
        }
        d.maybe_next_round();
    }
    Ok(d.finish())
}

/// What handling one output did.
enum Step {
    /// Nothing to settle, no final-phase check.
    Skip,
    /// Handled; the operation that completed (or timed out), if any, and
    /// whether its process must be replaced.
    Done(Option<(Owner, bool)>),
}

/// The state of one simulated run: the world, the clients, the generator,
/// the nemesis and the final phase.
struct Driver<'h, C: Cluster> {
    o: RunOptions,
    n: usize,
    world: World<'h, C, Tick>,
    rng: ChaCha8Rng,
    gen: Generator,
    rec: Recorder<'h>,
    leaders: Vec<usize>,
    /// The leader each node's writes go to.
    leader_of: Vec<usize>,
    drifts: Vec<i64>,
    clients: Vec<Client>,
    next_process: u64,
    next_req: u64,
    pending: BTreeMap<ReqId, Pending>,
    mean_think: f64,
    nemesis: Nemesis,
    time_limit: u64,
    phase: Phase,
    out: RunOutcome,
    final_procs: Vec<u64>,
    final_last: Vec<Option<Vec<Mop>>>,
    final_outstanding: usize,
    finals: Option<FinalRounds>,
    deadline: u64,
    round_scheduled: bool,
    invoked: u64,
    set_like: bool,
}

impl<'h, C: Cluster> Driver<'h, C>
where
    C::Node: 'static,
{
    /// Builds the world and schedules the clients, the nemesis and the end
    /// of the faulty phase (every random draw in the order of old).
    fn new(cluster: C, ctx: &'h mut RunContext<'_>) -> anyhow::Result<Self> {
        let o = ctx.options.clone();
        let seed = ctx.seed;
        let net = o.net.config();
        let specs = cluster.specs();
        let n = specs.len();
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let out: record::Shared<'h> = Rc::new(RefCell::new(&mut *ctx.events));
        out.borrow_mut().on_event(&RunEvent::Start {
            nodes: &names,
            messages: true,
        })?;
        let observer = EventObserver::<C::Node>::new(out.clone(), names.clone());
        let mut world: World<'h, C, Tick> =
            World::with_observer(cluster, WorldConfig::new(seed, net), Box::new(observer));
        // Driver streams sit above the nodes' (1..=n).
        let mut rng = rng_stream(seed, n as u64 + 1);
        let gen = Generator::new(
            WorkloadConfig {
                kind: o.workload.sim().map_err(anyhow::Error::msg)?,
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
            "adapter {} laid out no leader node",
            o.adapter
        );
        let leader_of = specs
            .iter()
            .enumerate()
            .map(|(i, s)| match s.role {
                Role::Leader => i,
                Role::Follower { leader } => leader.0,
            })
            .collect();
        let mut drifts = vec![0i64; n];
        if o.clock_drift_ppm != 0 {
            let b = o.clock_drift_ppm.abs();
            for (i, d) in drifts.iter_mut().enumerate() {
                *d = rng.random_range(-b..=b);
                world.clocks_mut().set_drift(i, 0, *d);
            }
        }
        let rec = Recorder::new(out, names);
        let clients: Vec<Client> = (0..o.concurrency)
            .map(|i| Client {
                process: i as u64,
                home: i % n,
                busy: false,
                context: Json::Null,
            })
            .collect();
        let nemesis = Nemesis::new(NemesisConfig {
            kinds: o.nemesis.0.clone(),
            interval_ns: o.nemesis_interval.ns(),
            shapes: o.net.partition_shapes.0.clone(),
            clock_skew_ns: o.clock_skew.ns(),
            loss: o.net.nemesis_loss,
            dup: o.net.nemesis_dup,
        });
        let mut d = Driver {
            n,
            world,
            rng,
            gen,
            rec,
            leaders,
            leader_of,
            drifts,
            next_process: o.concurrency as u64,
            next_req: 0,
            pending: BTreeMap::new(),
            mean_think: o.concurrency as f64 / o.rate * 1e9,
            clients,
            nemesis,
            time_limit: o.time_limit.ns(),
            phase: Phase::Faulty,
            out: RunOutcome::default(),
            final_procs: Vec::new(),
            final_last: vec![None; n],
            final_outstanding: 0,
            finals: None,
            deadline: u64::MAX,
            round_scheduled: false,
            invoked: 0,
            set_like: o.workload == crate::options::WorkloadName::Sim(WorkloadKind::Set),
            o,
        };
        for c in 0..d.clients.len() {
            let t = d.think();
            d.world.schedule(t, Tick::Client(c));
        }
        match &d.o.nemesis_schedule {
            // An explicit schedule draws nothing from the seed.
            Some(schedule) => {
                for step in &schedule.steps {
                    d.world
                        .schedule(step.at.ns(), Tick::Fault(step.action.clone()));
                }
            }
            None => {
                if !d.nemesis.is_empty() {
                    let delay = d.nemesis.next_delay(&mut d.rng);
                    d.world.schedule(delay, Tick::Nemesis);
                }
            }
        }
        d.world.schedule(d.time_limit, Tick::EndFaulty);
        Ok(d)
    }

    /// A client's think time before its next operation.
    fn think(&mut self) -> u64 {
        (self.rng.random_range(0.0..2.0) * self.mean_think) as u64
    }

    /// A client's turn: invokes its next transaction.
    fn invoke(&mut self, c: usize, now: u64) -> anyhow::Result<Step> {
        if self.phase != Phase::Faulty
            || self.clients[c].busy
            || self.o.max_ops.is_some_and(|m| self.invoked >= m)
        {
            return Ok(Step::Skip);
        }
        self.invoked += 1;
        let ops = self.gen.next_txn(true);
        let writes = ops.iter().filter(|m| m.is_write()).count();
        let node = match self.o.clients {
            ClientMode::Sticky => {
                let home = self.clients[c].home;
                if writes > 0 {
                    self.leader_of[home]
                } else {
                    // `--read-from`: the adapter may send reads elsewhere.
                    self.world
                        .cluster()
                        .read_target(NodeId(home), &mut self.rng)
                        .0
                }
            }
            ClientMode::Roaming => {
                if writes > 0 {
                    self.leaders[self.rng.random_range(0..self.leaders.len())]
                } else {
                    self.rng.random_range(0..self.n)
                }
            }
        };
        self.out.writes += writes as u64;
        self.next_req += 1;
        let id = ReqId(self.next_req);
        let cl = &mut self.clients[c];
        cl.busy = true;
        let ops = self.rec.client(
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
        let process = cl.process;
        self.world.request(node, req);
        self.pending.insert(
            id,
            Pending {
                owner: Owner::Client(c),
                process,
                node,
                f: F_TXN,
                ops,
            },
        );
        self.world
            .schedule(now + self.o.op_timeout.ns(), Tick::Timeout(id));
        Ok(Step::Done(None))
    }

    /// A node answered request `req`.
    fn reply(
        &mut self,
        req: ReqId,
        result: Result<ladon_adapters::node::ReplyOk, ladon_adapters::node::ClientError>,
        now: u64,
    ) -> anyhow::Result<Step> {
        let Some(p) = self.pending.remove(&req) else {
            return Ok(Step::Skip);
        };
        self.out.completed_ops += 1;
        let fresh = match result {
            Ok(ok) => {
                let ops = self.rec.client(
                    now,
                    EventType::Ok,
                    p.process,
                    p.node,
                    p.f,
                    ok.ops,
                    None,
                    ok.meta,
                )?;
                if let Owner::Client(c) = p.owner {
                    self.clients[c].context = ok.context;
                } else if let Owner::Final(node) = p.owner {
                    self.final_last[node] = Some(ops);
                }
                false
            }
            Err(e) => {
                let kind = if e.definite {
                    EventType::Fail
                } else {
                    EventType::Info
                };
                self.rec.client(
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
        Ok(Step::Done(Some((p.owner, fresh))))
    }

    /// No reply to `req` within `--op-timeout`: indeterminate.
    fn timeout(&mut self, req: ReqId, now: u64) -> anyhow::Result<Step> {
        let Some(p) = self.pending.remove(&req) else {
            return Ok(Step::Skip);
        };
        self.rec.client(
            now,
            EventType::Info,
            p.process,
            p.node,
            p.f,
            p.ops,
            Some("timeout".into()),
            None,
        )?;
        Ok(Step::Done(Some((p.owner, true))))
    }

    /// The nemesis's turn: its actions now or later, and its next turn.
    fn nemesis_step(&mut self, now: u64) -> anyhow::Result<Step> {
        if self.phase != Phase::Faulty {
            return Ok(Step::Skip);
        }
        let busiest = self.world.network().busiest();
        for (offset, action) in self.nemesis.step(self.n, busiest, &mut self.rng) {
            if offset == 0 {
                self.apply(action, now)?;
            } else {
                self.world.schedule(now + offset, Tick::Fault(action));
            }
        }
        let d = self.nemesis.next_delay(&mut self.rng);
        self.world.schedule(now + d, Tick::Nemesis);
        Ok(Step::Done(None))
    }

    /// A scheduled fault (of the nemesis or of `--nemesis-schedule`).
    fn fault(&mut self, action: Action, now: u64) -> anyhow::Result<Step> {
        if self.phase == Phase::Faulty {
            self.apply(action, now)?;
        }
        Ok(Step::Done(None))
    }

    /// Applies a fault of the faulty phase and records it in the schedule.
    fn apply(&mut self, action: Action, now: u64) -> anyhow::Result<()> {
        self.out.schedule.push(ScheduleStep {
            at: Dur(now),
            action: action.clone(),
        });
        apply_fault(&mut self.world, &mut self.rec, action, &self.drifts)
    }

    /// The end of the faulty phase: heal everything, start the final reads.
    fn end_faulty(&mut self, now: u64) -> anyhow::Result<Step> {
        self.phase = Phase::Healed;
        self.out.heal_ns = now;
        heal_all(&mut self.world, &mut self.rec, &self.drifts)?;
        self.finals = Some(FinalRounds::new(
            self.rec.names.clone(),
            Compare::Exact {
                set_like: self.set_like,
            },
            now,
            self.o.converge_timeout.ns(),
        ));
        self.deadline = now + self.o.converge_timeout.ns();
        self.world
            .schedule(now + self.o.final_interval.ns(), Tick::FinalRound);
        self.round_scheduled = true;
        Ok(Step::Done(None))
    }

    /// A round of final reads: every node reads every key once.
    fn final_round(&mut self, now: u64) -> anyhow::Result<Step> {
        self.round_scheduled = false;
        if self.final_outstanding > 0 {
            return Ok(Step::Skip);
        }
        let reads = self.gen.final_read();
        self.final_last = vec![None; self.n];
        for node in 0..self.n {
            if self.final_procs.len() <= node {
                self.final_procs.push(self.next_process);
                self.next_process += 1;
            }
            self.next_req += 1;
            let id = ReqId(self.next_req);
            let process = self.final_procs[node];
            self.rec.client(
                now,
                EventType::Invoke,
                process,
                node,
                F_FINAL,
                reads.clone(),
                None,
                None,
            )?;
            self.world.request(
                node,
                Request {
                    id,
                    ops: reads.clone(),
                    context: Json::Null,
                },
            );
            self.pending.insert(
                id,
                Pending {
                    owner: Owner::Final(node),
                    process,
                    node,
                    f: F_FINAL,
                    ops: reads.clone(),
                },
            );
            self.world
                .schedule(now + self.o.op_timeout.ns(), Tick::Timeout(id));
            self.final_outstanding += 1;
        }
        Ok(Step::Done(None))
    }

    /// An operation completed: its client thinks and goes again (in the
    /// faulty phase), or a final read is in.
    fn completed(&mut self, owner: Owner, fresh: bool, now: u64) {
        settle(
            owner,
            fresh,
            &mut self.clients,
            &mut self.final_procs,
            &mut self.next_process,
        );
        match owner {
            Owner::Client(c) => {
                if self.phase == Phase::Faulty {
                    let t = self.think();
                    self.world.schedule(now + t, Tick::Client(c));
                }
            }
            Owner::Final(_) => self.final_outstanding -= 1,
        }
    }

    /// After a round's last read: done if the nodes agree or the window
    /// is over, else another round.
    fn maybe_next_round(&mut self) {
        if self.phase == Phase::Healed
            && self.final_outstanding == 0
            && !self.final_procs.is_empty()
            && !self.round_scheduled
        {
            let now = self.world.now();
            let agreed = self
                .finals
                .as_mut()
                .is_some_and(|f| f.round(now, &self.final_last));
            if agreed {
                self.out.converged_ns = Some(now);
                self.phase = Phase::Done;
            } else if now >= self.deadline {
                self.phase = Phase::Done;
            } else {
                self.world
                    .schedule(now + self.o.final_interval.ns(), Tick::FinalRound);
                self.round_scheduled = true;
            }
        }
    }

    /// The run's figures.
    fn finish(self) -> RunOutcome {
        let mut out = self.out;
        out.finals = self.finals.map(FinalRounds::into_reads);
        let stats: MsgStats = self.world.stats().clone();
        out.events = self.rec.len();
        out.end_ns = self.world.now();
        out.messages_sent = stats.sent;
        out.messages_delivered = stats.delivered;
        out.messages_dropped = stats.dropped;
        out.messages_duplicated = stats.duplicated;
        out.messages_per_write = (out.writes > 0).then(|| stats.sent as f64 / out.writes as f64);
        out
    }
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
