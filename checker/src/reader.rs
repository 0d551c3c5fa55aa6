//! Reading a history file as a stream of JSON Lines. Each line is parsed,
//! validated and folded into the compact [`History`] by a [`Builder`]; the
//! first broken rule stops reading with its line number.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::Path;

use crate::history::Event;
use crate::model::{Builder, History, InvalidHistory};

/// Why a history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("failed to read {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: {source}")]
    Invalid {
        path: String,
        source: InvalidHistory,
    },
}

/// Streams events out of JSON Lines, with their 1-based line numbers.
pub struct EventReader<R> {
    input: R,
    buf: Vec<u8>,
    line: u64,
}

impl<R: BufRead> EventReader<R> {
    pub fn new(input: R) -> Self {
        EventReader {
            input,
            buf: Vec::with_capacity(1024),
            line: 0,
        }
    }

    /// The next event, `Ok(None)` at the end; an `Err(Ok(..))` is a broken
    /// rule, an `Err(Err(..))` an I/O failure.
    #[allow(clippy::type_complexity)]
    pub fn next_event(
        &mut self,
    ) -> Result<Option<(u64, Event)>, Result<InvalidHistory, io::Error>> {
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
            Err(e) => Err(Ok(InvalidHistory {
                line,
                message: describe_json_error(&e),
            })),
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

/// Reads and validates a whole history from a stream. Lines are parsed on
/// worker threads in chunks and folded into the [`Builder`] in order.
pub fn read_history<R: Read + Send>(
    input: R,
) -> Result<History, Result<InvalidHistory, io::Error>> {
    read_history_sized(input, 0)
}

/// [`read_history`] with the input's size, if known, to size the model.
pub fn read_history_sized<R: Read + Send>(
    input: R,
    size_hint: u64,
) -> Result<History, Result<InvalidHistory, io::Error>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(3);
    parallel::read(input, workers, size_hint)
}

mod parallel {
    use std::collections::BTreeMap;
    use std::io::{self, Read};
    use std::sync::mpsc::{sync_channel, Receiver};
    use std::sync::{Arc, Mutex};

    use super::describe_json_error;
    use crate::fastparse::{parse_at, Chunk, RawEvent};
    use crate::history::Event;
    use crate::model::{Builder, History, InvalidHistory};

    const CHUNK: usize = 1 << 20;

    /// A chunk of whole lines and its position in the file.
    type Job = (u64, Vec<u8>);

    /// A line parsed by the fast path, or by serde.
    enum Item {
        Fast(RawEvent),
        Slow(Event),
    }

    /// A parsed chunk: its events (1-based line within the chunk), the
    /// number of lines, the first broken line if any, and the chunk's bytes
    /// and values the fast path's events refer to.
    struct Parsed {
        events: Vec<(u64, Item)>,
        lines: u64,
        error: Option<(u64, String)>,
        bytes: Vec<u8>,
        chunk: Chunk,
    }

    /// Buffers of consumed chunks, reused so that reading does not keep
    /// faulting in fresh pages.
    type Spare = (Vec<(u64, Item)>, Chunk);

    fn parse_chunk(bytes: Vec<u8>, spare: Option<Spare>) -> Parsed {
        let (mut events, mut chunk) = spare.unwrap_or_else(|| {
            (
                Vec::with_capacity(bytes.len() / 150),
                Chunk {
                    mops: Vec::with_capacity(bytes.len() / 60),
                    vals: Vec::with_capacity(bytes.len() / 8),
                },
            )
        });
        let mut lines = 0;
        let mut error = None;
        let mut pos = 0usize;
        while pos < bytes.len() {
            lines += 1;
            if let Some((ev, end)) = parse_at(&bytes, pos, &mut chunk) {
                events.push((lines, Item::Fast(ev)));
                pos = end + 1;
                continue;
            }
            let end = bytes[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |i| pos + i);
            let body = &bytes[pos..end];
            pos = end + 1;
            if body.iter().all(|b| b.is_ascii_whitespace()) {
                error = Some((lines, "blank line (every line must hold one event)".into()));
                break;
            }
            match serde_json::from_slice::<Event>(body) {
                Ok(ev) => events.push((lines, Item::Slow(ev))),
                Err(e) => {
                    error = Some((lines, describe_json_error(&e)));
                    break;
                }
            }
        }
        Parsed {
            events,
            lines,
            error,
            bytes,
            chunk,
        }
    }

    pub fn read<R: Read + Send>(
        mut input: R,
        workers: usize,
        size_hint: u64,
    ) -> Result<History, Result<InvalidHistory, io::Error>> {
        let spare_bytes: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
        let spare_parsed: Mutex<Vec<Spare>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            let (work_tx, work_rx) = sync_channel::<(u64, Vec<u8>)>(workers * 2);
            let work_rx: Arc<Mutex<Receiver<Job>>> = Arc::new(Mutex::new(work_rx));
            let (done_tx, done_rx) = sync_channel::<(u64, Parsed)>(workers * 2);
            let (spare_bytes, spare_parsed) = (&spare_bytes, &spare_parsed);
            for _ in 0..workers {
                let rx = Arc::clone(&work_rx);
                let tx = done_tx.clone();
                s.spawn(move || loop {
                    let job = rx.lock().expect("work queue").recv();
                    let Ok((id, bytes)) = job else { return };
                    let spare = spare_parsed.lock().expect("spare buffers").pop();
                    if tx.send((id, parse_chunk(bytes, spare))).is_err() {
                        return;
                    }
                });
            }
            drop(done_tx);
            drop(work_rx);
            // The reader: chunks that end at a newline.
            let reader = s.spawn(move || -> io::Result<()> {
                let mut carry: Vec<u8> = Vec::new();
                let mut id = 0u64;
                loop {
                    let mut buf = if carry.len() >= CHUNK {
                        std::mem::take(&mut carry)
                    } else {
                        let mut b = spare_bytes
                            .lock()
                            .expect("spare buffers")
                            .pop()
                            .unwrap_or_else(|| Vec::with_capacity(CHUNK + (CHUNK >> 4)));
                        b.clear();
                        b.extend_from_slice(&carry);
                        carry.clear();
                        b
                    };
                    let start = buf.len();
                    buf.resize(start + CHUNK, 0);
                    let mut filled = start;
                    while filled < buf.len() {
                        let n = input.read(&mut buf[filled..])?;
                        if n == 0 {
                            break;
                        }
                        filled += n;
                    }
                    buf.truncate(filled);
                    let eof = filled < start + CHUNK;
                    if !eof {
                        // The carried bytes hold no newline (they follow the
                        // last one), so only the fresh part is searched: a
                        // line of many chunks (a final read of every key)
                        // stays linear to read.
                        match buf[start..].iter().rposition(|&b| b == b'\n') {
                            Some(i) => {
                                let i = start + i;
                                carry.extend_from_slice(&buf[i + 1..]);
                                buf.truncate(i + 1);
                            }
                            None => {
                                // one line longer than a chunk: keep reading it
                                carry = buf;
                                continue;
                            }
                        }
                    }
                    if !buf.is_empty() && work_tx.send((id, buf)).is_err() {
                        return Ok(());
                    }
                    id += 1;
                    if eof {
                        return Ok(());
                    }
                }
            });
            let mut builder = Builder::with_size_hint(size_hint);
            let mut pending: BTreeMap<u64, Parsed> = BTreeMap::new();
            let mut want = 0u64;
            let mut base = 0u64;
            let mut failure: Option<InvalidHistory> = None;
            'outer: for (id, parsed) in done_rx.iter() {
                pending.insert(id, parsed);
                while let Some(p) = pending.remove(&want) {
                    want += 1;
                    let mut scratch = Vec::with_capacity(8);
                    for (line, item) in &p.events {
                        let r = match item {
                            Item::Fast(raw) => builder.push_client_event(
                                base + line,
                                &p.chunk.view(&p.bytes, raw, &mut scratch),
                            ),
                            Item::Slow(ev) => builder.push(base + line, ev),
                        };
                        if let Err(e) = r {
                            failure = Some(builder.first_violation(e));
                            break 'outer;
                        }
                    }
                    if let Some((line, message)) = p.error {
                        failure = Some(builder.first_violation(InvalidHistory {
                            line: base + line,
                            message,
                        }));
                        break 'outer;
                    }
                    base += p.lines;
                    let Parsed {
                        mut events,
                        mut chunk,
                        bytes,
                        ..
                    } = p;
                    events.clear();
                    chunk.mops.clear();
                    chunk.vals.clear();
                    spare_parsed
                        .lock()
                        .expect("spare buffers")
                        .push((events, chunk));
                    spare_bytes.lock().expect("spare buffers").push(bytes);
                }
            }
            drop(done_rx);
            let read = reader.join().expect("reader thread");
            if let Some(e) = failure {
                return Err(Ok(e));
            }
            read.map_err(Err)?;
            builder.finish().map_err(Ok)
        })
    }
}

/// Reads and validates a history file.
pub fn read_history_file(path: &Path) -> Result<History, ReadError> {
    let p = path.display().to_string();
    let file = File::open(path).map_err(|source| ReadError::Io {
        path: p.clone(),
        source,
    })?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    read_history_sized(file, size).map_err(|e| match e {
        Ok(source) => ReadError::Invalid {
            path: p.clone(),
            source,
        },
        Err(source) => ReadError::Io {
            path: p.clone(),
            source,
        },
    })
}

/// Validates events already in memory (line numbers are positions + 1).
pub fn build_history(events: &[Event]) -> Result<History, InvalidHistory> {
    let mut builder = Builder::new();
    for (i, ev) in events.iter().enumerate() {
        if let Err(e) = builder.push(i as u64 + 1, ev) {
            return Err(builder.first_violation(e));
        }
    }
    builder.finish()
}
