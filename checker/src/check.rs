//! The checker's entry points: read (or take) a history, run every analysis,
//! and assemble the report of `shared/spec/anomalies.md`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value as Json};

use crate::analysis::{finals, linearizable, reads, visibility};
use crate::causality::{self, Causality, ReadsFrom, Writers};
use crate::explain::{Explain, Findings};
use crate::history::Event;
use crate::keys::KeyIndex;
use crate::model::{History, InvalidHistory, Outcome};
use crate::reader::{build_history, read_history_file, ReadError};
use crate::report::{Anomaly, Conflicts, Example, Finding, Guarantee, Report, Stats, Verdict};

/// How to check a history.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// What the system promises; anomalies they forbid make it `invalid`.
    pub guarantees: Vec<Guarantee>,
    /// Examples kept per anomaly name (all are counted).
    pub max_examples: usize,
    /// Messages sent per write, where the harness observed them.
    pub messages_per_write: Option<f64>,
    /// Placements the linearizability search may try per key before the
    /// verdict becomes `unknown` (`--lin-budget`).
    pub lin_budget: u64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            guarantees: Guarantee::default_for_check(),
            max_examples: 5,
            messages_per_write: None,
            lin_budget: linearizable::DEFAULT_BUDGET,
        }
    }
}

/// Checks a history file. An `Err` is an I/O failure opening or reading it; a
/// malformed history is a report with `invalid-history` and verdict `unknown`.
pub fn check_path(path: &Path, opts: &CheckOptions) -> std::io::Result<Report> {
    let t0 = std::time::Instant::now();
    match read_history_file(path) {
        Ok(h) => {
            if std::env::var_os("LADON_TIMING").is_some() {
                eprintln!(
                    "[timing] read and validate: wall {:.3} s, cpu {:.2} s, rss {} MB",
                    t0.elapsed().as_secs_f64(),
                    cpu_seconds(),
                    rss_mb()
                );
                eprintln!(
                    "[timing] model: {} ops, {} micro-ops, {} stored values ({} observed), {} keys",
                    h.ops.len(),
                    h.mops.len(),
                    h.vals.len(),
                    h.mops.iter().map(|m| m.obs_len as u64).sum::<u64>(),
                    h.keys.len()
                );
            }
            Ok(check_history(&h, opts))
        }
        Err(ReadError::Invalid { source, .. }) => Ok(invalid_report(&source, opts)),
        Err(ReadError::Io { path, source }) => Err(std::io::Error::new(
            source.kind(),
            format!("failed to read {path}: {source}"),
        )),
    }
}

/// Checks events already in memory, validating them like a file.
pub fn check_events(events: &[Event], opts: &CheckOptions) -> Report {
    match build_history(events) {
        Ok(h) => check_history(&h, opts),
        Err(e) => invalid_report(&e, opts),
    }
}

/// The report for a history that breaks `history.md`: nothing else is checked.
pub fn invalid_report(e: &InvalidHistory, opts: &CheckOptions) -> Report {
    let mut anomalies = BTreeMap::new();
    anomalies.insert(
        Anomaly::InvalidHistory,
        Finding {
            count: 1,
            forbidden: true,
            examples: vec![Example {
                explanation: format!("line {}: {}", e.line, e.message),
                key: None,
                ops: Vec::new(),
                nodes: Vec::new(),
                detail: json!({"line": e.line, "message": e.message}),
            }],
        },
    );
    let mut extra = BTreeMap::new();
    extra.insert(
        "unknown_reason".into(),
        Json::from(format!(
            "the history is malformed at line {}: {}",
            e.line, e.message
        )),
    );
    Report {
        verdict: Verdict::Unknown,
        guarantees: opts.guarantees.clone(),
        anomalies,
        conflicts: Conflicts::default(),
        stats: Stats::default(),
        extra,
    }
}

/// Runs every analysis over a validated history.
pub fn check_history(h: &History, opts: &CheckOptions) -> Report {
    let timing = std::env::var_os("LADON_TIMING").is_some();
    let t0 = std::time::Instant::now();
    let lap = |what: &str| {
        if timing {
            eprintln!(
                "[timing] {what}: wall {:.3} s, cpu {:.2} s, rss {} MB",
                t0.elapsed().as_secs_f64(),
                cpu_seconds(),
                rss_mb()
            );
        }
    };
    let (seq, prev) = causality::session(h);
    // The per-key index is built beside the reads-from edges.
    let (mut idx, writers, rf) = std::thread::scope(|s| {
        let idx = s.spawn(|| KeyIndex::new(h, &seq));
        let writers = Writers::new(h, &seq);
        let rf = ReadsFrom::new(h, &writers);
        (idx.join().expect("key index"), writers, rf)
    });
    lap("reads-from edges");
    let mut vis = visibility::Visibility::default();
    // The projected clocks' memory is faulted in on another thread while
    // the sweep's consumer fills it (see `KeyIndex::projection_memory`).
    // It stops once the sweep is done.
    let memory = idx.projection_memory();
    let swept = std::sync::atomic::AtomicBool::new(false);
    let c = std::thread::scope(|s| {
        if let Some((addr, bytes, fault_in)) = memory {
            let swept = &swept;
            s.spawn(move || crate::keys::populate(addr, bytes, fault_in, swept));
        }
        let c = Causality::build(h, seq, prev, rf, |op, clock, c| {
            vis.check_op(h, &idx, c, op, clock);
            idx.record(h, c, op, clock);
        });
        swept.store(true, std::sync::atomic::Ordering::Relaxed);
        c
    });
    lap("graph and clocks");
    if timing {
        eprintln!(
            "[timing] clocks {} wide ({} slots used, {} process ids), {} projected clock entries",
            c.width,
            c.clock_slots,
            h.processes.len(),
            idx.projected_entries()
        );
    }
    idx.finish(h);
    vis.check_finals(h, &idx, &c);
    lap("masks and final reads");
    let x = Explain { h, c: &c };
    let mut f = Findings::new(opts.max_examples);

    for scc in &c.cycles {
        f.add(Anomaly::CyclicCausality, || {
            let cycle = c.cycle_path(scc);
            let (ptext, edges) = x.path(&cycle);
            Example {
                explanation: format!(
                    "{} operations happen before each other in a cycle: {ptext}",
                    scc.len()
                ),
                key: None,
                ops: x.indices(&cycle[..cycle.len() - 1]),
                nodes: Vec::new(),
                detail: json!({"cycle": edges, "size": scc.len(), "graph": x.graph(&cycle, &edges)}),
            }
        });
    }
    // Final states run beside the per-read checks (which split over the
    // cores themselves); findings merge in the order a single thread makes
    // them: reads, visibility, final states.
    let real_time = opts.guarantees.contains(&Guarantee::Linearizable);
    let fin = std::thread::scope(|s| {
        let finals = s.spawn(|| {
            let mut g = Findings::new(opts.max_examples);
            let fin = finals::check(&x, &idx, real_time, &mut g);
            (fin, g)
        });
        reads::check(&x, &idx, &writers, &mut f);
        lap("reads");
        visibility::report(&x, &vis.violations, &mut f);
        let (fin, g) = finals.join().expect("final-state checks");
        f.merge(g);
        fin
    });
    lap("finals");
    // Linearizability is searched for only when promised: it is the one
    // analysis whose cost is not near-linear in the worst case.
    let lin = real_time.then(|| {
        let mut g = Findings::new(opts.max_examples);
        let out = linearizable::check(&x, opts.lin_budget, &mut g);
        f.merge(g);
        lap("linearizability");
        out
    });

    // Figures.
    let mut stats = Stats::default();
    let mut by_f: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
    for op in &h.ops {
        let i = match op.outcome {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Info => 2,
        };
        by_f.entry(if op.is_final { "final" } else { "txn" })
            .or_default()[i] += 1;
        match op.outcome {
            Outcome::Ok => stats.ok += 1,
            Outcome::Fail => stats.fail += 1,
            Outcome::Info => stats.info += 1,
        }
        if op.outcome == Outcome::Ok && !op.is_final {
            stats.acknowledged_writes +=
                h.mops[op.mops()].iter().filter(|m| m.is_write()).count() as u64;
        }
    }
    stats.lost_writes = fin.lost_writes;
    stats.lost_write_share = if stats.acknowledged_writes == 0 {
        0.0
    } else {
        stats.lost_writes as f64 / stats.acknowledged_writes as f64
    };
    stats.convergence_ns = fin.convergence_ns;

    let mut extra: BTreeMap<String, Json> = BTreeMap::new();
    extra.insert(
        "operations".into(),
        json!(by_f
            .iter()
            .map(|(k, v)| (
                k.to_string(),
                json!({"ok": v[0], "fail": v[1], "info": v[2]})
            ))
            .collect::<BTreeMap<_, _>>()),
    );
    extra.insert("events".into(), json!(h.events));
    extra.insert("nodes".into(), json!(h.nodes));
    extra.insert(
        "keys".into(),
        json!(h.key_kind.iter().filter(|k| k.is_some()).count()),
    );
    extra.insert("processes".into(), json!(h.processes.len()));
    extra.insert("policy".into(), fin.policy.clone());
    extra.insert("classes_by_key".into(), fin.classes_by_key.clone());
    extra.insert("latency_ns".into(), latency(h));
    extra.insert("graph".into(), json!({"vertices": c.seq.iter().filter(|&&s| s != 0).count(), "edges": c.edge_count, "clock_width": c.width}));
    if fin.counter_deficit > 0 {
        extra.insert(
            "counter_deficit".into(),
            crate::analysis::loss_examples::wide(fin.counter_deficit),
        );
    }
    extra.insert("convergence_from".into(), json!(fin.convergence_from));
    extra.insert("messages_per_write".into(), json!(opts.messages_per_write));
    let faults: Vec<Json> = h
        .nemesis
        .iter()
        .map(|e| json!({"index": e.index, "time": e.time, "f": e.f, "value": e.value}))
        .collect();
    extra.insert("faults".into(), Json::Array(faults));

    let anomalies: BTreeMap<Anomaly, Finding> = f
        .found
        .into_iter()
        .map(|(a, (count, examples))| {
            (
                a,
                Finding {
                    count,
                    forbidden: a.forbidden_under(&opts.guarantees),
                    examples,
                },
            )
        })
        .collect();
    let lin_unknown = lin.as_ref().and_then(|l| l.unknown.clone());
    if let Some(l) = &lin {
        extra.insert(
            "linearizability".into(),
            json!({"keys": l.keys, "operations": l.ops, "budget": opts.lin_budget,
                   "keys_over_budget": l.budget_keys, "unknown": l.unknown}),
        );
    }
    let forbidden = anomalies.values().any(|fi| fi.forbidden);
    let verdict = if forbidden {
        Verdict::Invalid
    } else if fin.unknown.is_some() || lin_unknown.is_some() {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    if let Some(why) = &fin.unknown {
        extra.insert("final_phase_problem".into(), json!(why));
    }
    if verdict == Verdict::Unknown {
        if let Some(why) = fin.unknown.as_ref().or(lin_unknown.as_ref()) {
            extra.insert("unknown_reason".into(), json!(why));
        }
    }
    Report {
        verdict,
        guarantees: opts.guarantees.clone(),
        anomalies,
        conflicts: fin.conflicts,
        stats,
        extra,
    }
}

/// Latency quantiles of `ok` transactions (not final reads), by node.
fn latency(h: &History) -> Json {
    let mut by_node: Vec<Vec<u64>> = vec![Vec::new(); h.nodes.len()];
    for op in &h.ops {
        if op.outcome == Outcome::Ok && !op.is_final {
            by_node[op.node as usize].push(op.complete_time - op.invoke_time);
        }
    }
    let mut out = serde_json::Map::new();
    for (n, mut v) in by_node.into_iter().enumerate() {
        if v.is_empty() {
            continue;
        }
        v.sort_unstable();
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        out.insert(
            h.nodes[n].clone(),
            json!({"count": v.len(), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": v[v.len() - 1]}),
        );
    }
    Json::Object(out)
}

/// CPU seconds used by this process so far (Linux; 0 elsewhere), for
/// `LADON_TIMING=1` phase timings.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = stat.rsplit(')').next() else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident and peak memory in MB (Linux; 0 elsewhere), for `LADON_TIMING=1`.
fn rss_mb() -> String {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return "?".into();
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    format!(
        "{} (peak {}; anon {}, file {})",
        field("VmRSS:"),
        field("VmHWM:"),
        field("RssAnon:"),
        field("RssFile:")
    )
}
