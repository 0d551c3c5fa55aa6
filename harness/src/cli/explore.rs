//! `ladon explore --seeds N`: many seeds on all cores; a table of the
//! failing ones with their anomalies and reproduce commands.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use ladon_checker::report::{Anomaly, Verdict};

use crate::options::RunOptions;
use crate::shard::{Part, Shard, ShardFile};
use crate::store;

/// Failing seeds listed one per line; the rest are summarised by anomaly.
pub const LISTED: usize = 20;

/// The failures in a few lines: how many, how many seeds showed each
/// anomaly (with its first seed), then the first `listed` seeds with their
/// reproduce commands and a count of the rest.
pub fn failure_listing(failures: &[Failure], seeds: u64, listed: usize) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "{} of {} seeds failed.", failures.len(), seeds);
    // Anomaly → (seeds showing it, first such seed).
    let mut by: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    for f in failures {
        for a in &f.anomalies {
            let name = a.split(':').next().unwrap_or(a);
            let e = by.entry(name).or_insert((0, f.seed));
            e.0 += 1;
        }
    }
    if !by.is_empty() {
        let _ = writeln!(s, "By anomaly (seeds showing it, first seed):");
        for (a, (n, first)) in &by {
            let _ = writeln!(s, "  {a:<24} {n:>6} seeds  first: seed {first}");
        }
    }
    let _ = writeln!(
        s,
        "{:>20}  {:<8}  {:<40}  reproduce",
        "seed", "verdict", "anomalies"
    );
    for f in failures.iter().take(listed) {
        let _ = writeln!(
            s,
            "{:>20}  {:<8}  {:<40}  {}",
            f.seed,
            f.verdict.as_str(),
            f.anomalies.join(","),
            f.reproduce
        );
    }
    if failures.len() > listed {
        let _ = writeln!(
            s,
            "... and {} more failing seeds (--junit FILE lists every one)",
            failures.len() - listed
        );
    }
    s
}

/// What `explore` (and `merge` of its shards) prints: one line when every
/// seed was valid, else [`failure_listing`].
pub fn result_text(failures: &[Failure], seeds: u64) -> String {
    if failures.is_empty() {
        format!("all {seeds} seeds valid\n")
    } else {
        failure_listing(failures, seeds, LISTED)
    }
}

/// Failing seeds whose runs are stored in full after exploring.
const STORED_FAILURES: usize = 5;

/// Run many seeds and list the failing ones.
#[derive(Debug, clap::Args)]
pub struct ExploreArgs {
    /// How many seeds to run (from --seed, default 1, upwards).
    #[arg(long, default_value_t = 100)]
    pub seeds: u64,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub options: RunOptions,
    /// Write JUnit XML here: one failing test case per failing seed, one
    /// passing case for the valid seeds.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
    /// Shrink the first failing seed of each distinct anomaly (see `ladon shrink`).
    #[arg(long)]
    pub shrink: bool,
    /// Run only shard I of N (1-based) of the seeds: those at positions p
    /// with p % N == I - 1. Each shard writes shard.json and junit.xml to
    /// --out (default results/<test>/shard-I-of-N); `ladon merge` combines
    /// them. See docs/ci.md.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::shard::Shard>,
    /// Write this exploration's shard.json and junit.xml into DIR (with
    /// or without --shard).
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
}

/// One failing seed (defined with the shard files that carry it).
pub use crate::shard::Failure;

/// Runs seeds `first..first+count` in memory; returns the failures in seed order.
pub fn explore(
    base: &RunOptions,
    first: u64,
    count: u64,
    jobs: usize,
    args: &[String],
) -> anyhow::Result<Vec<Failure>> {
    let seeds: Vec<u64> = (first..first + count).collect();
    explore_seeds(base, &seeds, jobs, args)
}

/// Runs the given seeds in memory; returns the failures in the seeds' order.
pub fn explore_seeds(
    base: &RunOptions,
    seeds: &[u64],
    jobs: usize,
    args: &[String],
) -> anyhow::Result<Vec<Failure>> {
    let count = seeds.len() as u64;
    let done = AtomicU64::new(0);
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::new(count)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let outcomes = crate::pool::map(seeds, jobs, |&seed| {
        let mut o = base.clone();
        o.seed = Some(seed);
        let result = crate::cli::run::resolve(o).and_then(|o| {
            let repro = crate::cli::run::reproduce_for(
                &o,
                args,
                &[
                    "--seeds", "--jobs", "--junit", "--shrink", "--shard", "--out",
                ],
            );
            store::execute(&o, repro, false, None)
        });
        let outcome = match result {
            Ok(run) if run.verdict() != Verdict::Valid => {
                let anomalies = run
                    .report
                    .as_ref()
                    .map(|r| {
                        r.anomalies
                            .iter()
                            .filter(|(_, f)| f.forbidden)
                            .map(|(a, f)| format!("{}:{}", a.as_str(), f.count))
                            .collect()
                    })
                    .unwrap_or_else(|| vec![run.check_error.clone().unwrap_or_default()]);
                Ok(Some(Failure {
                    seed,
                    verdict: run.verdict(),
                    anomalies,
                    reproduce: run.info.reproduce,
                }))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(format!("seed {seed}: {e:#}")),
        };
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        bar.set_position(d);
        if bar.is_hidden() && d.is_multiple_of(100) {
            eprintln!("  {d}/{count} seeds");
        }
        outcome
    });
    bar.finish_and_clear();
    let (failures, errors): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(Result::is_ok);
    if let Some(Err(e)) = errors.first() {
        anyhow::bail!("{} seed(s) could not run; first: {e}", errors.len());
    }
    // In seed order, as the seeds were.
    Ok(failures
        .into_iter()
        .filter_map(Result::ok)
        .flatten()
        .collect())
}

pub fn main(args: ExploreArgs) -> anyhow::Result<ExitCode> {
    let jobs = args.jobs.unwrap_or_else(crate::pool::default_jobs);
    let first = args.options.seed.unwrap_or(1);
    crate::cli::run::resolve(RunOptions {
        seed: Some(first),
        ..args.options.clone()
    })
    .context("invalid options")?;
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    let end = first
        .checked_add(args.seeds)
        .context("--seed + --seeds is beyond the largest seed")?;
    let seeds: Vec<u64> = (first..end).filter(|s| shard.takes(s - first)).collect();
    let test = args.options.test_name();
    if shard == Shard::WHOLE {
        eprintln!(
            "ladon explore: {} seeds from {first} on {jobs} threads, test {test}",
            args.seeds
        );
    } else {
        eprintln!(
            "ladon explore: shard {shard}: {} of {} seeds from {first} on {jobs} threads, test {test}",
            seeds.len(),
            args.seeds
        );
    }
    let user = crate::cli::run::user_args("explore");
    let failures = explore_seeds(&args.options, &seeds, jobs, &user)?;
    let ran = seeds.len() as u64;
    if let Some(path) = &args.junit {
        write_junit(path, &test, ran, &failures)?;
    }
    let out = args.out.clone().or_else(|| {
        args.shard
            .map(|s| args.options.store.join(&test).join(s.dir_name()))
    });
    if let Some(dir) = &out {
        let file = ShardFile {
            format: crate::shard::FORMAT,
            shard,
            name: test.clone(),
            args: crate::shard::shared_args(&user),
            part: Part::Explore {
                first,
                seeds: args.seeds,
                ran: seeds.clone(),
                failures: failures.clone(),
            },
        };
        let path = crate::shard::write(dir, &file)?;
        write_junit(&dir.join("junit.xml"), &test, ran, &failures)?;
        eprintln!("results of shard {shard} in {}", path.display());
    }
    print!("{}", result_text(&failures, ran));
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    // Store the first failing runs in full, for the report and replay.
    for f in failures.iter().take(STORED_FAILURES) {
        let o = crate::cli::run::resolve(RunOptions {
            seed: Some(f.seed),
            ..args.options.clone()
        })?;
        let run = store::execute(&o, f.reproduce.clone(), true, None)?;
        if let Some(dir) = run.dir {
            eprintln!("seed {} stored in {}", f.seed, dir.display());
        }
    }
    if args.shrink {
        shrink_firsts(&args.options, &failures, jobs)?;
    }
    Ok(ExitCode::from(exit_code(&failures)))
}

/// 0 when no seed failed; else the most telling failing verdict's code
/// (1 invalid before 2 unknown).
pub fn exit_code(failures: &[Failure]) -> u8 {
    if failures.is_empty() {
        return 0;
    }
    failures
        .iter()
        .map(|f| f.verdict.exit_code())
        .min()
        .unwrap_or(2)
}

/// JUnit for `seeds` explored seeds with these failures.
pub fn write_junit(
    path: &std::path::Path,
    test: &str,
    seeds: u64,
    failures: &[Failure],
) -> anyhow::Result<()> {
    let failed: Vec<_> = failures
        .iter()
        .map(|f| {
            (
                f.seed,
                f.verdict,
                f.anomalies.join(", "),
                f.reproduce.clone(),
            )
        })
        .collect();
    crate::report::junit::write_for_explore(path, test, seeds, &failed)?;
    Ok(())
}

/// The first failing seed of each distinct anomaly, in seed order, each
/// with the anomaly it stands for.
pub fn first_per_anomaly(failures: &[Failure]) -> Vec<(u64, Anomaly)> {
    let mut seen: Vec<(u64, Anomaly)> = Vec::new();
    for f in failures {
        for a in &f.anomalies {
            let name = a.split(':').next().unwrap_or(a);
            let Ok(anomaly) = name.parse::<Anomaly>() else {
                continue;
            };
            if !seen.iter().any(|&(_, x)| x == anomaly) {
                seen.push((f.seed, anomaly));
            }
        }
    }
    seen
}

/// `--shrink`: shrinks the first failing seed of each distinct anomaly and
/// stores each minimal run.
fn shrink_firsts(base: &RunOptions, failures: &[Failure], jobs: usize) -> anyhow::Result<()> {
    for (seed, anomaly) in first_per_anomaly(failures) {
        let o = crate::cli::run::resolve(RunOptions {
            seed: Some(seed),
            ..base.clone()
        })?;
        eprintln!("shrinking seed {seed} for {}", anomaly.as_str());
        let t0 = std::time::Instant::now();
        let bar = crate::cli::shrink::progress_bar();
        let shrunk = crate::shrink::shrink_options(&o, Some(anomaly), jobs, &bar);
        bar.finish_and_clear();
        let shrunk = shrunk?;
        let stored = crate::cli::shrink::store_minimal(&shrunk, &base.store, None)?;
        crate::cli::shrink::print_shrunk(&shrunk, &stored, t0.elapsed().as_secs_f64());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_is_capped_and_summarised_by_anomaly() {
        let failures: Vec<Failure> = (1..=30)
            .map(|seed| Failure {
                seed,
                verdict: Verdict::Invalid,
                anomalies: if seed % 3 == 0 {
                    vec!["divergence:2".into(), "lost-write:5".into()]
                } else {
                    vec!["lost-write:1".into()]
                },
                reproduce: format!("ladon run --seed {seed}"),
            })
            .collect();
        let text = failure_listing(&failures, 100, 20);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "30 of 100 seeds failed.");
        assert_eq!(lines[1], "By anomaly (seeds showing it, first seed):");
        assert_eq!(
            lines[2],
            "  divergence                   10 seeds  first: seed 3"
        );
        assert_eq!(
            lines[3],
            "  lost-write                   30 seeds  first: seed 1"
        );
        assert_eq!(lines.len(), 4 + 1 + 20 + 1);
        assert!(lines[5].ends_with("ladon run --seed 1"));
        assert_eq!(
            lines[25],
            "... and 10 more failing seeds (--junit FILE lists every one)"
        );
    }

    #[test]
    fn each_anomaly_is_shrunk_from_its_first_failing_seed() {
        let f = |seed, anomalies: &[&str]| Failure {
            seed,
            verdict: Verdict::Invalid,
            anomalies: anomalies.iter().map(|s| s.to_string()).collect(),
            reproduce: String::new(),
        };
        let failures = [
            f(3, &["lost-write:4"]),
            f(5, &["divergence:1", "lost-write:2"]),
            f(8, &["divergence:2", "duplicate:1"]),
        ];
        assert_eq!(
            first_per_anomaly(&failures),
            vec![
                (3, Anomaly::LostWrite),
                (5, Anomaly::Divergence),
                (8, Anomaly::Duplicate)
            ]
        );
    }
}
