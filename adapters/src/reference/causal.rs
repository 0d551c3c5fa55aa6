//! The causal context a client carries between requests (`Request.context`
//! in, `ReplyOk.context` out): the node-level marks it has seen (a node with
//! `--causal-delivery` waits until it has applied them), the greatest HLC
//! timestamp it has seen, its client-level vector clock (version-vector
//! registers supersede exactly what it covers) and the quorum versions of
//! the registers it read or wrote.

use std::collections::BTreeMap;

use ladon_checker::history::Key;
use serde_json::{json, Value as Json};

use super::log::Marks;
use super::version::Vc;
use crate::node::NodeId;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientContext {
    /// This client's id (drawn by the first node it wrote to).
    pub client: Option<u64>,
    /// Write transactions this client made.
    pub writes: u64,
    pub vc: Vc,
    pub hlc: u64,
    pub deps: Marks,
    pub numbers: BTreeMap<Key, u64>,
}

fn pairs<K: Ord>(v: &Json, key: impl Fn(&Json) -> Option<K>) -> BTreeMap<K, u64> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((key(p.get(0)?)?, p.get(1)?.as_u64()?)))
        .collect()
}

/// The inverse of `pairs`: `[[key, n], ...]` in key order.
fn pairs_json<K>(m: &BTreeMap<K, u64>, key: impl Fn(&K) -> Json) -> Json {
    Json::Array(m.iter().map(|(k, n)| json!([key(k), n])).collect())
}

impl ClientContext {
    /// Reads a context; anything unrecognised counts as empty (a new client).
    pub fn from_json(v: &Json) -> ClientContext {
        if !v.is_object() {
            return ClientContext::default();
        }
        ClientContext {
            client: v.get("client").and_then(Json::as_u64),
            writes: v.get("writes").and_then(Json::as_u64).unwrap_or(0),
            vc: v
                .get("vc")
                .map(|x| pairs(x, Json::as_u64))
                .unwrap_or_default(),
            hlc: v.get("hlc").and_then(Json::as_u64).unwrap_or(0),
            deps: v
                .get("deps")
                .map(|x| pairs(x, |n| n.as_u64().map(|n| NodeId(n as usize))))
                .unwrap_or_default(),
            numbers: v
                .get("numbers")
                .map(|x| pairs(x, |k| serde_json::from_value(k.clone()).ok()))
                .unwrap_or_default(),
        }
    }

    pub fn to_json(&self) -> Json {
        let mut o = serde_json::Map::new();
        if let Some(c) = self.client {
            o.insert("client".into(), json!(c));
            o.insert("writes".into(), json!(self.writes));
        }
        if !self.vc.is_empty() {
            o.insert("vc".into(), pairs_json(&self.vc, |c| json!(c)));
        }
        if self.hlc > 0 {
            o.insert("hlc".into(), json!(self.hlc));
        }
        if !self.deps.is_empty() {
            o.insert("deps".into(), pairs_json(&self.deps, |n| json!(n.0)));
        }
        if !self.numbers.is_empty() {
            o.insert("numbers".into(), pairs_json(&self.numbers, |k| json!(k)));
        }
        Json::Object(o)
    }

    pub fn merge_deps(&mut self, marks: &Marks) {
        for (o, s) in marks {
            let e = self.deps.entry(*o).or_insert(0);
            *e = (*e).max(*s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_null() {
        let mut c = ClientContext {
            client: Some(7),
            writes: 2,
            hlc: 99,
            ..Default::default()
        };
        c.vc.insert(7, 2);
        c.deps.insert(NodeId(1), 4);
        c.numbers.insert(Key::Str("x".into()), 3);
        c.numbers.insert(Key::Int(5), 1);
        assert_eq!(ClientContext::from_json(&c.to_json()), c);
        assert_eq!(
            ClientContext::from_json(&Json::Null),
            ClientContext::default()
        );
    }
}
