//! The final phase's bookkeeping, one for every execution: after the heal,
//! rounds of final reads (every node reads every written key) until the
//! nodes agree or the window (`--converge-timeout`) ends. How a round is
//! run differs (events on the simulator's queue, concurrent requests to
//! live processes); what a round's results mean is here ([`FinalRounds`]).

use ladon_checker::history::{KeyKind, Mop, ReadValue};

/// How nodes' final reads are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Reads as they are, lists in order (a set's sorted): the simulator's
    /// comparison, kept so that its histories stay byte-identical.
    Exact { set_like: bool },
    /// Canonical states for a key kind: sets and registers' siblings as
    /// sorted sets, lists as sequences, an empty list as no value (live
    /// nodes spell "nothing" either way).
    Canonical(KeyKind),
}

impl Compare {
    fn state(self, ops: &[Mop]) -> Vec<ReadValue> {
        match self {
            Compare::Exact { set_like } => ops
                .iter()
                .map(|m| match m {
                    Mop::Read(_, ReadValue::List(v)) if set_like => {
                        let mut v = v.clone();
                        v.sort_unstable();
                        ReadValue::List(v)
                    }
                    Mop::Read(_, v) => v.clone(),
                    _ => ReadValue::Null,
                })
                .collect(),
            Compare::Canonical(kind) => canonical(kind, ops),
        }
    }
}

/// Normalises a read for comparing nodes: sets and registers' siblings as
/// sorted sets, lists as sequences, counters as integers.
fn canonical(kind: KeyKind, ops: &[Mop]) -> Vec<ReadValue> {
    ops.iter()
        .map(|m| match m {
            Mop::Read(_, ReadValue::List(v)) if v.is_empty() => ReadValue::Null,
            Mop::Read(_, ReadValue::List(v)) if kind != KeyKind::List => {
                let mut v = v.clone();
                v.sort_unstable();
                v.dedup();
                ReadValue::List(v)
            }
            Mop::Read(_, v) => v.clone(),
            _ => ReadValue::Null,
        })
        .collect()
}

/// What the final reads saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinalReads {
    /// Harness time at which all nodes' final reads first agreed.
    pub converged_ns: Option<u64>,
    /// Harness time the final reads started (right after the heal).
    pub started_ns: u64,
    /// Rounds of reads (every node read every key once per round).
    pub rounds: u32,
    /// The window (`--converge-timeout`).
    pub window_ns: u64,
    /// The last time a node's state differed from its previous round, and
    /// which node(s): states were still changing then.
    pub last_change: Option<(u64, Vec<String>)>,
    /// Why the final reads stopped before the window ended, when the
    /// system said the nodes could not converge (replication stopped for
    /// good, a server exited by itself): when, and the system's words.
    pub ended_early: Option<(u64, String)>,
}

impl FinalReads {
    /// Seconds from the start of the final reads to agreement.
    pub fn time_to_converge_s(&self) -> Option<f64> {
        self.converged_ns
            .map(|t| t.saturating_sub(self.started_ns) as f64 / 1e9)
    }

    /// For a run that did not converge: whether states were still changing
    /// during the window, said for an anomaly's explanation.
    pub fn window_note(&self) -> Option<String> {
        if self.converged_ns.is_some() {
            return None;
        }
        let window = self.window_ns as f64 / 1e9;
        if let Some((t, why)) = &self.ended_early {
            return Some(format!(
                "the final reads ended {:.1}s into the {window}s window (--converge-timeout), \
                 because the nodes cannot converge: {why}",
                t.saturating_sub(self.started_ns) as f64 / 1e9
            ));
        }
        Some(match &self.last_change {
            Some((t, nodes)) => format!(
                "the final reads were still changing when the {window}s window \
                 (--converge-timeout) ended: the last change was seen on {} {:.1}s into \
                 the window; a longer --converge-timeout may let the nodes agree",
                nodes.join(", "),
                t.saturating_sub(self.started_ns) as f64 / 1e9
            ),
            None => format!(
                "no node's state changed during the {window}s final window (--converge-timeout) \
                 after the first round of final reads ({} rounds)",
                self.rounds
            ),
        })
    }
}

/// The rounds of a final phase: feed each round's results, learn whether
/// the nodes agree; [`FinalRounds::reads`] says what was seen.
#[derive(Debug, Clone)]
pub struct FinalRounds {
    compare: Compare,
    names: Vec<String>,
    previous: Vec<Option<Vec<ReadValue>>>,
    reads: FinalReads,
}

impl FinalRounds {
    /// Rounds over nodes `names` starting at `started_ns` (the heal), with
    /// a window of `window_ns`.
    pub fn new(names: Vec<String>, compare: Compare, started_ns: u64, window_ns: u64) -> Self {
        FinalRounds {
            compare,
            previous: vec![None; names.len()],
            names,
            reads: FinalReads {
                started_ns,
                window_ns,
                ..FinalReads::default()
            },
        }
    }

    /// One round's results at `now`, by node (`None`: the node's read did
    /// not succeed). Whether every node read the same state.
    pub fn round(&mut self, now: u64, results: &[Option<Vec<Mop>>]) -> bool {
        self.reads.rounds += 1;
        let mut states = Vec::with_capacity(results.len());
        let mut changed = Vec::new();
        for (i, r) in results.iter().enumerate() {
            let Some(ops) = r else { continue };
            let st = self.compare.state(ops);
            if self.previous[i].as_ref().is_some_and(|p| *p != st) {
                changed.push(self.names[i].clone());
            }
            self.previous[i] = Some(st.clone());
            states.push(st);
        }
        if !changed.is_empty() {
            self.reads.last_change = Some((now, changed));
        }
        let agreed = states.len() == self.names.len() && states.windows(2).all(|w| w[0] == w[1]);
        if agreed {
            self.reads.converged_ns = Some(now);
        }
        agreed
    }

    pub fn reads(&self) -> &FinalReads {
        &self.reads
    }

    /// Ends the rounds at `now`: the system said the nodes cannot
    /// converge, for reason `why`.
    pub fn end_early(&mut self, now: u64, why: String) {
        self.reads.ended_early = Some((now, why));
    }

    pub fn into_reads(self) -> FinalReads {
        self.reads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ladon_checker::history::Key;

    fn read(v: Vec<i64>) -> Option<Vec<Mop>> {
        Some(vec![Mop::Read(Key::Int(1), ReadValue::List(v))])
    }

    #[test]
    fn rounds_agree_only_when_every_node_read_the_same_state() {
        let names = vec!["n1".to_string(), "n2".to_string()];
        let mut r = FinalRounds::new(names.clone(), Compare::Exact { set_like: false }, 100, 50);
        assert!(!r.round(110, &[read(vec![1, 2]), None]));
        assert!(!r.round(120, &[read(vec![1, 2]), read(vec![2, 1])]));
        assert!(r.round(130, &[read(vec![1, 2]), read(vec![1, 2])]));
        let reads = r.into_reads();
        assert_eq!(reads.rounds, 3);
        assert_eq!(reads.converged_ns, Some(130));
        assert_eq!(reads.last_change, Some((130, vec!["n2".to_string()])));
        // A set compares as a set, in either comparison.
        let mut s = FinalRounds::new(names.clone(), Compare::Exact { set_like: true }, 0, 1);
        assert!(s.round(1, &[read(vec![1, 2]), read(vec![2, 1])]));
        let mut c = FinalRounds::new(names, Compare::Canonical(KeyKind::Set), 0, 1);
        assert!(c.round(1, &[read(vec![1, 2, 2]), read(vec![2, 1])]));
    }
}
