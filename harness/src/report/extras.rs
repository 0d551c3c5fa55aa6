//! The fields the harness adds to the checker's report, typed. They are
//! stored in `Report.extra` under their keys (so `report.json` keeps its
//! bytes and its contract), but written and read here only through types:
//! no other harness module spells their keys.

use ladon_checker::report::Report;
use serde::{Deserialize, Serialize};

/// `final_phase`: a live run's final reads (see `live::final_phase`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalPhase {
    /// Rounds of reads (every node read every key once per round).
    pub rounds: u32,
    /// The window, `--converge-timeout`.
    pub window_ns: u64,
    /// From the start of the final reads to agreement (`None`: never).
    pub time_to_converge_ns: Option<u64>,
    /// From the start of the final reads to the last change of a node's state.
    pub last_change_ns: Option<u64>,
    /// The node(s) whose state changed last.
    pub last_change_nodes: Option<Vec<String>>,
}

/// One extra the harness writes into a report.
#[derive(Debug, Clone, PartialEq)]
pub enum HarnessExtra {
    /// Why the verdict is `unknown` (`unknown_reason`, which the checker
    /// writes too: the harness overrides it for an interrupted run).
    UnknownReason(String),
    /// A live run's final phase (`final_phase`).
    FinalPhase(FinalPhase),
    /// A database run's replication problems at the end, in the servers'
    /// own words (`replication_problems`: one line per stopped link,
    /// `replication stopped on n2 from n1: error 1062: …`, or per kind of
    /// change a node dropped, `n2 skipped 1 remote UPDATE …`).
    ReplicationProblems(Vec<String>),
    /// A database run's servers that exited without Ladon stopping them
    /// (`server_exits`: `n2's server (pouchdb-server) exited by itself
    /// (exit status 1)`).
    ServerExits(Vec<String>),
}

impl HarnessExtra {
    /// The key in `report.json`.
    pub fn key(&self) -> &'static str {
        match self {
            HarnessExtra::UnknownReason(_) => UNKNOWN_REASON,
            HarnessExtra::FinalPhase(_) => "final_phase",
            HarnessExtra::ReplicationProblems(_) => "replication_problems",
            HarnessExtra::ServerExits(_) => "server_exits",
        }
    }

    /// Sets this extra in `report`, replacing any earlier value.
    pub fn set(self, report: &mut Report) {
        let key = self.key();
        let value = match self {
            HarnessExtra::UnknownReason(s) => serde_json::Value::String(s),
            HarnessExtra::FinalPhase(f) => {
                serde_json::to_value(f).expect("a FinalPhase serializes")
            }
            HarnessExtra::ReplicationProblems(lines) | HarnessExtra::ServerExits(lines) => {
                serde_json::Value::from(lines)
            }
        };
        report.extra.insert(key.into(), value);
    }
}

const UNKNOWN_REASON: &str = ladon_checker::extras::key::UNKNOWN_REASON;

/// Why `report`'s verdict is unknown, if it says.
pub fn unknown_reason(report: &Report) -> Option<&str> {
    report.extras().unknown_reason
}

/// A live run's final phase, if `report` has one.
pub fn final_phase(report: &Report) -> Option<FinalPhase> {
    serde_json::from_value(report.extra.get("final_phase")?.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_round_trip_under_their_keys_with_the_old_bytes() {
        let mut r: Report = serde_json::from_str(
            r#"{"verdict":"unknown","guarantees":[],"anomalies":{},
            "conflicts":{"none":0,"lww":0,"siblings":0,"merged":0,"diverged":0,"lost":0,"concurrent_pairs":0},
            "stats":{"ok":0,"fail":0,"info":0,"acknowledged_writes":0,"lost_writes":0,"lost_write_share":0.0,"convergence_ns":null}}"#,
        )
        .unwrap();
        let f = FinalPhase {
            rounds: 3,
            window_ns: 10,
            time_to_converge_ns: None,
            last_change_ns: Some(4),
            last_change_nodes: Some(vec!["n2".into()]),
        };
        HarnessExtra::FinalPhase(f.clone()).set(&mut r);
        HarnessExtra::UnknownReason("interrupted".into()).set(&mut r);
        assert_eq!(final_phase(&r), Some(f));
        assert_eq!(unknown_reason(&r), Some("interrupted"));
        // The bytes the old json! literal wrote (keys in serde_json's order).
        let old = serde_json::json!({
            "rounds": 3, "window_ns": 10, "time_to_converge_ns": null,
            "last_change_ns": 4, "last_change_nodes": ["n2"],
        });
        assert_eq!(
            serde_json::to_string(&r.extra["final_phase"]).unwrap(),
            serde_json::to_string(&old).unwrap()
        );
    }
}
