//! The reference store's matrix: every strategy × topology × workload × fault
//! package over a fixed set of seeds, each correct configuration valid for
//! the guarantees it declares; every known bug caught with its anomaly within
//! `BUG_SEEDS` seeds; last-write-wins under clock skew losing writes to
//! conflicts and to causally older values (reported, allowed). The verdicts
//! and anomaly names are pinned in an insta snapshot.
//!
//! Run it alone: `cargo nextest run -p ladon-harness --test reference_matrix`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use clap::Parser;
use ladon_checker::report::Verdict;
use ladon_harness::cli::{Cli, Command};
use ladon_harness::options::RunOptions;
use ladon_harness::store;

/// Short, low-rate runs: the matrix must stay under ~2 minutes in debug.
const COMMON: &str = "--time-limit 6s --nemesis-interval 1500ms --rate 30 --keys 3";
const SEEDS: [u64; 2] = [1, 2];
const WORKLOADS: [&str; 4] = ["register", "list-append", "set", "counter"];
const FAULTS: [&str; 4] = ["partition,clock", "crash", "loss,dup", "pause,clog"];
/// A bug must be caught within this many seeds (1, 2, ..).
const BUG_SEEDS: u64 = 4;

fn options(flags: &str, seed: u64) -> RunOptions {
    let line = format!("ladon run {COMMON} {flags} --seed {seed}");
    let Command::Run(r) = Cli::try_parse_from(line.split_whitespace())
        .expect(&line)
        .command
    else {
        unreachable!()
    };
    r.options
}

#[derive(Debug, Clone)]
struct Outcome {
    verdict: Verdict,
    forbidden: BTreeSet<String>,
    allowed: BTreeSet<String>,
}

fn run(flags: &str, seed: u64) -> Outcome {
    let o = ladon_harness::cli::run::resolve(options(flags, seed)).expect(flags);
    let run = store::execute(&o, format!("{flags} --seed {seed}"), false, None).expect(flags);
    let report = run
        .report
        .unwrap_or_else(|| panic!("{flags} --seed {seed}: {:?}", run.check_error));
    let names = |forbidden: bool| {
        report
            .anomalies
            .iter()
            .filter(|(_, f)| f.forbidden == forbidden)
            .map(|(a, _)| a.as_str().to_string())
            .collect()
    };
    Outcome {
        verdict: report.verdict,
        forbidden: names(true),
        allowed: names(false),
    }
}

/// Runs every (flags, seed) on two threads.
fn run_all(cells: &[(String, u64)]) -> BTreeMap<(String, u64), Outcome> {
    let next = AtomicUsize::new(0);
    let out = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((flags, seed)) = cells.get(i) else {
                    break;
                };
                let o = run(flags, *seed);
                out.lock().unwrap().insert((flags.clone(), *seed), o);
            });
        }
    });
    out.into_inner().unwrap()
}

fn correct_configurations() -> Vec<String> {
    let mut v = Vec::new();
    for strategy in [
        "lww",
        "lww-hlc",
        "version-vector",
        "crdt",
        "avoidance",
        "quorum",
    ] {
        for topology in ["mesh", "ring", "star"] {
            v.push(format!("--strategy {strategy} --topology {topology}"));
        }
    }
    v.push("--strategy crdt --followers 1 --read-from any".into());
    v.push("--strategy crdt --causal-delivery false".into());
    v.push("--strategy avoidance --causal-delivery".into());
    v.push("--strategy quorum --causal-delivery".into());
    v
}

fn line(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        "-".into()
    } else {
        names.iter().cloned().collect::<Vec<_>>().join(",")
    }
}

#[test]
fn reference_matrix() {
    let mut cells = Vec::new();
    for c in correct_configurations() {
        for w in WORKLOADS {
            for f in FAULTS {
                for seed in SEEDS {
                    cells.push((format!("{c} --workload {w} --nemesis {f}"), seed));
                }
            }
        }
    }
    let skew =
        "--strategy lww --workload register --nemesis partition,clock --clock-skew 5s".to_string();
    for seed in SEEDS {
        cells.push((skew.clone(), seed));
    }
    let results = run_all(&cells);

    let mut snap = String::from(
        "# correct configurations: flags | verdicts per seed | allowed anomalies seen\n",
    );
    let mut invalid = Vec::new();
    for (flags, _) in cells.iter().filter(|(f, s)| *f != skew && *s == SEEDS[0]) {
        let per_seed: Vec<&Outcome> = SEEDS
            .iter()
            .map(|s| &results[&(flags.clone(), *s)])
            .collect();
        let allowed: BTreeSet<String> = per_seed
            .iter()
            .flat_map(|o| o.allowed.iter().cloned())
            .collect();
        let verdicts: Vec<&str> = per_seed.iter().map(|o| o.verdict.as_str()).collect();
        snap.push_str(&format!(
            "{flags} | {} | {}\n",
            verdicts.join(" "),
            line(&allowed)
        ));
        for (seed, o) in SEEDS.iter().zip(&per_seed) {
            if o.verdict != Verdict::Valid {
                invalid.push(format!(
                    "{flags} --seed {seed}: {:?} {}",
                    o.verdict,
                    line(&o.forbidden)
                ));
            }
        }
    }

    let lww: BTreeSet<String> = SEEDS
        .iter()
        .flat_map(|s| results[&(skew.clone(), *s)].allowed.clone())
        .collect();
    snap.push_str(&format!(
        "\n# lww under 5 s clock skew (allowed: lww declares convergence only)\n{skew} | {}\n",
        line(&lww)
    ));

    snap.push_str("\n# bug variants: flags | first seed caught | forbidden anomalies\n");
    let mut missed = Vec::new();
    for (bug, flags, expect) in bug_cases() {
        let full = format!("--bug {bug} {flags}");
        let caught = (1..=BUG_SEEDS)
            .map(|s| (s, run(&full, s)))
            .find(|(_, o)| o.forbidden.contains(expect));
        match caught {
            Some((seed, o)) => {
                snap.push_str(&format!("{full} | seed {seed} | {}\n", line(&o.forbidden)))
            }
            None => missed.push(format!("{full}: no {expect} within {BUG_SEEDS} seeds")),
        }
    }

    assert!(
        invalid.is_empty(),
        "correct configurations found invalid:\n{}",
        invalid.join("\n")
    );
    assert!(missed.is_empty(), "bugs not caught:\n{}", missed.join("\n"));
    for a in ["causal-overwrite", "conflict-loss"] {
        assert!(
            lww.contains(a),
            "lww under skew should show {a}, saw {lww:?}"
        );
    }
    insta::assert_snapshot!(snap);
}

/// Each bug with a configuration that exposes it and the anomaly it must produce.
fn bug_cases() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        (
            "no-loop-guard",
            "--workload list-append --nemesis none",
            "duplicate",
        ),
        (
            "no-causal-buffer",
            "--workload list-append --nemesis partition",
            "causal-visibility",
        ),
        (
            "tiebreak-self",
            "--strategy lww --lww-resolution 1s --workload register --nemesis partition",
            "divergence",
        ),
        (
            "no-anti-entropy",
            "--workload list-append --nemesis partition",
            "lost-write",
        ),
        (
            "forget-on-crash",
            "--workload list-append --nemesis crash",
            "lost-write",
        ),
        (
            "counter-reapply",
            "--workload counter --nemesis dup",
            "duplicate",
        ),
        (
            "follower-stale-forever",
            "--followers 1 --workload list-append --nemesis crash",
            "divergence",
        ),
    ]
}
