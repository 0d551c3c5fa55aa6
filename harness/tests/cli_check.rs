//! `ladon check` and `ladon gen-history` end to end: exit codes, files
//! written, errors naming the file.

use std::process::Command;

fn ladon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ladon"))
}

fn fixture(rel: &str) -> String {
    format!(
        "{}/../checker/tests/fixtures/{rel}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn exit_codes_follow_the_verdict() {
    let code = |args: &[&str]| ladon().args(args).output().unwrap().status.code();
    assert_eq!(
        code(&["check", &fixture("valid/spec-example.jsonl")]),
        Some(0)
    );
    assert_eq!(
        code(&["check", &fixture("anomalies/lost-write-list.jsonl")]),
        Some(1)
    );
    assert_eq!(
        code(&["check", &fixture("verdicts/unknown-no-final.jsonl")]),
        Some(2)
    );
    assert_eq!(
        code(&["check", &fixture("invalid/index-gap.jsonl")]),
        Some(2)
    );
    // causal anomalies are allowed unless `causal` is promised
    let cv = fixture("anomalies/causal-visibility.jsonl");
    assert_eq!(code(&["check", &cv]), Some(0));
    assert_eq!(code(&["check", &cv, "--guarantees", "causal"]), Some(1));
    assert_eq!(
        code(&[
            "check",
            &fixture("anomalies/lost-write-list.jsonl"),
            "--guarantees",
            "none"
        ]),
        Some(0)
    );
}

#[test]
fn errors_name_the_file_or_flag_and_exit_2() {
    let out = ladon()
        .args(["check", "/nonexistent/h.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/h.jsonl"));
    let out = ladon()
        .args([
            "check",
            &fixture("valid/spec-example.jsonl"),
            "--guarantees",
            "speedy",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--guarantees"));
    // An empty list, or an empty name in one, is refused (not read as none).
    for (list, says) in [("", "the list is empty"), ("causal,", "has an empty name")] {
        let out = ladon()
            .args([
                "check",
                &fixture("valid/spec-example.jsonl"),
                "--guarantees",
                list,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{list:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--guarantees") && err.contains(says),
            "{list:?}: {err}"
        );
    }
}

#[test]
fn json_out_and_dot() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let dot_dir = dir.path().join("dot");
    let out = ladon()
        .args([
            "check",
            &fixture("anomalies/causal-order.jsonl"),
            "--json",
            "--guarantees",
            "causal",
        ])
        .arg("--out")
        .arg(&out_dir)
        .arg("--dot")
        .arg(&dot_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["anomalies"]["causal-order"]["count"], 1);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(saved, report);
    assert!(std::fs::read_to_string(out_dir.join("summary.txt"))
        .unwrap()
        .contains("causal-order: 1"));
    let dot = std::fs::read_to_string(dot_dir.join("causal-order-1.dot")).unwrap();
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.contains("op1 -> op3 [label=\"reads-from\""), "{dot}");
}

#[test]
fn gen_history_then_check() {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("h.jsonl");
    let st = ladon()
        .args([
            "gen-history",
            "--workload",
            "set",
            "--ops",
            "300",
            "--seed",
            "3",
            "--inject",
            "phantom",
            "--out",
        ])
        .arg(&h)
        .status()
        .unwrap();
    assert!(st.success());
    let out = ladon().arg("check").arg(&h).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&String> = report["anomalies"].as_object().unwrap().keys().collect();
    assert_eq!(names, vec!["phantom"]);
}

/// Hot keys: `--keys 2 --max-writes-per-key unbounded` puts every write of
/// six sessions on two register keys; the history is causally consistent
/// (valid under `causal`), and bad values name their flag.
#[test]
fn gen_history_hot_keys() {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("hot.jsonl");
    let out = ladon()
        .args([
            "gen-history",
            "--workload",
            "register",
            "--ops",
            "2000",
            "--processes",
            "6",
            "--keys",
            "2",
            "--max-writes-per-key",
            "unbounded",
            "--mops",
            "4",
            "--seed",
            "1",
            "--out",
        ])
        .arg(&h)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("(2000 transactions, 2 keys)"), "{stderr}");
    let out = ladon()
        .args(["check", "--json", "--guarantees", "causal"])
        .arg(&h)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "valid");
    for (args, flag) in [
        (["--keys", "0"], "--keys"),
        (["--mops", "0"], "--mops"),
        (["--max-writes-per-key", "lots"], "--max-writes-per-key"),
    ] {
        let out = ladon().arg("gen-history").args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}

/// A run directory holding `fixture` as its history and a `run.json` that
/// declares `guarantees`.
fn run_dir(fixture_rel: &str, run_json: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture(fixture_rel), dir.path().join("history.jsonl")).unwrap();
    std::fs::write(dir.path().join("run.json"), run_json).unwrap();
    dir
}

#[test]
fn a_run_directory_is_checked_for_the_runs_own_guarantees() {
    // The run promised causal: a causal anomaly makes it invalid, as in the
    // run itself, although the plain default would call it valid.
    let dir = run_dir(
        "anomalies/causal-visibility.jsonl",
        r#"{"test":"t","seed":1,"guarantees":["convergence","no-lost-writes","causal"]}"#,
    );
    let history = dir.path().join("history.jsonl");
    let run_json = dir.path().join("run.json");
    for target in [&history, &dir.path().to_path_buf()] {
        let out = ladon().arg("check").arg(target).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", target.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "guarantees convergence,no-lost-writes,causal (from {}",
                run_json.display()
            )),
            "{stderr}"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("Guarantees checked: convergence, no-lost-writes, causal"),
            "{stdout}"
        );
    }
    // --guarantees wins over run.json, and says so.
    let out = ladon()
        .arg("check")
        .arg(&history)
        .args(["--guarantees", "convergence"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("guarantees convergence (from --guarantees)")
    );
    // --json keeps stdout one JSON object.
    let out = ladon()
        .arg("check")
        .arg(dir.path())
        .arg("--json")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["guarantees"],
        serde_json::json!(["convergence", "no-lost-writes", "causal"])
    );
}

#[test]
fn without_run_json_the_default_guarantees_are_named() {
    let out = ladon()
        .args(["check", &fixture("anomalies/causal-visibility.jsonl")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("guarantees convergence,no-lost-writes (the default; --guarantees overrides)"));
}

#[test]
fn a_run_json_without_guarantees_is_an_error_naming_it() {
    let dir = run_dir("valid/spec-example.jsonl", r#"{"test":"t"}"#);
    let out = ladon().arg("check").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("run.json") && stderr.contains("--guarantees"),
        "{stderr}"
    );
    let out = ladon()
        .arg("check")
        .arg(dir.path())
        .args(["--guarantees", "none"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}
