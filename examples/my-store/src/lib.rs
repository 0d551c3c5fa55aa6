//! My store: a small multi-leader store, the kind of code a team tests with
//! the `ladon` crate (docs/write-a-rust-adapter.md walks through it).
//!
//! Every node takes writes. Each write gets its origin node, a sequence
//! number at that origin and a Lamport timestamp, is persisted and
//! broadcast to the peers. Anti-entropy repairs what the network lost:
//! every 100 ms a node tells its peers, per origin, up to which sequence
//! number it holds every write, and they send what follows. A key's value
//! is computed from its writes in Lamport order: lists append, sets add,
//! counters add up, registers keep the last write.
//!
//! The planted bug ([`MyStore::with_bug`]): anti-entropy reports how many
//! writes of an origin the node holds instead of up to where it holds them
//! all. After a lost message the count runs ahead of the gap, the peers
//! never resend the write in it, and the node misses it for good.

use std::collections::BTreeMap;

use ladon::history::{Key, Mop, ReadValue};
use ladon::node::{Cluster, Ctx, Json, Node, NodeId, NodeSpec, ReplyOk, Request, Role, TimerId};
use ladon::Guarantee;

/// One replicated write: `(origin, seq)` names it, `lamport` orders it.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    origin: usize,
    seq: u64,
    lamport: u64,
    op: Mop,
}

/// What nodes send each other.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// Writes to apply.
    Writes(Vec<Write>),
    /// Anti-entropy: per origin, the sequence number up to which the sender
    /// holds every write.
    Have(Vec<u64>),
}

const ANTI_ENTROPY: TimerId = TimerId(1);
const ANTI_ENTROPY_NS: u64 = 100_000_000;

/// One replica.
#[derive(Debug)]
pub struct StoreNode {
    me: usize,
    peers: usize,
    bug: bool,
    lamport: u64,
    next_seq: u64,
    /// Per origin: the writes held, by sequence number.
    log: Vec<BTreeMap<u64, Write>>,
    /// Per key: its writes in Lamport order.
    keys: BTreeMap<Key, BTreeMap<(u64, usize, u64), Mop>>,
}

impl StoreNode {
    /// Applies a write unless it is already held; returns whether it was new.
    fn apply(&mut self, w: &Write) -> bool {
        if self.log[w.origin].contains_key(&w.seq) {
            return false;
        }
        self.lamport = self.lamport.max(w.lamport);
        if w.origin == self.me {
            self.next_seq = self.next_seq.max(w.seq + 1);
        }
        let order = (w.lamport, w.origin, w.seq);
        self.keys
            .entry(w.op.key().clone())
            .or_default()
            .insert(order, w.op.clone());
        self.log[w.origin].insert(w.seq, w.clone());
        true
    }

    /// Per origin, up to where this node holds every write (the bug: how
    /// many it holds).
    fn have(&self) -> Vec<u64> {
        let upto = |log: &BTreeMap<u64, Write>| {
            let mut n = 0;
            while log.contains_key(&(n + 1)) {
                n += 1;
            }
            n
        };
        let count = |log: &BTreeMap<u64, Write>| log.len() as u64;
        let have: fn(&BTreeMap<u64, Write>) -> u64 = if self.bug { count } else { upto };
        self.log.iter().map(have).collect()
    }

    fn read(&self, key: &Key) -> ReadValue {
        let Some(writes) = self.keys.get(key) else {
            return ReadValue::Null;
        };
        let mut list = Vec::new();
        let mut value = None;
        for op in writes.values() {
            match op {
                Mop::Append(_, v) | Mop::Add(_, v) => list.push(*v),
                Mop::Write(_, v) => value = Some(*v),
                Mop::Incr(_, d) => value = Some(value.unwrap_or(0) + d),
                Mop::Read(..) | Mop::Delete(_) => {}
            }
        }
        if writes.values().any(|op| matches!(op, Mop::Add(..))) {
            list.sort_unstable();
            list.dedup();
        }
        match value {
            Some(v) => ReadValue::Int(v),
            None => ReadValue::List(list),
        }
    }
}

impl Node for StoreNode {
    type Msg = Msg;
    type Record = Write;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Msg, Write>) {
        ctx.set_timer(ANTI_ENTROPY, ANTI_ENTROPY_NS);
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_, Msg, Write>, req: Request) {
        let mut ops = Vec::with_capacity(req.ops.len());
        let mut fresh = Vec::new();
        for op in req.ops {
            if let Mop::Read(key, _) = op {
                let value = self.read(&key);
                ops.push(Mop::Read(key, value));
                continue;
            }
            self.lamport += 1;
            let w = Write {
                origin: self.me,
                seq: self.next_seq,
                lamport: self.lamport,
                op: op.clone(),
            };
            self.apply(&w);
            ctx.persist(w.clone());
            fresh.push(w);
            ops.push(op);
        }
        for p in (0..self.peers).filter(|&p| p != self.me && !fresh.is_empty()) {
            ctx.send(NodeId(p), Msg::Writes(fresh.clone()));
        }
        ctx.reply(
            req.id,
            Ok(ReplyOk {
                ops,
                meta: None,
                context: Json::Null,
            }),
        );
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Msg, Write>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Writes(writes) => {
                for w in writes {
                    if self.apply(&w) {
                        ctx.persist(w);
                    }
                }
            }
            Msg::Have(have) => {
                let missing: Vec<Write> = (self.log.iter().enumerate())
                    .flat_map(|(o, log)| log.range(have[o] + 1..).map(|(_, w)| w.clone()))
                    .collect();
                if !missing.is_empty() {
                    ctx.send(from, Msg::Writes(missing));
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Msg, Write>, _timer: TimerId) {
        for p in (0..self.peers).filter(|&p| p != self.me) {
            ctx.send(NodeId(p), Msg::Have(self.have()));
        }
        ctx.set_timer(ANTI_ENTROPY, ANTI_ENTROPY_NS);
    }
}

/// A cluster of `nodes` leaders of my store.
#[derive(Debug, Clone)]
pub struct MyStore {
    nodes: usize,
    bug: bool,
}

impl MyStore {
    /// A correct cluster of `nodes` nodes.
    pub fn new(nodes: usize) -> MyStore {
        MyStore { nodes, bug: false }
    }

    /// The same cluster with the planted anti-entropy bug on or off.
    pub fn with_bug(self, bug: bool) -> MyStore {
        MyStore { bug, ..self }
    }
}

impl Cluster for MyStore {
    type Node = StoreNode;

    fn specs(&self) -> Vec<NodeSpec> {
        let spec = |i: usize| NodeSpec {
            name: format!("n{}", i + 1),
            role: Role::Leader,
        };
        (0..self.nodes).map(spec).collect()
    }

    fn build(&self, id: NodeId, records: &[Write]) -> StoreNode {
        let mut node = StoreNode {
            me: id.0,
            peers: self.nodes,
            bug: self.bug,
            lamport: 0,
            next_seq: 1,
            log: vec![BTreeMap::new(); self.nodes],
            keys: BTreeMap::new(),
        };
        for w in records {
            node.apply(w);
        }
        node
    }

    fn guarantees(&self) -> Vec<Guarantee> {
        vec![Guarantee::Convergence, Guarantee::NoLostWrites]
    }
}
