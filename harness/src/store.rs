//! The results store: `results/<test>/<UTC time>-seed<seed>/` holding
//! `history.jsonl` (streamed and flushed as the test runs), `run.json`,
//! `report.json`, `summary.txt`, `messages.jsonl` and `nodes/<name>.log`,
//! plus a `results/latest` link to the newest run.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use anyhow::Context;
use ladon_checker::report::{Guarantee, Report, Verdict};
use ladon_checker::writer::HistoryWriter;
use ladon_checker::CheckOptions;
use serde::{Deserialize, Serialize};

use crate::adapters::{self, Mode};
use crate::options::RunOptions;
use crate::runner::{HistorySink, RunContext, RunOutcome};

/// `run.json`: everything needed to understand and repeat a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    pub test: String,
    pub seed: u64,
    pub mode: String,
    pub options: RunOptions,
    pub reproduce: String,
    pub ladon_version: String,
    pub git_revision: Option<String>,
    pub guarantees: Vec<String>,
    pub started_at: String,
    #[serde(default)]
    pub outcome: Option<RunOutcome>,
}

/// A finished run.
pub struct StoredRun {
    pub dir: Option<PathBuf>,
    pub info: RunInfo,
    pub outcome: RunOutcome,
    /// `None` when the checker could not run (see `check_error`).
    pub report: Option<Report>,
    pub check_error: Option<String>,
}

impl StoredRun {
    pub fn verdict(&self) -> Verdict {
        self.report
            .as_ref()
            .map(|r| r.verdict)
            .unwrap_or(Verdict::Unknown)
    }
}

/// `YYYYMMDDTHHMMSSZ` for the current UTC time.
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The current git commit, if the working directory is in a repository.
pub fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Creates `store/<test>/<stamp>-seed<seed>/` (suffixed if it exists).
pub fn create_run_dir(store: &Path, test: &str, seed: u64) -> io::Result<PathBuf> {
    let base = store.join(test).join(format!("{}-seed{seed}", utc_stamp()));
    let mut dir = base.clone();
    let mut k = 1;
    while dir.exists() {
        k += 1;
        dir = PathBuf::from(format!("{}-{k}", base.display()));
    }
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Points `store/latest` at `dir`.
pub fn update_latest(store: &Path, dir: &Path) -> io::Result<()> {
    let link = store.join("latest");
    let _ = fs::remove_file(&link);
    let target = dir.strip_prefix(store).unwrap_or(dir);
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, &link)?;
    Ok(())
}

/// The guarantees to check: `--guarantees`, else the adapter's.
pub fn resolve_guarantees(o: &RunOptions) -> anyhow::Result<Vec<String>> {
    match &o.guarantees {
        Some(g) => {
            let parsed =
                Guarantee::parse_list(g).map_err(|e| anyhow::anyhow!("--guarantees: {e}"))?;
            Ok(parsed.iter().map(|g| g.as_str().to_string()).collect())
        }
        None => (adapters::find(&o.adapter)?.guarantees)(o),
    }
}

fn check_options(
    guarantees: &[String],
    messages_per_write: Option<f64>,
) -> anyhow::Result<CheckOptions> {
    let gs = if guarantees.is_empty() {
        Vec::new()
    } else {
        Guarantee::parse_list(&guarantees.join(","))
            .map_err(|e| anyhow::anyhow!("guarantees: {e}"))?
    };
    Ok(CheckOptions {
        guarantees: gs,
        max_examples: 5,
        messages_per_write,
        ..CheckOptions::default()
    })
}

/// Runs the checker, turning a checker panic into an error message (the
/// checker is developed separately; a crash there must not lose the run).
pub fn check_file(path: &Path, opts: &CheckOptions) -> Result<Report, String> {
    match std::panic::catch_unwind(|| ladon_checker::check_path(path, opts)) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(format!("reading {}: {e}", path.display())),
        Err(_) => Err("the checker panicked (is the checker branch merged?)".into()),
    }
}

/// Checks events in memory, the same way.
pub fn check_events(
    events: &[ladon_checker::Event],
    opts: &CheckOptions,
) -> Result<Report, String> {
    std::panic::catch_unwind(|| ladon_checker::check_events(events, opts))
        .map_err(|_| "the checker panicked (is the checker branch merged?)".to_string())
}

/// A short human summary of a report.
pub fn summary_text(
    info: &RunInfo,
    outcome: &RunOutcome,
    report: Option<&Report>,
    err: Option<&str>,
) -> String {
    let mut head = format!(
        "events {}  completed ops {}  writes {}  messages sent {} (per write {})\n",
        outcome.events,
        outcome.completed_ops,
        outcome.writes,
        outcome.messages_sent,
        outcome
            .messages_per_write
            .map(|m| format!("{m:.2}"))
            .unwrap_or_else(|| "-".into())
    );
    match outcome.converged_ns {
        Some(t) => head.push_str(&format!(
            "final reads agreed {} after the heal\n",
            ladon_checker::explain::duration(t.saturating_sub(outcome.heal_ns))
        )),
        None => head.push_str("final reads never agreed before --converge-timeout\n"),
    }
    let mut s = run_summary(&info.test, info.seed, &info.mode, &head, report, err);
    if info.mode == Mode::Simulation.as_str() && report.is_some() {
        s.push_str(SIM_LATENCY_NOTE);
        s.push('\n');
    }
    s
}

/// What a simulated run's latency figures are, said plainly under them.
pub const SIM_LATENCY_NOTE: &str = "(Simulated latency is what a client sees, invoke to completion in virtual time: 100.0 µs each way on the client's link plus any wait for other leaders; a node that answers without waiting shows a constant 200.0 µs.)";

/// The summary of any run, simulated or live: the run line, the run's own
/// figures (`head`, one or more lines), then the checker's summary or why
/// there is none.
pub fn run_summary(
    test: &str,
    seed: u64,
    mode: &str,
    head: &str,
    report: Option<&Report>,
    err: Option<&str>,
) -> String {
    let mut s = format!("test {test} seed {seed} ({mode})\n");
    s.push_str(head);
    match (report, err) {
        (Some(r), _) => {
            s.push('\n');
            s.push_str(&r.summary_text());
            if !s.ends_with('\n') {
                s.push('\n');
            }
        }
        (None, Some(e)) => s.push_str(&format!("Verdict: UNKNOWN: {e}\n")),
        (None, None) => s.push_str("Verdict: UNKNOWN: the history could not be checked\n"),
    }
    s
}

/// A run kept in memory, with its history (`ladon shrink`'s candidates).
pub struct MemoryRun {
    pub events: Vec<ladon_checker::Event>,
    pub outcome: RunOutcome,
    pub report: Option<Report>,
    pub check_error: Option<String>,
}

/// Runs one test with resolved options (seed set) in memory and checks it.
pub fn execute_in_memory(
    options: &RunOptions,
    progress: Option<&mut dyn FnMut(u64, u64)>,
) -> anyhow::Result<MemoryRun> {
    let seed = options
        .seed
        .context("internal: execute needs a resolved seed")?;
    let adapter = adapters::find(&options.adapter)?;
    let guarantees = resolve_guarantees(options)?;
    let mut events: Vec<ladon_checker::Event> = Vec::new();
    let outcome = {
        let mut ctx = RunContext {
            options: options.clone(),
            seed,
            history: &mut events,
            run_dir: None,
            progress,
        };
        (adapter.run)(&mut ctx)?
    };
    let opts = check_options(&guarantees, outcome.messages_per_write)?;
    let (report, check_error) = match check_events(&events, &opts) {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    Ok(MemoryRun {
        events,
        outcome,
        report,
        check_error,
    })
}

/// Runs one test with resolved options (seed set) and stores it.
/// `store == false` keeps everything in memory (explore).
pub fn execute(
    options: &RunOptions,
    reproduce: String,
    store: bool,
    progress: Option<&mut dyn FnMut(u64, u64)>,
) -> anyhow::Result<StoredRun> {
    let seed = options
        .seed
        .context("internal: execute needs a resolved seed")?;
    let adapter = adapters::find(&options.adapter)?;
    let guarantees = resolve_guarantees(options)?;
    let test = options.test_name();
    let mut info = RunInfo {
        test: test.clone(),
        seed,
        mode: adapter.mode.as_str().to_string(),
        options: options.clone(),
        reproduce,
        ladon_version: env!("CARGO_PKG_VERSION").to_string(),
        git_revision: if store { git_revision() } else { None },
        guarantees: guarantees.clone(),
        started_at: utc_stamp(),
        outcome: None,
    };
    if !store {
        let mem = execute_in_memory(options, progress)?;
        info.outcome = Some(mem.outcome.clone());
        return Ok(StoredRun {
            dir: None,
            info,
            outcome: mem.outcome,
            report: mem.report,
            check_error: mem.check_error,
        });
    }
    let dir = create_run_dir(&options.store, &test, seed)
        .with_context(|| format!("creating a run directory under {}", options.store.display()))?;
    let write_info = |info: &RunInfo| -> anyhow::Result<()> {
        let f = File::create(dir.join("run.json")).context("writing run.json")?;
        serde_json::to_writer_pretty(BufWriter::new(f), info)?;
        Ok(())
    };
    write_info(&info)?;
    let _ = update_latest(&options.store, &dir);
    let history_path = dir.join("history.jsonl");
    let outcome = {
        let file = File::create(&history_path)
            .with_context(|| format!("creating {}", history_path.display()))?;
        let mut writer = HistoryWriter::new(file);
        let sink: &mut dyn HistorySink = &mut writer;
        let mut ctx = RunContext {
            options: options.clone(),
            seed,
            history: sink,
            run_dir: Some(dir.clone()),
            progress,
        };
        (adapter.run)(&mut ctx)?
    };
    info.outcome = Some(outcome.clone());
    write_info(&info)?;
    let opts = check_options(&guarantees, outcome.messages_per_write)?;
    let (report, check_error) = match check_file(&history_path, &opts) {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    if let Some(r) = &report {
        let f = File::create(dir.join("report.json")).context("writing report.json")?;
        serde_json::to_writer_pretty(BufWriter::new(f), r)?;
    }
    let summary = summary_text(&info, &outcome, report.as_ref(), check_error.as_deref());
    fs::write(dir.join("summary.txt"), summary).context("writing summary.txt")?;
    if report.is_some() {
        // The run stands without its page: a rendering problem is a warning.
        if let Err(e) = crate::report::html::write_report(&dir) {
            eprintln!("warning: report.html not written: {e}");
        }
    }
    Ok(StoredRun {
        dir: Some(dir),
        info,
        outcome,
        report,
        check_error,
    })
}

/// Mode of an adapter by name (for printing).
pub fn mode_of(name: &str) -> Option<Mode> {
    adapters::find(name).ok().map(|a| a.mode)
}
