//! Reading a history file as a stream of JSON Lines. Each line is parsed,
//! validated and folded into the compact [`History`] by a [`Builder`]; the
//! first broken rule stops reading with its line number.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::Path;

use crate::history::Event;
use crate::model::{Builder, History, InvalidHistory};

/// Longest line a streamed history may hold (a mapped file's lines are
/// not copied, so only streams are capped).
pub const MAX_LINE: usize = 64 << 20;

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
        // Tools that rewrite histories read through here: unknown fields
        // are kept (the checker's reader skips them).
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
pub(crate) fn describe_json_error(e: &serde_json::Error) -> String {
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
    parallel::read(input, workers(), size_hint)
}

/// Parsing threads: the builder needs a core of its own as well.
fn workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(3)
}

mod parallel {
    use std::collections::BTreeMap;
    use std::io::{self, Read};
    use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
    use std::sync::{Arc, Mutex};

    use super::{describe_json_error, MAX_LINE};
    use crate::fastparse::{parse_at, Chunk, RawEvent};
    use crate::history::Event;
    use crate::model::{Builder, History, InvalidHistory};

    const CHUNK: usize = 1 << 20;

    /// A line parsed by the fast path, or by serde.
    enum Item {
        Fast(RawEvent),
        Slow(Event),
    }

    /// A parsed chunk: its events (1-based line within the chunk), the
    /// number of lines, the first broken line if any, and the chunk's bytes
    /// and values the fast path's events refer to.
    struct Parsed<B> {
        events: Vec<(u64, Item)>,
        lines: u64,
        error: Option<(u64, String)>,
        bytes: B,
        chunk: Chunk,
    }

    /// Buffers of consumed chunks, reused so that reading does not keep
    /// faulting in fresh pages.
    type Spare = (Vec<(u64, Item)>, Chunk);

    fn parse_chunk<B: AsRef<[u8]>>(bytes: B, spare: Option<Spare>) -> Parsed<B> {
        let data = bytes.as_ref();
        let (mut events, mut chunk) = spare.unwrap_or_else(|| {
            (
                Vec::with_capacity(data.len() / 150),
                Chunk {
                    mops: Vec::with_capacity(data.len() / 60),
                    vals: Vec::with_capacity(data.len() / 8),
                },
            )
        });
        let mut lines = 0;
        let mut error = None;
        let mut pos = 0usize;
        while pos < data.len() {
            lines += 1;
            if let Some((ev, end)) = parse_at(data, pos, &mut chunk) {
                events.push((lines, Item::Fast(ev)));
                pos = end + 1;
                continue;
            }
            let end = data[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |i| pos + i);
            let body = &data[pos..end];
            pos = end + 1;
            if body.iter().all(|b| b.is_ascii_whitespace()) {
                error = Some((lines, "blank line (every line must hold one event)".into()));
                break;
            }
            match crate::history::parse_event_line(body) {
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

    /// Reads from a stream: a reader thread fills 1 MB buffers that end at
    /// a newline (buffers are reused once the builder is done with them).
    pub fn read<R: Read + Send>(
        mut input: R,
        workers: usize,
        size_hint: u64,
    ) -> Result<History, Result<InvalidHistory, io::Error>> {
        let spare_bytes: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
        let spare_bytes = &spare_bytes;
        run(
            workers,
            size_hint,
            move |work_tx: SyncSender<(u64, Vec<u8>)>| -> io::Result<()> {
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
                                // one line longer than a chunk: keep reading it,
                                // up to the cap (`/dev/zero` has no newline)
                                if buf.len() > MAX_LINE {
                                    return Err(io::Error::new(
                                        io::ErrorKind::InvalidData,
                                        format!(
                                            "a line over the {} MiB limit (no newline in {} bytes); \
                                             is this a history file?",
                                            MAX_LINE >> 20,
                                            buf.len()
                                        ),
                                    ));
                                }
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
            },
            |bytes: Vec<u8>| spare_bytes.lock().expect("spare buffers").push(bytes),
        )
    }

    /// Reads from bytes already in memory (a mapped file): chunks are
    /// slices that end at a newline, so nothing is copied. Once a chunk is
    /// folded in, `release(offset, len)` is called for the whole 4 KiB pages
    /// only it covers (no other chunk, and nothing else, refers to them
    /// any more).
    pub fn read_slice(
        data: &[u8],
        workers: usize,
        size_hint: u64,
        release: impl Fn(usize, usize),
    ) -> Result<History, Result<InvalidHistory, io::Error>> {
        const PAGE: usize = 4096;
        let base = data.as_ptr() as usize;
        run(
            workers,
            size_hint,
            move |work_tx: SyncSender<(u64, &[u8])>| -> io::Result<()> {
                let (mut pos, mut id) = (0usize, 0u64);
                while pos < data.len() {
                    let mut end = (pos + CHUNK).min(data.len());
                    if end < data.len() {
                        end = data[end..]
                            .iter()
                            .position(|&b| b == b'\n')
                            .map_or(data.len(), |i| end + i + 1);
                    }
                    if work_tx.send((id, &data[pos..end])).is_err() {
                        return Ok(());
                    }
                    id += 1;
                    pos = end;
                }
                Ok(())
            },
            |chunk: &[u8]| {
                let a = chunk.as_ptr() as usize - base;
                let b = a + chunk.len();
                let (a, b) = (a.div_ceil(PAGE) * PAGE, b / PAGE * PAGE);
                if b > a {
                    release(a, b - a);
                }
            },
        )
    }

    /// The pipeline: `produce` sends numbered chunks of whole lines,
    /// `workers` threads parse them, and this thread folds them into the
    /// builder in order, handing each chunk's bytes to `recycle` after.
    fn run<B: AsRef<[u8]> + Send>(
        workers: usize,
        size_hint: u64,
        produce: impl FnOnce(SyncSender<(u64, B)>) -> io::Result<()> + Send,
        recycle: impl Fn(B),
    ) -> Result<History, Result<InvalidHistory, io::Error>> {
        let spare_parsed: Mutex<Vec<Spare>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            let (work_tx, work_rx) = sync_channel::<(u64, B)>(workers * 2);
            let work_rx: Arc<Mutex<Receiver<(u64, B)>>> = Arc::new(Mutex::new(work_rx));
            let (done_tx, done_rx) = sync_channel::<(u64, Parsed<B>)>(workers * 2);
            let spare_parsed = &spare_parsed;
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
            let reader = s.spawn(move || produce(work_tx));
            let mut builder = Builder::with_size_hint(size_hint);
            let mut pending: BTreeMap<u64, Parsed<B>> = BTreeMap::new();
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
                                &p.chunk.view(p.bytes.as_ref(), raw, &mut scratch),
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
                    recycle(bytes);
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
    let meta = file.metadata().ok();
    let size = meta.as_ref().map_or(0, |m| m.len());
    // A regular file is mapped and parsed in place (no copy into buffers);
    // anything else (a pipe, or a file that cannot be mapped) is streamed.
    // The map is only read, and only the length known at open is used, so
    // a history still being appended to is checked as far as it went.
    let regular = meta.as_ref().is_some_and(|m| m.is_file()) && size > 0;
    // SAFETY: the map is read-only and dropped before this returns;
    // truncating the file while it is checked is not supported.
    let map = if regular {
        unsafe { memmap2::Mmap::map(&file) }.ok()
    } else {
        None
    };
    let result = match &map {
        Some(map) => {
            #[cfg(unix)]
            let _ = map.advise(memmap2::Advice::Sequential);
            // Pages already folded into the model leave this process's
            // memory (they stay in the page cache): resident memory is the
            // model's, not the file's.
            parallel::read_slice(map, workers(), size, |offset, len| {
                // SAFETY: the pages lie wholly inside one chunk that has
                // been consumed; nothing refers to them any more, and a
                // read-only file mapping reads back the same bytes anyway.
                #[cfg(unix)]
                let _ = unsafe {
                    map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len)
                };
            })
        }
        None => read_history_sized(file, size),
    };
    result.map_err(|e| match e {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An `ok` transaction on process `p`: two lines, indices `2i`, `2i + 1`.
    fn txn(i: u64, p: u64, value: &str) -> String {
        format!(
            "{{\"index\":{},\"time\":{},\"type\":\"invoke\",\"process\":{p},\"node\":\"n1\",\"f\":\"txn\",\"value\":{value}}}\n\
             {{\"index\":{},\"time\":{},\"type\":\"ok\",\"process\":{p},\"node\":\"n1\",\"f\":\"txn\",\"value\":{value}}}\n",
            2 * i,
            2 * i,
            2 * i + 1,
            2 * i + 1
        )
    }

    /// `n` appends of 0..n to key x by one process.
    fn appends(n: u64) -> String {
        (0..n)
            .map(|i| txn(i, 0, &format!("[[\"append\",\"x\",{i}]]")))
            .collect()
    }

    /// Reads `text` both ways: streamed, and from a (mapped) file.
    fn both(text: &str) -> [Result<History, InvalidHistory>; 2] {
        let streamed = read_history(text.as_bytes()).map_err(|e| e.expect("no I/O error"));
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("h.jsonl");
        std::fs::write(&path, text).expect("write");
        let mapped = read_history_file(&path).map_err(|e| match e {
            ReadError::Invalid { source, .. } => source,
            ReadError::Io { source, .. } => panic!("I/O error {source}"),
        });
        [streamed, mapped]
    }

    #[test]
    fn line_numbers_count_across_chunk_boundaries() {
        // About 3.5 MB of lines (several 1 MiB chunks), then a broken one,
        // then more lines.
        let good = appends(15_000);
        let lines = good.lines().count() as u64;
        assert!(good.len() > 3 * (1 << 20), "{} bytes", good.len());
        let text = format!("{good}{{\"index\":{lines},\"time\":1,\n{}", txn(0, 1, "[]"));
        for r in both(&text) {
            let Err(e) = r else {
                panic!("the broken line was accepted")
            };
            assert_eq!(e.line, lines + 1, "{}", e.message);
            assert!(e.message.starts_with("malformed event"), "{}", e.message);
        }
        // Without the broken line, every event is read.
        for r in both(&good) {
            assert_eq!(r.expect("valid").ops.len(), 15_000);
        }
    }

    #[test]
    fn a_line_over_a_mebibyte_is_read_whole() {
        // A read of 200,000 values: one line of about 1.3 MB.
        let n = 200_000usize;
        let vals: Vec<String> = (0..n).map(|i| (1_000_000 + i).to_string()).collect();
        let value = format!("[[\"r\",\"x\",[{}]]]", vals.join(","));
        let text = txn(0, 0, "[[\"r\",\"x\",null]]")
            .lines()
            .next()
            .unwrap()
            .to_string()
            + "\n"
            + txn(0, 0, &value).lines().nth(1).unwrap()
            + "\n";
        assert!(text.len() > 1 << 20);
        for r in both(&text) {
            let h = r.expect("valid");
            let m = h.mops.iter().find(|m| m.obs_len > 0).expect("the read");
            assert_eq!(m.obs_len as usize, n);
            assert_eq!(h.obs(m)[0], 1_000_000);
            assert_eq!(h.obs(m)[n - 1], 1_000_000 + n as i64 - 1);
        }
    }

    #[test]
    fn a_torn_last_line_is_reported_with_its_number() {
        let good = appends(10);
        let torn = format!("{good}{{\"index\":20,\"time\":20,\"type\":\"inv");
        for r in both(&torn) {
            let Err(e) = r else {
                panic!("the torn line was accepted")
            };
            assert_eq!(e.line, 21);
            assert!(e.message.contains("EOF"), "{}", e.message);
        }
        // A whole last line without its newline is fine.
        let whole = good.trim_end_matches('\n');
        for r in both(whole) {
            assert_eq!(r.expect("valid").ops.len(), 10);
        }
    }

    #[test]
    fn event_reader_counts_lines_and_refuses_blank_ones() {
        let text = format!("{}\n{}", txn(0, 0, "[]").trim_end(), txn(1, 1, "[]"));
        let mut r = EventReader::new(text.as_bytes());
        assert_eq!(r.next_event().ok().unwrap().unwrap().0, 1);
        assert_eq!(r.next_event().ok().unwrap().unwrap().0, 2);
        let blank = format!("{}\n\n", txn(0, 0, "[]").lines().next().unwrap());
        let mut r = EventReader::new(blank.as_bytes());
        assert!(r.next_event().is_ok());
        let e = r.next_event().err().unwrap().ok().unwrap();
        assert_eq!(e.line, 2);
        assert!(e.message.starts_with("blank line"));
    }
}
