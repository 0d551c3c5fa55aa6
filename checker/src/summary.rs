//! The human summary of a report: the verdict and why, each anomaly in plain
//! English with its examples, conflicts and the figures.

use std::fmt::Write;

use crate::explain::duration;
use crate::extras::ConvergenceFrom;
use crate::report::{Anomaly, Conflicts, Report, Verdict};

/// One sentence on what each anomaly means.
pub fn meaning(a: Anomaly) -> &'static str {
    match a {
        Anomaly::InvalidHistory => "the history file breaks the format, so nothing else was checked",
        Anomaly::CyclicCausality => "operations happen before each other in a cycle",
        Anomaly::Divergence => "after the final phase, nodes hold different states for a key",
        Anomaly::LostWrite => "an acknowledged write is missing from a node's final state",
        Anomaly::ConflictLoss => "conflict resolution discarded an acknowledged write that was concurrent with the survivor",
        Anomaly::CausalOverwrite => "a causally older value replaced a newer acknowledged write",
        Anomaly::Duplicate => "an element or increment was applied more than once",
        Anomaly::Phantom => "a read observed a value nobody wrote",
        Anomaly::FailedWriteVisible => "a read observed a write that failed",
        Anomaly::FutureRead => "a read observed a write invoked only after the read completed",
        Anomaly::StaleSibling => "a register kept a sibling that a later write of it should have replaced",
        Anomaly::CausalOrder => "a list holds elements in an order contradicting causality",
        Anomaly::ReadYourWrites => "a process did not see its own earlier write",
        Anomaly::MonotonicReads => "a process stopped seeing a write it had already seen",
        Anomaly::CausalVisibility => "a read missed a write in its causal past",
        Anomaly::Nonlinearizable => "a key's operations fit no single order that respects real time",
    }
}

/// The conflict classes in words, with their counts of keys: "3 keys
/// without conflict, 1 one winner (lww), ...".
pub fn conflict_classes(c: &Conflicts) -> String {
    let plural = |n: u64| if n == 1 { "key" } else { "keys" };
    format!(
        "{} {} without conflict, {} one winner (lww), {} siblings kept, {} merged, {} diverged, {} no concurrent value kept",
        c.none,
        plural(c.none),
        c.lww,
        c.siblings,
        c.merged,
        c.diverged,
        c.lost
    )
}

/// One line on what the conflict classes are, printed wherever they are.
pub const CONFLICT_CLASSES_HELP: &str = "each key counted once by how its concurrent writes ended: one value chosen, all kept as siblings, merged, nodes disagreeing, or none of them kept; these count keys, not writes: lost writes are counted below";

impl Report {
    /// The summary printed by `ladon check` and saved as `summary.txt`.
    pub fn summary_text(&self) -> String {
        let mut s = String::new();
        let extras = self.extras();
        let gs: Vec<&str> = self.guarantees.iter().map(|g| g.as_str()).collect();
        let gs = if gs.is_empty() {
            "none".to_string()
        } else {
            gs.join(", ")
        };
        let verdict = match self.verdict {
            Verdict::Valid => "VALID: nothing the guarantees forbid was found".to_string(),
            Verdict::Invalid => {
                let names: Vec<&str> = self
                    .anomalies
                    .iter()
                    .filter(|(_, f)| f.forbidden)
                    .map(|(a, _)| a.as_str())
                    .collect();
                format!("INVALID: found {}", names.join(", "))
            }
            Verdict::Unknown => format!(
                "UNKNOWN: {}",
                extras.unknown_reason.unwrap_or("the history cannot decide")
            ),
        };
        let _ = writeln!(s, "Verdict: {verdict}");
        let _ = writeln!(s, "Guarantees checked: {gs}");
        if self.anomalies.contains_key(&Anomaly::InvalidHistory) {
            for e in &self.anomalies[&Anomaly::InvalidHistory].examples {
                let _ = writeln!(s, "\ninvalid-history: {}", e.explanation);
            }
            return s;
        }
        let st = &self.stats;
        let _ = writeln!(
            s,
            "\nOperations: {} ok, {} failed, {} indeterminate; {} acknowledged writes",
            st.ok, st.fail, st.info, st.acknowledged_writes
        );
        if self.anomalies.is_empty() {
            let _ = writeln!(s, "\nNo anomalies found.");
        }
        for (a, f) in &self.anomalies {
            let status = if f.forbidden {
                match a.guarantee() {
                    Some(g) => format!("forbidden by {g}"),
                    None => "always forbidden".to_string(),
                }
            } else {
                "allowed by the guarantees checked".to_string()
            };
            let _ = writeln!(s, "\n{a}: {} ({status}) — {}", f.count, meaning(*a));
            for (i, e) in f.examples.iter().enumerate() {
                let _ = writeln!(s, "  {}. {}", i + 1, e.explanation);
            }
            if (f.examples.len() as u64) < f.count {
                let _ = writeln!(s, "  ... and {} more", f.count - f.examples.len() as u64);
            }
        }
        let _ = writeln!(
            s,
            "\nConflict resolution: {}; {} concurrent pairs of acknowledged writes",
            conflict_classes(&self.conflicts),
            self.conflicts.concurrent_pairs
        );
        let _ = writeln!(s, "  ({CONFLICT_CLASSES_HELP})");
        if let Some(p) = extras.policy_description {
            let _ = writeln!(s, "Resolution policy observed: {p}");
        }
        let _ = writeln!(
            s,
            "Lost writes: {} of {} acknowledged ({:.2}%)",
            st.lost_writes,
            st.acknowledged_writes,
            st.lost_write_share * 100.0
        );
        let from = match extras.convergence_from {
            Some(ConvergenceFrom::Heal) => "the last heal",
            _ => "the final phase began (no heal in the history)",
        };
        match st.convergence_ns {
            Some(ns) => {
                let _ = writeln!(
                    s,
                    "Convergence: every node's final state agreed {} after {from}",
                    duration(ns)
                );
            }
            None if extras.final_phase_problem.is_some() => {
                let _ = writeln!(
                    s,
                    "Convergence: not measured ({})",
                    extras.final_phase_problem.unwrap_or_default()
                );
            }
            None => {
                let _ = writeln!(s, "Convergence: the nodes' final states never agreed");
            }
        }
        if let Some(m) = extras.messages_per_write {
            let _ = writeln!(s, "Messages per write: {m:.2}");
        }
        for (node, q) in &extras.latency {
            let _ = writeln!(
                s,
                "Latency on {node} (ok transactions): p50 {}, p90 {}, p99 {}, max {}",
                duration(q.p50),
                duration(q.p90),
                duration(q.p99),
                duration(q.max)
            );
        }
        s
    }
}
