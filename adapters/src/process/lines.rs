//! Reading a node's stdout as lines, with a cap on line length so a node
//! that prints without newlines cannot exhaust memory.

use tokio::io::{AsyncRead, AsyncReadExt};

/// One item read from a node's stdout.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its newline.
    Line(Vec<u8>),
    /// A line longer than the cap; its first bytes, and its length so far.
    TooLong { head: Vec<u8>, len: usize },
}

pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    max: usize,
    /// Set while skipping the rest of an over-long line.
    skipping: bool,
    eof: bool,
    /// `buf[start..start + scanned]` holds no newline: each byte is searched
    /// once, so a long line is read in linear time.
    scanned: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max_line: usize) -> Self {
        LineReader {
            inner,
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
            max: max_line,
            skipping: false,
            eof: false,
            scanned: 0,
        }
    }

    /// The next line; `None` at end of stream (a final unterminated line is
    /// returned first).
    pub async fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            if let Some(end) = self.find_newline() {
                let line = self.buf[self.start..end].to_vec();
                self.start = end + 1;
                if self.skipping {
                    self.skipping = false;
                    continue;
                }
                if line.len() > self.max {
                    let len = line.len();
                    let mut head = line;
                    head.truncate(200);
                    return Ok(Some(Line::TooLong { head, len }));
                }
                return Ok(Some(Line::Line(strip_cr(line))));
            }
            let pending = self.buf.len() - self.start;
            if !self.skipping && pending > self.max {
                let head = self.buf[self.start..self.start + 200.min(pending)].to_vec();
                self.buf.clear();
                self.start = 0;
                self.scanned = 0;
                self.skipping = true;
                return Ok(Some(Line::TooLong { head, len: pending }));
            }
            if self.skipping {
                self.buf.clear();
                self.start = 0;
                self.scanned = 0;
            }
            if self.eof {
                if self.start < self.buf.len() && !self.skipping {
                    let line = self.buf[self.start..].to_vec();
                    self.buf.clear();
                    self.start = 0;
                    self.scanned = 0;
                    return Ok(Some(Line::Line(strip_cr(line))));
                }
                return Ok(None);
            }
            if self.start > 0 && self.start == self.buf.len() {
                self.buf.clear();
                self.start = 0;
            } else if self.start > self.buf.capacity() / 2 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            // Read into spare capacity (no zero-filling of the buffer).
            self.buf.reserve(64 * 1024);
            let n = self.inner.read_buf(&mut self.buf).await?;
            if n == 0 {
                self.eof = true;
            }
        }
    }
}

impl<R> LineReader<R> {
    /// The next newline at or after `start`, searching only bytes not
    /// searched before.
    fn find_newline(&mut self) -> Option<usize> {
        let from = self.start + self.scanned;
        match self.buf[from..].iter().position(|b| *b == b'\n') {
            Some(pos) => {
                self.scanned = 0;
                Some(from + pos)
            }
            None => {
                self.scanned = self.buf.len() - self.start;
                None
            }
        }
    }

    /// The next complete line already in the buffer, without waiting for
    /// input: lets a reader pass on, in one batch, every line one read
    /// returned. `None` when no whole line is buffered (or while the rest of
    /// an over-long line is being skipped; [`LineReader::next`] handles those).
    pub fn next_buffered(&mut self) -> Option<Line> {
        if self.skipping {
            return None;
        }
        let end = self.find_newline()?;
        let line = self.buf[self.start..end].to_vec();
        self.start = end + 1;
        if line.len() > self.max {
            let len = line.len();
            let mut head = line;
            head.truncate(200);
            return Some(Line::TooLong { head, len });
        }
        Some(Line::Line(strip_cr(line)))
    }
}

fn strip_cr(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_lines_caps_long_ones_and_returns_the_unterminated_tail() {
        let input: &[u8] = b"a\r\nbb\nxxxxxxxxxxxxxxxxxxxxxxxx\ncc\ntail";
        let mut r = LineReader::new(input, 8);
        assert_eq!(r.next().await.unwrap(), Some(Line::Line(b"a".to_vec())));
        assert_eq!(r.next().await.unwrap(), Some(Line::Line(b"bb".to_vec())));
        assert!(matches!(
            r.next().await.unwrap(),
            Some(Line::TooLong { .. })
        ));
        assert_eq!(r.next().await.unwrap(), Some(Line::Line(b"cc".to_vec())));
        assert_eq!(r.next().await.unwrap(), Some(Line::Line(b"tail".to_vec())));
        assert_eq!(r.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn buffered_lines_come_without_waiting_and_partial_ones_wait() {
        let input: &[u8] = b"one\ntwo\r\nthree-is-too-long\nfour\npartial";
        let mut r = LineReader::new(input, 8);
        assert_eq!(r.next_buffered(), None, "nothing read yet");
        assert_eq!(r.next().await.unwrap(), Some(Line::Line(b"one".to_vec())));
        assert_eq!(r.next_buffered(), Some(Line::Line(b"two".to_vec())));
        assert_eq!(
            r.next_buffered(),
            Some(Line::TooLong {
                head: b"three-is-too-long".to_vec(),
                len: 17
            })
        );
        assert_eq!(r.next_buffered(), Some(Line::Line(b"four".to_vec())));
        assert_eq!(r.next_buffered(), None, "an unterminated line waits");
        assert_eq!(
            r.next().await.unwrap(),
            Some(Line::Line(b"partial".to_vec()))
        );
        assert_eq!(r.next().await.unwrap(), None);
    }
}
