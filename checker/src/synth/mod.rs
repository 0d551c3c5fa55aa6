//! Synthetic histories of a correct merge-or-last-write-wins system, for
//! users (`ladon gen-history`), property tests and benchmarks, optionally
//! with exactly one anomaly injected (`inject`).
//!
//! The system modelled: every applied write joins one global log; each node
//! has applied a prefix of it (lagging by a per-node delay, frozen while the
//! node is partitioned) plus its own writes. Reads see that. Lists and sets
//! keep log order, counters add, and a register key has a single writer
//! process slot so last-write-wins (log order) never discards a concurrent
//! acknowledged write. Such a system is causally consistent and converges, so
//! its histories have no anomaly at all.
//!
//! With [`GenOptions::keys`] set, every process draws its keys from one pool
//! of that many keys, registers included (the shape of a database test: few
//! keys, many writers each, last-write-wins by log order). Such a history is
//! still causally consistent (a read sees the latest write of its node's
//! view, a prefix of the log plus the node's own writes, and views only
//! grow), but concurrent register writes are discarded: `conflict-loss`,
//! which only `no-conflict-loss` forbids.

pub mod inject;
pub mod linreg;
mod out;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::history::{Key, KeyKind, Mop, ReadValue};
use crate::report::Anomaly;
pub use out::Out;

/// The four workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Register,
    ListAppend,
    Set,
    Counter,
}

impl Workload {
    pub fn parse(s: &str) -> Result<Workload, String> {
        Ok(match s {
            "register" => Workload::Register,
            "list-append" | "list" => Workload::ListAppend,
            "set" => Workload::Set,
            "counter" => Workload::Counter,
            _ => {
                return Err(format!(
                    "unknown workload {s:?}; expected register, list-append, set or counter"
                ))
            }
        })
    }

    pub fn kind(self) -> KeyKind {
        match self {
            Workload::Register => KeyKind::Register,
            Workload::ListAppend => KeyKind::List,
            Workload::Set => KeyKind::Set,
            Workload::Counter => KeyKind::Counter,
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub workload: Workload,
    /// Transactions in the main phase.
    pub ops: u64,
    pub processes: u32,
    pub nodes: u32,
    pub seed: u64,
    pub inject: Option<Anomaly>,
    /// Writes per key before it is retired (`u32::MAX`: never).
    pub max_writes_per_key: u32,
    /// Keys written at a time, shared by every process (registers too);
    /// `None`: the processes' count clamped to 2..=16, and one writer
    /// process per register key.
    pub keys: Option<u32>,
    /// Micro-operations per transaction; `None`: 1 to 3 at random.
    pub mops: Option<u32>,
    /// Share of micro-operations that read.
    pub read_share: f64,
    /// Probability that an operation fails, and that one is indeterminate.
    pub fail_rate: f64,
    pub info_rate: f64,
}

impl GenOptions {
    pub fn new(workload: Workload, ops: u64, processes: u32, nodes: u32, seed: u64) -> Self {
        GenOptions {
            workload,
            ops,
            processes,
            nodes,
            seed,
            inject: None,
            max_writes_per_key: 32,
            keys: None,
            mops: None,
            read_share: 0.5,
            fail_rate: 0.005,
            info_rate: 0.005,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Default)]
pub struct GenSummary {
    pub events: u64,
    pub ops: u64,
    pub keys: u64,
}

struct Entry {
    pos: u64,
    val: i64,
    node: u16,
}

#[derive(Default)]
struct KeyState {
    entries: Vec<Entry>,
    /// Per node: 1 + the index in `entries` of its latest write (0: none).
    latest_of_node: Vec<usize>,
    writes: u32,
}

struct Slot {
    pid: u64,
    node: u16,
    pending: Vec<Mop>,
    invoked_at: u64,
    /// Register workload: the key this slot writes.
    own_key: i64,
}

/// The modelled system.
pub(crate) struct System {
    log_times: Vec<u64>,
    keys: Vec<KeyState>,
    prefix: Vec<usize>,
    lag: Vec<u64>,
    frozen: Vec<Option<u64>>,
}

impl System {
    fn advance(&mut self, t: u64) {
        for n in 0..self.prefix.len() {
            let mut horizon = t.saturating_sub(self.lag[n]);
            if let Some(f) = self.frozen[n] {
                horizon = horizon.min(f);
            }
            while self.prefix[n] < self.log_times.len() && self.log_times[self.prefix[n]] <= horizon
            {
                self.prefix[n] += 1;
            }
        }
    }

    fn apply(&mut self, t: u64, node: u16, key: i64, val: i64) {
        let pos = self.log_times.len() as u64;
        self.log_times.push(t);
        let k = &mut self.keys[key as usize];
        k.entries.push(Entry { pos, val, node });
        if k.latest_of_node.len() <= node as usize {
            k.latest_of_node.resize(node as usize + 1, 0);
        }
        k.latest_of_node[node as usize] = k.entries.len();
    }

    fn read(&self, kind: KeyKind, node: u16, key: i64) -> ReadValue {
        let Some(k) = self.keys.get(key as usize) else {
            return ReadValue::Null;
        };
        let prefix = self.prefix[node as usize] as u64;
        if kind == KeyKind::Register {
            // The latest visible entry: the last of the node's prefix or
            // the node's own latest write, whichever is later (a binary
            // search, so hot keys cost no scan per read).
            let in_prefix = k.entries.partition_point(|e| e.pos < prefix);
            let own = k.latest_of_node.get(node as usize).copied().unwrap_or(0);
            return match in_prefix.max(own) {
                0 => ReadValue::Null,
                i => ReadValue::Int(k.entries[i - 1].val),
            };
        }
        let visible = k
            .entries
            .iter()
            .filter(|e| e.pos < prefix || e.node == node);
        match kind {
            KeyKind::Counter => ReadValue::Int(visible.map(|e| e.val).sum()),
            KeyKind::Register => unreachable!("registers return above"),
            KeyKind::List | KeyKind::Set => {
                let v: Vec<i64> = visible.map(|e| e.val).collect();
                if v.is_empty() {
                    ReadValue::Null
                } else {
                    ReadValue::List(v)
                }
            }
        }
    }
}

fn node_name(n: u16) -> String {
    format!("n{}", n + 1)
}

/// Writes a history to `w`.
pub fn generate<W: Write>(opts: &GenOptions, w: W) -> io::Result<GenSummary> {
    if opts.processes == 0 || opts.nodes == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--processes and --nodes must be at least 1",
        ));
    }
    if opts.keys == Some(0) || opts.mops == Some(0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--keys and --mops must be at least 1",
        ));
    }
    if !(0.0..=1.0).contains(&opts.read_share) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--read-share must be between 0 and 1",
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut out = Out::new(w, opts.nodes);
    let kind = opts.workload.kind();
    let nodes = opts.nodes as usize;
    let mut sys = System {
        log_times: Vec::new(),
        keys: Vec::new(),
        prefix: vec![0; nodes],
        lag: (0..nodes)
            .map(|_| rng.random_range(100_000..2_000_000))
            .collect(),
        frozen: vec![None; nodes],
    };
    let mut next_key: i64 = 0;
    let mut fresh_key = |sys: &mut System| {
        let k = next_key;
        next_key += 1;
        sys.keys.push(KeyState::default());
        k
    };
    let mut next_val: i64 = 1;
    // Registers get one writer process slot per key unless keys are shared.
    let own_keys = kind == KeyKind::Register && opts.keys.is_none();
    let active_n = match opts.keys {
        Some(k) => k as usize,
        None => (opts.processes as usize).clamp(2, 16),
    };
    let write_share = 1.0 - opts.read_share;
    let mut active: Vec<i64> = (0..active_n).map(|_| fresh_key(&mut sys)).collect();
    let mut slots: Vec<Slot> = (0..opts.processes)
        .map(|p| Slot {
            pid: p as u64,
            node: (p % opts.nodes) as u16,
            pending: Vec::new(),
            invoked_at: 0,
            own_key: if own_keys { fresh_key(&mut sys) } else { -1 },
        })
        .collect();
    let mut next_pid = opts.processes as u64;
    let mut heap: BinaryHeap<Reverse<(u64, u64, u32, bool)>> = BinaryHeap::new();
    let mut tie = 0u64;
    for s in 0..opts.processes {
        heap.push(Reverse((rng.random_range(0..1_000_000), tie, s, true)));
        tie += 1;
    }
    let mut invoked = 0u64;
    let mut partitioned = false;
    let mut now = 0u64;
    while let Some(Reverse((t, _, s, is_invoke))) = heap.pop() {
        now = t;
        sys.advance(t);
        if is_invoke {
            if invoked >= opts.ops {
                continue;
            }
            // n1 is cut off for the last third of the test; the heal comes
            // when the writes stop, right before the final phase.
            if nodes > 1 && !partitioned && invoked >= 2 * opts.ops / 3 {
                partitioned = true;
                sys.frozen[0] = Some(t);
                let rest: Vec<String> = (1..nodes as u16).map(node_name).collect();
                out.nemesis(
                    t,
                    "partition",
                    &format!("[[\"n1\"],{}]", serde_json::to_string(&rest).expect("json")),
                )?;
            }
            invoked += 1;
            let n_mops = match opts.mops {
                Some(m) => m,
                None => rng.random_range(1..=3),
            };
            slots[s as usize].pending.clear();
            for _ in 0..n_mops {
                let write = rng.random_bool(write_share);
                let key = if own_keys && write {
                    let own = slots[s as usize].own_key;
                    if sys.keys[own as usize].writes >= opts.max_writes_per_key {
                        slots[s as usize].own_key = fresh_key(&mut sys);
                    }
                    slots[s as usize].own_key
                } else if own_keys {
                    // read some slot's register
                    let other = rng.random_range(0..opts.processes) as usize;
                    slots[other].own_key
                } else {
                    let i = rng.random_range(0..active.len());
                    if write && sys.keys[active[i] as usize].writes >= opts.max_writes_per_key {
                        active[i] = fresh_key(&mut sys);
                    }
                    active[i]
                };
                let slot = &mut slots[s as usize];
                if write {
                    sys.keys[key as usize].writes += 1;
                    let v = next_val;
                    next_val += 1;
                    slot.pending.push(match kind {
                        KeyKind::Register => Mop::Write(Key::Int(key), v),
                        KeyKind::List => Mop::Append(Key::Int(key), v),
                        KeyKind::Set => Mop::Add(Key::Int(key), v),
                        KeyKind::Counter => Mop::Incr(Key::Int(key), rng.random_range(1..=5)),
                    });
                } else {
                    slot.pending.push(Mop::Read(Key::Int(key), ReadValue::Null));
                }
            }
            let slot = &mut slots[s as usize];
            slot.invoked_at = t;
            out.client(t, "invoke", slot.pid, slot.node, "txn", &slot.pending, None)?;
            let latency = rng.random_range(200_000..3_000_000);
            heap.push(Reverse((t + latency, tie, s, false)));
            tie += 1;
        } else {
            let roll: f64 = rng.random();
            let outcome = if roll < opts.fail_rate {
                "fail"
            } else if roll < opts.fail_rate + opts.info_rate {
                "info"
            } else {
                "ok"
            };
            let applies = outcome == "ok" || (outcome == "info" && rng.random_bool(0.5));
            let slot = &mut slots[s as usize];
            let node = slot.node;
            let mut mops = std::mem::take(&mut slot.pending);
            if applies {
                for m in mops.iter_mut() {
                    match m {
                        Mop::Read(k, v) => {
                            if outcome == "ok" {
                                let Key::Int(ki) = k else {
                                    unreachable!("integer keys")
                                };
                                *v = sys.read(kind, node, *ki);
                            }
                        }
                        Mop::Write(Key::Int(k), v)
                        | Mop::Append(Key::Int(k), v)
                        | Mop::Add(Key::Int(k), v)
                        | Mop::Incr(Key::Int(k), v) => sys.apply(t, node, *k, *v),
                        _ => unreachable!("integer keys"),
                    }
                }
            }
            let slot = &mut slots[s as usize];
            out.client(t, outcome, slot.pid, node, "txn", &mops, None)?;
            if outcome == "info" {
                // A fresh process id; for registers also a fresh key, so the
                // new process never overwrites its predecessor's writes
                // without having seen them.
                slot.pid = next_pid;
                next_pid += 1;
                if own_keys {
                    slot.own_key = fresh_key(&mut sys);
                }
            }
            slot.pending = mops;
            let think = rng.random_range(0..500_000);
            heap.push(Reverse((t + think, tie, s, true)));
            tie += 1;
        }
    }
    if partitioned {
        sys.frozen[0] = None;
        out.nemesis(now, "heal", "null")?;
    }
    // The injected scenario, on fresh processes and keys.
    let mut scenario = inject::Scenario::default();
    if let Some(a) = opts.inject {
        let mut ctx = inject::Ctx {
            out: &mut out,
            time: now + 1_000_000,
            next_pid: &mut next_pid,
            next_val: &mut next_val,
            workload: opts.workload,
            nodes: opts.nodes as u16,
        };
        scenario = inject::inject(a, &mut ctx)?;
        now = ctx.time;
    }
    // The final phase: two rounds; the first may still see lag, the second
    // comes after every node has caught up.
    let written: Vec<i64> = (0..next_key)
        .filter(|&k| sys.keys[k as usize].writes > 0)
        .collect();
    for (round, delay) in [(0, 1_000_000u64), (1, 20_000_000)] {
        let t0 = now + delay;
        sys.advance(t0);
        let _ = round;
        for n in 0..opts.nodes as u16 {
            let pid = next_pid;
            next_pid += 1;
            let t = t0 + n as u64 * 1000;
            let mut mops: Vec<Mop> = written
                .iter()
                .map(|&k| Mop::Read(Key::Int(k), ReadValue::Null))
                .collect();
            mops.extend(
                scenario
                    .finals
                    .iter()
                    .map(|(k, _)| Mop::Read(k.clone(), ReadValue::Null)),
            );
            out.client(t, "invoke", pid, n, "final", &mops, None)?;
            for m in mops.iter_mut() {
                if let Mop::Read(k, v) = m {
                    *v = match k {
                        Key::Int(ki)
                            if (*ki as usize) < sys.keys.len()
                                && written.binary_search(ki).is_ok() =>
                        {
                            sys.read(kind, n, *ki)
                        }
                        _ => scenario
                            .finals
                            .iter()
                            .find(|(sk, _)| sk == k)
                            .map(|(_, per_node)| per_node[n as usize].clone())
                            .unwrap_or(ReadValue::Null),
                    };
                }
            }
            out.client(t + 500, "ok", pid, n, "final", &mops, None)?;
        }
        now = t0 + opts.nodes as u64 * 1000;
    }
    let events = out.finish()?;
    Ok(GenSummary {
        events,
        ops: invoked,
        keys: next_key as u64,
    })
}

/// A generated history in memory (for tests).
pub fn generate_vec(opts: &GenOptions) -> Vec<u8> {
    let mut v = Vec::new();
    generate(opts, &mut v).expect("writing to memory");
    v
}
