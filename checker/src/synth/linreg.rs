//! Synthetic `lin-kv`-shaped histories of a linearizable register store, for
//! `ladon gen-history --linearizable` and the linearizability benchmarks:
//! clients read or write (half each) a random key; each operation takes
//! effect at a random instant inside its interval on one atomic register per
//! key; a share of them end `info` (half of those take effect, the process
//! id is retired); then a heal and one final read of every key per node.

use std::io::{self, Write};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Out;
use crate::history::{Key, Mop, ReadValue};

/// What to generate.
#[derive(Debug, Clone)]
pub struct LinGenOptions {
    pub ops: u64,
    pub keys: u32,
    pub clients: u32,
    pub nodes: u32,
    pub info_rate: f64,
    pub seed: u64,
}

struct Planned {
    invoke: u64,
    point: u64,
    complete: u64,
    client: u32,
    key: u32,
    write: Option<i64>,
    info: bool,
    takes_effect: bool,
    read: ReadValue,
}

/// Writes the history; returns the number of events.
pub fn generate_lin_kv<W: Write>(o: &LinGenOptions, w: W) -> io::Result<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let (keys, clients, nodes) = (o.keys.max(1), o.clients.max(1), o.nodes.max(1));
    let mut clock = vec![0u64; clients as usize];
    let mut plan: Vec<Planned> = Vec::with_capacity(o.ops as usize);
    let mut next_val = vec![1i64; keys as usize];
    for _ in 0..o.ops {
        let c = rng.random_range(0..clients);
        let invoke = clock[c as usize] + rng.random_range(1..1_000_000u64);
        let point = invoke + rng.random_range(0..2_000_000u64);
        let complete = point + rng.random_range(1..2_000_000u64);
        clock[c as usize] = complete;
        let key = rng.random_range(0..keys);
        let write = rng.random_bool(0.5).then(|| {
            let v = next_val[key as usize];
            next_val[key as usize] += 1;
            v
        });
        let info = rng.random_bool(o.info_rate.clamp(0.0, 1.0));
        let takes_effect = !info || rng.random_bool(0.5);
        plan.push(Planned {
            invoke,
            point,
            complete,
            client: c,
            key,
            write,
            info,
            takes_effect,
            read: ReadValue::Null,
        });
    }
    // Apply in linearization order.
    let mut by_point: Vec<u32> = (0..plan.len() as u32).collect();
    by_point.sort_by_key(|&i| (plan[i as usize].point, i));
    let mut reg: Vec<Option<i64>> = vec![None; keys as usize];
    for &i in &by_point {
        let p = &mut plan[i as usize];
        match p.write {
            Some(v) if p.takes_effect => reg[p.key as usize] = Some(v),
            Some(_) => {}
            None => p.read = reg[p.key as usize].map_or(ReadValue::Null, ReadValue::Int),
        }
    }
    // Events in time order; a process id per client, renewed after `info`.
    let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * plan.len());
    for (i, p) in plan.iter().enumerate() {
        events.push((p.invoke, false, i as u32));
        events.push((p.complete, true, i as u32));
    }
    events.sort_unstable();
    let mut out = Out::new(io::BufWriter::new(w), nodes);
    let mut pid: Vec<u64> = (0..clients as u64).collect();
    let mut next_pid = clients as u64;
    let mut last = 0;
    for (t, done, i) in events {
        let p = &plan[i as usize];
        let k = Key::Int(p.key as i64);
        let mop = match p.write {
            Some(v) => Mop::Write(k, v),
            None => Mop::Read(k, p.read.clone()),
        };
        let node = (p.client % nodes) as u16;
        let id = pid[p.client as usize];
        let ty = match (done, p.info) {
            (false, _) => "invoke",
            (true, false) => "ok",
            (true, true) => "info",
        };
        out.client(t, ty, id, node, "txn", &[mop], None)?;
        if done && p.info {
            pid[p.client as usize] = next_pid;
            next_pid += 1;
        }
        last = t;
    }
    let mut t = last + 1_000_000;
    out.nemesis(t, "heal", "null")?;
    let finals: Vec<Mop> = (0..keys)
        .map(|k| {
            Mop::Read(
                Key::Int(k as i64),
                reg[k as usize].map_or(ReadValue::Null, ReadValue::Int),
            )
        })
        .collect();
    for n in 0..nodes {
        let id = next_pid + n as u64;
        t += 1_000_000;
        out.client(t, "invoke", id, n as u16, "final", &finals, None)?;
        t += 1_000_000;
        out.client(t, "ok", id, n as u16, "final", &finals, None)?;
    }
    out.finish()
}

/// [`generate_lin_kv`] into memory.
pub fn generate_lin_kv_vec(o: &LinGenOptions) -> Vec<u8> {
    let mut v = Vec::new();
    generate_lin_kv(o, &mut v).expect("writing to memory");
    v
}
