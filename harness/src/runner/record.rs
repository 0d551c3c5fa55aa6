//! Where a run's output goes: the history (a stream of events with indices),
//! the message log and the node logs. Listeners, not logic: the driver
//! emits, these write.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use ladon_adapters::node::Node;
use ladon_checker::history::{Event, EventType, Mop, Payload, Process};
use ladon_checker::writer::HistoryWriter;
use serde_json::Value as Json;

use crate::sim::{MsgEvent, Observer};

/// Receives history events in order.
pub trait HistorySink {
    fn record(&mut self, ev: &Event) -> io::Result<()>;
}

/// Streams to `history.jsonl`, flushing each line.
impl<W: Write> HistorySink for HistoryWriter<W> {
    fn record(&mut self, ev: &Event) -> io::Result<()> {
        self.write(ev)
    }
}

/// Keeps events in memory (explore, tests, benchmarks).
impl HistorySink for Vec<Event> {
    fn record(&mut self, ev: &Event) -> io::Result<()> {
        self.push(ev.clone());
        Ok(())
    }
}

/// Counts events and drops them (benchmarks).
#[derive(Default)]
pub struct CountingSink(pub u64);
impl HistorySink for CountingSink {
    fn record(&mut self, _ev: &Event) -> io::Result<()> {
        self.0 += 1;
        Ok(())
    }
}

/// Numbers events and hands them to a sink.
pub struct Recorder<'a> {
    sink: &'a mut dyn HistorySink,
    next_index: u64,
    pub names: Vec<String>,
}

impl<'a> Recorder<'a> {
    pub fn new(sink: &'a mut dyn HistorySink, names: Vec<String>) -> Self {
        Recorder {
            sink,
            next_index: 0,
            names,
        }
    }

    pub fn len(&self) -> u64 {
        self.next_index
    }

    pub fn is_empty(&self) -> bool {
        self.next_index == 0
    }

    /// Records a client event; hands `ops` back so the caller need not
    /// copy them first.
    #[allow(clippy::too_many_arguments)]
    pub fn client(
        &mut self,
        time: u64,
        kind: EventType,
        process: u64,
        node: usize,
        f: &str,
        ops: Vec<Mop>,
        error: Option<String>,
        meta: Option<Json>,
    ) -> io::Result<Vec<Mop>> {
        let ev = Event {
            index: self.next_index,
            time,
            kind,
            process: Process::Client(process),
            node: Some(self.names[node].clone()),
            f: f.to_string(),
            value: Payload::Ops(ops),
            error,
            meta,
            extra: Default::default(),
        };
        self.next_index += 1;
        self.sink.record(&ev)?;
        match ev.value {
            Payload::Ops(ops) => Ok(ops),
            Payload::Fault(_) => unreachable!("built as Ops above"),
        }
    }

    pub fn nemesis(&mut self, time: u64, f: &str, value: Json) -> io::Result<()> {
        let ev = Event::nemesis(self.next_index, time, f, value);
        self.next_index += 1;
        self.sink.record(&ev)
    }

    /// Node names as JSON, for fault values.
    pub fn names_json(&self, nodes: &[usize]) -> Json {
        Json::Array(
            nodes
                .iter()
                .map(|&n| Json::String(self.names[n].clone()))
                .collect(),
        )
    }
}

/// Writes `messages.jsonl` and `nodes/<name>.log` in a run directory.
/// Each `messages.jsonl` line goes to its buffered writer in one write, so
/// the file only ever receives whole lines (a killed run leaves no torn
/// line).
pub struct FileObserver<N: Node> {
    messages: BufWriter<File>,
    line: Vec<u8>,
    logs: Vec<BufWriter<File>>,
    names: Vec<String>,
    _node: std::marker::PhantomData<fn() -> N>,
}

impl<N: Node> FileObserver<N> {
    pub fn create(dir: &Path, names: Vec<String>) -> io::Result<Self> {
        std::fs::create_dir_all(dir.join("nodes"))?;
        let messages = BufWriter::new(File::create(dir.join("messages.jsonl"))?);
        let logs = names
            .iter()
            .map(|n| File::create(dir.join("nodes").join(format!("{n}.log"))).map(BufWriter::new))
            .collect::<io::Result<_>>()?;
        Ok(FileObserver {
            messages,
            line: Vec::new(),
            logs,
            names,
            _node: std::marker::PhantomData,
        })
    }
}

impl<N: Node> Observer<N::Msg> for FileObserver<N> {
    fn wants_messages(&self) -> bool {
        true
    }

    fn message(
        &mut self,
        time: u64,
        event: MsgEvent,
        id: u64,
        from: usize,
        to: usize,
        msg: &N::Msg,
    ) {
        let mut summary = format!("{msg:?}");
        if summary.len() > 120 {
            let mut cut = 117;
            while !summary.is_char_boundary(cut) {
                cut -= 1;
            }
            summary.truncate(cut);
            summary.push_str("...");
        }
        let writes: Vec<Json> = N::msg_writes(msg)
            .into_iter()
            .map(|(k, v)| serde_json::json!([k, v]))
            .collect();
        let line = serde_json::json!({
            "time": time, "event": event.as_str(), "id": id,
            "from": self.names[from], "to": self.names[to],
            "summary": summary, "writes": writes,
        });
        // A full disk shows up when the run's other files are written.
        self.line.clear();
        let _ = serde_json::to_writer(&mut self.line, &line);
        self.line.push(b'\n');
        let _ = self.messages.write_all(&self.line);
    }

    fn node_log(&mut self, node: usize, time: u64, line: &str) {
        let _ = writeln!(self.logs[node], "{time} {line}");
    }
}

impl<N: Node> Drop for FileObserver<N> {
    fn drop(&mut self) {
        let _ = self.messages.flush();
        for l in &mut self.logs {
            let _ = l.flush();
        }
    }
}
