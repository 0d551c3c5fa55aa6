//! loro: one `LoroDoc` per node with a fixed peer id, synced with version
//! vectors: a node sends its `oplog_vv`, the peer answers with
//! `export(ExportMode::updates(&vv))`, the receiver `import`s; a local
//! commit is pushed to every peer as the updates since the version before it.
//!
//! Received updates are not imported one by one: they wait in `pending` and
//! the next anti-entropy round (every 100 ms) imports them in one
//! `import_batch`. An import concurrent with local changes makes loro replay
//! history from a critical version, and the criss-cross DAG three writing
//! peers produce has few: each import cost time proportional to the run so
//! far, 95% of a run's CPU (docs/performance.md). A node therefore sees its
//! peers' writes up to one round late.
//!
//! Mapping, every key a named root container (root containers merge by
//! name, so two nodes creating one concurrently is not a conflict):
//! - register `r` → one root map, key → value (concurrent writes: loro keeps
//!   one, last-writer-wins by Lamport time then peer id);
//! - list `l:K` → a `LoroList`; set `s:K` → a `LoroMap` element → `true`;
//! - counter `c:K` → a `LoroCounter`.

use ladon_checker::report::Guarantee;
use std::collections::BTreeSet;

use ladon_checker::history::{Key, KeyKind, Mop, ReadValue};
use loro::{CommitOptions, ExportMode, LoroValue, VersionVector};

use super::{err, obj_name, Persist, Replica, Saved, Wire, WireKind};

pub struct LoroDoc {
    doc: loro::LoroDoc,
    kind: KeyKind,
    last_update: Option<Wire>,
    saved: VersionVector,
    /// Updates received since the last anti-entropy round, in arrival order.
    pending: Vec<Vec<u8>>,
}

fn int(v: &LoroValue) -> Option<i64> {
    match v {
        LoroValue::I64(i) => Some(*i),
        LoroValue::Double(f) => Some(*f as i64),
        _ => None,
    }
}

/// Whether `a` holds something `b` lacks.
fn ahead(a: &VersionVector, b: &VersionVector) -> bool {
    a.iter().any(|(p, &c)| b.get(p).copied().unwrap_or(0) < c)
}

impl LoroDoc {
    fn read(&self, key: &Key) -> ReadValue {
        let name = obj_name(self.kind, key);
        match self.kind {
            KeyKind::Register => match self.doc.get_map("r").get_value() {
                LoroValue::Map(m) => m
                    .get(&key.to_string())
                    .and_then(int)
                    .map_or(ReadValue::Null, ReadValue::Int),
                _ => ReadValue::Null,
            },
            KeyKind::List => match self.doc.get_list(name.as_str()).get_value() {
                LoroValue::List(vs) if !vs.is_empty() => {
                    ReadValue::List(vs.iter().filter_map(int).collect())
                }
                _ => ReadValue::Null,
            },
            KeyKind::Set => {
                let m = self.doc.get_map(name.as_str());
                let vs: BTreeSet<i64> = m.keys().filter_map(|k| k.as_str().parse().ok()).collect();
                if vs.is_empty() {
                    ReadValue::Null
                } else {
                    ReadValue::List(vs.into_iter().collect())
                }
            }
            KeyKind::Counter => {
                ReadValue::Int(self.doc.get_counter(name.as_str()).get_value() as i64)
            }
        }
    }

    fn write(&self, m: &Mop) -> Result<(), String> {
        let name = obj_name(self.kind, m.key());
        let done = match *m {
            Mop::Write(ref k, v) => self.doc.get_map("r").insert(&k.to_string(), v),
            Mop::Append(_, v) => self.doc.get_list(name.as_str()).push(v),
            Mop::Add(_, v) => self.doc.get_map(name.as_str()).insert(&v.to_string(), true),
            Mop::Incr(_, d) => self.doc.get_counter(name.as_str()).increment(d as f64),
            Mop::Delete(ref k) => self.doc.get_map("r").delete(&k.to_string()),
            Mop::Read(..) => Ok(()),
        };
        done.map_err(err)
    }
}

impl Replica for LoroDoc {
    const NAME: &'static str = "loro";

    fn open(actor: u64, _nodes: usize, kind: KeyKind, saved: &[Saved]) -> Result<Self, String> {
        let doc = loro::LoroDoc::new();
        if !saved.is_empty() {
            // One batch: the state is computed once, not once per chunk.
            let chunks: Vec<Vec<u8>> = saved.iter().map(|c| c.to_vec()).collect();
            doc.import_batch(&chunks).map_err(err)?;
        }
        doc.set_peer_id(actor).map_err(err)?;
        let saved = doc.oplog_vv();
        Ok(LoroDoc {
            doc,
            kind,
            last_update: None,
            saved,
            pending: Vec::new(),
        })
    }

    fn transact(&mut self, ops: Vec<Mop>, now_ns: u64) -> Result<Vec<Mop>, String> {
        let before = self.doc.oplog_vv();
        let mut out = Vec::with_capacity(ops.len());
        let mut wrote = false;
        for m in ops {
            match m {
                Mop::Read(k, _) => {
                    let v = self.read(&k);
                    out.push(Mop::Read(k, v));
                }
                w => {
                    self.write(&w)?;
                    wrote = true;
                    out.push(w);
                }
            }
        }
        // Loro's timestamps are Unix seconds: from the node's simulated clock.
        self.doc
            .commit_with(CommitOptions::new().timestamp((now_ns / 1_000_000_000) as i64));
        self.last_update = if wrote {
            let bytes = self.doc.export(ExportMode::updates(&before)).map_err(err)?;
            Some(Wire::new(WireKind::Update, bytes))
        } else {
            None
        };
        Ok(out)
    }

    fn push(&mut self, _peer: usize) -> Option<Wire> {
        self.last_update.clone()
    }

    fn tick(&mut self, _peer: usize) -> Option<Wire> {
        Some(Wire::new(WireKind::Have, self.doc.oplog_vv().encode()))
    }

    fn receive(
        &mut self,
        _peer: usize,
        msg: &Wire,
        replies: &mut Vec<Wire>,
    ) -> Result<bool, String> {
        match msg.kind {
            WireKind::Have => {
                let theirs = VersionVector::decode(&msg.bytes).map_err(err)?;
                let ours = self.doc.oplog_vv();
                if ahead(&ours, &theirs) {
                    let bytes = self.doc.export(ExportMode::updates(&theirs)).map_err(err)?;
                    replies.push(Wire::new(WireKind::Update, bytes));
                }
                // Updates kept for the next round are not in `ours`: while
                // any wait, the next round's own `Have` asks instead (asking
                // now would fetch again what is kept).
                if ahead(&theirs, &ours) && self.pending.is_empty() {
                    replies.push(Wire::new(WireKind::Have, ours.encode()));
                }
                Ok(false)
            }
            WireKind::Update => {
                // Imported by the next round's `flush`.
                self.pending.push(msg.bytes.to_vec());
                Ok(false)
            }
            WireKind::Sync => Err("unexpected automerge sync message".into()),
        }
    }

    fn flush(&mut self) -> Result<bool, String> {
        if self.pending.is_empty() {
            return Ok(false);
        }
        let pending = std::mem::take(&mut self.pending);
        let before = self.doc.oplog_vv();
        self.doc.import_batch(&pending).map_err(err)?;
        Ok(self.doc.oplog_vv() != before)
    }

    fn save_incremental(&mut self) -> Option<Vec<u8>> {
        let vv = self.doc.oplog_vv();
        if vv == self.saved {
            return None;
        }
        let chunk = self.doc.export(ExportMode::updates(&self.saved)).ok()?;
        self.saved = vv;
        Some(chunk)
    }

    fn guarantees(_kind: KeyKind, persist: Persist) -> Vec<Guarantee> {
        // Changes carry their dependencies; an import whose dependencies are
        // missing stays pending until they arrive (causal). Registers are
        // last-writer-wins maps: concurrent writes are dropped.
        let mut g = vec![Guarantee::Convergence];
        if persist == Persist::EveryOp {
            g.extend([Guarantee::NoLostWrites, Guarantee::Causal]);
        }
        g
    }
}
