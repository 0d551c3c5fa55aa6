//! yrs (the Rust port of Yjs): one `Doc` per node with a fixed client id,
//! synced the y-sync way: a node sends its state vector, the peer answers
//! with `encode_diff_v1` of it, the receiver `apply_update`s; a local commit
//! is pushed to every peer as that transaction's own update.
//!
//! Mapping, every key a named root type (root types merge by name, so two
//! nodes creating one concurrently is not a conflict):
//! - register `r` → one root map, key → value (concurrent writes: yrs keeps
//!   one, last-writer-wins by its own rule);
//! - list `l:K` → an array; set `s:K` → a map element → `true`;
//! - counter `c:K` → yrs has no counter type: the Yjs idiom, a map of
//!   client id → that client's running total, read as the sum.

use ladon_checker::report::Guarantee;
use std::collections::BTreeSet;

use ladon_checker::history::{Key, KeyKind, Mop, ReadValue};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{
    Any, Array, ClientID, Doc, Map, Number, Options, Out, ReadTxn, StateVector, Transact,
    TransactionMut, Update, WriteTxn,
};

use super::{err, obj_name, Persist, Replica, Saved, Wire, WireKind};

pub struct YrsDoc {
    doc: Doc,
    actor: u64,
    kind: KeyKind,
    /// The update of the last local commit, pushed to every peer.
    last_update: Option<Wire>,
    saved: StateVector,
}

fn int(o: &Out) -> Option<i64> {
    match o {
        Out::Any(Any::Number(Number::Int(i))) => Some(*i),
        Out::Any(Any::Number(Number::Float(f))) => Some(*f as i64),
        _ => None,
    }
}

fn any(v: i64) -> Any {
    Any::Number(Number::Int(v))
}

/// An update holding no item and no deletion, as `encode_v1` writes it.
const EMPTY_UPDATE: &[u8] = &[0, 0];

/// Whether `a` holds something `b` lacks.
fn ahead(a: &StateVector, b: &StateVector) -> bool {
    a.iter().any(|(c, &clock)| b.get(c) < clock)
}

impl YrsDoc {
    fn read(&self, txn: &mut TransactionMut, key: &Key) -> ReadValue {
        let name = obj_name(self.kind, key);
        match self.kind {
            KeyKind::Register => {
                let m = txn.get_or_insert_map("r");
                m.get(&*txn, &key.to_string())
                    .and_then(|o| int(&o))
                    .map_or(ReadValue::Null, ReadValue::Int)
            }
            KeyKind::List => {
                let a = txn.get_or_insert_array(name);
                let vs: Vec<i64> = a.iter(&*txn).filter_map(|o| int(&o)).collect();
                if vs.is_empty() {
                    ReadValue::Null
                } else {
                    ReadValue::List(vs)
                }
            }
            KeyKind::Set => {
                let m = txn.get_or_insert_map(name);
                let vs: BTreeSet<i64> = m.keys(&*txn).filter_map(|k| k.parse().ok()).collect();
                if vs.is_empty() {
                    ReadValue::Null
                } else {
                    ReadValue::List(vs.into_iter().collect())
                }
            }
            KeyKind::Counter => {
                let m = txn.get_or_insert_map(name);
                let mut n = 0;
                let mut sum = 0;
                for (_, o) in m.iter(&*txn) {
                    n += 1;
                    sum += int(&o).unwrap_or(0);
                }
                if n == 0 {
                    ReadValue::Null
                } else {
                    ReadValue::Int(sum)
                }
            }
        }
    }

    fn write(&self, txn: &mut TransactionMut, m: &Mop) {
        let name = obj_name(self.kind, m.key());
        match *m {
            Mop::Write(ref k, v) => {
                let r = txn.get_or_insert_map("r");
                r.insert(txn, k.to_string(), any(v));
            }
            Mop::Append(_, v) => {
                let a = txn.get_or_insert_array(name);
                a.push_back(txn, any(v));
            }
            Mop::Add(_, v) => {
                let s = txn.get_or_insert_map(name);
                s.insert(txn, v.to_string(), true);
            }
            Mop::Incr(_, d) => {
                let c = txn.get_or_insert_map(name);
                let me = self.actor.to_string();
                let cur = c.get(&*txn, &me).and_then(|o| int(&o)).unwrap_or(0);
                c.insert(txn, me, any(cur + d));
            }
            Mop::Delete(ref k) => {
                let r = txn.get_or_insert_map("r");
                r.remove(txn, &k.to_string());
            }
            Mop::Read(..) => {}
        }
    }
}

impl Replica for YrsDoc {
    const NAME: &'static str = "yrs";

    fn open(actor: u64, _nodes: usize, kind: KeyKind, saved: &[Saved]) -> Result<Self, String> {
        // The guid names the document: one fixed value, so no node draws one
        // at random.
        let opts = Options::with_guid_and_client_id("ladon".into(), ClientID::new(actor));
        let doc = Doc::with_options(opts);
        {
            let mut txn = doc.transact_mut();
            for chunk in saved {
                let u = Update::decode_v1(chunk).map_err(err)?;
                txn.apply_update(u).map_err(err)?;
            }
        }
        let saved = doc.transact().state_vector();
        Ok(YrsDoc {
            doc,
            actor,
            kind,
            last_update: None,
            saved,
        })
    }

    fn transact(&mut self, ops: Vec<Mop>, _now_ns: u64) -> Result<Vec<Mop>, String> {
        let doc = self.doc.clone();
        let mut txn = doc.transact_mut();
        let mut out = Vec::with_capacity(ops.len());
        let mut wrote = false;
        for m in ops {
            match m {
                Mop::Read(k, _) => {
                    let v = self.read(&mut txn, &k);
                    out.push(Mop::Read(k, v));
                }
                w => {
                    self.write(&mut txn, &w);
                    wrote = true;
                    out.push(w);
                }
            }
        }
        self.last_update = wrote.then(|| Wire::new(WireKind::Update, txn.encode_update_v1()));
        txn.commit();
        Ok(out)
    }

    fn push(&mut self, _peer: usize) -> Option<Wire> {
        self.last_update.clone()
    }

    fn tick(&mut self, _peer: usize) -> Option<Wire> {
        let sv = self.doc.transact().state_vector();
        Some(Wire::new(WireKind::Have, sv.encode_v1()))
    }

    fn receive(
        &mut self,
        _peer: usize,
        msg: &Wire,
        replies: &mut Vec<Wire>,
    ) -> Result<bool, String> {
        match msg.kind {
            WireKind::Have => {
                // y-sync's step 2: the diff against their state vector. It
                // carries our whole delete set (a removal advances no state
                // vector), so it is sent unless it is empty.
                let theirs = StateVector::decode_v1(&msg.bytes).map_err(err)?;
                let txn = self.doc.transact();
                let ours = txn.state_vector();
                let diff = txn.encode_diff_v1(&theirs);
                if diff != EMPTY_UPDATE {
                    replies.push(Wire::new(WireKind::Update, diff));
                }
                if ahead(&theirs, &ours) {
                    replies.push(Wire::new(WireKind::Have, ours.encode_v1()));
                }
                Ok(false)
            }
            WireKind::Update => {
                let u = Update::decode_v1(&msg.bytes).map_err(err)?;
                let mut txn = self.doc.transact_mut();
                let before = txn.state_vector();
                txn.apply_update(u).map_err(err)?;
                let changed = txn.state_vector() != before;
                txn.commit();
                Ok(changed)
            }
            WireKind::Sync => Err("unexpected automerge sync message".into()),
        }
    }

    fn save_incremental(&mut self) -> Option<Vec<u8>> {
        let txn = self.doc.transact();
        let sv = txn.state_vector();
        if sv == self.saved {
            return None;
        }
        let chunk = txn.encode_diff_v1(&self.saved);
        drop(txn);
        self.saved = sv;
        Some(chunk)
    }

    fn guarantees(_kind: KeyKind, persist: Persist) -> Vec<Guarantee> {
        // Updates integrate once the items they reference are present, but
        // an update that references nothing of another client's (a write to
        // another key) integrates at once: no causal promise across keys.
        // Registers are last-writer-wins maps: concurrent writes are dropped.
        let mut g = vec![Guarantee::Convergence];
        if persist == Persist::EveryOp {
            g.push(Guarantee::NoLostWrites);
        }
        g
    }
}
