//! automerge, yrs and loro under the simulator (cargo feature `crdt-libs`):
//! every library × workload × fault package × 2 seeds keeps the guarantees
//! it declares, or shows exactly the finding docs/crdt-libraries.md records;
//! a run replays byte for byte; lazy persistence loses acknowledged writes
//! on a crash, visibly.
//!
//! Run it alone:
//! `cargo nextest run -p ladon-harness --features crdt-libs --test crdt_libs`.
#![cfg(feature = "crdt-libs")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use clap::Parser;
use ladon_checker::report::Verdict;
use ladon_harness::cli::{Cli, Command};
use ladon_harness::options::RunOptions;
use ladon_harness::store;

/// Short, low-rate runs: the matrix must stay well under a minute in debug.
const COMMON: &str = "--time-limit 5s --nemesis-interval 1s --rate 40 --keys 3";
const SEEDS: [u64; 2] = [1, 2];
const LIBS: [&str; 3] = ["automerge", "yrs", "loro"];
const WORKLOADS: [&str; 4] = ["register", "list-append", "set", "counter"];
/// The fault packages: partitions, clock skew, crashes, duplication with
/// reordering.
const FAULTS: [&str; 4] = [
    "--nemesis partition",
    "--nemesis clock",
    "--nemesis crash",
    "--nemesis dup --reorder 0.3",
];

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

#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    verdict: Verdict,
    forbidden: BTreeSet<String>,
    allowed: BTreeSet<String>,
    converged: bool,
}

fn run(flags: &str, seed: u64) -> Outcome {
    let o = ladon_harness::cli::run::resolve(options(flags, seed)).expect(flags);
    let run = store::execute(&o, format!("{flags} --seed {seed}"), false, None).expect(flags);
    let converged = run.outcome.converged_ns.is_some();
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
        converged,
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

/// Findings: cells whose declared guarantees do not hold, with the exact
/// forbidden anomalies found (docs/crdt-libraries.md, "What Ladon found").
/// automerge registers: a `put` supersedes every value its node holds,
/// including values its client never read, so by client causality a
/// concurrent write disappears (conflict-loss) and sibling reads miss writes
/// in their causal past.
const FINDINGS: &[(&str, u64, &[&str])] = &[
    (
        "--adapter automerge --workload register --nemesis clock",
        1,
        &[
            "causal-visibility",
            "conflict-loss",
            "monotonic-reads",
            "read-your-writes",
        ],
    ),
    (
        "--adapter automerge --workload register --nemesis clock",
        2,
        &["causal-visibility", "conflict-loss", "read-your-writes"],
    ),
    (
        "--adapter automerge --workload register --nemesis crash",
        1,
        &["causal-visibility", "conflict-loss"],
    ),
    (
        "--adapter automerge --workload register --nemesis crash",
        2,
        &[
            "causal-visibility",
            "conflict-loss",
            "monotonic-reads",
            "read-your-writes",
        ],
    ),
    (
        "--adapter automerge --workload register --nemesis dup --reorder 0.3",
        1,
        &[
            "causal-visibility",
            "conflict-loss",
            "monotonic-reads",
            "read-your-writes",
        ],
    ),
    (
        "--adapter automerge --workload register --nemesis dup --reorder 0.3",
        2,
        &["causal-visibility", "conflict-loss", "read-your-writes"],
    ),
    (
        "--adapter automerge --workload register --nemesis partition",
        1,
        &["causal-visibility", "conflict-loss", "read-your-writes"],
    ),
    (
        "--adapter automerge --workload register --nemesis partition",
        2,
        &[
            "causal-visibility",
            "conflict-loss",
            "monotonic-reads",
            "read-your-writes",
        ],
    ),
];

#[test]
fn every_library_keeps_its_declared_guarantees_under_every_fault_package() {
    let mut cells = Vec::new();
    for lib in LIBS {
        for w in WORKLOADS {
            for f in FAULTS {
                for seed in SEEDS {
                    cells.push((format!("--adapter {lib} --workload {w} {f}"), seed));
                }
            }
        }
    }
    let results = run_all(&cells);
    let mut unexpected = Vec::new();
    for ((flags, seed), o) in &results {
        let finding = FINDINGS
            .iter()
            .find(|(f, s, _)| f == flags && s == seed)
            .map(|(_, _, a)| a.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
        let ok = match &finding {
            None => o.verdict == Verdict::Valid && o.converged,
            Some(expected) => o.verdict == Verdict::Invalid && &o.forbidden == expected,
        };
        if !ok {
            unexpected.push(format!(
                "{flags} --seed {seed}: {o:?} (finding: {finding:?})"
            ));
        }
    }
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}

#[test]
fn a_crdt_library_run_replays_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    for lib in LIBS {
        let mut o = options(
            &format!("--adapter {lib} --workload list-append --nemesis partition,crash,dup"),
            5,
        );
        o.store = tmp.path().to_path_buf();
        let o = ladon_harness::cli::run::resolve(o).unwrap();
        let run = store::execute(&o, "replay test".into(), true, None).unwrap();
        let dir = run.dir.clone().unwrap();
        ladon_harness::cli::replay::replay(&dir, None)
            .unwrap_or_else(|e| panic!("{lib}: replay differs: {e:#}"));
    }
}

/// A node that saves lazily forgets the writes it acknowledged since its
/// last save when it crashes; saving every operation forgets none.
#[test]
fn lazy_persistence_loses_acknowledged_writes_on_a_crash() {
    let mut cells = Vec::new();
    for lib in LIBS {
        for persist in ["every-op", "never"] {
            for seed in [1, 2, 3] {
                // Partitions keep the writes from reaching a peer before the crash.
                cells.push((
                    format!(
                        "--adapter {lib} --workload set --nemesis crash,partition --persist {persist}"
                    ),
                    seed,
                ));
            }
        }
    }
    let results = run_all(&cells);
    for lib in LIBS {
        let lost = |persist: &str| {
            results
                .iter()
                .filter(|((f, _), o)| {
                    f.contains(&format!("{lib} "))
                        && f.ends_with(persist)
                        && o.allowed.contains("lost-write")
                })
                .count()
        };
        assert_eq!(lost("every-op"), 0, "{lib}: every-op lost writes");
        assert!(lost("never") > 0, "{lib}: --persist never lost nothing");
    }
    for ((flags, seed), o) in &results {
        if flags.ends_with("every-op") {
            assert_eq!(o.verdict, Verdict::Valid, "{flags} --seed {seed}: {o:?}");
        } else {
            assert!(o.forbidden.is_empty(), "{flags} --seed {seed}: {o:?}");
        }
    }
}
