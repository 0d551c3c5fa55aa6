//! Convergence time: from the last heal to the moment every node's latest
//! final read agreed, and kept agreeing.

use super::final_reads::{needs_final, normalize};
use crate::model::{History, KeyId, MopId, OpId, Outcome};

/// Time from the last heal (or the start of the final phase, without one)
/// to the moment every node's latest final read agreed and kept agreeing.
pub fn convergence(h: &History) -> Option<u64> {
    let mut finals: Vec<OpId> = h
        .ops
        .ids()
        .filter(|&i| h.ops[i].is_final && h.ops[i].outcome == Outcome::Ok)
        .collect();
    if finals.is_empty() {
        return None;
    }
    finals.sort_by_key(|&i| h.ops[i].complete_index);
    let heal = h
        .nemesis
        .iter()
        .filter(|e| e.f == "heal")
        .map(|e| e.time)
        .max();
    let start = heal.unwrap_or_else(|| {
        h.ops
            .iter()
            .filter(|o| o.is_final)
            .map(|o| o.invoke_time)
            .min()
            .unwrap_or(0)
    });
    // Nodes whose state must be in: those that need a final read, and
    // those that gave one.
    let mut need = needs_final(h);
    for &fi in &finals {
        need[h.ops[fi].node as usize] = true;
    }
    type State = Vec<(KeyId, Vec<i64>)>;
    let mut latest: Vec<Option<State>> = vec![None; h.nodes.len()];
    let mut since: Option<u64> = None;
    for &fi in &finals {
        let op = &h.ops[fi];
        let mut state: State = h.mops[op.mops()]
            .iter()
            .enumerate()
            .filter(|(_, m)| h.key_kind[m.key].is_some())
            .map(|(i, m)| {
                (
                    m.key,
                    normalize(h, h.key_kind[m.key], MopId::new(op.mops_start.index() + i)),
                )
            })
            .collect();
        state.sort_by_key(|(k, _)| *k);
        latest[op.node as usize] = Some(state);
        // Every node that needs a final read has one, and all nodes'
        // latest final states agree.
        let agree = latest.iter().zip(&need).all(|(s, &n)| s.is_some() || !n) && {
            let mut present = latest.iter().flatten();
            let first = present.next();
            present.all(|s| Some(s) == first)
        };
        match (agree, since) {
            (true, None) => since = Some(op.complete_time),
            (false, _) => since = None,
            _ => {}
        }
    }
    since.map(|t| t.saturating_sub(start))
}
