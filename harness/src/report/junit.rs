//! JUnit XML (quick-junit) for CI: `--junit FILE` on `run`, `check`,
//! `explore` and `suite`.
//!
//! - `run` / `check`: [`write_for_report`] — one test case per anomaly class,
//!   failing for the forbidden ones found, with the reproduce command.
//! - `explore` / `suite`: build one [`Case`] per run (see [`case_for_run`])
//!   and [`write()`] them.

use std::path::Path;
use std::time::Duration;

use ladon_checker::report::{Anomaly, Report, Verdict};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

/// How one test case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Passed,
    /// The system broke a guarantee (or a suite's expectation).
    Failed {
        message: String,
    },
    /// The test itself could not decide or run.
    Error {
        message: String,
    },
}

/// One JUnit test case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub classname: String,
    pub status: Status,
    /// The failure's full text (explanations, reproduce command), or notes on a pass.
    pub text: String,
    pub time: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum JunitError {
    #[error("cannot serialize JUnit XML: {0}")]
    Serialize(#[from] quick_junit::SerializeError),
    #[error("cannot write JUnit XML to {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn reproduce_line(reproduce: Option<&str>) -> String {
    reproduce
        .map(|r| format!("\nreproduce: {r}\n"))
        .unwrap_or_default()
}

/// Lists the anomalies of a report, one per line, with their first example.
pub fn anomaly_lines(report: &Report) -> String {
    let mut s = String::new();
    for (a, f) in &report.anomalies {
        let kind = if f.forbidden { "forbidden" } else { "allowed" };
        s.push_str(&format!("{a} x{} ({kind})\n", f.count));
        if let Some(ex) = f.examples.first() {
            s.push_str(&format!("  e.g. {}\n", ex.explanation));
        }
    }
    s
}

/// One case per anomaly class, named after the class: fails where a
/// forbidden anomaly was found; an `unknown` verdict adds an error case.
pub fn cases_per_anomaly(classname: &str, report: &Report, reproduce: Option<&str>) -> Vec<Case> {
    let mut out = Vec::new();
    for a in Anomaly::ALL {
        let found = report.anomalies.get(&a);
        if a == Anomaly::InvalidHistory && found.is_none() {
            continue;
        }
        // Searched for only under `linearizable`: no case when not promised.
        if a == Anomaly::Nonlinearizable
            && found.is_none()
            && !report
                .guarantees
                .contains(&ladon_checker::report::Guarantee::Linearizable)
        {
            continue;
        }
        let (status, text) = match found {
            None => (Status::Passed, String::new()),
            Some(f) => {
                let mut text = String::new();
                for ex in &f.examples {
                    text.push_str(&ex.explanation);
                    text.push('\n');
                }
                if (f.examples.len() as u64) < f.count {
                    text.push_str(&format!("({} of {} shown)\n", f.examples.len(), f.count));
                }
                text.push_str(&reproduce_line(reproduce));
                if f.forbidden {
                    let message = format!("{} {a} found (forbidden)", f.count);
                    (Status::Failed { message }, text)
                } else {
                    (
                        Status::Passed,
                        format!("{} {a} found (allowed)\n{text}", f.count),
                    )
                }
            }
        };
        out.push(Case {
            name: a.as_str().to_string(),
            classname: classname.to_string(),
            status,
            text,
            time: None,
        });
    }
    if report.verdict == Verdict::Unknown {
        let why = unknown_reason(report);
        out.push(Case {
            name: "verdict".into(),
            classname: classname.to_string(),
            status: Status::Error {
                message: format!("verdict unknown: {why}"),
            },
            text: reproduce_line(reproduce),
            time: None,
        });
    }
    out
}

/// Why the verdict is unknown, from the report.
pub fn unknown_reason(report: &Report) -> String {
    report
        .extras()
        .unknown_reason
        .map(str::to_string)
        .unwrap_or_else(|| {
            "invalid history, no final phase, or no final read from some node".into()
        })
}

/// One case for a whole run: passes when the verdict is valid.
pub fn case_for_run(
    classname: &str,
    name: &str,
    report: &Report,
    reproduce: Option<&str>,
    time: Option<Duration>,
) -> Case {
    let text = format!("{}{}", anomaly_lines(report), reproduce_line(reproduce));
    let status = match report.verdict {
        Verdict::Valid => Status::Passed,
        Verdict::Invalid => {
            let names: Vec<_> = report
                .anomalies
                .iter()
                .filter(|(_, f)| f.forbidden)
                .map(|(a, f)| format!("{a} x{}", f.count))
                .collect();
            Status::Failed {
                message: format!("invalid: {}", names.join(", ")),
            }
        }
        Verdict::Unknown => Status::Error {
            message: format!("verdict unknown: {}", unknown_reason(report)),
        },
    };
    Case {
        name: name.to_string(),
        classname: classname.to_string(),
        status,
        text,
        time,
    }
}

fn to_test_case(c: &Case) -> TestCase {
    let status = match &c.status {
        Status::Passed => TestCaseStatus::success(),
        Status::Failed { message } | Status::Error { message } => {
            let kind = if matches!(c.status, Status::Failed { .. }) {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_message(message.as_str());
            s.set_description(c.text.as_str());
            s
        }
    };
    let mut tc = TestCase::new(c.name.as_str(), status);
    tc.set_classname(c.classname.as_str());
    if let Some(t) = c.time {
        tc.set_time(t);
    }
    if matches!(c.status, Status::Passed) && !c.text.is_empty() {
        tc.set_system_out(c.text.as_str());
    }
    tc
}

/// The XML for test suites of cases.
pub fn to_xml(report_name: &str, suites: &[(String, Vec<Case>)]) -> Result<String, JunitError> {
    let mut r = quick_junit::Report::new(report_name);
    for (name, cases) in suites {
        let mut s = TestSuite::new(name.as_str());
        s.add_test_cases(cases.iter().map(to_test_case));
        r.add_test_suite(s);
    }
    Ok(r.to_string()?)
}

/// Writes JUnit XML to `path`.
pub fn write(
    path: &Path,
    report_name: &str,
    suites: &[(String, Vec<Case>)],
) -> Result<(), JunitError> {
    let xml = to_xml(report_name, suites)?;
    std::fs::write(path, xml).map_err(|source| JunitError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// For `ladon run --junit FILE` and `ladon check --junit FILE`: one suite
/// named `test`, one case per anomaly class.
pub fn write_for_report(
    path: &Path,
    test: &str,
    report: &Report,
    reproduce: Option<&str>,
) -> Result<(), JunitError> {
    let cases = cases_per_anomaly(test, report, reproduce);
    write(path, "ladon", &[(test.to_string(), cases)])
}

/// For `ladon run --junit FILE`: the per-class cases of the report, or one
/// erroring case when the run produced no report.
pub fn write_for_run(
    path: &Path,
    test: &str,
    report: Option<&Report>,
    check_error: Option<&str>,
    reproduce: &str,
) -> Result<(), JunitError> {
    match report {
        Some(r) => write_for_report(path, test, r, Some(reproduce)),
        None => {
            let case = Case {
                name: "check".into(),
                classname: test.to_string(),
                status: Status::Error {
                    message: format!(
                        "no report: {}",
                        check_error.unwrap_or("the history could not be checked")
                    ),
                },
                text: reproduce_line(Some(reproduce)),
                time: None,
            };
            write(path, "ladon", &[(test.to_string(), vec![case])])
        }
    }
}

/// For `ladon explore --junit FILE`: one failing case per failing seed
/// `(seed, verdict, anomalies, reproduce)`, and one passing case counting the
/// valid seeds.
pub fn write_for_explore(
    path: &Path,
    test: &str,
    seeds: u64,
    failed: &[(u64, Verdict, String, String)],
) -> Result<(), JunitError> {
    let mut cases = vec![Case {
        name: format!("{} of {seeds} seeds valid", seeds - failed.len() as u64),
        classname: test.to_string(),
        status: Status::Passed,
        text: String::new(),
        time: None,
    }];
    for (seed, verdict, anomalies, reproduce) in failed {
        let message = format!("{}: {anomalies}", verdict.as_str());
        cases.push(Case {
            name: format!("seed {seed}"),
            classname: test.to_string(),
            status: if *verdict == Verdict::Unknown {
                Status::Error { message }
            } else {
                Status::Failed { message }
            },
            text: reproduce_line(Some(reproduce)),
            time: None,
        });
    }
    write(path, "ladon explore", &[(test.to_string(), cases)])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ladon_checker::report::{Conflicts, Example, Finding, Guarantee, Stats};
    use std::collections::BTreeMap;

    pub(crate) fn invalid_report() -> Report {
        let mut anomalies = BTreeMap::new();
        anomalies.insert(
            Anomaly::LostWrite,
            Finding {
                count: 2,
                forbidden: true,
                examples: vec![Example {
                    explanation: "append 3 to key x is missing from n1's final state".into(),
                    key: Some("x".into()),
                    ops: vec![1],
                    nodes: vec!["n1".into()],
                    detail: serde_json::Value::Null,
                }],
            },
        );
        anomalies.insert(
            Anomaly::ConflictLoss,
            Finding {
                count: 1,
                forbidden: false,
                examples: vec![],
            },
        );
        Report {
            verdict: Verdict::Invalid,
            guarantees: vec![Guarantee::Convergence, Guarantee::NoLostWrites],
            anomalies,
            conflicts: Conflicts::default(),
            stats: Stats::default(),
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn one_case_per_class_failing_for_forbidden_ones() {
        let cases = cases_per_anomaly("t", &invalid_report(), Some("ladon run --seed 7"));
        assert_eq!(cases.len(), 14);
        let failed: Vec<_> = cases
            .iter()
            .filter(|c| !matches!(c.status, Status::Passed))
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].name, "lost-write");
        assert_eq!(
            failed[0].status,
            Status::Failed {
                message: "2 lost-write found (forbidden)".into()
            }
        );
        assert!(failed[0].text.contains("reproduce: ladon run --seed 7"));
        let xml = to_xml("ladon", &[("t".into(), cases)]).unwrap();
        assert!(
            xml.contains(r#"<testsuite name="t" tests="14" disabled="0" errors="0" failures="1""#),
            "{xml}"
        );
        assert!(
            xml.contains("missing from n1&apos;s final state")
                || xml.contains("missing from n1's final state")
        );
    }

    #[test]
    fn explore_and_reportless_runs_write_junit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.xml");
        write_for_explore(
            &p,
            "ref",
            10,
            &[(
                4,
                Verdict::Invalid,
                "lost-writex2".into(),
                "ladon run --seed 4".into(),
            )],
        )
        .unwrap();
        let xml = std::fs::read_to_string(&p).unwrap();
        assert!(
            xml.contains(r#"<testcase name="9 of 10 seeds valid" classname="ref""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure message="invalid: lost-writex2""#),
            "{xml}"
        );
        assert!(xml.contains("reproduce: ladon run --seed 4"));
        write_for_run(
            &p,
            "ref",
            None,
            Some("history.jsonl:3: bad"),
            "ladon run --seed 1",
        )
        .unwrap();
        let xml = std::fs::read_to_string(&p).unwrap();
        assert!(
            xml.contains(r#"<error message="no report: history.jsonl:3: bad""#),
            "{xml}"
        );
    }

    #[test]
    fn run_case_fails_with_the_forbidden_names() {
        let c = case_for_run(
            "suite",
            "seed 7",
            &invalid_report(),
            Some("ladon run --seed 7"),
            None,
        );
        assert_eq!(
            c.status,
            Status::Failed {
                message: "invalid: lost-write x2".into()
            }
        );
        assert!(c.text.contains("conflict-loss x1 (allowed)"));
    }
}
