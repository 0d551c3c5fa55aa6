//! The results store: `results/<test>/<UTC time>-seed<seed>/` holding
//! `history.jsonl` (streamed and flushed as the test runs), `run.json`,
//! `report.json`, `summary.txt`, `messages.jsonl` and `nodes/<name>.log`,
//! plus a `results/latest` link to the newest run.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use ladon_checker::report::{Guarantee, Report, Verdict};
use ladon_checker::CheckOptions;
use serde::{Deserialize, Serialize};

use crate::adapters::{self, Mode};
use crate::events::{Listeners, RunListener};
use crate::listeners::Progress;
use crate::options::RunOptions;
use crate::runner::{RunContext, RunOutcome};

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
    pub guarantees: Vec<Guarantee>,
    pub started_at: String,
    #[serde(default)]
    pub outcome: Option<RunOutcome>,
    /// `--adapter process`'s own flags (absent for simulated runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<crate::options::ProcessFlags>,
    /// The real-database adapters' own flags (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<crate::options::DbFlags>,
}

/// A finished run.
pub struct StoredRun {
    pub dir: Option<PathBuf>,
    pub info: RunInfo,
    pub outcome: RunOutcome,
    /// `None` when the checker could not run (see `check_error`).
    pub report: Option<Report>,
    pub check_error: Option<String>,
    /// The execution's own lines under the summary's figures.
    pub notes: Vec<String>,
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
        .map_or(0, |d| d.as_secs());
    stamp_of(secs)
}

/// `YYYYMMDDTHHMMSSZ` for `secs` seconds after the Unix epoch.
pub fn stamp_of(secs: u64) -> String {
    chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX), 0)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// Quotes `s` for a POSIX shell when it holds anything but plain
/// characters, with shlex. Words of letters, digits and `_-./:,=+@%` stay
/// bare, as reproduce commands have always spelled them (`--guarantees
/// convergence,causal`): shlex quotes `,` and `=` against brace expansion,
/// which needs a `{` that such a word cannot hold. A string with a NUL byte,
/// which no argument holds, falls back to Rust's debug quoting.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:,=+@%".contains(&b));
    if plain {
        return s.to_string();
    }
    shlex::try_quote(s)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| format!("{s:?}"))
}

/// The program a reproduce command starts with: `ladon`, or the program
/// that runs Ladon's CLI with adapters of its own (`cli::main_with`).
static PROGRAM: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The first word of reproduce commands (see [`set_program`]).
pub fn program() -> &'static str {
    PROGRAM.get().map_or("ladon", String::as_str)
}

/// Makes reproduce commands start with `name` (once per process; later
/// calls are ignored).
pub fn set_program(name: &str) {
    let _ = PROGRAM.set(name.to_string());
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
pub fn resolve_guarantees(o: &RunOptions) -> anyhow::Result<Vec<Guarantee>> {
    resolve_guarantees_with(&adapters::find(o.adapter), o)
}

/// [`resolve_guarantees`] of a run of `adapter`.
pub fn resolve_guarantees_with(
    adapter: &dyn adapters::DynAdapter,
    o: &RunOptions,
) -> anyhow::Result<Vec<Guarantee>> {
    match &o.guarantees {
        Some(g) => Ok(g.clone()),
        None => adapter.guarantees(o),
    }
}

/// The checker's options for a run: its guarantees, five examples per
/// anomaly, the run's messages per write.
pub fn check_options(guarantees: &[Guarantee], messages_per_write: Option<f64>) -> CheckOptions {
    CheckOptions {
        guarantees: guarantees.to_vec(),
        max_examples: 5,
        messages_per_write,
        ..CheckOptions::default()
    }
}

/// Runs the checker, turning a checker panic into an error message (the
/// checker is developed separately; a crash there must not lose the run).
pub fn check_file(path: &Path, opts: &CheckOptions) -> Result<Report, String> {
    match std::panic::catch_unwind(|| ladon_checker::check_path(path, opts)) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(format!("reading {}: {e}", path.display())),
        Err(_) => Err(
            "the checker panicked (a bug in Ladon: please report it with this run's history.jsonl)"
                .into(),
        ),
    }
}

/// Checks events in memory, the same way.
pub fn check_events(
    events: &[ladon_checker::Event],
    opts: &CheckOptions,
) -> Result<Report, String> {
    std::panic::catch_unwind(|| ladon_checker::check_events(events, opts)).map_err(|_| {
        "the checker panicked (a bug in Ladon: please report it with this run's history)"
            .to_string()
    })
}

/// Makes `report` (of the history a signal cut short) say so: verdict
/// `unknown`, `unknown_reason` naming the signal and what the partial
/// history alone gave.
pub fn mark_interrupted(report: &mut Report, signal: &str) {
    let alone = match report.verdict {
        Verdict::Valid => "valid".to_string(),
        Verdict::Invalid => "invalid".to_string(),
        Verdict::Unknown => match crate::report::extras::unknown_reason(report) {
            Some(why) => format!("unknown: {why}"),
            None => "unknown".to_string(),
        },
    };
    report.verdict = Verdict::Unknown;
    crate::report::extras::HarnessExtra::UnknownReason(format!(
        "interrupted by {signal} before the run's end (the history so far, checked alone: {alone})"
    ))
    .set(report);
}

/// The line `ladon run` prints when a signal stopped the run.
pub fn interrupted_line(signal: &str, dir: &Path) -> String {
    format!(
        "ladon: interrupted by {signal}: the history so far, report.json (verdict unknown), summary.txt and report.html are in {}",
        dir.display()
    )
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
    if outcome.messages_sent > 0 {
        head.push_str(&format!(
            "messages delivered {}  dropped {}  duplicated {}\n",
            outcome.messages_delivered, outcome.messages_dropped, outcome.messages_duplicated
        ));
    }
    match (&outcome.interrupted, outcome.converged_ns) {
        (Some(signal), _) => head.push_str(&format!(
            "interrupted by {signal} at {} of {} time: faults and clients stopped, no final phase\n",
            ladon_checker::explain::duration(outcome.end_ns),
            if info.mode == Mode::Simulation.as_str() { "virtual" } else { "wall-clock" }
        )),
        (None, Some(t)) => head.push_str(&format!(
            "final reads agreed {} after the heal\n",
            ladon_checker::explain::duration(t.saturating_sub(outcome.heal_ns))
        )),
        (None, None) => head.push_str("final reads never agreed before --converge-timeout\n"),
    }
    if let (None, Some(f)) = (&outcome.interrupted, &outcome.finals) {
        head.push_str(&format!(
            "final phase: {} round(s) of final reads in a {} window",
            f.rounds,
            ladon_checker::explain::duration(f.window_ns)
        ));
        if let Some((t, nodes)) = &f.last_change {
            head.push_str(&format!(
                ", last change on {} {} after the heal",
                nodes.join(", "),
                ladon_checker::explain::duration(t.saturating_sub(f.started_ns))
            ));
        }
        head.push('\n');
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
    progress: Option<Progress>,
) -> anyhow::Result<MemoryRun> {
    execute_in_memory_with(&adapters::find(options.adapter), options, progress)
}

/// [`execute_in_memory`] of a simulated run of `adapter` (the one
/// `options.adapter` names, or one a program holds: `ladon::Test`).
pub fn execute_in_memory_with(
    adapter: &dyn adapters::DynAdapter,
    options: &RunOptions,
    progress: Option<Progress>,
) -> anyhow::Result<MemoryRun> {
    let seed = options
        .seed
        .context("internal: execute needs a resolved seed")?;
    let guarantees = resolve_guarantees_with(adapter, options)?;
    let mut events: Vec<ladon_checker::Event> = Vec::new();
    let outcome = {
        let mut listeners = Listeners::new();
        if let Some(p) = progress {
            listeners.push(p);
        }
        let mut both = (&mut events, listeners);
        let mut ctx = RunContext {
            options: options.clone(),
            seed,
            events: &mut both,
        };
        let outcome = adapter.run(&mut ctx)?;
        both.1.finish()?;
        outcome
    };
    let opts = check_options(&guarantees, outcome.messages_per_write);
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
    progress: Option<Progress>,
) -> anyhow::Result<StoredRun> {
    execute_with(
        adapters::named(options.adapter),
        options,
        reproduce,
        store,
        progress,
    )
}

/// [`execute`] of a simulated run of `adapter` (the one `options.adapter`
/// names, or one a program holds: `ladon::Test`): the same run directory,
/// files, check and reports.
pub fn execute_with(
    adapter: std::sync::Arc<dyn adapters::DynAdapter>,
    options: &RunOptions,
    reproduce: String,
    store: bool,
    progress: Option<Progress>,
) -> anyhow::Result<StoredRun> {
    let seed = options
        .seed
        .context("internal: execute needs a resolved seed")?;
    let guarantees = resolve_guarantees_with(&*adapter, options)?;
    let test = options.test_name();
    let mut info = RunInfo {
        test: test.clone(),
        seed,
        mode: adapter.mode().as_str().to_string(),
        options: options.clone(),
        reproduce,
        ladon_version: env!("CARGO_PKG_VERSION").to_string(),
        git_revision: if store { git_revision() } else { None },
        guarantees: guarantees.clone(),
        started_at: utc_stamp(),
        outcome: None,
        process: None,
        db: None,
    };
    if !store {
        let mem = execute_in_memory_with(&*adapter, options, progress)?;
        info.outcome = Some(mem.outcome.clone());
        return Ok(StoredRun {
            dir: None,
            info,
            outcome: mem.outcome,
            report: mem.report,
            check_error: mem.check_error,
            notes: Vec::new(),
        });
    }
    let mut listeners = Listeners::new();
    if let Some(p) = progress {
        listeners.push(p);
    }
    run_stored(
        info,
        &mut crate::execution::Simulation {
            options: options.clone(),
            adapter,
        },
        &options.store,
        listeners,
    )
}

/// Runs `exec` into a new run directory under `store` and writes
/// everything around it, the same for every execution: `run.json` (before
/// and after), the run's events through the shared listeners
/// (`listeners::for_run_dir`, plus `extra`), the check, `report.json` (marked
/// when a signal interrupted the run), `summary.txt`, `report.html`, then
/// `latest` (only once every file is written). `info` carries the
/// resolved run (seed, guarantees, reproduce command).
pub fn run_stored(
    mut info: RunInfo,
    exec: &mut dyn crate::execution::Execution,
    store: &Path,
    extra: Listeners,
) -> anyhow::Result<StoredRun> {
    let dir = create_run_dir(store, &info.test, info.seed)
        .with_context(|| format!("creating a run directory under {}", store.display()))?;
    let write_info = |info: &RunInfo| -> anyhow::Result<()> {
        let f = File::create(dir.join("run.json")).context("writing run.json")?;
        serde_json::to_writer_pretty(BufWriter::new(f), info)?;
        Ok(())
    };
    write_info(&info)?;
    let mut listeners = crate::listeners::for_run_dir(&dir, extra)
        .with_context(|| format!("creating the run's files in {}", dir.display()))?;
    let outcome = exec.execute(&dir, &mut listeners);
    // Whatever happened, the files hold whole lines up to here.
    let finished = listeners.finish();
    let outcome = outcome?;
    finished.context("writing the run's files")?;
    info.outcome = Some(outcome.clone());
    write_info(&info)?;
    let history_path = dir.join("history.jsonl");
    let opts = check_options(&info.guarantees, outcome.messages_per_write);
    let (mut report, check_error) = match check_file(&history_path, &opts) {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    if let Some(r) = &mut report {
        exec.annotate(r);
        if let Some(signal) = &outcome.interrupted {
            mark_interrupted(r, signal);
        }
    }
    if let Some(r) = &report {
        let f = File::create(dir.join("report.json")).context("writing report.json")?;
        serde_json::to_writer_pretty(BufWriter::new(f), r)?;
    }
    let notes = exec.notes();
    let mut summary = summary_text(&info, &outcome, report.as_ref(), check_error.as_deref());
    for n in &notes {
        summary.push_str(n);
        summary.push('\n');
    }
    fs::write(dir.join("summary.txt"), summary).context("writing summary.txt")?;
    if report.is_some() {
        // The run stands without its page: a rendering problem is a warning.
        if let Err(e) = crate::report::html::write_report(&dir) {
            eprintln!("warning: report.html not written: {e}");
        }
    }
    // `latest` moves only to a run whose files are all written.
    let _ = update_latest(store, &dir);
    Ok(StoredRun {
        dir: Some(dir),
        info,
        outcome,
        report,
        check_error,
        notes,
    })
}

/// Prints where a run went and its verdict; the reproduce command if it failed.
pub fn print_result(run: &StoredRun) {
    if let Some(dir) = &run.dir {
        eprintln!("stored in {}", dir.display());
    }
    let summary = summary_text(
        &run.info,
        &run.outcome,
        run.report.as_ref(),
        run.check_error.as_deref(),
    );
    print!("{summary}");
    for n in &run.notes {
        println!("{n}");
    }
    if run.verdict() != Verdict::Valid {
        eprintln!("reproduce with: {}", run.info.reproduce);
    }
}

/// After any stored run: prints the result (or the one line of an
/// interrupted run), writes JUnit if asked; the exit code of the verdict.
pub fn report_result(run: &StoredRun, junit: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    match (&run.outcome.interrupted, &run.dir) {
        (Some(signal), Some(dir)) => eprintln!("{}", interrupted_line(signal, dir)),
        _ => print_result(run),
    }
    if let Some(path) = junit {
        crate::report::junit::write_for_run(
            path,
            &run.info.test,
            run.report.as_ref(),
            run.check_error.as_deref(),
            &run.info.reproduce,
        )?;
    }
    Ok(ExitCode::from(run.verdict().exit_code()))
}

pub use crate::listeners::tenths_passed;

#[cfg(test)]
mod tests {
    use super::stamp_of;

    #[test]
    fn run_directory_stamps_are_utc_calendar_times() {
        assert_eq!(stamp_of(0), "19700101T000000Z");
        // A leap day's last second, and a time of this session.
        assert_eq!(stamp_of(951_782_400 + 86_399), "20000229T235959Z");
        assert_eq!(stamp_of(1_795_971_945), "20261129T170545Z");
    }
}
