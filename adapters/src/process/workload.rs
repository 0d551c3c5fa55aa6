//! Maelstrom's workloads, mapped onto Ladon's: which Ladon key kind each one
//! exercises, how a Ladon transaction becomes Maelstrom RPC bodies, and how
//! the replies fill the transaction's reads back in.
//!
//! | Maelstrom | Ladon | RPCs |
//! |---|---|---|
//! | `broadcast`, `g-set` | set (one key) | `broadcast`/`add`, `read` |
//! | `g-counter`, `pn-counter` | counter (one key) | `add`, `read` |
//! | `txn-list-append` | list-append | `txn` |
//! | `txn-rw-register` | register | `txn` |
//! | `lin-kv` | register | `write`, `read` (one per micro-op), `cas` |
//!
//! A `lin-kv` compare-and-set is the two micro-operations
//! `[Read(k, from), Write(k, to)]`: before the request the read holds the
//! expected value `from` (the only read that carries a value before its
//! reply; the history's invoke records it as `null`, see [`invoked`]), and a
//! `cas_ok` keeps it as what the operation observed. A failed precondition
//! (error 22) or a missing key (error 20) is a definite failure: `fail`.

use std::fmt;
use std::str::FromStr;

use ladon_checker::history::{Key, KeyKind, Mop, ReadValue};
use serde_json::{json, Map, Value as Json};

use super::error_code::{codes, RpcError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    Broadcast,
    GSet,
    GCounter,
    PnCounter,
    TxnListAppend,
    TxnRwRegister,
    LinKv,
}

impl Workload {
    pub const ALL: [Workload; 7] = [
        Workload::Broadcast,
        Workload::GSet,
        Workload::GCounter,
        Workload::PnCounter,
        Workload::TxnListAppend,
        Workload::TxnRwRegister,
        Workload::LinKv,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Workload::Broadcast => "broadcast",
            Workload::GSet => "g-set",
            Workload::GCounter => "g-counter",
            Workload::PnCounter => "pn-counter",
            Workload::TxnListAppend => "txn-list-append",
            Workload::TxnRwRegister => "txn-rw-register",
            Workload::LinKv => "lin-kv",
        }
    }

    /// The Ladon key kind this workload exercises.
    pub fn kind(self) -> KeyKind {
        match self {
            Workload::Broadcast | Workload::GSet => KeyKind::Set,
            Workload::GCounter | Workload::PnCounter => KeyKind::Counter,
            Workload::TxnListAppend => KeyKind::List,
            Workload::TxnRwRegister | Workload::LinKv => KeyKind::Register,
        }
    }

    /// What a node running this workload promises by default (`--guarantees`
    /// overrides it): `lin-kv` is Maelstrom's linearizable key-value store.
    pub fn guarantees(self) -> Vec<ladon_checker::report::Guarantee> {
        let mut g = ladon_checker::report::Guarantee::default_for_check();
        if self == Workload::LinKv {
            g.push(ladon_checker::report::Guarantee::Linearizable);
        }
        g
    }

    /// Workloads without keys on the wire use this one Ladon key.
    pub fn single_key(self) -> Option<Key> {
        match self.kind() {
            KeyKind::Set => Some(Key::from("set")),
            KeyKind::Counter => Some(Key::from("counter")),
            _ => None,
        }
    }

    /// Whether one RPC carries a whole multi-micro-op transaction.
    pub fn transactional(self) -> bool {
        matches!(self, Workload::TxnListAppend | Workload::TxnRwRegister)
    }

    /// Whether increments may be negative.
    pub fn allows_decrements(self) -> bool {
        self == Workload::PnCounter
    }

    /// What this workload's operations can look like, for its generator
    /// (`ladon_workloads::rpc::RpcGenerator`).
    pub fn shape(self) -> ladon_workloads::rpc::RpcShape {
        ladon_workloads::rpc::RpcShape {
            single_key: self.single_key(),
            kind: self.kind(),
            transactional: self.transactional(),
            decrements: self.allows_decrements(),
            compare_and_set: self == Workload::LinKv,
        }
    }

    /// The RPC bodies (without `msg_id`) that perform `ops`, each with the
    /// indices of the micro-ops it covers. Non-transactional workloads need
    /// one RPC per micro-op; the harness only sends those one at a time.
    pub fn requests(self, ops: &[Mop]) -> Result<Vec<(Json, Vec<usize>)>, MapError> {
        if self.transactional() {
            let txn: Vec<Json> = ops
                .iter()
                .map(|m| match (self, m) {
                    (Workload::TxnListAppend, Mop::Append(k, v)) => Ok(json!(["append", k, v])),
                    (Workload::TxnRwRegister, Mop::Write(k, v)) => Ok(json!(["w", k, v])),
                    (_, Mop::Read(k, _)) => Ok(json!(["r", k, null])),
                    _ => Err(MapError::Unsupported {
                        workload: self,
                        mop: m.clone(),
                    }),
                })
                .collect::<Result<_, _>>()?;
            return Ok(vec![(
                json!({"type": "txn", "txn": txn}),
                (0..ops.len()).collect(),
            )]);
        }
        if self == Workload::LinKv {
            if let Some((k, from, to)) = as_cas(ops) {
                return Ok(vec![(
                    json!({"type": "cas", "key": k, "from": from, "to": to}),
                    vec![0, 1],
                )]);
            }
        }
        ops.iter()
            .enumerate()
            .map(|(i, m)| {
                let body = match (self, m) {
                    (Workload::Broadcast, Mop::Add(_, v)) => {
                        json!({"type": "broadcast", "message": v})
                    }
                    (Workload::GSet, Mop::Add(_, v)) => json!({"type": "add", "element": v}),
                    (Workload::GCounter | Workload::PnCounter, Mop::Incr(_, d)) => {
                        json!({"type": "add", "delta": d})
                    }
                    (Workload::LinKv, Mop::Write(k, v)) => {
                        json!({"type": "write", "key": k, "value": v})
                    }
                    (Workload::LinKv, Mop::Read(k, _)) => json!({"type": "read", "key": k}),
                    (_, Mop::Read(..)) => json!({"type": "read"}),
                    _ => {
                        return Err(MapError::Unsupported {
                            workload: self,
                            mop: m.clone(),
                        })
                    }
                };
                Ok((body, vec![i]))
            })
            .collect()
    }

    /// Applies the reply to one request to `ops` (the micro-ops of the
    /// request, in order). `Ok(())`: the request succeeded and its reads
    /// are filled in; `Err(Outcome::Failed/Indeterminate)` otherwise.
    pub fn apply_reply(self, ops: &mut [Mop], reply: &Map<String, Json>) -> Result<(), Outcome> {
        if let Some(e) = RpcError::from_body(reply) {
            // lin-kv reports a never-written key as error 20: that read succeeded, observing nothing.
            if self == Workload::LinKv && e.code == codes::KEY_DOES_NOT_EXIST {
                if let [Mop::Read(_, v)] = ops {
                    *v = ReadValue::Null;
                    return Ok(());
                }
            }
            return Err(if e.definite() {
                Outcome::Failed(e.reason())
            } else {
                Outcome::Indeterminate(e.reason())
            });
        }
        let kind = reply.get("type").and_then(Json::as_str).unwrap_or("");
        let bad = |why: String| Outcome::Indeterminate(format!("unexpected reply: {why}"));
        if self.transactional() {
            if kind != "txn_ok" {
                return Err(bad(format!("type {kind:?}, expected \"txn_ok\"")));
            }
            let txn = reply
                .get("txn")
                .and_then(Json::as_array)
                .ok_or_else(|| bad("txn_ok without a \"txn\" array".into()))?;
            if txn.len() != ops.len() {
                return Err(bad(format!(
                    "txn_ok has {} micro-ops, the request had {}",
                    txn.len(),
                    ops.len()
                )));
            }
            for (i, (m, r)) in ops.iter_mut().zip(txn).enumerate() {
                let r = r
                    .as_array()
                    .filter(|a| a.len() == 3)
                    .ok_or_else(|| bad(format!("micro-op {i} is not [f, k, v]")))?;
                let same_key = serde_json::to_value(m.key()).ok().as_ref() == Some(&r[1]);
                let same_f = r[0].as_str() == Some(m.f().as_str());
                if !same_key || !same_f {
                    return Err(bad(format!(
                        "micro-op {i} is {}, the request had {}",
                        Json::Array(r.clone()),
                        serde_json::to_string(m).unwrap_or_default()
                    )));
                }
                if let Mop::Read(_, v) = m {
                    *v = read_value(&r[2], self.kind())
                        .map_err(|w| bad(format!("micro-op {i}: {w}")))?;
                }
            }
            return Ok(());
        }
        if self == Workload::LinKv && as_cas(ops).is_some() {
            // The read keeps the expected value: that is what it found.
            return if kind == "cas_ok" {
                Ok(())
            } else {
                Err(bad(format!("type {kind:?}, expected \"cas_ok\"")))
            };
        }
        let [m] = ops else {
            return Err(bad(format!("{} micro-ops in one RPC", ops.len())));
        };
        match m {
            Mop::Read(_, v) => {
                if kind != "read_ok" {
                    return Err(bad(format!("type {kind:?}, expected \"read_ok\"")));
                }
                let field = if self == Workload::Broadcast {
                    "messages"
                } else {
                    "value"
                };
                let raw = reply
                    .get(field)
                    .ok_or_else(|| bad(format!("read_ok without {field:?}")))?;
                *v = read_value(raw, self.kind()).map_err(bad)?;
                Ok(())
            }
            _ => {
                let want = match self {
                    Workload::Broadcast => "broadcast_ok",
                    Workload::LinKv => "write_ok",
                    _ => "add_ok",
                };
                if kind == want {
                    Ok(())
                } else {
                    Err(bad(format!("type {kind:?}, expected {want:?}")))
                }
            }
        }
    }
}

/// A `lin-kv` compare-and-set: `[Read(k, from), Write(k, to)]` with an
/// expected integer `from`, as (key, from, to).
fn as_cas(ops: &[Mop]) -> Option<(&Key, i64, i64)> {
    match ops {
        [Mop::Read(k, ReadValue::Int(from)), Mop::Write(k2, to)] if k == k2 => {
            Some((k, *from, *to))
        }
        _ => None,
    }
}

/// The micro-operations as an `invoke` (and a `fail` or `info` completion)
/// records them: reads carry `null` (history.md), so a compare-and-set's
/// expected value is known only from its `ok`.
pub fn invoked(ops: &[Mop]) -> Vec<Mop> {
    ops.iter()
        .map(|m| match m {
            Mop::Read(k, _) => Mop::Read(k.clone(), ReadValue::Null),
            other => other.clone(),
        })
        .collect()
}

/// Parses an observed value for a key of `kind`.
fn read_value(v: &Json, kind: KeyKind) -> Result<ReadValue, String> {
    let ints = |a: &Vec<Json>| -> Result<Vec<i64>, String> {
        a.iter()
            .map(|x| {
                x.as_i64()
                    .ok_or_else(|| format!("element {x} is not an integer"))
            })
            .collect()
    };
    match (kind, v) {
        (_, Json::Null) => Ok(ReadValue::Null),
        (KeyKind::Counter | KeyKind::Register, Json::Number(n)) => n
            .as_i64()
            .map(ReadValue::Int)
            .ok_or_else(|| format!("{n} is not an integer")),
        (KeyKind::List | KeyKind::Set | KeyKind::Register, Json::Array(a)) => {
            Ok(ReadValue::List(ints(a)?))
        }
        (k, other) => Err(format!("{other} is not a {} value", k.as_str())),
    }
}

/// What became of a request that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// History `fail`: certainly did not take effect.
    Failed(String),
    /// History `info`: may have taken effect.
    Indeterminate(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("workload {workload} cannot express micro-op {mop:?}")]
    Unsupported { workload: Workload, mop: Mop },
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Workload, String> {
        Workload::ALL
            .into_iter()
            .find(|w| w.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Workload::ALL.iter().map(|w| w.as_str()).collect();
                format!(
                    "unknown Maelstrom workload {s:?}; expected one of: {}",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Json) -> Map<String, Json> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn txn_list_append_round_trip() {
        let w = Workload::TxnListAppend;
        let mut ops = vec![
            Mop::Read(Key::Int(1), ReadValue::Null),
            Mop::Append(Key::Int(1), 6),
        ];
        let reqs = w.requests(&ops).unwrap();
        assert_eq!(
            reqs,
            vec![(
                json!({"type":"txn","txn":[["r",1,null],["append",1,6]]}),
                vec![0, 1]
            )]
        );
        w.apply_reply(
            &mut ops,
            &body(json!({"type":"txn_ok","in_reply_to":1,"txn":[["r",1,[8]],["append",1,6]]})),
        )
        .unwrap();
        assert_eq!(ops[0], Mop::Read(Key::Int(1), ReadValue::List(vec![8])));
    }

    #[test]
    fn a_reply_for_another_transaction_is_indeterminate() {
        let w = Workload::TxnListAppend;
        let mut ops = vec![Mop::Append(Key::Int(1), 6)];
        let out = w
            .apply_reply(
                &mut ops,
                &body(json!({"type":"txn_ok","txn":[["append",2,6]]})),
            )
            .unwrap_err();
        assert!(
            matches!(&out, Outcome::Indeterminate(m) if m.contains("micro-op 0 is [\"append\",2,6]")),
            "{out:?}"
        );
    }

    #[test]
    fn broadcast_and_counter_bodies() {
        let add = Workload::Broadcast
            .requests(&[Mop::Add(Key::from("set"), 4)])
            .unwrap();
        assert_eq!(add[0].0, json!({"type":"broadcast","message":4}));
        let mut r = vec![Mop::Read(Key::from("set"), ReadValue::Null)];
        Workload::Broadcast
            .apply_reply(&mut r, &body(json!({"type":"read_ok","messages":[3,4]})))
            .unwrap();
        assert_eq!(
            r[0],
            Mop::Read(Key::from("set"), ReadValue::List(vec![3, 4]))
        );
        let mut c = vec![Mop::Read(Key::from("counter"), ReadValue::Null)];
        Workload::PnCounter
            .apply_reply(&mut c, &body(json!({"type":"read_ok","value":-3})))
            .unwrap();
        assert_eq!(c[0], Mop::Read(Key::from("counter"), ReadValue::Int(-3)));
        let bad = Workload::GCounter
            .apply_reply(&mut c, &body(json!({"type":"read_ok","value":"x"})))
            .unwrap_err();
        assert!(matches!(bad, Outcome::Indeterminate(_)));
    }

    #[test]
    fn errors_map_to_fail_or_info_and_lin_kv_missing_key_is_a_null_read() {
        let mut w = vec![Mop::Write(Key::Int(1), 3)];
        let e = Workload::LinKv
            .apply_reply(&mut w, &body(json!({"type":"error","code":11})))
            .unwrap_err();
        assert_eq!(e, Outcome::Failed("temporarily-unavailable".into()));
        let e = Workload::LinKv
            .apply_reply(
                &mut w,
                &body(json!({"type":"error","code":0,"text":"slow"})),
            )
            .unwrap_err();
        assert_eq!(e, Outcome::Indeterminate("timeout: slow".into()));
        let mut r = vec![Mop::Read(Key::Int(1), ReadValue::Null)];
        Workload::LinKv
            .apply_reply(&mut r, &body(json!({"type":"error","code":20})))
            .unwrap();
        assert_eq!(r[0], Mop::Read(Key::Int(1), ReadValue::Null));
    }

    #[test]
    fn lin_kv_compare_and_set_round_trip() {
        let k = Key::Int(4);
        let ops = vec![
            Mop::Read(k.clone(), ReadValue::Int(7)),
            Mop::Write(k.clone(), 9),
        ];
        let reqs = Workload::LinKv.requests(&ops).unwrap();
        assert_eq!(
            reqs,
            vec![(json!({"type":"cas","key":4,"from":7,"to":9}), vec![0, 1])]
        );
        // Recorded at invoke with the read's value unknown.
        assert_eq!(
            invoked(&ops),
            vec![
                Mop::Read(k.clone(), ReadValue::Null),
                Mop::Write(k.clone(), 9)
            ]
        );
        let mut done = ops.clone();
        Workload::LinKv
            .apply_reply(&mut done, &body(json!({"type":"cas_ok","in_reply_to":1})))
            .unwrap();
        assert_eq!(done, ops, "the read observed the expected value");
        for (code, why) in [(22, "precondition-failed"), (20, "key-does-not-exist")] {
            let e = Workload::LinKv
                .apply_reply(&mut done, &body(json!({"type":"error","code":code})))
                .unwrap_err();
            assert!(
                matches!(e, Outcome::Failed(w) if w.starts_with(why)),
                "{code}"
            );
        }
        let e = Workload::LinKv
            .apply_reply(&mut done, &body(json!({"type":"write_ok"})))
            .unwrap_err();
        assert!(matches!(e, Outcome::Indeterminate(_)));
        // A plain read with a value and a write of another key are no cas.
        let two = vec![
            Mop::Read(k.clone(), ReadValue::Int(7)),
            Mop::Write(Key::Int(5), 9),
        ];
        assert_eq!(Workload::LinKv.requests(&two).unwrap().len(), 2);
    }

    #[test]
    fn workload_names_parse() {
        for w in Workload::ALL {
            assert_eq!(w.as_str().parse::<Workload>().unwrap(), w);
        }
        assert!("kafka"
            .parse::<Workload>()
            .unwrap_err()
            .contains("broadcast, g-set"));
    }
}
