//! The execution seam: one way of running a test against a system. The
//! simulator ([`Simulation`]) and the live process runner
//! (`live::process_run::ProcessExecution`) implement [`Execution`];
//! everything around a run is shared and written once
//! (`store::run_stored`): the run directory and its seed, the typed
//! `run.json`, the check, `report.json`, `summary.txt`, `report.html`,
//! interruption (SIGINT, SIGTERM), `results/latest`, the printed result and
//! JUnit. A new kind of system (a database, remote hosts) plugs in by
//! implementing this trait alone; see docs/architecture.md.

use std::fs::File;
use std::path::Path;

use ladon_checker::report::Report;
use ladon_checker::writer::HistoryWriter;

use crate::adapters::{self, Mode};
use crate::options::RunOptions;
use crate::runner::{HistorySink, RunContext, RunOutcome};

/// Runs one test into a run directory.
pub trait Execution {
    /// `simulation` or `live`: `run.json`'s `mode`, the summary's first line,
    /// whether times are virtual or wall-clock.
    fn mode(&self) -> Mode;

    /// Runs the test. Writes `history.jsonl` into `run_dir` in whole lines
    /// (flushed on line boundaries), and its sidecars there when it has
    /// them (`messages.jsonl`, `nodes/<name>.log`); calls `progress(now,
    /// end of the faulty phase)` now and then. When
    /// `interrupt::requested` turns `Some`, stops its faults and
    /// clients, writes what it has and returns with
    /// [`RunOutcome::interrupted`] set (no final phase).
    fn execute(
        &mut self,
        run_dir: &Path,
        progress: Option<&mut dyn FnMut(u64, u64)>,
    ) -> anyhow::Result<RunOutcome>;

    /// Adds what only this execution knows to the checker's report (e.g.
    /// the live final phase's window); default nothing.
    fn annotate(&self, _report: &mut Report) {}

    /// Lines the summary prints under the run's figures; default none.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A deterministic simulation of an in-process adapter (reference, toy).
pub struct Simulation {
    /// Resolved options (seed set).
    pub options: RunOptions,
}

impl Execution for Simulation {
    fn mode(&self) -> Mode {
        Mode::Simulation
    }

    fn execute(
        &mut self,
        run_dir: &Path,
        progress: Option<&mut dyn FnMut(u64, u64)>,
    ) -> anyhow::Result<RunOutcome> {
        let adapter = adapters::find(self.options.adapter);
        simulate_into(&self.options, run_dir, progress, &|ctx| (adapter.run)(ctx))
    }
}

/// Runs a simulated test with resolved options (seed set) into `run_dir`
/// (`history.jsonl`, `messages.jsonl`, node logs): the body of
/// [`Simulation`], for any way of running a simulated adapter (e.g. one a
/// library user supplies, `adapters::DynAdapter`).
pub fn simulate_into(
    options: &RunOptions,
    run_dir: &Path,
    progress: Option<&mut dyn FnMut(u64, u64)>,
    run: &dyn Fn(&mut RunContext<'_, '_>) -> anyhow::Result<RunOutcome>,
) -> anyhow::Result<RunOutcome> {
    use anyhow::Context;
    let seed = options
        .seed
        .context("internal: a simulation needs a resolved seed")?;
    let path = run_dir.join("history.jsonl");
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    // Unbuffered: one write per whole line.
    let mut writer = HistoryWriter::new(file);
    let sink: &mut dyn HistorySink = &mut writer;
    let mut ctx = RunContext {
        options: options.clone(),
        seed,
        history: sink,
        run_dir: Some(run_dir.to_path_buf()),
        progress,
    };
    run(&mut ctx)
}
