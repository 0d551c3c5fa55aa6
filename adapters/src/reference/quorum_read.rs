//! Quorum reads (strategy `quorum`): a read answers from this node's copy
//! only after a majority of leaders confirmed, after the read began, that
//! none of them holds a lock on a read key or a newer version of it. A
//! write acknowledged before the read began holds a lock or its new version
//! at a majority, which meets the read's majority, so the read never returns
//! a value already overwritten (linearizable reads). The `local-reads` bug
//! skips the round.

use ladon_checker::history::{Key, Mop};

use super::causal::ClientContext;
use super::replica::{refusal, Cx, Msg, RefNode, ReplyTo, REQUEST_TIMERS};
use crate::node::{NodeId, TimerId};

/// A read waiting for its majority.
#[derive(Debug, Clone)]
pub struct PendingRead {
    pub reply_to: ReplyTo,
    pub ops: Vec<Mop>,
    pub context: ClientContext,
    pub yes: usize,
}

impl RefNode {
    pub(super) fn start_quorum_read(
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
        let mut keys: Vec<Key> = ops.iter().map(|m| m.key().clone()).collect();
        keys.sort();
        keys.dedup();
        if keys.iter().any(|k| self.locks.locked(k)) {
            return self.answer(
                ctx,
                reply_to,
                Err(refusal("conflict: a write of a read key is undecided here")),
            );
        }
        let versions: Vec<(Key, u64)> = keys
            .into_iter()
            .map(|k| {
                let n = self.store.number(&k);
                (k, n)
            })
            .collect();
        let rid = self.request_id();
        let yes = usize::from(self.is_leader());
        self.reads.insert(
            rid,
            PendingRead {
                reply_to,
                ops,
                context,
                yes,
            },
        );
        self.send_to_other_leaders(ctx, &leaders, || Msg::ReadProbe {
            rid,
            versions: versions.clone(),
        });
        ctx.set_timer(TimerId(REQUEST_TIMERS + rid), self.cfg.request_timeout_ns);
        self.read_tally(ctx, rid);
    }

    /// Whether this node confirms a reader's versions: nothing locked, and
    /// nothing newer here.
    pub(super) fn on_read_probe(
        &mut self,
        ctx: &mut Cx,
        from: NodeId,
        rid: u64,
        versions: Vec<(Key, u64)>,
    ) {
        let fresh = versions
            .iter()
            .all(|(k, n)| !self.locks.locked(k) && self.store.number(k) <= *n);
        ctx.send(from, Msg::ReadProbeReply { rid, fresh });
    }

    pub(super) fn on_read_probe_reply(&mut self, ctx: &mut Cx, rid: u64, fresh: bool) {
        if !fresh {
            if let Some(r) = self.reads.remove(&rid) {
                let e = refusal("stale: a newer or undecided write of a read key elsewhere");
                self.answer(ctx, r.reply_to, Err(e));
            }
            return;
        }
        if let Some(r) = self.reads.get_mut(&rid) {
            r.yes += 1;
        }
        self.read_tally(ctx, rid);
    }

    fn read_tally(&mut self, ctx: &mut Cx, rid: u64) {
        if self
            .reads
            .get(&rid)
            .is_some_and(|r| r.yes >= self.cfg.majority())
        {
            let r = self.reads.remove(&rid).expect("present");
            self.run_read_here(ctx, r.reply_to, r.ops, r.context);
        }
    }

    /// The read's timer: no majority answered, and a read changes nothing.
    pub(super) fn quorum_read_timeout(&mut self, ctx: &mut Cx, rid: u64) -> bool {
        match self.reads.remove(&rid) {
            Some(r) => {
                self.answer(ctx, r.reply_to, Err(refusal("no read quorum in time")));
                true
            }
            None => false,
        }
    }
}
