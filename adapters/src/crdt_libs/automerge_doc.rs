//! automerge: one `AutoCommit` document per node, synced with automerge's
//! sync protocol (a `sync::State` per peer, `generate_sync_message` /
//! `receive_sync_message`, the latter's steps run here: see
//! `receive_sync_message` below).
//!
//! Mapping, every key an entry of the root map:
//! - register `r:K` → a scalar; concurrent values are automerge conflicts,
//!   read with `get_all` and reported as siblings;
//! - list `l:K` → a list object; set `s:K` → a map object element → `true`;
//!   counter `c:K` → a counter scalar.
//!
//! Two nodes that each create a key's list (or map, or counter) on first
//! write would create two objects in conflict on one root key: automerge
//! shows one and the other's elements and increments disappear from `get`.
//! Automerge's advice is to create the shared structure once and share it.
//! The adapter does exactly that, per key and deterministically: the object
//! of key `K` is created by a *genesis change* that every node builds
//! identically (actor `ladon genesis l:K`, no dependencies, time 0), so every
//! node's copy has the same hash and automerge sees one change, one object.

use ladon_checker::report::Guarantee;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use automerge::sync::{
    BloomFilter, Capability, ChunkList, Have, Message, MessageFlags, MessageVersion, State,
};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, AutoCommit, Change, ChangeHash, ObjType, ReadDoc, ScalarValue, Value, ROOT,
};
use ladon_checker::history::{Key, KeyKind, Mop, ReadValue};

use super::{err, obj_name, Persist, Replica, Saved, Wire, WireKind};

/// The change that creates key `name`'s object: the same bytes on every
/// node (fixed actor, no dependencies, time 0), hence one change.
fn genesis(kind: KeyKind, name: &str) -> Result<Change, String> {
    let actor = ActorId::from(format!("ladon genesis {name}").as_bytes());
    let mut g = AutoCommit::new().with_actor(actor);
    match kind {
        KeyKind::List => g.put_object(ROOT, name, ObjType::List).map(drop),
        KeyKind::Set => g.put_object(ROOT, name, ObjType::Map).map(drop),
        KeyKind::Counter => g.put(ROOT, name, ScalarValue::counter(0)),
        KeyKind::Register => return Err("registers have no genesis change".into()),
    }
    .map_err(err)?;
    g.commit_with(CommitOptions::default().with_time(0));
    g.get_last_local_change()
        .ok_or_else(|| format!("{name}: genesis change missing"))
}

pub struct AutomergeDoc {
    doc: AutoCommit,
    kind: KeyKind,
    peers: Vec<State>,
    changes: Changes,
}

/// One change as automerge encodes it (`Change::raw_bytes`: the bytes a
/// sync message and `save_after` carry), its dependencies and its author.
struct Encoded {
    bytes: Arc<[u8]>,
    deps: Vec<ChangeHash>,
    actor: ActorId,
    seq: u64,
}

impl Encoded {
    fn of(c: &Change) -> Encoded {
        Encoded {
            bytes: c.raw_bytes().into(),
            deps: c.deps().to_vec(),
            actor: c.actor_id().clone(),
            seq: c.seq(),
        }
    }
}

/// Who wrote an applied change: a node (an actor with a slot in the
/// clocks) or a key's genesis (its index in `Changes::geneses`).
#[derive(Clone, Copy)]
enum Author {
    Node,
    Genesis(usize),
}

/// An applied change.
struct Applied {
    hash: ChangeHash,
    enc: Encoded,
    /// Its dependencies' positions in `Changes::list`.
    deps: Vec<usize>,
    author: Author,
    /// The highest seq of each node actor among its ancestors, itself
    /// included (automerge's clock without the genesis actors, one per key;
    /// slots past the end are 0).
    clock: Vec<u64>,
}

/// The encoded bytes of every change the document holds, and of those it
/// queues (received before their dependencies), mirroring automerge's
/// change graph and queue. automerge 0.12 keeps no change bytes: it
/// rebuilds each change it sends or saves from its op set
/// (`ChangeCollector`), a third of a run's time, and the public way to
/// list the changes since some heads (`get_changes_meta`) decodes several
/// compressed columns per change, costlier still (docs/performance.md).
///
/// A change is applied once every dependency is, in the order automerge's
/// queue releases them (`ChangeQueue::pop_topo_sorted_ready`: Kahn's
/// algorithm, first in first out); `heads` follows the library's
/// `update_heads` and is checked against `get_heads` after every update, so
/// a model that drifted from the document fails loudly.
///
/// "The changes since heads S" (automerge's `ChangeGraph::get_hashes`) are
/// computed as the library does, from clocks: every change whose actor's
/// seq exceeds S's clock for that actor, in the order applied. A node
/// actor's changes form a chain (each commit depends on the node's heads).
/// A key's genesis change (its own actor, no dependencies) gets no clock
/// slot, since there is one per key: it is an ancestor of S when it is in S
/// or when one of the changes that depend on it directly is.
#[derive(Default)]
struct Changes {
    /// Applied, in order, and each one's position by hash.
    list: Vec<Applied>,
    applied: HashMap<ChangeHash, usize, ByHash>,
    /// Applied changes by their chunk checksum (a hash's first 4 bytes).
    by_checksum: HashMap<[u8; 4], Vec<usize>>,
    /// Node actors' clock slots, and each slot's changes by seq (seq k at
    /// k - 1).
    slots: HashMap<ActorId, usize>,
    by_slot: Vec<Vec<usize>>,
    /// Genesis changes: index in `order`, and the (slot, seq) of every
    /// change that depends on it directly.
    geneses: Vec<(usize, Vec<(usize, u64)>)>,
    /// Received, not applied yet (missing dependencies), in arrival order.
    queued: Vec<(ChangeHash, Encoded)>,
    heads: BTreeSet<ChangeHash>,
    /// Applied and not saved yet, in the order applied.
    unsaved: Vec<ChangeHash>,
    /// Set when a change broke an assumption above (reported by `check`).
    broken: Option<String>,
}

/// A payload of concatenated chunks: its change chunks, and whether it also
/// holds another chunk (a whole document: `save()` writes the changes it
/// queues after it as change chunks).
struct Payload {
    changes: Vec<Change>,
    whole: bool,
}

/// The chunks of a payload of concatenated chunks: (chunk type, start,
/// end) each.
fn chunks(data: &[u8]) -> Result<Vec<(u8, usize, usize)>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        // magic (4), checksum (4), chunk type (1), data length (LEB128).
        let mut at = i + 9;
        let chunk_type = *data.get(i + 8).ok_or("truncated chunk header")?;
        let mut len: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *data.get(at).ok_or("truncated chunk length")?;
            at += 1;
            len |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
            if shift > 63 {
                return Err("chunk length overflows".into());
            }
        }
        let end = at
            .checked_add(len as usize)
            .filter(|&e| e <= data.len())
            .ok_or("truncated chunk")?;
        out.push((chunk_type, i, end));
        i = end;
    }
    Ok(out)
}

fn split_changes(data: &[u8]) -> Result<Payload, String> {
    let mut out = Vec::new();
    let mut whole = false;
    for (chunk_type, start, end) in chunks(data)? {
        match chunk_type {
            // A change, plain or compressed.
            1 | 2 => out.push(Change::from_bytes(data[start..end].to_vec()).map_err(err)?),
            _ => whole = true,
        }
    }
    Ok(Payload {
        changes: out,
        whole,
    })
}

/// Hashes change hashes by their first 8 bytes: they are SHA-256 digests,
/// uniform already (std's SipHash of every map lookup was a tenth of a
/// run's time).
#[derive(Default, Clone, Copy)]
struct ByHash;

#[derive(Default)]
struct FirstBytes(u64);

impl std::hash::Hasher for FirstBytes {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut b = [0u8; 8];
        let n = bytes.len().min(8);
        b[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
    }
    fn write_usize(&mut self, _: usize) {
        // The length prefix of the 32-byte array: the same for every hash.
    }
}

impl std::hash::BuildHasher for ByHash {
    type Hasher = FirstBytes;
    fn build_hasher(&self) -> FirstBytes {
        FirstBytes(0)
    }
}

/// A genesis change's actor (see [`genesis`]).
fn is_genesis(actor: &ActorId) -> bool {
    actor.to_bytes().starts_with(b"ladon genesis ")
}

impl Changes {
    fn has(&self, h: &ChangeHash) -> bool {
        self.applied.contains_key(h)
    }

    fn apply(&mut self, hash: ChangeHash, enc: Encoded) {
        for d in &enc.deps {
            self.heads.remove(d);
        }
        self.heads.insert(hash);
        self.unsaved.push(hash);
        let index = self.list.len();
        let deps: Vec<usize> = enc
            .deps
            .iter()
            .filter_map(|d| self.applied.get(d).copied())
            .collect();
        let (author, clock) = if is_genesis(&enc.actor) && enc.deps.is_empty() {
            self.geneses.push((index, Vec::new()));
            (Author::Genesis(self.geneses.len() - 1), Vec::new())
        } else {
            let next = self.slots.len();
            let slot = *self.slots.entry(enc.actor.clone()).or_insert(next);
            if slot == self.by_slot.len() {
                self.by_slot.push(Vec::new());
            }
            if self.by_slot[slot].len() as u64 + 1 != enc.seq {
                self.broken.get_or_insert(format!(
                    "change {hash} of actor {} has seq {} after {} changes",
                    enc.actor,
                    enc.seq,
                    self.by_slot[slot].len()
                ));
            }
            self.by_slot[slot].push(index);
            let mut clock = vec![0; slot + 1];
            for &d in &deps {
                let dep = &self.list[d];
                match dep.author {
                    Author::Node => {
                        if dep.clock.len() > clock.len() {
                            clock.resize(dep.clock.len(), 0);
                        }
                        for (c, &x) in clock.iter_mut().zip(&dep.clock) {
                            *c = (*c).max(x);
                        }
                    }
                    Author::Genesis(g) => self.geneses[g].1.push((slot, enc.seq)),
                }
            }
            clock[slot] = clock[slot].max(enc.seq);
            (Author::Node, clock)
        };
        self.applied.insert(hash, index);
        let mut checksum = [0u8; 4];
        checksum.copy_from_slice(&hash.0[..4]);
        self.by_checksum.entry(checksum).or_default().push(index);
        self.list.push(Applied {
            hash,
            enc,
            deps,
            author,
            clock,
        });
    }

    /// Takes in changes offered to the document (`apply_changes`,
    /// `load_incremental`): each one neither applied nor queued joins the
    /// queue, then the queue releases every change whose dependencies are
    /// all applied, in automerge's order.
    fn offer(&mut self, changes: impl IntoIterator<Item = Change>) {
        for c in changes {
            let h = c.hash();
            if self.has(&h) || self.queued.iter().any(|(q, _)| *q == h) {
                continue;
            }
            self.queued.push((h, Encoded::of(&c)));
        }
        // `pop_topo_sorted_ready`.
        let n = self.queued.len();
        let mut unsatisfied = vec![0u32; n];
        let mut waiting_on: HashMap<ChangeHash, Vec<usize>> = HashMap::new();
        for (i, (_, e)) in self.queued.iter().enumerate() {
            for d in &e.deps {
                if !self.has(d) {
                    unsatisfied[i] += 1;
                    waiting_on.entry(*d).or_default().push(i);
                }
            }
        }
        let mut ready: std::collections::VecDeque<usize> =
            (0..n).filter(|&i| unsatisfied[i] == 0).collect();
        let mut topo = Vec::new();
        while let Some(i) = ready.pop_front() {
            topo.push(i);
            if let Some(ds) = waiting_on.remove(&self.queued[i].0) {
                for d in ds {
                    unsatisfied[d] -= 1;
                    if unsatisfied[d] == 0 {
                        ready.push_back(d);
                    }
                }
            }
        }
        if topo.is_empty() {
            return;
        }
        let mut slots: Vec<Option<(ChangeHash, Encoded)>> = std::mem::take(&mut self.queued)
            .into_iter()
            .map(Some)
            .collect();
        for i in topo {
            let (h, e) = slots[i].take().expect("released once");
            self.apply(h, e);
        }
        self.queued = slots.into_iter().flatten().collect();
    }

    /// Takes in changes the document applied, read back from it (after a
    /// payload this model cannot split: a whole document).
    fn applied_by_doc(&mut self, changes: Vec<Change>) {
        for c in changes {
            let h = c.hash();
            self.queued.retain(|(q, _)| *q != h);
            if !self.has(&h) {
                self.apply(h, Encoded::of(&c));
            }
        }
    }

    /// Takes in what `doc.load_incremental(data)` just loaded (`before`:
    /// the heads before). A whole document's changes (automerge sends one
    /// when more than a third of the changes are to go) cannot be split
    /// here: what the load added is read back from the document.
    fn loaded(
        &mut self,
        doc: &mut AutoCommit,
        data: &[u8],
        before: &[ChangeHash],
    ) -> Result<(), String> {
        let p = split_changes(data)?;
        if p.whole {
            self.applied_by_doc(doc.get_changes(before));
        }
        self.offer(p.changes);
        Ok(())
    }

    /// `data` without the change chunks the document has applied already
    /// (found by checksum, confirmed byte for byte: the same bytes are the
    /// same change): loading those is a no-op for automerge, which skips a
    /// change it has, after parsing it.
    fn without_applied(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(data.len());
        for (chunk_type, start, end) in chunks(data)? {
            let chunk = &data[start..end];
            let known = chunk_type == 1
                && self
                    .by_checksum
                    .get(&chunk[4..8])
                    .is_some_and(|ix| ix.iter().any(|&i| *self.list[i].enc.bytes == *chunk));
            if !known {
                out.extend_from_slice(chunk);
            }
        }
        Ok(out)
    }

    /// Fails if the document's heads are not the model's.
    fn check(&self, doc: &mut AutoCommit) -> Result<(), String> {
        if let Some(b) = &self.broken {
            return Err(format!("change cache: {b}"));
        }
        let heads = doc.get_heads();
        if heads.len() != self.heads.len() || !heads.iter().all(|h| self.heads.contains(h)) {
            return Err(format!(
                "change cache out of step with the document: heads {heads:?}, cached {:?}",
                self.heads
            ));
        }
        Ok(())
    }

    /// The bytes of applied changes, in the given order.
    fn bytes<'a>(&'a self, hashes: impl IntoIterator<Item = &'a ChangeHash>) -> Vec<u8> {
        let mut out = Vec::new();
        for h in hashes {
            out.extend_from_slice(&self.get(h).enc.bytes);
        }
        out
    }

    fn get(&self, h: &ChangeHash) -> &Applied {
        &self.list[self.applied[h]]
    }

    /// automerge's `ChangeGraph::get_hashes(heads)`: every applied change
    /// that is not an ancestor of `heads` (nor one of them), in the order
    /// applied (as positions in `list`). Unknown hashes in `heads` are
    /// ignored, as there.
    fn since(&self, heads: &[ChangeHash]) -> Vec<usize> {
        let mut clock = vec![0u64; self.by_slot.len()];
        let mut in_heads = HashSet::new();
        for h in heads {
            let Some(&a) = self.applied.get(h) else {
                continue;
            };
            let a = &self.list[a];
            match a.author {
                Author::Node => {
                    for (c, &x) in clock.iter_mut().zip(&a.clock) {
                        *c = (*c).max(x);
                    }
                }
                Author::Genesis(g) => {
                    in_heads.insert(g);
                }
            }
        }
        if in_heads.is_empty() && clock.iter().all(|&c| c == 0) {
            // No known heads (often: a sync state's shared heads collapse,
            // docs/performance.md): every change.
            return (0..self.list.len()).collect();
        }
        let mut idx: Vec<usize> = Vec::new();
        for (slot, changes) in self.by_slot.iter().enumerate() {
            idx.extend(&changes[(clock[slot] as usize).min(changes.len())..]);
        }
        for (g, (i, dependents)) in self.geneses.iter().enumerate() {
            if !in_heads.contains(&g) && !dependents.iter().any(|&(s, seq)| seq <= clock[s]) {
                idx.push(*i);
            }
        }
        idx.sort_unstable();
        idx
    }

    /// automerge's `missing_deps_from` (private): the first hash on each
    /// path back from `start` that is neither applied nor queued, through
    /// the dependencies of queued changes.
    fn missing_deps_from(&self, start: impl Iterator<Item = ChangeHash>) -> Vec<ChangeHash> {
        let queued: HashMap<&ChangeHash, &Encoded> =
            self.queued.iter().map(|(h, e)| (h, e)).collect();
        let mut missing = HashSet::new();
        let mut seen = HashSet::new();
        let mut stack: Vec<ChangeHash> = start.collect();
        while let Some(h) = stack.pop() {
            if self.has(&h) || !seen.insert(h) {
                continue;
            }
            match queued.get(&h) {
                Some(e) => stack.extend(e.deps.iter().copied()),
                None => {
                    missing.insert(h);
                }
            }
        }
        let mut missing: Vec<ChangeHash> = missing.into_iter().collect();
        missing.sort();
        missing
    }
}

impl AutomergeDoc {
    /// Every object (or counter) the root holds for `name`, conflicts included.
    fn all(&self, name: &str) -> Result<Vec<(Value<'static>, automerge::ObjId)>, String> {
        Ok(self
            .doc
            .get_all(ROOT, name)
            .map_err(err)?
            .into_iter()
            .map(|(v, id)| (v.into_owned(), id))
            .collect())
    }

    fn read(&self, key: &Key) -> Result<ReadValue, String> {
        let name = obj_name(self.kind, key);
        if self.kind == KeyKind::Register {
            // Conflicting values are automerge's siblings.
            let mut vs: Vec<i64> = self
                .all(&name)?
                .iter()
                .filter_map(|(v, _)| v.as_i64())
                .collect();
            vs.sort_unstable();
            return Ok(match vs.len() {
                0 => ReadValue::Null,
                1 => ReadValue::Int(vs[0]),
                _ => ReadValue::List(vs),
            });
        }
        let Some((v, obj)) = self.doc.get(ROOT, name.as_str()).map_err(err)? else {
            return Ok(ReadValue::Null);
        };
        Ok(match self.kind {
            KeyKind::Counter => match v {
                Value::Scalar(s) => match s.as_ref() {
                    ScalarValue::Counter(c) => ReadValue::Int(i64::from(c)),
                    other => return Err(format!("{name}: not a counter: {other:?}")),
                },
                Value::Object(t) => return Err(format!("{name}: not a counter: {t:?}")),
            },
            KeyKind::List => ReadValue::List(
                self.doc
                    .values(&obj)
                    .filter_map(|(v, _)| v.as_i64())
                    .collect(),
            ),
            KeyKind::Set => {
                let out: BTreeSet<i64> = self
                    .doc
                    .keys(&obj)
                    .filter_map(|k| k.parse::<i64>().ok())
                    .collect();
                ReadValue::List(out.into_iter().collect())
            }
            KeyKind::Register => unreachable!("handled above"),
        })
    }

    /// Applies the genesis change of every key `ops` write that this
    /// document does not hold yet (before the client's transaction opens:
    /// applying a change commits an open one).
    fn ensure_objects(&mut self, ops: &[Mop]) -> Result<(), String> {
        if self.kind == KeyKind::Register {
            return Ok(());
        }
        for m in ops.iter().filter(|m| m.is_write()) {
            let name = obj_name(self.kind, m.key());
            if self.doc.get(ROOT, name.as_str()).map_err(err)?.is_none() {
                let change = genesis(self.kind, &name)?;
                self.doc.apply_changes([change.clone()]).map_err(err)?;
                self.changes.offer([change]);
            }
        }
        Ok(())
    }

    /// The object of a list or set key (its genesis change applied).
    fn object(&self, name: &str) -> Result<automerge::ObjId, String> {
        match self.doc.get(ROOT, name).map_err(err)? {
            Some((Value::Object(_), id)) => Ok(id),
            other => Err(format!("{name}: no object ({other:?})")),
        }
    }

    fn write(&mut self, m: &Mop) -> Result<(), String> {
        let name = obj_name(self.kind, m.key());
        match *m {
            Mop::Write(_, v) => self.doc.put(ROOT, name.as_str(), v).map_err(err),
            Mop::Append(_, v) => {
                let obj = self.object(&name)?;
                let n = self.doc.length(&obj);
                self.doc.insert(&obj, n, v).map_err(err)
            }
            Mop::Add(_, v) => {
                let obj = self.object(&name)?;
                self.doc.put(&obj, v.to_string(), true).map_err(err)
            }
            Mop::Incr(_, d) => self.doc.increment(ROOT, name.as_str(), d).map_err(err),
            Mop::Delete(_) => self.doc.delete(ROOT, name.as_str()).map_err(err),
            Mop::Read(..) => Ok(()),
        }
    }

    fn transact_inner(&mut self, ops: Vec<Mop>) -> Result<Vec<Mop>, String> {
        let mut out = Vec::with_capacity(ops.len());
        for m in ops {
            match m {
                Mop::Read(k, _) => {
                    let v = self.read(&k)?;
                    out.push(Mop::Read(k, v));
                }
                w => {
                    self.write(&w)?;
                    out.push(w);
                }
            }
        }
        Ok(out)
    }
}

/// automerge's `receive_sync_message`, step for step (automerge 0.12,
/// `sync.rs`), with one step computed differently: forgetting the sent
/// changes the peer's heads already cover. The library walks every ancestor
/// of those heads for that, the whole history on every message, which made
/// a run quadratic in its length (docs/performance.md). Here the changes
/// *not* covered by the heads come from the change graph's clock
/// (`get_changes_meta`, proportional to what the heads lack) and the sent
/// hashes keep exactly those: the same set, so the same messages.
fn receive_sync_message(
    doc: &mut AutoCommit,
    changes: &mut Changes,
    st: &mut State,
    message: Message,
    before_heads: &[ChangeHash],
) -> Result<(), String> {
    st.in_flight = false;
    let Message {
        heads: message_heads,
        changes: message_changes,
        need: message_need,
        have: message_have,
        flags: message_flags,
        ..
    } = message;

    if let Some(flags) = message_flags {
        let mut caps = vec![Capability::MessageV2];
        if flags.contains(MessageFlags::SUPPORTS_SYNC_RESET) {
            caps.push(Capability::SyncReset);
        }
        st.their_capabilities = Some(caps);
        if flags.contains(MessageFlags::SYNC_RESET) {
            st.sent_hashes.clear();
        }
        st.peer_read_only = flags.contains(MessageFlags::READ_ONLY);
    }

    let changes_is_empty = message_changes.is_empty();
    if !changes_is_empty && !st.read_only {
        let mut joined = Vec::new();
        for c in message_changes.iter() {
            joined.extend_from_slice(c);
        }
        // The library loads them all; loading the ones it has changes
        // nothing but costs their parsing, so they are left out.
        let fresh = changes.without_applied(&joined)?;
        if !fresh.is_empty() {
            doc.load_incremental(&fresh).map_err(err)?;
            changes.loaded(doc, &fresh, before_heads)?;
        }
        changes.check(doc)?;
        let old: HashSet<&ChangeHash> = before_heads.iter().collect();
        let new: HashSet<ChangeHash> = doc.get_heads().into_iter().collect();
        st.shared_heads = advance_heads(&old, &new, &st.shared_heads);
    }

    let known_heads: Vec<ChangeHash> = message_heads
        .iter()
        .filter(|h| changes.has(h))
        .copied()
        .collect();
    // The library's `filter_changes`: drop every sent hash that is an
    // ancestor of the known heads (none when there are no known heads).
    if !known_heads.is_empty() && !st.sent_hashes.is_empty() {
        let missing: HashSet<ChangeHash> = changes
            .since(&known_heads)
            .into_iter()
            .map(|i| changes.list[i].hash)
            .collect();
        st.sent_hashes.retain(|h| missing.contains(h));
    }

    if changes_is_empty && message_heads == before_heads {
        st.last_sent_heads.clone_from(&message_heads);
    }

    if known_heads.len() == message_heads.len() {
        st.shared_heads.clone_from(&message_heads);
        if message_heads.is_empty() {
            st.last_sent_heads = Default::default();
            st.sent_hashes = Default::default();
        }
    } else {
        let mut shared: Vec<ChangeHash> = st
            .shared_heads
            .iter()
            .chain(&known_heads)
            .copied()
            .collect();
        shared.sort();
        shared.dedup();
        st.shared_heads = shared;
    }

    st.their_have = Some(message_have);
    st.their_heads = Some(message_heads);
    st.their_need = Some(message_need);
    Ok(())
}

/// automerge's `generate_sync_message` (0.12, `sync.rs`), step for step,
/// with the library's private helpers computed from the change cache
/// ([`Changes`]: `has_change`, `missing_deps_from`, the change count) and
/// the changes to send taken from the cache's bytes instead of rebuilt from
/// the op set (`get_changes_by_hashes`). Which changes, in which order, and
/// the message around them are the library's: the same message.
fn generate_sync_message(
    doc: &mut AutoCommit,
    changes: &Changes,
    st: &mut State,
) -> Option<Message> {
    let our_heads = doc.get_heads();
    let our_need = if st.read_only {
        vec![]
    } else {
        changes.missing_deps_from(st.their_heads.iter().flatten().copied())
    };
    let their_heads_set: HashSet<&ChangeHash> = st.their_heads.iter().flatten().collect();
    let our_have = if our_need.iter().all(|h| their_heads_set.contains(h)) {
        // `make_bloom_filter`: every change since the shared heads.
        let since = changes.since(&st.shared_heads);
        vec![Have {
            last_sync: st.shared_heads.clone(),
            bloom: BloomFilter::from_hashes(since.into_iter().map(|i| &changes.list[i].hash)),
        }]
    } else {
        Vec::new()
    };

    if let Some(first) = st.their_have.as_ref().and_then(|h| h.first()) {
        if !first.last_sync.iter().all(|h| changes.has(h)) {
            return Some(reset(our_heads));
        }
    }

    let v2 = supports_v2(st);
    // (payload chunks, hashes sent)
    let (payload, sent): (Vec<Vec<u8>>, Vec<ChangeHash>) = if st.peer_read_only {
        (vec![], vec![])
    } else if let (Some(their_have), Some(their_need)) = (&st.their_have, &st.their_need) {
        if st.their_heads.as_deref() == Some(&[]) && v2 {
            whole_doc(doc, changes)
        } else {
            let all = hashes_to_send(changes, their_have, their_need);
            let hashes: Vec<ChangeHash> = all
                .into_iter()
                .filter(|h| !st.sent_hashes.contains(h))
                .collect();
            if hashes.len() > changes.applied.len() / 3 && v2 {
                whole_doc(doc, changes)
            } else if v2 {
                let joined = changes.bytes(&hashes);
                (
                    if joined.is_empty() {
                        vec![]
                    } else {
                        vec![joined]
                    },
                    hashes,
                )
            } else {
                let each = hashes
                    .iter()
                    .map(|h| changes.get(h).enc.bytes.to_vec())
                    .collect();
                (each, hashes)
            }
        }
    } else {
        (vec![], vec![])
    };
    let version = if v2 {
        MessageVersion::V2
    } else {
        MessageVersion::V1
    };

    let heads_unchanged = st.last_sent_heads == our_heads;
    let heads_equal = st.their_heads.as_ref() == Some(&our_heads);
    if heads_unchanged && st.have_responded {
        if (heads_equal || st.read_only) && sent.is_empty() {
            return None;
        }
        if st.in_flight {
            return None;
        }
    }

    st.have_responded = true;
    st.last_sent_heads.clone_from(&our_heads);
    st.sent_hashes.extend(sent.iter().copied());

    let mut flags = MessageFlags::new();
    flags.set(MessageFlags::SUPPORTS_SYNC_RESET);
    if st.read_only {
        flags.set(MessageFlags::READ_ONLY);
    }
    let heads = if st.needs_reset {
        st.needs_reset = false;
        let resets = st
            .their_capabilities
            .as_ref()
            .is_some_and(|c| c.contains(&Capability::SyncReset));
        if resets {
            flags.set(MessageFlags::SYNC_RESET);
            our_heads
        } else {
            vec![]
        }
    } else {
        our_heads
    };
    st.in_flight = true;
    Some(Message {
        heads,
        need: our_need,
        have: our_have,
        changes: ChunkList::from(payload),
        flags: Some(flags),
        version,
    })
}

/// automerge's `Message::reset` (crate-private).
fn reset(heads: Vec<ChangeHash>) -> Message {
    let mut flags = MessageFlags::new();
    flags.set(MessageFlags::SUPPORTS_SYNC_RESET);
    Message {
        heads,
        need: Vec::new(),
        have: vec![Have::default()],
        changes: ChunkList::empty(),
        flags: Some(flags),
        version: MessageVersion::V1,
    }
}

/// automerge's `State::supports_v2_messages` (crate-private).
fn supports_v2(st: &State) -> bool {
    st.their_capabilities
        .as_ref()
        .is_some_and(|c| c.contains(&Capability::MessageV2))
}

/// The library's V2 "send the whole document" payload: `save()` and every
/// change's hash.
fn whole_doc(doc: &mut AutoCommit, changes: &Changes) -> (Vec<Vec<u8>>, Vec<ChangeHash>) {
    let data = doc.save();
    if data.is_empty() {
        return (vec![], vec![]);
    }
    (vec![data], changes.list.iter().map(|a| a.hash).collect())
}

/// automerge's `get_hashes_to_send` (private), the change graph read from
/// the change cache.
fn hashes_to_send(changes: &Changes, have: &[Have], need: &[ChangeHash]) -> Vec<ChangeHash> {
    let need: Vec<ChangeHash> = need.iter().filter(|h| changes.has(h)).copied().collect();
    if have.is_empty() {
        return need;
    }
    let mut last_sync: HashSet<ChangeHash> = HashSet::new();
    let mut blooms = Vec::with_capacity(have.len());
    for h in have {
        last_sync.extend(h.last_sync.iter().copied());
        blooms.push(&h.bloom);
    }
    let mut last_sync: Vec<ChangeHash> = last_sync.into_iter().collect();
    last_sync.sort();
    let since = changes.since(&last_sync);
    // Every change the Bloom filters lack, and every change depending on
    // one (the library's walk over a dependents map): `since` is in the
    // order applied, dependencies first, so one pass sees each change's
    // dependencies decided before it.
    let mut to_send = vec![false; changes.list.len()];
    for &i in &since {
        let a = &changes.list[i];
        if blooms.iter().all(|b| !b.contains_hash(&a.hash)) || a.deps.iter().any(|&d| to_send[d]) {
            to_send[i] = true;
        }
    }
    let mut out: Vec<ChangeHash> = need
        .into_iter()
        .filter(|h| !changes.applied.get(h).is_some_and(|&i| to_send[i]))
        .collect();
    out.extend(
        since
            .into_iter()
            .filter(|&i| to_send[i])
            .map(|i| changes.list[i].hash),
    );
    out
}

/// automerge's `advance_heads` (private in `sync.rs`).
fn advance_heads(
    my_old_heads: &HashSet<&ChangeHash>,
    my_new_heads: &HashSet<ChangeHash>,
    our_old_shared_heads: &[ChangeHash],
) -> Vec<ChangeHash> {
    let mut advanced: Vec<ChangeHash> = my_new_heads
        .iter()
        .filter(|h| !my_old_heads.contains(h))
        .chain(
            our_old_shared_heads
                .iter()
                .filter(|h| my_new_heads.contains(h)),
        )
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    advanced.sort();
    advanced
}

impl AutomergeDoc {
    /// The next sync message to `peer`, if the protocol has one to send.
    fn message(&mut self, peer: usize) -> Option<Wire> {
        let msg = generate_sync_message(&mut self.doc, &self.changes, &mut self.peers[peer])?;
        Some(Wire::new(WireKind::Sync, msg.encode()))
    }
}

impl Replica for AutomergeDoc {
    const NAME: &'static str = "automerge";

    fn open(actor: u64, nodes: usize, kind: KeyKind, saved: &[Saved]) -> Result<Self, String> {
        let mut doc = AutoCommit::new();
        let mut changes = Changes::default();
        // One load of every saved chunk (a change each, mostly): loading
        // them one by one ran automerge's apply machinery once per change.
        let all: Vec<u8> = saved.iter().flat_map(|c| c.iter().copied()).collect();
        if !all.is_empty() {
            doc.load_incremental(&all).map_err(err)?;
            changes.loaded(&mut doc, &all, &[])?;
        }
        changes.check(&mut doc)?;
        // Everything loaded is saved already.
        changes.unsaved.clear();
        doc.set_actor(ActorId::from(actor.to_be_bytes().as_slice()));
        Ok(AutomergeDoc {
            doc,
            kind,
            peers: (0..nodes).map(|_| State::new()).collect(),
            changes,
        })
    }

    fn transact(&mut self, ops: Vec<Mop>, now_ns: u64) -> Result<Vec<Mop>, String> {
        self.ensure_objects(&ops)?;
        match self.transact_inner(ops) {
            Ok(out) => {
                let ms = (now_ns / 1_000_000) as i64;
                if self
                    .doc
                    .commit_with(CommitOptions::default().with_time(ms))
                    .is_some()
                {
                    // The one change built from the op set: the commit's.
                    let c = self
                        .doc
                        .get_last_local_change()
                        .ok_or("committed change missing")?;
                    self.changes.offer([c]);
                    self.changes.check(&mut self.doc)?;
                }
                Ok(out)
            }
            Err(e) => {
                self.doc.rollback();
                Err(e)
            }
        }
    }

    fn push(&mut self, _peer: usize) -> Option<Wire> {
        // No push per commit: the next anti-entropy round sends it. Each
        // sync message costs a Bloom filter of every change since the shared
        // heads and the collection of the changes to send from the op set;
        // a message per commit and peer (and the replies each starts) was
        // most of a run's time (docs/performance.md).
        None
    }

    fn tick(&mut self, peer: usize) -> Option<Wire> {
        // A message may have been lost: forget what is in flight and what was
        // sent, keeping only the heads both sides share (the state as
        // automerge persists it across reconnections).
        let st = &mut self.peers[peer];
        *st = State::decode(&st.encode()).unwrap_or_default();
        self.message(peer)
    }

    fn receive(
        &mut self,
        peer: usize,
        msg: &Wire,
        replies: &mut Vec<Wire>,
    ) -> Result<bool, String> {
        if msg.kind != WireKind::Sync {
            return Err(format!("unexpected {:?} message", msg.kind));
        }
        let m = Message::decode(&msg.bytes).map_err(err)?;
        let before = self.doc.get_heads();
        receive_sync_message(
            &mut self.doc,
            &mut self.changes,
            &mut self.peers[peer],
            m,
            &before,
        )?;
        let changed = self.doc.get_heads() != before;
        if let Some(w) = self.message(peer) {
            replies.push(w);
        }
        Ok(changed)
    }

    fn save_incremental(&mut self) -> Option<Vec<u8>> {
        // What `save_after(heads saved last)` returns (every change applied
        // since, each `raw_bytes`), from the change cache.
        if self.changes.unsaved.is_empty() {
            return None;
        }
        let unsaved = std::mem::take(&mut self.changes.unsaved);
        Some(self.changes.bytes(&unsaved))
    }

    fn guarantees(kind: KeyKind, persist: Persist) -> Vec<Guarantee> {
        // Changes carry their dependencies and are applied only once those
        // are (causal); conflicting register values are all kept. A node
        // that saves lazily forgets acknowledged writes on a crash, which
        // breaks every promise but convergence.
        let mut g = vec![Guarantee::Convergence];
        if persist == Persist::EveryOp {
            g.extend([Guarantee::NoLostWrites, Guarantee::Causal]);
            if kind == KeyKind::Register {
                g.push(Guarantee::NoConflictLoss);
            }
        }
        g
    }
}

#[cfg(test)]
mod tests {
    //! The adapter's copies of automerge's sync steps against the library's
    //! own: three documents writing and syncing in a seeded random order,
    //! with lost messages and per-round state resets, every generated
    //! message and every state compared with what automerge produces from
    //! the same document and state, every saved chunk with `save_after`.
    use super::*;
    use automerge::sync::SyncDoc;

    struct Node {
        doc: AutoCommit,
        changes: Changes,
        peers: Vec<State>,
        saved: Vec<ChangeHash>,
    }

    /// The test's seeded draws (ChaCha, as every seeded draw in Ladon).
    struct Rng(rand_chacha::ChaCha8Rng);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            use rand::Rng as _;
            self.0.random_range(0..n)
        }
    }

    fn generate(n: &mut Node, peer: usize) -> Option<Message> {
        let mut lib_state = n.peers[peer].clone();
        let lib = n.doc.sync().generate_sync_message(&mut lib_state);
        let ours = generate_sync_message(&mut n.doc, &n.changes, &mut n.peers[peer]);
        assert_eq!(ours, lib, "generated message");
        assert_eq!(n.peers[peer], lib_state, "state after generating");
        ours
    }

    fn receive(n: &mut Node, peer: usize, m: Message) {
        let mut lib_doc = n.doc.clone();
        let mut lib_state = n.peers[peer].clone();
        lib_doc
            .sync()
            .receive_sync_message(&mut lib_state, m.clone())
            .unwrap();
        let before = n.doc.get_heads();
        receive_sync_message(&mut n.doc, &mut n.changes, &mut n.peers[peer], m, &before).unwrap();
        assert_eq!(
            n.doc.get_heads(),
            lib_doc.get_heads(),
            "heads after receiving"
        );
        let mut model_missing: Vec<ChangeHash> = n
            .changes
            .queued
            .iter()
            .flat_map(|(_, e)| e.deps.iter().copied())
            .filter(|d| !n.changes.has(d) && !n.changes.queued.iter().any(|(q, _)| q == d))
            .collect();
        model_missing.sort();
        model_missing.dedup();
        assert_eq!(
            n.doc.get_missing_deps(&[]),
            model_missing,
            "queue's missing dependencies"
        );
        assert_eq!(n.peers[peer], lib_state, "state after receiving");
    }

    fn save(n: &mut Node) {
        let heads = n.doc.get_heads();
        let lib = n.doc.save_after(&n.saved);
        n.saved = heads;
        let unsaved = std::mem::take(&mut n.changes.unsaved);
        let ours = n.changes.bytes(&unsaved);
        let hashes = |b: &[u8]| -> BTreeSet<ChangeHash> {
            split_changes(b)
                .unwrap()
                .changes
                .iter()
                .map(Change::hash)
                .collect()
        };
        assert_eq!(ours.len(), lib.len(), "saved chunk size");
        assert_eq!(hashes(&ours), hashes(&lib), "saved changes");
    }

    #[test]
    fn the_adapters_sync_steps_and_saves_are_automerges() {
        for seed in 1..=4u64 {
            let mut rng = Rng(rand::SeedableRng::seed_from_u64(seed));
            let mut nodes: Vec<Node> = (0..3u64)
                .map(|i| Node {
                    doc: AutoCommit::new().with_actor(ActorId::from((i + 1).to_be_bytes())),
                    changes: Changes::default(),
                    peers: (0..3).map(|_| State::new()).collect(),
                    saved: Vec::new(),
                })
                .collect();
            let mut messages = 0;
            let mut inflight: Vec<(usize, usize, Message)> = Vec::new();
            for step in 0..600i64 {
                match rng.below(10) {
                    // A write, as the adapter commits it.
                    0..=3 => {
                        let n = &mut nodes[rng.below(3) as usize];
                        if rng.below(2) == 0 {
                            let key = format!("k{}", rng.below(4));
                            n.doc.put(ROOT, key.as_str(), step).unwrap();
                        } else {
                            // A list key, created by its genesis change
                            // (fresh keys keep coming, as in the workloads).
                            let name = format!("l:{}", step / 40 + rng.below(3) as i64);
                            if n.doc.get(ROOT, name.as_str()).unwrap().is_none() {
                                let g = genesis(KeyKind::List, &name).unwrap();
                                n.doc.apply_changes([g.clone()]).unwrap();
                                n.changes.offer([g]);
                            }
                            let obj = match n.doc.get(ROOT, name.as_str()).unwrap() {
                                Some((Value::Object(_), id)) => id,
                                other => panic!("{name}: {other:?}"),
                            };
                            let len = n.doc.length(&obj);
                            n.doc.insert(&obj, len, step).unwrap();
                        }
                        n.doc
                            .commit_with(CommitOptions::default().with_time(step))
                            .unwrap();
                        let c = n.doc.get_last_local_change().unwrap();
                        n.changes.offer([c]);
                        n.changes.check(&mut n.doc).unwrap();
                        save(n);
                    }
                    // An anti-entropy round from one node to one peer.
                    4..=5 => {
                        let a = rng.below(3) as usize;
                        let b = (a + 1 + rng.below(2) as usize) % 3;
                        let st = &mut nodes[a].peers[b];
                        *st = State::decode(&st.encode()).unwrap();
                        if let Some(m) = generate(&mut nodes[a], b) {
                            inflight.push((a, b, m));
                        }
                    }
                    // A message delivered (and answered), or lost.
                    _ => {
                        if inflight.is_empty() {
                            continue;
                        }
                        let i = rng.below(inflight.len() as u64) as usize;
                        let (from, to, m) = inflight.swap_remove(i);
                        if rng.below(8) == 0 {
                            continue;
                        }
                        messages += 1;
                        receive(&mut nodes[to], from, m);
                        save(&mut nodes[to]);
                        if let Some(r) = generate(&mut nodes[to], from) {
                            inflight.push((to, from, r));
                        }
                    }
                }
            }
            assert!(messages > 100, "seed {seed}: only {messages} messages");
        }
    }
}
