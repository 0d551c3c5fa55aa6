//! Small histories for unit tests.

use crate::check::{check_history, CheckOptions};
use crate::model::History;
use crate::report::{Anomaly, Guarantee, Report};
use crate::synth::linreg::{generate_lin_kv_vec, LinGenOptions};

/// A generated `lin-kv` history (3 nodes) of `ops` operations over `keys`
/// keys from `clients` clients, `info_rate` of them indeterminate.
pub fn lin_kv_history(seed: u64, ops: u64, keys: u32, clients: u32, info_rate: f64) -> History {
    let bytes = generate_lin_kv_vec(&LinGenOptions {
        ops,
        keys,
        clients,
        nodes: 3,
        info_rate,
        seed,
    });
    read(&bytes)
}

/// A generated register history of `ops` transactions of `mops`
/// operations over `keys` hot keys (no limit on writes per key) from
/// `processes` sessions on 3 nodes, none failed, `info_rate` of them
/// indeterminate.
pub fn hot_register(
    seed: u64,
    ops: u64,
    keys: u32,
    processes: u32,
    mops: u32,
    info_rate: f64,
) -> History {
    let mut o =
        crate::synth::GenOptions::new(crate::synth::Workload::Register, ops, processes, 3, seed);
    o.fail_rate = 0.0;
    o.info_rate = info_rate;
    o.mops = Some(mops);
    o.keys = Some(keys);
    o.max_writes_per_key = u32::MAX;
    generated(&o)
}

/// `h`'s key index, every write recorded and the index finished, and its
/// causality graph.
pub fn indexed(h: &History) -> (crate::keys::KeyIndex, crate::causality::Causality) {
    use crate::causality::{session, Causality, ReadsFrom, Writers};
    let (seq, prev) = session(h);
    let mut idx = crate::keys::KeyIndex::new(h, &seq);
    let rf = ReadsFrom::new(h, &Writers::new(h, &seq));
    let c = Causality::build(h, seq, prev, rf, |op, clock, c| idx.record(h, c, op, clock));
    idx.finish(h);
    (idx, c)
}

/// The history `o` generates.
pub fn generated(o: &crate::synth::GenOptions) -> History {
    read(&crate::synth::generate_vec(o))
}

fn read(bytes: &[u8]) -> History {
    crate::reader::read_history(bytes)
        .map_err(|_| "invalid")
        .expect("a generated history is valid")
}

/// A history from `(process, node, f, value)` operations, each invoked and
/// completed `ok` in turn (reads carry `null` on invoke), with times equal
/// to line indices.
pub fn history(ops: &[(u64, &str, &str, &str)]) -> History {
    let mut text = String::new();
    for (i, (p, node, f, value)) in ops.iter().enumerate() {
        for (j, (kind, v)) in [("invoke", nulls(value)), ("ok", value.to_string())]
            .iter()
            .enumerate()
        {
            let index = 2 * i + j;
            text.push_str(&format!(
                "{{\"index\":{index},\"time\":{index},\"type\":\"{kind}\",\"process\":{p},\"node\":\"{node}\",\"f\":\"{f}\",\"value\":{v}}}\n"
            ));
        }
    }
    crate::reader::read_history(text.as_bytes())
        .map_err(|e| format!("{:?}", e.map(|e| e.message)))
        .expect("a valid history")
}

/// The invoke form of a value: reads carry `null`.
fn nulls(v: &str) -> String {
    let parsed: serde_json::Value = serde_json::from_str(v).expect("json");
    let mops: Vec<serde_json::Value> = parsed
        .as_array()
        .expect("mops")
        .iter()
        .map(|m| {
            let mut m = m.as_array().expect("mop").clone();
            if m[0] == "r" {
                m[2] = serde_json::Value::Null;
            }
            serde_json::Value::Array(m)
        })
        .collect();
    serde_json::to_string(&mops).expect("json")
}

/// Checks `ops` under every guarantee but `linearizable`.
pub fn check(ops: &[(u64, &str, &str, &str)]) -> Report {
    let opts = CheckOptions {
        guarantees: Guarantee::ASYNC.to_vec(),
        ..CheckOptions::default()
    };
    check_history(&history(ops), &opts)
}

/// The anomalies found, with their counts, by name.
pub fn found(r: &Report) -> Vec<(Anomaly, u64)> {
    r.anomalies.iter().map(|(a, f)| (*a, f.count)).collect()
}
