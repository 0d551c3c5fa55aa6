//! Reads the history cannot show. An `info` completion carries no observed
//! values, yet the transaction may have taken effect, reads included: a read
//! of key `k` in an indeterminate transaction may have observed any write to
//! `k`, making it (and everything after it) causally later than that write.
//! For a register write `w` missing from a final state that holds `s`, the
//! checker then cannot show `w ∥ s` when such a read comes before `s` (in
//! `s`'s own transaction, or on a path to it) and not after `w`: `s` may have
//! superseded `w` (docs/checker.md, Interpretations).

use std::collections::BTreeMap;

use crate::causality::Causality;
use crate::history::MopFn;
use crate::model::{History, KeyId, MopId, OpId, Outcome};
use rustc_hash::{FxHashMap, FxHashSet};

/// Per register key, the unknown reads: (op, mop) of each read in an `info`
/// transaction that no earlier write of the same transaction to that key
/// precedes (a read after the transaction's own write sees that write).
#[derive(Clone)]
pub struct UnknownReads<'a> {
    h: &'a History,
    c: &'a Causality,
    by_key: BTreeMap<KeyId, Vec<(OpId, MopId)>>,
    /// Memo of "op `a` happens before op `b`" searches.
    reach: FxHashMap<(OpId, OpId), bool>,
}

impl<'a> UnknownReads<'a> {
    pub fn new(h: &'a History, c: &'a Causality) -> Self {
        let mut by_key: BTreeMap<KeyId, Vec<(OpId, MopId)>> = BTreeMap::new();
        let mut written: FxHashSet<KeyId> = FxHashSet::default();
        for (o, op) in h.ops.iter_enumerated() {
            if op.outcome != Outcome::Info || !op.is_vertex() {
                continue;
            }
            written.clear();
            for mi in op.mops() {
                let m = &h.mops[mi];
                if m.f == MopFn::Read {
                    if !written.contains(&m.key) {
                        by_key.entry(m.key).or_default().push((o, MopId::new(mi)));
                    }
                } else {
                    written.insert(m.key);
                }
            }
        }
        UnknownReads {
            h,
            c,
            by_key,
            reach: FxHashMap::default(),
        }
    }

    /// Whether op `a` happens before op `b` (a path of edges; bounded search).
    fn before(&mut self, a: OpId, b: OpId) -> bool {
        if a == b {
            return false;
        }
        let c = self.c;
        *self.reach.entry((a, b)).or_insert_with(|| {
            let direct = c.direct_preds(b);
            c.reaches(a, b, &direct)
        })
    }

    /// Whether register write `s` may have superseded write `w` (same key)
    /// through a read the history does not show: some unknown read of the
    /// key in op `i` comes before `s` (earlier in `s`'s transaction, or
    /// `i →hb s`) while `i` is not `w`'s op and does not happen after it.
    /// Returns that op `i`.
    pub fn may_supersede(&mut self, w: MopId, s: MopId) -> Option<OpId> {
        let (mw, ms) = (&self.h.mops[w], &self.h.mops[s]);
        let (ow, os) = (mw.op, ms.op);
        let reads = self.by_key.get(&mw.key)?.clone();
        for (i, r) in reads {
            if i == ow {
                continue;
            }
            let before_s = if i == os { r < s } else { self.before(i, os) };
            if before_s && !self.before(i, ow) {
                return Some(i);
            }
        }
        None
    }
}
