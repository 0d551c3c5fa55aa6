//! What the final reads say: which nodes owe one, each node's last one, and
//! a key's state in a form two nodes' reads compare by. Shared by the
//! final-state analyses (`finals`) and the convergence time (`convergence`).

use crate::history::KeyKind;
use crate::model::{History, MopId, ObsKind, OpId, Outcome};

/// Per node: whether it needs a final read, i.e. some transaction (not a
/// final) that completed `ok` or `info` named it (anomalies.md,
/// Clarifications). A node named only by failed transactions or by finals
/// need not have one.
pub fn needs_final(h: &History) -> Vec<bool> {
    let mut need = vec![false; h.nodes.len()];
    for op in &h.ops {
        if !op.is_final && op.outcome != Outcome::Fail {
            need[op.node as usize] = true;
        }
    }
    need
}

/// The last `ok` final op of each node (`OpId::NONE` when a node has none).
pub fn last_finals(h: &History) -> Vec<OpId> {
    let mut last = vec![OpId::NONE; h.nodes.len()];
    for (i, op) in h.ops.iter_enumerated() {
        if op.is_final && op.outcome == Outcome::Ok {
            let n = op.node as usize;
            if last[n].is_none() || h.ops[last[n]].complete_index < op.complete_index {
                last[n] = i;
            }
        }
    }
    last
}

/// A key's state as compared between nodes: registers and sets as sorted
/// sets, lists as sequences, counters as one integer.
pub fn normalize(h: &History, kind: Option<KeyKind>, mop: MopId) -> Vec<i64> {
    if mop.is_none() {
        return if kind == Some(KeyKind::Counter) {
            vec![0]
        } else {
            Vec::new()
        };
    }
    let m = &h.mops[mop];
    let vals = if m.obs == ObsKind::Null {
        &[][..]
    } else {
        h.obs(m)
    };
    match kind {
        Some(KeyKind::Counter) => vec![vals.first().copied().unwrap_or(0)],
        Some(KeyKind::List) => vals.to_vec(),
        _ => {
            let mut v = vals.to_vec();
            v.sort_unstable();
            v.dedup();
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::testutil::history;

    #[test]
    fn empty_states_normalize_alike() {
        let h = history(&[
            (
                0,
                "n1",
                "txn",
                r#"[["add","s",1],["incr","c",2],["w","r",3]]"#,
            ),
            (
                1,
                "n1",
                "final",
                r#"[["r","s",null],["r","c",null],["r","r",null]]"#,
            ),
            (
                2,
                "n2",
                "final",
                r#"[["r","s",[]],["r","c",0],["r","r",[]]]"#,
            ),
        ]);
        let reads = |op: usize| -> Vec<MopId> { h.ops[op].mop_ids().collect() };
        let (a, b) = (reads(1), reads(2));
        for (i, kind) in [KeyKind::Set, KeyKind::Counter, KeyKind::Register]
            .into_iter()
            .enumerate()
        {
            assert_eq!(
                normalize(&h, Some(kind), a[i]),
                normalize(&h, Some(kind), b[i]),
                "{kind:?}"
            );
        }
        assert_eq!(normalize(&h, Some(KeyKind::Counter), a[1]), vec![0]);
        assert_eq!(normalize(&h, Some(KeyKind::Counter), MopId::NONE), vec![0]);
        assert!(normalize(&h, Some(KeyKind::Set), MopId::NONE).is_empty());
    }

    #[test]
    fn only_nodes_of_ok_or_info_transactions_need_a_final_read() {
        let mut text = String::new();
        let lines = [
            r#"{"index":0,"time":0,"type":"invoke","process":0,"node":"n1","f":"txn","value":[["append","x",1]]}"#,
            r#"{"index":1,"time":1,"type":"ok","process":0,"node":"n1","f":"txn","value":[["append","x",1]]}"#,
            r#"{"index":2,"time":2,"type":"invoke","process":1,"node":"n2","f":"txn","value":[["append","x",2]]}"#,
            r#"{"index":3,"time":3,"type":"fail","process":1,"node":"n2","f":"txn","value":[["append","x",2]]}"#,
            r#"{"index":4,"time":4,"type":"invoke","process":2,"node":"n3","f":"txn","value":[["append","x",3]]}"#,
            r#"{"index":5,"time":5,"type":"info","process":2,"node":"n3","f":"txn","value":null}"#,
            r#"{"index":6,"time":6,"type":"invoke","process":3,"node":"n4","f":"final","value":[["r","x",null]]}"#,
            r#"{"index":7,"time":7,"type":"ok","process":3,"node":"n4","f":"final","value":[["r","x",[1,3]]]}"#,
        ];
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        let h = crate::reader::read_history(text.as_bytes()).expect("valid");
        let need: Vec<(String, bool)> = h.nodes.iter().cloned().zip(needs_final(&h)).collect();
        let need: BTreeMap<String, bool> = need.into_iter().collect();
        assert!(need["n1"]);
        assert!(!need["n2"], "only a failed transaction");
        assert!(need["n3"], "an indeterminate one");
        assert!(!need["n4"], "only finals");
    }
}
