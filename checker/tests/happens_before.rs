//! The happens-before relation the analyses use (clocks with recycled slots,
//! recorded as per-key masks or projected clocks) agrees with plain
//! reachability in the causality graph, for small keys and large ones.

use ladon_checker::causality::{bit, session, Causality, ReadsFrom, Writers};
use ladon_checker::ids::OpId;
use ladon_checker::keys::KeyIndex;
use ladon_checker::reader::read_history;
use ladon_checker::synth::{generate_vec, GenOptions, Workload};

fn check_agreement(workload: Workload, ops: u64, max_writes: u32, seed: u64) -> usize {
    let mut opts = GenOptions::new(workload, ops, 6, 3, seed);
    opts.max_writes_per_key = max_writes;
    opts.info_rate = 0.03; // many retired process ids: slots get recycled
    let bytes = generate_vec(&opts);
    let h = read_history(&bytes[..]).map_err(|_| "invalid").unwrap();
    let (seq, prev) = session(&h);
    let mut idx = KeyIndex::new(&h, &seq);
    let c = Causality::build(
        &h,
        seq.clone(),
        prev,
        ReadsFrom::new(&h, &Writers::new(&h, &seq)),
        |op, clock, c| idx.record(&h, c, op, clock),
    );
    idx.finish(&h);
    assert!(
        c.width < h.processes.len(),
        "slots are recycled: {} of {}",
        c.width,
        h.processes.len()
    );
    if max_writes > 64 {
        assert!(
            h.keys.ids().any(|k| !idx.small(k)),
            "some key has more than 64 writes"
        );
    }
    let mut checked = 0;
    for k in h.keys.ids() {
        let ws = idx.key_writes(k);
        for (i, &a) in ws.iter().enumerate() {
            // every pair on small keys; a stride on large ones
            let step = if ws.len() > 64 { 7 } else { 1 };
            for &b in ws.iter().skip(i % step).step_by(step) {
                let (oa, ob) = (h.mops[a].op, h.mops[b].op);
                if oa == ob {
                    continue;
                }
                let reach = c.path(oa, ob).is_some();
                assert_eq!(idx.hb(&h, a, b), reach, "key {k}: op {oa} -> op {ob}");
                checked += 1;
            }
        }
    }
    checked
}

#[test]
fn masks_agree_with_reachability_on_small_keys() {
    for (i, w) in [Workload::ListAppend, Workload::Register, Workload::Set]
        .into_iter()
        .enumerate()
    {
        assert!(check_agreement(w, 400, 32, i as u64) > 300);
    }
}

#[test]
fn projected_clocks_agree_with_reachability_on_large_keys() {
    assert!(check_agreement(Workload::ListAppend, 1000, 150, 11) > 300);
}

/// `KeyIndex::first_after` (a binary search) finds the same write as a scan
/// of each process's writes for the first one an observed write happens
/// before, on keys shared by every process (many writers, hundreds of
/// writes each) and on small ones.
fn first_after_agrees_with_a_scan(keys: u32, max_writes: u32, seed: u64) -> usize {
    let mut opts = GenOptions::new(Workload::Register, 1500, 6, 3, seed);
    opts.keys = Some(keys);
    opts.max_writes_per_key = max_writes;
    opts.mops = Some(2);
    let bytes = generate_vec(&opts);
    let h = read_history(&bytes[..]).map_err(|_| "invalid").unwrap();
    let (seq, prev) = session(&h);
    let mut idx = KeyIndex::new(&h, &seq);
    Causality::build(
        &h,
        seq.clone(),
        prev,
        ReadsFrom::new(&h, &Writers::new(&h, &seq)),
        |op, clock, c| idx.record(&h, c, op, clock),
    );
    idx.finish(&h);
    let mut checked = 0;
    for k in h.keys.ids() {
        let groups: Vec<_> = idx.groups(k).collect();
        for (i, &o) in idx.key_writes(k).iter().enumerate().step_by(3) {
            for g in &groups {
                let scan = (g.start..g.end)
                    .find(|&j| idx.hb(&h, o, idx.writes[j]))
                    .unwrap_or(g.end);
                let found = idx.first_after(&h, k, &[o], g.start, g.end);
                assert_eq!(found, scan, "key {k}, write {i}, process {}", g.process);
                checked += 1;
            }
        }
    }
    checked
}

#[test]
fn first_after_agrees_with_a_scan_on_hot_and_small_keys() {
    // three keys taking every write (about 250 each, six writers)
    assert!(first_after_agrees_with_a_scan(3, u32::MAX, 5) > 1000);
    // keys retired after 40 writes: bit masks
    assert!(first_after_agrees_with_a_scan(8, 40, 6) > 1000);
}

/// Clocks on `lin-kv`-shaped histories, where every `info` retires a
/// client's process id (thousands of short-lived processes on a few hot
/// keys): processes are retired from their clock slots while later
/// operations may still ask about them, and every answer stays exact.
/// Checked during the sweep (each operation's clock against plain
/// reachability, for every write of the keys it touches) and after it
/// (the recorded happens-before among each key's writes).
fn retired_slots_agree_with_reachability(ops: u64, keys: u32, seed: u64) -> (usize, usize) {
    use ladon_checker::synth::linreg::{generate_lin_kv_vec, LinGenOptions};
    let bytes = generate_lin_kv_vec(&LinGenOptions {
        ops,
        keys,
        clients: 5,
        nodes: 3,
        info_rate: 0.2,
        seed,
    });
    let h = read_history(&bytes[..]).map_err(|_| "invalid").unwrap();
    let (seq, prev) = session(&h);
    let mut idx = KeyIndex::new(&h, &seq);
    // Per key, the write ops (vertices) of it.
    let mut key_ops: Vec<Vec<OpId>> = vec![Vec::new(); h.keys.len()];
    for (k, ws) in h.key_writes.iter().enumerate() {
        for &w in ws {
            let o = h.mops[w].op;
            if seq[o] != 0 {
                key_ops[k].push(o);
            }
        }
    }
    let mut during = Vec::new();
    let c = Causality::build(
        &h,
        seq.clone(),
        prev,
        ReadsFrom::new(&h, &Writers::new(&h, &seq)),
        |op, clock, c| {
            idx.record(&h, c, op, clock);
            let o = &h.ops[op];
            if o.is_final {
                return;
            }
            for m in &h.mops[o.mops()] {
                for &w in key_ops[m.key.index()].iter().step_by(3) {
                    if w != op {
                        during.push((w, op, c.in_past(w, clock)));
                    }
                }
            }
        },
    );
    idx.finish(&h);
    assert!(
        c.clock_slots * 2 < c.width,
        "retired processes free their slots: {} used, {} without retiring",
        c.clock_slots,
        c.width
    );
    // Reachability: each operation's ancestors, one backward pass each.
    let mut anc: std::collections::HashMap<OpId, Vec<u64>> = Default::default();
    let mut reaches = |a: OpId, b: OpId| {
        let bits = anc.entry(b).or_insert_with(|| c.ancestors(b));
        bit(bits, a)
    };
    for &(w, op, known) in &during {
        assert_eq!(known, reaches(w, op), "op {w} -> op {op}");
    }
    let mut checked = 0;
    for k in h.keys.ids() {
        let ws = idx.key_writes(k);
        for (i, &a) in ws.iter().enumerate().step_by(5) {
            for &b in ws.iter().skip(i % 3).step_by(3) {
                let (oa, ob) = (h.mops[a].op, h.mops[b].op);
                if oa == ob {
                    continue;
                }
                assert_eq!(
                    idx.hb(&h, a, b),
                    reaches(oa, ob),
                    "key {k}: op {oa} -> op {ob}"
                );
                checked += 1;
            }
        }
    }
    (during.len(), checked)
}

#[test]
fn retired_slots_agree_with_reachability_on_lin_kv_histories() {
    for (seed, keys) in [(1, 2), (2, 3), (3, 1)] {
        let (during, after) = retired_slots_agree_with_reachability(2500, keys, seed);
        assert!(during > 10_000 && after > 10_000, "{during} {after}");
    }
}
