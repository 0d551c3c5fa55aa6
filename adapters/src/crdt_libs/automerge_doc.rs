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
use std::collections::{BTreeSet, HashSet};

use automerge::sync::{Capability, Message, MessageFlags, State, SyncDoc};
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
    saved_heads: Vec<ChangeHash>,
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
                self.doc.apply_changes([change]).map_err(err)?;
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
        doc.load_incremental(&joined).map_err(err)?;
        let old: HashSet<&ChangeHash> = before_heads.iter().collect();
        let new: HashSet<ChangeHash> = doc.get_heads().into_iter().collect();
        st.shared_heads = advance_heads(&old, &new, &st.shared_heads);
    }

    let known_heads: Vec<ChangeHash> = message_heads
        .iter()
        .filter(|h| doc.get_change_meta_by_hash(h).is_some())
        .copied()
        .collect();
    // The library's `filter_changes`: drop every sent hash that is an
    // ancestor of the known heads (none when there are no known heads).
    if !known_heads.is_empty() && !st.sent_hashes.is_empty() {
        let missing: HashSet<ChangeHash> = doc
            .get_changes_meta(&known_heads)
            .into_iter()
            .map(|c| c.hash)
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
        let msg = self
            .doc
            .sync()
            .generate_sync_message(&mut self.peers[peer])?;
        Some(Wire::new(WireKind::Sync, msg.encode()))
    }
}

impl Replica for AutomergeDoc {
    const NAME: &'static str = "automerge";

    fn open(actor: u64, nodes: usize, kind: KeyKind, saved: &[Saved]) -> Result<Self, String> {
        let mut doc = AutoCommit::new();
        for chunk in saved {
            doc.load_incremental(chunk).map_err(err)?;
        }
        doc.set_actor(ActorId::from(actor.to_be_bytes().as_slice()));
        let saved_heads = doc.get_heads();
        Ok(AutomergeDoc {
            doc,
            kind,
            peers: (0..nodes).map(|_| State::new()).collect(),
            saved_heads,
        })
    }

    fn transact(&mut self, ops: Vec<Mop>, now_ns: u64) -> Result<Vec<Mop>, String> {
        self.ensure_objects(&ops)?;
        match self.transact_inner(ops) {
            Ok(out) => {
                let ms = (now_ns / 1_000_000) as i64;
                let _ = self.doc.commit_with(CommitOptions::default().with_time(ms));
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
        receive_sync_message(&mut self.doc, &mut self.peers[peer], m, &before)?;
        let changed = self.doc.get_heads() != before;
        if let Some(w) = self.message(peer) {
            replies.push(w);
        }
        Ok(changed)
    }

    fn save_incremental(&mut self) -> Option<Vec<u8>> {
        let heads = self.doc.get_heads();
        if heads == self.saved_heads {
            return None;
        }
        let chunk = self.doc.save_after(&self.saved_heads);
        self.saved_heads = heads;
        Some(chunk)
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
