//! `messages.jsonl`: the replication messages the simulator or the process
//! adapter's router saw, one event per line (format in the team briefing).

use std::io::BufRead;
use std::path::Path;

use ladon_checker::history::Key;
use serde::{Deserialize, Serialize};

/// What happened to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageEvent {
    Send,
    Deliver,
    Drop,
}

/// One line of `messages.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub time: u64,
    pub event: MessageEvent,
    pub id: u64,
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub summary: String,
    /// The writes `[key, value]` this message carries.
    #[serde(default)]
    pub writes: Vec<(Key, i64)>,
}

impl Message {
    pub fn carries(&self, key: &Key, value: i64) -> bool {
        self.writes.iter().any(|(k, v)| k == key && *v == value)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MessagesError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a message event: {source}")]
    Parse {
        path: String,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// Reads `messages.jsonl`, stopping at the first malformed line.
pub fn read_messages(path: &Path) -> Result<Vec<Message>, MessagesError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| MessagesError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| MessagesError::Io {
            path: shown.clone(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let m = serde_json::from_str(&line).map_err(|source| MessagesError::Parse {
            path: shown.clone(),
            line: i + 1,
            source,
        })?;
        out.push(m);
    }
    Ok(out)
}

/// One message's life: where it was sent, and delivered or dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Flight {
    pub id: u64,
    pub from: String,
    pub to: String,
    pub summary: String,
    pub sent: u64,
    /// `Some((time, delivered))`: delivered (true) or dropped (false);
    /// `None`: still in flight when the log ends.
    pub fate: Option<(u64, bool)>,
}

/// Pairs the send of each message with its delivery or drop, keeping only
/// messages `keep` selects (by their send event), in send order.
pub fn flights(messages: &[Message], keep: impl Fn(&Message) -> bool) -> Vec<Flight> {
    let mut out: Vec<Flight> = Vec::new();
    let mut at: std::collections::BTreeMap<u64, usize> = Default::default();
    for m in messages {
        match m.event {
            MessageEvent::Send => {
                if keep(m) {
                    at.insert(m.id, out.len());
                    out.push(Flight {
                        id: m.id,
                        from: m.from.clone(),
                        to: m.to.clone(),
                        summary: m.summary.clone(),
                        sent: m.time,
                        fate: None,
                    });
                }
            }
            MessageEvent::Deliver | MessageEvent::Drop => {
                if let Some(&i) = at.get(&m.id) {
                    if out[i].fate.is_none() {
                        out[i].fate = Some((m.time, m.event == MessageEvent::Deliver));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_pairs_messages() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("messages.jsonl");
        std::fs::write(
            &p,
            r#"{"time":5,"event":"send","id":1,"from":"n1","to":"n2","summary":"replicate","writes":[["x",1]]}
{"time":6,"event":"send","id":2,"from":"n1","to":"n3","summary":"replicate","writes":[["x",1],[7,2]]}
{"time":9,"event":"deliver","id":1,"from":"n1","to":"n2","summary":"replicate","writes":[["x",1]]}
{"time":9,"event":"drop","id":2,"from":"n1","to":"n3","summary":"replicate","writes":[["x",1],[7,2]]}
{"time":10,"event":"send","id":3,"from":"n2","to":"n3","summary":"ack","writes":[]}
"#,
        )
        .unwrap();
        let ms = read_messages(&p).unwrap();
        assert_eq!(ms.len(), 5);
        assert!(ms[1].carries(&Key::Int(7), 2));
        let f = flights(&ms, |m| m.carries(&Key::from("x"), 1));
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].fate, Some((9, true)));
        assert_eq!(f[1].fate, Some((9, false)));
    }

    #[test]
    fn malformed_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("messages.jsonl");
        std::fs::write(&p, "{\"time\":1,\"event\":\"send\",\"id\":1,\"from\":\"a\",\"to\":\"b\"}\n{\"time\":2,\"event\":\"lost\"}\n").unwrap();
        let err = read_messages(&p).unwrap_err().to_string();
        assert!(
            err.contains("messages.jsonl:2: not a message event"),
            "{err}"
        );
    }
}
