//! The Maelstrom wire format: one JSON object per line,
//! `{"src": .., "dest": .., "body": {"type": .., "msg_id": .., "in_reply_to": .., ...}}`.
//!
//! The router must forward node-to-node messages at high rates, so
//! [`Envelope::peek`] parses only the routing fields and leaves the body as
//! raw bytes; the full body is decoded only for client replies and service
//! requests.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// What the router needs to know about a line without decoding the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub src: String,
    pub dest: String,
    /// `body.type`, or `""` if absent.
    pub kind: String,
    pub msg_id: Option<u64>,
    pub in_reply_to: Option<u64>,
}

/// Why a line a node printed is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a message: {0}")]
    NotMessage(String),
}

#[derive(Deserialize)]
struct PeekMsg<'a> {
    #[serde(borrow)]
    src: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    dest: std::borrow::Cow<'a, str>,
    body: PeekBody<'a>,
}

#[derive(Deserialize)]
struct PeekBody<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    msg_id: Option<Json>,
    #[serde(default)]
    in_reply_to: Option<Json>,
}

fn as_id(v: Option<Json>) -> Option<u64> {
    match v {
        Some(Json::Number(n)) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        _ => None,
    }
}

/// [`Envelope`] borrowing from the line where it can (strings without
/// escapes): what the router reads for every node-to-node message without
/// allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeRef<'a> {
    pub src: Cow<'a, str>,
    pub dest: Cow<'a, str>,
    /// `body.type`, or `""` if absent.
    pub kind: Cow<'a, str>,
    pub msg_id: Option<u64>,
    pub in_reply_to: Option<u64>,
}

impl Envelope {
    /// Reads the routing fields of one line (without its trailing newline).
    pub fn peek(line: &[u8]) -> Result<Envelope, DecodeError> {
        let m = Envelope::peek_ref(line)?;
        Ok(Envelope {
            src: m.src.into_owned(),
            dest: m.dest.into_owned(),
            kind: m.kind.into_owned(),
            msg_id: m.msg_id,
            in_reply_to: m.in_reply_to,
        })
    }

    /// [`Envelope::peek`] without copying the strings out of `line`.
    pub fn peek_ref(line: &[u8]) -> Result<EnvelopeRef<'_>, DecodeError> {
        let m: PeekMsg = serde_json::from_slice(line).map_err(|e| {
            if e.is_data() {
                DecodeError::NotMessage(format!("{e} (expected {{\"src\", \"dest\", \"body\"}})"))
            } else {
                DecodeError::NotJson(e.to_string())
            }
        })?;
        Ok(EnvelopeRef {
            src: m.src,
            dest: m.dest,
            kind: m.body.kind.unwrap_or_default(),
            msg_id: as_id(m.body.msg_id),
            in_reply_to: as_id(m.body.in_reply_to),
        })
    }
}

/// A fully decoded message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub src: String,
    pub dest: String,
    pub body: Map<String, Json>,
}

impl Message {
    pub fn new(src: impl Into<String>, dest: impl Into<String>, body: Json) -> Message {
        let body = match body {
            Json::Object(m) => m,
            other => {
                let mut m = Map::new();
                m.insert("value".into(), other);
                m
            }
        };
        Message {
            src: src.into(),
            dest: dest.into(),
            body,
        }
    }

    pub fn decode(line: &[u8]) -> Result<Message, DecodeError> {
        serde_json::from_slice(line).map_err(|e| {
            if e.is_data() {
                DecodeError::NotMessage(e.to_string())
            } else {
                DecodeError::NotJson(e.to_string())
            }
        })
    }

    /// The line to write to a node's stdin, newline included.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).expect("a JSON map always serializes");
        v.push(b'\n');
        v
    }

    pub fn kind(&self) -> &str {
        self.body.get("type").and_then(Json::as_str).unwrap_or("")
    }

    pub fn msg_id(&self) -> Option<u64> {
        as_id(self.body.get("msg_id").cloned())
    }

    pub fn in_reply_to(&self) -> Option<u64> {
        as_id(self.body.get("in_reply_to").cloned())
    }
}

/// Builds a reply body to a request: `type`, `in_reply_to`, then `fields`.
pub fn reply_body(kind: &str, in_reply_to: Option<u64>, msg_id: u64, fields: Json) -> Json {
    let mut m = Map::new();
    m.insert("type".into(), Json::from(kind));
    m.insert("msg_id".into(), Json::from(msg_id));
    if let Some(r) = in_reply_to {
        m.insert("in_reply_to".into(), Json::from(r));
    }
    if let Json::Object(extra) = fields {
        m.extend(extra);
    }
    Json::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_reads_routing_fields_and_ignores_the_rest() {
        let line =
            br#"{"src":"n1","dest":"n2","body":{"type":"gossip","msg_id":7,"values":[1,2,3]}}"#;
        let e = Envelope::peek(line).unwrap();
        assert_eq!(e.src, "n1");
        assert_eq!(e.dest, "n2");
        assert_eq!(e.kind, "gossip");
        assert_eq!(e.msg_id, Some(7));
        assert_eq!(e.in_reply_to, None);
    }

    #[test]
    fn peek_names_what_is_wrong() {
        assert!(matches!(
            Envelope::peek(b"hello"),
            Err(DecodeError::NotJson(_))
        ));
        let err = Envelope::peek(br#"{"src":"n1","body":{}}"#).unwrap_err();
        assert!(
            matches!(&err, DecodeError::NotMessage(m) if m.contains("dest")),
            "{err}"
        );
    }

    #[test]
    fn encode_is_one_line_and_decodes_back() {
        let m = Message::new("c1", "n1", serde_json::json!({"type":"read","msg_id":1}));
        let bytes = m.encode();
        assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1);
        assert_eq!(Message::decode(&bytes[..bytes.len() - 1]).unwrap(), m);
        assert_eq!(m.kind(), "read");
        assert_eq!(m.msg_id(), Some(1));
    }
}
