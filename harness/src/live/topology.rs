//! Broadcast's initial `topology` message: who each node should gossip to.

use std::collections::BTreeMap;
use std::str::FromStr;

/// `--topology`: `grid` (Maelstrom's default), `line`, `total`, `tree2`, `tree3`, `tree4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    Grid,
    Line,
    Total,
    Tree(usize),
}

impl FromStr for Topology {
    type Err = String;
    fn from_str(s: &str) -> Result<Topology, String> {
        Ok(match s {
            "grid" => Topology::Grid,
            "line" => Topology::Line,
            "total" => Topology::Total,
            "tree2" => Topology::Tree(2),
            "tree3" => Topology::Tree(3),
            "tree4" => Topology::Tree(4),
            other => {
                return Err(format!(
                "unknown --topology {other:?}: expected grid, line, total, tree2, tree3 or tree4"
            ))
            }
        })
    }
}

impl Topology {
    pub fn as_str(self) -> String {
        match self {
            Topology::Grid => "grid".into(),
            Topology::Line => "line".into(),
            Topology::Total => "total".into(),
            Topology::Tree(k) => format!("tree{k}"),
        }
    }

    /// Each node's neighbours, both directions.
    pub fn neighbours(self, names: &[String]) -> BTreeMap<String, Vec<String>> {
        let n = names.len();
        let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut link = |a: usize, b: usize| {
            if a != b && !adj[a].contains(&b) {
                adj[a].push(b);
                adj[b].push(a);
            }
        };
        match self {
            Topology::Total => (0..n).for_each(|a| (0..n).for_each(|b| link(a, b))),
            Topology::Line => (1..n).for_each(|i| link(i - 1, i)),
            Topology::Tree(k) => (1..n).for_each(|i| link((i - 1) / k, i)),
            Topology::Grid => {
                let w = (n as f64).sqrt().ceil().max(1.0) as usize;
                for i in 0..n {
                    if (i + 1) % w != 0 && i + 1 < n {
                        link(i, i + 1);
                    }
                    if i + w < n {
                        link(i, i + w);
                    }
                }
            }
        }
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut v: Vec<usize> = adj[i].clone();
                v.sort_unstable();
                (
                    name.clone(),
                    v.into_iter().map(|j| names[j].clone()).collect(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let names: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
        let g = Topology::Grid.neighbours(&names);
        assert_eq!(g["n1"], vec!["n2", "n4"]);
        assert_eq!(g["n5"], vec!["n2", "n4"]);
        assert_eq!(Topology::Line.neighbours(&names)["n3"], vec!["n2", "n4"]);
        assert_eq!(
            Topology::Tree(2).neighbours(&names)["n2"],
            vec!["n1", "n4", "n5"]
        );
        assert_eq!(Topology::Total.neighbours(&names)["n1"].len(), 4);
    }
}
