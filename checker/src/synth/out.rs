//! Writing generated events as JSON Lines, formatted by hand: the generator
//! writes millions of lines and building `Event`s would dominate its time.

use std::io::{self, BufWriter, Write};

use crate::history::{Key, Mop, ReadValue};

pub struct Out<W: Write> {
    w: BufWriter<W>,
    buf: Vec<u8>,
    index: u64,
}

impl<W: Write> Out<W> {
    pub fn new(w: W, _nodes: u32) -> Self {
        Out {
            w: BufWriter::with_capacity(1 << 20, w),
            buf: Vec::with_capacity(4096),
            index: 0,
        }
    }

    fn key(buf: &mut Vec<u8>, k: &Key) {
        match k {
            Key::Int(i) => {
                let _ = write!(buf, "{i}");
            }
            Key::Str(s) => serde_json::to_writer(&mut *buf, s).expect("a string"),
        }
    }

    /// One client event; reads carry their values only on `ok`.
    #[allow(clippy::too_many_arguments)]
    pub fn client(
        &mut self,
        time: u64,
        ty: &str,
        pid: u64,
        node: u16,
        f: &str,
        mops: &[Mop],
        ts: Option<i64>,
    ) -> io::Result<()> {
        let b = &mut self.buf;
        b.clear();
        let _ = write!(
            b,
            "{{\"index\":{},\"time\":{time},\"type\":\"{ty}\",\"process\":{pid},\"node\":\"n{}\",\"f\":\"{f}\",\"value\":[",
            self.index,
            node + 1
        );
        for (i, m) in mops.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            let _ = write!(b, "[\"{}\",", m.f().as_str());
            Self::key(b, m.key());
            b.push(b',');
            match m {
                Mop::Read(_, v) => match (ty, v) {
                    ("ok", ReadValue::Int(x)) => {
                        let _ = write!(b, "{x}");
                    }
                    ("ok", ReadValue::List(xs)) => {
                        b.push(b'[');
                        for (j, x) in xs.iter().enumerate() {
                            if j > 0 {
                                b.push(b',');
                            }
                            let _ = write!(b, "{x}");
                        }
                        b.push(b']');
                    }
                    _ => b.extend_from_slice(b"null"),
                },
                other => {
                    let _ = write!(b, "{}", other.write_arg().expect("a write"));
                }
            }
            b.push(b']');
        }
        b.push(b']');
        if let Some(ts) = ts {
            let _ = write!(b, ",\"meta\":{{\"ts\":{ts}}}");
        }
        b.extend_from_slice(b"}\n");
        self.index += 1;
        self.w.write_all(b)
    }

    pub fn nemesis(&mut self, time: u64, f: &str, value_json: &str) -> io::Result<()> {
        writeln!(
            self.w,
            "{{\"index\":{},\"time\":{time},\"type\":\"info\",\"process\":\"nemesis\",\"f\":\"{f}\",\"value\":{value_json}}}",
            self.index
        )?;
        self.index += 1;
        Ok(())
    }

    /// Flushes; returns how many events were written.
    pub fn finish(mut self) -> io::Result<u64> {
        self.w.flush()?;
        Ok(self.index)
    }
}
