//! Last-write-wins: a version is its timestamp, then the writer's tie-break
//! rank (`--priority`). Under `lww` the timestamp is the writer's own wall
//! clock truncated to `lww_resolution_ns`, so a node whose clock runs ahead
//! wins every conflict, and a write can lose to a causally older one.

use crate::reference::version::{MergeRules, Version};

/// The writer's wall-clock timestamp at the configured resolution.
pub fn wall_stamp(now_ns: u64, resolution_ns: u64) -> u64 {
    now_ns - now_ns % resolution_ns.max(1)
}

/// Whether `incoming` replaces `current` at the node `rules.local`.
pub fn wins(incoming: &Version, current: &Version, rules: MergeRules) -> bool {
    if rules.prefer_own_on_tie && incoming.ts == current.ts {
        if current.origin == rules.local {
            return false;
        }
        if incoming.origin == rules.local {
            return true;
        }
    }
    incoming > current || (rules.same_txn && incoming == current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeId;

    fn v(ts: u64, rank: u32, origin: usize) -> Version {
        Version {
            ts,
            rank,
            origin: NodeId(origin),
            seq: 1,
        }
    }

    #[test]
    fn later_timestamp_wins_then_priority() {
        let rules = MergeRules {
            local: NodeId(2),
            prefer_own_on_tie: false,
            same_txn: false,
        };
        assert!(wins(&v(2, 0, 1), &v(1, 9, 0), rules));
        assert!(wins(&v(1, 5, 1), &v(1, 4, 0), rules));
        assert!(!wins(&v(1, 4, 0), &v(1, 5, 1), rules));
    }

    #[test]
    fn tiebreak_self_bug_keeps_the_local_write_on_a_tie() {
        let at_n1 = MergeRules {
            local: NodeId(0),
            prefer_own_on_tie: true,
            same_txn: false,
        };
        // n2 has the higher rank, but n1 keeps its own write: divergence.
        assert!(!wins(&v(7, 5, 1), &v(7, 4, 0), at_n1));
        assert_eq!(wall_stamp(1_234_567_890, 1_000_000), 1_234_000_000);
    }
}
