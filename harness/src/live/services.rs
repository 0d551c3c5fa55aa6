//! Maelstrom's services, which nodes call by sending RPCs to these names:
//!
//! - `lin-kv`: a linearizable key-value store (`read`, `write`, `cas` with
//!   optional `create_if_not_exists`); every request applies atomically at
//!   the moment the router handles it.
//! - `seq-kv`: sequentially consistent: writes apply to the latest state in
//!   one total order, but a read may return any state at least as new as the
//!   last one the same caller saw (stale reads are possible, never going
//!   backwards for one caller).
//! - `lww-kv`: last-write-wins over five independent replicas; each request
//!   goes to a random replica, writes are stamped with the harness clock,
//!   and replicas merge (higher stamp wins) every 100 ms.
//! - `lin-tso`: a linearizable timestamp oracle (`ts` → `ts_ok` with the
//!   next integer).

use std::collections::BTreeMap;

use ladon_adapters::process::error_code::codes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value as Json};

pub const NAMES: [&str; 4] = ["lin-kv", "seq-kv", "lww-kv", "lin-tso"];

const LWW_REPLICAS: usize = 5;
const LWW_GOSSIP_NS: u64 = 100_000_000;

type Store = BTreeMap<String, Json>;

#[derive(Default)]
pub struct Services {
    lin: Store,
    /// seq-kv: every version of each key, `(version, value)` ascending.
    seq: BTreeMap<String, Vec<(u64, Json)>>,
    seq_version: u64,
    /// seq-kv: the newest version each caller has observed.
    seq_floor: BTreeMap<String, u64>,
    lww: Vec<BTreeMap<String, (u64, Json)>>,
    lww_last_gossip: u64,
    tso: u64,
    next_msg_id: u64,
}

/// `Ok(fields of the *_ok reply)` or `Err((code, text))`.
type Answer = Result<Json, (i64, String)>;

impl Services {
    pub fn is_service(name: &str) -> bool {
        NAMES.contains(&name)
    }

    /// Handles one request from `caller` to `service`; returns the reply body.
    pub fn handle(
        &mut self,
        service: &str,
        caller: &str,
        body: &Map<String, Json>,
        now_ns: u64,
        rng: &mut ChaCha8Rng,
    ) -> Json {
        let kind = body
            .get("type")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        let answer = match service {
            "lin-kv" => kv(&mut self.lin, &kind, body),
            "seq-kv" => self.seq_kv(caller, &kind, body, rng),
            "lww-kv" => self.lww_kv(&kind, body, now_ns, rng),
            "lin-tso" if kind == "ts" => {
                self.tso += 1;
                Ok(json!({"ts": self.tso}))
            }
            _ => Err((
                codes::NOT_SUPPORTED,
                format!("{service} does not support {kind:?}"),
            )),
        };
        self.next_msg_id += 1;
        let mut reply = Map::new();
        match answer {
            Ok(fields) => {
                reply.insert("type".into(), json!(format!("{kind}_ok")));
                if let Json::Object(f) = fields {
                    reply.extend(f);
                }
            }
            Err((code, text)) => {
                reply.insert("type".into(), json!("error"));
                reply.insert("code".into(), json!(code));
                reply.insert("text".into(), json!(text));
            }
        }
        reply.insert("msg_id".into(), json!(self.next_msg_id));
        if let Some(id) = body.get("msg_id") {
            reply.insert("in_reply_to".into(), id.clone());
        }
        Json::Object(reply)
    }

    fn seq_kv(
        &mut self,
        caller: &str,
        kind: &str,
        body: &Map<String, Json>,
        rng: &mut ChaCha8Rng,
    ) -> Answer {
        let floor = self.seq_floor.get(caller).copied().unwrap_or(0);
        let key = key_of(body)?;
        if kind == "read" {
            // Any version between what this caller last saw and the newest.
            let at = rng.random_range(floor..=self.seq_version);
            self.seq_floor.insert(caller.to_string(), at);
            let value = self
                .seq
                .get(&key)
                .and_then(|vs| vs.iter().rev().find(|(v, _)| *v <= at))
                .map(|(_, x)| x.clone());
            return match value {
                Some(v) => Ok(json!({"value": v})),
                None => Err((
                    codes::KEY_DOES_NOT_EXIST,
                    format!("key {key} does not exist"),
                )),
            };
        }
        // Updates act on the newest state, in one total order.
        let mut latest: Store = Store::new();
        if let Some((_, v)) = self.seq.get(&key).and_then(|vs| vs.last()) {
            latest.insert(key.clone(), v.clone());
        }
        let fields = kv(&mut latest, kind, body)?;
        if let Some(v) = latest.remove(&key) {
            self.seq_version += 1;
            self.seq.entry(key).or_default().push((self.seq_version, v));
        }
        self.seq_floor.insert(caller.to_string(), self.seq_version);
        Ok(fields)
    }

    fn lww_kv(
        &mut self,
        kind: &str,
        body: &Map<String, Json>,
        now_ns: u64,
        rng: &mut ChaCha8Rng,
    ) -> Answer {
        if self.lww.is_empty() {
            self.lww = vec![BTreeMap::new(); LWW_REPLICAS];
        }
        if now_ns >= self.lww_last_gossip + LWW_GOSSIP_NS {
            self.lww_last_gossip = now_ns;
            let mut merged: BTreeMap<String, (u64, Json)> = BTreeMap::new();
            for r in &self.lww {
                for (k, (ts, v)) in r {
                    if merged.get(k).is_none_or(|(t, _)| ts > t) {
                        merged.insert(k.clone(), (*ts, v.clone()));
                    }
                }
            }
            self.lww.iter_mut().for_each(|r| *r = merged.clone());
        }
        let replica = rng.random_range(0..LWW_REPLICAS);
        let r = &mut self.lww[replica];
        let mut view: Store = r.iter().map(|(k, (_, v))| (k.clone(), v.clone())).collect();
        let fields = kv(&mut view, kind, body)?;
        if kind != "read" {
            let key = key_of(body)?;
            if let Some(v) = view.remove(&key) {
                r.insert(key, (now_ns, v));
            }
        }
        Ok(fields)
    }
}

fn key_of(body: &Map<String, Json>) -> Result<String, (i64, String)> {
    body.get("key")
        .map(|k| k.to_string())
        .ok_or_else(|| (codes::MALFORMED_REQUEST, "request has no \"key\"".into()))
}

/// The lin-kv API over one store.
fn kv(store: &mut Store, kind: &str, body: &Map<String, Json>) -> Answer {
    let key = key_of(body)?;
    let field = |name: &str| {
        body.get(name).cloned().ok_or_else(|| {
            (
                codes::MALFORMED_REQUEST,
                format!("{kind} request has no {name:?}"),
            )
        })
    };
    match kind {
        "read" => match store.get(&key) {
            Some(v) => Ok(json!({"value": v})),
            None => Err((
                codes::KEY_DOES_NOT_EXIST,
                format!("key {key} does not exist"),
            )),
        },
        "write" => {
            store.insert(key, field("value")?);
            Ok(json!({}))
        }
        "cas" => {
            let (from, to) = (field("from")?, field("to")?);
            let create = body
                .get("create_if_not_exists")
                .and_then(Json::as_bool)
                .unwrap_or(false);
            match store.get(&key) {
                None if create => {
                    store.insert(key, to);
                    Ok(json!({}))
                }
                None => Err((
                    codes::KEY_DOES_NOT_EXIST,
                    format!("key {key} does not exist"),
                )),
                Some(cur) if *cur == from => {
                    store.insert(key, to);
                    Ok(json!({}))
                }
                Some(cur) => Err((
                    codes::PRECONDITION_FAILED,
                    format!("expected {from}, but had {cur}"),
                )),
            }
        }
        other => Err((codes::NOT_SUPPORTED, format!("unknown operation {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn call(s: &mut Services, svc: &str, caller: &str, body: Json, now: u64) -> Json {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        s.handle(svc, caller, body.as_object().unwrap(), now, &mut rng)
    }

    #[test]
    fn lin_kv_read_write_cas() {
        let mut s = Services::default();
        let r = call(
            &mut s,
            "lin-kv",
            "n1",
            json!({"type":"read","key":"x","msg_id":1}),
            0,
        );
        assert_eq!(
            (
                r["type"].clone(),
                r["code"].clone(),
                r["in_reply_to"].clone()
            ),
            (json!("error"), json!(20), json!(1))
        );
        call(
            &mut s,
            "lin-kv",
            "n1",
            json!({"type":"cas","key":"x","from":0,"to":1,"create_if_not_exists":true,"msg_id":2}),
            0,
        );
        let r = call(
            &mut s,
            "lin-kv",
            "n2",
            json!({"type":"cas","key":"x","from":0,"to":2,"msg_id":3}),
            0,
        );
        assert_eq!(r["code"], json!(22));
        call(
            &mut s,
            "lin-kv",
            "n2",
            json!({"type":"write","key":"x","value":5,"msg_id":4}),
            0,
        );
        let r = call(
            &mut s,
            "lin-kv",
            "n1",
            json!({"type":"read","key":"x","msg_id":5}),
            0,
        );
        assert_eq!(
            (r["type"].clone(), r["value"].clone()),
            (json!("read_ok"), json!(5))
        );
    }

    #[test]
    fn seq_kv_never_goes_backwards_for_one_caller() {
        let mut s = Services::default();
        for v in 1..=20 {
            call(
                &mut s,
                "seq-kv",
                "n1",
                json!({"type":"write","key":1,"value":v}),
                0,
            );
        }
        let mut last = 0;
        for i in 0..50 {
            let mut rng = ChaCha8Rng::seed_from_u64(i);
            let r = s.handle(
                "seq-kv",
                "n2",
                json!({"type":"read","key":1}).as_object().unwrap(),
                0,
                &mut rng,
            );
            let v = r["value"].as_i64().unwrap_or(0);
            assert!(v >= last, "read {v} after {last}");
            last = v;
        }
        // The writer always sees its own latest write.
        let r = call(&mut s, "seq-kv", "n1", json!({"type":"read","key":1}), 0);
        assert_eq!(r["value"], json!(20));
    }

    #[test]
    fn lww_kv_converges_after_gossip_and_tso_counts() {
        let mut s = Services::default();
        call(
            &mut s,
            "lww-kv",
            "n1",
            json!({"type":"write","key":"k","value":1}),
            1,
        );
        call(
            &mut s,
            "lww-kv",
            "n1",
            json!({"type":"write","key":"k","value":2}),
            2,
        );
        let r = call(
            &mut s,
            "lww-kv",
            "n1",
            json!({"type":"read","key":"k"}),
            2 + LWW_GOSSIP_NS,
        );
        assert_eq!(r["value"], json!(2));
        assert_eq!(
            call(&mut s, "lin-tso", "n1", json!({"type":"ts"}), 0)["ts"],
            json!(1)
        );
        assert_eq!(
            call(&mut s, "lin-tso", "n2", json!({"type":"ts"}), 0)["ts"],
            json!(2)
        );
        assert_eq!(
            call(&mut s, "lin-tso", "n2", json!({"type":"bogus"}), 0)["code"],
            json!(10)
        );
    }
}
