//! The simulated world: nodes, their clocks and timers, the faulty network,
//! and the one event queue. Single-threaded and deterministic: every random
//! choice comes from ChaCha8 streams derived from one seed.

use std::collections::BTreeMap;

use ladon_adapters::node::{
    ClientError, Cluster, Command, Ctx, Node, NodeId, NodeSpec, ReplyOk, ReqId, Request, TimerId,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::queue::EventQueue;
use crate::clock::{Clocks, SIM_EPOCH_NS};
use crate::net::{Arrival, Cut, Delivery, NetConfig, Network, SendFate};

type Msg<C> = <<C as Cluster>::Node as Node>::Msg;
type Rec<C> = <<C as Cluster>::Node as Node>::Record;

/// Parameters of the world itself (the test around it has its own).
#[derive(Debug, Clone)]
pub struct WorldConfig {
    pub seed: u64,
    pub net: NetConfig,
    /// One-way latency between a client and the node it talks to.
    pub client_latency_ns: u64,
    pub epoch_ns: u64,
}

impl WorldConfig {
    pub fn new(seed: u64, net: NetConfig) -> Self {
        WorldConfig {
            seed,
            net,
            client_latency_ns: 100_000,
            epoch_ns: SIM_EPOCH_NS,
        }
    }
}

/// A node's process state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    Up,
    Crashed,
    Paused,
}

pub use crate::events::MsgEvent;

/// Listens to what happens inside the world (message log, node logs).
pub trait Observer<M> {
    /// Whether [`Observer::message`] should be called (it costs time).
    fn wants_messages(&self) -> bool {
        false
    }
    fn message(
        &mut self,
        _time: u64,
        _event: MsgEvent,
        _id: u64,
        _from: usize,
        _to: usize,
        _msg: &M,
    ) {
    }
    fn node_log(&mut self, _node: usize, _time: u64, _line: &str) {}
}

/// An observer that ignores everything.
pub struct NoObserver;
impl<M> Observer<M> for NoObserver {}

/// Message counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MsgStats {
    /// Messages nodes sent (duplicates not counted).
    pub sent: u64,
    pub delivered: u64,
    /// Lost to random loss, partitions in drop mode, or down nodes.
    pub dropped: u64,
    pub duplicated: u64,
}

/// Messages the nodes may send within one virtual second before the run
/// is stopped as a message storm ([`StormGuard`]).
pub const STORM_MESSAGES_PER_SECOND: u64 = 1_000_000;

/// Stops a simulated run whose nodes send more than
/// [`STORM_MESSAGES_PER_SECOND`] messages within one virtual second (checked
/// every 4,096 events inside [`World::step`], which a storm never leaves): a
/// storm that feeds itself (automerge's sync under duplication, swarm seed
/// 115, sent 21 million messages in 20 s of wall time and would have
/// filled memory and disk). The run then ends as an interrupted one does:
/// the history so far is checked, the verdict is `unknown`, and the
/// reason names the storm. Busy runs stay far below it (a few messages per
/// operation: 10,000 operations per virtual second send about 100,000).
#[derive(Default)]
pub struct StormGuard {
    window_start: u64,
    sent_at_start: u64,
}

impl StormGuard {
    /// Called every few steps with the virtual time and messages sent so
    /// far; the reason to stop, if any.
    pub fn check(&mut self, now: u64, sent: u64) -> Option<String> {
        if now >= self.window_start.saturating_add(1_000_000_000) {
            self.window_start = now;
            self.sent_at_start = sent;
            return None;
        }
        let n = sent - self.sent_at_start;
        (n > STORM_MESSAGES_PER_SECOND).then(|| {
            format!(
                "a message storm ({n} messages sent between {} and {} of virtual time; the \
                 simulator stops a run past {STORM_MESSAGES_PER_SECOND} per virtual second)",
                ladon_checker::explain::duration(self.window_start),
                ladon_checker::explain::duration(now)
            )
        })
    }
}

enum Ev<M, X> {
    /// A message copy; the payload carries its `messages.jsonl` id.
    Deliver {
        copy: Delivery<(u64, M)>,
    },
    Timer {
        node: usize,
        timer: TimerId,
        gen: u64,
    },
    Request {
        node: usize,
        req: Request,
    },
    Reply {
        node: usize,
        req: ReqId,
        result: Result<ReplyOk, ClientError>,
    },
    Ext(X),
}

/// What [`World::step`] hands back to the test driving the world.
#[derive(Debug)]
pub enum Output<X> {
    /// A node's reply reached its client.
    Reply {
        node: usize,
        req: ReqId,
        result: Result<ReplyOk, ClientError>,
    },
    /// An event the driver scheduled with [`World::schedule`] is due.
    Ext(X),
}

/// The world, generic over the cluster under test and the driver's own
/// event type `X` (client ticks, nemesis steps, ...).
pub struct World<'o, C: Cluster, X> {
    storm: StormGuard,
    /// Why [`World::step`] stopped early: a message storm.
    stormed: Option<String>,
    /// Events handled inside [`World::step`] (for the storm check).
    events: u64,
    cluster: C,
    specs: Vec<NodeSpec>,
    nodes: Vec<Option<C::Node>>,
    records: Vec<Vec<Rec<C>>>,
    status: Vec<NodeStatus>,
    paused: Vec<Vec<Ev<Msg<C>, X>>>,
    timers: Vec<BTreeMap<TimerId, u64>>,
    timer_gen: u64,
    net: Network<(u64, Msg<C>)>,
    clocks: Clocks,
    queue: EventQueue<Ev<Msg<C>, X>>,
    now: u64,
    rng: ChaCha8Rng,
    node_rngs: Vec<ChaCha8Rng>,
    out: Vec<Command<Msg<C>, Rec<C>>>,
    wire: Vec<Delivery<(u64, Msg<C>)>>,
    next_msg_id: u64,
    client_latency_ns: u64,
    stats: MsgStats,
    observer: Box<dyn Observer<Msg<C>> + 'o>,
}

/// The RNG stream `stream` of `seed`: stream 0 is the world's (network,
/// faults), 1.. are the nodes', and the driver takes its own above those.
pub fn rng_stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

impl<'o, C: Cluster, X> World<'o, C, X> {
    /// Builds every node from empty storage and calls `on_start` at time 0.
    pub fn new(cluster: C, cfg: WorldConfig) -> Self {
        Self::with_observer(cluster, cfg, Box::new(NoObserver))
    }

    /// Like [`World::new`], with an observer that sees the start too.
    pub fn with_observer(
        cluster: C,
        cfg: WorldConfig,
        observer: Box<dyn Observer<Msg<C>> + 'o>,
    ) -> Self {
        let specs = cluster.specs();
        let n = specs.len();
        let mut w = World {
            nodes: (0..n).map(|_| None).collect(),
            records: vec![Vec::new(); n],
            status: vec![NodeStatus::Up; n],
            paused: (0..n).map(|_| Vec::new()).collect(),
            timers: vec![BTreeMap::new(); n],
            timer_gen: 0,
            net: Network::new(n, cfg.net),
            clocks: Clocks::new(n, cfg.epoch_ns),
            queue: EventQueue::default(),
            now: 0,
            rng: rng_stream(cfg.seed, 0),
            node_rngs: (0..n).map(|i| rng_stream(cfg.seed, 1 + i as u64)).collect(),
            out: Vec::new(),
            wire: Vec::new(),
            next_msg_id: 0,
            client_latency_ns: cfg.client_latency_ns,
            stats: MsgStats::default(),
            storm: StormGuard::default(),
            stormed: None,
            events: 0,
            observer,
            specs,
            cluster,
        };
        for i in 0..n {
            w.boot(i);
        }
        w
    }

    pub fn specs(&self) -> &[NodeSpec] {
        &self.specs
    }

    pub fn cluster(&self) -> &C {
        &self.cluster
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Virtual nanoseconds since the test started.
    pub fn now(&self) -> u64 {
        self.now
    }

    pub fn status(&self, node: usize) -> NodeStatus {
        self.status[node]
    }

    /// Why [`World::step`] stopped before the queue ran dry: a message
    /// storm ([`StormGuard`]); `None` otherwise.
    pub fn storm(&self) -> Option<&str> {
        self.stormed.as_deref()
    }

    pub fn stats(&self) -> &MsgStats {
        &self.stats
    }

    /// The network; payloads are `(message id, message)`.
    pub fn network(&self) -> &Network<(u64, Msg<C>)> {
        &self.net
    }

    pub fn clocks(&self) -> &Clocks {
        &self.clocks
    }

    pub fn clocks_mut(&mut self) -> &mut Clocks {
        &mut self.clocks
    }

    /// The world's RNG (stream 0), for fault choices.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// The node value, if it is not crashed (for tests that peek at state).
    pub fn node(&self, node: usize) -> Option<&C::Node> {
        self.nodes[node].as_ref()
    }

    /// Durable records node `node` has persisted.
    pub fn records(&self, node: usize) -> &[Rec<C>] {
        &self.records[node]
    }

    /// Schedules a driver event at absolute virtual time `at` (not before now).
    pub fn schedule(&mut self, at: u64, x: X) {
        self.queue.push(at.max(self.now), Ev::Ext(x));
    }

    /// A client sends `req` to `node`; it arrives after the client latency.
    pub fn request(&mut self, node: usize, req: Request) {
        let at = self.now + self.client_latency_ns;
        self.queue.push(at, Ev::Request { node, req });
    }

    /// Runs internal events until one for the driver is due; `None` when
    /// the queue is empty, or when a message storm stopped the run
    /// ([`World::storm`] says so).
    pub fn step(&mut self) -> Option<Output<X>> {
        if self.stormed.is_some() {
            return None;
        }
        while let Some((at, ev)) = self.queue.pop() {
            self.now = self.now.max(at);
            self.events += 1;
            if self.events.is_multiple_of(4096) {
                if let Some(why) = self.storm.check(self.now, self.stats.sent) {
                    self.stormed = Some(why);
                    return None;
                }
            }
            match ev {
                Ev::Ext(x) => return Some(Output::Ext(x)),
                Ev::Reply { node, req, result } => {
                    return Some(Output::Reply { node, req, result })
                }
                Ev::Deliver { copy } => self.on_arrival(copy),
                Ev::Timer { node, timer, gen } => {
                    if self.timers[node].get(&timer) != Some(&gen) {
                        continue;
                    }
                    match self.status[node] {
                        NodeStatus::Paused => {
                            self.paused[node].push(Ev::Timer { node, timer, gen })
                        }
                        NodeStatus::Crashed => {}
                        NodeStatus::Up => {
                            self.timers[node].remove(&timer);
                            self.dispatch(node, |n, ctx| n.on_timer(ctx, timer));
                        }
                    }
                }
                Ev::Request { node, req } => match self.status[node] {
                    NodeStatus::Paused => self.paused[node].push(Ev::Request { node, req }),
                    NodeStatus::Crashed => {
                        let result = Err(ClientError {
                            definite: true,
                            reason: "unavailable".into(),
                        });
                        let at = self.now + self.client_latency_ns;
                        self.queue.push(
                            at,
                            Ev::Reply {
                                node,
                                req: req.id,
                                result,
                            },
                        );
                    }
                    NodeStatus::Up => self.dispatch(node, |n, ctx| n.on_request(ctx, req)),
                },
            }
        }
        None
    }

    fn on_arrival(&mut self, copy: Delivery<(u64, Msg<C>)>) {
        let (from, to) = (copy.from, copy.to);
        if self.status[to] == NodeStatus::Paused {
            self.paused[to].push(Ev::Deliver { copy });
            return;
        }
        match self.net.arrive(self.now, copy) {
            Arrival::Held => {}
            Arrival::Dropped((id, msg)) => self.dropped(id, from, to, &msg),
            Arrival::Deliver((id, msg)) => {
                if self.status[to] == NodeStatus::Crashed {
                    self.dropped(id, from, to, &msg);
                    return;
                }
                self.stats.delivered += 1;
                if self.observer.wants_messages() {
                    self.observer
                        .message(self.now, MsgEvent::Deliver, id, from, to, &msg);
                }
                self.dispatch(to, |n, ctx| n.on_message(ctx, NodeId(from), msg));
            }
        }
    }

    fn dropped(&mut self, id: u64, from: usize, to: usize, msg: &Msg<C>) {
        self.stats.dropped += 1;
        if self.observer.wants_messages() {
            self.observer
                .message(self.now, MsgEvent::Drop, id, from, to, msg);
        }
    }

    fn dispatch(&mut self, i: usize, f: impl FnOnce(&mut C::Node, &mut Ctx<'_, Msg<C>, Rec<C>>)) {
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        let mut ctx = Ctx {
            id: NodeId(i),
            now_ns: self.clocks.now(i, self.now),
            rng: &mut self.node_rngs[i],
            out: &mut self.out,
        };
        f(node, &mut ctx);
        self.apply_commands(i);
    }

    fn apply_commands(&mut self, i: usize) {
        let mut out = std::mem::take(&mut self.out);
        for cmd in out.drain(..) {
            match cmd {
                Command::Send { to, msg } => self.send(i, to.0, msg),
                Command::Reply { req, result } => {
                    let at = self.now + self.client_latency_ns;
                    self.queue.push(
                        at,
                        Ev::Reply {
                            node: i,
                            req,
                            result,
                        },
                    );
                }
                Command::SetTimer { id, after_ns } => {
                    self.timer_gen += 1;
                    self.timers[i].insert(id, self.timer_gen);
                    let at = self.now + self.clocks.timer_delay(i, after_ns).max(1);
                    self.queue.push(
                        at,
                        Ev::Timer {
                            node: i,
                            timer: id,
                            gen: self.timer_gen,
                        },
                    );
                }
                Command::CancelTimer { id } => {
                    self.timers[i].remove(&id);
                }
                Command::Persist(r) => self.records[i].push(r),
                Command::Log(line) => self.observer.node_log(i, self.now, &line),
            }
        }
        self.out = out;
    }

    fn send(&mut self, from: usize, to: usize, msg: Msg<C>) {
        self.stats.sent += 1;
        self.next_msg_id += 1;
        let id = self.next_msg_id;
        let watch = self.observer.wants_messages();
        if to >= self.specs.len() {
            // A node addressed a peer that does not exist: drop it visibly.
            self.stats.dropped += 1;
            let line = format!("send to unknown node #{to} dropped");
            self.observer.node_log(from, self.now, &line);
            return;
        }
        // Only the message log needs a copy of a message the network loses.
        let logged = watch.then(|| msg.clone());
        let now = self.now;
        match self
            .net
            .send(now, from, to, (id, msg), &mut self.rng, &mut self.wire)
        {
            SendFate::Lost => {
                self.stats.dropped += 1;
                if let Some(msg) = logged {
                    self.observer
                        .message(now, MsgEvent::Send, id, from, to, &msg);
                    self.observer
                        .message(now, MsgEvent::Drop, id, from, to, &msg);
                }
            }
            SendFate::Sent(copies) => {
                if copies > 1 {
                    self.stats.duplicated += copies as u64 - 1;
                }
                self.enqueue_wire(watch);
            }
        }
    }

    /// Queues the copies the network put on the wire. A duplicate gets its
    /// own id; a released copy keeps the id it was sent with.
    fn enqueue_wire(&mut self, watch: bool) {
        let mut wire = std::mem::take(&mut self.wire);
        for mut copy in wire.drain(..) {
            if !copy.released {
                if copy.duplicate {
                    self.next_msg_id += 1;
                    copy.payload.0 = self.next_msg_id;
                }
                if watch {
                    let (id, msg) = &copy.payload;
                    self.observer
                        .message(self.now, MsgEvent::Send, *id, copy.from, copy.to, msg);
                }
            }
            self.queue.push(copy.at_ns, Ev::Deliver { copy });
        }
        self.wire = wire;
    }

    // ---- faults -------------------------------------------------------

    /// Changes the network now, then queues the messages the change released.
    fn change_network(
        &mut self,
        change: impl FnOnce(
            &mut Network<(u64, Msg<C>)>,
            u64,
            &mut ChaCha8Rng,
            &mut Vec<Delivery<(u64, Msg<C>)>>,
        ),
    ) {
        change(&mut self.net, self.now, &mut self.rng, &mut self.wire);
        self.enqueue_wire(self.observer.wants_messages());
    }

    /// Puts a partition in force (replacing any other).
    pub fn partition(&mut self, cut: Cut) {
        self.change_network(|net, now, rng, wire| net.partition(now, cut, rng, wire));
    }

    /// Restores every link; held messages are released.
    pub fn heal(&mut self) {
        self.change_network(|net, now, rng, wire| net.heal(now, rng, wire));
    }

    /// Heals partitions and clogs and stops injected loss and duplication.
    pub fn heal_network(&mut self) {
        self.change_network(|net, now, rng, wire| net.heal_all(now, rng, wire));
    }

    pub fn clog(&mut self, node: usize) {
        self.net.clog(node);
    }

    pub fn unclog(&mut self, node: usize) {
        self.change_network(|net, now, rng, wire| net.unclog(now, node, rng, wire));
    }

    pub fn set_loss(&mut self, p: f64) {
        self.net.set_fault_loss(p);
    }

    pub fn set_duplicate(&mut self, p: f64) {
        self.net.set_fault_duplicate(p);
    }

    /// Crash: the node value (volatile state) and its timers are dropped;
    /// its persisted records stay. Requests it had not answered never are.
    pub fn crash(&mut self, node: usize) {
        if self.status[node] == NodeStatus::Crashed {
            return;
        }
        self.nodes[node] = None;
        self.timers[node].clear();
        self.paused[node].clear();
        self.status[node] = NodeStatus::Crashed;
        self.observer.node_log(node, self.now, "crashed");
    }

    /// Restart: rebuild from persisted records, then `on_start`.
    pub fn restart(&mut self, node: usize) {
        if self.status[node] != NodeStatus::Crashed {
            return;
        }
        self.observer.node_log(node, self.now, "restarting");
        self.status[node] = NodeStatus::Up;
        self.boot(node);
    }

    fn boot(&mut self, node: usize) {
        self.nodes[node] = Some(self.cluster.build(NodeId(node), &self.records[node]));
        self.dispatch(node, |n, ctx| n.on_start(ctx));
    }

    /// Pause: everything addressed to the node (messages, requests, its own
    /// timers) waits until it resumes.
    pub fn pause(&mut self, node: usize) {
        if self.status[node] == NodeStatus::Up {
            self.status[node] = NodeStatus::Paused;
        }
    }

    pub fn resume(&mut self, node: usize) {
        if self.status[node] != NodeStatus::Paused {
            return;
        }
        self.status[node] = NodeStatus::Up;
        let now = self.now;
        for ev in std::mem::take(&mut self.paused[node]) {
            self.queue.push(now, ev);
        }
    }
}

#[cfg(test)]
mod storm_tests {
    use super::{StormGuard, STORM_MESSAGES_PER_SECOND};

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_storm_is_named_once_a_virtual_second_holds_too_many_messages() {
        let mut g = StormGuard::default();
        assert_eq!(g.check(0, 0), None);
        // Busy but steady: just under the limit every second.
        for sec in 1..5u64 {
            assert_eq!(g.check(sec * S, sec * STORM_MESSAGES_PER_SECOND), None);
        }
        // Within the fifth second, past the limit.
        let why = g
            .check(5 * S - 1, 5 * STORM_MESSAGES_PER_SECOND + 1)
            .expect("a storm");
        assert_eq!(
            why,
            "a message storm (1000001 messages sent between 4.000 s and 4.999 s of virtual \
             time; the simulator stops a run past 1000000 per virtual second)"
        );
    }
}
