//! Plain-English descriptions of operations, writes, reads and paths, and the
//! accumulator of findings (every anomaly counted, examples capped).

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use crate::causality::{Causality, EdgeKind};
use crate::history::{KeyKind, MopFn};
use crate::model::{History, KeyId, MopId, MopRec, ObsKind, OpId, Outcome};
use crate::report::{Anomaly, Example};

/// Nanoseconds as seconds with millisecond precision: "1.204 s".
pub fn secs(ns: u64) -> String {
    format!(
        "{}.{:03} s",
        ns / 1_000_000_000,
        (ns % 1_000_000_000) / 1_000_000
    )
}

/// A duration for people: "1.204 s", "3.300 ms", "12.5 µs", "800 ns".
pub fn duration(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        secs(ns)
    } else if ns >= 1_000_000 {
        format!("{:.3} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}

/// Every anomaly found: counts, and the first examples of each.
pub struct Findings {
    pub max_examples: usize,
    pub found: BTreeMap<Anomaly, (u64, Vec<Example>)>,
}

impl Findings {
    pub fn new(max_examples: usize) -> Self {
        Findings {
            max_examples,
            found: BTreeMap::new(),
        }
    }

    /// Counts one finding; builds its example only while under the cap.
    pub fn add(&mut self, a: Anomaly, example: impl FnOnce() -> Example) {
        let e = self.found.entry(a).or_insert((0, Vec::new()));
        e.0 += 1;
        if e.1.len() < self.max_examples {
            e.1.push(example());
        }
    }

    /// Appends findings made after this one's (in history or analysis
    /// order), as if `later` had been added here one by one: counts add up,
    /// examples keep the earliest up to the cap.
    pub fn merge(&mut self, later: Findings) {
        for (a, (count, examples)) in later.found {
            let e = self.found.entry(a).or_insert((0, Vec::new()));
            e.0 += count;
            let room = self.max_examples.saturating_sub(e.1.len());
            e.1.extend(examples.into_iter().take(room));
        }
    }

    pub fn count(&self, a: Anomaly) -> u64 {
        self.found.get(&a).map_or(0, |e| e.0)
    }
}

/// Describes things in a history.
pub struct Explain<'a> {
    pub h: &'a History,
    pub c: &'a Causality,
}

impl<'a> Explain<'a> {
    /// "process 2 on n2, op 14, acknowledged at 1.204 s"
    pub fn op_where(&self, op: OpId) -> String {
        let o = &self.h.ops[op];
        let when = match (o.outcome, o.completed) {
            (Outcome::Ok, _) => format!("acknowledged at {}", secs(o.complete_time)),
            (Outcome::Fail, _) => format!("failed at {}", secs(o.complete_time)),
            (Outcome::Info, true) => format!("indeterminate at {}", secs(o.complete_time)),
            (Outcome::Info, false) => {
                format!("invoked at {}, never completed", secs(o.invoke_time))
            }
        };
        format!(
            "process {} on {}, op {}, {when}",
            self.h.process_id(o.process),
            self.h.node(o.node),
            o.index()
        )
    }

    /// "op 14 (process 2 on n2)"
    pub fn op_short(&self, op: OpId) -> String {
        let o = &self.h.ops[op];
        format!(
            "op {} (process {} on {})",
            o.index(),
            self.h.process_id(o.process),
            self.h.node(o.node)
        )
    }

    /// What a write does, without where: "append 3 to key x".
    pub fn write_what(&self, mop: MopId) -> String {
        let m = &self.h.mops[mop];
        let k = self.h.key(m.key);
        match m.f {
            MopFn::Write => format!("write {} to key {k}", m.arg),
            MopFn::Append => format!("append {} to key {k}", m.arg),
            MopFn::Add => format!("add {} to key {k}", m.arg),
            MopFn::Incr => format!("increment of key {k} by {}", m.arg),
            MopFn::Read => format!("read of key {k}"),
            MopFn::Delete => format!("delete of key {k}"),
        }
    }

    /// "append 3 to key x (process 2 on n2, op 14, acknowledged at 1.204 s)"
    pub fn write(&self, mop: MopId) -> String {
        format!(
            "{} ({})",
            self.write_what(mop),
            self.op_where(self.h.mops[mop].op)
        )
    }

    /// The observed value as written in the history: "[1, 2]", "3", "nothing".
    pub fn observed(&self, m: &MopRec) -> String {
        match m.obs {
            ObsKind::NotRead => String::new(),
            ObsKind::Null => "nothing (null)".into(),
            ObsKind::Int => format!("{}", self.h.obs(m)[0]),
            ObsKind::List => {
                let xs: Vec<String> = self.h.obs(m).iter().map(|x| x.to_string()).collect();
                format!("[{}]", xs.join(", "))
            }
        }
    }

    /// "the read of key x by process 5 on n1 (op 20, acknowledged at 0.900 s), which observed [1, 2]"
    pub fn read(&self, mop: MopId) -> String {
        let m = &self.h.mops[mop];
        let op = &self.h.ops[m.op];
        let what = if op.is_final {
            "the final read"
        } else {
            "the read"
        };
        format!(
            "{what} of key {} ({}), which observed {}",
            self.h.key(m.key),
            self.op_where(m.op),
            self.observed(m)
        )
    }

    /// Why `from → to` is an edge, Elle-style.
    pub fn edge(&self, from: OpId, to: OpId) -> (EdgeKind, String) {
        let kind = self.c.edge_kind(from, to);
        let text = match kind {
            EdgeKind::Session => format!(
                "op {} < op {}: process {} ran op {} after op {}",
                self.h.ops[from].index(),
                self.h.ops[to].index(),
                self.h.process_id(self.h.ops[to].process),
                self.h.ops[to].index(),
                self.h.ops[from].index()
            ),
            EdgeKind::ReadsFrom => {
                let seen = self.observed_write(to, from);
                let what = seen
                    .map(|w| self.write_what(w))
                    .unwrap_or_else(|| "write".into());
                format!(
                    "op {} < op {}: op {} observed op {}'s {what}",
                    self.h.ops[from].index(),
                    self.h.ops[to].index(),
                    self.h.ops[to].index(),
                    self.h.ops[from].index()
                )
            }
        };
        (kind, text)
    }

    /// A write of op `writer` that op `reader` observed.
    pub fn observed_write(&self, reader: OpId, writer: OpId) -> Option<MopId> {
        let r = &self.h.ops[reader];
        self.h.mops[r.mops()]
            .iter()
            .flat_map(|m| self.h.obs_writes(m).iter().copied())
            .find(|&w| !w.is_none() && self.h.mops[w].op == writer)
    }

    /// A path explained edge by edge, and its JSON form.
    pub fn path(&self, path: &[OpId]) -> (String, Json) {
        let mut texts = Vec::new();
        let mut edges = Vec::new();
        for pair in path.windows(2) {
            let (kind, text) = self.edge(pair[0], pair[1]);
            edges.push(json!({
                "from": self.h.ops[pair[0]].index(),
                "to": self.h.ops[pair[1]].index(),
                "kind": kind.as_str(),
                "why": text,
            }));
            texts.push(text);
        }
        (texts.join("; "), Json::Array(edges))
    }

    /// A one-line label for a DOT vertex.
    pub fn label(&self, op: OpId) -> String {
        let o = &self.h.ops[op];
        let mops: Vec<String> = self.h.mops[o.mops()]
            .iter()
            .map(|m| match m.f {
                MopFn::Read if m.obs == ObsKind::Null => format!("r {} null", self.h.key(m.key)),
                MopFn::Read => format!("r {} {}", self.h.key(m.key), self.observed(m)),
                f => format!("{} {} {}", f.as_str(), self.h.key(m.key), m.arg),
            })
            .collect();
        format!(
            "op {} p{} {} {}\n{}",
            o.index(),
            self.h.process_id(o.process),
            self.h.node(o.node),
            secs(o.complete_time),
            mops.join(", ")
        )
    }

    /// The `graph` detail every example carries, for DOT export and HTML:
    /// the ops involved (including every op on `edges`), and the edges.
    pub fn graph(&self, ops: &[OpId], edges: &Json) -> Json {
        let mut seen: Vec<OpId> = Vec::new();
        let mut vertices = Vec::new();
        for &op in ops {
            if !seen.contains(&op) {
                seen.push(op);
                vertices.push(json!({"op": self.h.ops[op].index(), "label": self.label(op)}));
            }
        }
        json!({"vertices": vertices, "edges": edges})
    }

    pub fn kind_of(&self, k: KeyId) -> Option<KeyKind> {
        self.h.key_kind[k]
    }

    /// History indices of ops, for `Example::ops`.
    pub fn indices(&self, ops: &[OpId]) -> Vec<u64> {
        ops.iter().map(|&o| self.h.ops[o].index()).collect()
    }
}
