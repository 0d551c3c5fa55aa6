//! The checker's entry points. PLACEHOLDER signatures fixed for the harness;
//! the checker branch replaces the bodies.

use std::path::Path;

use crate::history::Event;
use crate::report::{Guarantee, Report};

/// How to check a history.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// What the system promises; anomalies they forbid make it `invalid`.
    pub guarantees: Vec<Guarantee>,
    /// Examples kept per anomaly name (all are counted).
    pub max_examples: usize,
    /// Messages sent per write, where the harness observed them.
    pub messages_per_write: Option<f64>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            guarantees: Guarantee::default_for_check(),
            max_examples: 5,
            messages_per_write: None,
        }
    }
}

/// Checks a history file. An `Err` is an I/O failure opening or reading it; a
/// malformed history is a report with `invalid-history` and verdict `unknown`.
pub fn check_path(path: &Path, opts: &CheckOptions) -> std::io::Result<Report> {
    let _ = (path, opts);
    unimplemented!("checker branch")
}

/// Checks events already in memory (assumed well-formed by construction).
pub fn check_events(events: &[Event], opts: &CheckOptions) -> Report {
    let _ = (events, opts);
    unimplemented!("checker branch")
}
