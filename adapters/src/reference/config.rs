//! The reference store's options (`--nodes --followers --topology --strategy
//! --bug --read-from --priority --causal-delivery`), validated once, and the
//! guarantees each configuration declares.

use thiserror::Error;

use super::bugs::Bug;
use crate::node::{NodeId, NodeSpec, Role};

/// A flag value that does not parse or a combination that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("--{flag}: unknown value {value:?} (expected one of: {expected})")]
    UnknownValue {
        flag: &'static str,
        value: String,
        expected: String,
    },
    #[error("--nodes: a cluster needs at least 1 leader, got {0}")]
    NoLeaders(usize),
    #[error("--priority: {0:?} is not a leader of this cluster (leaders are n1..n{1})")]
    PriorityNotALeader(String, usize),
    #[error("--priority: {0:?} is listed twice")]
    PriorityDuplicate(String),
    #[error("--read-from {0}: the cluster has no followers (set --followers)")]
    ReadFromWithoutFollowers(ReadFrom),
    #[error("--bug {bug}: needs {needs}")]
    BugNeeds { bug: Bug, needs: &'static str },
}

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident, $flag:literal, { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $var),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$var => $s),+ } }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
        impl std::str::FromStr for $name {
            type Err = ConfigError;
            fn from_str(s: &str) -> Result<Self, ConfigError> {
                match s {
                    $($s => Ok($name::$var),)+
                    _ => Err(ConfigError::UnknownValue {
                        flag: $flag,
                        value: s.to_string(),
                        expected: [$($s),+].join(", "),
                    }),
                }
            }
        }
    };
}
pub(crate) use named_enum;

named_enum!(
    /// How leaders pass writes to each other.
    Topology, "topology", {
        /// All-to-all: every leader sends its own writes to every other leader.
        Mesh => "mesh",
        /// A circle: each leader forwards to its successor.
        Ring => "ring",
        /// A hub (`n1`) relays for the other leaders.
        Star => "star",
    }
);

named_enum!(
    /// How concurrent writes to one key are resolved.
    Strategy, "strategy", {
        /// Last write wins by the node's own wall clock (ms), ties by `--priority`.
        Lww => "lww",
        /// Last write wins by hybrid logical clock.
        LwwHlc => "lww-hlc",
        /// Registers keep concurrent siblings; lists, sets and counters merge as CRDTs.
        VersionVector => "version-vector",
        /// Counters, add-wins sets, ordered lists and an HLC LWW register.
        Crdt => "crdt",
        /// Every key has a home leader that serialises its writes.
        Avoidance => "avoidance",
        /// A write commits only with a majority of leaders' votes.
        Quorum => "quorum",
    }
);

named_enum!(
    /// Where a client attached to a leader sends its read-only transactions.
    ReadFrom, "read-from", {
        Leader => "leader",
        Follower => "follower",
        Any => "any",
    }
);

impl Strategy {
    pub fn summary(self) -> &'static str {
        match self {
            Strategy::Lww => "last write wins by the writer's wall clock (ms), ties by --priority",
            Strategy::LwwHlc => "last write wins by hybrid logical clock, ties by --priority",
            Strategy::VersionVector => {
                "registers keep concurrent siblings; other kinds merge as CRDTs"
            }
            Strategy::Crdt => {
                "PN-counters, add-wins sets, ordered lists, HLC last-write-wins registers"
            }
            Strategy::Avoidance => {
                "each key's home leader serialises its writes; unreachable home fails"
            }
            Strategy::Quorum => "a write commits with a majority's votes; minorities refuse",
        }
    }
}

impl Topology {
    pub fn summary(self) -> &'static str {
        match self {
            Topology::Mesh => "all-to-all; messages from different origins overtake one another",
            Topology::Ring => {
                "each leader forwards to its successor; stalls behind a cut-off leader"
            }
            Topology::Star => "n1 relays for the others; stops when the hub is cut off",
        }
    }
}

/// One resolved configuration of the reference store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub leaders: usize,
    pub followers: usize,
    pub topology: Topology,
    pub strategy: Strategy,
    pub bug: Option<Bug>,
    pub read_from: ReadFrom,
    /// Leader names, highest precedence first (ties in `lww`/`lww-hlc`).
    pub priority: Vec<String>,
    pub causal_delivery: bool,
    /// Period of anti-entropy (high-water-mark exchange), in ns.
    pub anti_entropy_ns: u64,
    /// Period of reachability pings between leaders (avoidance, quorum), in ns.
    pub ping_ns: u64,
    /// How long a forwarded request, quorum round or causal wait may take, in ns.
    pub request_timeout_ns: u64,
    /// Resolution of `lww` wall-clock timestamps, in ns (1 ms).
    pub lww_resolution_ns: u64,
}

impl Default for Config {
    /// The default configuration of `ladon run`: 3 leaders, mesh, crdt with
    /// causal delivery.
    fn default() -> Self {
        Config {
            leaders: 3,
            followers: 0,
            topology: Topology::Mesh,
            strategy: Strategy::Crdt,
            bug: None,
            read_from: ReadFrom::Leader,
            priority: Vec::new(),
            causal_delivery: true,
            anti_entropy_ns: 200_000_000,
            ping_ns: 100_000_000,
            request_timeout_ns: 1_000_000_000,
            lww_resolution_ns: 1_000_000,
        }
    }
}

impl Config {
    /// Checks flag combinations; call before building a cluster.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.leaders == 0 {
            return Err(ConfigError::NoLeaders(0));
        }
        let mut seen = Vec::new();
        for name in &self.priority {
            match self.leader_index(name) {
                None => return Err(ConfigError::PriorityNotALeader(name.clone(), self.leaders)),
                Some(i) if seen.contains(&i) => {
                    return Err(ConfigError::PriorityDuplicate(name.clone()))
                }
                Some(i) => seen.push(i),
            }
        }
        if self.followers == 0 && self.read_from != ReadFrom::Leader {
            return Err(ConfigError::ReadFromWithoutFollowers(self.read_from));
        }
        if let Some(bug) = self.bug {
            bug.check_applies(self)?;
        }
        Ok(())
    }

    pub fn node_count(&self) -> usize {
        self.leaders * (1 + self.followers)
    }

    /// Leaders are `n1..nN` (ids `0..N`), then each leader's followers
    /// `n1f1, n1f2, .., n2f1, ..`.
    pub fn specs(&self) -> Vec<NodeSpec> {
        let mut specs: Vec<NodeSpec> = (0..self.leaders)
            .map(|i| NodeSpec {
                name: format!("n{}", i + 1),
                role: Role::Leader,
            })
            .collect();
        for l in 0..self.leaders {
            for f in 0..self.followers {
                specs.push(NodeSpec {
                    name: format!("n{}f{}", l + 1, f + 1),
                    role: Role::Follower { leader: NodeId(l) },
                });
            }
        }
        specs
    }

    pub fn name(&self, id: NodeId) -> String {
        if id.0 < self.leaders {
            format!("n{}", id.0 + 1)
        } else {
            let k = id.0 - self.leaders;
            format!(
                "n{}f{}",
                k / self.followers.max(1) + 1,
                k % self.followers.max(1) + 1
            )
        }
    }

    pub fn is_leader(&self, id: NodeId) -> bool {
        id.0 < self.leaders
    }

    /// The leader a follower replicates from (a leader is its own).
    pub fn leader_of(&self, id: NodeId) -> NodeId {
        if self.is_leader(id) {
            id
        } else {
            NodeId((id.0 - self.leaders) / self.followers.max(1))
        }
    }

    pub fn followers_of(&self, leader: NodeId) -> Vec<NodeId> {
        (0..self.followers)
            .map(|f| NodeId(self.leaders + leader.0 * self.followers + f))
            .collect()
    }

    pub fn leader_ids(&self) -> Vec<NodeId> {
        (0..self.leaders).map(NodeId).collect()
    }

    fn leader_index(&self, name: &str) -> Option<usize> {
        let n: usize = name.strip_prefix('n')?.parse().ok()?;
        (1..=self.leaders).contains(&n).then_some(n - 1)
    }

    /// Tie-break rank of a leader's writes: higher wins. Leaders listed in
    /// `--priority` come first in that order; the rest follow by id (`n1`
    /// before `n2`).
    pub fn rank(&self, id: NodeId) -> u32 {
        let n = self.leaders as u32;
        if let Some(pos) = self
            .priority
            .iter()
            .position(|p| self.leader_index(p) == Some(id.0))
        {
            return 2 * n - pos as u32;
        }
        n.saturating_sub(id.0 as u32)
    }

    pub fn majority(&self) -> usize {
        self.leaders / 2 + 1
    }

    /// Whether causal buffering actually happens (the `no-causal-buffer` bug
    /// declares causal delivery but applies on arrival).
    pub fn buffers_causally(&self) -> bool {
        self.causal_delivery && self.bug != Some(Bug::NoCausalBuffer)
    }

    /// The guarantees (names of `anomalies.md`) this configuration declares.
    /// A bug variant declares what its correct configuration declares: the
    /// point is that the checker catches the deviation.
    pub fn guarantees(&self) -> Vec<String> {
        let mut g = vec!["convergence"];
        match self.strategy {
            Strategy::Lww | Strategy::LwwHlc => {}
            Strategy::VersionVector => g.extend(["no-lost-writes", "no-conflict-loss"]),
            // Registers resolve by HLC last-write-wins or by the home's
            // order: concurrent blind writes are discarded (conflict-loss).
            Strategy::Crdt | Strategy::Avoidance => g.push("no-lost-writes"),
            // Reads take a quorum round too (quorum_read.rs).
            Strategy::Quorum => g.extend(["no-lost-writes", "no-conflict-loss", "linearizable"]),
        }
        if self.causal_delivery
            && self.strategy != Strategy::Lww
            && self.strategy != Strategy::LwwHlc
        {
            g.push("causal");
        }
        g.into_iter().map(String::from).collect()
    }

    /// A one-line description for `ladon adapters` and logs.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} leaders, {} followers each, {}, {}{}, reads from {}",
            self.leaders,
            self.followers,
            self.topology,
            self.strategy,
            if self.causal_delivery {
                " with causal delivery"
            } else {
                ""
            },
            self.read_from
        );
        if let Some(b) = self.bug {
            s.push_str(&format!(", bug {b}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roles_and_ranks() {
        let cfg = Config {
            leaders: 2,
            followers: 2,
            priority: vec!["n2".into()],
            ..Config::default()
        };
        let names: Vec<String> = cfg.specs().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["n1", "n2", "n1f1", "n1f2", "n2f1", "n2f2"]);
        assert_eq!(cfg.name(NodeId(4)), "n2f1");
        assert_eq!(cfg.leader_of(NodeId(4)), NodeId(1));
        assert_eq!(cfg.followers_of(NodeId(1)), vec![NodeId(4), NodeId(5)]);
        assert!(cfg.rank(NodeId(1)) > cfg.rank(NodeId(0)));
    }

    #[test]
    fn rejects_bad_flags_by_name() {
        let cfg = Config {
            priority: vec!["n7".into()],
            ..Config::default()
        };
        assert_eq!(
            cfg.validate().unwrap_err().to_string(),
            "--priority: \"n7\" is not a leader of this cluster (leaders are n1..n3)"
        );
        assert_eq!(
            "zigzag".parse::<Topology>().unwrap_err().to_string(),
            "--topology: unknown value \"zigzag\" (expected one of: mesh, ring, star)"
        );
    }

    #[test]
    fn declared_guarantees() {
        let lww = Config {
            strategy: Strategy::Lww,
            ..Config::default()
        };
        assert_eq!(lww.guarantees(), ["convergence"]);
        assert_eq!(
            Config::default().guarantees(),
            ["convergence", "no-lost-writes", "causal"]
        );
        let vv = Config {
            strategy: Strategy::VersionVector,
            causal_delivery: false,
            ..Config::default()
        };
        assert_eq!(
            vv.guarantees(),
            ["convergence", "no-lost-writes", "no-conflict-loss"]
        );
    }
}
