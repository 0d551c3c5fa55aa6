//! Graphviz DOT for each example's subgraph (`ladon check --dot DIR`).

use crate::report::{Anomaly, Example, Report};

/// DOT text of one example: its operations as boxes, its path or cycle as
/// edges labelled with their kind.
pub fn example_dot(anomaly: Anomaly, n: usize, e: &Example) -> String {
    let mut s = format!(
        "digraph \"{}-{}\" {{\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
        anomaly, n
    );
    s.push_str(&format!("  label=\"{}\";\n", escape(&e.explanation)));
    let graph = &e.detail["graph"];
    if let Some(vs) = graph["vertices"].as_array() {
        for v in vs {
            let op = v["op"].as_u64().unwrap_or(0);
            let label = v["label"].as_str().unwrap_or("");
            s.push_str(&format!("  op{op} [label=\"{}\"];\n", escape(label)));
        }
    } else {
        for op in &e.ops {
            s.push_str(&format!("  op{op} [label=\"op {op}\"];\n"));
        }
    }
    if let Some(es) = graph["edges"].as_array() {
        for ed in es {
            let kind = ed["kind"].as_str().unwrap_or("");
            let style = if kind == "session" { "solid" } else { "dashed" };
            s.push_str(&format!(
                "  op{} -> op{} [label=\"{kind}\", style={style}];\n",
                ed["from"].as_u64().unwrap_or(0),
                ed["to"].as_u64().unwrap_or(0)
            ));
        }
    }
    s.push_str("}\n");
    s
}

/// Every example of a report as (file name, DOT text).
pub fn report_dots(r: &Report) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (a, f) in &r.anomalies {
        if *a == Anomaly::InvalidHistory {
            continue;
        }
        for (i, e) in f.examples.iter().enumerate() {
            out.push((format!("{a}-{}.dot", i + 1), example_dot(*a, i + 1, e)));
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
