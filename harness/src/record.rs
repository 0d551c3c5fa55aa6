//! The recorder: turns what an execution's clients and nemesis did into
//! history events (numbered without gaps, times that never decrease, node
//! names) and emits them to the run's listeners. One for every execution:
//! the simulator calls it with virtual time, a live run under a lock with
//! wall-clock time (`live::recorder`).

use std::io;

use ladon_checker::history::{Event, EventType, Mop, Payload, Process};
use serde_json::Value as Json;

use crate::events::{RunEvent, RunListener};

/// Numbers and stamps history events.
#[derive(Debug, Clone)]
pub struct Recorder {
    next_index: u64,
    last_time: u64,
    names: Vec<String>,
}

impl Recorder {
    /// A recorder for nodes named `names` (index `i` is node `i`).
    pub fn new(names: Vec<String>) -> Recorder {
        Recorder {
            next_index: 0,
            last_time: 0,
            names,
        }
    }

    /// Events recorded so far.
    pub fn len(&self) -> u64 {
        self.next_index
    }

    pub fn is_empty(&self) -> bool {
        self.next_index == 0
    }

    /// The time of the last event.
    pub fn last_time(&self) -> u64 {
        self.last_time
    }

    pub fn names(&self) -> &[String] {
        &self.names
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

    /// The next index, and `time` clamped so times never decrease.
    fn stamp(&mut self, time: u64) -> (u64, u64) {
        let index = self.next_index;
        self.next_index += 1;
        self.last_time = self.last_time.max(time);
        (index, self.last_time)
    }

    /// Records a client event at `time` on node `node`; hands `ops` back so
    /// the caller need not copy them first.
    #[allow(clippy::too_many_arguments)]
    pub fn client(
        &mut self,
        out: &mut dyn RunListener,
        time: u64,
        kind: EventType,
        process: u64,
        node: usize,
        f: &str,
        ops: Vec<Mop>,
        error: Option<String>,
        meta: Option<Json>,
    ) -> io::Result<Vec<Mop>> {
        let (index, time) = self.stamp(time);
        let ev = Event {
            index,
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
        out.on_event(&RunEvent::Operation(&ev))?;
        match ev.value {
            Payload::Ops(ops) => Ok(ops),
            Payload::Fault(_) => unreachable!("built as Ops above"),
        }
    }

    /// Records a nemesis step (or an adapter's own event, such as a node
    /// exiting) at `time`.
    pub fn nemesis(
        &mut self,
        out: &mut dyn RunListener,
        time: u64,
        f: &str,
        value: Json,
    ) -> io::Result<()> {
        let (index, time) = self.stamp(time);
        let ev = Event::nemesis(index, time, f, value);
        out.on_event(&RunEvent::Nemesis(&ev))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_have_no_gaps_and_times_never_decrease() {
        let mut rec = Recorder::new(vec!["n1".into(), "n2".into()]);
        let mut out: Vec<Event> = Vec::new();
        rec.client(
            &mut out,
            10,
            EventType::Invoke,
            0,
            1,
            "txn",
            vec![],
            None,
            None,
        )
        .unwrap();
        // A later stamp from another thread's clock may be earlier.
        rec.nemesis(&mut out, 7, "heal", Json::Null).unwrap();
        let got: Vec<(u64, u64)> = out.iter().map(|e| (e.index, e.time)).collect();
        assert_eq!(got, [(0, 10), (1, 10)]);
        assert_eq!(out[0].node.as_deref(), Some("n2"));
        assert_eq!(rec.len(), 2);
    }
}
