//! Nemesis schedules, sans-IO: which fault starts or stops when. Like
//! Jepsen's combined nemesis, each enabled fault kind is a package that
//! alternates start and stop; steps come at staggered random delays (uniform
//! in `0..2*interval`) and pick a random package. The driver (simulator or
//! live runner) applies the concrete [`Action`]s and records them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::net::{Cut, Shape};

/// A fault package named in `--nemesis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    Partition,
    Clock,
    Crash,
    Pause,
    Loss,
    Dup,
    Clog,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Partition,
        FaultKind::Clock,
        FaultKind::Crash,
        FaultKind::Pause,
        FaultKind::Loss,
        FaultKind::Dup,
        FaultKind::Clog,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Clock => "clock",
            FaultKind::Crash => "crash",
            FaultKind::Pause => "pause",
            FaultKind::Loss => "loss",
            FaultKind::Dup => "dup",
            FaultKind::Clog => "clog",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FaultKind::ALL.into_iter().find(|k| k.as_str() == s.trim()).ok_or_else(|| {
            format!(
                "unknown nemesis {s:?}: expected a comma-separated list of partition, clock, crash, pause, loss, dup, clog, or none"
            )
        })
    }
}

/// A comma-separated list of fault kinds (`none` for no faults).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FaultList(pub Vec<FaultKind>);

impl fmt::Display for FaultList {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.0.iter().map(|k| k.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for FaultList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim() == "none" || s.trim().is_empty() {
            return Ok(FaultList(Vec::new()));
        }
        let mut v: Vec<FaultKind> = s.split(',').map(str::parse).collect::<Result<_, _>>()?;
        v.sort();
        v.dedup();
        Ok(FaultList(v))
    }
}

impl Serialize for FaultList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FaultList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A concrete fault step. Serialised (kebab-case, externally tagged) in an
/// explicit schedule: see [`crate::schedule`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Partition(Cut),
    Heal,
    /// Jump these nodes' clocks by these offsets.
    ClockBump(Vec<(usize, i64)>),
    ClockStrobe {
        nodes: Vec<usize>,
        delta_ns: i64,
        period_ns: u64,
        duration_ns: u64,
    },
    ClockReset,
    Crash(Vec<usize>),
    Restart(Vec<usize>),
    Pause(Vec<usize>),
    Resume(Vec<usize>),
    Loss(f64),
    LossStop,
    Dup(f64),
    DupStop,
    Clog(usize),
    Unclog(usize),
}

/// Parameters of the schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct NemesisConfig {
    pub kinds: Vec<FaultKind>,
    pub interval_ns: u64,
    pub shapes: Vec<Shape>,
    /// Clock offsets are drawn from `-bound..=bound`.
    pub clock_skew_ns: u64,
    pub loss: f64,
    pub dup: f64,
}

/// The schedule's state: which packages are active and on which nodes.
#[derive(Debug, Clone)]
pub struct Nemesis {
    cfg: NemesisConfig,
    active: BTreeMap<FaultKind, Vec<usize>>,
}

impl Nemesis {
    pub fn new(cfg: NemesisConfig) -> Self {
        Nemesis {
            cfg,
            active: BTreeMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.cfg.kinds.is_empty()
    }

    /// Delay before the next step (staggered).
    pub fn next_delay(&self, rng: &mut impl Rng) -> u64 {
        rng.random_range(self.cfg.interval_ns / 2..=self.cfg.interval_ns * 3 / 2)
    }

    /// The next step: actions with their offsets from now. `n` nodes;
    /// `busiest` is the node that has sent the most messages.
    pub fn step(&mut self, n: usize, busiest: usize, rng: &mut impl Rng) -> Vec<(u64, Action)> {
        let Some(&kind) = self.cfg.kinds.choose(rng) else {
            return Vec::new();
        };
        let stopping = self.active.contains_key(&kind);
        let interval = self.cfg.interval_ns;
        if stopping {
            let nodes = self.active.remove(&kind).unwrap_or_default();
            return match kind {
                FaultKind::Partition => vec![(0, Action::Heal)],
                FaultKind::Clock => vec![(0, Action::ClockReset)],
                FaultKind::Crash => vec![(0, Action::Restart(nodes))],
                FaultKind::Pause => vec![(0, Action::Resume(nodes))],
                FaultKind::Loss => vec![(0, Action::LossStop)],
                FaultKind::Dup => vec![(0, Action::DupStop)],
                FaultKind::Clog => {
                    // Release in random order, one by one.
                    let mut order = nodes;
                    order.shuffle(rng);
                    let gap = interval / (4 * n.max(1) as u64);
                    order
                        .into_iter()
                        .enumerate()
                        .map(|(i, x)| (i as u64 * gap, Action::Unclog(x)))
                        .collect()
                }
            };
        }
        let minority = |rng: &mut dyn rand::RngCore| -> Vec<usize> {
            let mut all: Vec<usize> = (0..n).collect();
            all.shuffle(rng);
            let k = rng.random_range(1..=((n.saturating_sub(1)) / 2).max(1));
            let mut pick = all[..k.min(n)].to_vec();
            pick.sort_unstable();
            pick
        };
        match kind {
            FaultKind::Partition => {
                let shape = self.cfg.shapes.choose(rng).cloned().unwrap_or(Shape::One);
                self.active.insert(kind, Vec::new());
                vec![(0, Action::Partition(Cut::of_shape(&shape, n, busiest, rng)))]
            }
            FaultKind::Clock => {
                self.active.insert(kind, Vec::new());
                let bound = self.cfg.clock_skew_ns.min(i64::MAX as u64) as i64;
                if rng.random_bool(1.0 / 3.0) {
                    let node = rng.random_range(0..n);
                    let delta = if rng.random_bool(0.5) { bound } else { -bound };
                    vec![(
                        0,
                        Action::ClockStrobe {
                            nodes: vec![node],
                            delta_ns: delta,
                            period_ns: rng.random_range(10_000_000..=100_000_000),
                            duration_ns: interval,
                        },
                    )]
                } else {
                    let mut bumps = Vec::new();
                    for node in 0..n {
                        if rng.random_bool(0.5) || (node == n - 1 && bumps.is_empty()) {
                            bumps.push((node, rng.random_range(-bound..=bound)));
                        }
                    }
                    vec![(0, Action::ClockBump(bumps))]
                }
            }
            FaultKind::Crash => {
                let nodes = minority(rng);
                self.active.insert(kind, nodes.clone());
                vec![(0, Action::Crash(nodes))]
            }
            FaultKind::Pause => {
                let nodes = minority(rng);
                self.active.insert(kind, nodes.clone());
                vec![(0, Action::Pause(nodes))]
            }
            FaultKind::Loss => {
                self.active.insert(kind, Vec::new());
                vec![(0, Action::Loss(self.cfg.loss))]
            }
            FaultKind::Dup => {
                self.active.insert(kind, Vec::new());
                vec![(0, Action::Dup(self.cfg.dup))]
            }
            FaultKind::Clog => {
                // Swizzle-clog: clog a random subset one by one.
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(rng);
                let k = rng.random_range(1..=n);
                order.truncate(k);
                self.active.insert(kind, order.clone());
                let gap = interval / (4 * n.max(1) as u64);
                order
                    .into_iter()
                    .enumerate()
                    .map(|(i, x)| (i as u64 * gap, Action::Clog(x)))
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn fault_lists_parse() {
        let l: FaultList = "partition,clock,crash,pause,loss,dup,clog".parse().unwrap();
        assert_eq!(l.0.len(), 7);
        assert_eq!("none".parse::<FaultList>().unwrap(), FaultList(vec![]));
        assert!("partition,quake"
            .parse::<FaultList>()
            .unwrap_err()
            .contains("quake"));
        assert_eq!(
            "clock,partition".parse::<FaultList>().unwrap().to_string(),
            "partition,clock"
        );
    }

    #[test]
    fn packages_alternate_start_and_stop() {
        let mut nem = Nemesis::new(NemesisConfig {
            kinds: vec![FaultKind::Crash],
            interval_ns: 1_000_000_000,
            shapes: vec![Shape::One],
            clock_skew_ns: 1,
            loss: 0.1,
            dup: 0.1,
        });
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let a = nem.step(5, 0, &mut rng);
        let Action::Crash(crashed) = &a[0].1 else {
            panic!("{a:?}")
        };
        assert!(!crashed.is_empty() && crashed.len() <= 2, "a minority of 5");
        let b = nem.step(5, 0, &mut rng);
        assert_eq!(b, vec![(0, Action::Restart(crashed.clone()))]);
    }

    #[test]
    fn swizzle_clog_releases_every_clogged_node() {
        let mut nem = Nemesis::new(NemesisConfig {
            kinds: vec![FaultKind::Clog],
            interval_ns: 4_000,
            shapes: vec![],
            clock_skew_ns: 1,
            loss: 0.1,
            dup: 0.1,
        });
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let start = nem.step(4, 0, &mut rng);
        let stop = nem.step(4, 0, &mut rng);
        let mut clogged: Vec<usize> = start
            .iter()
            .map(|(_, a)| match a {
                Action::Clog(x) => *x,
                _ => panic!(),
            })
            .collect();
        let mut unclogged: Vec<usize> = stop
            .iter()
            .map(|(_, a)| match a {
                Action::Unclog(x) => *x,
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            start.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            (0..start.len() as u64).map(|i| i * 250).collect::<Vec<_>>()
        );
        clogged.sort();
        unclogged.sort();
        assert_eq!(clogged, unclogged);
    }
}
