//! Maelstrom's error codes and what each means for a history: a *definite*
//! error says the operation certainly did not happen (`fail`); an
//! *indefinite* one says it may have (`info`).

use serde_json::{Map, Value as Json};

/// An error body a node (or service) sent: `{"type":"error","code":..,"text":..}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub code: i64,
    pub text: Option<String>,
}

impl RpcError {
    /// Reads an error body; `None` if the body is not of type `error`.
    pub fn from_body(body: &Map<String, Json>) -> Option<RpcError> {
        if body.get("type").and_then(Json::as_str) != Some("error") {
            return None;
        }
        Some(RpcError {
            code: body.get("code").and_then(Json::as_i64).unwrap_or(-1),
            text: body.get("text").and_then(Json::as_str).map(str::to_string),
        })
    }

    /// Whether the operation certainly did not take effect. Codes Maelstrom
    /// defines are definite except `timeout` (0) and `crash` (13); codes it
    /// does not define (negative, or 1000 and up, chosen by the node) are
    /// treated as indefinite, because we cannot know what they promise.
    pub fn definite(&self) -> bool {
        match self.code {
            0 | 13 => false,
            c => name(c).is_some(),
        }
    }

    /// The reason recorded as the history's `error`: Maelstrom's name for the
    /// code, or `error-<code>`, followed by the node's text.
    pub fn reason(&self) -> String {
        let name = name(self.code)
            .map(str::to_string)
            .unwrap_or_else(|| format!("error-{}", self.code));
        match &self.text {
            Some(t) if !t.is_empty() => format!("{name}: {t}"),
            _ => name,
        }
    }
}

/// Maelstrom's name for a code it defines.
pub fn name(code: i64) -> Option<&'static str> {
    Some(match code {
        0 => "timeout",
        1 => "node-not-found",
        10 => "not-supported",
        11 => "temporarily-unavailable",
        12 => "malformed-request",
        13 => "crash",
        14 => "abort",
        20 => "key-does-not-exist",
        21 => "key-already-exists",
        22 => "precondition-failed",
        30 => "txn-conflict",
        _ => return None,
    })
}

/// Codes the harness itself sends (from services).
pub mod codes {
    pub const NOT_SUPPORTED: i64 = 10;
    pub const MALFORMED_REQUEST: i64 = 12;
    pub const KEY_DOES_NOT_EXIST: i64 = 20;
    pub const PRECONDITION_FAILED: i64 = 22;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Json) -> RpcError {
        RpcError::from_body(v.as_object().unwrap()).unwrap()
    }

    #[test]
    fn definite_and_indefinite_codes() {
        let definite: Vec<i64> = [0, 1, 10, 11, 12, 13, 14, 20, 21, 22, 30, 1000, -5]
            .into_iter()
            .filter(|c| err(json!({"type":"error","code":c})).definite())
            .collect();
        assert_eq!(definite, vec![1, 10, 11, 12, 14, 20, 21, 22, 30]);
    }

    #[test]
    fn reason_names_the_code_and_keeps_the_text() {
        let e = err(json!({"type":"error","code":11,"text":"no quorum","in_reply_to":5}));
        assert_eq!(e.reason(), "temporarily-unavailable: no quorum");
        assert_eq!(
            err(json!({"type":"error","code":1234})).reason(),
            "error-1234"
        );
        assert!(RpcError::from_body(json!({"type":"read_ok"}).as_object().unwrap()).is_none());
    }
}
