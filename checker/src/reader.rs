//! Reading a history file as a stream of JSON Lines. Each line is parsed,
//! validated and folded into the compact [`History`] by a [`Builder`]; the
//! first broken rule stops reading with its line number.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use crate::history::Event;
use crate::model::{Builder, History, InvalidHistory};

/// Why a history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("failed to read {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: {source}")]
    Invalid { path: String, source: InvalidHistory },
}

/// Streams events out of JSON Lines, with their 1-based line numbers.
pub struct EventReader<R> {
    input: R,
    buf: Vec<u8>,
    line: u64,
}

impl<R: BufRead> EventReader<R> {
    pub fn new(input: R) -> Self {
        EventReader { input, buf: Vec::with_capacity(1024), line: 0 }
    }

    /// The next event, `Ok(None)` at the end; an `Err(Ok(..))` is a broken
    /// rule, an `Err(Err(..))` an I/O failure.
    #[allow(clippy::type_complexity)]
    pub fn next_event(&mut self) -> Result<Option<(u64, Event)>, Result<InvalidHistory, io::Error>> {
        self.buf.clear();
        let n = self.input.read_until(b'\n', &mut self.buf).map_err(Err)?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let line = self.line;
        let mut body = &self.buf[..];
        if body.last() == Some(&b'\n') {
            body = &body[..body.len() - 1];
        }
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(Ok(InvalidHistory {
                line,
                message: "blank line (every line must hold one event)".into(),
            }));
        }
        match serde_json::from_slice::<Event>(body) {
            Ok(ev) => Ok(Some((line, ev))),
            Err(e) => Err(Ok(InvalidHistory { line, message: describe_json_error(&e) })),
        }
    }
}

/// serde_json's message without its "at line 1" suffix (every line is line 1
/// to it); the column stays.
fn describe_json_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    format!("malformed event: {msg} (column {})", e.column())
}

/// Reads and validates a whole history from a stream.
pub fn read_history<R: Read>(input: R) -> Result<History, Result<InvalidHistory, io::Error>> {
    let mut reader = EventReader::new(BufReader::with_capacity(1 << 20, input));
    let mut builder = Builder::new();
    while let Some((line, ev)) = reader.next_event()? {
        builder.push(line, &ev).map_err(Ok)?;
    }
    builder.finish().map_err(Ok)
}

/// Reads and validates a history file.
pub fn read_history_file(path: &Path) -> Result<History, ReadError> {
    let p = path.display().to_string();
    let file = File::open(path).map_err(|source| ReadError::Io { path: p.clone(), source })?;
    read_history(file).map_err(|e| match e {
        Ok(source) => ReadError::Invalid { path: p.clone(), source },
        Err(source) => ReadError::Io { path: p.clone(), source },
    })
}

/// Validates events already in memory (line numbers are positions + 1).
pub fn build_history(events: &[Event]) -> Result<History, InvalidHistory> {
    let mut builder = Builder::new();
    for (i, ev) in events.iter().enumerate() {
        builder.push(i as u64 + 1, ev)?;
    }
    builder.finish()
}
