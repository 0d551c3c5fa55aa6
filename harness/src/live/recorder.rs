//! The live history: events are stamped with the harness clock (nanoseconds
//! since the test started), numbered, and streamed to `history.jsonl` under
//! one lock, so `index` has no gaps and `time` never decreases.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ladon_checker::history::{Event, EventType, Mop, Payload, Process};
use ladon_checker::writer::HistoryWriter;
use serde_json::{Map, Value as Json};

/// Shared, cloneable handle to the history being written.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
    start: Instant,
}

struct Inner {
    writer: HistoryWriter<BufWriter<File>>,
    next_index: u64,
    last_time: u64,
    events: Vec<Event>,
    error: Option<String>,
}

impl Recorder {
    pub fn create(path: &Path, start: Instant) -> io::Result<Recorder> {
        let f = File::create(path)?;
        Ok(Recorder {
            inner: Arc::new(Mutex::new(Inner {
                writer: HistoryWriter::new(BufWriter::new(f)),
                next_index: 0,
                last_time: 0,
                events: Vec::new(),
                error: None,
            })),
            start,
        })
    }

    /// Nanoseconds since the test started.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    fn push(&self, mut ev: Event) -> u64 {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        ev.index = g.next_index;
        ev.time = self.now_ns().max(g.last_time);
        g.next_index += 1;
        g.last_time = ev.time;
        if let Err(e) = g.writer.write(&ev) {
            g.error
                .get_or_insert_with(|| format!("cannot write history: {e}"));
        }
        let index = ev.index;
        g.events.push(ev);
        index
    }

    /// Records a client event.
    #[allow(clippy::too_many_arguments)]
    pub fn client(
        &self,
        kind: EventType,
        process: u64,
        node: &str,
        f: &str,
        ops: Vec<Mop>,
        error: Option<String>,
        meta: Option<Json>,
    ) -> u64 {
        self.push(Event {
            index: 0,
            time: 0,
            kind,
            process: Process::Client(process),
            node: Some(node.to_string()),
            f: f.to_string(),
            value: Payload::Ops(ops),
            error,
            meta,
            extra: Map::new(),
        })
    }

    /// Records a fault the nemesis injected (or an adapter-specific event
    /// such as a node exiting on its own).
    pub fn nemesis(&self, f: &str, value: Json) -> u64 {
        // `push` stamps the index and time.
        self.push(Event::nemesis(0, 0, f, value))
    }

    /// Every event recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .events
            .clone()
    }

    /// The first write error, if any (the history file is then incomplete).
    pub fn write_error(&self) -> Option<String> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .error
            .clone()
    }
}
