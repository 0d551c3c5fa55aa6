//! The report's extra fields, typed. `report.json` keeps them as additive
//! keys of the report object ([`Report::extra`], so its bytes and contract
//! stay as they are); consumers (the summary here, the harness's HTML and
//! JUnit) read them through [`Report::extras`], and only this module spells
//! their keys.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::report::Report;

/// Keys of the extras with a typed field in [`Extras`].
pub mod key {
    pub const UNKNOWN_REASON: &str = "unknown_reason";
    pub const POLICY: &str = "policy";
    pub const MESSAGES_PER_WRITE: &str = "messages_per_write";
    pub const LATENCY_NS: &str = "latency_ns";
    pub const CONVERGENCE_FROM: &str = "convergence_from";
    pub const FINAL_PHASE_PROBLEM: &str = "final_phase_problem";
}

/// Latency quantiles of one node's ok operations, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

/// Where convergence time is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvergenceFrom {
    /// The last heal in the history.
    Heal,
    /// The start of the final phase (no heal in the history).
    FinalPhase,
}

/// The typed view of a report's extras (absent or mistyped fields: `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extras<'a> {
    /// Why the verdict is unknown.
    pub unknown_reason: Option<&'a str>,
    /// The resolution policy observed, said in words.
    pub policy_description: Option<&'a str>,
    pub messages_per_write: Option<f64>,
    /// Latency of ok operations by node name.
    pub latency: BTreeMap<&'a str, Latency>,
    pub convergence_from: Option<ConvergenceFrom>,
    /// Why convergence could not be measured.
    pub final_phase_problem: Option<&'a str>,
}

impl Report {
    /// The extras, typed.
    pub fn extras(&self) -> Extras<'_> {
        let s = |k: &str| self.extra.get(k).and_then(Json::as_str);
        Extras {
            unknown_reason: s(key::UNKNOWN_REASON),
            policy_description: self
                .extra
                .get(key::POLICY)
                .and_then(|p| p.get("description"))
                .and_then(Json::as_str),
            messages_per_write: self
                .extra
                .get(key::MESSAGES_PER_WRITE)
                .and_then(Json::as_f64),
            latency: self
                .extra
                .get(key::LATENCY_NS)
                .and_then(Json::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(node, q)| {
                            Some((node.as_str(), Latency::deserialize(q).ok()?))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            convergence_from: s(key::CONVERGENCE_FROM).map(|f| match f {
                "heal" => ConvergenceFrom::Heal,
                _ => ConvergenceFrom::FinalPhase,
            }),
            final_phase_problem: s(key::FINAL_PHASE_PROBLEM),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_read_back_typed_from_the_keys_the_checker_writes() {
        let mut r: Report = serde_json::from_str(
            r#"{"verdict":"unknown","guarantees":[],"anomalies":{},
            "conflicts":{"none":0,"lww":0,"siblings":0,"merged":0,"diverged":0,"lost":0,"concurrent_pairs":0},
            "stats":{"ok":0,"fail":0,"info":0,"acknowledged_writes":0,"lost_writes":0,"lost_write_share":0.0,"convergence_ns":null},
            "unknown_reason":"no final read from n2","messages_per_write":2.5,
            "policy":{"description":"last writer wins"},"convergence_from":"heal",
            "latency_ns":{"n1":{"count":3,"p50":10,"p90":20,"p99":30,"max":40}}}"#,
        )
        .unwrap();
        let e = r.extras();
        assert_eq!(e.unknown_reason, Some("no final read from n2"));
        assert_eq!(e.messages_per_write, Some(2.5));
        assert_eq!(e.policy_description, Some("last writer wins"));
        assert_eq!(e.convergence_from, Some(ConvergenceFrom::Heal));
        assert_eq!(
            e.latency["n1"],
            Latency {
                count: 3,
                p50: 10,
                p90: 20,
                p99: 30,
                max: 40
            }
        );
        assert_eq!(e.final_phase_problem, None);
        r.extra.clear();
        assert_eq!(r.extras(), Extras::default());
    }
}
