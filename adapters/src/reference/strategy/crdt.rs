//! CRDTs: an ordered list whose append sorts after everything its writer had
//! seen (its HLC timestamp exceeds theirs) with concurrent appends ordered by
//! (timestamp, rank, origin, element); add-wins sets (the workloads never
//! remove, so a union); PN-counters; and the HLC last-write-wins register
//! (`Effect::Assign`). The list and the counter are operation-based: they
//! rely on the log applying each entry once.

use crate::reference::version::{Vc, Version};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    pub version: Version,
    pub elem: i64,
    pub vc: Vc,
}

/// Inserts at the element's place in the deterministic order; no dedupe (see
/// the module note).
pub fn list_insert(list: &mut Vec<ListItem>, elem: i64, version: Version, vc: &Vc) {
    let pos = list.partition_point(|i| (i.version, i.elem) <= (version, elem));
    list.insert(
        pos,
        ListItem {
            version,
            elem,
            vc: vc.clone(),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeId;

    #[test]
    fn concurrent_appends_order_the_same_everywhere() {
        let a = Version {
            ts: 10,
            rank: 1,
            origin: NodeId(1),
            seq: 1,
        };
        let b = Version {
            ts: 10,
            rank: 2,
            origin: NodeId(0),
            seq: 1,
        };
        let (mut x, mut y) = (Vec::new(), Vec::new());
        list_insert(&mut x, 1, a, &Vc::new());
        list_insert(&mut x, 2, b, &Vc::new());
        list_insert(&mut y, 2, b, &Vc::new());
        list_insert(&mut y, 1, a, &Vc::new());
        assert_eq!(x, y);
        assert_eq!(x.iter().map(|i| i.elem).collect::<Vec<_>>(), [1, 2]);
    }
}
