//! `ladon check HISTORY`: checks a history and prints the summary (or the
//! report as JSON). Exit code: 0 valid, 1 invalid, 2 unknown or error.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use ladon_checker::report::Guarantee;
use ladon_checker::{check_path, CheckOptions, Report};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The history file (JSON Lines, see docs/history-format.md), or a run
    /// directory holding `history.jsonl`.
    pub history: PathBuf,
    /// What the system promises: a comma-separated list of convergence,
    /// no-lost-writes, no-conflict-loss, causal, linearizable; or `none`. Default: the
    /// guarantees in `run.json` beside the history (the ones the run
    /// checked), else convergence,no-lost-writes.
    #[arg(long, value_name = "LIST")]
    pub guarantees: Option<String>,
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

/// The guarantees checked when `--guarantees` is not given and no `run.json`
/// names them.
pub const DEFAULT_GUARANTEES: &str = "convergence,no-lost-writes";

/// Where the guarantees of a check came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuaranteeSource {
    Flag,
    RunJson(PathBuf),
    Default,
}

/// A run directory stands for its `history.jsonl`.
pub fn history_path(arg: &Path) -> PathBuf {
    if arg.is_dir() {
        arg.join("history.jsonl")
    } else {
        arg.to_path_buf()
    }
}

/// The guarantees to check: `--guarantees`, else those of the `run.json`
/// beside the history, else [`DEFAULT_GUARANTEES`]. A `run.json` that
/// exists but cannot be read is an error naming it (a silent fallback could
/// change the verdict).
pub fn resolve_guarantees(
    flag: Option<&str>,
    history: &Path,
) -> Result<(Vec<Guarantee>, GuaranteeSource)> {
    if let Some(g) = flag {
        let gs = Guarantee::parse_list(g).map_err(|e| anyhow::anyhow!("--guarantees: {e}"))?;
        return Ok((gs, GuaranteeSource::Flag));
    }
    let run_json = history
        .parent()
        .map(|d| d.join("run.json"))
        .filter(|p| p.is_file());
    let Some(run_json) = run_json else {
        let gs = Guarantee::parse_list(DEFAULT_GUARANTEES).map_err(anyhow::Error::msg)?;
        return Ok((gs, GuaranteeSource::Default));
    };
    let text = std::fs::read_to_string(&run_json)
        .with_context(|| format!("failed to read {}", run_json.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", run_json.display()))?;
    let list = v
        .get("guarantees")
        .and_then(|g| g.as_array())
        .with_context(|| {
            format!(
                "{}: no \"guarantees\" list; pass --guarantees",
                run_json.display()
            )
        })?;
    let names: Vec<&str> = list.iter().filter_map(|g| g.as_str()).collect();
    let joined = if names.is_empty() {
        "none".to_string()
    } else {
        names.join(",")
    };
    let gs = Guarantee::parse_list(&joined)
        .map_err(|e| anyhow::anyhow!("{}: guarantees: {e}", run_json.display()))?;
    Ok((gs, GuaranteeSource::RunJson(run_json)))
}

/// One line on the guarantees checked and where they came from.
pub fn guarantees_line(gs: &[Guarantee], source: &GuaranteeSource) -> String {
    let names: Vec<&str> = gs.iter().map(|g| g.as_str()).collect();
    let names = if names.is_empty() {
        "none".to_string()
    } else {
        names.join(",")
    };
    match source {
        GuaranteeSource::Flag => format!("ladon check: guarantees {names} (from --guarantees)"),
        GuaranteeSource::RunJson(p) => format!(
            "ladon check: guarantees {names} (from {}; --guarantees overrides)",
            p.display()
        ),
        GuaranteeSource::Default => {
            format!("ladon check: guarantees {names} (the default; --guarantees overrides)")
        }
    }
}

/// Runs the check; returns the verdict's exit code.
pub fn run(mut args: CheckArgs) -> Result<u8> {
    args.history = history_path(&args.history);
    let (guarantees, source) = resolve_guarantees(args.guarantees.as_deref(), &args.history)?;
    // On stderr, so that `--json` output stays one JSON object.
    eprintln!("{}", guarantees_line(&guarantees, &source));
    // A run's own figure, so that re-checking a run gives the same report.
    let messages_per_write = args.messages_per_write.or_else(|| match &source {
        GuaranteeSource::RunJson(p) => std::fs::read_to_string(p)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.pointer("/outcome/messages_per_write")?.as_f64()),
        _ => None,
    });
    let opts = CheckOptions {
        guarantees,
        max_examples: args.max_examples,
        messages_per_write,
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
