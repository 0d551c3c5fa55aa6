//! automerge: one `AutoCommit` document per node, synced with automerge's
//! sync protocol (a `sync::State` per peer, `generate_sync_message` /
//! `receive_sync_message`).
//!
//! Mapping, every key an entry of the root map:
//! - register `r:K` → a scalar; concurrent values are automerge conflicts,
//!   read with `get_all` and reported as siblings;
//! - list `l:K` → a list object; set `s:K` → a map object element → `true`;
//!   counter `c:K` → a counter scalar.
//!
//! Two nodes that first write a key concurrently both create its object (or
//! counter): automerge keeps both as a conflict on the root key and `get`
//! shows only one. Reads here take the union of every conflicting object
//! (lists concatenated in automerge's conflict order, counters summed), so
//! no write made to the losing object disappears from reads.

use std::collections::BTreeSet;

use automerge::sync::{Message, State, SyncDoc};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ChangeHash, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use ladon_checker::history::{Key, KeyKind, Mop, ReadValue};

use super::{obj_name, Persist, Replica, Saved, Wire, WireKind};

pub struct AutomergeDoc {
    doc: AutoCommit,
    kind: KeyKind,
    peers: Vec<State>,
    saved_heads: Vec<ChangeHash>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
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
        let all = self.all(&name)?;
        if all.is_empty() {
            return Ok(ReadValue::Null);
        }
        Ok(match self.kind {
            KeyKind::Register => {
                let mut vs: Vec<i64> = all.iter().filter_map(|(v, _)| v.to_i64()).collect();
                vs.sort_unstable();
                if vs.len() == 1 {
                    ReadValue::Int(vs[0])
                } else {
                    ReadValue::List(vs)
                }
            }
            KeyKind::Counter => ReadValue::Int(
                all.iter()
                    .map(|(v, _)| match v {
                        Value::Scalar(s) => match s.as_ref() {
                            ScalarValue::Counter(c) => i64::from(c),
                            other => other.to_i64().unwrap_or(0),
                        },
                        Value::Object(_) => 0,
                    })
                    .sum(),
            ),
            KeyKind::List => {
                let mut out = Vec::new();
                for (_, obj) in &all {
                    out.extend(self.doc.values(obj).filter_map(|(v, _)| v.to_i64()));
                }
                ReadValue::List(out)
            }
            KeyKind::Set => {
                let mut out = BTreeSet::new();
                for (_, obj) in &all {
                    out.extend(self.doc.keys(obj).filter_map(|k| k.parse::<i64>().ok()));
                }
                ReadValue::List(out.into_iter().collect())
            }
        })
    }

    /// The object for `name` that writes go to (created on first write).
    fn object(&mut self, name: &str, t: ObjType) -> Result<automerge::ObjId, String> {
        match self.doc.get(ROOT, name).map_err(err)? {
            Some((Value::Object(_), id)) => Ok(id),
            _ => self.doc.put_object(ROOT, name, t).map_err(err),
        }
    }

    fn write(&mut self, m: &Mop) -> Result<(), String> {
        let name = obj_name(self.kind, m.key());
        match *m {
            Mop::Write(_, v) => self.doc.put(ROOT, name.as_str(), v).map_err(err),
            Mop::Append(_, v) => {
                let obj = self.object(&name, ObjType::List)?;
                let n = self.doc.length(&obj);
                self.doc.insert(&obj, n, v).map_err(err)
            }
            Mop::Add(_, v) => {
                let obj = self.object(&name, ObjType::Map)?;
                self.doc.put(&obj, v.to_string(), true).map_err(err)
            }
            Mop::Incr(_, d) => {
                if self.doc.get(ROOT, name.as_str()).map_err(err)?.is_none() {
                    self.doc
                        .put(ROOT, name.as_str(), ScalarValue::counter(0))
                        .map_err(err)?;
                }
                self.doc.increment(ROOT, name.as_str(), d).map_err(err)
            }
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

    fn push(&mut self, peer: usize) -> Option<Wire> {
        let msg = self
            .doc
            .sync()
            .generate_sync_message(&mut self.peers[peer])?;
        Some(Wire::new(WireKind::Sync, msg.encode()))
    }

    fn tick(&mut self, peer: usize) -> Option<Wire> {
        // A message may have been lost: forget what is in flight and what was
        // sent, keeping only the heads both sides share (the state as
        // automerge persists it across reconnections).
        let st = &mut self.peers[peer];
        *st = State::decode(&st.encode()).unwrap_or_default();
        self.push(peer)
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
        self.doc
            .sync()
            .receive_sync_message(&mut self.peers[peer], m)
            .map_err(err)?;
        let changed = self.doc.get_heads() != before;
        if let Some(w) = self.push(peer) {
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

    fn guarantees(kind: KeyKind, persist: Persist) -> Vec<String> {
        // Changes carry their dependencies and are applied only once those
        // are (causal); conflicting register values are all kept. A node
        // that saves lazily forgets acknowledged writes on a crash, which
        // breaks every promise but convergence.
        let mut g = vec!["convergence"];
        if persist == Persist::EveryOp {
            g.extend(["no-lost-writes", "causal"]);
            if kind == KeyKind::Register {
                g.push("no-conflict-loss");
            }
        }
        g.into_iter().map(String::from).collect()
    }
}
