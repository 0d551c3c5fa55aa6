//! Known-bug variants: each a small deviation from the correct node, with the
//! anomaly the checker must find when it runs (`--bug NAME`).

use super::config::{named_enum, Config, ConfigError, Strategy};

named_enum!(
    /// A deliberate deviation from the correct reference node.
    Bug, "bug", {
        /// Forward every received entry to every neighbour except the sender,
        /// without the passed-through set, dedupe or dropping own entries
        /// (bounded only by a hop limit of 8).
        NoLoopGuard => "no-loop-guard",
        /// `--causal-delivery` is declared but entries apply on arrival.
        NoCausalBuffer => "no-causal-buffer",
        /// On equal timestamps each leader prefers its own write.
        TiebreakSelf => "tiebreak-self",
        /// Fire-and-forget replication: no high-water-mark exchange, no resend.
        NoAntiEntropy => "no-anti-entropy",
        /// Nothing is persisted: a restarted node starts empty, sequence 0.
        ForgetOnCrash => "forget-on-crash",
        /// Counter increments bypass dedupe ("addition commutes"), so a
        /// resent or duplicated entry counts twice.
        CounterReapply => "counter-reapply",
        /// Followers subscribe to their leader once at start; a restarted
        /// leader forgets its subscribers and the followers never catch up.
        FollowerStaleForever => "follower-stale-forever",
        /// Quorum: reads answer from the local replica, with no quorum round.
        LocalReads => "local-reads",
    }
);

/// Hop limit of the storm the `no-loop-guard` bug produces.
pub const STORM_HOPS: u8 = 8;

impl Bug {
    /// The anomaly (name from `anomalies.md`) this bug must produce, and the
    /// conditions under which it shows.
    pub fn expected(self) -> (&'static str, &'static str) {
        match self {
            Bug::NoLoopGuard => (
                "duplicate",
                "any list-append run: entries re-applied on every hop",
            ),
            Bug::NoCausalBuffer => (
                "causal-visibility",
                "mesh with overtaking (latency jitter): a dependent write applied before its cause",
            ),
            Bug::TiebreakSelf => (
                "divergence",
                "lww on registers when two leaders write one key in the same millisecond",
            ),
            Bug::NoAntiEntropy => ("lost-write", "partitions in drop mode or message loss"),
            Bug::ForgetOnCrash => ("lost-write", "crash and restart of a leader"),
            Bug::CounterReapply => (
                "duplicate",
                "counter workload with message duplication or resends",
            ),
            Bug::FollowerStaleForever => ("divergence", "followers, crash and restart of a leader"),
            Bug::LocalReads => (
                "nonlinearizable",
                "quorum registers under partitions: a node cut off from the majority serves reads of overwritten values",
            ),
        }
    }

    pub fn explain(self) -> &'static str {
        match self {
            Bug::NoLoopGuard => {
                "forwards without the passed-through set or dedupe: duplicates and a message storm"
            }
            Bug::NoCausalBuffer => {
                "mesh applies on arrival despite --causal-delivery: causal anomalies"
            }
            Bug::TiebreakSelf => {
                "each leader prefers its own write on equal timestamps: divergence"
            }
            Bug::NoAntiEntropy => {
                "fire-and-forget replication: divergence and lost writes after partitions"
            }
            Bug::ForgetOnCrash => "the log is volatile: lost writes after crash and restart",
            Bug::CounterReapply => "non-idempotent counter merge: over-count",
            Bug::FollowerStaleForever => {
                "followers stop after their leader restarts: divergence on followers"
            }
            Bug::LocalReads => "quorum reads answered from the local replica: stale reads",
        }
    }

    /// Refuses combinations in which the bug cannot show at all.
    pub(crate) fn check_applies(self, cfg: &Config) -> Result<(), ConfigError> {
        let needs = match self {
            Bug::NoCausalBuffer if !cfg.causal_delivery => Some("--causal-delivery"),
            Bug::TiebreakSelf if !matches!(cfg.strategy, Strategy::Lww | Strategy::LwwHlc) => {
                Some("--strategy lww or lww-hlc")
            }
            Bug::FollowerStaleForever if cfg.followers == 0 => Some("--followers 1 or more"),
            Bug::NoLoopGuard if cfg.leaders < 2 => Some("--nodes 2 or more"),
            Bug::LocalReads if cfg.strategy != Strategy::Quorum => Some("--strategy quorum"),
            _ => None,
        };
        match needs {
            Some(needs) => Err(ConfigError::BugNeeds { bug: self, needs }),
            None => Ok(()),
        }
    }
}
