//! Randomised runs on the hand driver: random delivery order, drops,
//! partitions, crashes and timers; then heal, restart and quiesce, and check
//! what every correct configuration must give: equal replicas, every
//! acknowledged append present exactly once.

use std::collections::BTreeMap;

use ladon_checker::history::{Mop, ReadValue};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value as Json;

use super::driver::*;
use crate::node::{NodeId, TimerId};
use crate::reference::replica::{ANTI_ENTROPY, PING};
use crate::reference::{Bug, Config, Strategy, Topology};

const SEEDS: u64 = 4;
const STEPS: usize = 400;

struct Outcome {
    states: Vec<BTreeMap<String, ReadValue>>,
    acked: Vec<(String, i64)>,
}

fn run(cfg: Config, seed: u64, steps: usize) -> Outcome {
    let nodes = cfg.node_count();
    let leaders = cfg.leaders;
    let mut d = Driver::new(cfg);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pending: Vec<(crate::node::ReqId, usize, String, i64)> = Vec::new();
    let mut contexts: Vec<Json> = vec![Json::Null; nodes];
    let mut acked = Vec::new();
    let mut next = 0;
    for _ in 0..steps {
        d.now += rng.random_range(0..3_000_000);
        match rng.random_range(0..100) {
            0..30 => {
                let node = rng.random_range(0..nodes);
                let key = format!("k{}", rng.random_range(0..3));
                next += 1;
                let ops = vec![
                    Mop::Read(k(&key), ReadValue::Null),
                    Mop::Append(k(&key), next),
                ];
                let id = d.request(NodeId(node), ops, contexts[node].clone());
                pending.push((id, node, key, next));
            }
            30..70 if !d.queue.is_empty() => {
                let i = rng.random_range(0..d.queue.len());
                let m = d.queue.remove(i).unwrap();
                d.queue.push_front(m);
                d.deliver_one();
            }
            70..75 if !d.queue.is_empty() => {
                let i = rng.random_range(0..d.queue.len());
                d.queue.remove(i);
            }
            75..78 => {
                let a = NodeId(rng.random_range(0..leaders));
                d.isolate(a);
            }
            78..81 => d.heal(),
            81..83 => {
                let a = NodeId(rng.random_range(0..nodes));
                if d.nodes[a.0].is_some() {
                    d.crash(a);
                } else {
                    d.restart(a);
                }
            }
            _ => {
                let a = rng.random_range(0..nodes);
                let timers: Vec<TimerId> = d.timers[a].iter().copied().collect();
                if !timers.is_empty() {
                    let t = timers[rng.random_range(0..timers.len())];
                    d.fire(NodeId(a), t);
                }
            }
        }
        pending.retain(|(id, node, key, v)| match d.replies.remove(id) {
            Some(Ok(reply)) => {
                acked.push((key.clone(), *v));
                contexts[*node] = reply.context;
                false
            }
            Some(Err(e)) => {
                if std::env::var("DEBUG_RANDOM").is_ok() {
                    eprintln!("{key} {v}: {e:?}");
                }
                false
            }
            None => true,
        });
    }
    // Final phase: heal, restart, let anti-entropy and pings run until quiet.
    d.heal();
    for a in 0..nodes {
        if d.nodes[a].is_none() {
            d.restart(NodeId(a));
        }
    }
    d.deliver_all();
    for _ in 0..12 {
        d.ping();
        d.anti_entropy();
        for a in 0..nodes {
            let ts: Vec<TimerId> = d.timers[a]
                .iter()
                .copied()
                .filter(|t| *t != ANTI_ENTROPY && *t != PING)
                .collect();
            for t in ts {
                d.fire(NodeId(a), t);
            }
        }
        d.deliver_all();
    }
    for (id, _, key, v) in pending {
        if let Some(Ok(_)) = d.replies.remove(&id) {
            acked.push((key, v));
        }
    }
    let states = (0..nodes)
        .map(|a| {
            (0..3)
                .map(|i| format!("k{i}"))
                .map(|key| (key.clone(), d.node(NodeId(a)).store().read(&k(&key)).value))
                .collect()
        })
        .collect();
    Outcome { states, acked }
}

fn problems(o: &Outcome) -> Vec<String> {
    let mut p = Vec::new();
    for (i, s) in o.states.iter().enumerate().skip(1) {
        if *s != o.states[0] {
            p.push(format!(
                "divergence: node {i} {s:?} vs node 0 {:?}",
                o.states[0]
            ));
        }
    }
    for (i, s) in o.states.iter().enumerate() {
        for (key, v) in &o.acked {
            let list = match s.get(key) {
                Some(ReadValue::List(l)) => l.clone(),
                _ => vec![],
            };
            match list.iter().filter(|e| *e == v).count() {
                1 => {}
                0 => p.push(format!("lost-write: {key} {v} missing on node {i}")),
                c => p.push(format!("duplicate: {key} {v} {c} times on node {i}")),
            }
        }
    }
    p
}

fn correct(strategy: Strategy, topology: Topology, followers: usize, causal: bool) -> Config {
    Config {
        strategy,
        topology,
        followers,
        causal_delivery: causal,
        ..Config::default()
    }
}

#[test]
fn correct_configurations_converge_without_losing_appends() {
    for strategy in [
        Strategy::Crdt,
        Strategy::VersionVector,
        Strategy::Avoidance,
        Strategy::Quorum,
    ] {
        for topology in Topology::ALL {
            for (followers, causal) in [(0, true), (1, false)] {
                let mut acked = 0;
                let what = correct(strategy, *topology, followers, causal).describe();
                for seed in 0..SEEDS {
                    let o = run(correct(strategy, *topology, followers, causal), seed, STEPS);
                    let p = problems(&o);
                    assert!(p.is_empty(), "{what}, seed {seed}: {p:#?}");
                    acked += o.acked.len();
                }
                assert!(acked > 0, "{what}: nothing acknowledged");
            }
        }
    }
}

#[test]
fn lww_converges_but_loses_appends() {
    let mut lost = 0;
    for seed in 0..4 {
        let o = run(correct(Strategy::Lww, Topology::Mesh, 0, false), seed, 400);
        let p = problems(&o);
        assert!(
            p.iter().all(|x| x.starts_with("lost-write")),
            "seed {seed}: {p:#?}"
        );
        lost += p.len();
    }
    assert!(lost > 0, "concurrent whole-value appends must lose some");
}

#[test]
fn bug_variants_break_what_they_should() {
    let cases = [
        (Bug::NoLoopGuard, "duplicate"),
        (Bug::NoAntiEntropy, "lost-write"),
        (Bug::ForgetOnCrash, "lost-write"),
    ];
    for (bug, expect) in cases {
        let found = (0..6).any(|seed| {
            let cfg = Config {
                bug: Some(bug),
                ..correct(Strategy::Crdt, Topology::Mesh, 0, false)
            };
            problems(&run(cfg, seed, 400))
                .iter()
                .any(|p| p.starts_with(expect))
        });
        assert!(found, "{bug}: no {expect} in 6 seeds");
    }
}
