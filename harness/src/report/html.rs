//! `report.html`: one self-contained page (inline CSS, JS and SVG; no network,
//! works from `file://`) rendered from a history, its report, and where
//! present `messages.jsonl` and `run.json`.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use ladon_checker::history::Event;
use ladon_checker::report::{Report, Verdict};
use serde_json::Value as Json;

use super::escape::{esc, id_fragment};
use super::messages::{Message, MessageLog};
use super::model::Timeline;
use super::{lamport, plots, prose, timeline};

/// The most operations the timeline draws (anomalies' operations always are).
pub const MAX_TIMELINE_OPS: usize = 3000;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a history event: {source}")]
    History {
        path: String,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: not a report/run object: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Read {
        path: path.display().to_string(),
        source,
    }
}

/// Reads a history file leniently enough to draw it: every line must be an
/// event, but the contract's ordering rules are the checker's business.
pub fn read_history(path: &Path) -> Result<Vec<Event>, ReportError> {
    let file = std::fs::File::open(path).map_err(read_error(path))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(read_error(path))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line).map_err(|source| ReportError::History {
                path: path.display().to_string(),
                line: i + 1,
                source,
            })?,
        );
    }
    Ok(out)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let text = std::fs::read_to_string(path).map_err(read_error(path))?;
    serde_json::from_str(&text).map_err(|source| ReportError::Json {
        path: path.display().to_string(),
        source,
    })
}

/// `read(path)` when the file exists, `None` when it does not.
fn if_exists<T, E: Into<ReportError>>(
    path: &Path,
    read: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<Option<T>, ReportError> {
    if path.exists() {
        read(path).map(Some).map_err(Into::into)
    } else {
        Ok(None)
    }
}

/// Renders `RUN_DIR/report.html` from `history.jsonl` and `report.json`, with
/// `messages.jsonl` and `run.json` when they exist. Returns the page's path.
pub fn write_report(run_dir: &Path) -> Result<PathBuf, ReportError> {
    write_report_noting(run_dir).map(|(path, _)| path)
}

/// [`write_report`], also returning what the page says about a torn or
/// damaged `messages.jsonl` (for the command to say it too).
pub fn write_report_noting(run_dir: &Path) -> Result<(PathBuf, Option<String>), ReportError> {
    let events = read_history(&run_dir.join("history.jsonl"))?;
    let report: Report = read_json(&run_dir.join("report.json"))?;
    let messages = MessageLog::load(&run_dir.join("messages.jsonl"));
    let run: Option<Json> = if_exists(&run_dir.join("run.json"), read_json)?;
    let path = write_page(run_dir, &events, &report, &messages, run.as_ref())?;
    Ok((path, messages.notice()))
}

/// For `ladon check HISTORY --out DIR`: writes `DIR/report.html` from the
/// history file and the report just computed, with the `messages.jsonl` and
/// `run.json` beside the history where present. A history that stops
/// parsing at some line (an `invalid-history` report) is drawn up to there.
/// A damaged `messages.jsonl` leaves the page without message diagrams,
/// saying why; the returned notice says the same for the command line.
pub fn write_check_report(
    out_dir: &Path,
    history: &Path,
    report: &Report,
) -> Result<(PathBuf, Option<String>), ReportError> {
    let events = match read_history(history) {
        Ok(ev) => ev,
        Err(ReportError::History { .. }) => read_history_prefix(history)?,
        Err(e) => return Err(e),
    };
    let beside = history.parent().unwrap_or(Path::new("."));
    let messages = MessageLog::load(&beside.join("messages.jsonl"));
    // A run.json that does not parse is left out of a check's page.
    let run: Option<Json> = if_exists(&beside.join("run.json"), read_json).unwrap_or(None);
    let path = write_page(out_dir, &events, report, &messages, run.as_ref())?;
    Ok((path, messages.notice()))
}

/// The events before the first line that is not an event.
fn read_history_prefix(path: &Path) -> Result<Vec<Event>, ReportError> {
    let file = std::fs::File::open(path).map_err(read_error(path))?;
    let mut out = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(read_error(path))?;
        match serde_json::from_str(&line) {
            Ok(e) => out.push(e),
            Err(_) => break,
        }
    }
    Ok(out)
}

/// Writes `DIR/report.html` from values already in memory (what `ladon run`
/// and `ladon check --out DIR` hold after checking).
pub fn write_report_from(
    dir: &Path,
    events: &[Event],
    report: &Report,
    messages: Option<&[Message]>,
    run: Option<&Json>,
) -> Result<PathBuf, ReportError> {
    let log = match messages {
        Some(m) => MessageLog::Read {
            messages: m.to_vec(),
            torn: None,
        },
        None => MessageLog::Absent,
    };
    write_page(dir, events, report, &log, run)
}

fn write_page(
    dir: &Path,
    events: &[Event],
    report: &Report,
    messages: &MessageLog,
    run: Option<&Json>,
) -> Result<PathBuf, ReportError> {
    let html = render_with(events, report, messages, run);
    let path = dir.join("report.html");
    std::fs::write(&path, html).map_err(|source| ReportError::Write {
        path: path.display().to_string(),
        source,
    })?;
    Ok(path)
}

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// The error recorder runs first, so any later script error is shown on the
/// page (and the browser test can see it).
const ERROR_HOOK: &str = "window.__ladonErrors=[];window.addEventListener('error',function(e){var m=(e.message||'script error')+' ('+(e.filename||'inline')+':'+(e.lineno||0)+')';var d=document.getElementById('script-errors');if(d){d.hidden=false;d.textContent+=m+'\\n'}else{window.__ladonErrors.push(m)}});";

fn verdict_class(v: Verdict) -> &'static str {
    v.as_str()
}

fn run_field<'a>(run: Option<&'a Json>, k: &str) -> Option<&'a Json> {
    run.and_then(|r| r.get(k)).filter(|v| !v.is_null())
}

fn json_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The page.
pub fn render(
    events: &[Event],
    report: &Report,
    messages: Option<&[Message]>,
    run: Option<&Json>,
) -> String {
    let log = match messages {
        Some(m) => MessageLog::Read {
            messages: m.to_vec(),
            torn: None,
        },
        None => MessageLog::Absent,
    };
    render_with(events, report, &log, run)
}

/// The page, with what `messages.jsonl` gave (whole, torn, damaged, none).
pub fn render_with(
    events: &[Event],
    report: &Report,
    log: &MessageLog,
    run: Option<&Json>,
) -> String {
    let messages = log.messages();
    let t = Timeline::from_events(events);
    let named: BTreeSet<u64> = report
        .anomalies
        .values()
        .flat_map(|f| f.examples.iter().flat_map(|e| e.ops.iter()))
        .filter_map(|i| t.op_at(*i).map(|o| o.index()))
        .collect();
    let test = run_field(run, "test")
        .map(json_text)
        .unwrap_or_else(|| "history".into());
    let mut title = test.clone();
    if let Some(seed) = run_field(run, "seed") {
        let _ = write!(title, " seed {}", json_text(seed));
    }
    let mut h = String::with_capacity(1 << 20);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Ladon: {} — {}</title><script>{ERROR_HOOK}</script><style>{CSS}</style></head><body>\
<pre id=\"script-errors\" hidden></pre>",
        esc(&title),
        report.verdict.as_str()
    );
    // Shared SVG definitions (the message arrowhead).
    h.push_str(r##"<svg width="0" height="0" style="position:absolute"><defs><marker id="ladon-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#1565c0"/></marker></defs></svg>"##);
    header(&mut h, report, run, &title);
    if let Some(notice) = log.notice() {
        let _ = write!(
            h,
            "<p class=\"note\" id=\"message-log\">{}.</p>",
            esc(&capitalized(&notice))
        );
    }
    anomalies(&mut h, report, &t, messages, log);
    timeline_section(&mut h, &t, &named);
    plots_section(&mut h, &t, report);
    if let Some(r) = run {
        let pretty = serde_json::to_string_pretty(r).unwrap_or_default();
        let _ = write!(
            h,
            "<section id=\"run\"><h2>Run</h2><details><summary>run.json</summary><pre>{}</pre></details></section>",
            esc(&pretty)
        );
    }
    let _ = writeln!(
        h,
        "<aside id=\"op-panel\" hidden><button type=\"button\" id=\"op-panel-close\">×</button><div id=\"op-panel-text\"></div></aside><script>{JS}</script></body></html>"
    );
    h
}

fn header(h: &mut String, report: &Report, run: Option<&Json>, title: &str) {
    let v = report.verdict;
    let _ = write!(
        h,
        "<header><h1>{}</h1><div class=\"verdict {}\" id=\"verdict\">{}</div>",
        esc(title),
        verdict_class(v),
        v.as_str().to_uppercase()
    );
    let forbidden: Vec<_> = report
        .anomalies
        .iter()
        .filter(|(_, f)| f.forbidden)
        .map(|(a, f)| format!("{} ({})", a, f.count))
        .collect();
    let line = match v {
        Verdict::Valid if report.anomalies.is_empty() => "No anomalies found.".to_string(),
        Verdict::Valid => {
            "Nothing the guarantees forbid was found (the anomalies below are allowed).".into()
        }
        Verdict::Invalid => format!("Forbidden anomalies found: {}.", forbidden.join(", ")),
        Verdict::Unknown => match report.extras().unknown_reason {
            Some(why) => format!("The history cannot decide: {why}."),
            None => "The history cannot decide (invalid history, or no final read from some node)."
                .into(),
        },
    };
    let _ = write!(h, "<p class=\"lead\">{}</p>", esc(&line));
    // A database run's servers that died by themselves, and replication
    // that had stopped, with the servers' own errors (why the nodes could
    // not agree).
    for (key, heading) in [
        (
            "server_exits",
            "Servers that exited by themselves (Ladon did not stop them):",
        ),
        (
            "replication_problems",
            "Replication problems, in the servers' own words (why nodes disagree):",
        ),
    ] {
        if let Some(lines) = report
            .extra
            .get(key)
            .and_then(|v| v.as_array())
            .filter(|l| !l.is_empty())
        {
            // A constant of ours: no escaping (its apostrophe stays one).
            let _ = write!(h, "<p class=\"lead\">{heading}</p><ul>");
            for l in lines {
                let _ = write!(h, "<li><code>{}</code></li>", esc(&json_text(l)));
            }
            h.push_str("</ul>");
        }
    }
    if let Some(r) = run_field(run, "reproduce") {
        let _ = write!(
            h,
            "<p>Reproduce: <code class=\"reproduce\">{}</code></p>",
            esc(&json_text(r))
        );
    }
    let mut facts = Vec::new();
    for k in ["mode", "seed", "ladon_version", "git_revision"] {
        if let Some(x) = run_field(run, k) {
            facts.push(format!("{k}: {}", json_text(x)));
        }
    }
    if !facts.is_empty() {
        let _ = write!(h, "<p class=\"facts\">{}</p>", esc(&facts.join(" · ")));
    }
    toc(h, report, run.is_some());
    h.push_str("</header>");
    // Guarantees.
    h.push_str("<section id=\"guarantees\"><h2>Guarantees checked</h2>");
    if report.guarantees.is_empty() {
        h.push_str("<p>None declared: only the anomalies that are always forbidden count.</p>");
    } else {
        h.push_str("<ul>");
        for g in &report.guarantees {
            let _ = write!(h, "<li><b>{}</b>: {}</li>", g, prose::guarantee(*g));
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>");
    figures(h, report);
}

/// The table of contents: every section, and every anomaly with its count.
fn toc(h: &mut String, report: &Report, has_run: bool) {
    h.push_str("<nav id=\"toc\"><b>Contents</b><ol><li><a href=\"#guarantees\">Guarantees checked</a></li><li><a href=\"#figures\">Figures</a></li><li><a href=\"#anomalies\">Anomalies</a>");
    if !report.anomalies.is_empty() {
        h.push_str("<ol>");
        for (a, f) in &report.anomalies {
            let _ = write!(
                h,
                "<li><a href=\"#anomaly-{}\">{a}</a> × {} ({})</li>",
                id_fragment(a.as_str()),
                f.count,
                if f.forbidden { "forbidden" } else { "allowed" }
            );
        }
        h.push_str("</ol>");
    }
    h.push_str(
        "</li><li><a href=\"#timeline\">Timeline</a></li><li><a href=\"#plots\">Plots</a></li>",
    );
    if has_run {
        h.push_str("<li><a href=\"#run\">Run (run.json)</a></li>");
    }
    h.push_str("</ol></nav>");
}

fn figures(h: &mut String, report: &Report) {
    let s = &report.stats;
    let c = &report.conflicts;
    let conv = match s.convergence_ns {
        Some(ns) => timeline::fmt_secs(ns),
        None => "never (or no final phase)".into(),
    };
    let rows: Vec<(&str, String)> = vec![
        (
            "operations ok / fail / info",
            format!("{} / {} / {}", s.ok, s.fail, s.info),
        ),
        ("acknowledged writes", s.acknowledged_writes.to_string()),
        (
            "writes lost",
            format!(
                "{} ({:.2}% of acknowledged)",
                s.lost_writes,
                s.lost_write_share * 100.0
            ),
        ),
        ("convergence after the heal", conv),
        ("concurrent pairs", c.concurrent_pairs.to_string()),
        (
            "conflict resolution (keys per class)",
            format!(
                "{} — {}",
                ladon_checker::summary::conflict_classes(c),
                ladon_checker::summary::CONFLICT_CLASSES_HELP
            ),
        ),
    ];
    h.push_str("<section id=\"figures\"><h2>Figures</h2><table class=\"figures\">");
    for (k, v) in rows {
        let _ = write!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    let extras = report.extras();
    if let Some(p) = extras.policy_description {
        let _ = write!(
            h,
            "<tr><th>resolution policy observed</th><td>{}</td></tr>",
            esc(p)
        );
    }
    if let Some(m) = extras.messages_per_write {
        let _ = write!(h, "<tr><th>messages per write</th><td>{m:.2}</td></tr>");
    }
    if !extras.latency.is_empty() {
        h.push_str("<tr><th>latency of ok operations (invoke to completion, as the client saw it)</th><td><table class=\"latency\"><tr><th>node</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>");
        let ms = ladon_checker::explain::duration;
        for (node, q) in &extras.latency {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(node),
                q.count,
                ms(q.p50),
                ms(q.p90),
                ms(q.p99),
                ms(q.max)
            );
        }
        h.push_str("</table></td></tr>");
    }
    h.push_str("</table>");
    use ladon_checker::extras::key;
    let shown = [key::POLICY, key::MESSAGES_PER_WRITE, key::LATENCY_NS];
    let rest: Vec<_> = report
        .extra
        .iter()
        .filter(|(k, _)| !shown.contains(&k.as_str()))
        .collect();
    if !rest.is_empty() {
        h.push_str(
            "<details><summary>More fields of report.json</summary><table class=\"figures\">",
        );
        for (k, v) in rest {
            let mut text = json_text(v);
            if text.chars().count() > 400 {
                text = text.chars().take(400).collect::<String>() + "…";
            }
            let _ = write!(
                h,
                "<tr><th>{}</th><td class=\"mono\">{}</td></tr>",
                esc(k),
                esc(&text)
            );
        }
        h.push_str("</table></details>");
    }
    h.push_str("</section>");
}

/// `notice` with its first letter upper-case, as a sentence of its own.
fn capitalized(notice: &str) -> String {
    let mut c = notice.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn anomalies(
    h: &mut String,
    report: &Report,
    t: &Timeline,
    messages: Option<&[Message]>,
    log: &MessageLog,
) {
    h.push_str("<section id=\"anomalies\"><h2>Anomalies</h2>");
    if report.anomalies.is_empty() {
        h.push_str("<p>None found.</p>");
    }
    for (a, f) in &report.anomalies {
        let badge = if f.forbidden { "forbidden" } else { "allowed" };
        let _ = write!(
            h,
            "<article class=\"anomaly {badge}\" id=\"anomaly-{}\"><h3><span class=\"name\">{}</span> <span class=\"count\">× {}</span> <span class=\"badge {badge}\">{badge}</span></h3><p>{}</p>",
            id_fragment(a.as_str()),
            a,
            f.count,
            prose::anomaly(*a)
        );
        if f.examples.len() < f.count as usize {
            let _ = write!(
                h,
                "<p class=\"note\">{} example(s) of {} shown.</p>",
                f.examples.len(),
                f.count
            );
        }
        for (n, ex) in f.examples.iter().enumerate() {
            // The first example is open; the others wait behind one disclosure.
            if n == 1 {
                let _ = write!(
                    h,
                    "<details class=\"more-examples\"><summary>{} more example(s) of {a}</summary>",
                    f.examples.len() - 1
                );
            }
            let _ = write!(
                h,
                "<div class=\"example\"><h4>Example {}{}</h4><p class=\"explanation\">{}</p>",
                n + 1,
                ex.key
                    .as_ref()
                    .map(|k| format!(" — key {}", esc(&k.to_string())))
                    .unwrap_or_default(),
                esc(&ex.explanation)
            );
            if !ex.nodes.is_empty() {
                let _ = write!(h, "<p>Nodes: {}</p>", esc(&ex.nodes.join(", ")));
            }
            let lack = lamport::lacking(t, ex);
            if !lack.is_empty() {
                let parts: Vec<String> = lack
                    .iter()
                    .map(|(n, vals)| {
                        let vals: Vec<String> = vals.iter().map(|v| v.to_string()).collect();
                        format!("{n} lacks {}", vals.join(", "))
                    })
                    .collect();
                let _ = write!(
                    h,
                    "<p class=\"diff\">Difference: {}.</p>",
                    esc(&parts.join("; "))
                );
            }
            h.push_str("<ol class=\"ops\">");
            for &i in &ex.ops {
                match t.op_at(i) {
                    Some(op) => {
                        let _ = write!(
                            h,
                            "<li><a href=\"#op-{}\" class=\"op-link\">op {}</a> {}</li>",
                            op.index(),
                            i,
                            esc(&timeline::describe_for(op, ex.key.as_ref()))
                        );
                    }
                    None => {
                        let _ = write!(
                            h,
                            "<li>op {i} (not a client operation of this history)</li>"
                        );
                    }
                }
            }
            h.push_str("</ol>");
            if !ex.ops.is_empty() || !ex.nodes.is_empty() {
                let (svg, mut note) = lamport::render(t, ex, messages);
                if let MessageLog::Unreadable(_) = log {
                    // Say why there are no message arrows, not "no log".
                    note = format!("{}.", capitalized(&log.notice().unwrap_or_default()));
                }
                h.push_str("<div class=\"diagram\">");
                h.push_str(&svg);
                h.push_str("</div>");
                if !note.is_empty() {
                    let _ = write!(h, "<p class=\"note\">{}</p>", esc(&note));
                }
            }
            if let Some(svg) = super::lin_window::render(ex) {
                h.push_str("<div class=\"diagram\"><p class=\"note\">The key's operations over time; ✗ marks the one no order can place.</p>");
                h.push_str(&svg);
                h.push_str("</div>");
            }
            if !ex.detail.is_null() {
                let pretty = serde_json::to_string_pretty(&ex.detail).unwrap_or_default();
                let _ = write!(
                    h,
                    "<details><summary>detail</summary><pre>{}</pre></details>",
                    esc(&pretty)
                );
            }
            h.push_str("</div>");
        }
        if f.examples.len() > 1 {
            h.push_str("</details>");
        }
        h.push_str("</article>");
    }
    h.push_str("</section>");
}

fn timeline_section(h: &mut String, t: &Timeline, named: &BTreeSet<u64>) {
    let chosen = timeline::select(t, named, MAX_TIMELINE_OPS);
    h.push_str("<section id=\"timeline\"><h2>Timeline</h2><p class=\"legend\"><span class=\"key ok\"></span>ok <span class=\"key fail\"></span>fail <span class=\"key info\"></span>info <span class=\"key named\"></span>named by an anomaly");
    for k in ["partition", "clock-skew", "crash", "pause"] {
        let _ = write!(
            h,
            " <span class=\"key\" style=\"background:{}\"></span>{k}",
            timeline::fault_colour(k)
        );
    }
    h.push_str("</p>");
    if chosen.len() < t.ops.len() {
        let _ = write!(
            h,
            "<p class=\"note\" id=\"timeline-cap\">Showing {} of {} operations: every operation an anomaly names, then the earliest others.</p>",
            chosen.len(),
            t.ops.len()
        );
    }
    h.push_str("<div class=\"scroll\">");
    h.push_str(&timeline::render(t, &chosen, named));
    h.push_str("</div></section>");
}

fn plots_section(h: &mut String, t: &Timeline, report: &Report) {
    h.push_str("<section id=\"plots\"><h2>Plots</h2><div class=\"plots\">");
    for (id, svg) in [
        ("plot-latency", plots::latency(t)),
        ("plot-throughput", plots::throughput(t)),
        ("plot-visibility", plots::visibility(t)),
        ("plot-convergence", plots::convergence(t, report)),
        ("plot-conflicts", plots::conflicts(report)),
    ] {
        let _ = write!(h, "<figure id=\"{id}\">{svg}</figure>");
    }
    h.push_str("</div></section>");
}
