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
    // The layout holds on a real run too.
    let r = layout_of(&run_dir.join("report.html")).unwrap();
    assert_eq!(r["clipped"], serde_json::json!([]), "{r}");
    assert_eq!(r["repeatedTicks"], serde_json::json!([]), "{r}");
    assert_eq!(r["dropMarksOffLane"], 0, "{r}");
    assert_eq!(r["narrow"], serde_json::json!([]), "{r}");
    assert_eq!(r["tocBroken"], serde_json::json!([]), "{r}");
    let open: Vec<u64> = r["openExamples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(open.iter().all(|&n| n == 1), "{r}");
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
    // The run's own case (suite, explore) says why too.
    let case = ladon_harness::report::junit::case_for_run("t", "run", &report, None, None);
    assert_eq!(
        case.status,
        ladon_harness::report::junit::Status::Error {
            message: "verdict unknown: no final read from <i>n3</i>".into()
        }
    );
    // And so does the summary printed on the command line and saved as summary.txt.
    assert!(report
        .summary_text()
        .starts_with("Verdict: UNKNOWN: no final read from <i>n3</i>\n"));
}

/// Measures the rendered page in Chromium: a script appended to a copy of
/// the page checks the layout after it is laid out and writes its findings
/// as JSON into the page, which `--dump-dom` returns.
const LAYOUT_PROBE: &str = r##"<pre id="layout-probe"></pre><script>
(function () {
  var r = {clipped: [], repeatedTicks: [], dropMarksOffLane: 0, dropMarks: 0,
           narrow: [], partitionLines: 0, partitionBands: 0, partitionLabels: 0,
           anomalies: 0, openExamples: [], collapsedExamples: 0, tocLinks: 0,
           tocBroken: [], latencyPanels: [], pageHeight: 0};
  var svgs = document.querySelectorAll("svg.lamport, svg.timeline");
  svgs.forEach(function (svg) {
    var w = svg.width.baseVal.value, h = svg.height.baseVal.value;
    svg.querySelectorAll("text").forEach(function (t) {
      var b = t.getBBox();
      if (b.x < -0.5 || b.x + b.width > w + 0.5 || b.y < -0.5 || b.y + b.height > h + 0.5)
        r.clipped.push(t.textContent);
    });
    var seen = {};
    svg.querySelectorAll("text.tick").forEach(function (t) {
      if (seen[t.textContent]) r.repeatedTicks.push(t.textContent);
      seen[t.textContent] = 1;
    });
    var box = svg.parentElement.getBoundingClientRect().width;
    if (svg.getBoundingClientRect().width < 0.9 * box)
      r.narrow.push(svg.getAttribute("class") + " " + Math.round(svg.getBoundingClientRect().width) + " of " + Math.round(box));
  });
  document.querySelectorAll("svg.lamport").forEach(function (svg) {
    var lanes = [];
    svg.querySelectorAll("text.node-label").forEach(function (t) { lanes.push(parseFloat(t.getAttribute("x"))); });
    svg.querySelectorAll("text.drop-mark").forEach(function (m) {
      r.dropMarks++;
      var x = parseFloat(m.getAttribute("x"));
      var line = m.previousElementSibling;
      var onLane = lanes.some(function (l) { return Math.abs(l - x) < 0.5; });
      var atEnd = line && Math.abs(parseFloat(line.getAttribute("x2")) - x) < 0.5;
      if (!onLane || !atEnd) r.dropMarksOffLane++;
    });
  });
  var tl = document.querySelector("svg.timeline");
  tl.querySelectorAll("line").forEach(function (l) {
    var t = l.querySelector("title");
    if (t && t.textContent.indexOf("partition") === 0) r.partitionLines++;
  });
  tl.querySelectorAll("rect.band").forEach(function (b) {
    if (b.querySelector("title").textContent.indexOf("partition") === 0) r.partitionBands++;
  });
  tl.querySelectorAll("text.band-label").forEach(function (t) {
    if (t.textContent === "partition") r.partitionLabels++;
  });
  document.querySelectorAll("article.anomaly").forEach(function (a) {
    r.anomalies++;
    var all = a.querySelectorAll(".example").length;
    var hidden = a.querySelectorAll("details.more-examples .example").length;
    r.openExamples.push(all - hidden);
    r.collapsedExamples += hidden;
  });
  document.querySelectorAll("nav#toc a").forEach(function (a) {
    r.tocLinks++;
    if (!document.getElementById(a.getAttribute("href").slice(1))) r.tocBroken.push(a.getAttribute("href"));
  });
  document.querySelectorAll("#plot-latency text").forEach(function (t) {
    var s = t.textContent.trim();
    if (/^n\d+: \d+ operations?, p50 /.test(s)) r.latencyPanels.push(s);
  });
  r.pageHeight = document.documentElement.scrollHeight;
  document.getElementById("layout-probe").textContent = JSON.stringify(r);
})();
</script>"##;

fn layout_of(report_html: &Path) -> Option<serde_json::Value> {
    let page = std::fs::read_to_string(report_html).unwrap();
    let probe = report_html.with_file_name("probe.html");
    std::fs::write(
        &probe,
        page.replace("</body>", &format!("{LAYOUT_PROBE}</body>")),
    )
    .unwrap();
    let url = format!("file://{}", probe.display());
    let dom = headless(&["--window-size=1400,1000", "--dump-dom", &url]);
    if dom.is_empty() && std::env::var_os("LADON_SKIP_BROWSER").is_some() {
        return None;
    }
    let start = dom.find("<pre id=\"layout-probe\">").expect("probe ran") + 23;
    let end = start + dom[start..].find("</pre>").unwrap();
    let json = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    Some(serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}")))
}

/// The fixture with its partition recorded as `partition-links` (as ring
/// cuts and one-way cuts are).
fn run_dir_with_partition_links() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["history.jsonl", "report.json", "messages.jsonl", "run.json"] {
        let text = std::fs::read_to_string(fixture().join(f)).unwrap();
        let text = text.replace(
            r#""f":"partition","value":[["n1","n2"],["n3"]]"#,
            r#""f":"partition-links","value":[["n1","n3"],["n3","n1"],["n2","n3"],["n3","n2"]]"#,
        );
        std::fs::write(dir.path().join(f), text).unwrap();
    }
    html::write_report(dir.path()).unwrap();
    dir
}

#[test]
fn the_report_layout_holds_in_chromium() {
    let dir = run_dir_with_partition_links();
    assert!(std::fs::read_to_string(dir.path().join("history.jsonl"))
        .unwrap()
        .contains("partition-links"));
    let Some(r) = layout_of(&dir.path().join("report.html")) else {
        return;
    };
    // Every label of the diagrams and the timeline is inside its drawing.
    assert_eq!(r["clipped"], serde_json::json!([]), "{r}");
    // No time axis repeats a label.
    assert_eq!(r["repeatedTicks"], serde_json::json!([]), "{r}");
    // Each ✕ ends its dropped message on the receiver's lane.
    assert!(r["dropMarks"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["dropMarksOffLane"], 0, "{r}");
    // Diagrams and the timeline use the page's width.
    assert_eq!(r["narrow"], serde_json::json!([]), "{r}");
    // The partition-links step is a shaded, labelled partition, not a line.
    assert_eq!(r["partitionLines"], 0, "{r}");
    assert_eq!(r["partitionBands"], 1, "{r}");
    assert_eq!(r["partitionLabels"], 1, "{r}");
    // One open example per anomaly, the others behind a disclosure: the
    // fixture has 2 divergence and 3 lost-write examples.
    assert_eq!(r["anomalies"], 2, "{r}");
    assert_eq!(r["openExamples"], serde_json::json!([1, 1]), "{r}");
    assert_eq!(r["collapsedExamples"], 1 + 2, "{r}");
    // A table of contents whose every link lands: 6 sections and 2 anomalies.
    assert_eq!(r["tocLinks"], 6 + 2, "{r}");
    assert_eq!(r["tocBroken"], serde_json::json!([]), "{r}");
    // A latency panel per node, each saying its figures.
    assert_eq!(r["latencyPanels"].as_array().unwrap().len(), 3, "{r}");
}
