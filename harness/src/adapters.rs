//! The adapter registry: adapter name → how to run a test against it.
//!
//! To add an in-process (simulated) adapter: write a [`Cluster`] in
//! `ladon-adapters`, add its options to [`AdapterOptions`] (they become
//! `ladon run` flags and are stored in `run.json`), and add an
//! [`AdapterEntry`] to [`registry`] whose `run` is
//! `|ctx| crate::runner::simulate(build_your_cluster(ctx.options)?, ctx)`.
//! A live adapter (e.g. `process`) supplies its own `run` function and
//! reuses the nemesis, network, clients and store modules.

use ladon_adapters::node::Cluster;
use ladon_adapters::toy::{ToyBug, ToyCluster};
use serde::{Deserialize, Serialize};

use crate::options::RunOptions;
use crate::runner::{RunContext, RunOutcome};

/// Options only some adapters read. Flattened into [`RunOptions`]: every
/// field is a `ladon run` flag and a key of `run.json`'s `options`.
/// New adapters add their fields here (with `#[serde(default)]`, so older
/// `run.json` files still load).
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct AdapterOptions {
    /// A planted bug variant of the adapter: the reference adapter's
    /// no-anti-entropy, forget-on-crash, tiebreak-self, no-loop-guard,
    /// no-causal-buffer, counter-reapply, follower-stale-forever; toy's
    /// no-anti-entropy, forget-on-crash (`ladon adapters` says what each breaks).
    #[arg(long)]
    #[serde(default)]
    pub bug: Option<String>,
    /// reference: followers per leader, replicating asynchronously from it.
    #[arg(long, default_value_t = 0)]
    #[serde(default)]
    pub followers: usize,
    /// reference: how leaders pass writes on (mesh, ring, star).
    #[arg(long, default_value = "mesh")]
    #[serde(default = "default_topology")]
    pub topology: String,
    /// reference: conflict strategy (lww, lww-hlc, version-vector, crdt,
    /// avoidance, quorum).
    #[arg(long, default_value = "crdt")]
    #[serde(default = "default_strategy")]
    pub strategy: String,
    /// reference: where clients send read-only transactions (leader,
    /// follower, any).
    #[arg(long, default_value = "leader")]
    #[serde(default = "default_read_from")]
    pub read_from: String,
    /// reference: leaders in order of precedence for timestamp ties, e.g.
    /// n2,n1,n3 (default n1 first).
    #[arg(long)]
    #[serde(default)]
    pub priority: Option<String>,
    /// reference: apply a remote entry only after the entries it depends on
    /// (`--causal-delivery` or `--causal-delivery false`; default: on for
    /// crdt and version-vector, off otherwise).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    #[serde(default)]
    pub causal_delivery: Option<bool>,
    /// reference: resolution of lww wall-clock timestamps (default 1ms; 1s
    /// is MySQL's TIMESTAMP, where equal timestamps are common).
    #[arg(long)]
    #[serde(default)]
    pub lww_resolution: Option<crate::options::Dur>,
    /// automerge, yrs, loro: when a node saves its document (every-op,
    /// every-sync, never; default every-op). Lazy saving loses acknowledged
    /// writes on a crash (see docs/crdt-libraries.md).
    #[arg(long)]
    #[serde(default)]
    pub persist: Option<String>,
}

fn default_topology() -> String {
    "mesh".into()
}
fn default_strategy() -> String {
    "crdt".into()
}
fn default_read_from() -> String {
    "leader".into()
}

/// The reference store's configuration from `ladon run` options.
pub fn reference_config(o: &RunOptions) -> anyhow::Result<ladon_adapters::reference::Config> {
    use ladon_adapters::reference::{Config, Strategy};
    let a = &o.adapter_options;
    let strategy: Strategy = a.strategy.parse()?;
    let cfg = Config {
        leaders: o.nodes,
        followers: a.followers,
        topology: a.topology.parse()?,
        strategy,
        bug: a.bug.as_deref().map(str::parse).transpose()?,
        read_from: a.read_from.parse()?,
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
    pub name: &'static str,
    pub about: &'static str,
    pub mode: Mode,
    /// The guarantees this configuration declares (names from anomalies.md).
    pub guarantees: fn(&RunOptions) -> anyhow::Result<Vec<String>>,
    /// Runs one test; the context carries options, store and listeners.
    pub run: fn(&mut RunContext) -> anyhow::Result<RunOutcome>,
}

fn toy_cluster(o: &RunOptions) -> anyhow::Result<ToyCluster> {
    let bug = match &o.adapter_options.bug {
        None => None,
        Some(b) => Some(ToyBug::parse(b).map_err(|e| anyhow::anyhow!("--bug: {e}"))?),
    };
    Ok(ToyCluster::new(o.nodes, bug))
}

/// Why the simulator's callers (explore, suite, replay) refuse `process`.
pub const LIVE_ONLY: &str = "--adapter process runs real processes live, not in the simulator: \
     use `ladon run --adapter process --bin PATH --workload NAME` \
     (explore, suite and replay take simulated adapters only)";

/// A cluster of one CRDT library's documents (`--adapter automerge|yrs|loro`).
#[cfg(feature = "crdt-libs")]
pub fn crdt_lib_cluster<R: ladon_adapters::crdt_libs::Replica>(
    o: &RunOptions,
) -> anyhow::Result<ladon_adapters::crdt_libs::LibCluster<R>> {
    use ladon_adapters::crdt_libs::{LibCluster, Persist};
    let a = &o.adapter_options;
    if let Some(b) = &a.bug {
        anyhow::bail!("--bug {b:?}: --adapter {} has no planted bugs", R::NAME);
    }
    let persist: Persist = match &a.persist {
        None => Persist::default(),
        Some(p) => p.parse().map_err(|e: String| anyhow::anyhow!(e))?,
    };
    Ok(LibCluster::new(o.nodes, o.workload, persist))
}

/// The automerge, yrs and loro adapters (cargo feature `crdt-libs`).
#[cfg(feature = "crdt-libs")]
fn crdt_lib_entries() -> Vec<AdapterEntry> {
    use ladon_adapters::crdt_libs::{AutomergeDoc, LoroDoc, YrsDoc};
    vec![
        AdapterEntry {
            name: "automerge",
            about: "automerge documents synced with automerge's sync protocol; --persist every-op|every-sync|never",
            mode: Mode::Simulation,
            guarantees: |o| Ok(crdt_lib_cluster::<AutomergeDoc>(o)?.guarantees()),
            run: |ctx| {
                let cluster = crdt_lib_cluster::<AutomergeDoc>(&ctx.options)?;
                crate::runner::simulate(cluster, ctx)
            },
        },
        AdapterEntry {
            name: "yrs",
            about: "yrs (Yjs) documents synced by state vectors and diffs; --persist every-op|every-sync|never",
            mode: Mode::Simulation,
            guarantees: |o| Ok(crdt_lib_cluster::<YrsDoc>(o)?.guarantees()),
            run: |ctx| {
                let cluster = crdt_lib_cluster::<YrsDoc>(&ctx.options)?;
                crate::runner::simulate(cluster, ctx)
            },
        },
        AdapterEntry {
            name: "loro",
            about: "loro documents synced by version vectors and exports; --persist every-op|every-sync|never",
            mode: Mode::Simulation,
            guarantees: |o| Ok(crdt_lib_cluster::<LoroDoc>(o)?.guarantees()),
            run: |ctx| {
                let cluster = crdt_lib_cluster::<LoroDoc>(&ctx.options)?;
                crate::runner::simulate(cluster, ctx)
            },
        },
    ]
}

/// Every adapter `ladon run --adapter NAME` knows. Register new ones here.
pub fn registry() -> Vec<AdapterEntry> {
    #[allow(unused_mut)]
    let mut all = vec![
        AdapterEntry {
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
            name: "process",
            about: "any program speaking Maelstrom's protocol, run live: --bin PATH --workload NAME (see below)",
            mode: Mode::Live,
            guarantees: |_| {
                Ok(ladon_checker::report::Guarantee::default_for_check()
                    .iter()
                    .map(|g| g.to_string())
                    .collect())
            },
            // `ladon run --adapter process` has its own flags and runner
            // (`cli::run_process`); the simulator's callers cannot run it.
            run: |_| anyhow::bail!("{LIVE_ONLY}"),
        },
    ];
    #[cfg(feature = "crdt-libs")]
    all.extend(crdt_lib_entries());
    all
}

/// Looks an adapter up by name, with an error listing the known ones.
pub fn find(name: &str) -> anyhow::Result<AdapterEntry> {
    let all = registry();
    let names: Vec<&str> = all.iter().map(|a| a.name).collect();
    let joined = names.join(", ");
    all.into_iter().find(|a| a.name == name).ok_or_else(|| {
        let hint = if cfg!(feature = "crdt-libs") || !["automerge", "yrs", "loro"].contains(&name) {
            ""
        } else {
            " (automerge, yrs and loro need a build with `--features crdt-libs`)"
        };
        anyhow::anyhow!("--adapter {name:?}: unknown adapter; known: {joined}{hint}")
    })
}
