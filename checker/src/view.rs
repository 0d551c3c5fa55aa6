//! Borrowed views of a client event, what the [`crate::model::Builder`]
//! validates and folds: built either from an [`Event`] or, without
//! allocating, from the bytes of a line ([`crate::fastparse`]).

use std::fmt;

use serde_json::Value as Json;

use crate::history::{Event, EventType, Key, Mop, MopFn, ReadValue};

/// A key as the line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef<'a> {
    Int(i64),
    Str(&'a str),
}

impl KeyRef<'_> {
    pub fn to_key(self) -> Key {
        match self {
            KeyRef::Int(k) => Key::Int(k),
            KeyRef::Str(s) => Key::Str(s.to_string()),
        }
    }

    pub fn is(self, k: &Key) -> bool {
        match (self, k) {
            (KeyRef::Int(a), Key::Int(b)) => a == *b,
            (KeyRef::Str(a), Key::Str(b)) => a == b,
            _ => false,
        }
    }
}

impl<'a> From<&'a Key> for KeyRef<'a> {
    fn from(k: &'a Key) -> Self {
        match k {
            Key::Int(i) => KeyRef::Int(*i),
            Key::Str(s) => KeyRef::Str(s),
        }
    }
}

/// Same as [`Key`]'s display.
impl fmt::Display for KeyRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            KeyRef::Int(k) => write!(f, "{k}"),
            KeyRef::Str(k) => f.write_str(k),
        }
    }
}

/// What a read carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadRef<'a> {
    Null,
    Int(i64),
    List(&'a [i64]),
}

/// One micro-operation.
#[derive(Debug, Clone, Copy)]
pub struct MopView<'a> {
    pub f: MopFn,
    pub key: KeyRef<'a>,
    /// The written value or delta (writes only).
    pub arg: i64,
    /// What a read carries (reads only).
    pub read: ReadRef<'a>,
}

impl<'a> MopView<'a> {
    pub fn from_mop(m: &'a Mop) -> Self {
        let read = match m {
            Mop::Read(_, ReadValue::Null) => ReadRef::Null,
            Mop::Read(_, ReadValue::Int(x)) => ReadRef::Int(*x),
            Mop::Read(_, ReadValue::List(xs)) => ReadRef::List(xs),
            _ => ReadRef::Null,
        };
        MopView {
            f: m.f(),
            key: m.key().into(),
            arg: m.write_arg().unwrap_or(0),
            read,
        }
    }

    pub fn is_write(&self) -> bool {
        self.f != MopFn::Read
    }

    pub fn write_arg(&self) -> Option<i64> {
        self.is_write().then_some(self.arg)
    }
}

/// A client event (`process` an integer).
#[derive(Debug, Clone, Copy)]
pub struct ClientEvent<'a> {
    pub index: u64,
    pub time: u64,
    pub kind: EventType,
    pub process: u64,
    pub node: Option<&'a str>,
    pub f: &'a str,
    /// `meta.ts`, when it is an integer.
    pub ts: Option<i64>,
    /// `meta.winners` (what a plain read of a key with siblings returns).
    pub winners: Option<&'a Json>,
    pub mops: &'a [MopView<'a>],
}

impl<'a> ClientEvent<'a> {
    /// The view of a client event; `mops` is scratch space for its
    /// micro-operations.
    pub fn of_event<'e: 'a>(ev: &'e Event, process: u64, mops: &'a mut Vec<MopView<'e>>) -> Self {
        mops.clear();
        mops.extend(ev.ops().iter().map(MopView::from_mop));
        ClientEvent {
            index: ev.index,
            time: ev.time,
            kind: ev.kind,
            process,
            node: ev.node.as_deref(),
            f: &ev.f,
            ts: ev
                .meta
                .as_ref()
                .and_then(|m| m.get("ts"))
                .and_then(Json::as_i64),
            winners: ev.meta.as_ref().and_then(|m| m.get("winners")),
            mops,
        }
    }
}
