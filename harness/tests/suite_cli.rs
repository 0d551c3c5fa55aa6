//! `ladon suite` end to end through the real binary: a correct configuration
//! must be valid, a known bug must be caught, and a wrong expectation fails
//! the suite with exit code 1, the reproduce command and JUnit.

use std::process::Command;

fn ladon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ladon"))
}

const SUITE: &str = r#"
name = "mini"
jobs = 2
timeout = 60
args = "--time-limit 2s"

[[group]]
name = "crdt"
adapter = "reference"
options = "--strategy crdt"
workload = "list-append"
nemesis = "partition"
seeds = [1]
expect = "valid"

[[group]]
name = "loop storm"
adapter = "reference"
options = "--strategy crdt --topology ring --bug no-loop-guard"
workload = "list-append"
seeds = [1]
expect = "invalid"
anomalies = ["duplicate"]
"#;

#[test]
fn suite_runs_the_matrix_and_reports_for_ci() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mini.toml");
    std::fs::write(&file, SUITE).unwrap();
    let junit = dir.path().join("junit.xml");
    let out = ladon()
        .arg("suite")
        .arg(&file)
        .arg("--store")
        .arg(dir.path().join("store"))
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("PASS   crdt / list-append / partition / --strategy crdt / seed 1"),
        "{stdout}"
    );
    assert!(stdout.contains("duplicate("), "{stdout}");
    assert!(
        stdout.ends_with("suite mini: 2 passed, 0 failed\n"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<testsuites name="ladon suite mini" tests="2" failures="0" errors="0">"#),
        "{xml}"
    );
    // Every run directory got its report.html.
    let reports = walk(&dir.path().join("store"), "report.html");
    assert_eq!(reports, 2);

    // The same bug expected to be valid: the suite fails, naming the reproduce command.
    std::fs::write(
        &file,
        SUITE
            .replace("anomalies = [\"duplicate\"]\n", "")
            .replace("expect = \"invalid\"", "expect = \"valid\""),
    )
    .unwrap();
    let out = ladon()
        .arg("suite")
        .arg(&file)
        .args(["--filter", "loop storm", "--store"])
        .arg(dir.path().join("store2"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL loop storm / list-append / --strategy crdt --topology ring --bug no-loop-guard / seed 1: expected valid, got invalid"), "{stdout}");
    assert!(stdout.contains("  reproduce: ladon run --adapter reference --workload list-append --strategy crdt --topology ring --bug no-loop-guard --time-limit 2s"), "{stdout}");
}

#[test]
fn suite_file_mistakes_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, SUITE.replace("[\"duplicate\"]", "[\"duplicates\"]")).unwrap();
    let out = ladon().arg("suite").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains(&format!(
            "{}:23: group \"loop storm\": unknown anomaly \"duplicates\"",
            file.display()
        )),
        "{stderr}"
    );
}

fn walk(dir: &std::path::Path, name: &str) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_symlink() {
            continue;
        }
        if p.is_dir() {
            n += walk(&p, name);
        } else if p.file_name().is_some_and(|f| f == name) {
            n += 1;
        }
    }
    n
}
