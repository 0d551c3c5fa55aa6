//! Quorum rounds (see `strategy/quorum.rs` for the rule): the coordinator's
//! proposal, the other leaders' votes, and the decision entry.

use ladon_checker::history::Key;

use super::causal::ClientContext;
use super::log::{Body, Pid};
use super::replica::{refusal, Cx, Msg, Record, RefNode, ReplyTo, REQUEST_TIMERS};
use super::strategy::quorum::{self, Proposal, Tally};
use crate::node::{NodeId, TimerId};
use ladon_checker::history::Mop;

impl RefNode {
    pub(super) fn start_proposal(
        &mut self,
        ctx: &mut Cx,
        reply_to: ReplyTo,
        ops: Vec<Mop>,
        context: ClientContext,
    ) {
        let leaders = match self.quorum_leaders() {
            Ok(leaders) => leaders,
            Err(e) => return self.answer(ctx, reply_to, Err(e)),
        };
        let mut run = self.run_txn(ctx, &ops, context);
        let mut bases = quorum::bases(&run.effects);
        bases.dedup_by(|a, b| a.0 == b.0);
        // Keys the transaction only reads are locked at the version read
        // too, so those reads are confirmed by the same majority
        // (linearizable reads inside write transactions).
        for m in ops.iter().filter(|m| !m.is_write()) {
            if !bases.iter().any(|(k, _)| k == m.key()) {
                bases.push((m.key().clone(), self.store.number(m.key())));
            }
        }
        if let Some((k, b)) = bases.iter().find(|(k, b)| self.store.number(k) != *b) {
            let e = refusal(format!(
                "conflict: key {k} is at version {}, write based on {b}",
                self.store.number(k)
            ));
            return self.answer(ctx, reply_to, Err(e));
        }
        let keys: Vec<Key> = bases.iter().map(|(k, _)| k.clone()).collect();
        let n = self.proposal_id();
        let pid = Pid { node: self.id, n };
        if !self.locks.try_lock(pid, &keys) {
            return self.answer(
                ctx,
                reply_to,
                Err(refusal("conflict: key locked by a concurrent write")),
            );
        }
        self.persist(ctx, Record::Proposed { pid });
        self.persist(ctx, Record::Lock { pid, keys });
        let effects = std::mem::take(&mut run.effects);
        let reply = self.reply_for(run, None);
        let proposal = Proposal {
            reply_to,
            effects,
            reply,
            yes: [self.id].into(),
            no: Default::default(),
            timer: n,
        };
        self.proposals.insert(n, proposal);
        self.send_to_other_leaders(ctx, &leaders, || Msg::Propose {
            pid,
            bases: bases.clone(),
        });
        ctx.set_timer(TimerId(REQUEST_TIMERS + n), self.cfg.request_timeout_ns);
        self.tally(ctx, n);
    }

    pub(super) fn on_propose(
        &mut self,
        ctx: &mut Cx,
        from: NodeId,
        pid: Pid,
        bases: Vec<(Key, u64)>,
    ) {
        let keys: Vec<Key> = bases.iter().map(|(k, _)| k.clone()).collect();
        let yes = !self.decided.contains(&pid)
            && bases.iter().all(|(k, b)| self.store.number(k) == *b)
            && self.locks.try_lock(pid, &keys);
        if yes {
            self.persist(ctx, Record::Lock { pid, keys });
        }
        ctx.send(from, Msg::Vote { pid, yes });
    }

    pub(super) fn on_vote(&mut self, ctx: &mut Cx, from: NodeId, pid: Pid, yes: bool) {
        if pid.node != self.id {
            return;
        }
        if let Some(p) = self.proposals.get_mut(&pid.n) {
            if yes {
                p.yes.insert(from);
            } else {
                p.no.insert(from);
            }
            self.tally(ctx, pid.n);
        }
    }

    fn tally(&mut self, ctx: &mut Cx, n: u64) {
        let Some(p) = self.proposals.get(&n) else {
            return;
        };
        match p.tally(self.cfg.leaders, self.cfg.majority()) {
            Tally::Undecided => {}
            Tally::Commit => {
                let mut p = self.proposals.remove(&n).expect("present");
                ctx.cancel_timer(TimerId(REQUEST_TIMERS + p.timer));
                let pid = Pid { node: self.id, n };
                let effects = std::mem::take(&mut p.effects);
                let entry = self.commit_local(
                    ctx,
                    Body::Decision {
                        pid,
                        commit: true,
                        effects,
                    },
                    p.reply_to,
                );
                let mut reply = p.reply;
                if let Some(serde_json::Value::Object(meta)) = reply.meta.as_mut() {
                    meta.insert("seq".into(), entry.seq.into());
                }
                self.answer(ctx, p.reply_to, Ok(reply));
            }
            Tally::Abort => self.abort(ctx, n, "conflict: a majority of leaders voted no"),
        }
    }

    /// Writes (and passes on) the decision that proposal `pid` is aborted.
    pub(super) fn commit_abort(&mut self, ctx: &mut Cx, pid: Pid, for_req: ReplyTo) {
        self.commit_local(
            ctx,
            Body::Decision {
                pid,
                commit: false,
                effects: vec![],
            },
            for_req,
        );
    }

    fn abort(&mut self, ctx: &mut Cx, n: u64, why: &str) {
        if let Some(p) = self.proposals.remove(&n) {
            ctx.cancel_timer(TimerId(REQUEST_TIMERS + p.timer));
            self.commit_abort(ctx, Pid { node: self.id, n }, p.reply_to);
            self.answer(ctx, p.reply_to, Err(refusal(why)));
        }
    }

    pub(super) fn quorum_timeout(&mut self, ctx: &mut Cx, n: u64) {
        self.abort(ctx, n, "no quorum: votes timed out");
    }
}
