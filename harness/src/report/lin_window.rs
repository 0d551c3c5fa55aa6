//! The window of a `nonlinearizable` example as a timeline: one row per
//! operation of the key (in invocation order), a bar from invocation to
//! completion (dashed to the deadline for an indeterminate one), and the
//! operation that cannot be placed marked in red.

use std::fmt::Write;

use ladon_checker::report::Example;
use serde_json::Value as Json;

use super::escape::esc;

const ROW: f64 = 26.0;
const LABEL: f64 = 330.0;
const PLOT: f64 = 520.0;

/// The SVG for an example whose detail has a `window`, if it has one.
pub fn render(ex: &Example) -> Option<String> {
    let rows = ex.detail.get("window")?.as_array()?;
    if rows.is_empty() {
        return None;
    }
    let num = |r: &Json, f: &str| r.get(f).and_then(Json::as_u64);
    let start = rows.iter().filter_map(|r| num(r, "invoke_time")).min()?;
    let end = rows
        .iter()
        .filter_map(|r| num(r, "complete_time").or_else(|| num(r, "deadline")))
        .filter(|&t| t != u64::MAX)
        .max()?
        .max(start + 1);
    let x = |t: u64| LABEL + (t.min(end) - start) as f64 / (end - start) as f64 * PLOT;
    let height = ROW * rows.len() as f64 + 30.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"lin-window\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"operations of the key over time\">",
        LABEL + PLOT + 20.0
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 10.0 + ROW * i as f64;
        let bad = r.get("impossible").and_then(Json::as_bool) == Some(true);
        let inv = num(r, "invoke_time").unwrap_or(start);
        let (to, dashed) = match num(r, "complete_time") {
            Some(t) => (t, false),
            None => (num(r, "deadline").unwrap_or(end), true),
        };
        let what = r.get("what").and_then(Json::as_str).unwrap_or("");
        let label = format!(
            "{}op {} p{} {}: {}",
            if bad { "✗ " } else { "" },
            num(r, "index").unwrap_or(0),
            num(r, "process").map_or("?".into(), |p| p.to_string()),
            r.get("node").and_then(Json::as_str).unwrap_or(""),
            what
        );
        let colour = if bad {
            "#c62828"
        } else if dashed {
            "#8d6e63"
        } else {
            "#1565c0"
        };
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{}\" font-size=\"12\" fill=\"{colour}\"{}>{}</text>",
            y + 13.0,
            if bad { " font-weight=\"bold\"" } else { "" },
            esc(&label)
        );
        let _ = write!(
            s,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"8\"{}><title>{}</title></line>",
            x(inv),
            y + 9.0,
            x(to).max(x(inv) + 2.0),
            y + 9.0,
            if dashed { " stroke-dasharray=\"6 4\"" } else { "" },
            esc(&format!(
                "{what}: invoked at {:.3} s, {} at {:.3} s",
                inv as f64 / 1e9,
                if dashed { "needed by" } else { "completed" },
                to as f64 / 1e9
            ))
        );
        if bad {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"12\" fill=\"#c62828\">cannot be placed</text>",
                (x(to) + 4.0).min(LABEL + PLOT - 90.0),
                y + 13.0
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"{LABEL}\" y=\"{}\" font-size=\"11\">{:.3} s</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{:.3} s</text></svg>",
        height - 4.0,
        start as f64 / 1e9,
        LABEL + PLOT,
        height - 4.0,
        end as f64 / 1e9
    );
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_impossible_step_is_marked_and_labels_are_escaped() {
        let ex = Example {
            explanation: String::new(),
            key: None,
            ops: vec![],
            nodes: vec![],
            detail: json!({"window": [
                {"index": 1, "process": 0, "node": "n1", "invoke_time": 0, "complete_time": 100, "what": "write 1", "impossible": false},
                {"index": 3, "process": 1, "node": "n2", "invoke_time": 200, "complete_time": null, "deadline": 500, "what": "write <2>", "impossible": false},
                {"index": 5, "process": 2, "node": "n3", "invoke_time": 600, "complete_time": 700, "what": "read 1", "impossible": true}
            ]}),
        };
        let svg = render(&ex).expect("a window");
        assert_eq!(svg.matches("cannot be placed").count(), 1);
        assert!(svg.contains("✗ op 5 p2 n3: read 1"));
        assert!(svg.contains("write &lt;2&gt;"));
        assert_eq!(svg.matches("stroke-dasharray").count(), 1);
        let none = Example {
            detail: json!({}),
            ..ex
        };
        assert!(render(&none).is_none());
    }
}
