//! A client transaction at a node: where it runs (here, the leader, the
//! key's home, after its causal past arrives) and running it: reads see the
//! transaction's own earlier writes, writes become the strategy's effects,
//! and the reply carries `meta` and the client's next context.

use std::collections::{BTreeMap, BTreeSet};

use ladon_checker::history::{Key, Mop, ReadValue};
use rand::Rng;
use serde_json::{json, Value as Json};

use super::causal::ClientContext;
use super::config::Strategy;
use super::log::Body;
use super::replica::{refusal, Cx, RefNode, ReplyTo, Waiting, REQUEST_TIMERS};
use super::store::{Effect, MergeRules, Store, Val, Vc, Version};
use super::strategy::{avoidance, lww, quorum, version_vector};
use crate::node::{ReplyOk, TimerId};

/// A transaction run against a scratch copy of the keys it touches.
pub(super) struct TxnRun {
    pub ops: Vec<Mop>,
    pub effects: Vec<Effect>,
    pub context: ClientContext,
    pub ts: u64,
    /// Timestamp of each register version read (last-write-wins strategies).
    pub read_ts: Vec<(Key, u64)>,
}

impl RefNode {
    /// Routes a transaction that reached this node.
    pub(super) fn submit(
        &mut self,
        ctx: &mut Cx,
        reply_to: ReplyTo,
        ops: Vec<Mop>,
        context: ClientContext,
    ) {
        let writes = ops.iter().any(Mop::is_write);
        if writes && !self.is_leader() {
            let leader = self.cfg.leader_of(self.id);
            self.forward(ctx, leader, reply_to, ops, &context);
            return;
        }
        if writes && self.cfg.strategy == Strategy::Avoidance {
            let homes: BTreeSet<_> = ops
                .iter()
                .filter(|m| m.is_write())
                .map(|m| avoidance::home_of(m.key(), self.cfg.leaders))
                .collect();
            let home = *homes.iter().next().expect("a write has a home");
            if homes.len() > 1 {
                let names: Vec<String> = homes.iter().map(|h| self.cfg.name(*h)).collect();
                let result = Err(refusal(format!(
                    "cross-home transaction: keys homed at {}",
                    names.join(", ")
                )));
                return self.answer(ctx, reply_to, result);
            }
            if home != self.id {
                if !self.reachable(home) {
                    let result = Err(refusal(format!(
                        "unavailable: home leader {} unreachable",
                        self.cfg.name(home)
                    )));
                    return self.answer(ctx, reply_to, result);
                }
                self.forward(ctx, home, reply_to, ops, &context);
                return;
            }
        }
        if self.cfg.buffers_causally() && !self.log.satisfies(&context.deps) {
            let id = self.request_id();
            self.waiting.insert(
                id,
                Waiting {
                    reply_to,
                    ops,
                    context,
                },
            );
            ctx.set_timer(TimerId(REQUEST_TIMERS + id), self.cfg.request_timeout_ns);
            return;
        }
        self.execute(ctx, reply_to, ops, context);
    }

    /// Runs a transaction here, now.
    pub(super) fn execute(
        &mut self,
        ctx: &mut Cx,
        reply_to: ReplyTo,
        ops: Vec<Mop>,
        context: ClientContext,
    ) {
        let writes = ops.iter().any(Mop::is_write);
        if writes && self.cfg.strategy == Strategy::Quorum {
            return self.start_proposal(ctx, reply_to, ops, context);
        }
        if !writes
            && !ops.is_empty()
            && self.cfg.strategy == Strategy::Quorum
            && self.cfg.bug != Some(super::bugs::Bug::LocalReads)
        {
            return self.start_quorum_read(ctx, reply_to, ops, context);
        }
        self.run_read_here(ctx, reply_to, ops, context);
    }

    /// Runs a transaction here, now, without a quorum round.
    pub(super) fn run_read_here(
        &mut self,
        ctx: &mut Cx,
        reply_to: ReplyTo,
        ops: Vec<Mop>,
        context: ClientContext,
    ) {
        let mut run = self.run_txn(ctx, &ops, context);
        let seq = if run.effects.is_empty() {
            None
        } else {
            Some(
                self.commit_local(
                    ctx,
                    Body::Writes(std::mem::take(&mut run.effects)),
                    reply_to,
                )
                .seq,
            )
        };
        let reply = self.reply_for(run, seq);
        self.answer(ctx, reply_to, Ok(reply));
    }

    pub(super) fn reply_for(&self, mut run: TxnRun, seq: Option<u64>) -> ReplyOk {
        let marks = self.log.marks();
        run.context.merge_deps(&marks);
        run.context.hlc = run.context.hlc.max(self.hlc.last());
        let mut meta = serde_json::Map::new();
        meta.insert("origin".into(), json!(self.cfg.name(self.id)));
        if let Some(seq) = seq {
            meta.insert("seq".into(), json!(seq));
            if run.ts > 0 {
                meta.insert("ts".into(), json!(run.ts));
            }
        }
        if self.cfg.strategy == Strategy::VersionVector && seq.is_some() {
            // The client clock the write carries: what it supersedes.
            let vc: serde_json::Map<String, Json> = run
                .context
                .vc
                .iter()
                .map(|(c, n)| (c.to_string(), json!(n)))
                .collect();
            meta.insert("client_vc".into(), Json::Object(vc));
        }
        let vv: serde_json::Map<String, Json> = marks
            .iter()
            .map(|(n, s)| (self.cfg.name(*n), json!(s)))
            .collect();
        meta.insert("vv".into(), Json::Object(vv));
        if !run.read_ts.is_empty() {
            // Keys may be integers or strings: a list of [key, ts] pairs.
            let reads: Vec<Json> = run.read_ts.iter().map(|(k, t)| json!([k, t])).collect();
            meta.insert("read_ts".into(), Json::Array(reads));
        }
        ReplyOk {
            ops: run.ops,
            meta: Some(Json::Object(meta)),
            context: run.context.to_json(),
        }
    }

    /// Reads and writes against a scratch copy of the touched keys.
    pub(super) fn run_txn(&mut self, ctx: &mut Cx, ops: &[Mop], mut cx: ClientContext) -> TxnRun {
        let strategy = self.cfg.strategy;
        let keys: BTreeSet<Key> = ops.iter().map(|m| m.key().clone()).collect();
        let mut scratch: Store = self.store.subset(&keys);
        let vv = strategy == Strategy::VersionVector;
        if vv {
            // The transaction is one vertex: everything it reads precedes its
            // writes, except a register read after the transaction's own
            // write of it, which sees just that write (below).
            let mut own = BTreeSet::new();
            for m in ops {
                match m {
                    Mop::Write(k, _) => {
                        own.insert(k);
                    }
                    Mop::Read(k, _) if !own.contains(k) => {
                        for o in scratch.read(k).vcs {
                            version_vector::merge_into(&mut cx.vc, &o);
                        }
                    }
                    _ => {}
                }
            }
        }
        let writes = ops.iter().any(Mop::is_write);
        let mut ts = 0;
        let mut dot = (0, 0);
        if writes {
            ts = match strategy {
                Strategy::Lww => lww::wall_stamp(ctx.now_ns, self.cfg.lww_resolution_ns),
                Strategy::Quorum => 0,
                _ => {
                    self.hlc.observe(cx.hlc);
                    self.hlc.tick(ctx.now_ns)
                }
            };
            if vv {
                let client = *cx
                    .client
                    .get_or_insert_with(|| ctx.rng.random::<u64>() >> 1);
                cx.writes += 1;
                cx.vc.insert(client, cx.writes);
                dot = (client, cx.writes);
            }
        }
        let version = Version {
            ts,
            rank: self.cfg.rank(self.id),
            origin: self.id,
            seq: self.log.own_seq + 1,
        };
        let txn_vc: Vc = if vv { cx.vc.clone() } else { Vc::new() };
        let rules = MergeRules {
            local: self.id,
            prefer_own_on_tie: false,
            same_txn: true,
        };
        let mut bases: BTreeMap<Key, u64> = BTreeMap::new();
        let mut own_writes: BTreeMap<Key, i64> = BTreeMap::new();
        let mut read_ts = Vec::new();
        let mut out = Vec::with_capacity(ops.len());
        let mut effects = Vec::new();
        for mop in ops {
            let key = mop.key().clone();
            if let Mop::Read(..) = mop {
                let seen = scratch.read(&key);
                if let Some(n) = seen.number {
                    cx.numbers.insert(key.clone(), n);
                }
                if let Some(t) = seen.ts {
                    cx.hlc = cx.hlc.max(t);
                    read_ts.push((key.clone(), t));
                }
                let value = match own_writes.get(&key) {
                    Some(v) if vv => ReadValue::Int(*v),
                    _ => seen.value,
                };
                out.push(Mop::Read(key, value));
                continue;
            }
            if let Mop::Write(_, v) = mop {
                own_writes.insert(key.clone(), *v);
            }
            let effect = match (strategy, mop) {
                (Strategy::Quorum, _) => {
                    let base = *bases.entry(key.clone()).or_insert_with(|| {
                        if quorum::base_from_context(mop) {
                            cx.numbers.get(&key).copied().unwrap_or(0)
                        } else {
                            self.store.number(&key)
                        }
                    });
                    if quorum::base_from_context(mop) {
                        cx.numbers.insert(key.clone(), base + 1);
                    }
                    Effect::Numbered {
                        value: Val::after(scratch.whole(&key), mop),
                        key,
                        number: base + 1,
                    }
                }
                (Strategy::Lww | Strategy::LwwHlc | Strategy::Avoidance, _) => Effect::Assign {
                    value: Val::after(scratch.whole(&key), mop),
                    key,
                    version,
                    vc: Vc::new(),
                },
                (Strategy::VersionVector, Mop::Write(_, v)) => Effect::Sibling {
                    key,
                    value: *v,
                    dot,
                    vc: txn_vc.clone(),
                },
                (_, Mop::Write(_, v)) => Effect::Assign {
                    key,
                    value: Val::Int(*v),
                    version,
                    vc: txn_vc.clone(),
                },
                (_, Mop::Append(_, e)) => Effect::ListInsert {
                    key,
                    elem: *e,
                    version,
                    vc: txn_vc.clone(),
                },
                (_, Mop::Add(_, e)) => Effect::SetAdd {
                    key,
                    elem: *e,
                    vc: txn_vc.clone(),
                },
                (_, Mop::Incr(_, d)) => Effect::CounterAdd { key, delta: *d },
                (_, Mop::Read(..)) => unreachable!("reads handled above"),
                (_, Mop::Delete(..)) => unreachable!("reference workloads issue no deletes"),
            };
            scratch.apply(&effect, rules);
            // Whole-value strategies replicate one value per key per
            // transaction: the last write's, which includes the earlier ones.
            let whole = matches!(effect, Effect::Assign { .. } | Effect::Numbered { .. });
            match effects
                .iter_mut()
                .find(|e: &&mut Effect| whole && e.key() == effect.key())
            {
                Some(prev) => *prev = effect,
                None => effects.push(effect),
            }
            out.push(mop.clone());
        }
        TxnRun {
            ops: out,
            effects,
            context: cx,
            ts,
            read_ts,
        }
    }
}
