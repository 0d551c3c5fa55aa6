//! What the report draws, derived from a history: client operations (an
//! invocation paired with its completion) and nemesis intervals (a fault's
//! start paired with its stop).

use std::collections::BTreeMap;

use ladon_checker::history::{Event, EventType, Key, Mop, Process};
use serde_json::Value as Json;

/// How a client operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail,
    /// `info`, or no completion by the end of the history.
    Info,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
    }
}

/// One client operation: an invocation and its completion, if any.
#[derive(Debug, Clone)]
pub struct Op {
    pub process: u64,
    pub node: String,
    pub f: String,
    pub invoke_index: u64,
    /// `None` when the history ends before the operation completed.
    pub complete_index: Option<u64>,
    pub start: u64,
    /// Completion time; the end of the history for an open operation.
    pub end: u64,
    pub outcome: Outcome,
    /// Micro-operations as completed (reads carry what they observed).
    pub mops: Vec<Mop>,
    pub error: Option<String>,
    pub meta: Option<Json>,
}

impl Op {
    /// The history index examples use for this operation.
    pub fn index(&self) -> u64 {
        self.complete_index.unwrap_or(self.invoke_index)
    }

    pub fn is_final(&self) -> bool {
        self.f == ladon_checker::history::F_FINAL
    }

    /// `[append x 1] [r x [1 2]]`, the way Jepsen prints transactions.
    pub fn mops_text(&self) -> String {
        self.mops.iter().map(mop_text).collect::<Vec<_>>().join(" ")
    }
}

/// `append x 1`, `r x [1 2]`.
pub fn mop_text(m: &Mop) -> String {
    use ladon_checker::history::ReadValue;
    match m {
        Mop::Read(k, v) => {
            let v = match v {
                ReadValue::Null => "nil".to_string(),
                ReadValue::Int(i) => i.to_string(),
                ReadValue::List(l) => format!(
                    "[{}]",
                    l.iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            };
            format!("[r {k} {v}]")
        }
        w => format!(
            "[{} {} {}]",
            w.f().as_str(),
            w.key(),
            w.write_arg().unwrap_or(0)
        ),
    }
}

/// A fault that was in force from `start` to `end`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultInterval {
    /// The starting event's `f` (`partition`, `clock-skew`, `crash`, `pause`, or an adapter's own).
    pub kind: String,
    pub start: u64,
    /// The stopping event's time, or the end of the history.
    pub end: u64,
    pub start_index: u64,
    /// Nodes the fault concerns, where the value names them.
    pub nodes: Vec<String>,
    /// The starting event's value, compact JSON.
    pub value: String,
}

/// The fault a stopping event ends, for the pairs of `history.md`.
fn stopped_by(f: &str) -> Option<&'static str> {
    Some(match f {
        "heal" => "partition",
        "clock-reset" => "clock-skew",
        "restart" => "crash",
        "resume" => "pause",
        _ => return None,
    })
}

/// Everything the report draws from a history.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub ops: Vec<Op>,
    pub faults: Vec<FaultInterval>,
    /// Nemesis events that neither start nor stop a known interval (adapters' own faults).
    pub instants: Vec<FaultInterval>,
    pub end: u64,
    /// History index → position in `ops`, for both the invocation and the completion.
    pub by_index: BTreeMap<u64, usize>,
    /// Nodes in order of first appearance in the history, then sorted.
    pub nodes: Vec<String>,
    /// Each written value `(key, value)` (`w`, `append`, `add`) → position in `ops` of its writer.
    pub writers: BTreeMap<(Key, i64), usize>,
    /// Each node's last `ok` final read (its final state) → position in `ops`.
    pub last_final: BTreeMap<String, usize>,
}

impl Timeline {
    pub fn from_events(events: &[Event]) -> Timeline {
        let end = events.iter().map(|e| e.time).max().unwrap_or(0);
        let mut t = Timeline {
            end,
            ..Timeline::default()
        };
        let mut open: BTreeMap<u64, usize> = BTreeMap::new();
        // Open faults by kind; node-scoped faults (crash, pause) per node.
        let mut open_faults: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for e in events {
            match e.process {
                Process::Client(p) => {
                    let node = e.node.clone().unwrap_or_default();
                    if !node.is_empty() && !t.nodes.contains(&node) {
                        t.nodes.push(node.clone());
                    }
                    if e.kind == EventType::Invoke {
                        let at = t.ops.len();
                        t.ops.push(Op {
                            process: p,
                            node,
                            f: e.f.clone(),
                            invoke_index: e.index,
                            complete_index: None,
                            start: e.time,
                            end,
                            outcome: Outcome::Info,
                            mops: e.ops().to_vec(),
                            error: None,
                            meta: e.meta.clone(),
                        });
                        t.by_index.insert(e.index, at);
                        open.insert(p, at);
                    } else if let Some(at) = open.remove(&p) {
                        let op = &mut t.ops[at];
                        op.complete_index = Some(e.index);
                        op.end = e.time;
                        op.outcome = match e.kind {
                            EventType::Ok => Outcome::Ok,
                            EventType::Fail => Outcome::Fail,
                            _ => Outcome::Info,
                        };
                        op.mops = e.ops().to_vec();
                        op.error = e.error.clone();
                        if e.meta.is_some() {
                            op.meta = e.meta.clone();
                        }
                        t.by_index.insert(e.index, at);
                    }
                }
                Process::Nemesis => t.add_fault(e, &mut open_faults),
            }
        }
        t.nodes.sort_by(|a, b| node_order(a).cmp(&node_order(b)));
        for (i, op) in t.ops.iter().enumerate() {
            if op.is_final() && op.outcome == Outcome::Ok {
                let last = t.last_final.entry(op.node.clone()).or_insert(i);
                if t.ops[*last].end <= op.end {
                    *last = i;
                }
            }
            for m in &op.mops {
                if let Mop::Write(k, v) | Mop::Append(k, v) | Mop::Add(k, v) = m {
                    t.writers.entry((k.clone(), *v)).or_insert(i);
                }
            }
        }
        t
    }

    fn add_fault(&mut self, e: &Event, open: &mut BTreeMap<String, Vec<usize>>) {
        let value = match &e.value {
            ladon_checker::history::Payload::Fault(v) => v.clone(),
            other => serde_json::to_value(other).unwrap_or(Json::Null),
        };
        let nodes = nodes_named(&value);
        if let Some(kind) = stopped_by(&e.f) {
            let Some(list) = open.get_mut(kind) else {
                return;
            };
            // crash/pause stop per node when the stop names nodes; heal and
            // clock-reset stop everything.
            let node_scoped = matches!(kind, "crash" | "pause") && !nodes.is_empty();
            list.retain(|&i| {
                let f = &mut self.faults[i];
                let stops = !node_scoped || f.nodes.iter().any(|n| nodes.contains(n));
                if stops {
                    f.end = e.time;
                }
                !stops
            });
            return;
        }
        // A partition of arbitrary links (ring cuts, bridges, one-way cuts)
        // is a partition like any other: shaded, labelled, ended by `heal`.
        let kind = if e.f == "partition-links" {
            "partition".to_string()
        } else {
            e.f.clone()
        };
        let interval = FaultInterval {
            kind: kind.clone(),
            start: e.time,
            end: self.end,
            start_index: e.index,
            nodes,
            value: value.to_string(),
        };
        if matches!(
            kind.as_str(),
            "partition" | "clock-skew" | "crash" | "pause"
        ) {
            let list = open.entry(kind.clone()).or_default();
            // A new partition or skew replaces the one in force.
            if matches!(kind.as_str(), "partition" | "clock-skew") {
                for &i in list.iter() {
                    self.faults[i].end = e.time;
                }
                list.clear();
            }
            // Crashes and pauses end node by node: one interval per node.
            if matches!(kind.as_str(), "crash" | "pause") && interval.nodes.len() > 1 {
                for n in interval.nodes.clone() {
                    let mut one = interval.clone();
                    one.nodes = vec![n];
                    list.push(self.faults.len());
                    self.faults.push(one);
                }
            } else {
                list.push(self.faults.len());
                self.faults.push(interval);
            }
        } else {
            let mut instant = interval;
            instant.end = e.time;
            self.instants.push(instant);
        }
    }

    pub fn op_at(&self, index: u64) -> Option<&Op> {
        self.by_index.get(&index).map(|&i| &self.ops[i])
    }

    /// The time of the last `heal` (or of the first `final` operation when
    /// there was none): where convergence is measured from.
    pub fn heal_time(&self) -> Option<u64> {
        let last_partition_end = self
            .faults
            .iter()
            .filter(|f| f.kind == "partition" && f.end < self.end)
            .map(|f| f.end)
            .max();
        last_partition_end.or_else(|| {
            self.ops
                .iter()
                .filter(|o| o.is_final())
                .map(|o| o.start)
                .min()
        })
    }
}

/// Sort key putting `n2` before `n10`: the name without its trailing digits,
/// then their value.
pub fn node_order(name: &str) -> (&str, u64, &str) {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let digits = &name[stem.len()..];
    (stem, digits.parse().unwrap_or(0), name)
}

/// Node ids a fault value names: strings anywhere in arrays, or object keys.
fn nodes_named(v: &Json) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Json, out: &mut Vec<String>) {
        match v {
            Json::String(s) if !out.contains(s) => out.push(s.clone()),
            Json::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Json::Object(o) => {
                for k in o.keys() {
                    if !out.contains(k) {
                        out.push(k.clone());
                    }
                }
            }
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn events(lines: &str) -> Vec<Event> {
        lines
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn partition_links_is_a_partition_ended_by_heal() {
        let t = Timeline::from_events(&events(
            r#"{"index":0,"time":10,"type":"info","process":"nemesis","f":"partition-links","value":[["n1","n2"],["n2","n3"]]}
{"index":1,"time":40,"type":"info","process":"nemesis","f":"heal","value":null}
{"index":2,"time":50,"type":"invoke","process":1,"node":"n2","f":"txn","value":[["r","x",null]]}
{"index":3,"time":60,"type":"ok","process":1,"node":"n2","f":"txn","value":[["r","x",null]]}"#,
        ));
        let spans: Vec<_> = t
            .faults
            .iter()
            .map(|f| (f.kind.as_str(), f.start, f.end))
            .collect();
        assert_eq!(spans, vec![("partition", 10, 40)]);
        assert!(t.instants.is_empty());
        assert_eq!(t.heal_time(), Some(40));
    }

    #[test]
    fn pairs_ops_and_fault_intervals() {
        let h = events(
            r#"{"index":0,"time":10,"type":"invoke","process":0,"node":"n1","f":"txn","value":[["append","x",1]]}
{"index":1,"time":20,"type":"info","process":"nemesis","f":"partition","value":[["n1"],["n2"]]}
{"index":2,"time":30,"type":"ok","process":0,"node":"n1","f":"txn","value":[["append","x",1]]}
{"index":3,"time":35,"type":"info","process":"nemesis","f":"crash","value":["n1","n2"]}
{"index":4,"time":40,"type":"info","process":"nemesis","f":"heal","value":null}
{"index":5,"time":45,"type":"info","process":"nemesis","f":"restart","value":["n2"]}
{"index":6,"time":50,"type":"invoke","process":1,"node":"n2","f":"txn","value":[["r","x",null]]}
{"index":7,"time":60,"type":"info","process":"nemesis","f":"clog","value":["n2"]}"#,
        );
        let t = Timeline::from_events(&h);
        assert_eq!(t.ops.len(), 2);
        assert_eq!(t.ops[0].outcome, Outcome::Ok);
        assert_eq!((t.ops[0].start, t.ops[0].end), (10, 30));
        assert_eq!(t.ops[1].outcome, Outcome::Info);
        assert_eq!(t.ops[1].end, 60);
        assert_eq!(t.op_at(2).unwrap().invoke_index, 0);
        let spans: Vec<_> = t
            .faults
            .iter()
            .map(|f| (f.kind.as_str(), f.start, f.end))
            .collect();
        assert_eq!(
            spans,
            vec![("partition", 20, 40), ("crash", 35, 60), ("crash", 35, 45)]
        );
        assert_eq!(t.instants.len(), 1);
        assert_eq!(t.nodes, vec!["n1", "n2"]);
        assert_eq!(t.heal_time(), Some(40));
        let mut names = vec!["n10", "n2", "a", "n1"];
        names.sort_by_key(|n| node_order(n));
        assert_eq!(names, vec!["a", "n1", "n2", "n10"]);
        assert_eq!(t.ops[0].mops_text(), "[append x 1]");
    }
}
