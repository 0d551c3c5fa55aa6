//! The resolution policy the register conflicts fit ("last-write-wins by
//! timestamp, ties to the higher node id", "siblings", ...).

use serde_json::{json, Value as Json};

use crate::explain::Explain;
use crate::ids::MopId;

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
}

impl Policy {
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

    pub fn describe(&self) -> Json {
        let description = if self.lww == 0 && self.siblings == 0 {
            "no register key ended in conflict, so no resolution policy was observed".to_string()
        } else if self.lww == 0 {
            "keeps concurrent writes as siblings (multi-value register)".to_string()
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
        json!({
            "description": description,
            "lww_keys": self.lww,
            "siblings_keys": self.siblings,
            "keys_with_ts": self.with_ts,
            "winner_had_greatest_ts": self.greatest_ts,
            "winner_had_smaller_ts": self.lower_ts,
            "ts_ties": self.ties,
            "ties_to_higher_node": self.ties_higher_node,
            "ties_to_lower_node": self.ties_lower_node,
        })
    }
}
