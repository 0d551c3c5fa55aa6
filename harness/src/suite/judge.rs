//! Judging runs against their expectations, the summary table, JUnit and
//! the exit code.

use std::collections::BTreeMap;
use std::fmt::Write;

use ladon_checker::report::Verdict;

use super::matrix::Case;
use super::runner::RunOutput;
use super::spec::{Expect, Require};
use crate::report::junit::{self, Status};

/// How a case fared against its expectation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "result", content = "detail", rename_all = "kebab-case")]
pub enum Judgement {
    Pass,
    /// Passed because another seed of its cell met a `require = "any"` expectation.
    PassByCell {
        seed: u64,
    },
    Fail(String),
    Error(String),
}

impl Judgement {
    pub fn label(&self) -> &'static str {
        match self {
            Judgement::Pass | Judgement::PassByCell { .. } => "PASS",
            Judgement::Fail(_) => "FAIL",
            Judgement::Error(_) => "ERROR",
        }
    }
}

fn expect_text(e: &Expect) -> String {
    match e {
        Expect::Valid => "valid".into(),
        Expect::Invalid(a) if a.is_empty() => "invalid".into(),
        Expect::Invalid(a) => format!(
            "invalid with {}",
            a.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// One case on its own.
pub fn judge_one(case: &Case, out: &RunOutput) -> Judgement {
    let Some(verdict) = out.verdict else {
        return Judgement::Error(out.error.clone().unwrap_or_else(|| "no verdict".into()));
    };
    match &case.expect {
        Expect::Valid if verdict == Verdict::Valid => Judgement::Pass,
        Expect::Invalid(need) if verdict == Verdict::Invalid => {
            let missing: Vec<&str> = need
                .iter()
                .map(|a| a.as_str())
                .filter(|a| out.anomalies.get(*a).is_none_or(|(n, _)| *n == 0))
                .collect();
            if missing.is_empty() {
                Judgement::Pass
            } else {
                Judgement::Fail(format!(
                    "expected {}, but {} not found",
                    expect_text(&case.expect),
                    missing.join(", ")
                ))
            }
        }
        _ if verdict == Verdict::Unknown => Judgement::Error(format!(
            "verdict unknown: {} (expected {})",
            out.report
                .as_ref()
                .map(crate::report::junit::unknown_reason)
                .unwrap_or_else(|| "the run's report.json gives no reason".into()),
            expect_text(&case.expect)
        )),
        _ => Judgement::Fail(format!(
            "expected {}, got {}",
            expect_text(&case.expect),
            verdict.as_str()
        )),
    }
}

/// Every case, with `require = "any"` cells passing together when one seed passed.
pub fn judge_all(cases: &[Case], outs: &[RunOutput]) -> Vec<Judgement> {
    let mut js: Vec<Judgement> = cases
        .iter()
        .zip(outs)
        .map(|(c, o)| judge_one(c, o))
        .collect();
    let mut cell_pass: BTreeMap<usize, u64> = BTreeMap::new();
    for (c, j) in cases.iter().zip(&js) {
        if c.require == Require::Any && *j == Judgement::Pass {
            cell_pass.entry(c.cell).or_insert(c.seed);
        }
    }
    for (c, j) in cases.iter().zip(js.iter_mut()) {
        if let (Some(&seed), Judgement::Fail(_)) = (cell_pass.get(&c.cell), &*j) {
            *j = Judgement::PassByCell { seed };
        }
    }
    js
}

fn anomalies_text(out: &RunOutput) -> String {
    if out.anomalies.is_empty() {
        return "-".into();
    }
    out.anomalies
        .iter()
        .map(|(a, (n, forbidden))| {
            if *forbidden {
                format!("{a}({n})")
            } else {
                format!("{a}({n}, allowed)")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One progress line per finished run. A seed of a `require = "any"` cell
/// that does not show the expectation is not a failure (the cell is judged
/// when all its seeds are in), and the line says so.
pub fn progress_line(
    n: usize,
    total: usize,
    case: &Case,
    took: std::time::Duration,
    j: &Judgement,
) -> String {
    let how = match (j, &case.require) {
        (Judgement::Fail(_), Require::Any) => {
            "ran; not shown by this seed (the cell passes if any of its seeds shows it)"
        }
        (Judgement::Pass | Judgement::PassByCell { .. }, _) => "ran; as expected",
        (Judgement::Fail(_), _) => "ran; FAIL (not as expected)",
        (Judgement::Error(_), _) => "ERROR (no verdict)",
    };
    format!("[{n}/{total}] {} in {}: {how}", case.name, wall(took))
}

/// A wall-clock duration, in the checker's one format ("1.204 s").
fn wall(d: std::time::Duration) -> String {
    ladon_checker::explain::duration(d.as_nanos().min(u64::MAX as u128) as u64)
}

/// The summary table, then each failure's reason and reproduce command,
/// then one totals line. Columns stay aligned whatever the run names' length.
pub fn table(suite: &str, cases: &[Case], outs: &[RunOutput], js: &[Judgement]) -> String {
    let name_w = cases
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(3);
    let times: Vec<String> = outs.iter().map(|o| wall(o.duration)).collect();
    let time_w = times
        .iter()
        .map(|t| t.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<6} {:<name_w$} {:<8} {:>time_w$}  ANOMALIES",
        "RESULT", "RUN", "VERDICT", "TIME"
    );
    for (((c, o), j), t) in cases.iter().zip(outs).zip(js).zip(&times) {
        let verdict = o.verdict.map(|v| v.as_str()).unwrap_or("-");
        let _ = writeln!(
            s,
            "{:<6} {:<name_w$} {:<8} {:>time_w$}  {}",
            j.label(),
            c.name,
            verdict,
            t,
            anomalies_text(o)
        );
    }
    let mut bad = cases
        .iter()
        .zip(outs)
        .zip(js)
        .filter(|(_, j)| matches!(j, Judgement::Fail(_) | Judgement::Error(_)))
        .peekable();
    if bad.peek().is_some() {
        s.push('\n');
    }
    for ((c, o), j) in bad {
        let (Judgement::Fail(why) | Judgement::Error(why)) = j else {
            continue;
        };
        let _ = writeln!(s, "{} {}: {why}", j.label(), c.name);
        let _ = writeln!(s, "  reproduce: {}", o.reproduce);
        if let Some(d) = &o.run_dir {
            let _ = writeln!(s, "  run: {}", d.display());
        }
    }
    let (p, f, e) = counts(js);
    let _ = write!(s, "\nsuite {suite}: {p} passed, {f} failed");
    if e > 0 {
        let _ = write!(s, ", {e} errors");
    }
    s.push('\n');
    s
}

/// (passed, failed, errors).
pub fn counts(js: &[Judgement]) -> (usize, usize, usize) {
    let p = js
        .iter()
        .filter(|j| matches!(j, Judgement::Pass | Judgement::PassByCell { .. }))
        .count();
    let f = js
        .iter()
        .filter(|j| matches!(j, Judgement::Fail(_)))
        .count();
    (p, f, js.len() - p - f)
}

/// 0 when every expectation held, 1 when one failed, 2 when a run errored (and none failed).
pub fn exit_code(js: &[Judgement]) -> u8 {
    match counts(js) {
        (_, 0, 0) => 0,
        (_, 0, _) => 2,
        _ => 1,
    }
}

/// JUnit: one test suite per group, one test case per run.
pub fn junit_cases(
    cases: &[Case],
    outs: &[RunOutput],
    js: &[Judgement],
) -> Vec<(String, Vec<junit::Case>)> {
    let mut groups: Vec<(String, Vec<junit::Case>)> = Vec::new();
    for ((c, o), j) in cases.iter().zip(outs).zip(js) {
        let mut text = String::new();
        if let Some(r) = &o.report {
            text.push_str(&junit::anomaly_lines(r));
        }
        if let Some(e) = &o.error {
            text.push_str(e);
            text.push('\n');
        }
        let _ = write!(text, "\nreproduce: {}\n", o.reproduce);
        if let Judgement::PassByCell { seed } = j {
            let _ = writeln!(text, "expectation met by seed {seed} of this cell");
        }
        let status = match j {
            Judgement::Pass | Judgement::PassByCell { .. } => Status::Passed,
            Judgement::Fail(m) => Status::Failed { message: m.clone() },
            Judgement::Error(m) => Status::Error { message: m.clone() },
        };
        let case = junit::Case {
            name: c.name.clone(),
            classname: c.group.clone(),
            status,
            text,
            time: Some(o.duration),
        };
        match groups.iter_mut().find(|(g, _)| *g == c.group) {
            Some((_, v)) => v.push(case),
            None => groups.push((c.group.clone(), vec![case])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::super::matrix::expand;
    use super::super::spec::parse;
    use super::*;
    use std::time::Duration;

    fn out(verdict: Option<Verdict>, anomalies: &[(&str, u64)]) -> RunOutput {
        RunOutput {
            verdict,
            anomalies: anomalies
                .iter()
                .map(|(a, n)| (a.to_string(), (*n, true)))
                .collect(),
            run_dir: None,
            reproduce: "ladon run --seed 1".into(),
            duration: Duration::from_millis(1500),
            error: verdict.is_none().then(|| "crashed".to_string()),
            report: None,
        }
    }

    fn cases() -> Vec<Case> {
        expand(
            &parse(
                r#"
[[group]]
name = "ok"
seeds = [1, 2]
expect = "valid"

[[group]]
name = "bug"
seeds = [1, 2, 3]
expect = "invalid"
anomalies = ["lost-write"]
require = "any"
"#,
                "s.toml",
            )
            .unwrap(),
        )
    }

    #[test]
    fn an_unknown_verdict_is_an_error_that_says_why() {
        let cs = cases();
        let mut o = out(Some(Verdict::Unknown), &[]);
        o.report = Some(ladon_checker::report::Report {
            verdict: Verdict::Unknown,
            guarantees: Vec::new(),
            anomalies: BTreeMap::new(),
            conflicts: Default::default(),
            stats: Default::default(),
            extra: BTreeMap::from([(
                "unknown_reason".to_string(),
                serde_json::json!("no final phase: no node has an ok final read"),
            )]),
        });
        assert_eq!(
            judge_one(&cs[0], &o),
            Judgement::Error(
                "verdict unknown: no final phase: no node has an ok final read (expected valid)"
                    .into()
            )
        );
    }

    #[test]
    fn judges_expectations_and_any_cells() {
        let cs = cases();
        let outs = vec![
            out(Some(Verdict::Valid), &[]),
            out(Some(Verdict::Invalid), &[("divergence", 1)]),
            out(Some(Verdict::Valid), &[]),
            out(Some(Verdict::Invalid), &[("lost-write", 2)]),
            out(None, &[]),
        ];
        let js = judge_all(&cs, &outs);
        assert_eq!(
            js,
            vec![
                Judgement::Pass,
                Judgement::Fail("expected valid, got invalid".into()),
                Judgement::PassByCell { seed: 2 },
                Judgement::Pass,
                Judgement::Error("crashed".into()),
            ]
        );
        assert_eq!(counts(&js), (3, 1, 1));
        assert_eq!(exit_code(&js), 1);
        let t = table("s", &cs, &outs, &js);
        assert!(
            t.contains("FAIL   ok / seed 2  invalid  1.500 s  divergence(1)"),
            "{t}"
        );
        assert!(
            t.contains(
                "FAIL ok / seed 2: expected valid, got invalid\n  reproduce: ladon run --seed 1"
            ),
            "{t}"
        );
        assert!(
            t.ends_with("suite s: 3 passed, 1 failed, 1 errors\n"),
            "{t}"
        );
        let j = junit_cases(&cs, &outs, &js);
        assert_eq!(j.len(), 2);
        assert_eq!(j[1].1.len(), 3);
        let xml = crate::report::junit::to_xml("ladon suite", &j).unwrap();
        assert!(
            xml.contains(r#"<testsuite name="ok" tests="2" disabled="0" errors="0" failures="1""#),
            "{xml}"
        );
    }

    #[test]
    fn missing_anomaly_fails_an_invalid_expectation() {
        let cs = cases();
        let j = judge_one(&cs[2], &out(Some(Verdict::Invalid), &[("divergence", 1)]));
        assert_eq!(
            j,
            Judgement::Fail("expected invalid with lost-write, but lost-write not found".into())
        );
        assert_eq!(
            exit_code(&[Judgement::Pass, Judgement::Error("x".into())]),
            2
        );
        assert_eq!(exit_code(&[Judgement::Pass]), 0);
    }

    #[test]
    fn the_table_stays_aligned_with_long_run_names() {
        let mut cs = cases();
        cs[0].name = "x".repeat(140);
        let outs: Vec<RunOutput> = (0..cs.len())
            .map(|i| {
                let mut o = out(Some(Verdict::Valid), &[]);
                o.duration = Duration::from_millis(10u64.pow(i as u32 % 4) * 7);
                o
            })
            .collect();
        let js = judge_all(&cs, &outs);
        let t = table("s", &cs, &outs, &js);
        let rows: Vec<&str> = t.lines().take(1 + cs.len()).collect();
        let col = |row: &str, word: &str| row.find(word).unwrap_or_else(|| panic!("{row}"));
        let verdict_at = col(rows[0], "VERDICT");
        let anomalies_at = col(rows[0], "ANOMALIES");
        for row in &rows[1..] {
            assert_eq!(col(row, "valid"), verdict_at, "{t}");
            assert_eq!(col(row, "-"), anomalies_at, "{t}");
        }
    }

    #[test]
    fn progress_lines_read_as_progress() {
        let cs = cases();
        let d = Duration::from_millis(1500);
        assert_eq!(
            progress_line(3, 5, &cs[2], d, &Judgement::Fail("x".into())),
            "[3/5] bug / seed 1 in 1.500 s: ran; not shown by this seed (the cell passes if any of its seeds shows it)"
        );
        assert_eq!(
            progress_line(1, 5, &cs[0], d, &Judgement::Pass),
            "[1/5] ok / seed 1 in 1.500 s: ran; as expected"
        );
        assert_eq!(
            progress_line(2, 5, &cs[1], d, &Judgement::Fail("x".into())),
            "[2/5] ok / seed 2 in 1.500 s: ran; FAIL (not as expected)"
        );
    }
}
