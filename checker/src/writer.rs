//! Writing histories as JSON Lines. The harness streams events through a
//! [`HistoryWriter`] as a test runs and flushes after each line, so a crash or
//! Ctrl-C leaves every recorded event checkable.

use std::io::{self, Write};

use crate::history::Event;

/// Writes one event per line and flushes after each, so nothing recorded is
/// lost if the process dies.
pub struct HistoryWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    flush_each: bool,
}

impl<W: Write> HistoryWriter<W> {
    /// A writer that flushes after every event.
    pub fn new(out: W) -> Self {
        HistoryWriter {
            out,
            buf: Vec::with_capacity(256),
            flush_each: true,
        }
    }

    /// A writer that only flushes on [`HistoryWriter::flush`] (for generating
    /// large histories, where durability per line does not matter).
    pub fn buffered(out: W) -> Self {
        HistoryWriter {
            out,
            buf: Vec::with_capacity(256),
            flush_each: false,
        }
    }

    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, event)?;
        self.buf.push(b'\n');
        self.out.write_all(&self.buf)?;
        if self.flush_each {
            self.out.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}
