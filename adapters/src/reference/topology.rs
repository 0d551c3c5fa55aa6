//! Where a leader sends an entry, and whom it asks for what it lacks. The
//! failure modes follow from the shape: a ring stalls behind a cut-off
//! leader (everything downstream of it waits), a star stops when its hub is
//! cut off, and mesh messages from different origins overtake one another.

use super::config::{Config, Topology};
use crate::node::NodeId;

/// The star's hub.
pub const HUB: NodeId = NodeId(0);

/// Leaders that `me` passes an entry to, before the passed-through filter:
/// `local` is true for an entry `me` just wrote.
pub fn next_hops(cfg: &Config, me: NodeId, local: bool) -> Vec<NodeId> {
    let n = cfg.leaders;
    if n < 2 {
        return vec![];
    }
    match cfg.topology {
        Topology::Mesh if local => cfg.leader_ids().into_iter().filter(|l| *l != me).collect(),
        Topology::Mesh => vec![],
        Topology::Ring => vec![NodeId((me.0 + 1) % n)],
        Topology::Star if me == HUB => cfg.leader_ids().into_iter().filter(|l| *l != me).collect(),
        Topology::Star if local => vec![HUB],
        Topology::Star => vec![],
    }
}

/// Every leader `me` has a link to (the `no-loop-guard` bug floods these).
pub fn neighbours(cfg: &Config, me: NodeId) -> Vec<NodeId> {
    let n = cfg.leaders;
    match cfg.topology {
        Topology::Mesh => cfg.leader_ids().into_iter().filter(|l| *l != me).collect(),
        Topology::Ring if n < 2 => vec![],
        Topology::Ring => vec![NodeId((me.0 + 1) % n)],
        Topology::Star => next_hops(cfg, me, true),
    }
}

/// Leaders that pass entries to `me`: anti-entropy sends them `me`'s marks so
/// they resend what `me` lacks.
pub fn upstream(cfg: &Config, me: NodeId) -> Vec<NodeId> {
    let n = cfg.leaders;
    if n < 2 {
        return vec![];
    }
    match cfg.topology {
        Topology::Mesh => cfg.leader_ids().into_iter().filter(|l| *l != me).collect(),
        Topology::Ring => vec![NodeId((me.0 + n - 1) % n)],
        Topology::Star if me == HUB => cfg.leader_ids().into_iter().filter(|l| *l != me).collect(),
        Topology::Star => vec![HUB],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(t: Topology) -> Config {
        Config {
            leaders: 4,
            topology: t,
            ..Config::default()
        }
    }

    #[test]
    fn shapes() {
        let ids = |v: Vec<NodeId>| v.into_iter().map(|n| n.0).collect::<Vec<_>>();
        assert_eq!(
            ids(next_hops(&cfg(Topology::Mesh), NodeId(1), true)),
            [0, 2, 3]
        );
        assert_eq!(
            ids(next_hops(&cfg(Topology::Mesh), NodeId(1), false)),
            Vec::<usize>::new()
        );
        assert_eq!(ids(next_hops(&cfg(Topology::Ring), NodeId(3), false)), [0]);
        assert_eq!(ids(upstream(&cfg(Topology::Ring), NodeId(0))), [3]);
        assert_eq!(ids(next_hops(&cfg(Topology::Star), NodeId(2), true)), [0]);
        assert_eq!(
            ids(next_hops(&cfg(Topology::Star), NodeId(2), false)),
            Vec::<usize>::new()
        );
        assert_eq!(
            ids(next_hops(&cfg(Topology::Star), NodeId(0), false)),
            [1, 2, 3]
        );
    }
}
