//! Version-vector registers: a write is a version with a dot (client id, that
//! client's write count) and the client's vector clock; it removes the
//! versions its clock covers (what its client had seen) and sits beside the
//! rest as a sibling. A version arriving after something that superseded it
//! is dropped: `covered` is the pointwise maximum of applied writes' clocks.

use ladon_checker::history::ReadValue;

use crate::reference::version::{Observed, Vc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub value: i64,
    pub dot: (u64, u64),
    pub vc: Vc,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Siblings {
    pub versions: Vec<Version>,
    pub covered: Vc,
}

pub fn covers(vc: &Vc, dot: (u64, u64)) -> bool {
    vc.get(&dot.0).is_some_and(|n| *n >= dot.1)
}

pub fn merge_into(into: &mut Vc, from: &Vc) {
    for (c, n) in from {
        let e = into.entry(*c).or_insert(0);
        *e = (*e).max(*n);
    }
}

impl Siblings {
    pub fn apply(&mut self, value: i64, dot: (u64, u64), vc: &Vc) {
        if let Some(v) = self.versions.iter_mut().find(|v| v.dot == dot) {
            // A second write of the key in the same transaction.
            v.value = value;
            return;
        }
        if covers(&self.covered, dot) {
            return;
        }
        self.versions.retain(|v| !covers(vc, v.dot));
        self.versions.push(Version {
            value,
            dot,
            vc: vc.clone(),
        });
        self.versions.sort_by_key(|v| (v.value, v.dot));
        merge_into(&mut self.covered, vc);
    }

    pub fn read(&self) -> Observed {
        let value = match self.versions.as_slice() {
            [] => ReadValue::Null,
            [one] => ReadValue::Int(one.value),
            many => ReadValue::List(many.iter().map(|v| v.value).collect()),
        };
        Observed {
            value,
            vcs: self.versions.iter().map(|v| v.vc.clone()).collect(),
            ts: None,
            number: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vc(pairs: &[(u64, u64)]) -> Vc {
        pairs.iter().copied().collect()
    }

    #[test]
    fn concurrent_writes_are_siblings_and_a_write_supersedes_what_it_saw() {
        let mut s = Siblings::default();
        s.apply(1, (10, 1), &vc(&[(10, 1)]));
        s.apply(2, (20, 1), &vc(&[(20, 1)]));
        assert_eq!(s.read().value, ReadValue::List(vec![1, 2]));
        // Client 30 read both, then wrote 3.
        s.apply(3, (30, 1), &vc(&[(10, 1), (20, 1), (30, 1)]));
        assert_eq!(s.read().value, ReadValue::Int(3));
    }

    #[test]
    fn a_superseded_version_arriving_late_is_dropped() {
        let mut s = Siblings::default();
        s.apply(3, (30, 1), &vc(&[(10, 1), (30, 1)]));
        s.apply(1, (10, 1), &vc(&[(10, 1)]));
        assert_eq!(s.read().value, ReadValue::Int(3));
    }
}
