//! The adapter registry: adapter name → how to run a test against it.
//!
//! To add an in-process (simulated) adapter: write a [`Cluster`] in
//! `ladon-adapters`, add its options to [`AdapterOptions`] (they become
//! `ladon run` flags and are stored in `run.json`), a variant to
//! [`AdapterKind`], and an [`AdapterEntry`] to [`registry`] whose `run` is
//! `|ctx| crate::runner::simulate(build_your_cluster(ctx.options)?, ctx)`.
//! A live adapter (e.g. `process`) supplies its own `run` function and
//! reuses the nemesis, network, clients and store modules.

use ladon_adapters::node::Cluster;
use ladon_adapters::reference::{Bug, ReadFrom, Strategy, Topology};
use ladon_adapters::toy::{ToyBug, ToyCluster};
use ladon_checker::report::Guarantee;
use serde::{Deserialize, Serialize};

use crate::options::{heading, named, AdapterKind, RunOptions};
use crate::runner::{RunContext, RunOutcome};

/// Options only some adapters read. Flattened into [`RunOptions`]: every
/// field is a `ladon run` flag and a key of `run.json`'s `options`, typed
/// (`run.json` spells each value by its name). New adapters add their
/// fields here (with `#[serde(default)]`, so older `run.json` files still
/// load) under a help heading naming the adapters they apply to (see
/// [`crate::options::heading`]).
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct AdapterOptions {
    /// A planted bug variant of the adapter (`ladon adapters` says what each
    /// breaks); toy has no-anti-entropy and forget-on-crash only.
    #[arg(long, help_heading = heading::REFERENCE_TOY, value_parser = named::<Bug>(Bug::ALL.iter().map(|b| b.as_str())))]
    #[serde(default, with = "crate::options::by_name_opt")]
    pub bug: Option<Bug>,
    /// Followers per leader, replicating asynchronously from it.
    #[arg(long, default_value_t = 0, help_heading = heading::REFERENCE)]
    #[serde(default)]
    pub followers: usize,
    /// reference: how leaders pass writes on (mesh, ring, star); process:
    /// broadcast's neighbours (grid, line, total, tree2, tree3, tree4;
    /// default grid).
    #[arg(long, default_value = "mesh", help_heading = heading::REFERENCE_PROCESS,
          value_parser = named::<TopologyName>(TopologyName::names()))]
    #[serde(default = "default_topology", with = "crate::options::by_name")]
    pub topology: TopologyName,
    /// Conflict strategy.
    #[arg(long, default_value = "crdt", help_heading = heading::REFERENCE,
          value_parser = named::<Strategy>(Strategy::ALL.iter().map(|s| s.as_str())))]
    #[serde(default = "default_strategy", with = "crate::options::by_name")]
    pub strategy: Strategy,
    /// Where clients send read-only transactions.
    #[arg(long, default_value = "leader", help_heading = heading::REFERENCE,
          value_parser = named::<ReadFrom>(ReadFrom::ALL.iter().map(|r| r.as_str())))]
    #[serde(default = "default_read_from", with = "crate::options::by_name")]
    pub read_from: ReadFrom,
    /// Leaders in order of precedence for timestamp ties, e.g. n2,n1,n3
    /// (default n1 first).
    #[arg(long, help_heading = heading::REFERENCE)]
    #[serde(default)]
    pub priority: Option<String>,
    /// Apply a remote entry only after the entries it depends on
    /// (`--causal-delivery` or `--causal-delivery false`; default: on for
    /// crdt and version-vector, off otherwise).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", help_heading = heading::REFERENCE)]
    #[serde(default)]
    pub causal_delivery: Option<bool>,
    /// Resolution of lww wall-clock timestamps (default 1ms; 1s is MySQL's
    /// TIMESTAMP, where equal timestamps are common).
    #[arg(long, help_heading = heading::REFERENCE)]
    #[serde(default)]
    pub lww_resolution: Option<crate::options::Dur>,
}

impl Default for AdapterOptions {
    fn default() -> Self {
        AdapterOptions {
            bug: None,
            followers: 0,
            topology: default_topology(),
            strategy: default_strategy(),
            read_from: default_read_from(),
            priority: None,
            causal_delivery: None,
            lww_resolution: None,
        }
    }
}

/// `--topology`: the reference store's leader topology, or broadcast's
/// neighbours for `--adapter process` (the two sets of names are disjoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopologyName {
    Leaders(Topology),
    Broadcast(crate::live::topology::Topology),
}

impl TopologyName {
    const BROADCAST: [&'static str; 6] = ["grid", "line", "total", "tree2", "tree3", "tree4"];

    /// Every name `--topology` accepts.
    pub fn names() -> Vec<&'static str> {
        let leaders = Topology::ALL.iter().map(|t| t.as_str());
        leaders.chain(Self::BROADCAST).collect()
    }

    /// The reference store's topology, or an error naming the flag.
    pub fn leaders(self) -> anyhow::Result<Topology> {
        match self {
            TopologyName::Leaders(t) => Ok(t),
            TopologyName::Broadcast(t) => anyhow::bail!(
                "--topology {}: a broadcast topology (--adapter process); the reference store's are {}",
                t.as_str(),
                Topology::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// Broadcast's topology, or an error naming the flag.
    pub fn broadcast(self) -> anyhow::Result<crate::live::topology::Topology> {
        match self {
            TopologyName::Broadcast(t) => Ok(t),
            TopologyName::Leaders(t) => anyhow::bail!(
                "--topology {t}: a reference-store topology; --adapter process takes {}",
                Self::BROADCAST.join(", ")
            ),
        }
    }
}

impl std::str::FromStr for TopologyName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(t) = s.parse::<Topology>() {
            return Ok(TopologyName::Leaders(t));
        }
        s.parse().map(TopologyName::Broadcast).map_err(|_| {
            format!(
                "unknown --topology {s:?}: expected one of {}",
                Self::names().join(", ")
            )
        })
    }
}

impl std::fmt::Display for TopologyName {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            TopologyName::Leaders(t) => f.write_str(t.as_str()),
            TopologyName::Broadcast(t) => f.write_str(&t.as_str()),
        }
    }
}

fn default_topology() -> TopologyName {
    TopologyName::Leaders(Topology::Mesh)
}
fn default_strategy() -> Strategy {
    Strategy::Crdt
}
fn default_read_from() -> ReadFrom {
    ReadFrom::Leader
}

/// The reference store's configuration from `ladon run` options.
pub fn reference_config(o: &RunOptions) -> anyhow::Result<ladon_adapters::reference::Config> {
    use ladon_adapters::reference::Config;
    let a = &o.adapter_options;
    let strategy = a.strategy;
    let cfg = Config {
        leaders: o.nodes,
        followers: a.followers,
        topology: a.topology.leaders()?,
        strategy,
        bug: a.bug,
        read_from: a.read_from,
        priority: a
            .priority
            .iter()
            .flat_map(|p| p.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        causal_delivery: a
            .causal_delivery
            .unwrap_or(matches!(strategy, Strategy::Crdt | Strategy::VersionVector)),
        lww_resolution_ns: a
            .lww_resolution
            .map_or(Config::default().lww_resolution_ns, |d| d.ns().max(1)),
        ..Config::default()
    };
    cfg.validate()?;
    Ok(cfg)
}

fn reference_cluster(
    o: &RunOptions,
) -> anyhow::Result<ladon_adapters::reference::ReferenceCluster> {
    Ok(ladon_adapters::reference::ReferenceCluster::new(
        reference_config(o)?,
    )?)
}

/// Simulated in process, or live against real processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Simulation,
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Simulation => "simulation",
            Mode::Live => "live",
        }
    }
}

/// One registered adapter.
pub struct AdapterEntry {
    pub kind: AdapterKind,
    pub name: &'static str,
    pub about: &'static str,
    pub mode: Mode,
    /// The guarantees this configuration declares (names from anomalies.md).
    pub guarantees: fn(&RunOptions) -> anyhow::Result<Vec<Guarantee>>,
    /// Runs one test; the context carries options, store and listeners.
    pub run: fn(&mut RunContext) -> anyhow::Result<RunOutcome>,
}

fn toy_cluster(o: &RunOptions) -> anyhow::Result<ToyCluster> {
    let bug = match o.adapter_options.bug {
        None => None,
        Some(Bug::NoAntiEntropy) => Some(ToyBug::NoAntiEntropy),
        Some(Bug::ForgetOnCrash) => Some(ToyBug::ForgetOnCrash),
        Some(b) => anyhow::bail!(
            "--bug {b}: not a bug of --adapter toy (toy's: {})",
            ToyBug::NAMES.join(", ")
        ),
    };
    Ok(ToyCluster::new(o.nodes, bug))
}

/// Why the simulator's callers (explore, suite, replay) refuse `process`.
pub const LIVE_ONLY: &str = "--adapter process runs real processes live, not in the simulator: \
     use `ladon run --adapter process --bin PATH --workload NAME` \
     (explore, suite and replay take simulated adapters only)";

/// Every adapter `ladon run --adapter NAME` knows. Register new ones here.
pub fn registry() -> Vec<AdapterEntry> {
    vec![
        AdapterEntry {
            kind: AdapterKind::Reference,
            name: "reference",
            about: "the reference multi-leader store: followers, topologies, every conflict strategy, known bugs (see `ladon adapters`)",
            mode: Mode::Simulation,
            guarantees: |o| Ok(reference_cluster(o)?.guarantees()),
            run: |ctx| {
                let cluster = reference_cluster(&ctx.options)?;
                crate::runner::simulate(cluster, ctx)
            },
        },
        AdapterEntry {
            kind: AdapterKind::Toy,
            name: "toy",
            about: "small op-based multi-leader store with anti-entropy (the harness's own test system)",
            mode: Mode::Simulation,
            guarantees: |o| Ok(toy_cluster(o)?.guarantees()),
            run: |ctx| {
                let cluster = toy_cluster(&ctx.options)?;
                crate::runner::simulate(cluster, ctx)
            },
        },
        AdapterEntry {
            kind: AdapterKind::Process,
            name: "process",
            about: "any program speaking Maelstrom's protocol, run live: --bin PATH --workload NAME (see below)",
            mode: Mode::Live,
            guarantees: |o| Ok(o.workload.maelstrom().map_or_else(|_| Guarantee::default_for_check(), |w| w.guarantees())),
            // `ladon run --adapter process` has its own flags and runner
            // (`live::process_run`); the simulator's callers cannot run it.
            run: |_| anyhow::bail!("{LIVE_ONLY}"),
        },
    ]
}

/// The registry entry of `kind`.
pub fn find(kind: AdapterKind) -> AdapterEntry {
    registry()
        .into_iter()
        .find(|a| a.kind == kind)
        .expect("every adapter kind is registered")
}
