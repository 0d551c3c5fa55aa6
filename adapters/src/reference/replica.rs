//! The reference node: one leader or follower of the multi-leader store, as a
//! sans-IO state machine. Client transactions are in `txn.rs`, quorum rounds
//! in `quorum_round.rs`; this file owns replication, anti-entropy, the
//! causal buffer, forwarding and durability.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ladon_checker::history::{Key, Mop};
use rand::Rng;
use serde_json::Value as Json;

use super::bugs::{Bug, STORM_HOPS};
use super::causal::ClientContext;
use super::config::{Config, Strategy};
use super::log::{Body, Entry, Marks, Pid, ReplicationLog};
use super::store::{Effect, MergeRules, Store};
use super::strategy::hlc::Hlc;
use super::strategy::quorum::{Locks, Proposal};
use super::topology;
use crate::node::{ClientError, Ctx, Node, NodeId, ReplyOk, ReqId, Request, TimerId};

pub(super) const ANTI_ENTROPY: TimerId = TimerId(1);
pub(super) const PING: TimerId = TimerId(2);
/// Timers of individual requests are `REQUEST_TIMERS + local id`.
pub(super) const REQUEST_TIMERS: u64 = 1_000;
/// Entries resent per anti-entropy reply.
const RESEND_LIMIT: usize = 256;
/// A leader is reachable if heard from within this many ping periods.
const REACHABLE_ROUNDS: u64 = 4;

/// Messages between nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// Replication (and anti-entropy resends).
    Entries(Vec<Entry>),
    /// "Here is what I have": a peer resends what these marks lack. From a
    /// follower it also (re)subscribes it to its leader.
    Marks(Marks),
    /// Reachability probe between leaders (avoidance, quorum).
    Ping,
    /// A client transaction passed to another node (follower → leader,
    /// avoidance → home), answered with `ForwardReply`.
    Forward {
        fid: u64,
        ops: Vec<Mop>,
        context: Json,
    },
    ForwardReply {
        fid: u64,
        result: Result<ReplyOk, ClientError>,
    },
    Propose {
        pid: Pid,
        bases: Vec<(Key, u64)>,
    },
    Vote {
        pid: Pid,
        yes: bool,
    },
    /// Quorum read: "do you hold no lock on these keys and no newer version?"
    ReadProbe {
        rid: u64,
        versions: Vec<(Key, u64)>,
    },
    ReadProbeReply {
        rid: u64,
        fresh: bool,
    },
}

/// Durable records: the log, quorum locks, proposals this node started.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Entry(Entry),
    Lock { pid: Pid, keys: Vec<Key> },
    Proposed { pid: Pid },
}

/// Where an answer goes: a client of this node, or a peer that forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyTo {
    Client(ReqId),
    Peer(NodeId, u64),
}

/// A transaction waiting for its client's causal past to arrive.
#[derive(Debug, Clone)]
pub(super) struct Waiting {
    pub reply_to: ReplyTo,
    pub ops: Vec<Mop>,
    pub context: ClientContext,
}

pub struct RefNode {
    pub(super) cfg: Arc<Config>,
    pub(super) id: NodeId,
    pub(super) log: ReplicationLog,
    pub(super) store: Store,
    pub(super) hlc: Hlc,
    /// Followers to push entries to (volatile: a restarted leader forgets).
    pub(super) subscribers: BTreeSet<NodeId>,
    pub(super) waiting: BTreeMap<u64, Waiting>,
    /// Forwarded transactions: local id → whom to answer.
    pub(super) forwarded: BTreeMap<u64, ReplyTo>,
    /// Forwarded requests received (executed or under way): dedupe.
    pub(super) served: BTreeSet<(NodeId, u64)>,
    pub(super) proposals: BTreeMap<u64, Proposal>,
    pub(super) locks: Locks,
    /// Quorum reads waiting for their majority (volatile).
    pub(super) reads: BTreeMap<u64, super::quorum_read::PendingRead>,
    /// Own proposals found undecided in the records after a restart.
    pub(super) undecided: BTreeSet<Pid>,
    /// Quorum proposals whose decision this node applied.
    pub(super) decided: BTreeSet<Pid>,
    /// Quorum proposal counter (continues after a restart from the records).
    pub(super) next_local: u64,
    /// Ids of forwarded and waiting transactions: drawn at random per
    /// incarnation, so a reply to a forward sent before a crash can never
    /// answer a transaction of the restarted node.
    pub(super) next_fid: u64,
    pub(super) round: u64,
    pub(super) heard: BTreeMap<NodeId, u64>,
}

pub type Cx<'a> = Ctx<'a, Msg, Record>;

/// A definite refusal: the transaction certainly did not happen.
pub(super) fn refusal(reason: impl Into<String>) -> ClientError {
    ClientError {
        definite: true,
        reason: reason.into(),
    }
}

impl RefNode {
    /// Builds a node from its durable records (empty on first start).
    pub fn new(cfg: Arc<Config>, id: NodeId, records: &[Record]) -> RefNode {
        let mut node = RefNode {
            cfg,
            id,
            log: ReplicationLog::default(),
            store: Store::default(),
            hlc: Hlc::default(),
            subscribers: BTreeSet::new(),
            waiting: BTreeMap::new(),
            forwarded: BTreeMap::new(),
            served: BTreeSet::new(),
            proposals: BTreeMap::new(),
            locks: Locks::default(),
            reads: BTreeMap::new(),
            undecided: BTreeSet::new(),
            decided: BTreeSet::new(),
            next_local: 0,
            next_fid: 0,
            round: 0,
            heard: BTreeMap::new(),
        };
        for r in records {
            match r {
                Record::Entry(e) => {
                    node.merge_effects(e);
                    if e.origin == id {
                        node.log.own_seq = node.log.own_seq.max(e.seq);
                        node.served.extend(e.request);
                    }
                    node.log.record(e.clone());
                }
                Record::Lock { pid, keys } => {
                    node.locks.try_lock(*pid, keys);
                }
                Record::Proposed { pid } => {
                    node.undecided.insert(*pid);
                    node.next_local = node.next_local.max(pid.n + 1);
                }
            }
        }
        node
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn log(&self) -> &ReplicationLog {
        &self.log
    }

    pub(super) fn is_leader(&self) -> bool {
        self.cfg.is_leader(self.id)
    }

    pub(super) fn has_bug(&self, bug: Bug) -> bool {
        self.cfg.bug == Some(bug)
    }

    pub(super) fn persist(&self, ctx: &mut Cx, record: Record) {
        if !self.has_bug(Bug::ForgetOnCrash) {
            ctx.persist(record);
        }
    }

    pub(super) fn proposal_id(&mut self) -> u64 {
        self.next_local += 1;
        self.next_local
    }

    pub(super) fn request_id(&mut self) -> u64 {
        self.next_fid += 1;
        self.next_fid
    }

    pub(super) fn reachable(&self, peer: NodeId) -> bool {
        peer == self.id
            || self
                .heard
                .get(&peer)
                .is_some_and(|r| self.round <= r + REACHABLE_ROUNDS)
    }

    /// The leaders, when a majority of them is reachable; else the refusal
    /// a quorum operation answers with.
    pub(super) fn quorum_leaders(&self) -> Result<Vec<NodeId>, ClientError> {
        let leaders = self.cfg.leader_ids();
        let up = leaders.iter().filter(|l| self.reachable(**l)).count();
        if up < self.cfg.majority() {
            return Err(refusal(format!(
                "no quorum: {up} of {} leaders reachable",
                leaders.len()
            )));
        }
        Ok(leaders)
    }

    /// Sends `msg()` to every leader but this node, in `leaders` order.
    pub(super) fn send_to_other_leaders(
        &self,
        ctx: &mut Cx,
        leaders: &[NodeId],
        msg: impl Fn() -> Msg,
    ) {
        for &l in leaders {
            if l != self.id {
                ctx.send(l, msg());
            }
        }
    }

    pub(super) fn answer(
        &mut self,
        ctx: &mut Cx,
        to: ReplyTo,
        result: Result<ReplyOk, ClientError>,
    ) {
        match to {
            ReplyTo::Client(req) => ctx.reply(req, result),
            ReplyTo::Peer(peer, fid) => ctx.send(peer, Msg::ForwardReply { fid, result }),
        }
    }

    /// Applies an entry's effects to the store (no bookkeeping).
    fn merge_effects(&mut self, entry: &Entry) {
        let rules = MergeRules {
            local: self.id,
            prefer_own_on_tie: self.has_bug(Bug::TiebreakSelf),
            same_txn: false,
        };
        for effect in entry.effects() {
            self.store.apply(effect, rules);
            match effect {
                Effect::Assign { version, .. } | Effect::ListInsert { version, .. } => {
                    self.hlc.observe(version.ts)
                }
                _ => {}
            }
        }
        if let Body::Decision { pid, .. } = &entry.body {
            self.locks.release(*pid);
            self.decided.insert(*pid);
            if pid.node == self.id {
                self.undecided.remove(pid);
            }
        }
    }

    /// Applies, records, persists and passes on an entry this node wrote.
    pub(super) fn commit_local(&mut self, ctx: &mut Cx, body: Body, for_req: ReplyTo) -> Entry {
        self.log.own_seq += 1;
        let mut deps = self.log.marks();
        deps.insert(self.id, self.log.own_seq - 1);
        let entry = Entry {
            origin: self.id,
            seq: self.log.own_seq,
            passed: BTreeSet::from([self.id]),
            deps,
            hops: 0,
            request: match for_req {
                ReplyTo::Peer(p, fid) => Some((p, fid)),
                ReplyTo::Client(_) => None,
            },
            body,
        };
        self.merge_effects(&entry);
        self.log.record(entry.clone());
        self.persist(ctx, Record::Entry(entry.clone()));
        self.pass_on(ctx, entry.clone(), true, None);
        self.after_apply(ctx);
        entry
    }

    /// Sends an applied entry on along the topology and to subscribed followers.
    fn pass_on(&mut self, ctx: &mut Cx, mut entry: Entry, local: bool, from: Option<NodeId>) {
        if !self.is_leader() {
            return;
        }
        entry.passed.insert(self.id);
        if self.has_bug(Bug::NoLoopGuard) {
            if entry.hops < STORM_HOPS {
                entry.hops += 1;
                for to in topology::neighbours(&self.cfg, self.id) {
                    if Some(to) != from {
                        ctx.send(to, Msg::Entries(vec![entry.clone()]));
                    }
                }
            }
        } else {
            for to in topology::next_hops(&self.cfg, self.id, local) {
                if !entry.passed.contains(&to) {
                    ctx.send(to, Msg::Entries(vec![entry.clone()]));
                }
            }
        }
        for f in self.subscribers.clone() {
            ctx.send(f, Msg::Entries(vec![entry.clone()]));
        }
    }

    /// A replicated entry arrives.
    fn receive(&mut self, ctx: &mut Cx, entry: Entry, from: NodeId) {
        let storm = self.has_bug(Bug::NoLoopGuard);
        if entry.origin == self.id && !storm {
            return; // own entries never loop back
        }
        if self.log.has(entry.origin, entry.seq) {
            let counters_only = entry
                .effects()
                .iter()
                .all(|e| matches!(e, Effect::CounterAdd { .. }));
            if storm || (self.has_bug(Bug::CounterReapply) && counters_only) {
                self.merge_effects(&entry);
            }
            if storm {
                self.pass_on(ctx, entry, false, Some(from));
            }
            return;
        }
        if self.cfg.buffers_causally() && !self.log.deliverable(&entry) {
            self.log.buffer(entry);
            return;
        }
        self.apply_remote(ctx, entry, from);
        while let Some(next) = self.log.take_ready() {
            if !self.log.has(next.origin, next.seq) {
                let via = *next.passed.iter().next_back().unwrap_or(&next.origin);
                self.apply_remote(ctx, next, via);
            }
        }
        self.after_apply(ctx);
    }

    fn apply_remote(&mut self, ctx: &mut Cx, entry: Entry, from: NodeId) {
        self.merge_effects(&entry);
        self.log.record(entry.clone());
        self.persist(ctx, Record::Entry(entry.clone()));
        self.pass_on(ctx, entry, false, Some(from));
    }

    /// Retries transactions whose causal past has now arrived.
    fn after_apply(&mut self, ctx: &mut Cx) {
        let ready: Vec<u64> = self
            .waiting
            .iter()
            .filter(|(_, w)| self.log.satisfies(&w.context.deps))
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            if let Some(w) = self.waiting.remove(&id) {
                ctx.cancel_timer(TimerId(REQUEST_TIMERS + id));
                self.execute(ctx, w.reply_to, w.ops, w.context);
            }
        }
    }

    fn anti_entropy(&mut self, ctx: &mut Cx) {
        let marks = self.log.marks();
        if self.is_leader() {
            if !self.has_bug(Bug::NoAntiEntropy) {
                for peer in topology::upstream(&self.cfg, self.id) {
                    ctx.send(peer, Msg::Marks(marks.clone()));
                }
            }
        } else {
            ctx.send(self.cfg.leader_of(self.id), Msg::Marks(marks));
        }
        if !self.is_leader() && self.has_bug(Bug::FollowerStaleForever) {
            return; // subscribed once at start, never again
        }
        ctx.set_timer(ANTI_ENTROPY, self.cfg.anti_entropy_ns);
    }

    fn on_marks(&mut self, ctx: &mut Cx, from: NodeId, marks: Marks) {
        if !self.is_leader() {
            return;
        }
        if !self.cfg.is_leader(from) {
            self.subscribers.insert(from);
        }
        let missing = self.log.missing_for(from, &marks, RESEND_LIMIT);
        if !missing.is_empty() {
            ctx.send(from, Msg::Entries(missing));
        }
    }

    fn on_forward_reply(&mut self, ctx: &mut Cx, fid: u64, result: Result<ReplyOk, ClientError>) {
        if let Some(to) = self.forwarded.remove(&fid) {
            ctx.cancel_timer(TimerId(REQUEST_TIMERS + fid));
            self.answer(ctx, to, result);
        }
    }

    pub(super) fn forward(
        &mut self,
        ctx: &mut Cx,
        to: NodeId,
        reply_to: ReplyTo,
        ops: Vec<Mop>,
        context: &ClientContext,
    ) {
        let fid = self.request_id();
        self.forwarded.insert(fid, reply_to);
        ctx.send(
            to,
            Msg::Forward {
                fid,
                ops,
                context: context.to_json(),
            },
        );
        ctx.set_timer(TimerId(REQUEST_TIMERS + fid), self.cfg.request_timeout_ns);
    }
}

impl Node for RefNode {
    type Msg = Msg;
    type Record = Record;

    fn on_start(&mut self, ctx: &mut Cx) {
        self.next_fid = (ctx.rng.random::<u64>() >> 4) | (1 << 40);
        ctx.log(format!(
            "start {}: {} ({} log entries)",
            self.cfg.name(self.id),
            self.cfg.describe(),
            self.log.len()
        ));
        // Subscribe (followers) or ask peers for what was missed while down.
        self.anti_entropy(ctx);
        if self.is_leader() && matches!(self.cfg.strategy, Strategy::Avoidance | Strategy::Quorum) {
            ctx.set_timer(PING, self.cfg.ping_ns);
        }
        for pid in std::mem::take(&mut self.undecided) {
            ctx.log(format!(
                "aborting proposal {}:{} left undecided by a crash",
                pid.node.0, pid.n
            ));
            self.commit_abort(ctx, pid, ReplyTo::Client(crate::node::ReqId(0)));
        }
    }

    fn on_request(&mut self, ctx: &mut Cx, req: Request) {
        let context = ClientContext::from_json(&req.context);
        self.submit(ctx, ReplyTo::Client(req.id), req.ops, context);
    }

    fn on_message(&mut self, ctx: &mut Cx, from: NodeId, msg: Msg) {
        if self.cfg.is_leader(from) {
            self.heard.insert(from, self.round);
        }
        match msg {
            Msg::Entries(entries) => {
                for e in entries {
                    self.receive(ctx, e, from);
                }
            }
            Msg::Marks(marks) => self.on_marks(ctx, from, marks),
            Msg::Ping => {}
            Msg::Forward { fid, ops, context } => {
                if !self.served.insert((from, fid)) {
                    return; // a duplicate: executed or under way already
                }
                let context = ClientContext::from_json(&context);
                self.submit(ctx, ReplyTo::Peer(from, fid), ops, context);
            }
            Msg::ForwardReply { fid, result } => self.on_forward_reply(ctx, fid, result),
            Msg::Propose { pid, bases } => self.on_propose(ctx, from, pid, bases),
            Msg::Vote { pid, yes } => self.on_vote(ctx, from, pid, yes),
            Msg::ReadProbe { rid, versions } => self.on_read_probe(ctx, from, rid, versions),
            Msg::ReadProbeReply { rid, fresh } => self.on_read_probe_reply(ctx, rid, fresh),
        }
    }

    fn on_timer(&mut self, ctx: &mut Cx, timer: TimerId) {
        match timer {
            ANTI_ENTROPY => self.anti_entropy(ctx),
            PING => {
                self.round += 1;
                self.send_to_other_leaders(ctx, &self.cfg.leader_ids(), || Msg::Ping);
                ctx.set_timer(PING, self.cfg.ping_ns);
            }
            TimerId(t) if t > REQUEST_TIMERS => {
                let id = t - REQUEST_TIMERS;
                let late = ClientError {
                    definite: false,
                    reason: "timeout".into(),
                };
                if let Some(to) = self.forwarded.remove(&id) {
                    self.answer(ctx, to, Err(late));
                } else if let Some(w) = self.waiting.remove(&id) {
                    // Nothing was applied: the transaction certainly did not happen.
                    self.answer(ctx, w.reply_to, Err(refusal("causal-wait-timeout")));
                } else if !self.quorum_read_timeout(ctx, id) {
                    self.quorum_timeout(ctx, id);
                }
            }
            TimerId(_) => {}
        }
    }

    fn msg_writes(msg: &Msg) -> Vec<(Key, i64)> {
        match msg {
            Msg::Entries(entries) => entries
                .iter()
                .flat_map(|e| e.effects().iter().filter_map(Effect::written))
                .collect(),
            _ => Vec::new(),
        }
    }
}
