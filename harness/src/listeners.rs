//! The listeners every execution's run events go to (`crate::events`):
//! `history.jsonl`, `messages.jsonl`, `nodes/<name>.log` and the progress
//! bar. Each file is written in whole lines, so a run killed at any moment
//! leaves files a reader can take up to their last line.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ladon_checker::writer::HistoryWriter;

use crate::events::{Listeners, MessageEvent, RunEvent, RunListener};

/// The listeners of a run writing into `dir`, the same for every
/// execution: `history.jsonl`, `messages.jsonl` (when the execution
/// reports messages), `nodes/<name>.log`, then `extra` (the progress bar).
pub fn for_run_dir(dir: &Path, extra: Listeners) -> io::Result<Listeners> {
    let mut l = Listeners::new();
    l.push(HistoryFile::create(&dir.join("history.jsonl"))?);
    l.push(MessagesFile::new(dir));
    l.push(NodeLogs::new(dir));
    l.push(extra);
    Ok(l)
}

/// `history.jsonl`: one unbuffered write per event, so the file holds
/// every recorded event in whole lines whenever the run stops.
pub struct HistoryFile {
    writer: HistoryWriter<File>,
}

impl HistoryFile {
    pub fn create(path: &Path) -> io::Result<HistoryFile> {
        Ok(HistoryFile {
            writer: HistoryWriter::new(File::create(path)?),
        })
    }
}

impl RunListener for HistoryFile {
    fn on_event(&mut self, event: &RunEvent<'_>) -> io::Result<()> {
        match event.history() {
            Some(e) => self.writer.write(e),
            None => Ok(()),
        }
    }
}

/// Lines buffered and written out whole: when the buffer passes 64 KiB,
/// when a progress event comes 50 ms or more after the last write, at the
/// end and when dropped. A run killed with SIGKILL leaves whole lines, at
/// most one progress interval short.
struct LineFile {
    file: File,
    buf: Vec<u8>,
    last_write: Instant,
    error: Option<io::Error>,
}

impl LineFile {
    const CAPACITY: usize = 1 << 16;
    const EVERY: Duration = Duration::from_millis(50);

    fn open(path: &Path, append: bool) -> io::Result<LineFile> {
        let file = if append {
            OpenOptions::new().create(true).append(true).open(path)?
        } else {
            File::create(path)?
        };
        Ok(LineFile {
            file,
            buf: Vec::with_capacity(Self::CAPACITY + 512),
            last_write: Instant::now(),
            error: None,
        })
    }

    /// After a whole line: writes the buffer out if it is full.
    fn end_line(&mut self) {
        if self.buf.len() >= Self::CAPACITY {
            self.write_out();
        }
    }

    /// Writes the buffer out if the last write is 50 ms old.
    fn tick(&mut self) {
        if !self.buf.is_empty() && self.last_write.elapsed() >= Self::EVERY {
            self.write_out();
        }
    }

    fn write_out(&mut self) {
        if !self.buf.is_empty() {
            if let Err(e) = self.file.write_all(&self.buf) {
                self.error.get_or_insert(e);
            }
            self.buf.clear();
        }
        self.last_write = Instant::now();
    }

    /// Writes out; the first error this file met, if any.
    fn finish(&mut self) -> io::Result<()> {
        self.write_out();
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for LineFile {
    fn drop(&mut self) {
        self.write_out();
    }
}

/// Writes `"name"`: JSON-quoted, without serde for the plain names nodes
/// and clients have.
fn push_quoted(out: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// One `messages.jsonl` line, keys in order (the bytes a `serde_json`
/// object of the same fields has always had).
pub fn message_line(out: &mut Vec<u8>, m: &MessageEvent<'_>) {
    out.extend_from_slice(b"{\"event\":\"");
    out.extend_from_slice(m.event.as_str().as_bytes());
    out.extend_from_slice(b"\",\"from\":");
    push_quoted(out, m.from);
    let _ = write!(out, ",\"id\":{}", m.id);
    if let Some(r) = m.reason {
        out.extend_from_slice(b",\"reason\":");
        let _ = serde_json::to_writer(&mut *out, r);
    }
    out.extend_from_slice(b",\"summary\":");
    let _ = serde_json::to_writer(&mut *out, m.summary);
    let _ = write!(out, ",\"time\":{},\"to\":", m.time);
    push_quoted(out, m.to);
    out.extend_from_slice(b",\"writes\":[");
    for (i, (k, v)) in m.writes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        let _ = serde_json::to_writer(&mut *out, k);
        let _ = write!(out, ",{v}]");
    }
    out.extend_from_slice(b"]}\n");
}

/// `messages.jsonl`: every node-to-node message event, created when the
/// run starts if the execution reports messages.
pub struct MessagesFile {
    path: PathBuf,
    file: Option<LineFile>,
}

impl MessagesFile {
    pub fn new(run_dir: &Path) -> MessagesFile {
        MessagesFile {
            path: run_dir.join("messages.jsonl"),
            file: None,
        }
    }

    /// Creates the file now (for executions that emit no `Start`, such as
    /// the router's benchmark).
    pub fn create(path: &Path) -> io::Result<MessagesFile> {
        Ok(MessagesFile {
            path: path.to_path_buf(),
            file: Some(LineFile::open(path, false)?),
        })
    }
}

impl RunListener for MessagesFile {
    fn on_event(&mut self, event: &RunEvent<'_>) -> io::Result<()> {
        match event {
            RunEvent::Start { messages: true, .. } if self.file.is_none() => {
                self.file = Some(LineFile::open(&self.path, false)?);
            }
            RunEvent::Message(m) => {
                if let Some(f) = &mut self.file {
                    message_line(&mut f.buf, m);
                    f.end_line();
                }
            }
            RunEvent::Progress { .. } => {
                if let Some(f) = &mut self.file {
                    f.tick();
                }
            }
            _ => {}
        }
        // A full disk shows up at `finish`, when the run's other files are
        // written: the history matters more than its sidecar.
        Ok(())
    }

    fn wants_messages(&self) -> bool {
        true
    }

    fn finish(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.finish(),
            None => Ok(()),
        }
    }
}

/// `nodes/<name>.log`: `<time> <line>` for each line about a node (its
/// own log lines in a simulation, Ladon's complaints about it in a live
/// run). Opened for appending when the run starts: a live node's stderr
/// goes to the same file.
pub struct NodeLogs {
    dir: PathBuf,
    names: Vec<String>,
    files: Vec<LineFile>,
}

impl NodeLogs {
    pub fn new(run_dir: &Path) -> NodeLogs {
        NodeLogs {
            dir: run_dir.join("nodes"),
            names: Vec::new(),
            files: Vec::new(),
        }
    }
}

impl RunListener for NodeLogs {
    fn on_event(&mut self, event: &RunEvent<'_>) -> io::Result<()> {
        match event {
            RunEvent::Start { nodes, .. } if !nodes.is_empty() => {
                std::fs::create_dir_all(&self.dir)?;
                for n in nodes.iter() {
                    self.files
                        .push(LineFile::open(&self.dir.join(format!("{n}.log")), true)?);
                    self.names.push(n.clone());
                }
            }
            RunEvent::NodeLog { node, time, line } => {
                if let Some(i) = self.names.iter().position(|n| n == node) {
                    let f = &mut self.files[i];
                    let _ = writeln!(f.buf, "{time} {line}");
                    f.end_line();
                }
            }
            RunEvent::Progress { .. } => self.files.iter_mut().for_each(LineFile::tick),
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        let mut first = Ok(());
        for f in &mut self.files {
            let r = f.finish();
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

/// The progress of the faulty phase on stderr: a bar on a terminal, a
/// line per tenth otherwise; `clock` says whose time ("virtual",
/// "wall-clock").
pub struct Progress {
    clock: &'static str,
    bar: Option<indicatif::ProgressBar>,
    total_ns: u64,
    last_tenth: u64,
}

impl Progress {
    pub fn new(total_ns: u64, clock: &'static str) -> Progress {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total_ns / 1_000_000);
            bar.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "{{bar:40}} {{pos}}/{{len}} {clock} ms {{msg}}"
                ))
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            clock,
            bar,
            total_ns,
            last_tenth: 0,
        }
    }
}

impl RunListener for Progress {
    fn on_event(&mut self, event: &RunEvent<'_>) -> io::Result<()> {
        if let RunEvent::Progress { now, end } = *event {
            match &self.bar {
                Some(bar) => bar.set_position(now.min(self.total_ns) / 1_000_000),
                None => {
                    for tenth in tenths_passed(&mut self.last_tenth, now, end) {
                        eprintln!("  {tenth}0% of {} time", self.clock);
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        Ok(())
    }
}

/// The tenths of `total` reached since the last call, every one of them
/// (a progress event that comes rarely must not skip a line): `last` is
/// the last tenth printed.
pub fn tenths_passed(last: &mut u64, now: u64, total: u64) -> std::ops::RangeInclusive<u64> {
    let reached = now.min(total) * 10 / total.max(1);
    let from = *last + 1;
    *last = (*last).max(reached);
    from..=reached
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::MsgEvent;
    use ladon_checker::history::Key;

    #[test]
    fn a_message_line_has_the_bytes_of_the_json_object_it_replaces() {
        let writes = [(Key::Int(3), 7), (Key::from("k"), 8)];
        let m = MessageEvent {
            time: 12,
            event: MsgEvent::Deliver,
            id: 4,
            from: "n1",
            to: "n 2",
            summary: "Gossip { \"x\" }",
            reason: None,
            writes: &writes,
        };
        let mut line = Vec::new();
        message_line(&mut line, &m);
        let old = serde_json::json!({
            "time": 12, "event": "deliver", "id": 4, "from": "n1", "to": "n 2",
            "summary": "Gossip { \"x\" }",
            "writes": [serde_json::json!([Key::Int(3), 7]), serde_json::json!([Key::from("k"), 8])],
        });
        assert_eq!(
            String::from_utf8(line).unwrap(),
            format!("{}\n", serde_json::to_string(&old).unwrap())
        );
        let mut dropped = Vec::new();
        message_line(
            &mut dropped,
            &MessageEvent {
                reason: Some("partition"),
                writes: &[],
                ..m
            },
        );
        let v: serde_json::Value = serde_json::from_slice(&dropped).unwrap();
        assert_eq!(v["reason"], "partition");
    }

    #[test]
    fn tenths_are_printed_once_each_even_when_progress_comes_rarely() {
        let mut last = 0;
        assert_eq!(
            tenths_passed(&mut last, 25, 100).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(tenths_passed(&mut last, 29, 100).count(), 0);
        assert_eq!(
            tenths_passed(&mut last, 100, 100).collect::<Vec<_>>(),
            (3..=10).collect::<Vec<_>>()
        );
    }
}
