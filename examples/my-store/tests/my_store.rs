//! My store under Ladon: correct for 200 seeds, its planted bug found and
//! pinned, and the same seed giving the same history in `cargo test` as on
//! the command line (`src/main.rs`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ladon::{Adapter, Anomaly, Fault, Guarantee, Test, Verdict, Workload};
use my_store::MyStore;
use sha2::{Digest, Sha256};

/// The test both variants run: short runs (2 s of virtual time) so 200
/// seeds take seconds.
fn test(bug: bool) -> Test {
    let (name, adapter) = if bug {
        (
            "my-store-buggy",
            Adapter::new(|n| MyStore::new(n).with_bug(true)),
        )
    } else {
        ("my-store", Adapter::new(MyStore::new))
    };
    Test::with_adapter(name, adapter)
        .program("cargo run -p my-store --")
        .nodes(3)
        .workload(Workload::ListAppend)
        .nemesis([Fault::Partition, Fault::Clock])
        .guarantees([Guarantee::Convergence, Guarantee::NoLostWrites])
        .time_limit(Duration::from_secs(2))
        .nemesis_interval(Duration::from_millis(500))
}

#[test]
fn two_hundred_seeds_are_valid_without_the_bug() {
    let outcome = test(false).seeds(0..200).run();
    assert_eq!(outcome.results.len(), 200);
    outcome.assert_valid();
    assert!(outcome.results.iter().all(|r| r.verdict == Verdict::Valid));
}

#[test]
fn the_planted_bug_is_found_with_a_readable_panic_message() {
    let outcome = test(true).seeds(0..20).run();
    let failure = outcome.expect_failure();
    let seed = failure.seed;
    assert_eq!(failure.verdict(), Verdict::Invalid);
    let anomalies: Vec<Anomaly> = failure.anomalies().iter().map(|(a, _)| *a).collect();
    assert!(anomalies.contains(&Anomaly::LostWrite), "{anomalies:?}");

    let panic = std::panic::catch_unwind(|| outcome.assert_valid()).unwrap_err();
    let message = panic
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert_eq!(Some(message.clone()), outcome.message());
    let lines: Vec<&str> = message.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "ladon: my-store-buggy-list-append: seed {seed} is INVALID ("
        )),
        "{message}"
    );
    assert!(
        message.contains(" — an acknowledged write is missing from a node's final state\n"),
        "{message}"
    );
    assert!(message.contains("\n    e.g. "), "{message}");
    let reproduce =
        "\nreproduce: cargo run -p my-store -- run --adapter my-store-buggy --workload list-append ";
    assert!(message.contains(reproduce), "{message}");
    assert!(message.contains(&format!("--seed {seed}\n")), "{message}");
    let report = failure.report_html();
    assert!(
        message.contains(&format!("report: {}\n", report.display())),
        "{message}"
    );
    assert!(report.is_file(), "{}", report.display());
    // Under the workspace's target/ladon/ (the target directory holding this test).
    let target = std::env::current_exe().unwrap();
    let target = target.ancestors().find(|a| a.ends_with("target")).unwrap();
    assert!(
        failure
            .run_dir
            .starts_with(target.join("ladon/my-store-buggy-list-append")),
        "{}",
        failure.run_dir.display()
    );
}

#[test]
fn the_found_bug_is_pinned_as_a_snapshot() {
    let outcome = test(true).seeds(0..20).run();
    insta::assert_snapshot!(outcome.expect_failure().snapshot());
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs this crate's binary (`ladon::cli::main_with`).
fn my_store(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_my-store"))
        .args(args)
        .output()
        .expect("running my-store")
}

#[test]
fn the_same_seed_gives_the_same_history_in_cargo_test_and_on_the_command_line() {
    let outcome = test(true).seeds(0..20).run();
    let failure = outcome.expect_failure();
    let from_test = sha256(&failure.run_dir.join("history.jsonl"));

    // The reproduce command's arguments, run by the binary.
    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().to_str().unwrap();
    let mut args: Vec<&str> = vec!["run"];
    args.extend(failure.args.iter().map(String::as_str));
    args.extend(["--store", store_arg]);
    let out = my_store(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_cli = sha256(&store.path().join("latest/history.jsonl"));
    assert_eq!(from_test, from_cli);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("reproduce with: my-store run --adapter my-store-buggy "),
        "{stderr}"
    );

    // `replay` of the test's run directory repeats the history byte for byte.
    let out = my_store(&["replay", failure.run_dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "replay identical: {} reproduces byte for byte",
            failure.run_dir.display()
        )),
        "{stdout}"
    );
}

#[test]
fn explore_on_the_command_line_fails_the_seeds_the_test_fails() {
    let outcome = test(true).seeds(1..21).run();
    let from_test: Vec<u64> = outcome.failures().map(|r| r.seed).collect();
    let store = tempfile::tempdir().unwrap();
    let out = my_store(&[
        "explore",
        "--adapter",
        "my-store-buggy",
        "--seeds",
        "20",
        "--seed",
        "1",
        "--nemesis",
        "partition,clock",
        "--guarantees",
        "convergence,no-lost-writes",
        "--time-limit",
        "2s",
        "--nemesis-interval",
        "500ms",
        "--store",
        store.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with(&format!("{} of 20 seeds failed.\n", from_test.len())),
        "{stdout}"
    );
    // Each failing seed is listed with its reproduce command, this binary's.
    for seed in &from_test {
        let line = stdout
            .lines()
            .find(|l| l.ends_with(&format!(" --seed {seed}")))
            .unwrap_or_else(|| panic!("seed {seed} missing:\n{stdout}"));
        assert!(
            line.contains(" my-store run --workload list-append --adapter my-store-buggy "),
            "{line}"
        );
    }
}

#[test]
fn the_command_line_lists_and_refuses_adapters_by_name() {
    let out = my_store(&["adapters"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    // A row is the name, its mode and its line, in aligned columns.
    let row = |name: &str| {
        stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.first() == Some(&name))
    };
    let mine = row("my-store").unwrap_or_else(|| panic!("no my-store row:\n{stdout}"));
    assert_eq!(
        mine[1..].join(" "),
        "simulation my store (examples/my-store)",
        "{stdout}"
    );
    let buggy = row("my-store-buggy").unwrap_or_else(|| panic!("no my-store-buggy row:\n{stdout}"));
    assert_eq!(buggy[1], "simulation", "{stdout}");

    let out = my_store(&["run", "--adapter", "my-store", "--bug", "no-anti-entropy"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("--bug does not apply to --adapter my-store"),
        "{stderr}"
    );
}

/// docs/write-a-rust-adapter.md shows the panic message of
/// `the_planted_bug_is_found_with_a_readable_panic_message`'s outcome: the
/// real one, line for line, the run directory written as the guide writes
/// it; a guide line ending in `...` shows the start of the real line.
#[test]
fn the_guide_shows_the_real_panic_message() {
    let outcome = test(true).seeds(0..20).run();
    let failure = outcome.expect_failure();
    let shown = format!(
        ".../target/ladon/my-store-buggy-list-append/<UTC time>-seed{}",
        failure.seed
    );
    let real = outcome
        .message()
        .expect("a failing seed")
        .replace(&failure.run_dir.display().to_string(), &shown);
    let guide = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/write-a-rust-adapter.md");
    let guide = std::fs::read_to_string(&guide).unwrap();
    let marker = "message like this one (the first failing seed of the buggy store):\n\n```text\n";
    let start = guide.find(marker).expect("the guide's panic message") + marker.len();
    let len = guide[start..].find("```\n").expect("the block's end");
    let shown: Vec<&str> = guide[start..start + len].lines().collect();
    let real: Vec<&str> = real.lines().collect();
    assert_eq!(shown.len(), real.len(), "{real:#?}");
    for (s, r) in shown.iter().zip(&real) {
        match s.strip_suffix("...") {
            Some(head) => assert!(r.starts_with(head), "guide: {s}\nreal:  {r}"),
            None => assert_eq!(s, r),
        }
    }
}
