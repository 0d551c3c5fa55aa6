//! A tiny deterministic driver: messages wait in a FIFO queue until a test
//! delivers them; cut links drop them; timers fire only when a test says so.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ladon_checker::history::{Key, Mop, ReadValue};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value as Json;

use crate::node::{
    ClientError, Cluster, Command, Ctx, Node, NodeId, ReplyOk, ReqId, Request, TimerId,
};
use crate::reference::replica::{Msg, Record, RefNode, ANTI_ENTROPY, PING};
use crate::reference::{Config, ReferenceCluster};

pub const SECOND: u64 = 1_000_000_000;
/// True time starts somewhere realistic (2026), so clocks can skew backwards.
pub const EPOCH: u64 = 1_790_000_000 * SECOND;

pub struct Driver {
    pub cluster: ReferenceCluster,
    pub nodes: Vec<Option<RefNode>>,
    pub records: Vec<Vec<Record>>,
    pub queue: VecDeque<(NodeId, NodeId, Msg)>,
    pub replies: BTreeMap<ReqId, Result<ReplyOk, ClientError>>,
    pub now: u64,
    pub skew: Vec<i64>,
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub sent: usize,
    pub dropped: usize,
    pub timers: Vec<BTreeSet<TimerId>>,
    rng: ChaCha8Rng,
    next_req: u64,
}

pub fn n(i: usize) -> NodeId {
    NodeId(i)
}

pub fn k(s: &str) -> Key {
    Key::Str(s.into())
}

impl Driver {
    pub fn new(cfg: Config) -> Driver {
        let cluster = ReferenceCluster::new(cfg).expect("valid config");
        let count = cluster.specs().len();
        let mut d = Driver {
            nodes: (0..count)
                .map(|i| Some(cluster.build(NodeId(i), &[])))
                .collect(),
            cluster,
            records: vec![Vec::new(); count],
            queue: VecDeque::new(),
            replies: BTreeMap::new(),
            now: EPOCH,
            skew: vec![0; count],
            cut: BTreeSet::new(),
            sent: 0,
            dropped: 0,
            timers: vec![BTreeSet::new(); count],
            rng: ChaCha8Rng::seed_from_u64(7),
            next_req: 0,
        };
        for i in 0..count {
            d.with(NodeId(i), |node, ctx| node.on_start(ctx));
        }
        // Start-up subscriptions and marks; tests count from a quiet cluster.
        d.deliver_all();
        d.sent = 0;
        d
    }

    pub fn with(&mut self, id: NodeId, f: impl FnOnce(&mut RefNode, &mut Ctx<'_, Msg, Record>)) {
        let Some(node) = self.nodes[id.0].as_mut() else {
            return;
        };
        let mut out = Vec::new();
        let mut ctx = Ctx {
            id,
            now_ns: (self.now as i64 + self.skew[id.0]) as u64,
            rng: &mut self.rng,
            out: &mut out,
        };
        f(node, &mut ctx);
        for c in out {
            match c {
                Command::Send { to, msg } => {
                    self.sent += 1;
                    self.queue.push_back((id, to, msg));
                }
                Command::Reply { req, result } => {
                    self.replies.insert(req, result);
                }
                Command::SetTimer { id: t, .. } => {
                    self.timers[id.0].insert(t);
                }
                Command::CancelTimer { id: t } => {
                    self.timers[id.0].remove(&t);
                }
                Command::Persist(r) => self.records[id.0].push(r),
                Command::Log(_) => {}
            }
        }
    }

    pub fn request(&mut self, node: NodeId, ops: Vec<Mop>, context: Json) -> ReqId {
        self.next_req += 1;
        let id = ReqId(self.next_req);
        self.now += 1_000_000;
        self.with(node, |n, ctx| {
            n.on_request(ctx, Request { id, ops, context })
        });
        id
    }

    /// Submits and delivers everything; the reply must exist.
    pub fn txn(
        &mut self,
        node: NodeId,
        ops: Vec<Mop>,
        context: Json,
    ) -> Result<ReplyOk, ClientError> {
        let id = self.request(node, ops, context);
        self.deliver_all();
        self.replies
            .remove(&id)
            .expect("the transaction was answered")
    }

    pub fn read(&mut self, node: NodeId, key: &str) -> ReadValue {
        match self.txn(node, vec![Mop::Read(k(key), ReadValue::Null)], Json::Null) {
            Ok(r) => match &r.ops[0] {
                Mop::Read(_, v) => v.clone(),
                _ => unreachable!(),
            },
            Err(e) => panic!("read at {node} failed: {e:?}"),
        }
    }

    /// Delivers one queued message (dropping it if its link is cut).
    pub fn deliver_one(&mut self) -> bool {
        let Some((from, to, msg)) = self.queue.pop_front() else {
            return false;
        };
        if self.cut.contains(&(from, to)) || self.nodes[to.0].is_none() {
            self.dropped += 1;
        } else {
            self.with(to, |node, ctx| node.on_message(ctx, from, msg));
        }
        true
    }

    pub fn deliver_all(&mut self) {
        let mut budget = 100_000;
        while self.deliver_one() {
            budget -= 1;
            assert!(budget > 0, "message storm: more than 100000 deliveries");
        }
    }

    /// Takes the queue out (to reorder or hold it).
    pub fn hold(&mut self) -> Vec<(NodeId, NodeId, Msg)> {
        self.queue.drain(..).collect()
    }

    pub fn isolate(&mut self, a: NodeId) {
        for b in 0..self.nodes.len() {
            self.cut.insert((a, NodeId(b)));
            self.cut.insert((NodeId(b), a));
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn fire(&mut self, id: NodeId, t: TimerId) {
        if self.timers[id.0].remove(&t) {
            self.now += 1_000_000;
            self.with(id, |node, ctx| node.on_timer(ctx, t));
        }
    }

    /// One anti-entropy period everywhere, then quiet.
    pub fn anti_entropy(&mut self) {
        for i in 0..self.nodes.len() {
            self.fire(NodeId(i), ANTI_ENTROPY);
        }
        self.deliver_all();
    }

    /// One ping period everywhere (reachability for avoidance and quorum).
    pub fn ping(&mut self) {
        for i in 0..self.nodes.len() {
            self.fire(NodeId(i), PING);
        }
        self.deliver_all();
    }

    pub fn crash(&mut self, id: NodeId) {
        self.nodes[id.0] = None;
        self.timers[id.0].clear();
    }

    pub fn restart(&mut self, id: NodeId) {
        self.nodes[id.0] = Some(self.cluster.build(id, &self.records[id.0]));
        self.with(id, |node, ctx| node.on_start(ctx));
    }

    pub fn node(&self, id: NodeId) -> &RefNode {
        self.nodes[id.0].as_ref().expect("node is up")
    }
}

pub fn append(key: &str, e: i64) -> Vec<Mop> {
    vec![Mop::Append(k(key), e)]
}

pub fn write(key: &str, v: i64) -> Vec<Mop> {
    vec![Mop::Write(k(key), v)]
}

pub fn list(v: &[i64]) -> ReadValue {
    ReadValue::List(v.to_vec())
}
