//! `ladon check HISTORY`: checks a history and prints the summary (or the
//! report as JSON). Exit code: 0 valid, 1 invalid, 2 unknown or error.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ladon_checker::report::Guarantee;
use ladon_checker::{check_path, CheckOptions, Report};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The history file (JSON Lines, see docs/checker.md).
    pub history: PathBuf,
    /// What the system promises: a comma-separated list of convergence,
    /// no-lost-writes, no-conflict-loss, causal, linearizable; or `none`.
    #[arg(
        long,
        default_value = "convergence,no-lost-writes",
        value_name = "LIST"
    )]
    pub guarantees: String,
    /// Print the report as one JSON object instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Also write report.json, summary.txt and report.html into this directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write JUnit XML here: one test case per anomaly class.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write one Graphviz DOT file per anomaly example into this directory.
    #[arg(long, value_name = "DIR")]
    pub dot: Option<PathBuf>,
    /// Examples kept per anomaly (all are counted).
    #[arg(long, default_value_t = 5)]
    pub max_examples: usize,
    /// Messages sent per write, if known (reported as a figure).
    #[arg(long)]
    pub messages_per_write: Option<f64>,
    /// Under `linearizable`: placements the search may try per key before
    /// the verdict becomes `unknown` (naming the key).
    #[arg(long, value_name = "N", default_value_t = ladon_checker::analysis::linearizable::DEFAULT_BUDGET,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub lin_budget: u64,
}

/// Runs the check; returns the verdict's exit code.
pub fn run(args: CheckArgs) -> Result<u8> {
    let guarantees = Guarantee::parse_list(&args.guarantees)
        .map_err(|e| anyhow::anyhow!("--guarantees: {e}"))?;
    let opts = CheckOptions {
        guarantees,
        max_examples: args.max_examples,
        messages_per_write: args.messages_per_write,
        lin_budget: args.lin_budget,
    };
    let report = check_path(&args.history, &opts)?;
    if let Some(dir) = &args.out {
        write_out(dir, &report)?;
        crate::report::html::write_check_report(dir, &args.history, &report)
            .with_context(|| format!("failed to write report.html into {}", dir.display()))?;
    }
    if let Some(path) = &args.junit {
        let name = format!("check {}", args.history.display());
        crate::report::junit::write_for_report(path, &name, &report, None)?;
    }
    if let Some(dir) = &args.dot {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create --dot directory {}", dir.display()))?;
        for (name, text) in ladon_checker::dot::report_dots(&report) {
            let p = dir.join(name);
            std::fs::write(&p, text).with_context(|| format!("failed to write {}", p.display()))?;
        }
    }
    let text = if args.json {
        let mut s = serde_json::to_string(&report)?;
        s.push('\n');
        s
    } else {
        report.summary_text()
    };
    print_ignoring_broken_pipe(&text)?;
    Ok(report.verdict.exit_code())
}

/// Writes `report.json` and `summary.txt` into `dir`.
pub fn write_out(dir: &std::path::Path, report: &Report) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create --out directory {}", dir.display()))?;
    let rp = dir.join("report.json");
    std::fs::write(&rp, serde_json::to_string_pretty(report)? + "\n")
        .with_context(|| format!("failed to write {}", rp.display()))?;
    let sp = dir.join("summary.txt");
    std::fs::write(&sp, report.summary_text())
        .with_context(|| format!("failed to write {}", sp.display()))?;
    Ok(())
}

/// A closed pipe (`ladon check h | head`) is not an error.
pub fn print_ignoring_broken_pipe(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("failed to write to standard output"),
    }
}
