//! What a user sees when things go wrong around a check: a torn or damaged
//! `messages.jsonl` beside a history, durations out of range, and an
//! `unknown` verdict's reason in every output (issue 10, "Interrupted and
//! failed runs").

use std::path::Path;
use std::process::{Command, Output};

fn ladon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ladon"))
}

fn fixture(rel: &str) -> String {
    format!(
        "{}/../checker/tests/fixtures/{rel}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const WHOLE: &str = r#"{"time":1,"event":"send","id":1,"from":"n1","to":"n2","summary":"replicate","writes":[["x",1]]}"#;

/// A run directory holding a lost-write history and `messages`.
fn run_dir(messages: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("anomalies/lost-write-list.jsonl"),
        dir.path().join("history.jsonl"),
    )
    .unwrap();
    std::fs::write(dir.path().join("messages.jsonl"), messages).unwrap();
    dir
}

fn check_out(run: &Path, out: &Path) -> Output {
    ladon()
        .arg("check")
        .arg(run.join("history.jsonl"))
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn page_notice(out: &Path) -> String {
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    let start = page
        .find(r#"<p class="note" id="message-log">"#)
        .expect("the page has a message-log notice");
    let rest = &page[start..];
    rest[..rest.find("</p>").unwrap() + 4].to_string()
}

/// After a kill -9 the last line of messages.jsonl can be half written:
/// that is truncation, said so, and not a failure.
#[test]
fn a_torn_last_message_line_is_truncation_and_said_so() {
    let run = run_dir(&format!("{WHOLE}\n{{\"time\":2,\"ev"));
    let out = tempfile::tempdir().unwrap();
    let o = check_out(run.path(), out.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stdout).starts_with("Verdict: INVALID: found divergence, lost-write\n"));
    let said = "the message log messages.jsonl ends in a torn line (line 2: 13 bytes and no newline, \
                cut off when the run stopped); it is read as truncated there, 1 whole message event kept";
    assert!(
        text(&o.stderr).ends_with(&format!("warning: report.html: {said}\n")),
        "{}",
        text(&o.stderr)
    );
    let summary = std::fs::read_to_string(out.path().join("summary.txt")).unwrap();
    assert!(
        summary.ends_with(&format!("\nMessage log: {said}.\n")),
        "{summary}"
    );
    assert_eq!(
        page_notice(out.path()),
        format!(
            r#"<p class="note" id="message-log">The message log messages.jsonl ends in a torn line (line 2: 13 bytes and no newline, cut off when the run stopped); it is read as truncated there, 1 whole message event kept.</p>"#
        )
    );
    // `ladon report` on the run directory renders it too, with the warning.
    std::fs::copy(
        out.path().join("report.json"),
        run.path().join("report.json"),
    )
    .unwrap();
    let o = ladon().arg("report").arg(run.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stderr), format!("warning: {said}\n"));
    assert!(page_notice(run.path()).contains("ends in a torn line (line 2: 13 bytes"));
}

/// A damaged messages.jsonl (a bad line that is not the torn end) does not
/// stop `check --out`: the verdict is printed, report.json written, and the
/// page says the message diagram is missing and why.
#[test]
fn a_damaged_message_log_leaves_the_verdict_and_says_why_the_diagram_is_missing() {
    let run = run_dir(&format!("not json\n{WHOLE}\n"));
    let out = tempfile::tempdir().unwrap();
    let o = check_out(run.path(), out.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stdout).starts_with("Verdict: INVALID: found divergence, lost-write\n"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["verdict"], "invalid");
    let why = format!(
        "{}:1: not a message event: expected ident at line 1 column 2",
        run.path().join("messages.jsonl").display()
    );
    assert!(
        text(&o.stderr).ends_with(&format!(
            "warning: report.html: the message diagram is missing: {why}\n"
        )),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        page_notice(out.path()),
        format!(r#"<p class="note" id="message-log">The message diagram is missing: {why}.</p>"#)
    );
    // Each anomaly's diagram says the same instead of "no message log".
    let page = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert_eq!(
        page.matches(&format!(
            r#"<p class="note">The message diagram is missing: {why}.</p>"#
        ))
        .count(),
        2
    );
    assert!(!page.contains("No message log"));
}

const OUT_OF_RANGE: &str = "18446744073709551615s";

fn refused(args: &[&str], flag: &str, value: &str, bad: &str) {
    let dir = tempfile::tempdir().unwrap();
    let o = ladon().args(args).current_dir(dir.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{args:?}");
    let upper = flag
        .trim_start_matches("--")
        .replace('-', "_")
        .to_uppercase();
    assert_eq!(
        text(&o.stderr).lines().next().unwrap_or(""),
        format!(
            "error: invalid value '{value}' for '{flag} <{upper}>': invalid duration \"{bad}\": \
             out of range (the longest is 3155760000s, 100 years)"
        ),
        "{args:?}"
    );
    // Refused before anything started: no run directory.
    assert!(!dir.path().join("results").exists(), "{args:?}");
}

/// Every duration flag refuses a value past 100 years, naming the flag,
/// instead of saturating or wrapping.
#[test]
fn out_of_range_durations_are_refused_naming_the_flag() {
    for flag in [
        "--time-limit",
        "--nemesis-interval",
        "--clock-skew",
        "--op-timeout",
        "--converge-timeout",
        "--final-interval",
    ] {
        refused(
            &["run", flag, OUT_OF_RANGE],
            flag,
            OUT_OF_RANGE,
            OUT_OF_RANGE,
        );
    }
    for (value, bad) in [
        (format!("constant:{OUT_OF_RANGE}"), OUT_OF_RANGE),
        ("uniform:1ms..1e30s".to_string(), "1e30s"),
        ("exponential:3155760001s".to_string(), "3155760001s"),
    ] {
        refused(&["run", "--latency", &value], "--latency", &value, bad);
    }
    // The process adapter's flags.
    for flag in [
        "--time-limit",
        "--nemesis-interval",
        "--clock-skew",
        "--op-timeout",
        "--init-timeout",
        "--converge-timeout",
    ] {
        refused(
            &[
                "run",
                "--adapter",
                "process",
                "--bin",
                "/bin/true",
                flag,
                OUT_OF_RANGE,
            ],
            flag,
            OUT_OF_RANGE,
            OUT_OF_RANGE,
        );
    }
    // explore takes the run's flags.
    refused(
        &["explore", "--seeds", "1", "--time-limit", "1e30s"],
        "--time-limit",
        "1e30s",
        "1e30s",
    );
}

/// An unknown verdict's reason is on the command line, in summary.txt, in
/// report.html and in JUnit, not only in report.json.
#[test]
fn an_unknown_verdict_gives_its_reason_everywhere() {
    let why = "no final phase: no node has an ok final read, so final states cannot be compared";
    let out = tempfile::tempdir().unwrap();
    let junit = out.path().join("junit.xml");
    let o = ladon()
        .arg("check")
        .arg(fixture("verdicts/unknown-no-final.jsonl"))
        .arg("--out")
        .arg(out.path())
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let line = format!("Verdict: UNKNOWN: {why}\n");
    assert!(text(&o.stdout).starts_with(&line), "{}", text(&o.stdout));
    let summary = std::fs::read_to_string(out.path().join("summary.txt")).unwrap();
    assert!(summary.starts_with(&line), "{summary}");
    let page = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(
        page.contains(&format!(
            r#"<p class="lead">The history cannot decide: {why}.</p>"#
        )),
        "lead missing"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(&format!(r#"message="verdict unknown: {why}""#)),
        "{xml}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["unknown_reason"], why);
}
