//! `report.html` from a run directory: links resolve, values are escaped, and
//! in a real browser (Debian's headless Chromium, which `scripts/test`
//! installs) the page loads without script errors, shows every anomaly of
//! `report.json`, and shows injected markup as text.

use std::path::{Path, PathBuf};
use std::process::Command;

use ladon_harness::report::html;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report-lost-write")
}

/// Markup a hostile system under test might put in a node name: if it were
/// parsed as HTML its handler would mark the page.
const EVIL: &str = "<img src=x onerror=document.documentElement.setAttribute('data-pwned','1')>";

/// Copies the fixture, renaming node `n3` to `node`, and renders the report.
fn run_dir_with_node(node: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let json_node = serde_json::to_string(node).unwrap();
    let json_node = &json_node[1..json_node.len() - 1];
    for f in ["history.jsonl", "report.json", "messages.jsonl", "run.json"] {
        let text = std::fs::read_to_string(fixture().join(f)).unwrap();
        std::fs::write(dir.path().join(f), text.replace("n3", json_node)).unwrap();
    }
    html::write_report(dir.path()).unwrap();
    dir
}

fn anomaly_names(run_dir: &Path) -> Vec<String> {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    let names: Vec<String> = report["anomalies"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(names, vec!["divergence", "lost-write"]);
    names
}

#[test]
fn every_anomaly_link_points_at_a_drawn_operation() {
    let dir = run_dir_with_node("n3");
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let mut links = 0;
    for part in page.split("href=\"#op-").skip(1) {
        let idx: u64 = part[..part.find('"').unwrap()].parse().unwrap();
        assert!(
            page.contains(&format!("id=\"op-{idx}\"")),
            "link to op {idx} has no target"
        );
        links += 1;
    }
    // 3 lost-write examples (the write and the final read of the one node
    // missing it) and 2 divergence examples (3 final reads each), each op
    // linked from the list and from the diagram; each divergence diagram also
    // draws three of the writes some nodes lack.
    assert_eq!(links, (2 + 2 + 2) * 2 + 2 * 3 * 2 + 2 * 3);
    for section in [
        "id=\"anomaly-lost-write\"",
        "id=\"anomaly-divergence\"",
        "id=\"plot-latency\"",
        "id=\"plot-visibility\"",
        "id=\"plot-convergence\"",
        "id=\"plot-conflicts\"",
        "id=\"plot-throughput\"",
    ] {
        assert!(page.contains(section), "missing {section}");
    }
    // Messages that carried the lost writes are drawn, drops included.
    assert!(page.contains("class=\"msg dropped\""));
    assert!(
        page.contains("ladon run --workload list-append --nemesis partition,clock,crash --seed 7")
    );
    assert!(
        !page.contains("http://") || !page.contains("src=\"http"),
        "no network references"
    );
}

#[test]
fn injected_markup_is_escaped_in_the_page_source() {
    let dir = run_dir_with_node(EVIL);
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(
        !page.contains("<img"),
        "raw markup from a node name reached the page"
    );
    assert!(page.contains("&lt;img src=x onerror=document.documentElement.setAttribute(&#39;data-pwned&#39;,&#39;1&#39;)&gt;"));
}

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LADON_CHROMIUM") {
        return Some(p.into());
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Runs headless Chromium with the flags this machine needs, returning stdout.
fn headless(args: &[&str]) -> String {
    let Some(bin) = chromium() else {
        if std::env::var_os("LADON_SKIP_BROWSER").is_some() {
            return String::new();
        }
        panic!("chromium not found: install Debian's chromium (scripts/test does), or set LADON_SKIP_BROWSER=1");
    };
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium starts");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn report_loads_in_headless_chromium_and_shows_markup_as_text() {
    let dir = run_dir_with_node(EVIL);
    let url = format!("file://{}", dir.path().join("report.html").display());
    let dom = headless(&["--dump-dom", &url]);
    if dom.is_empty() && std::env::var_os("LADON_SKIP_BROWSER").is_some() {
        return;
    }
    // Every script ran to its end, and none failed.
    assert!(
        dom.contains("data-ladon-ready=\"yes\""),
        "report script did not finish:\n{}",
        &dom[..dom.len().min(2000)]
    );
    assert!(
        dom.contains("<pre id=\"script-errors\" hidden=\"\"></pre>"),
        "script errors reported"
    );
    // Each anomaly of report.json is on the page.
    for name in anomaly_names(dir.path()) {
        assert!(
            dom.contains(&format!("<span class=\"name\">{name}</span>")),
            "anomaly {name} not shown"
        );
    }
    // The hostile node name is text, not an element: no handler ran.
    assert!(
        !dom.contains("data-pwned=\"1\""),
        "injected markup executed"
    );
    assert!(!dom.contains("<img"), "injected markup became an element");
    assert!(
        dom.contains("&lt;img src=x onerror="),
        "node name not shown as text"
    );
}

#[test]
fn check_out_dir_gets_a_report_even_for_a_truncated_history() {
    let src = tempfile::tempdir().unwrap();
    let history = std::fs::read_to_string(fixture().join("history.jsonl")).unwrap();
    let mut lines: Vec<&str> = history.lines().take(20).collect();
    lines.push("{\"index\":20,\"time\":");
    std::fs::write(src.path().join("history.jsonl"), lines.join("\n")).unwrap();
    let report: ladon_checker::report::Report =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("report.json")).unwrap())
            .unwrap();
    let out = tempfile::tempdir().unwrap();
    let path =
        html::write_check_report(out.path(), &src.path().join("history.jsonl"), &report).unwrap();
    let page = std::fs::read_to_string(path).unwrap();
    // The 20 good events hold 10 invocations; no run.json beside it.
    assert_eq!(
        page.matches("<rect id=\"op-").count(),
        10,
        "{}",
        &page[..200]
    );
    assert!(page.contains("<title>Ladon: history — invalid</title>"));
}

/// A real simulated run of a known bug: its report.html (written by `ladon
/// run`) loads in Chromium and names every anomaly its report.json holds.
#[test]
fn a_real_failed_run_report_loads_in_headless_chromium() {
    let store = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_ladon"))
        .args([
            "run",
            "--strategy",
            "crdt",
            "--bug",
            "no-anti-entropy",
            "--nemesis",
            "partition",
        ])
        .args(["--time-limit", "5s", "--seed", "3", "--store"])
        .arg(store.path())
        .output()
        .unwrap();
    assert_eq!(
        status.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let run_dir = std::fs::read_link(store.path().join("latest")).unwrap();
    let run_dir = if run_dir.is_absolute() {
        run_dir
    } else {
        store.path().join(run_dir)
    };
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    let names: Vec<&String> = report["anomalies"].as_object().unwrap().keys().collect();
    assert!(names.iter().any(|n| *n == "lost-write"), "{names:?}");
    let url = format!("file://{}", run_dir.join("report.html").display());
    let dom = headless(&["--dump-dom", &url]);
    if dom.is_empty() && std::env::var_os("LADON_SKIP_BROWSER").is_some() {
        return;
    }
    assert!(dom.contains("data-ladon-ready=\"yes\""));
    assert!(
        dom.contains("<pre id=\"script-errors\" hidden=\"\"></pre>"),
        "script errors reported"
    );
    for name in names {
        assert!(
            dom.contains(&format!("<span class=\"name\">{name}</span>")),
            "anomaly {name} not shown"
        );
    }
    // The messages that failed to carry a lost write are drawn.
    assert!(dom.contains("class=\"msg dropped\""));
}

#[test]
fn an_unknown_verdict_says_why_and_junit_errors() {
    let events = html::read_history(&fixture().join("history.jsonl")).unwrap();
    let mut report: ladon_checker::report::Report =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("report.json")).unwrap())
            .unwrap();
    report.verdict = ladon_checker::report::Verdict::Unknown;
    report.extra.insert(
        "unknown_reason".into(),
        serde_json::json!("no final read from <i>n3</i>"),
    );
    let page = html::render(&events, &report, None, None);
    assert!(page.contains("<div class=\"verdict unknown\" id=\"verdict\">UNKNOWN</div>"));
    assert!(page.contains("The history cannot decide: no final read from &lt;i&gt;n3&lt;/i&gt;."));
    let cases = ladon_harness::report::junit::cases_per_anomaly("t", &report, None);
    assert_eq!(
        cases.last().unwrap().status,
        ladon_harness::report::junit::Status::Error {
            message: "verdict unknown: no final read from <i>n3</i>".into()
        }
    );
}
