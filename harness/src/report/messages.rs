//! `messages.jsonl`: the replication messages the simulator or the process
//! adapter's router saw, one event per line (format in the team briefing).

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

/// A `messages.jsonl` whose last line was cut off mid-write (the run was
/// killed): that line is dropped and the log read as truncated there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornLine {
    /// 1-based line number of the torn line.
    pub line: usize,
    /// Bytes of it on disk (no newline follows them).
    pub bytes: usize,
}

/// What a report page has of `messages.jsonl`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum MessageLog {
    /// No file: the run kept no message log.
    #[default]
    Absent,
    /// The messages; `torn` when the last line was cut off mid-write.
    Read {
        messages: Vec<Message>,
        torn: Option<TornLine>,
    },
    /// The file is there but damaged or unreadable: why.
    Unreadable(String),
}

impl MessageLog {
    /// Reads `path` if it exists; never fails (a damaged file is
    /// [`MessageLog::Unreadable`], so the page is written without it).
    pub fn load(path: &Path) -> MessageLog {
        if !path.exists() {
            return MessageLog::Absent;
        }
        match read_messages(path) {
            Ok((messages, torn)) => MessageLog::Read { messages, torn },
            Err(e) => MessageLog::Unreadable(e.to_string()),
        }
    }

    pub fn messages(&self) -> Option<&[Message]> {
        match self {
            MessageLog::Read { messages, .. } => Some(messages),
            _ => None,
        }
    }

    /// One sentence for the reader when the log is not whole: torn at the
    /// end, or unusable (then the message diagrams are missing).
    pub fn notice(&self) -> Option<String> {
        match self {
            MessageLog::Absent => None,
            MessageLog::Read { torn: None, .. } => None,
            MessageLog::Read {
                messages,
                torn: Some(t),
            } => Some(format!(
                "the message log messages.jsonl ends in a torn line (line {}: {} bytes and no newline, \
                 cut off when the run stopped); it is read as truncated there, {} whole message event{} kept",
                t.line,
                t.bytes,
                messages.len(),
                if messages.len() == 1 { "" } else { "s" }
            )),
            MessageLog::Unreadable(why) => Some(format!("the message diagram is missing: {why}")),
        }
    }
}

/// Reads `messages.jsonl`. A last line with no newline that does not parse
/// was torn by a kill mid-write: it is returned as [`TornLine`], not an
/// error. Any other line that is not a message event is an error naming it.
pub fn read_messages(path: &Path) -> Result<(Vec<Message>, Option<TornLine>), MessagesError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| MessagesError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut out = Vec::new();
    let mut lines = bytes.split(|&b| b == b'\n').enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        // The piece after the last newline: empty for a whole file.
        let unterminated = lines.peek().is_none();
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(m) => out.push(m),
            Err(_) if unterminated => {
                let torn = TornLine {
                    line: i + 1,
                    bytes: line.len(),
                };
                return Ok((out, Some(torn)));
            }
            Err(source) => {
                return Err(MessagesError::Parse {
                    path: shown,
                    line: i + 1,
                    source,
                })
            }
        }
    }
    Ok((out, None))
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
        let (ms, torn) = read_messages(&p).unwrap();
        assert_eq!((ms.len(), torn), (5, None));
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

    #[test]
    fn a_torn_last_line_is_truncation_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("messages.jsonl");
        let whole = "{\"time\":1,\"event\":\"send\",\"id\":1,\"from\":\"a\",\"to\":\"b\"}\n";
        std::fs::write(&p, format!("{whole}{whole}{{\"time\":2,\"ev")).unwrap();
        let log = MessageLog::load(&p);
        assert_eq!(log.messages().map(<[Message]>::len), Some(2));
        assert_eq!(
            log.notice().unwrap(),
            "the message log messages.jsonl ends in a torn line (line 3: 13 bytes and no newline, \
             cut off when the run stopped); it is read as truncated there, 2 whole message events kept"
        );
        // A whole last line with its newline cut off is simply the last line.
        std::fs::write(&p, format!("{whole}{}", whole.trim_end())).unwrap();
        assert_eq!(
            read_messages(&p).unwrap().0.len(),
            2,
            "a complete unterminated line is kept"
        );
        // A bad line followed by a newline is damage, even at the end.
        std::fs::write(&p, format!("{whole}{{\"time\":2,\"ev\n")).unwrap();
        assert!(matches!(MessageLog::load(&p), MessageLog::Unreadable(_)));
        // Zero bytes (a process run killed before its first message): empty.
        std::fs::write(&p, "").unwrap();
        assert_eq!(
            MessageLog::load(&p),
            MessageLog::Read {
                messages: vec![],
                torn: None
            }
        );
        assert_eq!(
            MessageLog::load(&dir.path().join("none")),
            MessageLog::Absent
        );
    }
}
