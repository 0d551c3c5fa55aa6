//! Splitting per-operation work over the cores: contiguous ranges of
//! operations holding about equal numbers of observed values, run on scoped
//! threads, with results returned in history order (so whatever is built
//! from them is the same as one thread's).
//!
//! Not a thread pool: at most eight parts, each one scoped thread, and the
//! checker's dependencies stay serde, serde_json and petgraph (the harness's
//! job pool, `ladon_harness::pool`, is rayon).

use std::ops::Range;

use crate::model::History;

/// A contiguous range of operations and the observed values its reads hold.
pub struct Part {
    pub ops: Range<usize>,
    pub observed: usize,
}

/// At most one part per core (up to 8, and one per 4,096 operations), each
/// holding about the same number of observed values.
pub fn by_observed(h: &History) -> Vec<Part> {
    let parts = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(h.ops.len() / 4096 + 1);
    let observed = |i: usize| -> usize {
        h.mops[h.ops[i].mops()]
            .iter()
            .map(|m| m.obs_len as usize)
            .sum()
    };
    let total = (0..h.ops.len()).map(observed).sum::<usize>().max(1);
    let mut out = Vec::with_capacity(parts);
    let (mut start, mut seen, mut in_part) = (0, 0, 0);
    for i in 0..h.ops.len() {
        let k = observed(i);
        seen += k;
        in_part += k;
        if out.len() + 1 < parts && seen * parts >= total * (out.len() + 1) {
            out.push(Part {
                ops: start..i + 1,
                observed: in_part,
            });
            (start, in_part) = (i + 1, 0);
        }
    }
    if start < h.ops.len() || out.is_empty() {
        out.push(Part {
            ops: start..h.ops.len(),
            observed: in_part,
        });
    }
    out
}

/// Runs `work(index, part)` for every part, the first on this thread and
/// the others on scoped threads; the results come back in part order.
pub fn run<T: Send>(parts: &[Part], work: impl Fn(usize, &Part) -> T + Sync) -> Vec<T> {
    let work = &work;
    std::thread::scope(|s| {
        let rest: Vec<_> = parts
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, p)| s.spawn(move || work(i, p)))
            .collect();
        let mut out = Vec::with_capacity(parts.len());
        if let Some(first) = parts.first() {
            out.push(work(0, first));
        }
        out.extend(
            rest.into_iter()
                .map(|t| t.join().expect("a part of the checks")),
        );
        out
    })
}
