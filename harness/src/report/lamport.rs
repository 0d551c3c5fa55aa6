//! Space-time (Lamport) diagrams, one per anomaly example, like Maelstrom's:
//! a vertical line per node, the example's operations on their nodes, and
//! the replication messages that carried (or failed to carry) the writes
//! involved. Rows are ordinal (one per distinct instant) so a burst of
//! messages stays readable; each row is labelled with its time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use ladon_checker::history::{Key, Mop, ReadValue};
use ladon_checker::report::Example;

use super::escape::esc;
use super::messages::{flights, Flight, Message};
use super::model::Timeline;
use super::timeline::{describe_for, fmt_secs};

/// The narrowest lane; lanes widen to fill [`PAGE_W`].
const LANE_W: f64 = 220.0;
/// The width drawings aim at: the page's 1160 px content (report.css) less an anomaly box's border and padding.
pub const PAGE_W: f64 = 1120.0;
/// Room right of the last lane for its operations' labels (30 characters).
const LABEL_ROOM: f64 = 190.0;
const GUTTER: f64 = 80.0;
const TOP: f64 = 40.0;
const ROW: f64 = 22.0;

/// The most messages one diagram draws; the rest are counted in a note.
pub const MAX_MESSAGES: usize = 40;

/// The writes `(key, value)` an example's operations made.
pub fn writes_of(t: &Timeline, ex: &Example) -> Vec<(Key, i64)> {
    let mut out = Vec::new();
    for &i in &ex.ops {
        if let Some(op) = t.op_at(i) {
            for m in &op.mops {
                if let Mop::Write(k, v) | Mop::Append(k, v) | Mop::Add(k, v) = m {
                    if !out.contains(&(k.clone(), *v)) {
                        out.push((k.clone(), *v));
                    }
                }
            }
        }
    }
    out
}

/// Writes drawn besides an example's own operations, at most.
pub const MAX_EXTRA_WRITES: usize = 3;

/// For examples whose reads of their key disagree (divergence, final
/// states): the writers of values some reads hold and others lack, so the
/// diagram shows the messages that failed to carry them.
pub fn differing_writers(t: &Timeline, ex: &Example) -> Vec<usize> {
    let Some(key) = &ex.key else {
        return Vec::new();
    };
    let mut states: Vec<BTreeSet<i64>> = Vec::new();
    for &i in &ex.ops {
        if let Some(op) = t.op_at(i) {
            for m in &op.mops {
                if let Mop::Read(k, v) = m {
                    if k == key {
                        states.push(match v {
                            ReadValue::Null => BTreeSet::new(),
                            ReadValue::Int(x) => BTreeSet::from([*x]),
                            ReadValue::List(l) => l.iter().copied().collect(),
                        });
                    }
                }
            }
        }
    }
    if states.len() < 2 {
        return Vec::new();
    }
    let all: BTreeSet<i64> = states.iter().flatten().copied().collect();
    let mut out = Vec::new();
    for v in all {
        if states.iter().all(|s| s.contains(&v)) {
            continue;
        }
        if let Some(&w) = t.writers.get(&(key.clone(), v)) {
            if !out.contains(&w) {
                out.push(w);
            }
        }
        if out.len() >= MAX_EXTRA_WRITES {
            break;
        }
    }
    out
}

/// For examples whose reads of their key disagree: which node's read lacks
/// which values that another read of the example holds (at most 10 per node).
pub fn lacking(t: &Timeline, ex: &Example) -> Vec<(String, Vec<i64>)> {
    let Some(key) = &ex.key else {
        return Vec::new();
    };
    let mut reads: Vec<(String, BTreeSet<i64>)> = Vec::new();
    for &i in &ex.ops {
        if let Some(op) = t.op_at(i) {
            for m in &op.mops {
                if let Mop::Read(k, v) = m {
                    if k == key {
                        let set = match v {
                            ReadValue::Null => BTreeSet::new(),
                            ReadValue::Int(x) => BTreeSet::from([*x]),
                            ReadValue::List(l) => l.iter().copied().collect(),
                        };
                        reads.push((op.node.clone(), set));
                    }
                }
            }
        }
    }
    if reads.len() < 2 {
        return Vec::new();
    }
    let all: BTreeSet<i64> = reads.iter().flat_map(|r| r.1.iter().copied()).collect();
    let mut out: Vec<(String, Vec<i64>)> = Vec::new();
    for (node, set) in &reads {
        let missing: Vec<i64> = all.difference(set).copied().take(10).collect();
        if !missing.is_empty() && !out.iter().any(|(n, _)| n == node) {
            out.push((node.clone(), missing));
        }
    }
    out
}

/// The diagram, and a sentence on what it leaves out (empty when nothing).
pub fn render(t: &Timeline, ex: &Example, messages: Option<&[Message]>) -> (String, String) {
    let mut ops = Vec::new();
    for &i in &ex.ops {
        if let Some(&at) = t.by_index.get(&i) {
            if !ops.contains(&at) {
                ops.push(at);
            }
        }
    }
    let extra = differing_writers(t, ex);
    // Where a write is missing: the final state of each node the example names.
    let mut finals = Vec::new();
    if ex.key.is_some() {
        for n in &ex.nodes {
            if let Some(&at) = t.last_final.get(n) {
                if !ops.contains(&at) {
                    ops.push(at);
                    finals.push(at);
                }
            }
        }
    }
    let mut writes = writes_of(t, ex);
    for &at in &extra {
        if !ops.contains(&at) {
            ops.push(at);
        }
        for m in &t.ops[at].mops {
            if let Mop::Write(k, v) | Mop::Append(k, v) | Mop::Add(k, v) = m {
                if Some(k) == ex.key.as_ref() && !writes.contains(&(k.clone(), *v)) {
                    writes.push((k.clone(), *v));
                }
            }
        }
    }
    let all: Vec<Flight> = match messages {
        Some(ms) if !writes.is_empty() => {
            flights(ms, |m| writes.iter().any(|(k, v)| m.carries(k, *v)))
        }
        _ => Vec::new(),
    };
    let mut note = String::new();
    let extra_note = if extra.is_empty() {
        String::new()
    } else {
        format!(
            "Also drawn: the write(s) of {} that some of these reads lack. ",
            op_list(t, &extra)
        )
    };
    let shown: &[Flight] = if all.len() > MAX_MESSAGES {
        note = format!(
            "Showing the first {MAX_MESSAGES} of {} messages carrying these writes.",
            all.len()
        );
        &all[..MAX_MESSAGES]
    } else {
        &all
    };
    if messages.is_none() {
        note = "No message log (messages.jsonl) for this run: operations only.".into();
    } else if !writes.is_empty() && all.is_empty() {
        note = "No logged message carried these writes.".into();
    }
    // Lanes: nodes of the operations, of the example, and of the messages.
    let mut lanes: BTreeSet<String> = ex.nodes.iter().cloned().collect();
    for &at in &ops {
        lanes.insert(t.ops[at].node.clone());
    }
    for f in shown {
        lanes.insert(f.from.clone());
        lanes.insert(f.to.clone());
    }
    // Lanes fill the page; labels of the last lane keep LABEL_ROOM.
    let lanes_n = lanes.len().max(1) as f64;
    let lane_w = ((PAGE_W - GUTTER - LABEL_ROOM) / (lanes_n - 0.5)).max(LANE_W);
    let lane_x: BTreeMap<&str, f64> = lanes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), GUTTER + lane_w * (i as f64 + 0.5)))
        .collect();
    // Rows: every distinct instant.
    let mut instants: BTreeSet<u64> = BTreeSet::new();
    for &at in &ops {
        instants.insert(t.ops[at].start);
        instants.insert(t.ops[at].end);
    }
    for f in shown {
        instants.insert(f.sent);
        if let Some((at, _)) = f.fate {
            instants.insert(at);
        }
    }
    let rank: BTreeMap<u64, usize> = instants.iter().enumerate().map(|(i, &t)| (t, i)).collect();
    let y = |ns: u64| TOP + 12.0 + rank[&ns] as f64 * ROW;
    let bottom = TOP + 12.0 + instants.len() as f64 * ROW + 10.0;
    let width = GUTTER + lane_w * (lanes_n - 0.5) + LABEL_ROOM;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="lamport" width="{width:.0}" height="{h:.0}" viewBox="0 0 {width:.0} {h:.0}">"#,
        h = bottom + 10.0
    );
    // Rows are distinct instants, often closer than the labels' millisecond:
    // a row whose label would repeat the one above stays unlabelled.
    let mut last_label = String::new();
    for (ns, r) in &rank {
        let label = fmt_secs(*ns);
        if label == last_label {
            continue;
        }
        let _ = write!(
            s,
            r#"<text x="4" y="{:.1}" class="tick">{label}</text>"#,
            TOP + 16.0 + *r as f64 * ROW,
        );
        last_label = label;
    }
    for (n, x) in &lane_x {
        let _ = write!(
            s,
            r##"<text x="{x:.1}" y="{:.0}" class="node-label" text-anchor="middle">{}</text><line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{bottom:.0}" stroke="#555"/>"##,
            TOP - 10.0,
            esc(if n.is_empty() { "?" } else { n })
        );
    }
    for f in shown {
        let (x0, y0) = (lane_x[f.from.as_str()], y(f.sent));
        let title = |what: &str| {
            esc(&format!(
                "message {} {} → {} ({}): {what}",
                f.id, f.from, f.to, f.summary
            ))
        };
        match f.fate {
            Some((at, true)) => {
                let _ = write!(
                    s,
                    r#"<line class="msg" x1="{x0:.1}" y1="{y0:.1}" x2="{:.1}" y2="{:.1}" marker-end="url(#ladon-arrow)"><title>{}</title></line>"#,
                    lane_x[f.to.as_str()],
                    y(at),
                    title(&format!(
                        "sent {}, delivered {}",
                        fmt_secs(f.sent),
                        fmt_secs(at)
                    ))
                );
            }
            Some((at, false)) => {
                // The ✕ sits where the message would have arrived: on the
                // receiver's lane, at the time it was dropped.
                let (x1, y1) = (lane_x[f.to.as_str()], y(at));
                let _ = write!(
                    s,
                    r#"<line class="msg dropped" x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}"><title>{}</title></line><text class="drop-mark" x="{x1:.1}" y="{:.1}" text-anchor="middle">✕</text>"#,
                    title(&format!(
                        "sent {}, DROPPED {}",
                        fmt_secs(f.sent),
                        fmt_secs(at)
                    )),
                    y1 + 5.0
                );
            }
            None => {
                let x1 = lane_x[f.to.as_str()];
                let _ = write!(
                    s,
                    r#"<line class="msg in-flight" x1="{x0:.1}" y1="{y0:.1}" x2="{:.1}" y2="{bottom:.1}"><title>{}</title></line>"#,
                    x0 + (x1 - x0) * 0.5,
                    title(&format!("sent {}, never delivered", fmt_secs(f.sent)))
                );
            }
        }
    }
    for &at in &ops {
        let op = &t.ops[at];
        let x = lane_x[op.node.as_str()];
        let (y0, y1) = (y(op.start), y(op.end));
        let class = op.outcome.as_str();
        let mops: Vec<String> = op
            .mops
            .iter()
            .filter(|m| ex.key.as_ref().is_none_or(|k| m.key() == k))
            .map(super::model::mop_text)
            .collect();
        let label = format!("op {} p{} {}", op.index(), op.process, mops.join(" "));
        let label: String = if label.chars().count() > 30 {
            label.chars().take(29).chain(['…']).collect()
        } else {
            label
        };
        let _ = write!(
            s,
            r##"<a href="#op-{i}"><rect class="op {class}" x="{:.1}" y="{:.1}" width="12" height="{:.1}" rx="2"><title>{}</title></rect><text x="{:.1}" y="{:.1}" class="op-label">{}</text></a>"##,
            x - 6.0,
            y0 - 6.0,
            (y1 - y0) + 12.0,
            esc(&describe_for(op, ex.key.as_ref())),
            x + 9.0,
            y0 + 4.0,
            esc(&label),
            i = op.index(),
        );
    }
    s.push_str("</svg>");
    let finals_note = if finals.is_empty() {
        String::new()
    } else {
        format!(
            "Also drawn: the final read(s) {} of {}. ",
            op_list(t, &finals),
            finals
                .iter()
                .map(|&at| t.ops[at].node.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    (
        s,
        format!("{extra_note}{finals_note}{note}")
            .trim()
            .to_string(),
    )
}

/// "op 3, op 7": the history indices of the timeline's operations at `ats`.
fn op_list(t: &Timeline, ats: &[usize]) -> String {
    ats.iter()
        .map(|&at| format!("op {}", t.ops[at].index()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::messages::MessageEvent;
    use crate::report::model::tests::events;

    #[test]
    fn draws_operations_and_the_messages_that_carried_their_writes() {
        let t = Timeline::from_events(&events(
            r#"{"index":0,"time":0,"type":"invoke","process":0,"node":"n1","f":"txn","value":[["append","x",1]]}
{"index":1,"time":10,"type":"ok","process":0,"node":"n1","f":"txn","value":[["append","x",1]]}
{"index":2,"time":50,"type":"invoke","process":1,"node":"n2","f":"final","value":[["r","x",null]]}
{"index":3,"time":60,"type":"ok","process":1,"node":"n2","f":"final","value":[["r","x",[]]]}"#,
        ));
        let ex = Example {
            explanation: "lost".into(),
            key: Some(Key::from("x")),
            ops: vec![1, 3],
            nodes: vec!["n2".into(), "n3".into()],
            detail: serde_json::Value::Null,
        };
        let msg = |time, event, id, to: &str, writes: Vec<(Key, i64)>| Message {
            time,
            event,
            id,
            from: "n1".into(),
            to: to.into(),
            summary: "<i>sync</i>".into(),
            writes,
        };
        let x1 = vec![(Key::from("x"), 1)];
        let ms = vec![
            msg(11, MessageEvent::Send, 1, "n2", x1.clone()),
            msg(12, MessageEvent::Send, 2, "n3", x1.clone()),
            msg(13, MessageEvent::Send, 3, "n3", vec![(Key::from("y"), 1)]),
            msg(20, MessageEvent::Drop, 1, "n2", x1.clone()),
            msg(21, MessageEvent::Deliver, 2, "n3", x1),
        ];
        let (svg, note) = render(&t, &ex, Some(&ms));
        assert_eq!(note, "");
        assert_eq!(svg.matches(r#"class="msg dropped""#).count(), 1);
        assert_eq!(svg.matches(r#"class="msg""#).count(), 1);
        assert!(svg.contains(r##"<a href="#op-1">"##) && svg.contains(r##"<a href="#op-3">"##));
        assert!(svg.contains("&lt;i&gt;sync&lt;/i&gt;") && !svg.contains("<i>"));
        // Lanes n1, n2, n3; the y message is not drawn.
        assert_eq!(svg.matches(r#"class="node-label""#).count(), 3);
        assert!(!svg.contains("message 3"));
        let (_, note) = render(&t, &ex, None);
        assert!(note.starts_with("No message log"));
    }

    #[test]
    fn divergence_diagrams_add_the_writes_some_nodes_lack() {
        let t = Timeline::from_events(&events(
            r#"{"index":0,"time":0,"type":"invoke","process":0,"node":"n1","f":"txn","value":[["append","x",1]]}
{"index":1,"time":10,"type":"ok","process":0,"node":"n1","f":"txn","value":[["append","x",1]]}
{"index":2,"time":11,"type":"invoke","process":1,"node":"n2","f":"txn","value":[["append","x",2]]}
{"index":3,"time":12,"type":"ok","process":1,"node":"n2","f":"txn","value":[["append","x",2]]}
{"index":4,"time":50,"type":"invoke","process":0,"node":"n1","f":"final","value":[["r","x",null],["r","y",null]]}
{"index":5,"time":60,"type":"ok","process":0,"node":"n1","f":"final","value":[["r","x",[1]],["r","y",[7]]]}
{"index":6,"time":70,"type":"invoke","process":1,"node":"n2","f":"final","value":[["r","x",null],["r","y",null]]}
{"index":7,"time":80,"type":"ok","process":1,"node":"n2","f":"final","value":[["r","x",[1,2]],["r","y",[7]]]}"#,
        ));
        let ex = Example {
            explanation: "diverged".into(),
            key: Some(Key::from("x")),
            ops: vec![5, 7],
            nodes: vec!["n1".into(), "n2".into()],
            detail: serde_json::Value::Null,
        };
        assert_eq!(differing_writers(&t, &ex), vec![1]);
        assert_eq!(lacking(&t, &ex), vec![("n1".to_string(), vec![2])]);
        let (svg, note) = render(&t, &ex, None);
        assert!(
            note.starts_with("Also drawn: the write(s) of op 3 that some of these reads lack."),
            "{note}"
        );
        assert!(svg.contains(r##"<a href="#op-3">"##));
        // Labels keep to the example's key.
        assert!(svg.contains("op 5 p0 [r x [1]]") && !svg.contains("[r y"));
    }
}
