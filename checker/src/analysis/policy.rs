//! The resolution policy the register conflicts fit ("last-write-wins by
//! timestamp, ties to the higher node id", "siblings", ...).

use serde_json::{json, Value as Json};

use crate::explain::{secs, Explain};
use crate::ids::{KeyId, MopId};

/// What the register conflicts say about the resolution policy.
#[derive(Default)]
pub struct Policy {
    lww: u64,
    pub siblings: u64,
    with_ts: u64,
    greatest_ts: u64,
    lower_ts: u64,
    ties: u64,
    ties_higher_node: u64,
    ties_lower_node: u64,
    winners: Winners,
}

/// The value a plain read returns of a key kept as siblings (its
/// "winner", from the final reads' `meta.winners`), against real time.
#[derive(Default)]
struct Winners {
    /// Sibling keys whose final reads name a winner.
    keys: u64,
    /// ... the same one on every node that names one.
    same_everywhere: u64,
    /// ... and another sibling's write began after the winner's write was
    /// acknowledged: the later write is not the one a plain read returns.
    not_latest: u64,
    /// ... and the winner's write began after every other sibling's
    /// write was acknowledged.
    latest: u64,
    examples: Vec<String>,
}

/// Examples kept of a winner that is not the latest write.
const WINNER_EXAMPLES: usize = 5;

impl Policy {
    /// Adds `later`'s tallies (of keys after this one's) as if its keys
    /// had been seen here one by one (examples kept up to the cap, in
    /// order).
    pub fn merge(&mut self, later: Policy) {
        self.lww += later.lww;
        self.siblings += later.siblings;
        self.with_ts += later.with_ts;
        self.greatest_ts += later.greatest_ts;
        self.lower_ts += later.lower_ts;
        self.ties += later.ties;
        self.ties_higher_node += later.ties_higher_node;
        self.ties_lower_node += later.ties_lower_node;
        let (w, l) = (&mut self.winners, later.winners);
        w.keys += l.keys;
        w.same_everywhere += l.same_everywhere;
        w.not_latest += l.not_latest;
        w.latest += l.latest;
        let room = WINNER_EXAMPLES.saturating_sub(w.examples.len());
        w.examples.extend(l.examples.into_iter().take(room));
    }

    pub fn lww(&mut self, x: &Explain, winner: MopId, frontier: &[MopId]) {
        let h = x.h;
        self.lww += 1;
        let ts = |w: MopId| h.op_of(w).ts();
        let Some(wts) = ts(winner) else { return };
        let others: Vec<(i64, &str)> = frontier
            .iter()
            .filter(|&&o| o != winner)
            .filter_map(|&o| ts(o).map(|t| (t, h.node(h.op_of(o).node))))
            .collect();
        if others.is_empty() {
            return;
        }
        self.with_ts += 1;
        let max_other = others.iter().map(|o| o.0).max().expect("non-empty");
        if wts > max_other {
            self.greatest_ts += 1;
        } else if wts < max_other {
            self.lower_ts += 1;
        } else {
            self.ties += 1;
            let wn = h.node(h.op_of(winner).node);
            let tied: Vec<&str> = others.iter().filter(|o| o.0 == wts).map(|o| o.1).collect();
            if tied.iter().all(|n| wn > *n) {
                self.ties_higher_node += 1;
            } else if tied.iter().all(|n| wn < *n) {
                self.ties_lower_node += 1;
            }
        }
    }

    /// A key kept as siblings `held`, whose final reads name the winner
    /// `picks` (node, value) of a plain read.
    pub fn sibling_winner(
        &mut self,
        x: &Explain,
        k: KeyId,
        held: &[MopId],
        picks: &[(usize, i64)],
    ) {
        let Some(&(_, v)) = picks.first() else { return };
        let h = x.h;
        let w = &mut self.winners;
        w.keys += 1;
        if picks.iter().any(|p| p.1 != v) {
            return;
        }
        w.same_everywhere += 1;
        let Some(&win) = held.iter().find(|&&m| h.mops[m].arg == v) else {
            return;
        };
        let wo = h.op_of(win);
        let later = held
            .iter()
            .copied()
            .filter(|&o| o != win && h.op_of(o).invoke_time > wo.complete_time)
            .max_by_key(|&o| h.op_of(o).invoke_time);
        if let Some(l) = later {
            w.not_latest += 1;
            if w.examples.len() < WINNER_EXAMPLES {
                let lo = h.op_of(l);
                w.examples.push(format!(
                    "key {}: a plain read returns {v}, written by {}, though the sibling {} \
                     was written later ({}, invoked at {})",
                    crate::model::KeyJson(h.key(k)),
                    x.op_where(h.mops[win].op),
                    h.mops[l].arg,
                    x.op_short(h.mops[l].op),
                    secs(lo.invoke_time)
                ));
            }
        } else if held
            .iter()
            .all(|&o| o == win || wo.invoke_time > h.op_of(o).complete_time)
        {
            w.latest += 1;
        }
    }

    pub fn describe(&self) -> Json {
        let description = if self.lww == 0 && self.siblings == 0 {
            "no register key ended in conflict, so no resolution policy was observed".to_string()
        } else if self.lww == 0 {
            let w = &self.winners;
            let mut d = "keeps concurrent writes as siblings (multi-value register)".to_string();
            if w.keys > 0 {
                d.push_str(&format!(
                    "; a plain read returns one of them (meta.winners), the same on every node \
                     for {} of {} keys",
                    w.same_everywhere, w.keys
                ));
                if w.not_latest > 0 {
                    d.push_str(&format!(
                        ", and not the latest write for {} of them: the pick is not by time, \
                         so the later write can lose",
                        w.not_latest
                    ));
                } else if w.latest == w.same_everywhere {
                    d.push_str(", always the latest write");
                }
            }
            d
        } else if self.siblings > 0 {
            format!(
                "mixed: {} conflicted keys kept one value, {} kept siblings",
                self.lww, self.siblings
            )
        } else if self.with_ts == 0 {
            "last-write-wins (one value kept; no meta.ts to tell by what)".to_string()
        } else if self.lower_ts == 0 {
            let ties = if self.ties == 0 {
                String::new()
            } else if self.ties_higher_node == self.ties {
                ", ties to the higher node id".to_string()
            } else if self.ties_lower_node == self.ties {
                ", ties to the lower node id".to_string()
            } else {
                ", ties broken inconsistently by node".to_string()
            };
            format!("last-write-wins by timestamp{ties}")
        } else {
            format!(
                "one value kept, but not always the greatest timestamp ({} of {} conflicts kept a smaller meta.ts)",
                self.lower_ts, self.with_ts
            )
        };
        let mut out = json!({
            "description": description,
            "lww_keys": self.lww,
            "siblings_keys": self.siblings,
            "keys_with_ts": self.with_ts,
            "winner_had_greatest_ts": self.greatest_ts,
            "winner_had_smaller_ts": self.lower_ts,
            "ts_ties": self.ties,
            "ties_to_higher_node": self.ties_higher_node,
            "ties_to_lower_node": self.ties_lower_node,
        });
        let w = &self.winners;
        if w.keys > 0 {
            out["winner_keys"] = json!(w.keys);
            out["winner_same_on_every_node"] = json!(w.same_everywhere);
            out["winner_not_latest"] = json!(w.not_latest);
            out["winner_latest"] = json!(w.latest);
            out["winner_examples"] = json!(w.examples);
        }
        out
    }
}
