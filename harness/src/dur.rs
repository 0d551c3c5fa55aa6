//! `Dur`: the one duration type of every flag and of `run.json`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::net::{format_duration_ns, parse_duration_ns};

/// A duration given as `30` (seconds), `30s`, `500ms`, `250us` or `100ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub u64);

impl Dur {
    pub fn secs(s: u64) -> Dur {
        Dur(s * 1_000_000_000)
    }
    pub fn ns(self) -> u64 {
        self.0
    }
}

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return parse_duration_ns(&format!("{t}s")).map(Dur);
        }
        parse_duration_ns(t).map(Dur)
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&format_duration_ns(self.0))
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
