//! What a [`Test`](crate::Test) found: [`Outcome`], per seed
//! [`SeedResult`], and the first [`Failure`] in full.

use std::fmt::Write;
use std::ops::Range;
use std::path::PathBuf;

use ladon_checker::report::{Anomaly, Report, Verdict};
use ladon_checker::summary::meaning;

/// The verdict of one seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// Valid, invalid, or unknown (including a run that could not finish).
    pub verdict: Verdict,
    /// The anomalies the guarantees forbid, with how many of each.
    pub anomalies: Vec<(Anomaly, u64)>,
    /// Why the seed has no report (the run or the checker failed).
    pub error: Option<String>,
}

impl SeedResult {
    pub(crate) fn of_report(seed: u64, report: &Report) -> SeedResult {
        SeedResult {
            seed,
            verdict: report.verdict,
            anomalies: forbidden(report),
            error: None,
        }
    }

    pub(crate) fn of_error(seed: u64, error: String) -> SeedResult {
        SeedResult {
            seed,
            verdict: Verdict::Unknown,
            anomalies: Vec::new(),
            error: Some(error),
        }
    }
}

/// The forbidden anomalies of a report, with their counts.
fn forbidden(report: &Report) -> Vec<(Anomaly, u64)> {
    report
        .anomalies
        .iter()
        .filter(|(_, f)| f.forbidden)
        .map(|(a, f)| (*a, f.count))
        .collect()
}

/// The first failing seed, run again into a run directory.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The checker's report (`None` if the checker could not run: see
    /// `check_error`).
    pub report: Option<Report>,
    /// Why there is no report.
    pub check_error: Option<String>,
    /// The run directory: `history.jsonl`, `report.html`, `run.json`,
    /// `summary.txt`, `messages.jsonl`, node logs.
    pub run_dir: PathBuf,
    /// The command that reproduces the run with your binary.
    pub reproduce: String,
    /// The arguments of `reproduce` after the program (`run --adapter ...`
    /// without the leading `run`): for running your binary from a test.
    pub args: Vec<String>,
}

impl Failure {
    /// The verdict (unknown when the checker could not run).
    pub fn verdict(&self) -> Verdict {
        self.report.as_ref().map_or(Verdict::Unknown, |r| r.verdict)
    }

    /// The forbidden anomalies found, with how many of each.
    pub fn anomalies(&self) -> Vec<(Anomaly, u64)> {
        self.report.as_ref().map(forbidden).unwrap_or_default()
    }

    /// The run's `report.html`.
    pub fn report_html(&self) -> PathBuf {
        self.run_dir.join("report.html")
    }

    /// The verdict and each forbidden anomaly in plain English with its
    /// examples: a stable text to pin a found bug with
    /// `insta::assert_snapshot!(failure.snapshot())`. It holds nothing that
    /// changes from run to run (no paths, no times of day), only what the
    /// seed decides.
    pub fn snapshot(&self) -> String {
        let mut s = String::new();
        let Some(report) = &self.report else {
            let _ = writeln!(s, "seed {}: UNKNOWN", self.seed);
            let _ = writeln!(s, "{}", self.check_error.as_deref().unwrap_or("no report"));
            return s;
        };
        let guarantees: Vec<&str> = report.guarantees.iter().map(|g| g.as_str()).collect();
        let _ = writeln!(
            s,
            "seed {}: {} (guarantees {})",
            self.seed,
            verdict_word(report.verdict),
            guarantees.join(", ")
        );
        for (a, f) in report.anomalies.iter().filter(|(_, f)| f.forbidden) {
            let _ = writeln!(s, "\n{}: {} — {}", a.as_str(), f.count, meaning(*a));
            for (i, e) in f.examples.iter().enumerate() {
                let _ = writeln!(s, "  {}. {}", i + 1, e.explanation);
            }
            let shown = f.examples.len() as u64;
            if shown < f.count {
                let _ = writeln!(s, "  ... and {} more", f.count - shown);
            }
        }
        s
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Valid => "VALID",
        Verdict::Invalid => "INVALID",
        Verdict::Unknown => "UNKNOWN",
    }
}

/// What a [`Test`](crate::Test) found over its seeds.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The test's name (`ADAPTER-WORKLOAD`), as in run directories.
    pub test: String,
    /// The seeds run.
    pub seeds: Range<u64>,
    /// Every seed's verdict, in seed order.
    pub results: Vec<SeedResult>,
    /// The first seed that was not valid, stored in full.
    pub first_failure: Option<Failure>,
}

impl Outcome {
    /// Whether every seed was valid.
    pub fn is_valid(&self) -> bool {
        self.first_failure.is_none()
    }

    /// The seeds that were not valid, in seed order.
    pub fn failures(&self) -> impl Iterator<Item = &SeedResult> {
        self.results.iter().filter(|r| r.verdict != Verdict::Valid)
    }

    /// Panics unless every seed was valid, with [`Outcome::message`].
    #[track_caller]
    pub fn assert_valid(&self) {
        if let Some(message) = self.message() {
            panic!("{message}");
        }
    }

    /// The first failing seed; panics if every seed was valid (for a test
    /// that a planted bug is found).
    #[track_caller]
    pub fn expect_failure(&self) -> &Failure {
        match &self.first_failure {
            Some(f) => f,
            None => panic!(
                "ladon: expected a failing seed, but all {} seeds of {} ({}..{}) were valid",
                self.results.len(),
                self.test,
                self.seeds.start,
                self.seeds.end
            ),
        }
    }

    /// What [`Outcome::assert_valid`] panics with (`None` if every seed was
    /// valid): the first failing seed, its anomalies in plain English, the
    /// command that reproduces it, where its run directory and
    /// `report.html` are, and the other failing seeds.
    pub fn message(&self) -> Option<String> {
        let f = self.first_failure.as_ref()?;
        let failing: Vec<&SeedResult> = self.failures().collect();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "ladon: {}: seed {} is {} ({} of {} seeds failed)",
            self.test,
            f.seed,
            verdict_word(f.verdict()),
            failing.len(),
            self.results.len()
        );
        match &f.report {
            Some(report) => {
                for (a, finding) in report.anomalies.iter().filter(|(_, x)| x.forbidden) {
                    let _ = writeln!(s, "  {}: {} — {}", a.as_str(), finding.count, meaning(*a));
                    if let Some(e) = finding.examples.first() {
                        let _ = writeln!(s, "    e.g. {}", e.explanation);
                    }
                }
                if report.verdict == Verdict::Unknown {
                    if let Some(why) = report.extra.get("unknown_reason").and_then(|v| v.as_str()) {
                        let _ = writeln!(s, "  unknown: {why}");
                    }
                }
            }
            None => {
                let why = f.check_error.as_deref().unwrap_or("no report");
                let _ = writeln!(s, "  no report: {why}");
            }
        }
        if let Some(err) = failing.iter().find_map(|r| r.error.as_deref()) {
            let _ = writeln!(s, "  a seed could not run: {err}");
        }
        let _ = writeln!(s, "reproduce: {}", f.reproduce);
        let _ = writeln!(s, "run directory: {}", f.run_dir.display());
        let _ = writeln!(s, "report: {}", f.report_html().display());
        let others: Vec<String> = failing
            .iter()
            .filter(|r| r.seed != f.seed)
            .take(10)
            .map(|r| r.seed.to_string())
            .collect();
        if !others.is_empty() {
            let more = failing.len().saturating_sub(1 + others.len());
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let _ = writeln!(s, "other failing seeds: {}{tail}", others.join(", "));
        }
        Some(s)
    }
}
