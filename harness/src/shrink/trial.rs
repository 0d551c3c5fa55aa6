//! One simulated candidate and its size: what the search compares and the
//! passes (`candidates.rs`) shrink.

use ladon_checker::report::{Anomaly, Report};

use crate::options::RunOptions;
use crate::schedule::NemesisSchedule;

/// What a reader counts: operations, nemesis steps, nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Size {
    /// Client operations invoked, final reads included.
    pub ops: u64,
    /// Client transactions invoked in the faulty phase.
    pub client_ops: u64,
    pub nodes: usize,
    /// The nemesis steps applied in the faulty phase.
    pub schedule: NemesisSchedule,
}

impl Size {
    /// `2,914 ops, 14 nemesis steps, 5 nodes`.
    pub fn before_text(&self) -> String {
        format!(
            "{} ops, {} nemesis steps, {} nodes",
            thousands(self.ops),
            self.schedule.steps.len(),
            self.nodes
        )
    }

    /// `9 ops, 1 partition, 1 heal, 2 nodes`.
    pub fn after_text(&self) -> String {
        format!(
            "{} ops, {}, {} node{}",
            thousands(self.ops),
            self.schedule.describe(),
            self.nodes,
            if self.nodes == 1 { "" } else { "s" }
        )
    }
}

/// `2914` → `2,914`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One simulated candidate, measured and checked.
#[derive(Debug, Clone)]
pub struct Trial {
    pub options: RunOptions,
    pub size: Size,
    pub report: Report,
}

impl Trial {
    /// Whether the checker found `anomaly` as forbidden in this run.
    pub fn shows(&self, anomaly: Anomaly) -> bool {
        shows(&self.report, anomaly)
    }
}

/// Whether `report` holds `anomaly`, forbidden, at least once.
pub fn shows(report: &Report, anomaly: Anomaly) -> bool {
    report
        .anomalies
        .get(&anomaly)
        .is_some_and(|f| f.forbidden && f.count > 0)
}
