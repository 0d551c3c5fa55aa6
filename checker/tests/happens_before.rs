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
