//! Examples for the anomalies about lost writes: counter deficits and
//! excesses, register conflict losses and causal overwrites, and list/set
//! losses with the last read that still showed the write.

use std::collections::BTreeMap;

use serde_json::json;

use crate::explain::{secs, Explain, Findings};
use crate::history::MopFn;
use crate::model::{KeyId, MopId, OpId, Outcome};
use crate::report::{Anomaly, Example};

pub fn counter_example(
    x: &Explain,
    k: KeyId,
    finals: &[OpId],
    bad: &[(usize, i64)],
    lo: i128,
    hi: i128,
    low: bool,
) -> Example {
    let h = x.h;
    let parts: Vec<String> = bad
        .iter()
        .map(|&(n, v)| format!("{} ends at {v}", h.nodes[n]))
        .collect();
    let ops: Vec<OpId> = bad.iter().map(|&(n, _)| finals[n]).collect();
    let explanation = if low {
        format!(
            "counter {}: {} — below the least possible value {lo} (every acknowledged increment plus every negative indeterminate one); {} lost",
            h.key(k),
            parts.join(", "),
            bad.iter().map(|&(_, v)| lo - v as i128).max().unwrap_or(0)
        )
    } else {
        format!(
            "counter {}: {} — above the greatest possible value {hi} (every acknowledged increment plus every positive indeterminate one): some increment was applied twice",
            h.key(k),
            parts.join(", ")
        )
    };
    Example {
        explanation,
        key: Some(h.key(k).clone()),
        ops: x.indices(&ops),
        nodes: bad.iter().map(|&(n, _)| h.nodes[n].clone()).collect(),
        detail: json!({
            "least_possible": wide(lo),
            "greatest_possible": wide(hi),
            "finals": bad.iter().map(|&(n, v)| json!({"node": h.nodes[n], "value": v})).collect::<Vec<_>>(),
            "amount": if low { bad.iter().map(|&(_, v)| lo - v as i128).max() } else { bad.iter().map(|&(_, v)| v as i128 - hi).max() }.map(wide),
            "graph": x.graph(&ops, &json!([])),
        }),
    }
}

/// An exact integer as JSON: a number when it fits 64 bits, else its
/// decimal digits as a string (JSON numbers past 64 bits are not portable).
pub fn wide(v: i128) -> serde_json::Value {
    if let Ok(v) = i64::try_from(v) {
        json!(v)
    } else if let Ok(v) = u64::try_from(v) {
        json!(v)
    } else {
        json!(v.to_string())
    }
}

fn ts_note(x: &Explain, w: MopId) -> String {
    match x.h.op_of(w).ts() {
        Some(ts) => format!(" [meta.ts {ts}]"),
        None => String::new(),
    }
}

pub fn conflict_example(x: &Explain, w: MopId, at: &[(String, Vec<MopId>)]) -> Example {
    let h = x.h;
    let survivors = &at[0].1;
    let nodes: Vec<String> = at.iter().map(|(n, _)| n.clone()).collect();
    let surv: Vec<String> = survivors
        .iter()
        .map(|&s| format!("{}{}", x.write(s), ts_note(x, s)))
        .collect();
    let wo = h.mops[w].op;
    let mut ops = vec![wo];
    ops.extend(survivors.iter().map(|&s| h.mops[s].op));
    Example {
        explanation: format!(
            "the {}{} is missing from the final state of {}, which holds the {}; they are concurrent (no path of session or reads-from edges leads from either to the other), so conflict resolution discarded an acknowledged write",
            x.write(w),
            ts_note(x, w),
            nodes.join(", "),
            surv.join(" and the ")
        ),
        key: Some(h.key(h.mops[w].key).clone()),
        ops: x.indices(&ops),
        nodes,
        detail: json!({
            "survivors": x.indices(&ops[1..]),
            "ts": ops.iter().map(|&o| h.ops[o].ts()).collect::<Vec<_>>(),
            "graph": x.graph(&ops, &json!([])),
        }),
    }
}

pub fn causal_example(x: &Explain, w: MopId, at: &[(String, MopId)]) -> Example {
    let h = x.h;
    let s = at[0].1;
    let nodes: Vec<String> = at.iter().map(|(n, _)| n.clone()).collect();
    let (so, wo) = (h.mops[s].op, h.mops[w].op);
    let path = x.c.path(so, wo).unwrap_or_else(|| vec![so, wo]);
    let (ptext, edges) = x.path(&path);
    let (ts_s, ts_w) = (h.ops[so].ts(), h.ops[wo].ts());
    let ts = match (ts_s, ts_w) {
        (Some(a), Some(b)) => format!(
            " Timestamps: the surviving write has meta.ts {a}, the lost one {b}{}.",
            if a >= b {
                " — the causally older write carries the larger timestamp (clock skew?)"
            } else {
                ""
            }
        ),
        _ => String::new(),
    };
    Example {
        explanation: format!(
            "the {} is missing from the final state of {}, which holds the causally older {} instead. Path: {ptext}.{ts}",
            x.write(w),
            nodes.join(", "),
            x.write(s)
        ),
        key: Some(h.key(h.mops[w].key).clone()),
        ops: x.indices(&[wo, so]),
        nodes,
        detail: json!({
            "path": edges,
            "ts": {"survivor": ts_s, "lost": ts_w},
            "graph": x.graph(&path, &edges),
        }),
    }
}

/// Reports list and set losses, naming for each node missing the write the
/// last read on that node that still showed it.
pub fn report_list_losses(x: &Explain, losses: &[(MopId, Vec<usize>)], f: &mut Findings) {
    let h = x.h;
    let shown = losses.len().min(f.max_examples);
    // (write, node) → last op on that node whose read showed the write.
    let mut last_seen: BTreeMap<(MopId, u16), OpId> = BTreeMap::new();
    if shown > 0 {
        let wanted: Vec<MopId> = losses[..shown].iter().map(|(w, _)| *w).collect();
        for (oi, op) in h.ops.iter_enumerated() {
            if op.outcome != Outcome::Ok || op.is_final {
                continue;
            }
            for m in &h.mops[op.mops()] {
                if m.f != MopFn::Read {
                    continue;
                }
                for &w in h.obs_writes(m) {
                    if wanted.contains(&w) {
                        let e = last_seen.entry((w, op.node)).or_insert(oi);
                        if h.ops[*e].complete_index < op.complete_index {
                            *e = oi;
                        }
                    }
                }
            }
        }
    }
    for (w, missing) in losses {
        f.add(Anomaly::LostWrite, || {
            let wo = h.mops[*w].op;
            let mut ops = vec![wo];
            let mut notes: Vec<String> = Vec::new();
            let mut never: Vec<&str> = Vec::new();
            for &n in missing {
                match last_seen.get(&(*w, n as u16)) {
                    Some(&r) => {
                        ops.push(r);
                        notes.push(format!(
                            "{} last showed it in op {} at {}",
                            h.nodes[n],
                            h.ops[r].index(),
                            secs(h.ops[r].complete_time)
                        ));
                    }
                    None => never.push(&h.nodes[n]),
                }
            }
            if !never.is_empty() {
                notes.push(format!("{} never showed it in a read", never.join(", ")));
            }
            let nodes: Vec<String> = missing.iter().map(|&n| h.nodes[n].clone()).collect();
            let whose = if nodes.len() == 1 {
                format!("{}'s final state", nodes[0])
            } else {
                format!("the final states of {}", nodes.join(", "))
            };
            Example {
                explanation: format!(
                    "{} is missing from {whose}; {}",
                    x.write(*w),
                    notes.join("; ")
                ),
                key: Some(h.key(h.mops[*w].key).clone()),
                ops: x.indices(&ops),
                nodes,
                detail: json!({"graph": x.graph(&ops, &json!([]))}),
            }
        });
    }
}
