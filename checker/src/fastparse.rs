//! The fast path of reading: a client event line in the compact form every
//! writer of this project produces (no whitespace, no escapes, known fields
//! only) is parsed straight from its bytes into offsets, without allocating.
//! Anything else — a nemesis event, an unknown field, an escaped string, a
//! float, a malformed line — makes [`parse_line`] return `None`, and the
//! reader parses that line as an [`crate::history::Event`] with serde, so
//! what is accepted and every error message stay those of the serde path.

use crate::history::{EventType, MopFn};
use crate::view::{ClientEvent, KeyRef, MopView, ReadRef};

/// A parsed micro-operation; strings are byte ranges of the chunk, read
/// values ranges of [`Chunk::vals`].
#[derive(Debug, Clone, Copy)]
pub struct RawMop {
    f: MopFn,
    /// An integer key, or a string key's start when `key_len != NONE`.
    key: i64,
    key_len: u32,
    arg: i64,
    /// 0 null, 1 integer (`arg`), 2 list `vals[arg..arg + read_len]`.
    read: u8,
    read_len: u32,
}

const NONE: u32 = u32::MAX;

/// A parsed client event.
#[derive(Debug, Clone, Copy)]
pub struct RawEvent {
    index: u64,
    time: u64,
    kind: EventType,
    process: u64,
    node: (u32, u32),
    f: (u32, u32),
    ts: Option<i64>,
    mops: (u32, u32),
}

/// What the fast path collected for a chunk of lines.
#[derive(Debug, Default)]
pub struct Chunk {
    pub mops: Vec<RawMop>,
    pub vals: Vec<i64>,
}

impl Chunk {
    /// The view of `ev` over the chunk's `bytes`; `scratch` holds its
    /// micro-operations.
    pub fn view<'a: 's, 's>(
        &'a self,
        bytes: &'a [u8],
        ev: &RawEvent,
        scratch: &'s mut Vec<MopView<'a>>,
    ) -> ClientEvent<'s> {
        let s = |(a, b): (u32, u32)| -> &'a str {
            std::str::from_utf8(&bytes[a as usize..b as usize]).expect("validated by parse_line")
        };
        scratch.clear();
        for m in &self.mops[ev.mops.0 as usize..ev.mops.1 as usize] {
            let key = if m.key_len == NONE {
                KeyRef::Int(m.key)
            } else {
                KeyRef::Str(s((m.key as u32, m.key as u32 + m.key_len)))
            };
            let read = match m.read {
                0 => ReadRef::Null,
                1 => ReadRef::Int(m.arg),
                _ => {
                    ReadRef::List(&self.vals[m.arg as usize..m.arg as usize + m.read_len as usize])
                }
            };
            scratch.push(MopView {
                f: m.f,
                key,
                arg: if m.f == MopFn::Read { 0 } else { m.arg },
                read,
            });
        }
        ClientEvent {
            index: ev.index,
            time: ev.time,
            kind: ev.kind,
            process: ev.process,
            node: (ev.node.0 != NONE).then(|| s(ev.node)),
            f: s(ev.f),
            ts: ev.ts,
            winners: None,
            mops: scratch,
        }
    }
}

struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    #[inline]
    fn lit(&mut self, s: &[u8]) -> bool {
        if self.b[self.i..].starts_with(s) {
            self.i += s.len();
            true
        } else {
            false
        }
    }

    /// A string without escapes or control characters, as a byte range.
    #[inline]
    fn string(&mut self) -> Option<(u32, u32)> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = &self.b[start..];
        let len = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        let s = &rest[..len];
        if !s.is_ascii() {
            std::str::from_utf8(s).ok()?;
        }
        self.i = start + len + 1;
        Some((start as u32, (start + len) as u32))
    }

    /// Digits of a JSON integer (no leading zeros, not followed by a
    /// fraction or exponent), as a `u64`.
    #[inline]
    fn digits(&mut self) -> Option<u64> {
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
            self.i += 1;
        }
        let n = self.i - start;
        if n == 0 || (n > 1 && self.b[start] == b'0') {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(v)
    }

    #[inline]
    fn int(&mut self) -> Option<i64> {
        if self.eat(b'-').is_some() {
            let v = self.digits()?;
            if v > i64::MAX as u64 + 1 {
                return None;
            }
            Some((v as i64).wrapping_neg())
        } else {
            i64::try_from(self.digits()?).ok()
        }
    }
}

const F_INDEX: u16 = 1;
const F_TIME: u16 = 2;
const F_TYPE: u16 = 4;
const F_PROCESS: u16 = 8;
const F_NODE: u16 = 16;
const F_F: u16 = 32;
const F_VALUE: u16 = 64;
const F_ERROR: u16 = 128;
const F_META: u16 = 256;
const REQUIRED: u16 = F_INDEX | F_TIME | F_TYPE | F_PROCESS | F_F | F_VALUE;

/// Parses one line (without its newline); offsets are relative to `line`.
/// `None` sends the line to the serde path (and leaves `out` as it was).
pub fn parse_line(line: &[u8], out: &mut Chunk) -> Option<RawEvent> {
    let (m0, v0) = (out.mops.len(), out.vals.len());
    match parse_at(line, 0, out) {
        Some((ev, end)) if end == line.len() => Some(ev),
        Some(_) => {
            out.mops.truncate(m0);
            out.vals.truncate(v0);
            None
        }
        None => None,
    }
}

/// Parses the event starting at `start` of a chunk (offsets are relative
/// to the chunk) and returns it with the position just after its closing
/// brace, which must be the end of the chunk or a newline. `None` sends the
/// line to the serde path (and leaves `out` as it was).
pub fn parse_at(buf: &[u8], start: usize, out: &mut Chunk) -> Option<(RawEvent, usize)> {
    let (m0, v0) = (out.mops.len(), out.vals.len());
    let r = parse(buf, start, out).filter(|&(_, end)| matches!(buf.get(end), None | Some(b'\n')));
    if r.is_none() {
        out.mops.truncate(m0);
        out.vals.truncate(v0);
    }
    r
}

fn parse(buf: &[u8], start: usize, out: &mut Chunk) -> Option<(RawEvent, usize)> {
    let mut c = Cur { b: buf, i: start };
    let mut seen = 0u16;
    let mut ev = RawEvent {
        index: 0,
        time: 0,
        kind: EventType::Invoke,
        process: 0,
        node: (NONE, NONE),
        f: (0, 0),
        ts: None,
        mops: (out.mops.len() as u32, out.mops.len() as u32),
    };
    c.eat(b'{')?;
    loop {
        let (ks, ke) = c.string()?;
        c.eat(b':')?;
        let field = match &buf[ks as usize..ke as usize] {
            b"index" => {
                ev.index = c.digits()?;
                F_INDEX
            }
            b"time" => {
                ev.time = c.digits()?;
                F_TIME
            }
            b"type" => {
                let (a, b) = c.string()?;
                ev.kind = match &buf[a as usize..b as usize] {
                    b"invoke" => EventType::Invoke,
                    b"ok" => EventType::Ok,
                    b"fail" => EventType::Fail,
                    b"info" => EventType::Info,
                    _ => return None,
                };
                F_TYPE
            }
            b"process" => {
                ev.process = c.digits()?;
                F_PROCESS
            }
            b"node" => {
                if !c.lit(b"null") {
                    ev.node = c.string()?;
                }
                F_NODE
            }
            b"f" => {
                ev.f = c.string()?;
                F_F
            }
            b"value" => {
                if !c.lit(b"null") {
                    mops(&mut c, out)?;
                }
                F_VALUE
            }
            b"error" => {
                if !c.lit(b"null") {
                    c.string()?;
                }
                F_ERROR
            }
            b"meta" => {
                if !c.lit(b"null") {
                    if c.peek() != Some(b'{') {
                        return None;
                    }
                    let mut it = serde_json::Deserializer::from_slice(&buf[c.i..])
                        .into_iter::<serde_json::Value>();
                    let meta = it.next()?.ok()?;
                    c.i += it.byte_offset();
                    ev.ts = meta.get("ts").and_then(serde_json::Value::as_i64);
                    // The winners a final read names: rare, on the serde path.
                    if meta.get("winners").is_some() {
                        return None;
                    }
                }
                F_META
            }
            _ => return None,
        };
        if seen & field != 0 {
            return None;
        }
        seen |= field;
        match c.peek()? {
            b',' => c.i += 1,
            b'}' => {
                c.i += 1;
                break;
            }
            _ => return None,
        }
    }
    if seen & REQUIRED != REQUIRED {
        return None;
    }
    ev.mops.1 = out.mops.len() as u32;
    Some((ev, c.i))
}

/// `[[fn, key, arg], ...]`
fn mops(c: &mut Cur, out: &mut Chunk) -> Option<()> {
    c.eat(b'[')?;
    if c.eat(b']').is_some() {
        return Some(());
    }
    loop {
        c.eat(b'[')?;
        let (a, b) = c.string()?;
        let f = MopFn::parse(std::str::from_utf8(&c.b[a as usize..b as usize]).ok()?)?;
        c.eat(b',')?;
        let (key, key_len) = if c.peek()? == b'"' {
            let (a, b) = c.string()?;
            (a as i64, b - a)
        } else {
            (c.int()?, NONE)
        };
        c.eat(b',')?;
        let mut m = RawMop {
            f,
            key,
            key_len,
            arg: 0,
            read: 0,
            read_len: 0,
        };
        if f == MopFn::Read {
            if c.lit(b"null") {
            } else if c.peek()? == b'[' {
                c.i += 1;
                m.read = 2;
                m.arg = out.vals.len() as i64;
                if c.eat(b']').is_none() {
                    loop {
                        out.vals.push(c.int()?);
                        match c.peek()? {
                            b',' => c.i += 1,
                            b']' => {
                                c.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                m.read_len = (out.vals.len() as i64 - m.arg) as u32;
            } else {
                m.read = 1;
                m.arg = c.int()?;
            }
        } else if f == MopFn::Delete {
            if !c.lit(b"null") {
                return None;
            }
        } else {
            m.arg = c.int()?;
        }
        c.eat(b']')?;
        out.mops.push(m);
        match c.peek()? {
            b',' => c.i += 1,
            b']' => {
                c.i += 1;
                return Some(());
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Event;

    /// The fast path agrees with the serde path on what it accepts.
    fn same(line: &str) {
        let mut chunk = Chunk::default();
        let raw = parse_line(line.as_bytes(), &mut chunk).expect("fast path");
        let ev: Event = serde_json::from_str(line).expect("serde path");
        let crate::history::Process::Client(p) = ev.process else {
            panic!("client")
        };
        let mut s1 = Vec::new();
        let mut s2 = Vec::new();
        let a = chunk.view(line.as_bytes(), &raw, &mut s1);
        let b = ClientEvent::of_event(&ev, p, &mut s2);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    fn falls_back(line: &str) {
        let mut chunk = Chunk::default();
        assert!(parse_line(line.as_bytes(), &mut chunk).is_none(), "{line}");
        assert!(chunk.mops.is_empty() && chunk.vals.is_empty());
    }

    #[test]
    fn compact_lines_parse_like_serde() {
        same(
            r#"{"index":2,"time":2100,"type":"ok","process":0,"node":"n1","f":"txn","value":[["append","x",1],["r",3,[1,-2]],["r",-4,null],["w","é",7],["r","k",5],["r",1,[]]],"meta":{"ts":5,"vv":{"a":[1]}},"error":null}"#,
        );
        same(
            r#"{"index":0,"time":0,"type":"info","process":7,"node":null,"f":"final","value":null,"error":"timeout","meta":null}"#,
        );
        same(r#"{"f":"txn","value":[],"process":1,"node":"n2","type":"fail","time":9,"index":1}"#);
        same(
            r#"{"index":1,"time":1,"type":"ok","process":1,"node":"n","f":"txn","value":[["incr",-9223372036854775808,9223372036854775807]]}"#,
        );
    }

    #[test]
    fn anything_else_goes_to_serde() {
        for l in [
            r#"{"index":0,"time":0,"type":"invoke","process":"nemesis","f":"heal","value":null}"#,
            r#"{"index":0, "time":0,"type":"invoke","process":1,"node":"n1","f":"txn","value":[]}"#,
            r#"{"index":0,"time":0,"type":"invoke","process":1,"node":"n1","f":"txn","value":[["r","x",null]],"zz":1}"#,
            r#"{"index":0,"time":0,"type":"invoke","process":1,"node":"n\u0031","f":"txn","value":[]}"#,
            r#"{"index":01,"time":0,"type":"invoke","process":1,"node":"n1","f":"txn","value":[]}"#,
            r#"{"index":0,"time":1.0,"type":"invoke","process":1,"node":"n1","f":"txn","value":[]}"#,
            r#"{"index":0,"time":0,"type":"invoke","process":-1,"node":"n1","f":"txn","value":[]}"#,
            r#"{"index":0,"index":0,"time":0,"type":"invoke","process":1,"node":"n1","f":"txn","value":[]}"#,
            r#"{"index":0,"time":0,"type":"invoke","process":1,"node":"n1","f":"txn"}"#,
            r#"{"index":0,"time":0,"type":"invoke","process":1,"node":"n1","f":"txn","value":[["r","x",null,1]]}"#,
            r#"{"index":0,"time":0,"type":"invoke","process":1,"node":"n1","f":"txn","value":[["x","x",1]]}"#,
            r#"{"index":0,"time":0,"type":"ok","process":1,"node":"n1","f":"txn","value":[["w","x",9223372036854775808]]}"#,
            r#"{"index":0,"time":0,"type":"ok","process":1,"node":"n1","f":"txn","value":[["w","x",1]]} "#,
            r#"{"index":0,"time":0,"type":"ok","process":1,"node":"n1","f":"txn","value":[["w","x",1]]}}"#,
            r#"{"index":0,"time":0,"type":"ok","process":1,"node":"n1","f":"txn","value":[["w","x",1]],"meta":5}"#,
        ] {
            falls_back(l);
        }
    }
}

#[cfg(test)]
mod agreement {
    //! The fast path and serde agree value for value on every line both
    //! accept, the fast path accepts nothing serde refuses, and a line the
    //! fast path leaves alone gets serde's verdict from the reader.

    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;
    use crate::history::{parse_event_line, Process};

    fn int() -> impl Strategy<Value = i64> {
        prop_oneof![-3i64..40, Just(i64::MAX), Just(i64::MIN), any::<i64>(),]
    }

    fn key() -> impl Strategy<Value = Value> {
        prop_oneof![
            int().prop_map(Value::from),
            prop::sample::select(vec!["x", "y", "k\u{e9}", "a\"b", "", "n\u{1}"])
                .prop_map(Value::from),
        ]
    }

    fn mop() -> impl Strategy<Value = Value> {
        let read = prop_oneof![
            Just(Value::Null),
            int().prop_map(Value::from),
            prop::collection::vec(int(), 0..5).prop_map(|v| json!(v)),
        ];
        (
            prop::sample::select(vec!["w", "append", "add", "incr", "r", "d", "cas"]),
            key(),
            int(),
            read,
        )
            .prop_map(|(f, k, arg, read)| match f {
                "r" => json!([f, k, read]),
                "d" => json!([f, k, Value::Null]),
                _ => json!([f, k, arg]),
            })
    }

    /// An event as a JSON object, with optional fields and oddities.
    fn event() -> impl Strategy<Value = Value> {
        (
            (0u64..5, 0u64..1000, prop::sample::select(vec!["invoke", "ok", "fail", "info", "nope"])),
            prop_oneof![4 => (0u64..9).prop_map(Value::from), 1 => Just(json!("nemesis")), 1 => Just(json!(-1))],
            prop_oneof![Just(Value::Null), Just(json!("n1")), Just(json!("n\u{e9}2")), Just(json!(7))],
            prop::sample::select(vec!["txn", "final", "heal"]),
            prop_oneof![Just(Value::Null), prop::collection::vec(mop(), 0..4).prop_map(Value::from)],
            prop_oneof![
                Just(None),
                int().prop_map(|ts| Some(json!({"ts": ts}))),
                Just(Some(json!({"ts": 1.5, "vv": {"a": [1]}}))),
                Just(Some(json!(5))),
                Just(Some(json!([1]))),
                Just(Some(Value::Null)),
            ],
            prop_oneof![Just(None), Just(Some(json!("timeout"))), Just(Some(json!(3)))],
            any::<bool>(),
        )
            .prop_map(|((index, time, kind), process, node, f, value, meta, error, extra)| {
                let mut o = serde_json::Map::new();
                o.insert("index".into(), json!(index));
                o.insert("time".into(), json!(time));
                o.insert("type".into(), json!(kind));
                o.insert("process".into(), process);
                if !node.is_null() || index % 2 == 0 {
                    o.insert("node".into(), node);
                }
                o.insert("f".into(), json!(f));
                o.insert("value".into(), value);
                if let Some(m) = meta {
                    o.insert("meta".into(), m);
                }
                if let Some(e) = error {
                    o.insert("error".into(), e);
                }
                if extra {
                    o.insert("zz".into(), json!([[{"deep": [1]}]]));
                }
                Value::Object(o)
            })
    }

    /// Textual edits of a compact line: none, a space, a float, a big
    /// integer, a truncation, a duplicated field, a leading zero.
    fn edit(line: &str, which: u8, at: usize) -> String {
        let at = if line.is_empty() { 0 } else { at % line.len() };
        let at = (0..=at)
            .rev()
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(0);
        match which {
            0 => line.to_string(),
            1 => format!("{} {}", &line[..at], &line[at..]),
            2 => line.replacen(":1", ":1.0", 1),
            3 => line.replacen(",1]", ",99999999999999999999]", 1),
            4 => line[..at].to_string(),
            5 => line.replacen("{", "{\"index\":0,", 1),
            _ => line.replacen(":0", ":00", 1),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn fast_path_agrees_with_serde(ev in event(), which in 0u8..7, at in any::<usize>()) {
            let line = edit(&serde_json::to_string(&ev).expect("json"), which, at);
            let mut chunk = Chunk::default();
            let fast = parse_line(line.as_bytes(), &mut chunk);
            let serde = parse_event_line(line.as_bytes());
            match (fast, &serde) {
                (Some(raw), Ok(e)) => {
                    let Process::Client(p) = e.process else {
                        return Err(TestCaseError::fail("fast path took a nemesis line"));
                    };
                    let mut s1 = Vec::new();
                    let mut s2 = Vec::new();
                    let a = chunk.view(line.as_bytes(), &raw, &mut s1);
                    let b = ClientEvent::of_event(e, p, &mut s2);
                    prop_assert_eq!(format!("{a:?}"), format!("{b:?}"), "{}", line);
                }
                (Some(_), Err(e)) => {
                    return Err(TestCaseError::fail(format!("fast path accepted what serde refuses ({e}): {line}")));
                }
                (None, _) => {
                    prop_assert!(chunk.mops.is_empty() && chunk.vals.is_empty());
                    // The reader then gives serde's verdict on the line.
                    // (A blank line is the reader's own error.)
                    if let (Err(e), false) = (&serde, line.trim().is_empty()) {
                        let read = crate::reader::read_history(format!("{line}\n").as_bytes());
                        let Err(got) = read else { return Err(TestCaseError::fail(format!("read accepted: {line}"))) };
                        let got = got.expect("no I/O error");
                        prop_assert_eq!(got.line, 1);
                        prop_assert_eq!(got.message, crate::reader::describe_json_error(e));
                    }
                }
            }
        }
    }
}
