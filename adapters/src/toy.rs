//! The toy store: a small, correct multi-leader node used as `ladon run`'s
//! default until the reference adapter lands, and by the harness's own tests.
//!
//! Every node accepts writes. A transaction's writes become one log entry
//! `(origin, seq)` stamped with a Lamport clock; the entry is persisted, then
//! broadcast to every peer. Entries are applied once (dedupe by origin and
//! sequence). Anti-entropy repairs what the network lost: every 100 ms of its
//! clock a node sends its per-origin contiguous high-water marks to its peers,
//! who answer with the entries it lacks. Data types are merged by operation:
//! list elements ordered by `(lamport, origin, seq, index)`, sets as unions,
//! counters as sums, registers last-write-wins by `(lamport, origin)`.
//!
//! Promises `convergence` and `no-lost-writes`. Planted bugs for testing the
//! harness: `no-anti-entropy` (lost messages are never repaired) and
//! `forget-on-crash` (nothing is persisted).

use std::collections::BTreeMap;
use std::sync::Arc;

use ladon_checker::history::{Key, Mop, ReadValue};
use serde_json::json;

use crate::node::{Cluster, Ctx, Node, NodeId, NodeSpec, ReplyOk, Request, Role, TimerId};

/// A planted bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToyBug {
    NoAntiEntropy,
    ForgetOnCrash,
}

impl ToyBug {
    pub const NAMES: [&'static str; 2] = ["no-anti-entropy", "forget-on-crash"];

    pub fn parse(s: &str) -> Result<ToyBug, String> {
        match s {
            "no-anti-entropy" => Ok(ToyBug::NoAntiEntropy),
            "forget-on-crash" => Ok(ToyBug::ForgetOnCrash),
            other => Err(format!(
                "unknown toy bug {other:?}: expected one of {}",
                ToyBug::NAMES.join(", ")
            )),
        }
    }
}

/// One replicated transaction's writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub origin: u32,
    pub seq: u64,
    pub lamport: u64,
    pub writes: Vec<Mop>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToyMsg {
    /// Entries to apply.
    Entries(Vec<Arc<Entry>>),
    /// Anti-entropy: the sender's contiguous high-water mark per origin.
    Have(Vec<u64>),
}

#[derive(Debug, Clone, Default)]
enum KeyState {
    #[default]
    Empty,
    Register((u64, u32, usize), i64),
    Ordered(BTreeMap<(u64, u32, u64, usize), i64>),
    Counter(i64),
}

/// One toy replica.
#[derive(Debug)]
pub struct ToyNode {
    me: u32,
    n: usize,
    bug: Option<ToyBug>,
    lamport: u64,
    next_seq: u64,
    log: Vec<BTreeMap<u64, Arc<Entry>>>,
    contiguous: Vec<u64>,
    state: BTreeMap<Key, KeyState>,
}

const ANTI_ENTROPY: TimerId = TimerId(1);
const ANTI_ENTROPY_NS: u64 = 100_000_000;
const AE_BATCH: usize = 8192;

impl ToyNode {
    fn new(me: u32, n: usize, bug: Option<ToyBug>) -> Self {
        ToyNode {
            me,
            n,
            bug,
            lamport: 0,
            next_seq: 1,
            log: vec![BTreeMap::new(); n],
            contiguous: vec![0; n],
            state: BTreeMap::new(),
        }
    }

    /// Applies an entry unless already applied; returns whether it was new.
    fn apply(&mut self, e: &Arc<Entry>) -> bool {
        let o = e.origin as usize;
        if e.seq <= self.contiguous[o] || self.log[o].contains_key(&e.seq) {
            return false;
        }
        for (i, w) in e.writes.iter().enumerate() {
            self.apply_write(e, i, w);
        }
        self.record(e.clone());
        true
    }

    fn apply_write(&mut self, e: &Entry, i: usize, w: &Mop) {
        let st = self.state.entry(w.key().clone()).or_default();
        match w {
            Mop::Write(_, v) => {
                let stamp = (e.lamport, e.origin, i);
                match st {
                    KeyState::Register(s, _) if *s >= stamp => {}
                    _ => *st = KeyState::Register(stamp, *v),
                }
            }
            Mop::Append(_, v) | Mop::Add(_, v) => {
                if !matches!(st, KeyState::Ordered(_)) {
                    *st = KeyState::Ordered(BTreeMap::new());
                }
                if let KeyState::Ordered(m) = st {
                    m.insert((e.lamport, e.origin, e.seq, i), *v);
                }
            }
            Mop::Incr(_, d) => match st {
                KeyState::Counter(c) => *c += d,
                _ => *st = KeyState::Counter(*d),
            },
            Mop::Read(..) => {}
            // The toy's workloads issue no deletes (a history format item
            // for databases that have them).
            Mop::Delete(..) => unreachable!("toy workloads issue no deletes"),
        }
    }

    /// Marks an entry (whose writes are applied) as held in the log.
    fn record(&mut self, e: Arc<Entry>) {
        let o = e.origin as usize;
        self.lamport = self.lamport.max(e.lamport);
        if e.origin == self.me {
            self.next_seq = self.next_seq.max(e.seq + 1);
        }
        self.log[o].insert(e.seq, e);
        while self.log[o].contains_key(&(self.contiguous[o] + 1)) {
            self.contiguous[o] += 1;
        }
    }

    fn read(&self, key: &Key) -> ReadValue {
        match self.state.get(key) {
            None | Some(KeyState::Empty) => ReadValue::Null,
            Some(KeyState::Register(_, v)) => ReadValue::Int(*v),
            Some(KeyState::Counter(c)) => ReadValue::Int(*c),
            Some(KeyState::Ordered(m)) => ReadValue::List(m.values().copied().collect()),
        }
    }
}

impl Node for ToyNode {
    type Msg = ToyMsg;
    type Record = Arc<Entry>;

    fn on_start(&mut self, ctx: &mut Ctx<'_, ToyMsg, Arc<Entry>>) {
        let held: usize = self.log.iter().map(BTreeMap::len).sum();
        ctx.log(format!(
            "started with {held} entries from storage, lamport {}",
            self.lamport
        ));
        if self.bug != Some(ToyBug::NoAntiEntropy) {
            ctx.set_timer(ANTI_ENTROPY, ANTI_ENTROPY_NS);
        }
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_, ToyMsg, Arc<Entry>>, req: Request) {
        if let Some(l) = req.context.as_u64() {
            self.lamport = self.lamport.max(l);
        }
        let mut entry = req.ops.iter().any(Mop::is_write).then(|| {
            self.lamport += 1;
            Entry {
                origin: self.me,
                seq: self.next_seq,
                lamport: self.lamport,
                writes: Vec::new(),
            }
        });
        let mut ops = Vec::with_capacity(req.ops.len());
        for m in req.ops {
            match m {
                Mop::Read(k, _) => {
                    let v = self.read(&k);
                    ops.push(Mop::Read(k, v));
                }
                w => {
                    if let Some(e) = entry.as_mut() {
                        // Applied at once so later reads in the transaction see it.
                        let i = e.writes.len();
                        self.apply_write(e, i, &w);
                        e.writes.push(w.clone());
                    }
                    ops.push(w);
                }
            }
        }
        if let Some(e) = entry {
            // Shared, not copied: the log, storage and both peers hold one entry.
            let e = Arc::new(e);
            self.record(e.clone());
            if self.bug != Some(ToyBug::ForgetOnCrash) {
                ctx.persist(e.clone());
            }
            for p in 0..self.n {
                if p != self.me as usize {
                    ctx.send(NodeId(p), ToyMsg::Entries(vec![e.clone()]));
                }
            }
        }
        ctx.reply(
            req.id,
            Ok(ReplyOk {
                ops,
                meta: Some(json!({ "lamport": self.lamport })),
                context: json!(self.lamport),
            }),
        );
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, ToyMsg, Arc<Entry>>, from: NodeId, msg: ToyMsg) {
        match msg {
            ToyMsg::Entries(es) => {
                for e in es {
                    if self.apply(&e) && self.bug != Some(ToyBug::ForgetOnCrash) {
                        ctx.persist(e);
                    }
                }
            }
            ToyMsg::Have(hwm) => {
                let mut missing = Vec::new();
                'outer: for (o, log) in self.log.iter().enumerate() {
                    let have = hwm.get(o).copied().unwrap_or(0);
                    for e in log.range(have + 1..).map(|(_, e)| e) {
                        if missing.len() >= AE_BATCH {
                            break 'outer;
                        }
                        missing.push(e.clone());
                    }
                }
                if !missing.is_empty() {
                    ctx.send(from, ToyMsg::Entries(missing));
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, ToyMsg, Arc<Entry>>, timer: TimerId) {
        if timer == ANTI_ENTROPY {
            for p in 0..self.n {
                if p != self.me as usize {
                    ctx.send(NodeId(p), ToyMsg::Have(self.contiguous.clone()));
                }
            }
            ctx.set_timer(ANTI_ENTROPY, ANTI_ENTROPY_NS);
        }
    }

    fn msg_writes(msg: &ToyMsg) -> Vec<(Key, i64)> {
        match msg {
            ToyMsg::Entries(es) => es
                .iter()
                .flat_map(|e| {
                    e.writes
                        .iter()
                        .filter_map(|w| Some((w.key().clone(), w.write_arg()?)))
                })
                .collect(),
            ToyMsg::Have(_) => Vec::new(),
        }
    }
}

/// A cluster of `n` toy nodes, all leaders.
#[derive(Debug, Clone)]
pub struct ToyCluster {
    pub nodes: usize,
    pub bug: Option<ToyBug>,
}

impl ToyCluster {
    pub fn new(nodes: usize, bug: Option<ToyBug>) -> Self {
        ToyCluster { nodes, bug }
    }
}

impl Cluster for ToyCluster {
    type Node = ToyNode;

    fn specs(&self) -> Vec<NodeSpec> {
        (0..self.nodes)
            .map(|i| NodeSpec {
                name: format!("n{}", i + 1),
                role: Role::Leader,
            })
            .collect()
    }

    fn build(&self, id: NodeId, records: &[Arc<Entry>]) -> ToyNode {
        let mut node = ToyNode::new(id.0 as u32, self.nodes, self.bug);
        for e in records {
            node.apply(e);
        }
        node
    }

    fn guarantees(&self) -> Vec<String> {
        vec!["convergence".into(), "no-lost-writes".into()]
    }
}
