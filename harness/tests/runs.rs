//! Whole runs: determinism, the stored run directory, replay, and explore
//! finding a planted bug whose reproduce command reproduces it.

use clap::Parser;
use ladon_checker::report::{Anomaly, Verdict};
use ladon_harness::cli::{Cli, Command};
use ladon_harness::options::{Dur, RunOptions};
use ladon_harness::store;

fn small(store_dir: &std::path::Path, seed: u64) -> RunOptions {
    RunOptions {
        adapter: ladon_harness::options::AdapterKind::Toy,
        seed: Some(seed),
        store: store_dir.to_path_buf(),
        time_limit: Dur::secs(6),
        nemesis_interval: Dur::secs(1),
        ..RunOptions::default()
    }
}

fn history(opts: &RunOptions) -> (std::path::PathBuf, Vec<u8>) {
    let o = ladon_harness::cli::run::resolve(opts.clone()).unwrap();
    let run = store::execute(&o, "test".into(), true, None).unwrap();
    let dir = run.dir.unwrap();
    let bytes = std::fs::read(dir.join("history.jsonl")).unwrap();
    (dir, bytes)
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = small(tmp.path(), 11);
    o.nemesis = "partition,clock,crash,pause,loss,dup,clog".parse().unwrap();
    let (_, a) = history(&o);
    let (_, b) = history(&o);
    assert!(a.len() > 10_000, "a real history ({} bytes)", a.len());
    assert!(a == b, "same seed gave different histories");
    o.seed = Some(12);
    let (_, c) = history(&o);
    assert!(a != c, "different seeds gave the same history");
}

#[test]
fn a_run_directory_holds_everything_and_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let o = small(tmp.path(), 3);
    let r = ladon_harness::cli::run::resolve(o).unwrap();
    let run = store::execute(&r, "ladon run --seed 3".into(), true, None).unwrap();
    let dir = run.dir.clone().unwrap();
    for f in [
        "history.jsonl",
        "run.json",
        "report.json",
        "summary.txt",
        "messages.jsonl",
        "nodes/n1.log",
    ] {
        assert!(dir.join(f).exists(), "{f} missing from {}", dir.display());
    }
    assert_eq!(
        std::fs::read_link(tmp.path().join("latest")).unwrap(),
        dir.strip_prefix(tmp.path()).unwrap()
    );
    assert_eq!(run.verdict(), Verdict::Valid, "{:?}", run.report);
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["seed"], 3);
    assert_eq!(info["mode"], "simulation");
    assert_eq!(info["options"]["nemesis"], "partition,clock");
    assert_eq!(
        info["guarantees"],
        serde_json::json!(["convergence", "no-lost-writes"])
    );
    assert!(run.outcome.converged_ns.is_some());
    let mpw = run.outcome.messages_per_write.unwrap();
    assert!(
        mpw > 2.0,
        "each write goes to 2 peers plus anti-entropy: {mpw}"
    );

    // Replay reproduces it byte for byte...
    ladon_harness::cli::replay::replay(&dir, None).unwrap();
    // ...and fails loudly when the stored history is not what the seed gives.
    let h = dir.join("history.jsonl");
    let text = std::fs::read_to_string(&h).unwrap();
    std::fs::write(&h, text.replacen("\"time\":", "\"time\":1", 1)).unwrap();
    let err = ladon_harness::cli::replay::replay(&dir, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("DIFFERS") && err.contains("line 1"), "{err}");
}

#[test]
fn explore_finds_a_planted_bug_and_its_reproduce_command_reproduces_it() {
    let tmp = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "--adapter",
        "toy",
        "--bug",
        "no-anti-entropy",
        "--nemesis",
        "partition",
        "--time-limit",
        "4",
        "--nemesis-interval",
        "1s",
        "--store",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([tmp.path().display().to_string()])
    .collect();
    let cli = Cli::try_parse_from(
        ["ladon".to_string(), "explore".into()]
            .into_iter()
            .chain(args.clone()),
    )
    .unwrap();
    let Command::Explore(e) = cli.command else {
        panic!("not explore")
    };
    let failures = ladon_harness::cli::explore::explore(&e.options, 1, 8, 2, &args).unwrap();
    assert!(
        !failures.is_empty(),
        "no-anti-entropy under drop partitions must fail within 8 seeds"
    );
    let f = &failures[0];
    assert_eq!(f.verdict, Verdict::Invalid);
    assert!(
        f.anomalies
            .iter()
            .any(|a| a.starts_with("divergence") || a.starts_with("lost-write")),
        "{:?}",
        f.anomalies
    );
    assert!(
        f.reproduce.ends_with(&format!("--seed {}", f.seed)),
        "{}",
        f.reproduce
    );

    // Paste the reproduce command: same verdict, same anomalies.
    let words: Vec<&str> = f.reproduce.split_whitespace().collect();
    let Command::Run(r) = Cli::try_parse_from(&words).unwrap().command else {
        panic!("not run")
    };
    let o = ladon_harness::cli::run::resolve(r.options).unwrap();
    let run = store::execute(&o, f.reproduce.clone(), true, None).unwrap();
    let report = run.report.unwrap();
    assert_eq!(report.verdict, Verdict::Invalid);
    let again: Vec<String> = report
        .anomalies
        .iter()
        .filter(|(_, x)| x.forbidden)
        .map(|(a, x)| format!("{}:{}", a.as_str(), x.count))
        .collect();
    assert_eq!(again, f.anomalies);
    assert!(
        report.anomalies.contains_key(&Anomaly::Divergence)
            || report.anomalies.contains_key(&Anomaly::LostWrite)
    );
}

#[test]
fn the_correct_toy_node_is_valid_under_every_fault_on_a_few_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = small(tmp.path(), 1);
    o.nemesis = "partition,clock,crash,pause,loss,dup,clog".parse().unwrap();
    o.net.partition_mode = ladon_harness::net::PartitionMode::Hold;
    let failures = ladon_harness::cli::explore::explore(&o, 1, 6, 2, &[]).unwrap();
    assert_eq!(failures, vec![]);
}

#[test]
fn every_workload_with_roaming_clients_checks_valid() {
    let tmp = tempfile::tempdir().unwrap();
    for w in ["register", "set", "counter", "list-append"] {
        let mut o = small(tmp.path(), 5);
        o.workload = w.parse().unwrap();
        o.clients = ladon_harness::options::ClientMode::Roaming;
        o.txn_size = 4;
        o.nemesis = "partition,crash,dup".parse().unwrap();
        let o = ladon_harness::cli::run::resolve(o).unwrap();
        let run = store::execute(&o, String::new(), false, None).unwrap();
        let report = run.report.unwrap();
        assert_eq!(
            report.verdict,
            Verdict::Valid,
            "{w}: {:?}",
            report.anomalies.keys().collect::<Vec<_>>()
        );
        assert!(
            report.stats.acknowledged_writes > 100,
            "{w}: {:?}",
            report.stats
        );
    }
}

#[test]
fn a_process_that_saw_info_never_issues_again_and_faults_are_recorded() {
    use ladon_checker::history::{Event, EventType, Process};
    use std::collections::BTreeSet;
    let tmp = tempfile::tempdir().unwrap();
    let mut o = small(tmp.path(), 21);
    o.nemesis = "pause,crash,clock,partition,clog,loss,dup".parse().unwrap();
    o.nemesis_interval = Dur(500_000_000);
    let (_, bytes) = history(&o);
    let events: Vec<Event> = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut retired = BTreeSet::new();
    let mut infos = 0;
    for e in &events {
        if let Process::Client(p) = e.process {
            assert!(
                !retired.contains(&p),
                "process {p} reused after info at index {}",
                e.index
            );
            if e.kind == EventType::Info {
                retired.insert(p);
                infos += 1;
            }
        }
    }
    assert!(infos > 0, "pauses and crashes must cause timeouts");
    let faults: BTreeSet<&str> = events
        .iter()
        .filter(|e| e.process == Process::Nemesis)
        .map(|e| e.f.as_str())
        .collect();
    for f in [
        "heal",
        "clock-reset",
        "crash",
        "restart",
        "pause",
        "resume",
        "clog",
        "unclog",
    ] {
        assert!(faults.contains(f), "no {f} event; got {faults:?}");
    }
    assert!(events
        .windows(2)
        .all(|w| w[0].time <= w[1].time && w[0].index + 1 == w[1].index));
}

#[test]
fn every_delivered_or_dropped_message_was_sent_once_under_its_id() {
    use std::collections::BTreeMap;
    let tmp = tempfile::tempdir().unwrap();
    let mut o = small(tmp.path(), 8);
    o.nemesis = "partition,dup,loss,clog".parse().unwrap();
    o.net.partition_mode = ladon_harness::net::PartitionMode::Hold;
    o.nemesis_interval = Dur(500_000_000);
    let (dir, _) = history(&o);
    let text = std::fs::read_to_string(dir.join("messages.jsonl")).unwrap();
    let mut sent: BTreeMap<u64, (String, String)> = BTreeMap::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_time = 0;
    for line in text.lines() {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = m["id"].as_u64().unwrap();
        let ends = (
            m["from"].as_str().unwrap().to_string(),
            m["to"].as_str().unwrap().to_string(),
        );
        let event = m["event"].as_str().unwrap().to_string();
        let time = m["time"].as_u64().unwrap();
        assert!(
            time >= last_time,
            "messages.jsonl goes back in time at id {id}"
        );
        last_time = time;
        match event.as_str() {
            "send" => assert!(sent.insert(id, ends).is_none(), "id {id} sent twice"),
            "deliver" | "drop" => {
                assert_eq!(sent.get(&id), Some(&ends), "{event} of unsent id {id}")
            }
            other => panic!("unknown event {other}"),
        }
        *counts.entry(event).or_default() += 1;
    }
    assert!(counts["deliver"] > 1000 && counts["drop"] > 0, "{counts:?}");
    assert!(
        text.contains("\"writes\":[["),
        "messages carry the writes they replicate"
    );
}

#[test]
fn a_swarm_run_replays_from_its_run_json() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = small(tmp.path(), 77);
    o.swarm = true;
    let (dir, _) = history(&o);
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    let mut drawn = small(tmp.path(), 77);
    drawn.apply_swarm(77);
    assert_eq!(
        info["options"]["nemesis"],
        drawn.nemesis.to_string(),
        "run.json holds the drawn fault mix"
    );
    ladon_harness::cli::replay::replay(&dir, None).unwrap();
}

#[test]
fn run_json_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let o = ladon_harness::cli::run::resolve(small(tmp.path(), 4)).unwrap();
    let run = store::execute(&o, "ladon run --adapter toy --seed 4".into(), true, None).unwrap();
    let text = std::fs::read_to_string(run.dir.unwrap().join("run.json")).unwrap();
    let mut info: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Adapter-specific options belong to their adapters' tests: pin only
    // the harness's own keys here.
    let adapter_keys =
        serde_json::to_value(ladon_harness::adapters::AdapterOptions::default()).unwrap();
    for k in adapter_keys.as_object().unwrap().keys() {
        info["options"].as_object_mut().unwrap().remove(k);
    }
    insta::assert_json_snapshot!(info, {
        ".started_at" => "[time]",
        ".git_revision" => "[revision]",
        ".ladon_version" => "[version]",
        ".options.store" => "[store]",
    });
}

/// The parts of a run's terminal output that must read the same whether the
/// run was simulated or ran real processes.
fn output_shape(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ladon"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn process_and_simulated_runs_print_the_same_summary_and_reproduce_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let broadcast = format!(
        "{}/../examples/nodes/broadcast_buggy.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let runs: [(Vec<&str>, &str); 2] = [
        (
            vec![
                "run",
                "--bug",
                "no-anti-entropy",
                "--nemesis",
                "partition",
                "--time-limit",
                "3s",
                "--nemesis-interval",
                "1s",
                "--seed",
                "3",
                "--store",
                store,
            ],
            "simulation",
        ),
        (
            vec![
                "run",
                "--adapter",
                "process",
                "--bin",
                &broadcast,
                "--workload",
                "g-set",
                "--time-limit",
                "1s",
                "--loss",
                "0.3",
                "--converge-timeout",
                "1s",
                "--seed",
                "3",
                "--store",
                store,
            ],
            "live",
        ),
    ];
    for (args, mode) in runs {
        let (code, stdout, stderr) = output_shape(&args);
        assert_eq!(code, Some(1), "{mode}: {stdout}{stderr}");
        assert!(
            stdout
                .lines()
                .next()
                .unwrap()
                .ends_with(&format!(" seed 3 ({mode})")),
            "{stdout}"
        );
        for part in [
            "\nVerdict: INVALID: found ",
            "\nGuarantees checked: ",
            "\nOperations: ",
            "\nConflict resolution: ",
            "\nLost writes: ",
        ] {
            assert!(stdout.contains(part), "{mode} lacks {part:?}: {stdout}");
        }
        assert!(stderr.contains("stored in "), "{stderr}");
        assert!(
            stderr.contains("\nreproduce with: ladon run ") && stderr.contains("--seed 3"),
            "{mode}: {stderr}"
        );
        assert!(!stdout.contains("reproduce"), "{stdout}");
    }
}

#[test]
fn run_help_describes_live_runs_and_the_reference_bugs() {
    let (code, stdout, _) = output_shape(&["run", "--help"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("live processes (`--adapter process --bin PATH`)"),
        "{stdout}"
    );
    // Every adapter's options, grouped under headings naming the adapters.
    use ladon_harness::options::heading;
    for (h, flag) in [
        (heading::PROCESS, "--bin <PATH>"),
        (heading::PROCESS, "--bin-arg <ARG>"),
        (heading::REFERENCE, "--strategy <STRATEGY>"),
        (heading::REFERENCE_TOY, "--bug <BUG>"),
        (heading::REFERENCE_PROCESS, "--topology <TOPOLOGY>"),
        (heading::SIMULATED, "--swarm"),
    ] {
        let at = stdout
            .find(&format!("\n{h}:\n"))
            .unwrap_or_else(|| panic!("no heading {h:?}: {stdout}"));
        let section = &stdout[at + 1..];
        // The section ends at the next heading (a line not indented).
        let end = section
            .match_indices('\n')
            .find(|(i, _)| section[i + 1..].starts_with(|c: char| !c.is_whitespace()))
            .map_or(section.len(), |(i, _)| i);
        assert!(
            section[..end].contains(flag),
            "{flag} not under {h:?}: {stdout}"
        );
    }
    assert!(stdout.contains("no-anti-entropy"), "{stdout}");
}

#[test]
fn options_of_another_adapter_are_refused_naming_the_option() {
    for (args, want) in [
        (
            vec!["run", "--adapter", "toy", "--strategy", "lww"],
            "ladon: --strategy does not apply to --adapter toy (only to --adapter reference)\n",
        ),
        (
            vec!["run", "--bin", "n.py"],
            "ladon: --bin does not apply to --adapter reference (only to --adapter process)\n",
        ),
        (
            vec!["run", "--adapter", "process", "--bin", "n.py", "--workload", "g-set", "--swarm"],
            "ladon: --swarm does not apply to --adapter process (only to --adapter reference, toy, automerge, yrs, loro)\n",
        ),
        (
            vec!["run", "--adapter", "process", "--workload", "g-set"],
            "ladon: --adapter process needs --bin PATH (the node program)\n",
        ),
        (
            vec!["run", "--adapter", "toy", "--bug", "tiebreak-self"],
            "ladon: invalid options: --bug tiebreak-self: not a bug of --adapter toy (toy's: no-anti-entropy, forget-on-crash)\n",
        ),
        (
            vec!["run", "--workload", "g-set"],
            "ladon: invalid options: --workload g-set: a Maelstrom workload runs only with --adapter process; simulated adapters run register, list-append, set, counter\n",
        ),
    ] {
        let (code, stdout, stderr) = output_shape(&args);
        assert_eq!(code, Some(2), "{args:?}: {stdout}{stderr}");
        assert_eq!(stderr, want, "{args:?}");
    }
}
