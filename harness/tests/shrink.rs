//! `ladon shrink`: a failing seed becomes a run a person can read in one
//! screen, the same one every time, that still fails the same way and
//! whose reproduce command reproduces it.

use clap::Parser;
use ladon_checker::report::Anomaly;
use ladon_harness::cli::{Cli, Command};
use ladon_harness::options::{Dur, RunOptions};
use ladon_harness::schedule::NemesisSchedule;
use ladon_harness::{shrink, store};

fn bug_run(store_dir: &std::path::Path, bug: &str, nemesis: &str, seed: u64) -> RunOptions {
    let mut o = RunOptions {
        seed: Some(seed),
        store: store_dir.to_path_buf(),
        time_limit: Dur::secs(4),
        rate: 50.0,
        nemesis_interval: Dur::secs(1),
        nemesis: nemesis.parse().unwrap(),
        ..RunOptions::default()
    };
    o.adapter_options.bug = Some(bug.parse().unwrap());
    ladon_harness::cli::run::resolve(o).unwrap()
}

fn shrink(o: &RunOptions, anomaly: Anomaly, jobs: usize) -> shrink::Shrunk {
    let bar = indicatif::ProgressBar::hidden();
    shrink::shrink_options(o, Some(anomaly), jobs, &bar).unwrap()
}

#[test]
fn a_partition_that_loses_writes_shrinks_to_a_tenth_the_same_way_on_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let o = bug_run(tmp.path(), "no-anti-entropy", "partition", 1);
    let two = shrink(&o, Anomaly::LostWrite, 2);
    assert!(two.original.shows(Anomaly::LostWrite));
    assert!(
        two.minimal.shows(Anomaly::LostWrite),
        "still the same anomaly"
    );
    assert!(
        two.minimal.size.ops * 10 <= two.original.size.ops,
        "{} ops → {} ops",
        two.original.size.ops,
        two.minimal.size.ops
    );
    assert!(two.minimal.size.ops <= 6, "{:?}", two.minimal.size);
    // Determinism: the pick never depends on which candidates ran together.
    let one = shrink(&o, Anomaly::LostWrite, 1);
    assert_eq!(
        serde_json::to_string(&one.minimal.options).unwrap(),
        serde_json::to_string(&two.minimal.options).unwrap()
    );
    assert_eq!(one.minimal.size, two.minimal.size);
}

#[test]
fn a_shrunk_crash_bug_is_stored_and_its_reproduce_command_reproduces_it() {
    let tmp = tempfile::tempdir().unwrap();
    let o = bug_run(tmp.path(), "forget-on-crash", "crash", 2);
    let s = shrink(&o, Anomaly::LostWrite, 2);
    assert!(s.minimal.size.ops * 10 <= s.original.size.ops);
    let stored = ladon_harness::cli::shrink::store_minimal(&s, tmp.path(), None).unwrap();
    for f in [
        "history.jsonl",
        "run.json",
        "report.html",
        "shrink.json",
        "nemesis-schedule.json",
    ] {
        assert!(
            stored.dir.join(f).exists(),
            "{f} in {}",
            stored.dir.display()
        );
    }
    let schedule = stored.dir.join("nemesis-schedule.json");
    assert!(
        stored.reproduce.contains(&format!(
            "--nemesis-schedule {} --seed 2",
            schedule.display()
        )),
        "{}",
        stored.reproduce
    );
    assert!(
        s.minimal.size.schedule.describe().contains("crash"),
        "{}",
        s.minimal.size.schedule.describe()
    );
    // The printed command, parsed as the shell would, runs the same history.
    let args: Vec<&str> = stored.reproduce.split(' ').collect();
    let cli = Cli::try_parse_from(&args).unwrap();
    let Command::Run(r) = cli.command else {
        panic!("not a run command")
    };
    let again = ladon_harness::cli::run::resolve(r.options).unwrap();
    let run = store::execute(&again, stored.reproduce.clone(), true, None).unwrap();
    assert_eq!(
        std::fs::read(run.dir.unwrap().join("history.jsonl")).unwrap(),
        std::fs::read(stored.dir.join("history.jsonl")).unwrap()
    );
    assert!(shrink::shows(
        run.report.as_ref().unwrap(),
        Anomaly::LostWrite
    ));
    // And `ladon replay` accepts the shrunk run directory.
    ladon_harness::cli::replay::replay(&stored.dir, None).unwrap();
}

#[test]
fn a_seeded_schedule_given_back_explicitly_applies_the_same_faults_at_the_same_times() {
    let tmp = tempfile::tempdir().unwrap();
    let o = bug_run(tmp.path(), "forget-on-crash", "partition,crash,clock", 3);
    let seeded = shrink::evaluate(&o).unwrap();
    assert!(seeded.size.schedule.steps.len() >= 2);
    let mut explicit = o.clone();
    explicit.nemesis_schedule = Some(seeded.size.schedule.clone());
    let run = shrink::evaluate(&explicit).unwrap();
    assert_eq!(run.size.schedule, seeded.size.schedule);
    // Through a file, as `--nemesis-schedule FILE` reads it.
    let file = tmp.path().join("s.json");
    std::fs::write(&file, serde_json::to_string(&seeded.size.schedule).unwrap()).unwrap();
    assert_eq!(
        NemesisSchedule::from_file(&file).unwrap(),
        seeded.size.schedule
    );
}

#[test]
fn a_live_run_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let run_json = serde_json::json!({
        "test": "g-set-n", "seed": 9, "mode": "live", "adapter": "process",
        "options": {"live": {"bin": "n.py"}}, "reproduce": "ladon run --adapter process --bin n.py",
        "ladon_version": "0", "git_revision": null, "guarantees": ["convergence"],
    });
    std::fs::write(dir.path().join("run.json"), run_json.to_string()).unwrap();
    let err = format!(
        "{:#}",
        ladon_harness::cli::shrink::load_simulated(dir.path()).unwrap_err()
    );
    assert_eq!(
        err,
        format!(
            "{}: a \"live\" run cannot be shrunk: shrinking re-runs smaller variants and needs each to \
             repeat deterministically, which only simulated runs do (real processes on wall-clock \
             time do not; see docs/simulation.md, \"Shrinking live runs\")",
            dir.path().join("run.json").display()
        )
    );
}

#[test]
fn an_anomaly_the_run_does_not_show_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let o = bug_run(tmp.path(), "no-anti-entropy", "partition", 1);
    let bar = indicatif::ProgressBar::hidden();
    let err = shrink::shrink_options(&o, Some(Anomaly::Phantom), 2, &bar).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--anomaly phantom: the run does not show it (forbidden anomalies found: divergence, lost-write)"
    );
}

#[test]
fn a_fixture_is_the_minimal_history_with_its_guarantees() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(run_dir.join("history.jsonl"), "{}\n").unwrap();
    let info = ladon_harness::store::RunInfo {
        test: "t".into(),
        seed: 1,
        mode: "simulation".into(),
        options: RunOptions::default(),
        reproduce: String::new(),
        ladon_version: "0".into(),
        git_revision: None,
        guarantees: vec![
            ladon_checker::report::Guarantee::Convergence,
            ladon_checker::report::Guarantee::NoLostWrites,
        ],
        started_at: String::new(),
        outcome: None,
        process: None,
        db: None,
    };
    let fixtures = tmp.path().join("fixtures").join("shrunk");
    let err = ladon_harness::cli::shrink::write_fixture(&run_dir, &info, &fixtures, "x")
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not exist"), "{err}");
    std::fs::create_dir_all(tmp.path().join("fixtures")).unwrap();
    let h =
        ladon_harness::cli::shrink::write_fixture(&run_dir, &info, &fixtures, "lost-1").unwrap();
    assert_eq!(std::fs::read_to_string(h).unwrap(), "{}\n");
    assert_eq!(
        std::fs::read_to_string(fixtures.join("lost-1.guarantees")).unwrap(),
        "convergence,no-lost-writes\n"
    );
    let again = ladon_harness::cli::shrink::write_fixture(&run_dir, &info, &fixtures, "lost-1");
    assert!(again.unwrap_err().to_string().contains("exists already"));
    let bad = ladon_harness::cli::shrink::write_fixture(&run_dir, &info, &fixtures, "Bad Name");
    assert!(bad.unwrap_err().to_string().contains("lowercase"));
}

#[test]
fn a_causal_bug_under_jitter_shrinks_to_a_tenth_with_the_reseed_pass() {
    let tmp = tempfile::tempdir().unwrap();
    // `ladon run --workload list-append --latency uniform:0ms..20ms --bug
    // no-causal-buffer --seed 1` (the default 30 s at 100 ops/s; shorter
    // runs of seed 1 do not show it).
    let mut o = bug_run(tmp.path(), "no-causal-buffer", "none", 1);
    o.net.latency = "uniform:0ms..20ms".parse().unwrap();
    o.time_limit = Dur::secs(30);
    o.rate = 100.0;
    o.nemesis_interval = RunOptions::default().nemesis_interval;
    let s = shrink(&o, Anomaly::CausalVisibility, 2);
    assert!(s.original.shows(Anomaly::CausalVisibility));
    assert!(s.minimal.shows(Anomaly::CausalVisibility));
    assert!(
        s.minimal.size.ops * 10 <= s.original.size.ops,
        "{} ops → {} ops",
        s.original.size.ops,
        s.minimal.size.ops
    );
    // The minimal run is what its own options give: re-simulating them
    // shows the anomaly again, under whatever seed the shrink ended on.
    let again = shrink::evaluate(&s.minimal.options).unwrap();
    assert!(again.shows(Anomaly::CausalVisibility));
    assert_eq!(again.size, s.minimal.size);
    eprintln!(
        "{} ops → {} ops, seed {:?}",
        s.original.size.ops, s.minimal.size.ops, s.minimal.options.seed
    );
}
