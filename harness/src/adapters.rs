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
    /// A planted bug variant of the adapter (e.g. toy: no-anti-entropy,
    /// forget-on-crash).
    #[arg(long)]
    #[serde(default)]
    pub bug: Option<String>,
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

/// Every adapter `ladon run --adapter NAME` knows. Register new ones here.
pub fn registry() -> Vec<AdapterEntry> {
    vec![
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
        // Register further adapters here (reference, process, ...).
    ]
}

/// Looks an adapter up by name, with an error listing the known ones.
pub fn find(name: &str) -> anyhow::Result<AdapterEntry> {
    let all = registry();
    let names: Vec<&str> = all.iter().map(|a| a.name).collect();
    let joined = names.join(", ");
    all.into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| anyhow::anyhow!("--adapter {name:?}: unknown adapter; known: {joined}"))
}
