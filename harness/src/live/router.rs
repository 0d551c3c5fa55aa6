//! The router: the harness *is* the network. Every line a node prints comes
//! here; node-to-node messages go through the simulator's fault model
//! ([`crate::net::Network`]) in real time (latency, loss, duplication,
//! reordering, partitions that drop or hold, clogs), replies to clients go
//! to the client tasks, and requests to `lin-kv`, `seq-kv`, `lww-kv` and
//! `lin-tso` are answered by [`Services`]. Each message event (send,
//! deliver, drop) and each complaint about a node goes to the run's
//! listeners as a run event (`crate::events`).
//!
//! The router is one task owning all its state; node bodies are forwarded as
//! the bytes the node printed, parsing only the routing fields (without
//! copying them). Lines for one node are batched: everything routed to it
//! while the router works through what is waiting in its inbox goes to the
//! node's stdin pump as one [`Lines`] batch (one wake-up, one flush).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ladon_adapters::process::codec::{DecodeError, Envelope, Message};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value as Json};
use tokio::sync::{mpsc, oneshot};

use super::budget::Credit;
use super::services::Services;
use crate::events::{EventBus, MessageEvent, MsgEvent, RunEvent};
use crate::net::{Arrival, Cut, Delivery, NetConfig, Network, Shape};

/// A line on its way to a node's stdin (newline not included), with the
/// credit of the node that printed it (returned once the last copy is
/// written or dropped).
pub type Line = Arc<Payload>;

pub struct Payload {
    bytes: Box<[u8]>,
    _credit: Credit,
}

impl Payload {
    pub fn new(bytes: impl Into<Box<[u8]>>, credit: Credit) -> Line {
        Arc::new(Payload {
            bytes: bytes.into(),
            _credit: credit,
        })
    }
}

impl std::ops::Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Lines for one node's stdin, in order.
pub type Lines = Vec<Line>;

/// What the router receives.
pub enum RouterIn {
    /// A line node `node` printed on stdout.
    FromNode {
        node: usize,
        line: Vec<u8>,
    },
    /// Several lines node `node` printed, in order (what one read of its
    /// stdout returned).
    FromNodeBatch {
        node: usize,
        lines: Vec<Vec<u8>>,
    },
    /// Lines node `node` printed, with their bytes charged to its budget.
    FromNodeCharged {
        node: usize,
        lines: Vec<Vec<u8>>,
        credit: Credit,
    },
    /// Node `node` printed a line over the length limit (skipped).
    Oversize {
        node: usize,
        len: usize,
    },
    /// A client request for node `node` (clients are not behind the faulty
    /// network). If the node is down, the client gets a definite error.
    FromClient {
        node: usize,
        client: String,
        msg_id: u64,
        line: Vec<u8>,
    },
    Control(Control),
}

pub enum Control {
    /// Cut links by `shape`; answers with the cut in force.
    Partition(Shape, oneshot::Sender<Cut>),
    /// Cut these links (a cut the nemesis schedule drew).
    Cut(Cut),
    /// Which node has sent the most messages so far.
    Busiest(oneshot::Sender<usize>),
    Heal,
    /// Heal partitions and clogs, stop injected loss and duplication.
    HealAll,
    Loss(f64),
    Duplicate(f64),
    Clog(usize),
    Unclog(usize),
    /// The node's stdin, after a (re)start and handshake.
    NodeUp(usize, mpsc::UnboundedSender<Lines>),
    /// The node's stdin while it handshakes: service replies reach it,
    /// messages from peers wait until [`Control::NodeReady`].
    NodeStarting(usize, mpsc::UnboundedSender<Lines>),
    /// The node answered its handshake: what waited for it is delivered.
    NodeReady(usize),
    /// The node crashed, exited or is being stopped: messages to it are dropped.
    NodeDown(usize),
    /// Replies addressed to `name` go to `tx`.
    RegisterClient(String, mpsc::UnboundedSender<Map<String, Json>>),
    /// Figures so far.
    Stats(oneshot::Sender<RouterStats>),
    /// Flush `messages.jsonl` and stop.
    Shutdown(oneshot::Sender<RouterStats>),
}

/// Router figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// Node-to-node messages sent.
    pub sent: u64,
    pub delivered: u64,
    pub dropped: u64,
    /// Lines that were not messages (non-JSON, missing fields, over-long).
    pub malformed: u64,
    pub service_requests: u64,
    pub client_replies: u64,
    /// Message copies on the wire or held by a partition or clog right now.
    pub in_flight: u64,
    /// Drops by reason (`partition`, `loss`, `unknown destination`, `peer
    /// crashed`, `queue full`).
    pub drops: BTreeMap<&'static str, u64>,
}

/// Most messages (and bytes) waiting for one node to answer its handshake;
/// more are dropped with reason `queue full`.
pub const WAITING_MAX_MESSAGES: usize = 10_000;
pub const WAITING_MAX_BYTES: usize = 8 << 20;

/// Where a node is in its life, for routing messages to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeState {
    Down,
    Starting,
    Up,
}

#[derive(Clone)]
struct Packet {
    id: u64,
    kind: Arc<str>,
    line: Line,
}

struct Due(Delivery<Packet>, u64);
impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.0.at_ns, self.1) == (o.0.at_ns, o.1)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0.at_ns, self.1).cmp(&(o.0.at_ns, o.1))
    }
}

pub struct RouterConfig {
    pub nodes: Vec<String>,
    pub net: NetConfig,
    pub seed: u64,
    /// Where message events and complaints about nodes go (`None`: nowhere).
    pub events: Option<EventBus>,
    pub start: Instant,
}

pub struct Router {
    names: Vec<String>,
    net: Network<Packet>,
    rng: ChaCha8Rng,
    start: Instant,
    stdin: Vec<Option<mpsc::UnboundedSender<Lines>>>,
    state: Vec<NodeState>,
    /// Messages for a node that is starting, with their senders, and their bytes.
    waiting: Vec<(VecDeque<(usize, Packet)>, usize)>,
    /// Lines routed to each node since the last [`Router::flush`].
    pending: Vec<Lines>,
    /// Nodes with pending lines, in the order they got their first one.
    dirty: Vec<usize>,
    /// `body.type` strings seen so far, shared by every packet of that type.
    kinds: Vec<Arc<str>>,
    clients: BTreeMap<String, mpsc::UnboundedSender<Map<String, Json>>>,
    services: Services,
    queue: BinaryHeap<Reverse<Due>>,
    seq: u64,
    next_id: u64,
    wire: Vec<Delivery<Packet>>,
    /// The run's listeners, when they want message events.
    messages: Option<EventBus>,
    /// The run's listeners, for complaints about nodes.
    events: Option<EventBus>,
    complaints: Vec<u64>,
    stats: RouterStats,
}

/// Complaints logged per node before they are only counted.
const MAX_COMPLAINTS: u64 = 20;

impl Router {
    pub fn new(cfg: RouterConfig) -> std::io::Result<Router> {
        let n = cfg.nodes.len();
        let messages = cfg.events.clone().filter(EventBus::wants_messages);
        Ok(Router {
            net: Network::new(n, cfg.net),
            rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x726f_7574_6572),
            start: cfg.start,
            stdin: vec![None; n],
            // Before its first start a node is as good as starting: messages wait.
            state: vec![NodeState::Starting; n],
            waiting: (0..n).map(|_| (VecDeque::new(), 0)).collect(),
            pending: vec![Vec::new(); n],
            dirty: Vec::new(),
            kinds: Vec::new(),
            clients: BTreeMap::new(),
            services: Services::default(),
            queue: BinaryHeap::new(),
            seq: 0,
            next_id: 0,
            wire: Vec::new(),
            messages,
            events: cfg.events,
            complaints: vec![0; n],
            stats: RouterStats::default(),
            names: cfg.nodes,
        })
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Runs until [`Control::Shutdown`] or every sender is gone.
    pub async fn run(mut self, mut inbox: mpsc::Receiver<RouterIn>) -> RouterStats {
        loop {
            let next_due = self.queue.peek().map(|Reverse(d)| d.0.at_ns);
            let msg = match next_due {
                Some(at) => {
                    let now = self.now();
                    if at <= now {
                        self.deliver_due(now);
                        self.flush();
                        continue;
                    }
                    let sleep = tokio::time::sleep(Duration::from_nanos(at - now));
                    tokio::select! {
                        m = inbox.recv() => m,
                        _ = sleep => {
                            let now = self.now();
                            self.deliver_due(now);
                            self.flush();
                            continue;
                        }
                    }
                }
                None => inbox.recv().await,
            };
            let Some(msg) = msg else { break };
            if let Some(done) = self.handle_one(msg) {
                let stats = self.finish();
                let _ = done.send(stats.clone());
                return stats;
            }
            // Drain what is already waiting before looking at timers again.
            for _ in 0..256 {
                match inbox.try_recv() {
                    Ok(m) => {
                        if let Some(done) = self.handle_one(m) {
                            let stats = self.finish();
                            let _ = done.send(stats.clone());
                            return stats;
                        }
                    }
                    Err(_) => break,
                }
            }
            self.flush();
        }
        self.finish()
    }

    fn finish(&mut self) -> RouterStats {
        self.flush();
        self.stats()
    }

    /// Figures so far.
    pub fn stats(&self) -> RouterStats {
        RouterStats {
            in_flight: (self.queue.len() + self.net.held_count()) as u64,
            ..self.stats.clone()
        }
    }

    /// Handles one input and passes on the lines it routed; returns the
    /// reply channel on shutdown.
    pub fn handle(&mut self, msg: RouterIn) -> Option<oneshot::Sender<RouterStats>> {
        let done = self.handle_one(msg);
        self.flush();
        done
    }

    /// Sends each node the lines routed to it since the last flush, as one batch.
    pub fn flush(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &node in &dirty {
            let lines = std::mem::take(&mut self.pending[node]);
            if let Some(tx) = &self.stdin[node] {
                let _ = tx.send(lines);
            }
        }
        dirty.clear();
        self.dirty = dirty;
    }

    fn handle_one(&mut self, msg: RouterIn) -> Option<oneshot::Sender<RouterStats>> {
        match msg {
            RouterIn::FromNode { node, line } => self.on_node_line(node, line),
            RouterIn::FromNodeBatch { node, lines } => {
                for line in lines {
                    self.on_node_line(node, line);
                }
            }
            RouterIn::FromNodeCharged {
                node,
                lines,
                mut credit,
            } => {
                for line in lines {
                    let c = credit.take(line.len());
                    self.on_node_line_charged(node, line, c);
                }
            }
            RouterIn::Oversize { node, len } => {
                self.stats.malformed += 1;
                self.complain(
                    node,
                    &format!(
                        "printed a line over the {} MiB limit ({len} bytes so far); it was skipped",
                        super::budget::MAX_LINE >> 20
                    ),
                );
            }
            RouterIn::FromClient {
                node,
                client,
                msg_id,
                line,
            } => self.on_client_request(node, client, msg_id, line),
            RouterIn::Control(c) => return self.control(c),
        }
        None
    }

    fn control(&mut self, c: Control) -> Option<oneshot::Sender<RouterStats>> {
        // Lines routed before a node goes down or comes back belong to the old process.
        self.flush();
        let now = self.now();
        let mut wire = std::mem::take(&mut self.wire);
        match c {
            Control::Partition(shape, tx) => {
                let cut =
                    Cut::of_shape(&shape, self.names.len(), self.net.busiest(), &mut self.rng);
                self.net
                    .partition(now, cut.clone(), &mut self.rng, &mut wire);
                let _ = tx.send(cut);
            }
            Control::Cut(cut) => self.net.partition(now, cut, &mut self.rng, &mut wire),
            Control::Busiest(tx) => {
                let _ = tx.send(self.net.busiest());
            }
            Control::Heal => self.net.heal(now, &mut self.rng, &mut wire),
            Control::HealAll => self.net.heal_all(now, &mut self.rng, &mut wire),
            Control::Loss(p) => self.net.set_fault_loss(p),
            Control::Duplicate(p) => self.net.set_fault_duplicate(p),
            Control::Clog(n) => self.net.clog(n),
            Control::Unclog(n) => self.net.unclog(now, n, &mut self.rng, &mut wire),
            Control::NodeUp(n, tx) => {
                self.stdin[n] = Some(tx);
                self.state[n] = NodeState::Up;
            }
            Control::NodeStarting(n, tx) => {
                self.stdin[n] = Some(tx);
                self.state[n] = NodeState::Starting;
            }
            Control::NodeReady(n) => {
                self.state[n] = NodeState::Up;
                let (queue, _) = std::mem::take(&mut self.waiting[n]);
                for (from, p) in queue {
                    self.deliver(now, from, n, p);
                }
            }
            Control::NodeDown(n) => {
                self.stdin[n] = None;
                self.state[n] = NodeState::Down;
                let (queue, _) = std::mem::take(&mut self.waiting[n]);
                for (from, p) in queue {
                    self.drop_packet(now, from, n, &p, "peer crashed");
                }
            }
            Control::RegisterClient(name, tx) => {
                self.clients.insert(name, tx);
            }
            Control::Stats(tx) => {
                let _ = tx.send(self.stats());
            }
            Control::Shutdown(tx) => return Some(tx),
        }
        self.schedule(now, &mut wire);
        self.wire = wire;
        None
    }

    fn complain(&mut self, node: usize, what: &str) {
        self.complaints[node] += 1;
        let k = self.complaints[node];
        if k > MAX_COMPLAINTS && !k.is_multiple_of(1000) {
            return;
        }
        let Some(events) = &self.events else { return };
        let suffix = if k == MAX_COMPLAINTS {
            " (further complaints are only counted)"
        } else {
            ""
        };
        let line = format!("[ladon] {}: {what}{suffix} [{k} so far]", self.names[node]);
        let _ = events.emit(&RunEvent::NodeLog {
            node: &self.names[node],
            time: self.now(),
            line: &line,
        });
    }

    /// The shared `Arc<str>` for a message type.
    fn kind(&mut self, kind: &str) -> Arc<str> {
        if let Some(k) = self.kinds.iter().find(|k| ***k == *kind) {
            return k.clone();
        }
        let k: Arc<str> = Arc::from(kind);
        // Types are few in practice; a node inventing new ones is not cached.
        if self.kinds.len() < 64 {
            self.kinds.push(k.clone());
        }
        k
    }

    fn on_node_line(&mut self, from: usize, line: Vec<u8>) {
        self.on_node_line_charged(from, line, Credit::none())
    }

    fn on_node_line_charged(&mut self, from: usize, line: Vec<u8>, credit: Credit) {
        let env = match Envelope::peek_ref(&line) {
            Ok(e) => e,
            Err(e) => {
                self.stats.malformed += 1;
                let shown = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
                let why = match e {
                    DecodeError::NotJson(_) => {
                        "printed a line on stdout that is not JSON (log to stderr instead)"
                            .to_string()
                    }
                    DecodeError::NotMessage(m) => {
                        format!("printed JSON that is not a message ({m})")
                    }
                };
                self.complain(from, &format!("{why}: {shown}"));
                return;
            }
        };
        if let Some(to) = self.names.iter().position(|n| *n == env.dest) {
            let kind = self.kind(&env.kind);
            let now = self.now();
            self.next_id += 1;
            let pkt = Packet {
                id: self.next_id,
                kind,
                line: Payload::new(line, credit),
            };
            self.stats.sent += 1;
            self.record(now, MsgEvent::Send, pkt.id, from, to, &pkt.kind, None);
            let mut wire = std::mem::take(&mut self.wire);
            let id = pkt.id;
            let kind = pkt.kind.clone();
            if let crate::net::SendFate::Lost =
                self.net.send(now, from, to, pkt, &mut self.rng, &mut wire)
            {
                self.count_drop("loss");
                self.record(now, MsgEvent::Drop, id, from, to, &kind, Some("loss"));
            }
            self.schedule(now, &mut wire);
            self.wire = wire;
            return;
        }
        let dest = env.dest.into_owned();
        let kind = env.kind.into_owned();
        if let Some(tx) = self.clients.get(&dest) {
            match Message::decode(&line) {
                Ok(m) => {
                    self.stats.client_replies += 1;
                    let _ = tx.send(m.body);
                }
                Err(e) => self.complain(from, &format!("reply to {} is not a message: {e}", dest)),
            }
        } else if Services::is_service(&dest) {
            self.stats.service_requests += 1;
            match Message::decode(&line) {
                Ok(m) => {
                    let now = self.now();
                    let reply =
                        self.services
                            .handle(&dest, &self.names[from], &m.body, now, &mut self.rng);
                    let mut out =
                        Message::new(dest.clone(), self.names[from].clone(), reply).encode();
                    out.pop();
                    self.write_to(from, Payload::new(out, Credit::none()));
                }
                Err(e) => {
                    self.complain(from, &format!("request to {} is not a message: {e}", dest))
                }
            }
        } else if dest.starts_with('c') {
            // A reply to a client that has gone (e.g. a setup client): nothing to do.
        } else {
            self.stats.malformed += 1;
            self.next_id += 1;
            let (now, id) = (self.now(), self.next_id);
            self.count_drop("unknown destination");
            self.record_to(
                now,
                MsgEvent::Drop,
                id,
                from,
                &dest,
                &kind,
                Some("unknown destination"),
            );
            self.complain(
                from,
                &format!(
                    "sent a {:?} message to unknown destination {:?}",
                    kind, dest
                ),
            );
        }
    }

    fn on_client_request(&mut self, node: usize, client: String, msg_id: u64, line: Vec<u8>) {
        if self.state[node] == NodeState::Up
            && self.write_to(node, Payload::new(line, Credit::none()))
        {
            return;
        }
        if let Some(tx) = self.clients.get(&client) {
            let body = json!({"type": "error", "code": 11, "in_reply_to": msg_id,
                "text": format!("node {} is down", self.names[node])});
            if let Json::Object(m) = body {
                let _ = tx.send(m);
            }
        }
    }

    /// Queues `line` for node `node`'s stdin; `false` if the node is down.
    fn write_to(&mut self, node: usize, line: Line) -> bool {
        match &self.stdin[node] {
            Some(tx) if !tx.is_closed() => {
                if self.pending[node].is_empty() {
                    self.dirty.push(node);
                }
                self.pending[node].push(line);
                true
            }
            _ => false,
        }
    }

    fn schedule(&mut self, now: u64, wire: &mut Vec<Delivery<Packet>>) {
        for d in wire.drain(..) {
            if d.at_ns <= now {
                self.arrive(now, d);
            } else {
                self.seq += 1;
                self.queue.push(Reverse(Due(d, self.seq)));
            }
        }
    }

    fn deliver_due(&mut self, now: u64) {
        while let Some(Reverse(d)) = self.queue.peek() {
            if d.0.at_ns > now {
                break;
            }
            let Reverse(Due(d, _)) = self.queue.pop().expect("peeked");
            self.arrive(now, d);
        }
    }

    fn arrive(&mut self, now: u64, d: Delivery<Packet>) {
        let (from, to) = (d.from, d.to);
        match self.net.arrive(now, d) {
            Arrival::Deliver(p) => match self.state[to] {
                NodeState::Up => self.deliver(now, from, to, p),
                NodeState::Starting => {
                    let (queue, bytes) = &mut self.waiting[to];
                    if queue.len() >= WAITING_MAX_MESSAGES
                        || *bytes + p.line.len() > WAITING_MAX_BYTES
                    {
                        self.drop_packet(now, from, to, &p, "queue full");
                    } else {
                        *bytes += p.line.len();
                        queue.push_back((from, p));
                    }
                }
                NodeState::Down => self.drop_packet(now, from, to, &p, "peer crashed"),
            },
            Arrival::Dropped(p) => self.drop_packet(now, from, to, &p, "partition"),
            Arrival::Held => {}
        }
    }

    /// Hands `p` to node `to`'s stdin (or drops it if the node is gone).
    fn deliver(&mut self, now: u64, from: usize, to: usize, p: Packet) {
        if self.write_to(to, p.line.clone()) {
            self.stats.delivered += 1;
            self.record(now, MsgEvent::Deliver, p.id, from, to, &p.kind, None);
        } else {
            self.drop_packet(now, from, to, &p, "peer crashed");
        }
    }

    fn drop_packet(&mut self, now: u64, from: usize, to: usize, p: &Packet, reason: &'static str) {
        self.count_drop(reason);
        self.record(now, MsgEvent::Drop, p.id, from, to, &p.kind, Some(reason));
    }

    fn count_drop(&mut self, reason: &'static str) {
        self.stats.dropped += 1;
        *self.stats.drops.entry(reason).or_default() += 1;
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        now: u64,
        event: MsgEvent,
        id: u64,
        from: usize,
        to: usize,
        kind: &str,
        reason: Option<&str>,
    ) {
        if self.messages.is_some() {
            let to = &self.names[to];
            self.record_to(now, event, id, from, to, kind, reason);
        }
    }

    /// An event whose `to` may not be a node.
    #[allow(clippy::too_many_arguments)]
    fn record_to(
        &self,
        now: u64,
        event: MsgEvent,
        id: u64,
        from: usize,
        to: &str,
        kind: &str,
        reason: Option<&str>,
    ) {
        if let Some(bus) = &self.messages {
            let _ = bus.emit(&RunEvent::Message(MessageEvent {
                time: now,
                event,
                id,
                from: &self.names[from],
                to,
                summary: kind,
                reason,
                writes: &[],
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Latency, PartitionMode};
    use std::path::Path;

    fn router(nodes: usize, mode: PartitionMode, dir: &Path) -> Router {
        Router::new(RouterConfig {
            nodes: (1..=nodes).map(|i| format!("n{i}")).collect(),
            net: NetConfig {
                latency: Latency::Constant(0),
                partition_mode: mode,
                ..NetConfig::default()
            },
            seed: 1,
            events: Some(bus(nodes, dir)),
            start: Instant::now(),
        })
        .unwrap()
    }

    /// The run's listeners writing into `dir`, started.
    fn bus(nodes: usize, dir: &Path) -> EventBus {
        let bus = EventBus::new(
            crate::listeners::for_run_dir(dir, crate::events::Listeners::new()).unwrap(),
        );
        let names: Vec<String> = (1..=nodes).map(|i| format!("n{i}")).collect();
        bus.emit(&RunEvent::Start {
            nodes: &names,
            messages: true,
        })
        .unwrap();
        bus
    }

    /// Flushes the router's listeners.
    fn finish(r: &mut Router) {
        r.finish();
        use crate::events::RunListener;
        r.events.as_ref().unwrap().lock().finish().unwrap();
    }

    fn line(from: &str, to: &str, kind: &str) -> Vec<u8> {
        format!(r#"{{"src":"{from}","dest":"{to}","body":{{"type":"{kind}"}}}}"#).into_bytes()
    }

    #[test]
    fn partitions_drop_or_hold_and_heal_releases_held_messages() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [PartitionMode::Drop, PartitionMode::Hold] {
            let mut r = router(2, mode, dir.path());
            let (tx, mut rx) = mpsc::unbounded_channel();
            r.handle(RouterIn::Control(Control::NodeUp(1, tx)));
            let (ctx, _crx) = oneshot::channel();
            r.handle(RouterIn::Control(Control::Partition(
                Shape::Groups(vec![vec![0], vec![1]]),
                ctx,
            )));
            r.handle(RouterIn::FromNode {
                node: 0,
                line: line("n1", "n2", "gossip"),
            });
            assert!(rx.try_recv().is_err(), "{mode:?}: crossed the partition");
            r.handle(RouterIn::Control(Control::Heal));
            let now = r.now() + 1;
            r.deliver_due(now);
            r.flush();
            let got = rx.try_recv().ok();
            match mode {
                PartitionMode::Drop => assert!(got.is_none()),
                PartitionMode::Hold => {
                    assert_eq!(&got.unwrap()[0][..], &line("n1", "n2", "gossip")[..])
                }
            }
        }
    }

    #[test]
    fn services_answer_and_noise_is_logged_to_the_node_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(1, PartitionMode::Drop, dir.path());
        let (tx, mut rx) = mpsc::unbounded_channel();
        r.handle(RouterIn::Control(Control::NodeUp(0, tx)));
        r.handle(RouterIn::FromNode {
            node: 0,
            line: br#"{"src":"n1","dest":"lin-tso","body":{"type":"ts","msg_id":4}}"#.to_vec(),
        });
        let reply = Message::decode(&rx.try_recv().unwrap()[0]).unwrap();
        assert_eq!(
            (reply.src.as_str(), reply.kind(), reply.in_reply_to()),
            ("lin-tso", "ts_ok", Some(4))
        );
        r.handle(RouterIn::FromNode {
            node: 0,
            line: b"debug: hello".to_vec(),
        });
        r.handle(RouterIn::FromNode {
            node: 0,
            line: line("n1", "n9", "gossip"),
        });
        assert_eq!(r.stats.malformed, 2);
        finish(&mut r);
        let log = std::fs::read_to_string(dir.path().join("nodes/n1.log")).unwrap();
        assert!(log.contains("[ladon] n1: printed a line on stdout that is not JSON (log to stderr instead): debug: hello"), "{log}");
        assert!(log.contains("unknown destination \"n9\""), "{log}");
    }

    #[test]
    fn a_request_to_a_down_node_gets_a_definite_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(1, PartitionMode::Drop, dir.path());
        let (ctx, mut crx) = mpsc::unbounded_channel();
        r.handle(RouterIn::Control(Control::RegisterClient("c1".into(), ctx)));
        r.handle(RouterIn::FromClient {
            node: 0,
            client: "c1".into(),
            msg_id: 9,
            line: line("c1", "n1", "read"),
        });
        let body = crx.try_recv().unwrap();
        assert_eq!(body["code"], json!(11));
        assert_eq!(body["in_reply_to"], json!(9));
    }

    #[test]
    fn message_events_are_recorded_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(2, PartitionMode::Drop, dir.path());
        let (tx, _rx) = mpsc::unbounded_channel();
        r.handle(RouterIn::Control(Control::NodeUp(1, tx)));
        r.handle(RouterIn::FromNode {
            node: 0,
            line: line("n1", "n2", "gossip"),
        });
        finish(&mut r);
        let text = std::fs::read_to_string(dir.path().join("messages.jsonl")).unwrap();
        let events: Vec<Json> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["event"], json!("send"));
        assert_eq!(events[1]["event"], json!("deliver"));
        assert_eq!(
            (
                events[1]["from"].clone(),
                events[1]["to"].clone(),
                events[1]["summary"].clone()
            ),
            (json!("n1"), json!("n2"), json!("gossip"))
        );
    }

    #[test]
    fn a_burst_reaches_each_node_as_one_batch_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(3, PartitionMode::Drop, dir.path());
        let (tx2, mut rx2) = mpsc::unbounded_channel();
        let (tx3, mut rx3) = mpsc::unbounded_channel();
        r.handle(RouterIn::Control(Control::NodeUp(1, tx2)));
        r.handle(RouterIn::Control(Control::NodeUp(2, tx3)));
        r.handle(RouterIn::FromNodeBatch {
            node: 0,
            lines: vec![
                line("n1", "n2", "a"),
                line("n1", "n3", "b"),
                line("n1", "n2", "c"),
            ],
        });
        let to_n2: Vec<Vec<u8>> = rx2.try_recv().unwrap().iter().map(|l| l.to_vec()).collect();
        assert_eq!(to_n2, vec![line("n1", "n2", "a"), line("n1", "n2", "c")]);
        assert!(rx2.try_recv().is_err(), "one batch per node");
        assert_eq!(rx3.try_recv().unwrap().len(), 1);
        let s = r.stats();
        assert_eq!((s.sent, s.delivered, s.in_flight), (3, 3, 0));
    }
}
