//! The timeline: one column per process, grouped by node, time running down
//! the page (like Jepsen's `timeline.html`), with nemesis intervals shaded.
//! Every operation is an SVG rectangle with the id `op-<index>` that anomaly
//! links point at. Large histories are capped: the operations anomalies name
//! are always drawn, then the earliest others up to the cap.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::escape::esc;
use ladon_checker::history::{Key, Mop};

use super::model::{mop_text, node_order, Op, Timeline};

/// Layout constants.
const COL_W: f64 = 24.0;
const GUTTER: f64 = 70.0;
/// Right margin, where fault bands are named.
const RIGHT: f64 = 150.0;
/// Fault kinds with their own strip in the right margin, in order.
const STRIPS: [&str; 4] = ["partition", "clock-skew", "crash", "pause"];
const HEADER: f64 = 44.0;

/// Colours of fault kinds, shared with the plots' bands.
pub fn fault_colour(kind: &str) -> &'static str {
    match kind {
        "partition" => "#f4b860",
        "clock-skew" => "#9ecae1",
        "crash" => "#e57373",
        "pause" => "#b39ddb",
        _ => "#bdbdbd",
    }
}

/// A point in time, "4.940 s" (durations use the checker's `duration`).
pub fn fmt_secs(ns: u64) -> String {
    ladon_checker::explain::secs(ns)
}

/// A one-line description of an operation, for tooltips and lists.
pub fn describe(op: &Op) -> String {
    describe_for(op, None)
}

/// Longest transaction text shown (final reads list every key).
const MAX_MOPS_TEXT: usize = 400;

/// Like [`describe`], showing only the micro-operations on `key` when given
/// (a final read of every key is otherwise unreadable).
pub fn describe_for(op: &Op, key: Option<&Key>) -> String {
    let mut s = format!(
        "op {} · process {} on {} · {} {} · {} → {}",
        op.index(),
        op.process,
        if op.node.is_empty() { "?" } else { &op.node },
        op.f,
        op.outcome.as_str(),
        fmt_secs(op.start),
        fmt_secs(op.end),
    );
    let shown: Vec<&Mop> = match key {
        Some(k) => op.mops.iter().filter(|m| m.key() == k).collect(),
        None => op.mops.iter().collect(),
    };
    let mut text = shown
        .iter()
        .map(|m| mop_text(m))
        .collect::<Vec<_>>()
        .join(" ");
    if text.chars().count() > MAX_MOPS_TEXT {
        text = text.chars().take(MAX_MOPS_TEXT).collect::<String>() + "…";
    }
    let _ = write!(s, " · {text}");
    if shown.len() < op.mops.len() {
        let _ = write!(
            s,
            " (+{} micro-ops on other keys)",
            op.mops.len() - shown.len()
        );
    }
    if let Some(e) = &op.error {
        let _ = write!(s, " · error: {e}");
    }
    if let Some(m) = &op.meta {
        let mut m = m.to_string();
        if m.chars().count() > MAX_MOPS_TEXT {
            m = m.chars().take(MAX_MOPS_TEXT).collect::<String>() + "…";
        }
        let _ = write!(s, " · meta: {m}");
    }
    s
}

/// Which operations to draw: those named by anomalies first, then the
/// earliest others, `cap` in all. Returns positions in `t.ops`, in order.
pub fn select(t: &Timeline, named: &BTreeSet<u64>, cap: usize) -> Vec<usize> {
    let mut chosen: BTreeSet<usize> = named
        .iter()
        .filter_map(|i| t.by_index.get(i).copied())
        .collect();
    for i in 0..t.ops.len() {
        if chosen.len() >= cap {
            break;
        }
        chosen.insert(i);
    }
    chosen.into_iter().collect()
}

/// Renders the timeline SVG for the chosen operations.
pub fn render(t: &Timeline, chosen: &[usize], named: &BTreeSet<u64>) -> String {
    // Columns: nodes in order, processes within a node in order.
    let mut columns: BTreeMap<((&str, u64, &str), u64), usize> = BTreeMap::new();
    for &i in chosen {
        let op = &t.ops[i];
        columns.insert((node_order(&op.node), op.process), 0);
    }
    for (n, v) in columns.values_mut().enumerate() {
        *v = n;
    }
    // Columns widen to fill the page's width.
    let col_w =
        ((super::lamport::PAGE_W - GUTTER - RIGHT) / columns.len().max(1) as f64).max(COL_W);
    let width = GUTTER + col_w * columns.len().max(1) as f64 + RIGHT;
    let t0 = chosen.iter().map(|&i| t.ops[i].start).min().unwrap_or(0);
    let t1 = chosen
        .iter()
        .map(|&i| t.ops[i].end)
        .max()
        .unwrap_or(t.end)
        .max(t0 + 1);
    // Around 6 px per operation per column, within bounds.
    let per_col = chosen.len() as f64 / columns.len().max(1) as f64;
    let height = (per_col * 8.0).clamp(600.0, 8000.0);
    let y = |ns: u64| HEADER + (ns.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * height;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}">"#,
        w = width,
        h = HEADER + height + 10.0
    );
    // Fault bands: partitions and skews across all columns; crashes and
    // pauses over their node's columns only.
    for f in &t.faults {
        if f.end < t0 || f.start > t1 {
            continue;
        }
        let (y0, y1) = (y(f.start.max(t0)), y(f.end.min(t1)));
        let cols: Vec<usize> = if matches!(f.kind.as_str(), "crash" | "pause") {
            columns
                .iter()
                .filter(|(((_, _, n), _), _)| f.nodes.iter().any(|x| x == n))
                .map(|(_, &c)| c)
                .collect()
        } else {
            Vec::new()
        };
        let title = esc(&format!(
            "{} {} ({} → {})",
            f.kind,
            f.value,
            fmt_secs(f.start),
            fmt_secs(f.end)
        ));
        if cols.is_empty() {
            let _ = write!(
                s,
                r#"<rect class="band" x="{GUTTER}" y="{y0:.1}" width="{:.0}" height="{:.1}" fill="{}" opacity="0.25"><title>{title}</title></rect>"#,
                width - GUTTER - RIGHT,
                (y1 - y0).max(1.0),
                fault_colour(&f.kind)
            );
        } else {
            for c in cols {
                let _ = write!(
                    s,
                    r#"<rect class="band" x="{:.1}" y="{y0:.1}" width="{col_w:.1}" height="{:.1}" fill="{}" opacity="0.5"><title>{title}</title></rect>"#,
                    GUTTER + c as f64 * col_w,
                    (y1 - y0).max(1.0),
                    fault_colour(&f.kind)
                );
            }
        }
        // Every fault also gets a solid bar in its kind's strip, so
        // overlapping faults stay distinguishable.
        let strip = STRIPS
            .iter()
            .position(|k| *k == f.kind)
            .unwrap_or(STRIPS.len());
        let sx = width - RIGHT + 6.0 + strip as f64 * 14.0;
        let _ = write!(
            s,
            r#"<rect class="strip" x="{sx:.1}" y="{y0:.1}" width="10" height="{:.1}" fill="{}"><title>{title}</title></rect><text x="{:.1}" y="{:.1}" class="band-label">{}</text>"#,
            (y1 - y0).max(1.0),
            fault_colour(&f.kind),
            width - RIGHT + 6.0 + 5.0 * 14.0,
            y0 + 9.0,
            esc(&f.kind)
        );
    }
    for ins in &t.instants {
        if ins.start < t0 || ins.start > t1 {
            continue;
        }
        let _ = write!(
            s,
            r##"<line x1="{GUTTER}" x2="{:.0}" y1="{y:.1}" y2="{y:.1}" stroke="#757575" stroke-dasharray="3 3"><title>{}</title></line>"##,
            width - RIGHT,
            esc(&format!(
                "{} {} at {}",
                ins.kind,
                ins.value,
                fmt_secs(ins.start)
            )),
            y = y(ins.start)
        );
    }
    // Time axis: ten ticks, none repeating the label above it.
    let mut last_label = String::new();
    for k in 0..=10u64 {
        let ns = t0 + (t1 - t0) * k / 10;
        if fmt_secs(ns) == last_label {
            continue;
        }
        last_label = fmt_secs(ns);
        let yy = y(ns);
        let _ = write!(
            s,
            r##"<line x1="{:.0}" x2="{GUTTER}" y1="{yy:.1}" y2="{yy:.1}" stroke="#999"/><text x="{:.0}" y="{:.1}" class="tick" text-anchor="end">{}</text>"##,
            GUTTER - 6.0,
            GUTTER - 8.0,
            yy - 2.0,
            fmt_secs(ns)
        );
    }
    // Column headers: node names over their group, process ids per column.
    let mut groups: BTreeMap<(&str, u64, &str), (usize, usize)> = BTreeMap::new();
    for (&(n, _), &c) in &columns {
        let g = groups.entry(n).or_insert((c, c));
        g.0 = g.0.min(c);
        g.1 = g.1.max(c);
    }
    for (&(_, _, n), (a, b)) in &groups {
        let x0 = GUTTER + *a as f64 * col_w;
        let x1 = GUTTER + (*b + 1) as f64 * col_w;
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="14" class="node-label" text-anchor="middle">{}</text><line x1="{x0:.1}" x2="{x1:.1}" y1="18" y2="18" stroke="#333"/><line x1="{x1:.1}" x2="{x1:.1}" y1="18" y2="{:.0}" stroke="#ddd"/>"##,
            (x0 + x1) / 2.0,
            esc(if n.is_empty() { "?" } else { n }),
            HEADER + height
        );
    }
    for (&(_, p), &c) in &columns {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="36" class="proc-label" text-anchor="middle">{p}</text>"#,
            GUTTER + c as f64 * col_w + col_w / 2.0
        );
    }
    for &i in chosen {
        let op = &t.ops[i];
        let c = columns[&(node_order(&op.node), op.process)];
        let (y0, y1) = (y(op.start), y(op.end));
        let class = op.outcome.as_str();
        let fin = if op.is_final() { " final" } else { "" };
        let hl = if named.contains(&op.index()) {
            " named"
        } else {
            ""
        };
        let _ = write!(
            s,
            r#"<rect id="op-{}" class="op {class}{fin}{hl}" x="{:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" rx="2"><title>{}</title></rect>"#,
            op.index(),
            GUTTER + c as f64 * col_w + 2.0,
            col_w - 4.0,
            (y1 - y0).max(2.5),
            esc(&describe(op))
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::tests::events;

    fn two_ops() -> Timeline {
        Timeline::from_events(&events(
            r#"{"index":0,"time":0,"type":"invoke","process":0,"node":"<b>n1</b>","f":"txn","value":[["w","x",1]]}
{"index":1,"time":100,"type":"info","process":"nemesis","f":"pause","value":["<b>n1</b>"]}
{"index":2,"time":200,"type":"fail","process":0,"node":"<b>n1</b>","f":"txn","value":[["w","x",1]],"error":"<script>x</script>"}
{"index":3,"time":300,"type":"invoke","process":1,"node":"n2","f":"txn","value":[["r","x",null]]}
{"index":4,"time":350,"type":"info","process":"nemesis","f":"resume","value":["<b>n1</b>"]}
{"index":5,"time":400,"type":"ok","process":1,"node":"n2","f":"txn","value":[["r","x",1]]}"#,
        ))
    }

    #[test]
    fn draws_ops_with_ids_and_escapes_values() {
        let t = two_ops();
        let named = BTreeSet::from([5]);
        let chosen = select(&t, &named, 10);
        let svg = render(&t, &chosen, &named);
        assert!(svg.contains(r#"id="op-2" class="op fail""#), "{svg}");
        assert!(svg.contains(r#"id="op-5" class="op ok named""#));
        assert!(svg.contains("&lt;b&gt;n1&lt;/b&gt;"));
        assert!(svg.contains("error: &lt;script&gt;x&lt;/script&gt;"));
        assert!(!svg.contains("<b>") && !svg.contains("<script"));
        // The pause is shaded over n1's column only.
        assert_eq!(svg.matches(r#"class="band""#).count(), 1);
    }

    #[test]
    fn cap_keeps_named_ops() {
        let t = two_ops();
        let named = BTreeSet::from([5]);
        assert_eq!(select(&t, &named, 1), vec![1]);
        assert_eq!(select(&t, &BTreeSet::new(), 1), vec![0]);
        assert_eq!(select(&t, &named, 5), vec![0, 1]);
    }
}
