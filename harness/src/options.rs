//! Options of a test run: one serde struct, parsed from the command line
//! (clap) and written to `run.json` (serde), so a stored run can be re-run
//! exactly. Adapter-specific options live in the flattened
//! [`crate::adapters::AdapterOptions`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use ladon_workloads::WorkloadKind;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::adapters::AdapterOptions;
use crate::nemesis::{FaultKind, FaultList};
use crate::net::{format_duration_ns, parse_duration_ns, Latency, NetConfig, PartitionMode, Shape};

/// A duration given as `30` (seconds), `30s`, `500ms`, `250us` or `100ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub u64);

impl Dur {
    pub fn secs(s: u64) -> Dur {
        Dur(s * 1_000_000_000)
    }
    pub fn ns(self) -> u64 {
        self.0
    }
}

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return parse_duration_ns(&format!("{t}s")).map(Dur);
        }
        parse_duration_ns(t).map(Dur)
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&format_duration_ns(self.0))
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A comma-separated list of partition shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeList(pub Vec<Shape>);

impl FromStr for ShapeList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        // `groups:0,1/2` contains commas: split on commas not inside a groups spec.
        let mut out = Vec::new();
        let mut cur = String::new();
        for part in s.split(',') {
            if !cur.is_empty()
                && (Shape::NAMED.contains(&part.trim()) || part.starts_with("groups:"))
            {
                out.push(cur.parse()?);
                cur.clear();
            }
            if !cur.is_empty() {
                cur.push(',');
            }
            cur.push_str(part);
        }
        if !cur.is_empty() {
            out.push(cur.parse()?);
        }
        Ok(ShapeList(out))
    }
}

impl fmt::Display for ShapeList {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let v: Vec<String> = self.0.iter().map(|s| s.to_string()).collect();
        f.write_str(&v.join(","))
    }
}

impl Serialize for ShapeList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ShapeList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// How logical clients pick nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClientMode {
    /// Each client talks to one node (writes go to that node's leader).
    #[default]
    Sticky,
    /// Each operation goes to a random node.
    Roaming,
}

/// The network fault model's flags, the same for simulated runs (`ladon
/// run`) and live ones (`ladon run --adapter process`, which changes two
/// defaults: see [`crate::cli::run_process`]).
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct NetFlags {
    /// What partitions do to messages: drop or hold.
    #[arg(long, value_enum, default_value_t = PartitionMode::Drop)]
    pub partition_mode: PartitionMode,
    /// Partition shapes the nemesis picks from (one, halves, majorities-ring,
    /// bridge, ring-cut, hub, one-way, groups:0,1/2).
    #[arg(long, default_value = SIM_SHAPES)]
    pub partition_shapes: ShapeList,
    /// Per-link latency: constant:D, uniform:MIN..MAX, exponential:MEAN.
    #[arg(long, default_value = SIM_LATENCY)]
    pub latency: Latency,
    /// Background message loss probability.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Background message duplication probability.
    #[arg(long, default_value_t = 0.0)]
    pub duplicate: f64,
    /// Probability a message is delayed extra (reordering).
    #[arg(long, default_value_t = 0.0)]
    pub reorder: f64,
    /// Loss probability while the `loss` nemesis is active.
    #[arg(long, default_value_t = 0.3)]
    pub nemesis_loss: f64,
    /// Duplication probability while the `dup` nemesis is active.
    #[arg(long, default_value_t = 0.3)]
    pub nemesis_dup: f64,
}

/// `--partition-shapes` default of simulated runs.
pub const SIM_SHAPES: &str = "one,halves,majorities-ring,bridge,ring-cut,hub,one-way";
/// `--latency` default of simulated runs.
pub const SIM_LATENCY: &str = "uniform:1ms..10ms";

impl NetFlags {
    /// The network's background behaviour (the nemesis adds the rest).
    pub fn config(&self) -> NetConfig {
        NetConfig {
            latency: self.latency,
            loss: self.loss,
            duplicate: self.duplicate,
            reorder: self.reorder,
            partition_mode: self.partition_mode,
        }
    }

    /// Every flag with its value, in declaration order (for reproduce commands).
    pub fn flags(&self) -> Vec<(&'static str, String)> {
        let mode = match self.partition_mode {
            PartitionMode::Drop => "drop",
            PartitionMode::Hold => "hold",
        };
        vec![
            ("--partition-mode", mode.to_string()),
            ("--partition-shapes", self.partition_shapes.to_string()),
            ("--latency", self.latency.to_string()),
            ("--loss", self.loss.to_string()),
            ("--duplicate", self.duplicate.to_string()),
            ("--reorder", self.reorder.to_string()),
            ("--nemesis-loss", self.nemesis_loss.to_string()),
            ("--nemesis-dup", self.nemesis_dup.to_string()),
        ]
    }

    /// Validates values clap cannot, naming the flag.
    pub fn validate(&self, nodes: usize) -> Result<(), String> {
        let prob = |name: &str, p: f64| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(format!(
                    "--{name} {p}: must be a probability between 0 and 1"
                ))
            }
        };
        prob("loss", self.loss)?;
        prob("duplicate", self.duplicate)?;
        prob("reorder", self.reorder)?;
        prob("nemesis-loss", self.nemesis_loss)?;
        prob("nemesis-dup", self.nemesis_dup)?;
        for s in &self.partition_shapes.0 {
            if let Shape::Groups(gs) = s {
                if let Some(bad) = gs.iter().flatten().find(|&&x| x >= nodes) {
                    return Err(format!(
                        "--partition-shapes {s}: node index {bad} out of range for --nodes {nodes}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Every option of `ladon run` (and the run flags of `ladon explore`).
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct RunOptions {
    /// System under test (see `ladon adapters`).
    #[arg(long, default_value = "reference")]
    pub adapter: String,
    /// register, list-append, set or counter.
    #[arg(long, default_value = "list-append")]
    pub workload: WorkloadKind,
    /// Number of nodes (leaders).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Fault packages: partition,clock,crash,pause,loss,dup,clog or none.
    #[arg(long, default_value = "partition,clock")]
    pub nemesis: FaultList,
    /// Mean time between nemesis steps (staggered: each 0.5x to 1.5x).
    #[arg(long, default_value = "5s")]
    pub nemesis_interval: Dur,
    /// Length of the faulty phase, in virtual time.
    #[arg(long, default_value = "30s")]
    pub time_limit: Dur,
    /// Client operations per virtual second, over all clients.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Number of logical clients.
    #[arg(long, default_value_t = 6)]
    pub concurrency: usize,
    /// sticky (each client bound to one node) or roaming.
    #[arg(long, value_enum, default_value_t = ClientMode::Sticky)]
    pub clients: ClientMode,
    /// Seed of every random choice (drawn at random and printed if absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where run directories go.
    #[arg(long, default_value = "results")]
    pub store: PathBuf,
    /// Guarantees to check (default: what the adapter declares).
    #[arg(long)]
    pub guarantees: Option<String>,
    /// Draw the fault mix and its parameters from the seed.
    #[arg(long)]
    pub swarm: bool,
    /// The network's flags (shared with the live `process` adapter).
    #[command(flatten)]
    #[serde(flatten)]
    pub net: NetFlags,
    /// Bound of clock offsets the clock nemesis sets.
    #[arg(long, default_value = "5s")]
    pub clock_skew: Dur,
    /// Bound of each node's clock drift, parts per million.
    #[arg(long, default_value_t = 0)]
    pub clock_drift_ppm: i64,
    /// Up to this many micro-operations per transaction.
    #[arg(long, default_value_t = 2)]
    pub txn_size: usize,
    /// Keys rotate after this many writes.
    #[arg(long, default_value_t = 32)]
    pub max_writes_per_key: u32,
    /// Keys in use at once.
    #[arg(long, default_value_t = 4)]
    pub keys: usize,
    /// A client operation without a reply after this long is `info`.
    #[arg(long, default_value = "1s")]
    pub op_timeout: Dur,
    /// Final reads stop when nodes agree or this long after the heal.
    #[arg(long, default_value = "10s")]
    pub converge_timeout: Dur,
    /// Pause between final read rounds.
    #[arg(long, default_value = "250ms")]
    pub final_interval: Dur,
    /// Stop invoking client operations after this many (the faulty phase
    /// still lasts --time-limit). `ladon shrink` sets it.
    #[arg(long, value_name = "N")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ops: Option<u64>,
    /// Apply exactly this fault schedule (a JSON file, as `ladon shrink`
    /// writes it) instead of drawing one from the seed; --nemesis and
    /// --nemesis-interval are then ignored. run.json holds the steps.
    #[arg(long, value_name = "FILE", value_parser = crate::schedule::NemesisSchedule::parse_arg)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nemesis_schedule: Option<crate::schedule::NemesisSchedule>,
    /// Test name (results/<test>/...); default `<adapter>-<workload>`.
    #[arg(long)]
    pub test: Option<String>,
    #[command(flatten)]
    #[serde(flatten)]
    pub adapter_options: AdapterOptions,
}

impl Default for RunOptions {
    fn default() -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            o: RunOptions,
        }
        P::parse_from(["ladon"]).o
    }
}

// The simulator reads the network flags as `o.latency`, `o.loss`, ...
impl RunOptions {
    pub fn test_name(&self) -> String {
        self.test
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.adapter, self.workload))
    }

    /// Validates values clap cannot, naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 {
            return Err("--nodes 0: a cluster needs at least one node".into());
        }
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            return Err(format!(
                "--rate {}: must be a positive number of operations per second",
                self.rate
            ));
        }
        if self.concurrency == 0 {
            return Err("--concurrency 0: at least one client is needed".into());
        }
        if self.txn_size == 0 {
            return Err("--txn-size 0: a transaction has at least one micro-operation".into());
        }
        if self.nemesis_interval.0 == 0 {
            return Err("--nemesis-interval 0: must be positive".into());
        }
        if self.op_timeout.0 == 0 {
            return Err("--op-timeout 0: must be positive".into());
        }
        if let Some(s) = &self.nemesis_schedule {
            s.validate(self.nodes)?;
        }
        self.net.validate(self.nodes)
    }

    /// Swarm testing: redraws the fault mix and its parameters from the
    /// seed. Idempotent (depends only on the seed), so a stored run's
    /// options replay to the same draw.
    pub fn apply_swarm(&mut self, seed: u64) {
        let mut rng = crate::sim::rng_stream(seed, u64::MAX);
        let mut kinds: Vec<FaultKind> = FaultKind::ALL
            .into_iter()
            .filter(|_| rng.random_bool(0.5))
            .collect();
        if kinds.is_empty() {
            kinds.push(*FaultKind::ALL.choose(&mut rng).expect("non-empty"));
        }
        self.nemesis = FaultList(kinds);
        self.nemesis_interval = Dur(rng.random_range(500_000_000..=8_000_000_000));
        self.net.partition_mode = if rng.random_bool(0.5) {
            PartitionMode::Drop
        } else {
            PartitionMode::Hold
        };
        let mut shapes: Vec<Shape> = Shape::NAMED
            .iter()
            .map(|s| s.parse().expect("named shape"))
            .collect();
        shapes.shuffle(&mut rng);
        shapes.truncate(rng.random_range(1..=shapes.len()));
        self.net.partition_shapes = ShapeList(shapes);
        let mean = rng.random_range(100_000..=20_000_000);
        self.net.latency = match rng.random_range(0..3) {
            0 => Latency::Constant(mean),
            1 => Latency::Uniform {
                min: mean / 2,
                max: mean * 3 / 2,
            },
            _ => Latency::Exponential { mean },
        };
        self.net.loss = if rng.random_bool(0.3) {
            rng.random_range(0.0..0.1)
        } else {
            0.0
        };
        self.net.duplicate = if rng.random_bool(0.3) {
            rng.random_range(0.0..0.1)
        } else {
            0.0
        };
        self.net.reorder = if rng.random_bool(0.3) {
            rng.random_range(0.0..0.3)
        } else {
            0.0
        };
        self.clock_skew = Dur(rng.random_range(1_000_000..=10_000_000_000));
        self.clock_drift_ppm = if rng.random_bool(0.3) {
            rng.random_range(0..=500)
        } else {
            0
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_json() {
        let o = RunOptions::default();
        assert_eq!(o.adapter, "reference");
        assert_eq!(o.time_limit, Dur::secs(30));
        let j = serde_json::to_string(&o).unwrap();
        let back: RunOptions = serde_json::from_str(&j).unwrap();
        assert_eq!(back, o);
    }

    #[test]
    fn swarm_is_idempotent_and_seed_dependent() {
        let mut a = RunOptions::default();
        a.apply_swarm(5);
        let mut b = a.clone();
        b.apply_swarm(5);
        assert_eq!(a, b);
        let mut c = RunOptions::default();
        c.apply_swarm(6);
        assert_ne!(a, c);
    }

    #[test]
    fn durations_and_shape_lists_parse() {
        assert_eq!("30".parse::<Dur>().unwrap(), Dur::secs(30));
        assert_eq!("250ms".parse::<Dur>().unwrap(), Dur(250_000_000));
        let l: ShapeList = "one,groups:0,1/2,hub".parse().unwrap();
        assert_eq!(l.0.len(), 3);
        assert_eq!(l.to_string(), "one,groups:0,1/2,hub");
    }
}
