//! The final phase's stopping rule: every node's latest final read
//! succeeded and they all saw the same state.

use ladon_checker::history::{Mop, ReadValue};

/// Whether every node's latest final read succeeded and saw the same state.
pub(super) fn agree(last: &[Option<Vec<Mop>>], set_like: bool) -> bool {
    let norm = |ops: &Vec<Mop>| -> Vec<ReadValue> {
        ops.iter()
            .map(|m| match m {
                Mop::Read(_, ReadValue::List(v)) if set_like => {
                    let mut v = v.clone();
                    v.sort_unstable();
                    ReadValue::List(v)
                }
                Mop::Read(_, v) => v.clone(),
                _ => ReadValue::Null,
            })
            .collect()
    };
    let Some(Some(first)) = last.first() else {
        return false;
    };
    let first = norm(first);
    last.iter()
        .all(|l| l.as_ref().is_some_and(|ops| norm(ops) == first))
}
