//! The shrinker's passes: from the current run, the smaller runs worth
//! trying, most aggressive first. Every candidate strictly lowers one
//! parameter (or drops or shortens a step), so the search ends.

use crate::nemesis::Action;
use crate::net::{Cut, Latency};
use crate::options::{Dur, RunOptions};
use crate::schedule::{NemesisSchedule, ScheduleStep};

use super::trial::Trial;

/// A pass: its name (for the progress bar) and its candidates.
pub type Pass = (&'static str, fn(&Trial) -> Vec<RunOptions>);

/// In order: shorter runs first, then fewer clients and nodes, then the
/// schedule, then the workload, then the network; last, when nothing else
/// shrinks, half the operations under other seeds.
pub const PASSES: [Pass; 9] = [
    ("time limit", time_limit),
    ("operations", operations),
    ("final reads", final_reads),
    ("clients", clients),
    ("nodes", nodes),
    ("nemesis", nemesis),
    ("workload", workload),
    ("network", network),
    ("reseed", reseed),
];

/// Other seeds tried by the `reseed` pass.
pub const RESEEDS: u64 = 8;

const MS: u64 = 1_000_000;

/// Values below `v` down to `min`: `min`, then a quarter, half and three
/// quarters of the way back up (the first that passes wins).
pub fn smaller(v: u64, min: u64) -> Vec<u64> {
    if v <= min {
        return Vec::new();
    }
    let d = v - min;
    let mut out = vec![min, min + d / 4, min + d / 2, min + d * 3 / 4];
    out.dedup();
    out.retain(|&x| x < v);
    out
}

/// The same for durations, in whole milliseconds.
fn smaller_dur(v: Dur, min_ms: u64) -> Vec<Dur> {
    let mut out: Vec<Dur> = smaller(v.ns() / MS, min_ms)
        .into_iter()
        .map(|ms| Dur(ms * MS))
        .filter(|d| *d < v)
        .collect();
    out.dedup();
    out
}

fn with(t: &Trial, f: impl FnOnce(&mut RunOptions)) -> RunOptions {
    let mut o = t.options.clone();
    f(&mut o);
    o
}

fn time_limit(t: &Trial) -> Vec<RunOptions> {
    smaller_dur(t.options.time_limit, 10)
        .into_iter()
        .map(|d| {
            with(t, |o| {
                o.time_limit = d;
                // Steps after the end never apply: drop them from run.json.
                if let Some(s) = &mut o.nemesis_schedule {
                    s.steps.retain(|st| st.at < d);
                }
            })
        })
        .collect()
}

fn operations(t: &Trial) -> Vec<RunOptions> {
    let cur = t.options.max_ops.unwrap_or(u64::MAX).min(t.size.client_ops);
    smaller(cur, 1)
        .into_iter()
        .map(|m| with(t, |o| o.max_ops = Some(m)))
        .collect()
}

fn final_reads(t: &Trial) -> Vec<RunOptions> {
    smaller_dur(t.options.converge_timeout, 0)
        .into_iter()
        .map(|d| with(t, |o| o.converge_timeout = d))
        .collect()
}

fn clients(t: &Trial) -> Vec<RunOptions> {
    smaller(t.options.concurrency as u64, 1)
        .into_iter()
        .map(|c| with(t, |o| o.concurrency = c as usize))
        .collect()
}

fn nodes(t: &Trial) -> Vec<RunOptions> {
    smaller(t.options.nodes as u64, 1)
        .into_iter()
        .map(|n| {
            with(t, |o| {
                o.nodes = n as usize;
                if let Some(s) = &o.nemesis_schedule {
                    o.nemesis_schedule = Some(s.restrict(o.nodes));
                }
            })
        })
        .collect()
}

/// A drawn schedule: no faults at all, then the applied steps as an
/// explicit schedule, then shorter mean intervals. An explicit schedule:
/// drop steps, then shorten intervals, then simplify partition shapes.
fn nemesis(t: &Trial) -> Vec<RunOptions> {
    let Some(schedule) = &t.options.nemesis_schedule else {
        if t.options.nemesis.0.is_empty() {
            return Vec::new();
        }
        let mut out = vec![
            with(t, |o| o.nemesis = "none".parse().expect("none parses")),
            with(t, |o| o.nemesis_schedule = Some(t.size.schedule.clone())),
        ];
        out.extend(
            smaller_dur(t.options.nemesis_interval, 10)
                .into_iter()
                .map(|d| with(t, |o| o.nemesis_interval = d)),
        );
        return out;
    };
    let explicit = |steps: Vec<ScheduleStep>| {
        with(t, |o| {
            o.nemesis_schedule = Some(NemesisSchedule {
                steps,
                source: None,
            })
        })
    };
    let mut out: Vec<RunOptions> = drop_steps(&schedule.steps)
        .into_iter()
        .map(&explicit)
        .collect();
    out.extend(
        shorten_intervals(&schedule.steps)
            .into_iter()
            .map(&explicit),
    );
    out.extend(
        simplify_shapes(&schedule.steps, t.options.nodes)
            .into_iter()
            .map(&explicit),
    );
    out
}

/// Delta debugging's subsets: every step dropped, then each half, each
/// quarter, ... each single step.
pub fn drop_steps(steps: &[ScheduleStep]) -> Vec<Vec<ScheduleStep>> {
    let n = steps.len();
    if n == 0 {
        return Vec::new();
    }
    let mut out = vec![Vec::new()];
    let mut size = n.div_ceil(2);
    loop {
        if size < n {
            for start in (0..n).step_by(size) {
                let mut kept = steps[..start].to_vec();
                kept.extend_from_slice(&steps[(start + size).min(n)..]);
                if !out.contains(&kept) {
                    out.push(kept);
                }
            }
        }
        if size == 1 {
            break;
        }
        size = size.div_ceil(2);
    }
    out
}

/// Earlier steps: the whole schedule twice as fast, then each gap (from
/// the start, or the step before) halved, later steps moving with it.
pub fn shorten_intervals(steps: &[ScheduleStep]) -> Vec<Vec<ScheduleStep>> {
    let mut out = Vec::new();
    let halve = |d: Dur| Dur(d.ns() / 2 / MS * MS);
    let compressed: Vec<ScheduleStep> = steps
        .iter()
        .map(|s| ScheduleStep {
            at: halve(s.at),
            action: s.action.clone(),
        })
        .collect();
    if compressed.as_slice() != steps {
        out.push(compressed);
    }
    for i in 0..steps.len() {
        let prev = if i == 0 { 0 } else { steps[i - 1].at.ns() };
        let gap = steps[i].at.ns().saturating_sub(prev);
        let cut = gap / 2 / MS * MS;
        if cut == 0 {
            continue;
        }
        let mut v = steps.to_vec();
        for s in &mut v[i..] {
            s.at = Dur(s.at.ns() - cut);
        }
        out.push(v);
    }
    out
}

/// Partitions as two groups: halves (by index), then one node alone.
pub fn simplify_shapes(steps: &[ScheduleStep], n: usize) -> Vec<Vec<ScheduleStep>> {
    let mut out = Vec::new();
    if n < 2 {
        return out;
    }
    for (i, s) in steps.iter().enumerate() {
        let Action::Partition(cut) = &s.action else {
            continue;
        };
        if cut.groups.as_ref().is_some_and(|g| g.len() == 2) {
            continue;
        }
        let mut shapes = vec![vec![(0..n / 2).collect::<Vec<_>>(), (n / 2..n).collect()]];
        for lone in 0..n {
            shapes.push(vec![vec![lone], (0..n).filter(|&x| x != lone).collect()]);
        }
        for groups in shapes {
            let mut v = steps.to_vec();
            v[i].action = Action::Partition(Cut::from_groups(n, groups));
            out.push(v);
        }
    }
    out
}

fn workload(t: &Trial) -> Vec<RunOptions> {
    let mut out: Vec<RunOptions> = smaller(t.options.keys as u64, 1)
        .into_iter()
        .map(|k| with(t, |o| o.keys = k as usize))
        .collect();
    out.extend(
        smaller(t.options.txn_size as u64, 1)
            .into_iter()
            .map(|k| with(t, |o| o.txn_size = k as usize)),
    );
    out
}

/// Background faults and clock drift off, then a constant latency (zero,
/// then the mean the run had).
fn network(t: &Trial) -> Vec<RunOptions> {
    let o = &t.options;
    let mut out = Vec::new();
    if o.net.loss > 0.0 {
        out.push(with(t, |o| o.net.loss = 0.0));
    }
    if o.net.duplicate > 0.0 {
        out.push(with(t, |o| o.net.duplicate = 0.0));
    }
    if o.net.reorder > 0.0 {
        out.push(with(t, |o| o.net.reorder = 0.0));
    }
    if o.clock_drift_ppm != 0 {
        out.push(with(t, |o| o.clock_drift_ppm = 0));
    }
    let mean = match o.net.latency {
        Latency::Constant(ns) => ns,
        Latency::Uniform { min, max } => (min + max) / 2,
        Latency::Exponential { mean } => mean,
    };
    if o.net.latency != Latency::Constant(0) {
        out.push(with(t, |o| o.net.latency = Latency::Constant(0)));
    }
    if !matches!(o.net.latency, Latency::Constant(_)) {
        out.push(with(t, |o| o.net.latency = Latency::Constant(mean)));
    }
    out
}

/// Half the operations under each of [`RESEEDS`] other seeds, derived from
/// the current one. Every parameter search above keeps the seed, and a run
/// whose anomaly shows only late (after hundreds of operations) stalls
/// there: any smaller run takes other random paths, and the few fractions
/// tried all miss it. A different seed is a different draw of the same
/// small run, so the search can go on shrinking. The operation count halves
/// with every accepted candidate, so this pass too ends.
fn reseed(t: &Trial) -> Vec<RunOptions> {
    let (Some(seed), half) = (t.options.seed, t.size.client_ops / 2) else {
        return Vec::new();
    };
    if half == 0 {
        return Vec::new();
    }
    (1..=RESEEDS)
        .map(|k| {
            with(t, |o| {
                o.seed = Some(derive_seed(seed, k));
                o.max_ops = Some(half);
            })
        })
        .collect()
}

/// splitmix64 of `seed + k`: seeds far apart from the original and each
/// other, the same on every machine.
pub fn derive_seed(seed: u64, k: u64) -> u64 {
    let mut z = seed.wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(n: usize) -> Vec<ScheduleStep> {
        (0..n)
            .map(|i| ScheduleStep {
                at: Dur::secs(i as u64 + 1),
                action: if i % 2 == 0 {
                    Action::Crash(vec![i])
                } else {
                    Action::Restart(vec![i - 1])
                },
            })
            .collect()
    }

    #[test]
    fn reseeded_seeds_are_fixed_and_distinct() {
        // Pinned: a shrink's output must not change between versions.
        assert_eq!(derive_seed(1, 1), 0x910a_2dec_8902_5cc1);
        let seeds: std::collections::BTreeSet<u64> =
            (1..=RESEEDS).map(|k| derive_seed(1, k)).collect();
        assert_eq!(seeds.len() as u64, RESEEDS);
        assert!(!seeds.contains(&1));
    }

    #[test]
    fn numbers_shrink_toward_the_minimum_first() {
        assert_eq!(smaller(100, 1), vec![1, 25, 50, 75]);
        assert_eq!(smaller(2, 1), vec![1]);
        assert_eq!(smaller(1, 1), Vec::<u64>::new());
    }

    #[test]
    fn steps_drop_all_then_halves_then_one_by_one() {
        let s = steps(4);
        let c = drop_steps(&s);
        let kept: Vec<Vec<u64>> = c
            .iter()
            .map(|v| v.iter().map(|x| x.at.ns() / 1_000_000_000).collect())
            .collect();
        assert_eq!(
            kept,
            vec![
                vec![],
                vec![3, 4],
                vec![1, 2],
                vec![2, 3, 4],
                vec![1, 3, 4],
                vec![1, 2, 4],
                vec![1, 2, 3],
            ]
        );
    }

    #[test]
    fn intervals_shorten_by_halving_gaps() {
        let s = steps(2);
        let c = shorten_intervals(&s);
        let at: Vec<Vec<u64>> = c
            .iter()
            .map(|v| v.iter().map(|x| x.at.ns() / MS).collect())
            .collect();
        assert_eq!(at, vec![vec![500, 1000], vec![500, 1500], vec![1000, 1500]]);
    }

    #[test]
    fn a_links_cut_becomes_halves_then_one_node_alone() {
        let cut = Cut {
            blocked: [(0, 1), (1, 0)].into_iter().collect(),
            groups: None,
        };
        let s = vec![ScheduleStep {
            at: Dur::secs(1),
            action: Action::Partition(cut),
        }];
        let c = simplify_shapes(&s, 3);
        assert_eq!(c.len(), 4);
        let Action::Partition(halves) = &c[0][0].action else {
            panic!()
        };
        assert_eq!(halves.groups, Some(vec![vec![0], vec![1, 2]]));
        assert!(
            simplify_shapes(&c[0], 3).is_empty(),
            "two groups are simple"
        );
    }
}
