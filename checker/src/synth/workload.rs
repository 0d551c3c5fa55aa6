//! The workloads a synthetic history can have (shared by the generator and
//! the injected scenarios).

use crate::history::KeyKind;

/// The four workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Register,
    ListAppend,
    Set,
    Counter,
}

impl Workload {
    pub fn parse(s: &str) -> Result<Workload, String> {
        Ok(match s {
            "register" => Workload::Register,
            "list-append" | "list" => Workload::ListAppend,
            "set" => Workload::Set,
            "counter" => Workload::Counter,
            _ => {
                return Err(format!(
                    "unknown workload {s:?}; expected register, list-append, set or counter"
                ))
            }
        })
    }

    pub fn kind(self) -> KeyKind {
        match self {
            Workload::Register => KeyKind::Register,
            Workload::ListAppend => KeyKind::List,
            Workload::Set => KeyKind::Set,
            Workload::Counter => KeyKind::Counter,
        }
    }
}
