//! The history model of `shared/spec/history.md`: events, processes, keys and
//! micro-operations. Reading and validating a file lives in `reader`, writing
//! in `writer`; this module owns only the types and their JSON shape.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// `type` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// `process`: a logical client, or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Process;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative integer or \"nemesis\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Process, E> {
                Ok(Process::Client(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Process, E> {
                u64::try_from(v)
                    .map(Process::Client)
                    .map_err(|_| E::custom(format!("process must be >= 0, got {v}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Process, E> {
                if v == "nemesis" {
                    Ok(Process::Nemesis)
                } else {
                    Err(E::custom(format!(
                        "process must be an integer or \"nemesis\", got {v:?}"
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "process {p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

/// The message for a JSON number that is not a signed 64-bit integer.
/// serde_json reads an integer literal beyond `u64` as a float, so an
/// integral float at or past ±2^63 is such a literal (or written as one).
fn not_i64(what: &str, v: f64) -> String {
    if v.fract() == 0.0 && v.abs() >= i64::MAX as f64 {
        format!("{what} {v:e} is outside the signed 64-bit range (history integers are i64)")
    } else {
        format!("{what} {v} is not an integer (floating point)")
    }
}

fn u64_not_i64(what: &str, v: u64) -> String {
    format!("{what} {v} is outside the signed 64-bit range (history integers are i64)")
}

/// A signed 64-bit integer with messages that say why a number is not one.
struct Int64(i64);

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a signed 64-bit integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int64, E> {
                Ok(Int64(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int64, E> {
                i64::try_from(v)
                    .map(Int64)
                    .map_err(|_| E::custom(u64_not_i64("integer", v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Int64, E> {
                Err(E::custom(not_i64("number", v)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A key: a JSON integer or string. Integers sort before strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum Key {
    Int(i64),
    Str(String),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Key::Int(k) => write!(f, "{k}"),
            Key::Str(k) => f.write_str(k),
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key (an integer or a string)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                Ok(Key::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                i64::try_from(v)
                    .map(Key::Int)
                    .map_err(|_| E::custom(u64_not_i64("integer key", v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
                Err(E::custom(not_i64("key", v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key::Str(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
                Ok(Key::Str(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Self {
        Key::Str(s.to_string())
    }
}

impl From<i64> for Key {
    fn from(k: i64) -> Self {
        Key::Int(k)
    }
}

/// What a read micro-operation carries: `null` on invoke (and for a
/// never-written key), an integer (register value, counter), or an array
/// (siblings, list, set).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(untagged)]
pub enum ReadValue {
    #[default]
    Null,
    Int(i64),
    List(Vec<i64>),
}

impl<'de> Deserialize<'de> for ReadValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ReadValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a read value: null, an integer or an array of integers")
            }
            fn visit_unit<E: de::Error>(self) -> Result<ReadValue, E> {
                Ok(ReadValue::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<ReadValue, E> {
                Ok(ReadValue::Null)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ReadValue, E> {
                Ok(ReadValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ReadValue, E> {
                i64::try_from(v)
                    .map(ReadValue::Int)
                    .map_err(|_| E::custom(u64_not_i64("read value", v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ReadValue, E> {
                Err(E::custom(not_i64("read value", v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ReadValue, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(8));
                while let Some(Int64(v)) = seq.next_element::<Int64>()? {
                    out.push(v);
                }
                Ok(ReadValue::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The function of a micro-operation, as spelled in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MopFn {
    /// `w`: register write.
    Write,
    /// `append`: list append.
    Append,
    /// `add`: set add.
    Add,
    /// `incr`: counter increment.
    Incr,
    /// `r`: read.
    Read,
    /// `d`: register delete (a write of "no value"; its argument is `null`).
    Delete,
}

impl MopFn {
    pub fn as_str(self) -> &'static str {
        match self {
            MopFn::Write => "w",
            MopFn::Append => "append",
            MopFn::Add => "add",
            MopFn::Incr => "incr",
            MopFn::Read => "r",
            MopFn::Delete => "d",
        }
    }

    pub fn parse(s: &str) -> Option<MopFn> {
        Some(match s {
            "w" => MopFn::Write,
            "append" => MopFn::Append,
            "add" => MopFn::Add,
            "incr" => MopFn::Incr,
            "r" => MopFn::Read,
            "d" => MopFn::Delete,
            _ => return None,
        })
    }
}

/// The kind of a key, fixed by the writes made to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Register,
    List,
    Set,
    Counter,
}

impl KeyKind {
    /// The kind a write function gives its key; `None` for reads.
    pub fn of_write(f: MopFn) -> Option<KeyKind> {
        match f {
            MopFn::Write | MopFn::Delete => Some(KeyKind::Register),
            MopFn::Append => Some(KeyKind::List),
            MopFn::Add => Some(KeyKind::Set),
            MopFn::Incr => Some(KeyKind::Counter),
            MopFn::Read => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Register => "register",
            KeyKind::List => "list",
            KeyKind::Set => "set",
            KeyKind::Counter => "counter",
        }
    }
}

/// One micro-operation `[fn, key, arg]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mop {
    /// `["w", k, v]`
    Write(Key, i64),
    /// `["append", k, e]`
    Append(Key, i64),
    /// `["add", k, e]`
    Add(Key, i64),
    /// `["incr", k, d]`
    Incr(Key, i64),
    /// `["r", k, observed]`
    Read(Key, ReadValue),
    /// `["d", k, null]`: register delete.
    Delete(Key),
}

impl Mop {
    pub fn key(&self) -> &Key {
        match self {
            Mop::Write(k, _) | Mop::Append(k, _) | Mop::Add(k, _) | Mop::Incr(k, _) => k,
            Mop::Read(k, _) | Mop::Delete(k) => k,
        }
    }

    pub fn f(&self) -> MopFn {
        match self {
            Mop::Write(..) => MopFn::Write,
            Mop::Append(..) => MopFn::Append,
            Mop::Add(..) => MopFn::Add,
            Mop::Incr(..) => MopFn::Incr,
            Mop::Read(..) => MopFn::Read,
            Mop::Delete(..) => MopFn::Delete,
        }
    }

    /// The written value or delta, for writes (a delete has none).
    pub fn write_arg(&self) -> Option<i64> {
        match self {
            Mop::Write(_, v) | Mop::Append(_, v) | Mop::Add(_, v) | Mop::Incr(_, v) => Some(*v),
            Mop::Read(..) | Mop::Delete(..) => None,
        }
    }

    pub fn is_write(&self) -> bool {
        !matches!(self, Mop::Read(..))
    }
}

impl Serialize for Mop {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(3))?;
        seq.serialize_element(self.f().as_str())?;
        seq.serialize_element(self.key())?;
        match self {
            Mop::Read(_, v) => seq.serialize_element(v)?,
            other => seq.serialize_element(&other.write_arg())?,
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Mop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Mop;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a micro-operation [fn, key, arg]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Mop, A::Error> {
                let f: std::borrow::Cow<'de, str> = seq.next_element()?.ok_or_else(|| {
                    de::Error::custom("micro-operation is empty: expected [fn, key, arg]")
                })?;
                let func = MopFn::parse(&f).ok_or_else(|| {
                    de::Error::custom(format!(
                        "unknown micro-operation function {f:?}: expected one of \"w\", \"append\", \"add\", \"incr\", \"r\", \"d\""
                    ))
                })?;
                let key: Key = seq.next_element()?.ok_or_else(|| {
                    de::Error::custom(format!("micro-operation [{f:?}, ...] has no key"))
                })?;
                let mop = if func == MopFn::Delete {
                    let v: Option<Option<de::IgnoredAny>> = seq.next_element()?;
                    match v {
                        Some(None) => Mop::Delete(key),
                        None => {
                            return Err(de::Error::custom(format!(
                                "delete of key {key} has no third element (null)"
                            )))
                        }
                        Some(Some(_)) => {
                            return Err(de::Error::custom(format!(
                                "delete of key {key} must carry null as its third element"
                            )))
                        }
                    }
                } else if func == MopFn::Read {
                    let v: ReadValue = seq.next_element()?.ok_or_else(|| {
                        de::Error::custom(format!("read of key {key} has no third element"))
                    })?;
                    Mop::Read(key, v)
                } else {
                    let Int64(v) = seq.next_element()?.ok_or_else(|| {
                        de::Error::custom(format!("{f:?} on key {key} has no argument"))
                    })?;
                    match func {
                        MopFn::Write => Mop::Write(key, v),
                        MopFn::Append => Mop::Append(key, v),
                        MopFn::Add => Mop::Add(key, v),
                        MopFn::Incr => Mop::Incr(key, v),
                        MopFn::Read | MopFn::Delete => unreachable!("handled above"),
                    }
                };
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(
                        "micro-operation has more than three elements",
                    ));
                }
                Ok(mop)
            }
        }
        d.deserialize_seq(V)
    }
}

/// `value` of an event: micro-operations for client events (`txn`, `final`),
/// free-form JSON for nemesis events.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Ops(Vec<Mop>),
    Fault(Json),
}

impl Payload {
    pub fn ops(&self) -> &[Mop] {
        match self {
            Payload::Ops(ops) => ops,
            Payload::Fault(_) => &[],
        }
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::Ops(ops) => ops.serialize(s),
            Payload::Fault(v) => v.serialize(s),
        }
    }
}

/// `f` of client events.
pub const F_TXN: &str = "txn";
pub const F_FINAL: &str = "final";

/// One line of a history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub index: u64,
    pub time: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub process: Process,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub f: String,
    pub value: Payload,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Json>,
    /// Fields this version does not know, kept so a rewrite preserves them.
    #[serde(flatten)]
    pub extra: Map<String, Json>,
}

impl Event {
    /// A nemesis event as history.md defines it: `type` `info`, `process`
    /// `"nemesis"`, the fault's name as `f`, stamped when it took effect.
    pub fn nemesis(index: u64, time: u64, f: &str, value: Json) -> Event {
        Event {
            index,
            time,
            kind: EventType::Info,
            process: Process::Nemesis,
            node: None,
            f: f.to_string(),
            value: Payload::Fault(value),
            error: None,
            meta: None,
            extra: Map::new(),
        }
    }

    pub fn is_client(&self) -> bool {
        matches!(self.process, Process::Client(_))
    }

    pub fn is_final(&self) -> bool {
        self.f == F_FINAL
    }

    pub fn ops(&self) -> &[Mop] {
        self.value.ops()
    }
}

/// `value` of a client event: `null` or a list of micro-operations.
struct ClientValue(Vec<Mop>);

impl<'de> Deserialize<'de> for ClientValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ClientValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("null or an array of micro-operations")
            }
            fn visit_unit<E: de::Error>(self) -> Result<ClientValue, E> {
                Ok(ClientValue(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ClientValue, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4));
                while let Some(m) = seq.next_element::<Mop>()? {
                    out.push(m);
                }
                Ok(ClientValue(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses an event in one pass, keeping unknown fields; `value` is parsed
/// directly as micro-operations when `process` came first (as every writer
/// in this project orders it), and through a JSON value otherwise.
impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EventVisitor { keep_unknown: true })
    }
}

/// An event parsed for checking: unknown fields (and `meta`'s fields other
/// than `ts`) are skipped without being built, so they are ignored however
/// deeply they nest (skipping is iterative in serde_json: no recursion
/// limit); `extra` stays empty and `meta` holds at most `ts` and `winners`.
pub struct LeanEvent(pub Event);

impl<'de> Deserialize<'de> for LeanEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EventVisitor {
            keep_unknown: false,
        })
        .map(LeanEvent)
    }
}

/// Parses one history line for checking (see [`LeanEvent`]).
pub fn parse_event_line(line: &[u8]) -> Result<Event, serde_json::Error> {
    serde_json::from_slice::<LeanEvent>(line).map(|e| e.0)
}

const META_NOT_OBJECT: &str = "a JSON object for `meta`";

/// `meta` when only `ts` is kept: an object (anything else is an error),
/// its other fields skipped.
struct LeanMeta(Option<Json>);

impl<'de> Deserialize<'de> for LeanMeta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LeanMeta;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(META_NOT_OBJECT)
            }
            fn visit_unit<E: de::Error>(self) -> Result<LeanMeta, E> {
                Ok(LeanMeta(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LeanMeta, A::Error> {
                let mut out = Map::new();
                while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if k == "ts" {
                        if let Some(ts) = map.next_value::<MaybeInt>()?.0 {
                            out.insert("ts".into(), Json::from(ts));
                        } else {
                            out.remove("ts");
                        }
                    } else if k == "winners" {
                        out.insert("winners".into(), map.next_value::<Json>()?);
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
                Ok(LeanMeta(Some(Json::Object(out))))
            }
        }
        d.deserialize_any(V)
    }
}

/// An integer if the value is one; anything else is skipped.
struct MaybeInt(Option<i64>);

impl<'de> Deserialize<'de> for MaybeInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeInt;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MaybeInt, E> {
                Ok(MaybeInt(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MaybeInt, E> {
                Ok(MaybeInt(i64::try_from(v).ok()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeInt, E> {
                Ok(MaybeInt(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeInt, E> {
                Ok(MaybeInt(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<MaybeInt, E> {
                Ok(MaybeInt(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MaybeInt, E> {
                Ok(MaybeInt(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeInt, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(MaybeInt(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeInt, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(MaybeInt(None))
            }
        }
        d.deserialize_any(V)
    }
}

struct EventVisitor {
    /// Keep unknown fields (and all of `meta`) as JSON values, for tools
    /// that rewrite histories; else skip them.
    keep_unknown: bool,
}

enum Val {
    Ops(Vec<Mop>),
    Json(Json),
}

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let mut index = None;
        let mut time = None;
        let mut kind = None;
        let mut process: Option<Process> = None;
        let mut node = None;
        let mut f = None;
        let mut value: Option<Val> = None;
        let mut error = None;
        let mut meta = None;
        let mut extra = Map::new();
        let mut unknown: Vec<String> = Vec::new();
        fn dup<E: de::Error>(name: &str) -> E {
            E::custom(format!("duplicate field `{name}`"))
        }
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match k.as_ref() {
                "index" => {
                    if index.replace(map.next_value::<u64>()?).is_some() {
                        return Err(dup("index"));
                    }
                }
                "time" => {
                    if time.replace(map.next_value::<u64>()?).is_some() {
                        return Err(dup("time"));
                    }
                }
                "type" => {
                    if kind.replace(map.next_value::<EventType>()?).is_some() {
                        return Err(dup("type"));
                    }
                }
                "process" => {
                    if process.replace(map.next_value::<Process>()?).is_some() {
                        return Err(dup("process"));
                    }
                }
                "node" => {
                    if node.replace(map.next_value::<Option<String>>()?).is_some() {
                        return Err(dup("node"));
                    }
                }
                "f" => {
                    if f.replace(map.next_value::<String>()?).is_some() {
                        return Err(dup("f"));
                    }
                }
                "value" => {
                    let v = match process {
                        Some(Process::Client(_)) => Val::Ops(map.next_value::<ClientValue>()?.0),
                        _ => Val::Json(map.next_value::<Json>()?),
                    };
                    if value.replace(v).is_some() {
                        return Err(dup("value"));
                    }
                }
                "error" => {
                    if error.replace(map.next_value::<Option<String>>()?).is_some() {
                        return Err(dup("error"));
                    }
                }
                "meta" => {
                    let m = if self.keep_unknown {
                        let m = map.next_value::<Option<Json>>()?;
                        if m.as_ref().is_some_and(|m| !m.is_object()) {
                            return Err(de::Error::custom("`meta` must be a JSON object"));
                        }
                        m
                    } else {
                        map.next_value::<LeanMeta>()?.0
                    };
                    if meta.replace(m).is_some() {
                        return Err(dup("meta"));
                    }
                }
                other if !self.keep_unknown => {
                    if unknown.iter().any(|u| u == other) {
                        return Err(dup(other));
                    }
                    unknown.push(other.to_string());
                    map.next_value::<de::IgnoredAny>()?;
                }
                other => {
                    let v = map.next_value::<Json>()?;
                    if extra.insert(other.to_string(), v).is_some() {
                        return Err(dup(other));
                    }
                }
            }
        }
        let missing = |name: &'static str| de::Error::missing_field(name);
        let process = process.ok_or_else(|| missing("process"))?;
        let value = match (process, value.ok_or_else(|| missing("value"))?) {
            (Process::Nemesis, Val::Json(j)) => Payload::Fault(j),
            (Process::Client(_), Val::Ops(ops)) => Payload::Ops(ops),
            (Process::Client(_), Val::Json(j)) => Payload::Ops(
                serde_json::from_value::<ClientValue>(j)
                    .map_err(|e| de::Error::custom(format!("value: {e}")))?
                    .0,
            ),
            (Process::Nemesis, Val::Ops(_)) => unreachable!("ops parsed only for clients"),
        };
        Ok(Event {
            index: index.ok_or_else(|| missing("index"))?,
            time: time.ok_or_else(|| missing("time"))?,
            kind: kind.ok_or_else(|| missing("type"))?,
            process,
            node: node.flatten(),
            f: f.ok_or_else(|| missing("f"))?,
            value,
            error: error.flatten(),
            meta: meta.flatten(),
            extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_line_round_trips_with_unknown_fields() {
        let line = r#"{"index":2,"time":2100,"type":"ok","process":0,"node":"n1","f":"txn","value":[["append","x",1],["r",3,[1,2]]],"meta":{"ts":5},"zz":[1]}"#;
        let ev: Event = serde_json::from_str(line).unwrap();
        assert_eq!(ev.process, Process::Client(0));
        assert_eq!(
            ev.ops(),
            &[
                Mop::Append(Key::from("x"), 1),
                Mop::Read(Key::Int(3), ReadValue::List(vec![1, 2]))
            ]
        );
        assert_eq!(serde_json::to_string(&ev).unwrap(), line);
    }

    #[test]
    fn nemesis_value_is_kept_verbatim() {
        let line = r#"{"index":4,"time":3000,"type":"info","process":"nemesis","f":"partition","value":[["n1"],["n2","n3"]]}"#;
        let ev: Event = serde_json::from_str(line).unwrap();
        assert!(matches!(ev.value, Payload::Fault(_)));
        assert_eq!(serde_json::to_string(&ev).unwrap(), line);
    }
}
