//! The simulation's side of the run events: its recorder (the shared
//! [`crate::record::Recorder`] stamped with virtual time) and the world's
//! observer, both emitting to the run's listeners. Listeners, not logic:
//! the driver emits, `crate::listeners` write.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use ladon_adapters::node::Node;
use ladon_checker::history::{EventType, Mop};
use serde_json::Value as Json;

pub use crate::events::CountingSink;
use crate::events::{MessageEvent, MsgEvent, RunEvent, RunListener};
use crate::sim::Observer;

/// The run's listeners, shared by the recorder and the world's observer
/// (one thread: a `RefCell`, no lock).
pub type Shared<'h> = Rc<RefCell<&'h mut dyn RunListener>>;

/// Numbers events and hands them to the listeners.
pub struct Recorder<'h> {
    core: crate::record::Recorder,
    out: Shared<'h>,
    pub names: Vec<String>,
}

impl<'h> Recorder<'h> {
    pub fn new(out: Shared<'h>, names: Vec<String>) -> Self {
        Recorder {
            core: crate::record::Recorder::new(names.clone()),
            out,
            names,
        }
    }

    pub fn len(&self) -> u64 {
        self.core.len()
    }

    pub fn is_empty(&self) -> bool {
        self.core.is_empty()
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
        let mut out = self.out.borrow_mut();
        self.core
            .client(&mut **out, time, kind, process, node, f, ops, error, meta)
    }

    pub fn nemesis(&mut self, time: u64, f: &str, value: Json) -> io::Result<()> {
        let mut out = self.out.borrow_mut();
        self.core.nemesis(&mut **out, time, f, value)
    }

    /// Any other event (start, progress).
    pub fn emit(&mut self, event: &RunEvent<'_>) -> io::Result<()> {
        self.out.borrow_mut().on_event(event)
    }

    /// Node names as JSON, for fault values.
    pub fn names_json(&self, nodes: &[usize]) -> Json {
        self.core.names_json(nodes)
    }
}

/// The world's observer: its messages and node log lines as run events.
pub struct EventObserver<'h, N: Node> {
    out: Shared<'h>,
    names: Vec<String>,
    wants_messages: bool,
    _node: std::marker::PhantomData<fn() -> N>,
}

impl<'h, N: Node> EventObserver<'h, N> {
    pub fn new(out: Shared<'h>, names: Vec<String>) -> Self {
        let wants_messages = out.borrow().wants_messages();
        EventObserver {
            out,
            names,
            wants_messages,
            _node: std::marker::PhantomData,
        }
    }
}

impl<N: Node> Observer<N::Msg> for EventObserver<'_, N> {
    fn wants_messages(&self) -> bool {
        self.wants_messages
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
        let writes = N::msg_writes(msg);
        let m = MessageEvent {
            time,
            event,
            id,
            from: &self.names[from],
            to: &self.names[to],
            summary: &summary,
            reason: None,
            writes: &writes,
        };
        // A sidecar's trouble shows up when the run's files are finished.
        let _ = self.out.borrow_mut().on_event(&RunEvent::Message(m));
    }

    fn node_log(&mut self, node: usize, time: u64, line: &str) {
        let _ = self.out.borrow_mut().on_event(&RunEvent::NodeLog {
            node: &self.names[node],
            time,
            line,
        });
    }
}
