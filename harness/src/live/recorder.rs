//! The live history: the shared [`crate::record::Recorder`] under one lock,
//! stamped with the harness clock (nanoseconds since the test started), its
//! events emitted to the run's listeners (`crate::events::EventBus`) under
//! the same lock, so `index` has no gaps, `time` never decreases and the
//! history file is in index order. It also tallies what the run's summary
//! reports (operations completed, writes).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use ladon_checker::history::{EventType, Mop, F_FINAL, F_TXN};
use serde_json::Value as Json;

use crate::events::{EventBus, RunEvent};

/// What the history holds so far, counted as it is recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub events: u64,
    /// Client operations (txn and final) that completed, `info` included.
    pub completed_ops: u64,
    /// Write micro-operations clients invoked.
    pub writes: u64,
    /// Transactions with a write that completed `ok`.
    pub acknowledged_writes: u64,
    /// The last event's time.
    pub end_ns: u64,
}

struct State {
    core: crate::record::Recorder,
    tally: Tally,
    error: Option<String>,
}

/// Shared, cloneable handle to the history being recorded.
#[derive(Clone)]
pub struct Recorder {
    state: Arc<Mutex<State>>,
    bus: EventBus,
    start: Instant,
}

impl Recorder {
    /// A recorder for nodes `names`, emitting to `bus`, with time 0 at `start`.
    pub fn new(bus: EventBus, names: Vec<String>, start: Instant) -> Recorder {
        Recorder {
            state: Arc::new(Mutex::new(State {
                core: crate::record::Recorder::new(names),
                tally: Tally::default(),
                error: None,
            })),
            bus,
            start,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The run's listeners (for the router's messages and progress).
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// Nanoseconds since the test started.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    /// Records a client event on node `node` (its index).
    #[allow(clippy::too_many_arguments)]
    pub fn client(
        &self,
        kind: EventType,
        process: u64,
        node: usize,
        f: &str,
        ops: Vec<Mop>,
        error: Option<String>,
        meta: Option<Json>,
    ) {
        let mut g = self.lock();
        let st = &mut *g;
        let writes = ops.iter().filter(|m| m.is_write()).count() as u64;
        let t = &mut st.tally;
        match kind {
            EventType::Invoke if f == F_TXN => t.writes += writes,
            EventType::Invoke => {}
            _ if f == F_TXN || f == F_FINAL => {
                t.completed_ops += 1;
                if kind == EventType::Ok && f == F_TXN && writes > 0 {
                    t.acknowledged_writes += 1;
                }
            }
            _ => {}
        }
        let mut out = self.bus.lock();
        let r = st.core.client(
            &mut *out,
            self.now_ns(),
            kind,
            process,
            node,
            f,
            ops,
            error,
            meta,
        );
        st.done(r.map(|_| ()));
    }

    /// Records a fault the nemesis injected (or an adapter-specific event
    /// such as a node exiting on its own).
    pub fn nemesis(&self, f: &str, value: Json) {
        let mut g = self.lock();
        let st = &mut *g;
        let mut out = self.bus.lock();
        let r = st.core.nemesis(&mut *out, self.now_ns(), f, value);
        st.done(r);
    }

    /// Emits a progress event (the faulty phase's `now` of `end`).
    pub fn progress(&self, end: u64) {
        let _ = self.bus.emit(&RunEvent::Progress {
            now: self.now_ns(),
            end,
        });
    }

    /// What was recorded so far.
    pub fn tally(&self) -> Tally {
        self.lock().tally.clone()
    }

    /// The outcome of a live run a signal stopped (`signal`): what was
    /// recorded so far, no final phase.
    pub fn interrupted_outcome(&self, signal: &str) -> crate::runner::RunOutcome {
        let tally = self.tally();
        crate::runner::RunOutcome {
            events: tally.events,
            completed_ops: tally.completed_ops,
            writes: tally.writes,
            end_ns: self.now_ns(),
            interrupted: Some(signal.to_string()),
            ..crate::runner::RunOutcome::default()
        }
    }

    /// The first write error, if any (the history file is then incomplete).
    pub fn write_error(&self) -> Option<String> {
        self.lock().error.clone()
    }
}

impl State {
    fn done(&mut self, r: std::io::Result<()>) {
        self.tally.events = self.core.len();
        self.tally.end_ns = self.core.last_time();
        if let Err(e) = r {
            self.error
                .get_or_insert_with(|| format!("cannot write history: {e}"));
        }
    }
}
