//! The execution seam: one way of running a test against a system. The
//! simulator ([`Simulation`]) and the live process runner
//! (`live::process_run::ProcessExecution`) implement [`Execution`];
//! everything around a run is shared and written once
//! (`store::run_stored`): the run directory and its seed, the typed
//! `run.json`, the check, `report.json`, `summary.txt`, `report.html`,
//! interruption (SIGINT, SIGTERM), `results/latest`, the printed result and
//! JUnit. A new kind of system (a database, remote hosts) plugs in by
//! implementing this trait alone; see docs/architecture.md.

use std::path::Path;
use std::sync::Arc;

use ladon_checker::report::Report;

use crate::adapters::{self, DynAdapter, Mode};
use crate::events::Listeners;
use crate::options::RunOptions;
use crate::runner::{RunContext, RunOutcome};

/// Runs one test into a run directory.
pub trait Execution {
    /// `simulation` or `live`: `run.json`'s `mode`, the summary's first line,
    /// whether times are virtual or wall-clock.
    fn mode(&self) -> Mode;

    /// Runs the test, emitting its run events to `events` (see
    /// `crate::events`): first `Start` with the node names, then every
    /// operation invoked and completed and every nemesis step through the
    /// shared `crate::record::Recorder`, messages and node log lines if it
    /// has them, and `Progress` now and then (at least every 100 ms of
    /// wall-clock time in a live run: sidecar files flush on it). The
    /// listeners write the run's files (`history.jsonl`, `messages.jsonl`,
    /// `nodes/<name>.log`); `run_dir` is for what only the execution writes
    /// (a live node's stderr). When `interrupt::requested` turns `Some`,
    /// stops its faults and clients and returns with
    /// [`RunOutcome::interrupted`] set (no final phase).
    fn execute(&mut self, run_dir: &Path, events: &mut Listeners) -> anyhow::Result<RunOutcome>;

    /// Adds what only this execution knows to the checker's report (e.g.
    /// the live final phase's window); default nothing.
    fn annotate(&self, _report: &mut Report) {}

    /// Lines the summary prints under the run's figures; default none.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A deterministic simulation of an in-process adapter: Ladon's own
/// (reference, toy, CRDT libraries) or one a program brings
/// (`adapters::DynAdapter`, e.g. through the `ladon` facade crate).
pub struct Simulation {
    /// Resolved options (seed set).
    pub options: RunOptions,
    /// The adapter that builds and runs the cluster (see `adapters::named`
    /// for the one `options.adapter` names).
    pub adapter: Arc<dyn DynAdapter>,
}

impl Simulation {
    /// A simulation of the adapter `options.adapter` names.
    pub fn new(options: RunOptions) -> Simulation {
        let adapter = adapters::named(options.adapter);
        Simulation { options, adapter }
    }
}

impl Execution for Simulation {
    fn mode(&self) -> Mode {
        Mode::Simulation
    }

    fn execute(&mut self, _run_dir: &Path, events: &mut Listeners) -> anyhow::Result<RunOutcome> {
        use anyhow::Context;
        let seed = self
            .options
            .seed
            .context("internal: a simulation needs a resolved seed")?;
        let mut ctx = RunContext {
            options: self.options.clone(),
            seed,
            events,
        };
        self.adapter.run(&mut ctx)
    }
}
