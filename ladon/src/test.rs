//! [`Test`]: the builder a user's `cargo test` drives.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ladon_adapters::node::Cluster;
use ladon_checker::report::{Guarantee, Verdict};
use ladon_harness::nemesis::{FaultKind, FaultList};
use ladon_harness::options::{AdapterKind, Dur, RunOptions};
use ladon_harness::store::{self, MemoryRun};
use ladon_workloads::WorkloadKind;

use crate::adapter::{kebab, short_type_name};
use crate::outcome::{Failure, Outcome, SeedResult};
use crate::Adapter;

/// A simulated test of your cluster over a range of seeds.
///
/// Options start from `ladon run`'s defaults (3 nodes, list-append,
/// partitions and clock faults, 30 s of virtual time, guarantees the
/// cluster declares) and seeds `0..100`; [`Test::options`] reaches every
/// other option. [`Test::run`] runs the seeds on every core in memory,
/// checks each history and stores the first failing seed in full (its run
/// directory with `report.html`, under `target/ladon/` by default).
#[derive(Clone, Debug)]
pub struct Test {
    adapter: Adapter,
    options: RunOptions,
    seeds: Range<u64>,
    jobs: Option<usize>,
    store: Option<PathBuf>,
    program: String,
}

impl Test {
    /// A test of the cluster `build(nodes)` makes. Its adapter name (in
    /// reproduce commands and the test name) is the cluster's type name in
    /// kebab case, `MyStore` → `my-store`: see [`Test::name`].
    pub fn new<C, F>(build: F) -> Test
    where
        F: Fn(usize) -> C + Send + Sync + 'static,
        C: Cluster,
        C::Node: 'static,
    {
        let name = kebab(short_type_name::<C>());
        Test::with_adapter(&name, Adapter::new(build))
    }

    /// A test of `adapter` registered as `name` in your binary (see
    /// [`cli::main_with`](crate::cli::main_with)). Panics if `name` is not
    /// an adapter name (lowercase letters, digits and `-`).
    pub fn with_adapter(name: &str, adapter: Adapter) -> Test {
        let options = RunOptions {
            adapter: adapter_kind(name),
            ..RunOptions::default()
        };
        Test {
            adapter,
            options,
            seeds: 0..100,
            jobs: None,
            store: None,
            program: "cargo run --".into(),
        }
    }

    /// The adapter's name as your binary registers it (`--adapter NAME` in
    /// reproduce commands; the test is named `NAME-WORKLOAD`). Panics if it
    /// is not an adapter name (lowercase letters, digits and `-`).
    pub fn name(mut self, name: &str) -> Test {
        self.options.adapter = adapter_kind(name);
        self
    }

    /// How reproduce commands start, before `run --adapter ...` (default
    /// `cargo run --`: your crate's binary calling
    /// [`cli::main_with`](crate::cli::main_with)).
    pub fn program(mut self, command: impl Into<String>) -> Test {
        self.program = command.into();
        self
    }

    /// Number of nodes (`--nodes`; your cluster builder gets it).
    pub fn nodes(mut self, nodes: usize) -> Test {
        self.options.nodes = nodes;
        self
    }

    /// What the clients do (`--workload`).
    pub fn workload(mut self, workload: WorkloadKind) -> Test {
        self.options.workload = workload.into();
        self
    }

    /// The fault packages the nemesis draws from (`--nemesis`; none for a
    /// fault-free run).
    pub fn nemesis(mut self, faults: impl IntoIterator<Item = FaultKind>) -> Test {
        self.options.nemesis = FaultList(faults.into_iter().collect());
        self
    }

    /// The guarantees to check (`--guarantees`; default: those your
    /// cluster declares).
    pub fn guarantees(mut self, guarantees: impl IntoIterator<Item = Guarantee>) -> Test {
        self.options.guarantees = Some(guarantees.into_iter().collect());
        self
    }

    /// The seeds to run, one simulated test each.
    pub fn seeds(mut self, seeds: Range<u64>) -> Test {
        self.seeds = seeds;
        self
    }

    /// Length of the faulty phase in virtual time (`--time-limit`).
    pub fn time_limit(mut self, limit: Duration) -> Test {
        self.options.time_limit = Dur(limit.as_nanos().min(u64::MAX.into()) as u64);
        self
    }

    /// Mean time between nemesis steps (`--nemesis-interval`, default 5 s):
    /// keep it well under [`Test::time_limit`] so faults happen at all.
    pub fn nemesis_interval(mut self, interval: Duration) -> Test {
        self.options.nemesis_interval = Dur(interval.as_nanos().min(u64::MAX.into()) as u64);
        self
    }

    /// Draw the fault mix and its parameters from each seed (`--swarm`).
    pub fn swarm(mut self, on: bool) -> Test {
        self.options.swarm = on;
        self
    }

    /// Any other option of `ladon run` (the run spec): e.g.
    /// `.options(|o| o.rate = 500.0)`.
    pub fn options(mut self, set: impl FnOnce(&mut RunOptions)) -> Test {
        set(&mut self.options);
        self
    }

    /// Worker threads (default: one per core).
    pub fn jobs(mut self, jobs: usize) -> Test {
        self.jobs = Some(jobs);
        self
    }

    /// Where the failing seed's run directory goes (default
    /// `target/ladon/`: `$CARGO_TARGET_DIR/ladon`, or the `target`
    /// directory holding the test binary).
    pub fn store(mut self, dir: impl Into<PathBuf>) -> Test {
        self.store = Some(dir.into());
        self
    }

    /// The run spec of `seed`: this test's options with the seed set,
    /// swarm applied and validated, resolved as `ladon run` resolves its
    /// flags (`cli::run::resolve`), so the seed runs the same here as
    /// there.
    pub fn spec(&self, seed: u64) -> Result<RunOptions, crate::Error> {
        let o = RunOptions {
            seed: Some(seed),
            ..self.options.clone()
        };
        ladon_harness::cli::run::resolve_with(&*self.adapter.inner, o)
    }

    /// The command that reproduces `o`'s run with your binary.
    fn reproduce(&self, o: &RunOptions) -> String {
        let o = RunOptions {
            store: RunOptions::default().store,
            ..o.clone()
        };
        let command = ladon_harness::cli::run::command_from_options(&o, None);
        // command_from_options starts with the program: ours replaces it.
        let rest = command.split_once(' ').map_or("", |(_, rest)| rest);
        format!("{} {rest}", self.program)
    }

    /// Runs every seed and returns what was found; panics on options no
    /// run can take (e.g. `nodes(0)`). See [`Test::try_run`].
    #[track_caller]
    pub fn run(self) -> Outcome {
        match self.try_run() {
            Ok(outcome) => outcome,
            Err(e) => panic!("ladon: the test cannot run: {e:#}"),
        }
    }

    /// Runs every seed in memory on [`Test::jobs`] threads, checks each
    /// history, then runs the first failing seed again into a run
    /// directory (the same history: a seed decides everything). Both go
    /// through the pipeline of `ladon explore` and `ladon run`
    /// (`store::execute_in_memory_with`, `store::execute_with`).
    pub fn try_run(self) -> Result<Outcome, crate::Error> {
        let seeds: Vec<u64> = self.seeds.clone().collect();
        if let Some(&first) = seeds.first() {
            self.spec(first)?;
        }
        let jobs = self.jobs.unwrap_or_else(ladon_harness::pool::default_jobs);
        let results = ladon_harness::pool::map(&seeds, jobs, |&seed| self.run_in_memory(seed));
        let first_failure = match results.iter().find(|r| r.verdict != Verdict::Valid) {
            Some(r) => Some(self.store_run(r.seed)?),
            None => None,
        };
        Ok(Outcome {
            test: self.options.test_name(),
            seeds: self.seeds.clone(),
            results,
            first_failure,
        })
    }

    /// One seed, in memory: its verdict and anomalies.
    fn run_in_memory(&self, seed: u64) -> SeedResult {
        let run = || -> Result<_, crate::Error> {
            let o = self.spec(seed)?;
            store::execute_in_memory_with(&*self.adapter.inner, &o, None)
        };
        match run() {
            Ok(MemoryRun {
                report: Some(report),
                ..
            }) => SeedResult::of_report(seed, &report),
            Ok(MemoryRun { check_error, .. }) => SeedResult::of_error(
                seed,
                check_error.unwrap_or_else(|| "the history could not be checked".into()),
            ),
            Err(e) => SeedResult::of_error(seed, format!("{e:#}")),
        }
    }

    /// Runs `seed` into a run directory under the store and reads back
    /// what it found.
    fn store_run(&self, seed: u64) -> Result<Failure, crate::Error> {
        let mut o = self.spec(seed)?;
        let store_dir = self.store.clone().unwrap_or_else(default_store);
        o.store = store_dir.clone();
        let reproduce = self.reproduce(&o);
        let run = store::execute_with(
            self.adapter.inner.clone(),
            &o,
            reproduce.clone(),
            true,
            None,
        )?;
        let dir = run.dir.clone().unwrap_or(store_dir);
        Ok(Failure {
            seed,
            report: run.report,
            check_error: run.check_error,
            run_dir: dir,
            reproduce,
            args: cli_args(&o),
        })
    }
}

/// `name` as an adapter kind; panics on a name `--adapter` cannot spell.
#[track_caller]
fn adapter_kind(name: &str) -> AdapterKind {
    AdapterKind::custom(name).unwrap_or_else(|e| panic!("ladon: {e}"))
}

/// `ladon run`'s arguments (after `run`) for `o`, store left to the default.
fn cli_args(o: &RunOptions) -> Vec<String> {
    let o = RunOptions {
        store: RunOptions::default().store,
        ..o.clone()
    };
    let command = ladon_harness::cli::run::command_from_options(&o, None);
    let words = shlex::split(&command).unwrap_or_default();
    words.into_iter().skip(2).collect()
}

/// `target/ladon`: `$CARGO_TARGET_DIR/ladon` if set, else the `target`
/// directory that holds the running test binary, else `./target/ladon`.
fn default_store() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Path::new(&dir).join("ladon");
    }
    let exe = std::env::current_exe().ok();
    exe.as_deref()
        .and_then(|p| {
            p.ancestors()
                .find(|a| a.file_name().is_some_and(|n| n == "target"))
        })
        .map(|t| t.join("ladon"))
        .unwrap_or_else(|| PathBuf::from("target/ladon"))
}
