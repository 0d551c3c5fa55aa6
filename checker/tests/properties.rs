//! Properties over generated histories: a correct system's histories have no
//! anomaly at all, and each injected anomaly is found exactly once, alone.

use ladon_checker::check::check_history;
use ladon_checker::reader::read_history;
use ladon_checker::report::{Anomaly, Guarantee, Verdict};
use ladon_checker::synth::{generate_vec, GenOptions, Workload};
use ladon_checker::CheckOptions;
use proptest::prelude::*;

const WORKLOADS: [Workload; 4] = [
    Workload::Register,
    Workload::ListAppend,
    Workload::Set,
    Workload::Counter,
];

/// Every guarantee; `linearizable` only when the injected anomaly is
/// `nonlinearizable` (the generator models an asynchronous multi-leader
/// store, which owes no real-time order).
fn all_guarantees() -> CheckOptions {
    CheckOptions {
        guarantees: Guarantee::ALL
            .into_iter()
            .filter(|&g| g != Guarantee::Linearizable)
            .collect(),
        ..CheckOptions::default()
    }
}

/// `all_guarantees`, plus `linearizable` when that is what was injected.
fn opts_for(a: Anomaly) -> CheckOptions {
    let mut o = all_guarantees();
    if a == Anomaly::Nonlinearizable {
        o.guarantees.push(Guarantee::Linearizable);
    }
    o
}

fn check(bytes: &[u8]) -> ladon_checker::Report {
    check_with(bytes, &all_guarantees())
}

fn check_with(bytes: &[u8], opts: &CheckOptions) -> ladon_checker::Report {
    match read_history(bytes) {
        Ok(h) => check_history(&h, opts),
        Err(Ok(e)) => ladon_checker::check::invalid_report(&e, opts),
        Err(Err(e)) => panic!("reading from memory: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn correct_histories_have_no_anomalies(
        seed in any::<u64>(),
        w in 0..4usize,
        processes in 1..10u32,
        nodes in 1..4u32,
    ) {
        let opts = GenOptions::new(WORKLOADS[w], 400, processes, nodes, seed);
        let report = check(&generate_vec(&opts));
        prop_assert!(report.anomalies.is_empty(), "{}", report.summary_text());
        prop_assert_eq!(report.verdict, Verdict::Valid);
        prop_assert_eq!(report.stats.lost_writes, 0);
        prop_assert!(report.stats.convergence_ns.is_some());
    }

    #[test]
    fn each_injected_anomaly_is_found_once_and_alone(
        seed in any::<u64>(),
        w in 0..4usize,
        // Every anomaly but `nonlinearizable` (last in `ALL`): the
        // generated register keys owe no real-time order.
        a in 0..15usize,
        processes in 1..8u32,
        nodes in 2..4u32,
    ) {
        let anomaly = Anomaly::ALL[a];
        let mut opts = GenOptions::new(WORKLOADS[w], 200, processes, nodes, seed);
        opts.inject = Some(anomaly);
        let report = check_with(&generate_vec(&opts), &opts_for(anomaly));
        let found: Vec<(Anomaly, u64)> = report.anomalies.iter().map(|(a, f)| (*a, f.count)).collect();
        prop_assert_eq!(found, vec![(anomaly, 1)], "{}", report.summary_text());
        let expected = if anomaly == Anomaly::InvalidHistory { Verdict::Unknown } else { Verdict::Invalid };
        prop_assert_eq!(report.verdict, expected);
    }

    /// Keys with more than 64 writes take the projected-clock path (no bit
    /// masks), and long list reads the linear scan for causal order.
    #[test]
    fn large_keys_find_each_injected_anomaly_once_and_alone(
        seed in any::<u64>(),
        w in 0..4usize,
        // Every anomaly but `nonlinearizable` (last in `ALL`): the
        // generated register keys owe no real-time order.
        a in 0..15usize,
        max_writes in 65..300u32,
    ) {
        let anomaly = Anomaly::ALL[a];
        let mut opts = GenOptions::new(WORKLOADS[w], 600, 6, 3, seed);
        opts.max_writes_per_key = max_writes;
        let clean = check(&generate_vec(&opts));
        prop_assert!(clean.anomalies.is_empty(), "{}", clean.summary_text());
        opts.inject = Some(anomaly);
        let report = check_with(&generate_vec(&opts), &opts_for(anomaly));
        let found: Vec<(Anomaly, u64)> = report.anomalies.iter().map(|(a, f)| (*a, f.count)).collect();
        prop_assert_eq!(found, vec![(anomaly, 1)], "{}", report.summary_text());
    }

    /// Keys shared by every process (`--keys`, no retirement: a few hot
    /// keys with many writers), single- or multi-operation transactions: a
    /// correct system's history breaks nothing but `no-conflict-loss`
    /// (last-write-wins discards concurrent register writes), and an
    /// injected causal anomaly is found once beside them.
    #[test]
    fn hot_key_histories_are_causal(
        seed in any::<u64>(),
        w in 0..4usize,
        keys in 1..4u32,
        mops in 1..5u32,
        a in 0..5usize,
    ) {
        let mut opts = GenOptions::new(WORKLOADS[w], 160, 8, 3, seed);
        opts.keys = Some(keys);
        opts.max_writes_per_key = u32::MAX;
        opts.mops = Some(mops);
        let allowed = |x: &Anomaly| WORKLOADS[w] == Workload::Register && *x == Anomaly::ConflictLoss;
        let clean = check(&generate_vec(&opts));
        let names: Vec<Anomaly> = clean.anomalies.keys().copied().filter(|x| !allowed(x)).collect();
        prop_assert!(names.is_empty(), "{}", clean.summary_text());
        let injected = [
            Anomaly::CausalVisibility,
            Anomaly::MonotonicReads,
            Anomaly::ReadYourWrites,
            Anomaly::CausalOverwrite,
            Anomaly::Phantom,
        ][a];
        opts.inject = Some(injected);
        let report = check(&generate_vec(&opts));
        let found: Vec<(Anomaly, u64)> = report
            .anomalies
            .iter()
            .filter(|(x, _)| !allowed(x))
            .map(|(x, f)| (*x, f.count))
            .collect();
        prop_assert_eq!(found, vec![(injected, 1)], "{}", report.summary_text());
    }
}

#[test]
fn every_anomaly_name_can_be_injected_into_every_workload() {
    for w in WORKLOADS {
        for a in Anomaly::ALL {
            // The generator models an asynchronous multi-leader store: its
            // own register keys are not linearizable, so `nonlinearizable`
            // is injected alone only beside list, set and counter keys.
            if a == Anomaly::Nonlinearizable && w == Workload::Register {
                continue;
            }
            let mut opts = GenOptions::new(w, 50, 4, 3, 7);
            opts.inject = Some(a);
            let report = check_with(&generate_vec(&opts), &opts_for(a));
            let found: Vec<(Anomaly, u64)> = report
                .anomalies
                .iter()
                .map(|(a, f)| (*a, f.count))
                .collect();
            assert_eq!(found, vec![(a, 1)], "{w:?} {a}: {}", report.summary_text());
        }
    }
}

/// A list key with more than 64 writes (no bit masks): one process appends
/// 1..=80 in session order, so each append happens before the next; a read
/// that swaps two of them is one `causal-order`, naming that pair, and a
/// read in order is none.
#[test]
fn causal_order_on_a_key_with_many_writes() {
    let mut lines = Vec::new();
    let mut ev = |p: u32, ty: &str, value: String| {
        let i = lines.len();
        lines.push(format!(
            r#"{{"index":{i},"time":{i},"type":"{ty}","process":{p},"node":"n1","f":"txn","value":{value}}}"#
        ));
    };
    for v in 1..=80 {
        let w = format!(r#"[["append","k",{v}]]"#);
        ev(0, "invoke", w.clone());
        ev(0, "ok", w);
    }
    let good: Vec<i64> = (1..=80).collect();
    let mut bad = good.clone();
    bad.swap(40, 60); // lists 61 before 41
    for list in [&good, &bad, &good] {
        ev(1, "invoke", r#"[["r","k",null]]"#.into());
        ev(1, "ok", format!(r#"[["r","k",{list:?}]]"#));
    }
    let text = lines.join("\n") + "\n";
    let report = check(text.as_bytes());
    let found: Vec<(Anomaly, u64)> = report
        .anomalies
        .iter()
        .map(|(a, f)| (*a, f.count))
        .collect();
    assert_eq!(
        found,
        vec![(Anomaly::CausalOrder, 1)],
        "{}",
        report.summary_text()
    );
    let example = &report.anomalies[&Anomaly::CausalOrder].examples[0];
    assert!(
        example.explanation.contains("it lists 61 before 42"),
        "{}",
        example.explanation
    );
}
