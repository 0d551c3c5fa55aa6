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
