//! Run events: what an execution emits while it runs, and the listeners
//! that consume them. An execution (the simulator, the live process runner,
//! a database run) never writes a run's files itself: it emits
//! [`RunEvent`]s, and the same listeners (`crate::listeners`: the history
//! writer, `messages.jsonl`, the node logs, the progress bar) turn them into
//! files and lines whatever produced them. Sans-IO on the execution's side:
//! an event is plain data borrowed for the call, with the execution's own
//! time in it (virtual in a simulation, wall-clock in a live run), so a
//! simulation's events, and therefore its files, stay byte-identical.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use ladon_checker::history::{Event, Key};
use ladon_checker::writer::HistoryWriter;

/// What a node-to-node message did, for `messages.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgEvent {
    Send,
    Deliver,
    Drop,
}

impl MsgEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            MsgEvent::Send => "send",
            MsgEvent::Deliver => "deliver",
            MsgEvent::Drop => "drop",
        }
    }
}

/// One node-to-node message event (a `messages.jsonl` line).
#[derive(Debug, Clone, Copy)]
pub struct MessageEvent<'a> {
    pub time: u64,
    pub event: MsgEvent,
    /// The message's id, the same for its send, deliveries and drops.
    pub id: u64,
    pub from: &'a str,
    pub to: &'a str,
    /// A short description (the message's type, or its debug form).
    pub summary: &'a str,
    /// Why it was dropped, when the execution knows (live runs).
    pub reason: Option<&'a str>,
    /// The writes it carries, `(key, value)`, when the adapter says.
    pub writes: &'a [(Key, i64)],
}

/// Something that happened in a run.
#[derive(Debug, Clone, Copy)]
pub enum RunEvent<'a> {
    /// The run starts with these nodes; `messages`: the execution reports
    /// node-to-node messages (then `messages.jsonl` is written, even empty).
    Start { nodes: &'a [String], messages: bool },
    /// A client operation was invoked or completed: a history event,
    /// numbered and stamped (`invoke`, `ok`, `fail`, `info`).
    Operation(&'a Event),
    /// A nemesis step took effect: a history event of the nemesis process.
    Nemesis(&'a Event),
    /// A node-to-node message was sent, delivered or dropped.
    Message(MessageEvent<'a>),
    /// A line for a node's log (`nodes/<name>.log`).
    NodeLog {
        node: &'a str,
        time: u64,
        line: &'a str,
    },
    /// How far the faulty phase is: `now` of `end` (the execution's time).
    Progress { now: u64, end: u64 },
}

impl RunEvent<'_> {
    /// The history event this carries (an operation or a nemesis step).
    pub fn history(&self) -> Option<&Event> {
        match self {
            RunEvent::Operation(e) | RunEvent::Nemesis(e) => Some(e),
            _ => None,
        }
    }
}

/// Consumes run events. A listener that writes a file returns its write
/// errors (the execution stops: a history with a hole cannot be checked);
/// one whose file is a sidecar keeps going and says so at [`finish`].
///
/// [`finish`]: RunListener::finish
pub trait RunListener: Send {
    fn on_event(&mut self, event: &RunEvent<'_>) -> io::Result<()>;

    /// Whether [`RunEvent::Message`]s are wanted: producing them costs
    /// time (formatting each message), so executions ask first.
    fn wants_messages(&self) -> bool {
        false
    }

    /// The run is over: flush.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Every listener of a run, in order: an event goes to each.
#[derive(Default)]
pub struct Listeners {
    list: Vec<Box<dyn RunListener>>,
}

impl Listeners {
    pub fn new() -> Listeners {
        Listeners::default()
    }

    pub fn push(&mut self, l: impl RunListener + 'static) {
        self.list.push(Box::new(l));
    }

    pub fn push_boxed(&mut self, l: Box<dyn RunListener>) {
        self.list.push(l);
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl RunListener for Listeners {
    /// Every listener sees the event; the first error is returned.
    fn on_event(&mut self, event: &RunEvent<'_>) -> io::Result<()> {
        let mut first = Ok(());
        for l in &mut self.list {
            let r = l.on_event(event);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    fn wants_messages(&self) -> bool {
        self.list.iter().any(|l| l.wants_messages())
    }

    fn finish(&mut self) -> io::Result<()> {
        let mut first = Ok(());
        for l in &mut self.list {
            let r = l.finish();
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

impl<T: RunListener + ?Sized> RunListener for &mut T {
    fn on_event(&mut self, event: &RunEvent<'_>) -> io::Result<()> {
        (**self).on_event(event)
    }
    fn wants_messages(&self) -> bool {
        (**self).wants_messages()
    }
    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }
}

/// Two listeners, without a box (an in-memory history and a progress bar).
impl<A: RunListener, B: RunListener> RunListener for (A, B) {
    fn on_event(&mut self, event: &RunEvent<'_>) -> io::Result<()> {
        let a = self.0.on_event(event);
        let b = self.1.on_event(event);
        a.and(b)
    }
    fn wants_messages(&self) -> bool {
        self.0.wants_messages() || self.1.wants_messages()
    }
    fn finish(&mut self) -> io::Result<()> {
        let a = self.0.finish();
        let b = self.1.finish();
        a.and(b)
    }
}

/// Keeps the history in memory (explore, shrink, tests).
impl RunListener for Vec<Event> {
    fn on_event(&mut self, event: &RunEvent<'_>) -> io::Result<()> {
        if let Some(e) = event.history() {
            self.push(e.clone());
        }
        Ok(())
    }
}

/// Serializes the history (`history.jsonl` and benchmarks).
impl<W: io::Write + Send> RunListener for HistoryWriter<W> {
    fn on_event(&mut self, event: &RunEvent<'_>) -> io::Result<()> {
        match event.history() {
            Some(e) => self.write(e),
            None => Ok(()),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        self.flush()
    }
}

/// Counts history events and drops them (benchmarks).
#[derive(Debug, Default)]
pub struct CountingSink(pub u64);

impl RunListener for CountingSink {
    fn on_event(&mut self, event: &RunEvent<'_>) -> io::Result<()> {
        if event.history().is_some() {
            self.0 += 1;
        }
        Ok(())
    }
}

/// The listeners of a run shared by the tasks of a threaded execution (a
/// live run's clients, nemesis and router): one lock, so the history's
/// order is the order of its indices.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Mutex<Listeners>>,
    wants_messages: bool,
}

impl EventBus {
    pub fn new(listeners: Listeners) -> EventBus {
        EventBus {
            wants_messages: listeners.wants_messages(),
            inner: Arc::new(Mutex::new(listeners)),
        }
    }

    /// The listeners, locked (a panicked holder poisons nothing here: a
    /// listener's state is whole lines).
    pub fn lock(&self) -> MutexGuard<'_, Listeners> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn emit(&self, event: &RunEvent<'_>) -> io::Result<()> {
        self.lock().on_event(event)
    }

    pub fn wants_messages(&self) -> bool {
        self.wants_messages
    }

    /// Takes the listeners back (at the end of the run; clones still held
    /// elsewhere then see none).
    pub fn take(&self) -> Listeners {
        std::mem::take(&mut *self.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ladon_checker::history::Event;

    struct Failing;
    impl RunListener for Failing {
        fn on_event(&mut self, _: &RunEvent<'_>) -> io::Result<()> {
            Err(io::Error::other("disk full"))
        }
    }

    /// Counts history events into a shared counter.
    struct Count(Arc<Mutex<u32>>);
    impl RunListener for Count {
        fn on_event(&mut self, e: &RunEvent<'_>) -> io::Result<()> {
            if e.history().is_some() {
                *self.0.lock().unwrap() += 1;
            }
            Ok(())
        }
    }

    #[test]
    fn every_listener_sees_an_event_even_after_one_fails() {
        let seen = Arc::new(Mutex::new(0));
        let mut ls = Listeners::new();
        ls.push(Failing);
        ls.push(Count(seen.clone()));
        let ev = Event::nemesis(0, 5, "heal", serde_json::Value::Null);
        let err = ls.on_event(&RunEvent::Nemesis(&ev)).unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(*seen.lock().unwrap(), 1);
        // Shared by tasks, then taken back.
        let bus = EventBus::new(ls);
        let _ = bus.clone().emit(&RunEvent::Progress { now: 1, end: 2 });
        let _ = bus.emit(&RunEvent::Nemesis(&ev));
        assert_eq!(*seen.lock().unwrap(), 2);
        assert!(!bus.wants_messages());
        let mut back = bus.take();
        assert!(back.on_event(&RunEvent::Nemesis(&ev)).is_err());
        assert_eq!(*seen.lock().unwrap(), 3);
        // What is left behind in the bus is no listener at all.
        assert!(bus.take().is_empty());
    }
}
