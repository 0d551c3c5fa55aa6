//! Partition shapes: which directed links a partition cuts.
//!
//! A [`Cut`] is the set of blocked directed links `(from, to)` plus, where the
//! shape is a grouping, the groups (what the history's `partition` event
//! records). Shapes that are not groupings (`majorities-ring`, `bridge`,
//! `ring-cut`, one-way cuts) are recorded as `partition-links` events listing
//! the cut links.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How a partition is laid out. Parsed from `--partition-shapes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Isolate one random node.
    One,
    /// Two halves (random membership; the larger half gets the odd node).
    Halves,
    /// Each node sees a majority of the others, and no two nodes the same one
    /// (Jepsen's `majorities-ring`).
    MajoritiesRing,
    /// Two halves joined by one bridge node that sees both.
    Bridge,
    /// Cut one random link, both directions.
    RingCut,
    /// Isolate the node that has sent the most messages so far.
    Hub,
    /// Block one random direction of one random link.
    OneWay,
    /// Explicit groups of node indices, e.g. `groups:0,1/2`.
    Groups(Vec<Vec<usize>>),
}

impl Shape {
    pub const NAMED: [&'static str; 7] = [
        "one",
        "halves",
        "majorities-ring",
        "bridge",
        "ring-cut",
        "hub",
        "one-way",
    ];
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Shape::One => f.write_str("one"),
            Shape::Halves => f.write_str("halves"),
            Shape::MajoritiesRing => f.write_str("majorities-ring"),
            Shape::Bridge => f.write_str("bridge"),
            Shape::RingCut => f.write_str("ring-cut"),
            Shape::Hub => f.write_str("hub"),
            Shape::OneWay => f.write_str("one-way"),
            Shape::Groups(gs) => {
                let parts: Vec<String> = gs
                    .iter()
                    .map(|g| {
                        g.iter()
                            .map(|n| n.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .collect();
                write!(f, "groups:{}", parts.join("/"))
            }
        }
    }
}

impl FromStr for Shape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim() {
            "one" => Shape::One,
            "halves" => Shape::Halves,
            "majorities-ring" => Shape::MajoritiesRing,
            "bridge" => Shape::Bridge,
            "ring-cut" => Shape::RingCut,
            "hub" => Shape::Hub,
            "one-way" => Shape::OneWay,
            other => {
                if let Some(spec) = other.strip_prefix("groups:") {
                    let mut groups = Vec::new();
                    for g in spec.split('/') {
                        let mut group = Vec::new();
                        for n in g.split(',') {
                            group.push(n.trim().parse::<usize>().map_err(|_| {
                                format!("invalid partition groups {other:?}: node indices are 0-based integers, e.g. groups:0,1/2")
                            })?);
                        }
                        groups.push(group);
                    }
                    Shape::Groups(groups)
                } else {
                    return Err(format!(
                        "unknown partition shape {other:?}: expected one of {} or groups:0,1/2",
                        Shape::NAMED.join(", ")
                    ));
                }
            }
        })
    }
}

impl Serialize for Shape {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A partition: blocked directed links, and the groups when it is a grouping.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cut {
    pub blocked: BTreeSet<(usize, usize)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Vec<usize>>>,
}

impl Cut {
    /// Nodes in different groups cannot exchange messages.
    pub fn from_groups(n: usize, groups: Vec<Vec<usize>>) -> Cut {
        let mut group_of = vec![usize::MAX; n];
        for (g, members) in groups.iter().enumerate() {
            for &m in members {
                if m < n {
                    group_of[m] = g;
                }
            }
        }
        let mut blocked = BTreeSet::new();
        for a in 0..n {
            for b in 0..n {
                if a != b && group_of[a] != group_of[b] {
                    blocked.insert((a, b));
                }
            }
        }
        let mut groups = groups;
        for g in &mut groups {
            g.sort_unstable();
        }
        groups.sort();
        Cut {
            blocked,
            groups: Some(groups),
        }
    }

    /// Everything blocked except the given undirected links.
    pub fn from_allowed(n: usize, allowed: &BTreeSet<(usize, usize)>) -> Cut {
        let mut blocked = BTreeSet::new();
        for a in 0..n {
            for b in 0..n {
                if a != b && !allowed.contains(&(a.min(b), a.max(b))) {
                    blocked.insert((a, b));
                }
            }
        }
        Cut {
            blocked,
            groups: None,
        }
    }

    /// Builds a cut of `shape` over `n` nodes. `busiest` is the node that has
    /// sent the most messages (for `hub`).
    pub fn of_shape(shape: &Shape, n: usize, busiest: usize, rng: &mut impl Rng) -> Cut {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(rng);
        match shape {
            Shape::One => {
                let lone = order[0];
                let rest: Vec<usize> = (0..n).filter(|&x| x != lone).collect();
                Cut::from_groups(n, vec![vec![lone], rest])
            }
            Shape::Hub => {
                let rest: Vec<usize> = (0..n).filter(|&x| x != busiest).collect();
                Cut::from_groups(n, vec![vec![busiest], rest])
            }
            Shape::Halves => {
                let small = n / 2;
                Cut::from_groups(n, vec![order[..small].to_vec(), order[small..].to_vec()])
            }
            Shape::Groups(gs) => Cut::from_groups(n, gs.clone()),
            Shape::MajoritiesRing => {
                // Jepsen's majorities-ring: nodes on a random ring; each hears
                // from the next `m - 1` nodes, `m` a majority, so every node
                // sees a majority (itself included) and no two see the same.
                let m = n / 2 + 1;
                let mut blocked = BTreeSet::new();
                for (i, &a) in order.iter().enumerate() {
                    let view: Vec<usize> = (1..m).map(|d| order[(i + d) % n]).collect();
                    for b in 0..n {
                        if b != a && !view.contains(&b) {
                            blocked.insert((b, a));
                        }
                    }
                }
                Cut {
                    blocked,
                    groups: None,
                }
            }
            Shape::Bridge => {
                let bridge = order[0];
                let rest = &order[1..];
                let (left, right) = rest.split_at(rest.len() / 2);
                let mut allowed = BTreeSet::new();
                for side in [left, right] {
                    for &a in side {
                        allowed.insert((a.min(bridge), a.max(bridge)));
                        for &b in side {
                            if a != b {
                                allowed.insert((a.min(b), a.max(b)));
                            }
                        }
                    }
                }
                Cut::from_allowed(n, &allowed)
            }
            Shape::RingCut => {
                let (a, b) = (order[0], order[1 % n]);
                let mut blocked = BTreeSet::new();
                if a != b {
                    blocked.insert((a, b));
                    blocked.insert((b, a));
                }
                Cut {
                    blocked,
                    groups: None,
                }
            }
            Shape::OneWay => {
                let (a, b) = (order[0], order[1 % n]);
                let mut blocked = BTreeSet::new();
                if a != b {
                    blocked.insert((a, b));
                }
                Cut {
                    blocked,
                    groups: None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(7)
    }

    #[test]
    fn shapes_parse_and_print() {
        for s in Shape::NAMED {
            assert_eq!(s.parse::<Shape>().unwrap().to_string(), s);
        }
        let g: Shape = "groups:0,1/2".parse().unwrap();
        assert_eq!(g, Shape::Groups(vec![vec![0, 1], vec![2]]));
        assert_eq!(g.to_string(), "groups:0,1/2");
        assert!("triangle"
            .parse::<Shape>()
            .unwrap_err()
            .contains("triangle"));
    }

    #[test]
    fn one_isolates_exactly_one_node() {
        let c = Cut::of_shape(&Shape::One, 3, 0, &mut rng());
        let groups = c.groups.unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups.iter().map(|g| g.len()).min(), Some(1));
        assert_eq!(c.blocked.len(), 4);
    }

    #[test]
    fn hub_isolates_the_busiest_node() {
        let c = Cut::of_shape(&Shape::Hub, 4, 2, &mut rng());
        assert_eq!(c.groups.unwrap(), vec![vec![0, 1, 3], vec![2]]);
    }

    #[test]
    fn majorities_ring_gives_every_node_a_majority_but_no_common_view() {
        let n = 5;
        let c = Cut::of_shape(&Shape::MajoritiesRing, n, 0, &mut rng());
        let mut views = BTreeSet::new();
        for a in 0..n {
            let view: Vec<usize> = (0..n)
                .filter(|&b| b == a || !c.blocked.contains(&(b, a)))
                .collect();
            assert!(view.len() > n / 2, "node {a} sees {view:?}");
            views.insert(view);
        }
        assert_eq!(views.len(), n, "every node sees a different majority");
    }

    #[test]
    fn bridge_node_sees_everyone_and_halves_do_not_see_each_other() {
        let n = 5;
        let c = Cut::of_shape(&Shape::Bridge, n, 0, &mut rng());
        let bridge = (0..n)
            .find(|&a| (0..n).all(|b| !c.blocked.contains(&(a, b))))
            .unwrap();
        let others = (0..n).filter(|&a| a != bridge).count();
        assert_eq!(others, 4);
        assert_eq!(c.blocked.len(), 8, "2x2 cross links, both directions");
    }

    #[test]
    fn ring_cut_and_one_way_cut_links() {
        let c = Cut::of_shape(&Shape::RingCut, 3, 0, &mut rng());
        assert_eq!(c.blocked.len(), 2);
        let c = Cut::of_shape(&Shape::OneWay, 3, 0, &mut rng());
        assert_eq!(c.blocked.len(), 1);
    }
}
