//! `ladon suite FILE.toml [--jobs J] [--store DIR] [--junit FILE] [--filter TEXT] [--list]
//! [--shard I/N] [--out DIR]`

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;

use crate::shard::{Part, Shard, ShardFile};
use crate::suite::{judge, matrix, runner, spec};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The suite file (TOML; see docs/reports.md).
    pub file: PathBuf,
    /// Runs at once (default: the file's `jobs`, else the available cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Where runs land (default: results/suite-<name>).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Write JUnit XML here: one test suite per group, one test case per run.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Only runs whose name contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Print the runs the suite expands to, with their commands, and exit.
    #[arg(long)]
    pub list: bool,
    /// Run only shard I of N (1-based) of the suite's cells (a cell's seeds
    /// stay together): those at positions p with p % N == I - 1. Each shard
    /// writes shard.json and junit.xml to --out (default
    /// <store>/shard-I-of-N); `ladon merge` combines them. See docs/ci.md.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::shard::Shard>,
    /// Write this suite's shard.json and junit.xml into DIR (with or
    /// without --shard).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let suite = spec::load(&args.file)?;
    let mut cases = matrix::expand(&suite);
    if let Some(f) = &args.filter {
        cases.retain(|c| c.name.contains(f.as_str()));
        anyhow::ensure!(
            !cases.is_empty(),
            "--filter {f:?} matches no run of {}",
            args.file.display()
        );
    }
    let total_cases = cases.len();
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    if shard != Shard::WHOLE {
        // Cells in suite order, numbered from 0 after the filter.
        let mut cells: Vec<usize> = cases.iter().map(|c| c.cell).collect();
        cells.dedup();
        cases.retain(|c| {
            let position = cells.iter().position(|&x| x == c.cell).unwrap_or(0);
            shard.takes(position as u64)
        });
    }
    if args.list {
        for c in &cases {
            println!("{}\t{}", c.name, c.command());
        }
        return Ok(0);
    }
    if args.jobs == Some(0) {
        anyhow::bail!("--jobs must be at least 1");
    }
    let jobs = args
        .jobs
        .or(suite.jobs)
        .unwrap_or_else(crate::pool::default_jobs);
    let store = args
        .store
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(format!("suite-{}", suite.name)));
    std::fs::create_dir_all(&store)
        .with_context(|| format!("failed to create --store {}", store.display()))?;
    let runner = runner::LadonRunner::current(Duration::from_secs(suite.timeout_secs))
        .context("failed to find the ladon executable")?;
    let of_shard = if shard == Shard::WHOLE {
        String::new()
    } else {
        format!(" (shard {shard}: {} of {total_cases})", cases.len())
    };
    eprintln!(
        "suite {}: {} runs{of_shard} on {jobs} threads, runs under {}",
        suite.name,
        cases.len(),
        store.display()
    );
    let finished = AtomicUsize::new(0);
    let total = cases.len();
    let outs = runner::run_all(&cases, &runner, jobs, &store, &|case, out| {
        let n = finished.fetch_add(1, Ordering::SeqCst) + 1;
        let j = judge::judge_one(case, out);
        // In a `require = "any"` cell one seed missing the expectation is not
        // a failure yet: the cell is judged when all its seeds are in.
        eprintln!("{}", judge::progress_line(n, total, case, out.duration, &j));
    });
    let js = judge::judge_all(&cases, &outs);
    print!("{}", judge::table(&suite.name, &cases, &outs, &js));
    let title = format!("ladon suite {}", suite.name);
    let groups = judge::junit_cases(&cases, &outs, &js);
    if let Some(path) = &args.junit {
        crate::report::junit::write(path, &title, &groups)?;
    }
    let out = args
        .out
        .clone()
        .or_else(|| args.shard.map(|s| store.join(s.dir_name())));
    if let Some(dir) = &out {
        let exit = judge::exit_code(&js);
        let file = ShardFile {
            format: crate::shard::FORMAT,
            shard,
            name: suite.name.clone(),
            args: crate::shard::shared_args(&crate::cli::run::user_args("suite")),
            part: Part::Suite {
                total_cases,
                cases,
                outputs: outs,
                judgements: js,
            },
        };
        let path = crate::shard::write(dir, &file)?;
        crate::report::junit::write(&dir.join("junit.xml"), &title, &groups)?;
        eprintln!("results of shard {shard} in {}", path.display());
        return Ok(exit);
    }
    Ok(judge::exit_code(&js))
}
