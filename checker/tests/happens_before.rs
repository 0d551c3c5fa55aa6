//! The happens-before relation the analyses use (clocks with recycled slots,
//! recorded as per-key masks or projected clocks) agrees with plain
//! reachability in the causality graph, for small keys and large ones.

use ladon_checker::causality::{session, Causality, ReadsFrom, Writers};
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
            (0..h.keys.len() as u32).any(|k| !idx.small(k)),
            "some key has more than 64 writes"
        );
    }
    let mut checked = 0;
    for k in 0..h.keys.len() as u32 {
        let ws = idx.key_writes(k);
        for (i, &a) in ws.iter().enumerate() {
            // every pair on small keys; a stride on large ones
            let step = if ws.len() > 64 { 7 } else { 1 };
            for &b in ws.iter().skip(i % step).step_by(step) {
                let (oa, ob) = (h.mops[a as usize].op, h.mops[b as usize].op);
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
    for k in 0..h.keys.len() as u32 {
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
