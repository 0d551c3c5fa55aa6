//! Ladon's checker: the history model, reading and writing histories, the
//! causality graph, every analysis of `shared/spec/anomalies.md`, and the
//! report. Synchronous, and no I/O beyond reading a history.

pub mod analysis;
pub mod causality;
pub mod check;
pub mod dot;
pub mod explain;
pub mod extras;
pub mod fastparse;
pub mod history;
pub mod ids;
pub mod keys;
pub mod mem;
pub mod model;
pub mod parts;
pub mod reader;
pub mod report;
pub mod summary;
pub mod synth;
#[cfg(test)]
mod testutil;
pub mod view;
pub mod writer;

pub use check::{check_events, check_history, check_path, CheckOptions};
pub use history::{Event, EventType, Key, KeyKind, Mop, MopFn, Payload, Process, ReadValue};
pub use report::{Anomaly, Example, Finding, Guarantee, Report, Verdict};
