//! The report contract of `shared/spec/anomalies.md`: data first, rendered
//! second (summary text here; HTML and JUnit in the harness).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::history::Key;

/// Every anomaly name of the contract, in the contract's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Anomaly {
    InvalidHistory,
    CyclicCausality,
    Divergence,
    LostWrite,
    ConflictLoss,
    CausalOverwrite,
    Duplicate,
    Phantom,
    FailedWriteVisible,
    FutureRead,
    StaleSibling,
    CausalOrder,
    ReadYourWrites,
    MonotonicReads,
    CausalVisibility,
    Nonlinearizable,
}

impl Anomaly {
    pub const ALL: [Anomaly; 16] = [
        Anomaly::InvalidHistory,
        Anomaly::CyclicCausality,
        Anomaly::Divergence,
        Anomaly::LostWrite,
        Anomaly::ConflictLoss,
        Anomaly::CausalOverwrite,
        Anomaly::Duplicate,
        Anomaly::Phantom,
        Anomaly::FailedWriteVisible,
        Anomaly::FutureRead,
        Anomaly::StaleSibling,
        Anomaly::CausalOrder,
        Anomaly::ReadYourWrites,
        Anomaly::MonotonicReads,
        Anomaly::CausalVisibility,
        Anomaly::Nonlinearizable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Anomaly::InvalidHistory => "invalid-history",
            Anomaly::CyclicCausality => "cyclic-causality",
            Anomaly::Divergence => "divergence",
            Anomaly::LostWrite => "lost-write",
            Anomaly::ConflictLoss => "conflict-loss",
            Anomaly::CausalOverwrite => "causal-overwrite",
            Anomaly::Duplicate => "duplicate",
            Anomaly::Phantom => "phantom",
            Anomaly::FailedWriteVisible => "failed-write-visible",
            Anomaly::FutureRead => "future-read",
            Anomaly::StaleSibling => "stale-sibling",
            Anomaly::CausalOrder => "causal-order",
            Anomaly::ReadYourWrites => "read-your-writes",
            Anomaly::MonotonicReads => "monotonic-reads",
            Anomaly::CausalVisibility => "causal-visibility",
            Anomaly::Nonlinearizable => "nonlinearizable",
        }
    }

    /// The guarantee that forbids this anomaly; `None` for the ones always
    /// forbidden (and `invalid-history`, which makes the verdict `unknown`).
    pub fn guarantee(self) -> Option<Guarantee> {
        match self {
            Anomaly::Divergence => Some(Guarantee::Convergence),
            Anomaly::LostWrite => Some(Guarantee::NoLostWrites),
            Anomaly::ConflictLoss => Some(Guarantee::NoConflictLoss),
            Anomaly::CausalOverwrite
            | Anomaly::CausalOrder
            | Anomaly::ReadYourWrites
            | Anomaly::MonotonicReads
            | Anomaly::CausalVisibility => Some(Guarantee::Causal),
            Anomaly::Nonlinearizable => Some(Guarantee::Linearizable),
            _ => None,
        }
    }

    /// Whether finding this anomaly breaks a history under `guarantees`.
    pub fn forbidden_under(self, guarantees: &[Guarantee]) -> bool {
        match self {
            Anomaly::InvalidHistory => true,
            a => match a.guarantee() {
                None => true,
                Some(g) => guarantees.contains(&g),
            },
        }
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Anomaly {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Anomaly::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Anomaly::ALL.iter().map(|a| a.as_str()).collect();
                format!(
                    "unknown anomaly {s:?}; expected one of: {}",
                    names.join(", ")
                )
            })
    }
}

/// What a system promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guarantee {
    Convergence,
    NoLostWrites,
    NoConflictLoss,
    Causal,
    Linearizable,
}

impl Guarantee {
    pub const ALL: [Guarantee; 5] = [
        Guarantee::Convergence,
        Guarantee::NoLostWrites,
        Guarantee::NoConflictLoss,
        Guarantee::Causal,
        Guarantee::Linearizable,
    ];

    /// Every guarantee an asynchronous multi-leader store can keep: all
    /// but `linearizable`, which needs real-time order.
    pub const ASYNC: [Guarantee; 4] = [
        Guarantee::Convergence,
        Guarantee::NoLostWrites,
        Guarantee::NoConflictLoss,
        Guarantee::Causal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Guarantee::Convergence => "convergence",
            Guarantee::NoLostWrites => "no-lost-writes",
            Guarantee::NoConflictLoss => "no-conflict-loss",
            Guarantee::Causal => "causal",
            Guarantee::Linearizable => "linearizable",
        }
    }

    /// What `ladon check` assumes without `--guarantees`.
    pub fn default_for_check() -> Vec<Guarantee> {
        vec![Guarantee::Convergence, Guarantee::NoLostWrites]
    }

    /// Parses `--guarantees`: a comma-separated list of names, or `none`.
    /// An empty list or an empty name in it (`""`, `causal,`) is refused:
    /// "check nothing" is spelled `none`.
    pub fn parse_list(s: &str) -> Result<Vec<Guarantee>, String> {
        let s = s.trim();
        if s == "none" {
            return Ok(Vec::new());
        }
        if s.is_empty() {
            return Err(
                "the list is empty; give a comma-separated list of guarantees, or none to check only what is always forbidden"
                    .to_string(),
            );
        }
        let mut out = Vec::new();
        for part in s.split(',') {
            if part.trim().is_empty() {
                return Err(format!(
                    "{s:?} has an empty name; give a comma-separated list of guarantees without empty entries, or none"
                ));
            }
            let g: Guarantee = part.trim().parse()?;
            if !out.contains(&g) {
                out.push(g);
            }
        }
        out.sort();
        Ok(out)
    }
}

impl fmt::Display for Guarantee {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Guarantee {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Guarantee::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown guarantee {s:?}; expected a comma-separated list of convergence, no-lost-writes, no-conflict-loss, causal, linearizable, or none"
                )
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

impl Verdict {
    /// The process exit code: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Unknown => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }
}

/// One example of an anomaly, explained for a person and located for tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// The plain-English explanation, naming process, node, index and time of
    /// every operation involved.
    pub explanation: String,
    /// The key concerned, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// History indices (of completions, or invocations where no completion
    /// exists) of the operations involved, in the order the explanation
    /// names them.
    #[serde(default)]
    pub ops: Vec<u64>,
    /// Nodes concerned (e.g. the nodes missing a write).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// Anomaly-specific structured detail (paths with edge kinds, states,
    /// timestamps, subtype, ...).
    #[serde(default, skip_serializing_if = "Json::is_null")]
    pub detail: Json,
}

/// All findings of one anomaly name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub count: u64,
    pub forbidden: bool,
    /// Capped per anomaly; `count` counts all.
    pub examples: Vec<Example>,
}

/// Keys per conflict class, and the conflict pressure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conflicts {
    pub none: u64,
    pub lww: u64,
    pub siblings: u64,
    pub merged: u64,
    pub diverged: u64,
    pub lost: u64,
    pub concurrent_pairs: u64,
}

/// The figures every report carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub acknowledged_writes: u64,
    pub lost_writes: u64,
    pub lost_write_share: f64,
    /// Time from the heal to the moment all nodes' final reads first agreed;
    /// `None` (null) when they never agreed or there was no final phase.
    pub convergence_ns: Option<u64>,
}

/// The report: the contract's fields, plus extras tools may use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub verdict: Verdict,
    pub guarantees: Vec<Guarantee>,
    pub anomalies: BTreeMap<Anomaly, Finding>,
    pub conflicts: Conflicts,
    pub stats: Stats,
    /// Extra fields (policy inferred, latency quantiles by node, messages per
    /// write, per-key classes, why the verdict is unknown, ...): additive, so
    /// consumers of the contract are unaffected.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Json>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarantee_lists_refuse_empty_names() {
        assert_eq!(Guarantee::parse_list("none"), Ok(Vec::new()));
        assert_eq!(
            Guarantee::parse_list("causal,convergence,causal"),
            Ok(vec![Guarantee::Convergence, Guarantee::Causal])
        );
        let empty = Guarantee::parse_list("").unwrap_err();
        assert!(empty.starts_with("the list is empty"), "{empty}");
        assert!(Guarantee::parse_list("  ").is_err());
        let trailing = Guarantee::parse_list("causal,").unwrap_err();
        assert!(trailing.contains("has an empty name"), "{trailing}");
        assert!(Guarantee::parse_list(",causal").is_err());
        assert!(Guarantee::parse_list("causal,,convergence").is_err());
        assert!(Guarantee::parse_list("causl")
            .unwrap_err()
            .starts_with("unknown guarantee"));
    }
}
