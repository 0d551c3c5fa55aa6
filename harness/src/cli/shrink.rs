//! `ladon shrink RUN_DIR`: the smallest run that still shows the failing
//! run's anomaly, stored as a new run directory (see [`crate::shrink`]).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use ladon_checker::report::Anomaly;

use crate::options::RunOptions;
use crate::shrink::{self, Shrunk};
use crate::store::{self, RunInfo};

/// Shrink a failing simulated run to the smallest run that still fails.
#[derive(Debug, clap::Args)]
pub struct ShrinkArgs {
    /// A failing simulated run's directory (holding run.json).
    pub run_dir: PathBuf,
    /// The anomaly to keep (default: the run's first forbidden anomaly in
    /// the contract's order).
    #[arg(long, value_name = "NAME")]
    pub anomaly: Option<Anomaly>,
    /// Candidate runs at once (default: every core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Where the shrunk run directory goes (default: the run's own store).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Also write the minimal history as checker fixture NAME
    /// (`checker/tests/fixtures/shrunk/NAME.jsonl`) and record its snapshot.
    #[arg(long, value_name = "NAME")]
    pub fixture: Option<String>,
    /// Where `--fixture` writes.
    #[arg(long, default_value = "checker/tests/fixtures/shrunk")]
    pub fixture_dir: PathBuf,
}

/// Reads a run directory's options for shrinking; refuses live runs.
pub fn load_simulated(dir: &Path) -> anyhow::Result<RunInfo> {
    let info_path = dir.join("run.json");
    let text = std::fs::read_to_string(&info_path)
        .with_context(|| format!("reading {}", info_path.display()))?;
    let head: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", info_path.display()))?;
    let mode = head.get("mode").and_then(|m| m.as_str()).unwrap_or("");
    if mode != "simulation" {
        bail!(
            "{}: a {mode:?} run cannot be shrunk: shrinking re-runs smaller variants and needs each to \
             repeat deterministically, which only simulated runs do (real processes on wall-clock \
             time do not; see docs/simulation.md, \"Shrinking live runs\")",
            info_path.display()
        );
    }
    serde_json::from_str(&text).with_context(|| format!("parsing {}", info_path.display()))
}

/// A progress bar on a terminal, hidden otherwise.
pub fn progress_bar() -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} candidate runs, {elapsed}  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Where a shrunk run went.
pub struct StoredShrink {
    pub dir: PathBuf,
    pub reproduce: String,
}

/// Stores the minimal run as a run directory (`<store>/<test>-shrunk/...`):
/// history, report.html, `nemesis-schedule.json` and run.json whose
/// reproduce command names that file; `shrink.json` records the reduction.
pub fn store_minimal(
    s: &Shrunk,
    store_dir: &Path,
    from: Option<&Path>,
) -> anyhow::Result<StoredShrink> {
    let mut o: RunOptions = s.minimal.options.clone();
    o.store = store_dir.to_path_buf();
    if !o.test_name().ends_with("-shrunk") {
        o.test = Some(format!("{}-shrunk", o.test_name()));
    }
    let run = store::execute(&o, String::new(), true, None)?;
    let dir = run.dir.context("the shrunk run produced no directory")?;
    anyhow::ensure!(
        run.report
            .as_ref()
            .is_some_and(|r| shrink::shows(r, s.anomaly)),
        "internal: the stored shrunk run in {} does not show {}",
        dir.display(),
        s.anomaly.as_str()
    );
    let schedule_file = dir.join("nemesis-schedule.json");
    if let Some(schedule) = &o.nemesis_schedule {
        std::fs::write(&schedule_file, serde_json::to_string_pretty(schedule)?)
            .with_context(|| format!("writing {}", schedule_file.display()))?;
    }
    let reproduce = crate::cli::run::command_from_options(&o, Some(&schedule_file));
    let mut info = run.info.clone();
    info.reproduce = reproduce.clone();
    std::fs::write(dir.join("run.json"), serde_json::to_string_pretty(&info)?)
        .context("writing run.json")?;
    let record = serde_json::json!({
        "anomaly": s.anomaly.as_str(),
        "from": from.map(|p| p.display().to_string()),
        "before": size_json(&s.original.size),
        "after": size_json(&s.minimal.size),
        "candidates": s.candidates,
        "steps": s.steps,
    });
    std::fs::write(
        dir.join("shrink.json"),
        serde_json::to_string_pretty(&record)?,
    )
    .context("writing shrink.json")?;
    if let Err(e) = crate::report::html::write_report(&dir) {
        eprintln!("warning: report.html not written: {e}");
    }
    Ok(StoredShrink { dir, reproduce })
}

fn size_json(s: &shrink::Size) -> serde_json::Value {
    serde_json::json!({
        "ops": s.ops,
        "client_ops": s.client_ops,
        "nemesis_steps": s.schedule.steps.len(),
        "nemesis": s.schedule.describe(),
        "nodes": s.nodes,
    })
}

/// Prints the reduction, the reproduce command and the anomaly's explanation.
pub fn print_shrunk(s: &Shrunk, stored: &StoredShrink, secs: f64) {
    println!(
        "shrunk {} in {} candidate runs ({:.1} s):",
        s.anomaly.as_str(),
        s.candidates,
        secs
    );
    println!(
        "  {} → {}",
        s.original.size.before_text(),
        s.minimal.size.after_text()
    );
    println!("stored in {}", stored.dir.display());
    println!("reproduce with: {}", stored.reproduce);
    if let Some(f) = s.minimal.report.anomalies.get(&s.anomaly) {
        for ex in f.examples.iter().take(1) {
            println!("{}: {}", s.anomaly.as_str(), ex.explanation);
        }
    }
}

/// Writes the minimal history as checker fixture `name` under `dir`
/// (`NAME.jsonl`) with the guarantees it was checked under
/// (`NAME.guarantees`, which `checker/tests/fixtures.rs` reads); returns
/// the history's path.
pub fn write_fixture(
    run_dir: &Path,
    info: &RunInfo,
    dir: &Path,
    name: &str,
) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'),
        "--fixture {name:?}: use lowercase letters, digits, - and _"
    );
    let fixtures_root = dir.parent().unwrap_or(dir);
    anyhow::ensure!(
        fixtures_root.is_dir(),
        "--fixture-dir {}: {} does not exist; run from the Ladon repository root or pass --fixture-dir",
        dir.display(),
        fixtures_root.display()
    );
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let history = dir.join(format!("{name}.jsonl"));
    anyhow::ensure!(
        !history.exists(),
        "--fixture {name}: {} exists already",
        history.display()
    );
    std::fs::copy(run_dir.join("history.jsonl"), &history)
        .with_context(|| format!("writing {}", history.display()))?;
    std::fs::write(
        dir.join(format!("{name}.guarantees")),
        format!("{}\n", info.guarantees.join(",")),
    )?;
    Ok(history)
}

/// Records the new fixture's insta snapshots by running the checker's
/// fixture test for that file only: `INSTA_GLOB_FILTER` is matched against
/// the path below the glob's base (`checker/tests`), so it names
/// `fixtures/shrunk/NAME.jsonl`, and `INSTA_UPDATE=always` writes the new
/// snapshots in place (`unseen` would leave a brand-new snapshot as
/// `.snap.new`). The fixture's name is new (`write_fixture` refuses an
/// existing one), so no reviewed snapshot is overwritten.
fn record_snapshot(history: &Path, dir: &Path) {
    let tests_root = dir.parent().and_then(Path::parent).unwrap_or(dir);
    let filter = history
        .strip_prefix(tests_root)
        .unwrap_or(history)
        .display()
        .to_string();
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .args(["test", "-q", "-p", "ladon-checker", "--test", "fixtures"])
        .env("INSTA_UPDATE", "always")
        .env("INSTA_GLOB_FILTER", &filter)
        .status();
    let stem = filter
        .strip_prefix("fixtures/")
        .unwrap_or(&filter)
        .replace('/', "__");
    // A passing test run proves nothing by itself: a filter that matches
    // no file passes too. The snapshot files must be there.
    let written = ["report", "summary"].iter().all(|what| {
        tests_root
            .join("snapshots")
            .join(format!("fixtures__{what}@{stem}.snap"))
            .is_file()
    });
    match status {
        Ok(s) if s.success() && written => println!(
            "snapshots recorded: checker/tests/snapshots/fixtures__{{report,summary}}@{stem}.snap"
        ),
        _ => eprintln!(
            "warning: the snapshots were not recorded; run \
             `INSTA_UPDATE=always INSTA_GLOB_FILTER={filter} cargo test -p ladon-checker --test fixtures`"
        ),
    }
}

pub fn main(args: ShrinkArgs) -> anyhow::Result<ExitCode> {
    let info = load_simulated(&args.run_dir)?;
    let mut o = info.options.clone();
    o.seed = Some(info.seed);
    let o = crate::cli::run::resolve(o).context("invalid options in run.json")?;
    let jobs = args.jobs.unwrap_or_else(crate::pool::default_jobs);
    eprintln!(
        "ladon shrink: {} (seed {}) on {jobs} threads",
        args.run_dir.display(),
        info.seed
    );
    let t0 = std::time::Instant::now();
    let bar = progress_bar();
    let shrunk = shrink::shrink_options(&o, args.anomaly, jobs, &bar);
    bar.finish_and_clear();
    let shrunk = shrunk?;
    let store_dir = args.store.clone().unwrap_or_else(|| o.store.clone());
    let stored = store_minimal(&shrunk, &store_dir, Some(&args.run_dir))?;
    print_shrunk(&shrunk, &stored, t0.elapsed().as_secs_f64());
    if let Some(name) = &args.fixture {
        let info = load_simulated(&stored.dir)?;
        let history = write_fixture(&stored.dir, &info, &args.fixture_dir, name)?;
        println!("fixture written: {}", history.display());
        record_snapshot(&history, &args.fixture_dir);
    }
    Ok(ExitCode::SUCCESS)
}
