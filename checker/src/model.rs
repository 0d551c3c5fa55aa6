//! The compact, validated form of a history that every analysis reads:
//! operations (an invoke paired with its completion), micro-operations and
//! observed values in flat arrays, keys, processes and nodes interned to small
//! integers. [`Builder`] consumes events one at a time, enforcing every rule of
//! `shared/spec/history.md`, so a file never has to be held as `Event`s.

use std::fmt;

use serde_json::Value as Json;

pub use crate::ids::{IdVec, KeyId, MopId, OpId, ProcId};

use crate::history::{Event, EventType, Key, KeyKind, MopFn, Process, F_FINAL, F_TXN};
use crate::view::{ClientEvent, KeyRef, MopView, ReadRef};
use rustc_hash::FxHashMap;

/// "No such thing" for the `u32` indices that are not ids (see
/// [`crate::ids`] for the ids' own `NONE`s).
pub const NONE: u32 = u32::MAX;

/// Integer keys below this are interned through a table indexed by value.
const DENSE_KEYS: i64 = 1 << 22;

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail,
    /// Indeterminate: an `info` completion, or no completion at all.
    Info,
}

/// One client operation: an invoke and its completion.
#[derive(Debug, Clone)]
pub struct Op {
    pub process: ProcId,
    pub node: u16,
    pub outcome: Outcome,
    pub is_final: bool,
    pub completed: bool,
    pub invoke_index: u64,
    pub complete_index: u64,
    pub invoke_time: u64,
    pub complete_time: u64,
    pub mops_start: MopId,
    pub mops_end: MopId,
    /// `meta.ts` of the completion (or the invoke), when it is an integer;
    /// [`NO_TS`] when not (see [`Op::ts`]; kept unboxed to keep `Op` small).
    ts: i64,
}

/// `Op::ts` when there is no integer `meta.ts` (`i64::MIN` itself is read
/// as absent, a value no clock gives).
const NO_TS: i64 = i64::MIN;

impl Op {
    /// Whether the operation is a vertex of the causality graph.
    pub fn is_vertex(&self) -> bool {
        self.outcome != Outcome::Fail
    }

    /// The history index naming this operation: its completion, or its
    /// invoke when it never completed.
    pub fn index(&self) -> u64 {
        self.complete_index
    }

    pub fn mops(&self) -> std::ops::Range<usize> {
        self.mops_start.index()..self.mops_end.index()
    }

    /// Its micro-operations' ids.
    pub fn mop_ids(&self) -> impl DoubleEndedIterator<Item = MopId> + ExactSizeIterator {
        self.mops().map(MopId::new)
    }

    /// `meta.ts` of the completion (or the invoke), when it is an integer.
    pub fn ts(&self) -> Option<i64> {
        (self.ts != NO_TS).then_some(self.ts)
    }
}

/// What a read micro-operation observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObsKind {
    /// Not a read.
    NotRead,
    Null,
    Int,
    List,
}

/// One micro-operation.
#[derive(Debug, Clone)]
pub struct MopRec {
    pub op: OpId,
    pub key: KeyId,
    pub f: MopFn,
    /// The written value or delta (writes only).
    pub arg: i64,
    pub obs: ObsKind,
    /// Observed values live in `History::vals[obs_start..obs_start + obs_len]`.
    pub obs_start: u32,
    pub obs_len: u32,
}

impl MopRec {
    pub fn is_write(&self) -> bool {
        self.f != MopFn::Read
    }
    pub fn obs_range(&self) -> std::ops::Range<usize> {
        self.obs_start as usize..(self.obs_start + self.obs_len) as usize
    }
}

/// A fault the nemesis injected.
#[derive(Debug, Clone)]
pub struct NemesisEvent {
    pub index: u64,
    pub time: u64,
    pub f: String,
    pub value: Json,
}

/// A validated history in compact form.
#[derive(Debug, Default)]
pub struct History {
    pub ops: IdVec<OpId, Op>,
    pub mops: IdVec<MopId, MopRec>,
    pub vals: Vec<i64>,
    /// For each observed value in `vals`, the write micro-operation that wrote
    /// it, or `MopId::NONE` (phantom, or a counter value). Filled by `History::resolve`.
    pub resolved: Vec<MopId>,
    pub keys: IdVec<KeyId, Key>,
    pub key_kind: IdVec<KeyId, Option<KeyKind>>,
    /// Every write micro-operation per key (any outcome), in history order.
    pub key_writes: IdVec<KeyId, Vec<MopId>>,
    /// The original process ids.
    pub processes: IdVec<ProcId, u64>,
    pub nodes: Vec<String>,
    pub nemesis: Vec<NemesisEvent>,
    pub events: u64,
    /// What a plain read returns of a key with siblings, as an ok final
    /// read's `meta.winners` says (`[[key, value], …]`), by that read's
    /// micro-operation; sorted by micro-operation once built.
    pub winners: Vec<(MopId, i64)>,
}

impl History {
    pub fn key(&self, k: KeyId) -> &Key {
        &self.keys[k]
    }
    pub fn node(&self, n: u16) -> &str {
        &self.nodes[n as usize]
    }
    pub fn process_id(&self, p: ProcId) -> u64 {
        self.processes[p]
    }
    pub fn op_of(&self, mop: MopId) -> &Op {
        &self.ops[self.mops[mop].op]
    }
    /// The value the final read `mop` names as its key's winner
    /// (`meta.winners`), if it names one.
    pub fn winner(&self, mop: MopId) -> Option<i64> {
        self.winners
            .binary_search_by_key(&mop, |&(m, _)| m)
            .ok()
            .map(|i| self.winners[i].1)
    }
    pub fn obs(&self, m: &MopRec) -> &[i64] {
        &self.vals[m.obs_range()]
    }
    pub fn obs_writes(&self, m: &MopRec) -> &[MopId] {
        &self.resolved[m.obs_range()]
    }

    /// Per key, its written values sorted with their write
    /// micro-operations (`(start, table)`: key `k` owns
    /// `table[start[k]..start[k + 1]]`). Counters have none.
    fn write_tables(&self) -> (IdVec<KeyId, u32>, Vec<(i64, MopId)>) {
        let mut start = IdVec::from_vec(Vec::with_capacity(self.keys.len() + 1));
        let mut table: Vec<(i64, MopId)> = Vec::with_capacity(self.mops.len() / 2);
        start.push(0u32);
        for (k, ws) in self.key_writes.iter_enumerated() {
            if self.key_kind[k] != Some(KeyKind::Counter) {
                let s = table.len();
                // Deletes write no value: a read never resolves to one.
                table.extend(
                    ws.iter()
                        .filter(|&&w| self.mops[w].f != MopFn::Delete)
                        .map(|&w| (self.mops[w].arg, w)),
                );
                table[s..].sort_unstable();
            }
            start.push(table.len() as u32);
        }
        (start, table)
    }

    /// The first write (in history order) of a value its key already had:
    /// `(second write, first write)`, from the sorted tables.
    fn first_duplicate(&self, start: &[u32], table: &[(i64, MopId)]) -> Option<(MopId, MopId)> {
        let mut first: Option<(MopId, MopId)> = None;
        for k in 0..self.keys.len() {
            let t = &table[start[k] as usize..start[k + 1] as usize];
            for pair in t.windows(2) {
                if pair[0].0 == pair[1].0 && first.is_none_or(|(w, _)| pair[1].1 < w) {
                    first = Some((pair[1].1, pair[0].1));
                }
            }
        }
        first
    }

    /// Maps every observed value of a register, list or set read to the
    /// write that produced it, through the per-key sorted tables (a key
    /// holds few writes, so a binary search in one small slice beats
    /// hashing). List reads share stored values, so each stored value is
    /// looked up once: the first read that covers it resolves it.
    ///
    /// Large histories resolve on two threads, each the stored values of
    /// one half of `vals` (disjoint: every value is looked up once either
    /// way); the searches, cache misses in tables of thousands of writes
    /// per key, were the builder's longest single-threaded step.
    fn resolve(&mut self, start: &[u32], table: &[(i64, MopId)]) {
        let n = self.vals.len();
        self.resolve_split(start, table, (n >= PARALLEL_RESOLVE).then_some(n / 2));
    }

    /// [`History::resolve`], in two halves split at stored value `split`.
    fn resolve_split(&mut self, start: &[u32], table: &[(i64, MopId)], split: Option<usize>) {
        let mut resolved = vec![UNSET; self.vals.len()];
        let (mops, vals) = (&self.mops[..], &self.vals[..]);
        if let Some(mid) = split {
            let (a, b) = resolved.split_at_mut(mid);
            std::thread::scope(|s| {
                s.spawn(|| resolve_range(mops, vals, start, table, mid, b));
                resolve_range(mops, vals, start, table, 0, a);
            });
        } else {
            resolve_range(mops, vals, start, table, 0, &mut resolved);
        }
        self.resolved = resolved;
    }
}

/// Not yet resolved (see [`History::resolve`]).
const UNSET: MopId = MopId(u32::MAX - 1);

/// Stored values from which [`History::resolve`] splits over two threads.
const PARALLEL_RESOLVE: usize = 1 << 20;

/// Resolves the stored values `vals[from..from + out.len()]` into `out`
/// (see [`History::resolve`]): every read's values in that range, each
/// looked up once; values no read covers resolve to no write.
fn resolve_range(
    mops: &[MopRec],
    vals: &[i64],
    start: &[u32],
    table: &[(i64, MopId)],
    from: usize,
    out: &mut [MopId],
) {
    let to = from + out.len();
    for m in mops {
        let k = m.key.index();
        if m.obs_len == 0 || start[k] == start[k + 1] {
            continue;
        }
        let r = m.obs_range();
        let (a, b) = (r.start.max(from), r.end.min(to));
        if a >= b {
            continue;
        }
        let t = &table[start[k] as usize..start[k + 1] as usize];
        for (slot, &v) in out[a - from..b - from].iter_mut().zip(&vals[a..b]) {
            if *slot == UNSET {
                *slot = t
                    .binary_search_by_key(&v, |e| e.0)
                    .map_or(MopId::NONE, |j| t[j].1);
            }
        }
    }
    // Slots no read covers (room kept for a list to grow): no write.
    for slot in out {
        if *slot == UNSET {
            *slot = MopId::NONE;
        }
    }
}

/// Most branches kept per key for sharing list reads (see [`Builder::place_list`]).
const MAX_BRANCHES: usize = 8;

/// A region of `History::vals` that list reads of one key share: every
/// read whose list is a prefix of `vals[start..start + len]` points into
/// it; `cap` is the room reserved for it to grow in place.
#[derive(Debug, Clone, Copy)]
struct Branch {
    start: u32,
    len: u32,
    cap: u32,
    /// When a read last used it (`Builder::tick`), for replacement.
    used: u32,
}

/// The first rule of `history.md` a history breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct InvalidHistory {
    /// 1-based line number.
    pub line: u64,
    pub message: String,
}

fn invalid<T>(line: u64, message: impl Into<String>) -> Result<T, InvalidHistory> {
    Err(InvalidHistory {
        line,
        message: message.into(),
    })
}

struct ProcState {
    /// The outstanding operation.
    pending: OpId,
    /// Line of the info completion that retired this id, or 0.
    retired_at: u64,
}

/// Validates events one at a time and builds a [`History`].
#[derive(Default)]
pub struct Builder {
    h: History,
    /// Integer keys 0.. below `DENSE_KEYS`, by value (`KeyId::NONE` when unseen).
    dense_keys: Vec<KeyId>,
    int_keys: FxHashMap<i64, KeyId>,
    str_keys: FxHashMap<String, KeyId>,
    proc_ids: FxHashMap<u64, ProcId>,
    procs: IdVec<ProcId, ProcState>,
    node_ids: FxHashMap<String, u16>,
    last_time: u64,
    /// The line of each key's first write, for error messages.
    key_first_write: IdVec<KeyId, u64>,
    /// Per key, the lists its reads share (at most [`MAX_BRANCHES`]).
    branches: IdVec<KeyId, Vec<Branch>>,
    /// Counts list reads, to find the least recently used branch.
    tick: u32,
}

impl Builder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder sized for a file of `bytes` bytes (typical JSON Lines
    /// spend ~200 bytes per operation, 40-100 per micro-operation and ~10
    /// per observed value), so the flat arrays do not grow by copying: a
    /// regrowth copies the array into fresh memory, without the huge-page
    /// advice (`hot-4m-4op`: 82 bytes per micro-operation, and growing 13M
    /// reserved to 16M cost about 0.5 s of page faults and copying on the
    /// builder's thread). Capacity never written costs no memory.
    pub fn with_size_hint(bytes: u64) -> Self {
        let mut b = Self::default();
        let bytes = bytes.min(1 << 40) as usize;
        b.h.ops.reserve(bytes / 200);
        b.h.mops.reserve(bytes / 40);
        b.h.vals.reserve(bytes / 40);
        crate::mem::advise_huge(&b.h.ops);
        crate::mem::advise_huge(&b.h.mops);
        crate::mem::advise_huge(&b.h.vals);
        b
    }

    fn intern_key(&mut self, k: KeyRef) -> KeyId {
        match k {
            KeyRef::Int(i) if (0..DENSE_KEYS).contains(&i) => {
                let i = i as usize;
                if let Some(&id) = self.dense_keys.get(i) {
                    if !id.is_none() {
                        return id;
                    }
                } else {
                    let len = (i + 1).max(self.dense_keys.len() * 2);
                    self.dense_keys.resize(len, KeyId::NONE);
                }
                let id = self.new_key(k);
                self.dense_keys[i] = id;
                id
            }
            KeyRef::Int(i) => {
                if let Some(&id) = self.int_keys.get(&i) {
                    return id;
                }
                let id = self.new_key(k);
                self.int_keys.insert(i, id);
                id
            }
            KeyRef::Str(s) => {
                if let Some(&id) = self.str_keys.get(s) {
                    return id;
                }
                let id = self.new_key(k);
                self.str_keys.insert(s.to_string(), id);
                id
            }
        }
    }

    fn new_key(&mut self, k: KeyRef) -> KeyId {
        let id = self.h.keys.push_id(k.to_key());
        self.h.key_kind.push(None);
        self.h.key_writes.push(Vec::new());
        self.key_first_write.push(0);
        self.branches.push(Vec::new());
        id
    }

    /// Stores the observed list `xs` of key `key` and returns where it
    /// starts in `vals`. Reads of a key mostly see prefixes of a few
    /// growing lists (one per order the nodes agree on), so a list that is
    /// a prefix of a kept branch shares it, and one that extends a branch
    /// grows it (in place while it has room, else moved with room to double).
    /// A list that fits no branch is copied as it is and replaces the
    /// branch least recently used. The values take memory in proportion to
    /// the distinct lists, not to every read's length, and never much more
    /// than the reads themselves.
    fn place_list(&mut self, key: KeyId, xs: &[i64]) -> u32 {
        self.tick = self.tick.wrapping_add(1);
        let vals = &mut self.h.vals;
        let branches = &mut self.branches[key];
        for b in branches.iter_mut() {
            let (start, len) = (b.start as usize, b.len as usize);
            let common = xs.len().min(len);
            if vals[start..start + common] != xs[..common] {
                continue;
            }
            b.used = self.tick;
            if xs.len() > len {
                if xs.len() <= b.cap as usize {
                    vals[start + len..start + xs.len()].copy_from_slice(&xs[len..]);
                } else {
                    let cap = (xs.len() * 2).max(4);
                    *b = Self::new_region(vals, xs, cap, self.tick);
                }
                b.len = xs.len() as u32;
            }
            return b.start;
        }
        let b = Self::new_region(vals, xs, xs.len(), self.tick);
        if branches.len() < MAX_BRANCHES {
            branches.push(b);
        } else if let Some(lru) = branches.iter_mut().min_by_key(|b| b.used) {
            *lru = b;
        }
        b.start
    }

    /// Copies `xs` to the end of `vals` with room for `cap` values.
    fn new_region(vals: &mut Vec<i64>, xs: &[i64], cap: usize, used: u32) -> Branch {
        let start = vals.len();
        vals.extend_from_slice(xs);
        vals.resize(start + cap, 0);
        Branch {
            start: start as u32,
            len: xs.len() as u32,
            cap: cap as u32,
            used,
        }
    }

    fn intern_node(&mut self, n: &str) -> u16 {
        // Few nodes: a scan beats hashing the name.
        if self.h.nodes.len() <= 16 {
            if let Some(i) = self.h.nodes.iter().position(|x| x == n) {
                return i as u16;
            }
        } else if let Some(&id) = self.node_ids.get(n) {
            return id;
        }
        let id = self.h.nodes.len() as u16;
        self.h.nodes.push(n.to_string());
        self.node_ids.insert(n.to_string(), id);
        id
    }

    fn intern_process(&mut self, p: u64) -> ProcId {
        if let Some(&id) = self.proc_ids.get(&p) {
            return id;
        }
        let id = self.h.processes.push_id(p);
        self.procs.push(ProcState {
            pending: OpId::NONE,
            retired_at: 0,
        });
        self.proc_ids.insert(p, id);
        id
    }

    /// Validates and records one event; `line` is 1-based.
    pub fn push(&mut self, line: u64, ev: &Event) -> Result<(), InvalidHistory> {
        match ev.process {
            Process::Client(p) => {
                let mut scratch = Vec::new();
                self.push_client_event(line, &ClientEvent::of_event(ev, p, &mut scratch))
            }
            Process::Nemesis => {
                self.push_header(line, ev.index, ev.time)?;
                self.push_nemesis(line, ev)
            }
        }
    }

    /// Validates and records one client event; `line` is 1-based.
    pub fn push_client_event(&mut self, line: u64, ev: &ClientEvent) -> Result<(), InvalidHistory> {
        self.push_header(line, ev.index, ev.time)?;
        self.push_client(line, ev.process, ev)
    }

    fn push_header(&mut self, line: u64, index: u64, time: u64) -> Result<(), InvalidHistory> {
        let expected = self.h.events;
        if index != expected {
            return invalid(
                line,
                format!(
                    "index is {}, expected {expected} (indices run 0, 1, 2, ... with no gaps)",
                    index
                ),
            );
        }
        if time < self.last_time {
            return invalid(
                line,
                format!(
                    "time {} is before the previous event's time {} (time must not decrease)",
                    time, self.last_time
                ),
            );
        }
        self.last_time = time;
        self.h.events += 1;
        Ok(())
    }

    fn push_nemesis(&mut self, line: u64, ev: &Event) -> Result<(), InvalidHistory> {
        {
            {
                if ev.kind != EventType::Info {
                    return invalid(
                        line,
                        format!(
                            "nemesis events must have type \"info\", not {:?}",
                            type_name(ev.kind)
                        ),
                    );
                }
                let value = match &ev.value {
                    crate::history::Payload::Fault(j) => j.clone(),
                    crate::history::Payload::Ops(_) => Json::Null,
                };
                self.h.nemesis.push(NemesisEvent {
                    index: ev.index,
                    time: ev.time,
                    f: ev.f.clone(),
                    value,
                });
                Ok(())
            }
        }
    }

    fn push_client(&mut self, line: u64, p: u64, ev: &ClientEvent) -> Result<(), InvalidHistory> {
        // A completion may omit `node` (it is its invoke's); an invoke may not.
        if ev.node.is_none() && ev.kind == EventType::Invoke {
            return invalid(line, format!("client event of process {p} has no \"node\""));
        }
        let is_final = match ev.f {
            F_TXN => false,
            F_FINAL => true,
            other => {
                return invalid(
                    line,
                    format!(
                    "client event of process {p} has f {other:?}; expected \"txn\" or \"final\""
                ),
                )
            }
        };
        let node = ev.node.map(|n| self.intern_node(n));
        let pid = self.intern_process(p);
        if ev.kind == EventType::Invoke {
            let node = node.expect("an invoke names its node");
            self.push_invoke(line, p, pid, node, is_final, ev)
        } else {
            self.push_completion(line, p, pid, node, is_final, ev)
        }
    }

    /// An invoke: the process must be free, and its micro-operations are
    /// recorded (writes indexed by key, reads carrying null).
    fn push_invoke(
        &mut self,
        line: u64,
        p: u64,
        pid: ProcId,
        node: u16,
        is_final: bool,
        ev: &ClientEvent,
    ) -> Result<(), InvalidHistory> {
        self.check_process_free(line, p, pid)?;
        let op_id = self.h.ops.next_id();
        let mops_start = self.h.mops.next_id();
        for m in ev.mops {
            let rec = self.invoked_mop(line, op_id, is_final, m)?;
            self.h.mops.push(rec);
        }
        self.h.ops.push(Op {
            process: pid,
            node,
            outcome: Outcome::Info,
            is_final,
            completed: false,
            invoke_index: ev.index,
            complete_index: ev.index,
            invoke_time: ev.time,
            complete_time: ev.time,
            mops_start,
            mops_end: self.h.mops.next_id(),
            ts: ev.ts.unwrap_or(NO_TS),
        });
        self.procs[pid].pending = op_id;
        Ok(())
    }

    /// A process may invoke when its last operation completed and no
    /// `info` completion retired it.
    fn check_process_free(&self, line: u64, p: u64, pid: ProcId) -> Result<(), InvalidHistory> {
        let st = &self.procs[pid];
        if st.retired_at != 0 {
            return invalid(
                line,
                format!(
                    "process {p} invokes an operation after its info completion at line {} retired it (the harness must use a fresh process id)",
                    st.retired_at
                ),
            );
        }
        if let Some(pending) = st.pending.get() {
            let prev = &self.h.ops[pending];
            return invalid(
                line,
                format!(
                    "process {p} invokes a second operation while its operation invoked at line {} is still outstanding",
                    prev.invoke_index + 1
                ),
            );
        }
        Ok(())
    }

    /// One micro-operation of an invoke (of op `op_id`, whose mop it will
    /// be next): reads carry null; finals only read; writes are indexed.
    fn invoked_mop(
        &mut self,
        line: u64,
        op_id: OpId,
        is_final: bool,
        m: &MopView,
    ) -> Result<MopRec, InvalidHistory> {
        let key = self.intern_key(m.key);
        let mut rec = MopRec {
            op: op_id,
            key,
            f: m.f,
            arg: m.write_arg().unwrap_or(0),
            obs: ObsKind::NotRead,
            obs_start: 0,
            obs_len: 0,
        };
        match m.f {
            MopFn::Read => {
                if m.read != ReadRef::Null {
                    return invalid(
                        line,
                        format!(
                            "invoke reads key {} with a value; reads carry null on invoke",
                            m.key
                        ),
                    );
                }
                rec.obs = ObsKind::Null;
            }
            _ => {
                if is_final {
                    return invalid(
                        line,
                        format!(
                            "final operation writes key {} ({}); final operations only read",
                            m.key,
                            m.f.as_str()
                        ),
                    );
                }
                self.record_write(line, key, m, self.h.mops.next_id())?;
            }
        }
        Ok(rec)
    }

    /// A completion: it must match the process's outstanding invoke (f,
    /// node, micro-operations); an `ok` one stores what its reads saw.
    fn push_completion(
        &mut self,
        line: u64,
        p: u64,
        pid: ProcId,
        node: Option<u16>,
        is_final: bool,
        ev: &ClientEvent,
    ) -> Result<(), InvalidHistory> {
        let op_id = self.procs[pid].pending;
        if op_id.is_none() {
            return invalid(
                line,
                format!(
                    "{} completion of process {p} has no outstanding invoke",
                    type_name(ev.kind)
                ),
            );
        }
        let (inv_line, inv_final, inv_node, range) = {
            let op = &self.h.ops[op_id];
            (op.invoke_index + 1, op.is_final, op.node, op.mops())
        };
        if inv_final != is_final {
            return invalid(
                line,
                format!(
                    "completion of process {p} has f {:?} but its invoke at line {inv_line} has f {:?}",
                    ev.f,
                    if inv_final { F_FINAL } else { F_TXN }
                ),
            );
        }
        if let Some(node) = node.filter(|&n| n != inv_node) {
            return invalid(
                line,
                format!(
                    "completion of process {p} names node {:?} but its invoke at line {inv_line} names {:?}",
                    self.h.nodes[node as usize], self.h.nodes[inv_node as usize]
                ),
            );
        }
        // A fail or info completion may leave its micro-operations out.
        if !(ev.mops.is_empty() && ev.kind != EventType::Ok) {
            self.complete_mops(line, p, inv_line, range.clone(), ev)?;
        }
        if is_final && ev.kind == EventType::Ok {
            if let Some(w) = ev.winners {
                self.record_winners(range.clone(), w);
            }
        }
        let op = &mut self.h.ops[op_id];
        op.completed = true;
        op.complete_index = ev.index;
        op.complete_time = ev.time;
        if let Some(ts) = ev.ts {
            op.ts = ts;
        }
        op.outcome = match ev.kind {
            EventType::Ok => Outcome::Ok,
            EventType::Fail => Outcome::Fail,
            _ => Outcome::Info,
        };
        let st = &mut self.procs[pid];
        st.pending = OpId::NONE;
        if ev.kind == EventType::Info {
            st.retired_at = line;
        }
        Ok(())
    }

    /// `meta.winners` of an ok final read whose micro-operations are
    /// `range`: each `[key, value]` pair whose key the read read, with an
    /// integer value. `meta` is free-form (history.md: "reported, never
    /// required"), so anything else in it is ignored.
    fn record_winners(&mut self, range: std::ops::Range<usize>, winners: &Json) {
        let Some(pairs) = winners.as_array() else {
            return;
        };
        let n = range.len();
        // Pairs usually follow the read's order: each search starts after
        // the last match, so a whole final read costs one pass.
        let mut from = 0;
        for p in pairs {
            let (Some(k), Some(v)) = (p.get(0), p.get(1).and_then(Json::as_i64)) else {
                continue;
            };
            let key = match k {
                Json::String(s) => KeyRef::Str(s),
                Json::Number(n) => match n.as_i64() {
                    Some(i) => KeyRef::Int(i),
                    None => continue,
                },
                _ => continue,
            };
            let found = (0..n).map(|i| (from + i) % n).find(|&i| {
                let rec = &self.h.mops[MopId::new(range.start + i)];
                rec.f == MopFn::Read && key.is(&self.h.keys[rec.key])
            });
            if let Some(i) = found {
                self.h.winners.push((MopId::new(range.start + i), v));
                from = i + 1;
            }
        }
    }

    /// The completion's micro-operations against the invoke's (`range`,
    /// invoked at `inv_line`): same count, function, key and written value;
    /// an `ok` completion's reads store their values.
    fn complete_mops(
        &mut self,
        line: u64,
        p: u64,
        inv_line: u64,
        range: std::ops::Range<usize>,
        ev: &ClientEvent,
    ) -> Result<(), InvalidHistory> {
        let ops = ev.mops;
        let n_inv = range.len();
        if ops.len() != n_inv {
            return invalid(
                line,
                format!(
                    "completion of process {p} has {} micro-operations but its invoke at line {inv_line} has {n_inv}",
                    ops.len()
                ),
            );
        }
        for (i, m) in ops.iter().enumerate() {
            let mi = range.start + i;
            let rec = &self.h.mops[mi];
            let same_key = m.key.is(&self.h.keys[rec.key]);
            if m.f != rec.f || !same_key || (m.is_write() && m.write_arg() != Some(rec.arg)) {
                return invalid(
                    line,
                    format!(
                        "micro-operation {} of the completion of process {p} is {} but its invoke at line {inv_line} has {}",
                        i + 1,
                        describe_mop(m),
                        describe_rec(rec, &self.h.keys)
                    ),
                );
            }
            if ev.kind == EventType::Ok && m.f == MopFn::Read {
                self.store_read(mi, m);
            }
        }
        Ok(())
    }

    /// Stores what read mop `mi` saw (lists sharing regions: `place_list`).
    fn store_read(&mut self, mi: usize, m: &MopView) {
        let (obs, start, len) = match m.read {
            ReadRef::Null => (ObsKind::Null, 0, 0),
            ReadRef::Int(x) => {
                self.h.vals.push(x);
                (ObsKind::Int, self.h.vals.len() as u32 - 1, 1)
            }
            ReadRef::List([]) => (ObsKind::List, 0, 0),
            ReadRef::List(xs) => {
                let key = self.h.mops[mi].key;
                (ObsKind::List, self.place_list(key, xs), xs.len() as u32)
            }
        };
        let rec = &mut self.h.mops[mi];
        rec.obs = obs;
        rec.obs_start = start;
        rec.obs_len = len;
    }

    fn record_write(
        &mut self,
        line: u64,
        key: KeyId,
        m: &MopView,
        mop_id: MopId,
    ) -> Result<(), InvalidHistory> {
        let kind = KeyKind::of_write(m.f).expect("a write");
        let k = key;
        match self.h.key_kind[k] {
            None => {
                self.h.key_kind[k] = Some(kind);
                self.key_first_write[k] = line;
            }
            Some(existing) if existing != kind => {
                return invalid(
                    line,
                    format!(
                        "key {} gets a {} write ({}) but it is a {} key since line {} (two kinds of write on one key)",
                        m.key,
                        kind.as_str(),
                        m.f.as_str(),
                        existing.as_str(),
                        self.key_first_write[k]
                    ),
                );
            }
            Some(_) => {}
        }
        // Unique values per key are checked once every write is known
        // (sorted per key, see `Builder::first_violation`), not by hashing
        // each write as it comes.
        self.h.key_writes[k].push(mop_id);
        Ok(())
    }

    /// Ends the history: pending invokes count as `info`; checks the rules
    /// that need the whole history (finals read every written key, read
    /// values fit their key's kind).
    pub fn finish(mut self) -> Result<History, InvalidHistory> {
        let (start, table) = self.h.write_tables();
        if let Some(e) = self.duplicate(&start, &table) {
            return Err(e);
        }
        drop(std::mem::take(&mut self.branches));
        // Recorded at completion, which need not follow invoke order.
        self.h.winners.sort_unstable_by_key(|&(m, _)| m);
        let h = &mut self.h;
        // A final must read every key written by an `ok` or `info`
        // operation (a key written only by failed ones need not be read).
        let written: Vec<KeyId> = h
            .keys
            .ids()
            .filter(|&k| {
                h.key_writes[k]
                    .iter()
                    .any(|&w| h.ops[h.mops[w].op].outcome != Outcome::Fail)
            })
            .collect();
        let mut must: IdVec<KeyId, bool> = IdVec::filled(false, h.keys.len());
        for &k in &written {
            must[k] = true;
        }
        let mut stamp: IdVec<KeyId, OpId> = IdVec::filled(OpId::NONE, h.keys.len());
        for (oi, op) in h.ops.iter_enumerated() {
            if !op.is_final || op.outcome != Outcome::Ok {
                continue;
            }
            let mut n = 0usize;
            for m in &h.mops[op.mops()] {
                let k = m.key;
                if must[k] && stamp[k] != oi {
                    stamp[k] = oi;
                    n += 1;
                }
            }
            if n < written.len() {
                let missing = written
                    .iter()
                    .find(|&&k| stamp[k] != oi)
                    .expect("one is missing");
                return invalid(
                    op.complete_index + 1,
                    format!(
                        "final operation of node {} does not read key {} (a final reads every written key; {} of {} missing)",
                        h.nodes[op.node as usize],
                        h.keys[*missing],
                        written.len() - n,
                        written.len()
                    ),
                );
            }
        }
        // Read values must fit the key's kind.
        for m in &h.mops {
            let Some(kind) = h.key_kind[m.key] else {
                continue;
            };
            let bad = match (kind, m.obs) {
                (KeyKind::List | KeyKind::Set, ObsKind::Int) => Some("an integer"),
                (KeyKind::Counter, ObsKind::List) => Some("an array"),
                _ => None,
            };
            if let Some(what) = bad {
                let op = &h.ops[m.op];
                return invalid(
                    op.complete_index + 1,
                    format!(
                        "read of {} key {} observed {what}",
                        kind.as_str(),
                        h.keys[m.key]
                    ),
                );
            }
        }
        h.resolve(&start, &table);
        Ok(self.h)
    }

    /// The violation to report when `e` stops the history: `e`, unless a
    /// value was written twice to one key on an earlier line (that rule is
    /// checked once every write is known, so it has to be asked for here to
    /// keep "the first violation" exact).
    pub fn first_violation(&self, e: InvalidHistory) -> InvalidHistory {
        let (start, table) = self.h.write_tables();
        match self.duplicate(&start, &table) {
            Some(d) if d.line < e.line => d,
            _ => e,
        }
    }

    /// The first write of a value its key already had, as the violation the
    /// streaming check would have reported on its line.
    fn duplicate(&self, start: &[u32], table: &[(i64, MopId)]) -> Option<InvalidHistory> {
        let (second, first) = self.h.first_duplicate(start, table)?;
        let m = &self.h.mops[second];
        Some(InvalidHistory {
            line: self.h.op_of(second).invoke_index + 1,
            message: format!(
                "value {} is written to key {} twice (also at line {}); written values must be unique per key",
                m.arg,
                self.h.keys[m.key],
                self.h.op_of(first).invoke_index + 1
            ),
        })
    }
}

fn type_name(t: EventType) -> &'static str {
    match t {
        EventType::Invoke => "invoke",
        EventType::Ok => "ok",
        EventType::Fail => "fail",
        EventType::Info => "info",
    }
}

fn describe_mop(m: &MopView) -> String {
    let k = KeyJson(&m.key.to_key());
    if m.f == MopFn::Delete {
        return format!("[\"d\", {k}, null]");
    }
    match m.write_arg() {
        Some(v) => format!("[{:?}, {k}, {v}]", m.f.as_str()),
        None => format!("[\"r\", {k}, ...]"),
    }
}

fn describe_rec(m: &MopRec, keys: &IdVec<KeyId, Key>) -> String {
    let k = KeyJson(&keys[m.key]);
    if m.f == MopFn::Delete {
        format!("[\"d\", {k}, null]")
    } else if m.is_write() {
        format!("[{:?}, {k}, {}]", m.f.as_str(), m.arg)
    } else {
        format!("[\"r\", {k}, ...]")
    }
}

/// A key as it is spelled in JSON.
pub struct KeyJson<'a>(pub &'a Key);

impl fmt::Display for KeyJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.0 {
            Key::Int(k) => write!(f, "{k}"),
            Key::Str(s) => write!(f, "{s:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::reader::read_history;

    /// The model's per-operation records stay small: 10M operations are
    /// 640 MB of `Op`s and 700 MB of micro-operations.
    #[test]
    fn records_stay_small() {
        assert!(std::mem::size_of::<super::Op>() <= 64);
        assert!(std::mem::size_of::<super::MopRec>() <= 32);
    }

    /// Observed values resolved in two halves (as large histories are, on
    /// two threads) map to the writes one pass finds, wherever the split
    /// falls (list reads share stored values across it).
    #[test]
    fn resolving_in_two_halves_matches_one_pass() {
        use crate::synth::{GenOptions, Workload};
        for workload in [Workload::ListAppend, Workload::Register, Workload::Set] {
            let mut h = crate::testutil::generated(&GenOptions::new(workload, 3000, 8, 3, 11));
            let one = h.resolved.clone();
            let n = h.vals.len();
            assert!(n > 1000, "{workload:?}: {n} stored values");
            assert!(one.iter().filter(|w| !w.is_none()).count() > n / 2);
            let (start, table) = h.write_tables();
            for mid in [0, 1, n / 3, n / 2, n - 1, n] {
                h.resolve_split(&start, &table, Some(mid));
                assert!(h.resolved == one, "{workload:?}, split at {mid}");
            }
        }
    }

    /// List reads of one key share stored values (prefixes, in-place
    /// growth, relocation, more orders than kept branches) and every read
    /// still sees exactly its own list, each value resolved to its write.
    #[test]
    fn shared_list_values_read_back_exactly() {
        let reads: Vec<Vec<i64>> = vec![
            vec![1, 2, 3],
            vec![1, 2],
            vec![1, 2, 3, 4],
            vec![1, 3],
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
            vec![1, 2, 3, 4, 5],
            vec![1, 3, 2],
            vec![9, 8],
            vec![9, 7],
            vec![9, 6],
            vec![9, 5],
            vec![9, 4],
            vec![9, 3],
            vec![9, 2],
            vec![9, 1],
            vec![9, 1, 2],
            vec![1, 3, 2, 4],
            vec![],
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
        ];
        let mut lines = Vec::new();
        let mut i = 0;
        let mut ev = |p: u32, ty: &str, value: String| {
            lines.push(format!(
                r#"{{"index":{i},"time":{i},"type":"{ty}","process":{p},"node":"n1","f":"txn","value":{value}}}"#
            ));
            i += 1;
        };
        for v in 1..=9 {
            let w = format!(r#"[["append","k",{v}]]"#);
            ev(0, "invoke", w.clone());
            ev(0, "ok", w);
        }
        for r in &reads {
            ev(1, "invoke", r#"[["r","k",null]]"#.into());
            ev(1, "ok", format!(r#"[["r","k",{r:?}]]"#));
        }
        let text = lines.join("\n") + "\n";
        let h = read_history(text.as_bytes())
            .map_err(|_| "invalid")
            .unwrap();
        let observed: Vec<&[i64]> = h
            .mops
            .iter()
            .filter(|m| m.obs == super::ObsKind::List)
            .map(|m| h.obs(m))
            .collect();
        let expected: Vec<&[i64]> = reads.iter().map(|r| &r[..]).collect();
        assert_eq!(observed, expected);
        for m in h.mops.iter().filter(|m| m.obs == super::ObsKind::List) {
            for (&v, &w) in h.obs(m).iter().zip(h.obs_writes(m)) {
                assert_eq!(h.mops[w].arg, v);
            }
        }
        // Shared: far fewer stored values than the reads' total length.
        let total: usize = reads.iter().map(Vec::len).sum();
        assert!(h.vals.len() < total * 2, "{} values stored", h.vals.len());
    }
}
