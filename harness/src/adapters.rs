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
use ladon_adapters::reference::{Bug, Strategy};
use ladon_adapters::toy::{ToyBug, ToyCluster};
use ladon_checker::report::Guarantee;
use serde::{Deserialize, Serialize};

use crate::options::{AdapterKind, RunOptions};
pub use crate::options::{AdapterOptions, TopologyName};
use crate::runner::{RunContext, RunOutcome};

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
pub const LIVE_ONLY: &str = "--adapter process, postgres-pglogical, mariadb and couchdb run real \
     processes live, not in the simulator: use `ladon run --adapter process --bin PATH --workload NAME` or \
     `ladon run --adapter postgres-pglogical|mariadb|couchdb --workload NAME` \
     (explore, shrink and replay take simulated adapters only)";

/// A cluster of one CRDT library's documents (`--adapter automerge|yrs|loro`).
#[cfg(feature = "crdt-libs")]
pub fn crdt_lib_cluster<R: ladon_adapters::crdt_libs::Replica>(
    o: &RunOptions,
) -> anyhow::Result<ladon_adapters::crdt_libs::LibCluster<R>> {
    use crate::options::PersistMode;
    use ladon_adapters::crdt_libs::{LibCluster, Persist};
    let a = &o.adapter_options;
    if let Some(b) = &a.bug {
        anyhow::bail!("--bug {b:?}: --adapter {} has no planted bugs", R::NAME);
    }
    let persist = match a.persist {
        None => Persist::default(),
        Some(PersistMode::EveryOp) => Persist::EveryOp,
        Some(PersistMode::EverySync) => Persist::EverySync,
        Some(PersistMode::Never) => Persist::Never,
    };
    let workload = o.workload.sim().map_err(anyhow::Error::msg)?;
    Ok(LibCluster::new(o.nodes, workload, persist))
}

/// Why `--adapter automerge|yrs|loro` cannot run in a build without the
/// libraries.
#[cfg(not(feature = "crdt-libs"))]
pub const NEEDS_CRDT_LIBS: &str = "this ladon was built without the CRDT libraries: \
     build it with `cargo build --release --features crdt-libs` (see docs/crdt-libraries.md)";

/// The automerge, yrs and loro adapters in a build without the cargo
/// feature `crdt-libs`: listed, and refused with the command that builds them.
#[cfg(not(feature = "crdt-libs"))]
fn crdt_lib_entries() -> Vec<AdapterEntry> {
    [
        (AdapterKind::Automerge, "automerge"),
        (AdapterKind::Yrs, "yrs"),
        (AdapterKind::Loro, "loro"),
    ]
    .into_iter()
    .map(|(kind, name)| AdapterEntry {
        kind,
        name,
        about: "a CRDT library's documents (needs a build with --features crdt-libs)",
        mode: Mode::Simulation,
        guarantees: |o| anyhow::bail!("--adapter {}: {NEEDS_CRDT_LIBS}", o.adapter),
        run: |ctx| anyhow::bail!("--adapter {}: {NEEDS_CRDT_LIBS}", ctx.options.adapter),
    })
    .collect()
}

/// The automerge, yrs and loro adapters (cargo feature `crdt-libs`).
#[cfg(feature = "crdt-libs")]
fn crdt_lib_entries() -> Vec<AdapterEntry> {
    use ladon_adapters::crdt_libs::{AutomergeDoc, LoroDoc, YrsDoc};
    vec![
        AdapterEntry {
            kind: AdapterKind::Automerge,
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
            kind: AdapterKind::Yrs,
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
            kind: AdapterKind::Loro,
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

/// A simulated adapter supplied at run time by a program that uses Ladon
/// as a library (its own cluster, under its own name), without an entry in
/// [`registry`]'s list: see [`register`] and docs/write-a-rust-adapter.md.
/// The registry's own entries are one too, so every simulated run, of a
/// built-in adapter or of one a program holds, goes through the same
/// functions (`cli::run::resolve_with`, `store::execute_with`,
/// `store::execute_in_memory_with`).
pub trait DynAdapter: Send + Sync {
    /// The guarantees this configuration declares (`--guarantees` absent).
    fn guarantees(&self, options: &RunOptions) -> anyhow::Result<Vec<Guarantee>>;
    /// Runs one simulated test, as an [`AdapterEntry`]'s `run` does: the
    /// context carries the resolved options and the run's listeners.
    fn run(&self, ctx: &mut RunContext<'_>) -> anyhow::Result<RunOutcome>;
    /// Simulated (the default) or live.
    fn mode(&self) -> Mode {
        Mode::Simulation
    }
}

impl DynAdapter for AdapterEntry {
    fn guarantees(&self, options: &RunOptions) -> anyhow::Result<Vec<Guarantee>> {
        (self.guarantees)(options)
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> anyhow::Result<RunOutcome> {
        (self.run)(ctx)
    }

    fn mode(&self) -> Mode {
        self.mode
    }
}

/// The adapter `--adapter` names, as a [`DynAdapter`] (the registry's
/// entry; for a name registered at run time, one that looks it up).
pub fn named(kind: AdapterKind) -> std::sync::Arc<dyn DynAdapter> {
    std::sync::Arc::new(find(kind))
}

/// A [`DynAdapter`] of any [`Cluster`]: `build` makes the cluster of a run
/// from its options (e.g. `|o| Ok(MyCluster::new(o.nodes))`).
pub struct ClusterAdapter<F>(pub F);

impl<F, C> DynAdapter for ClusterAdapter<F>
where
    F: Fn(&RunOptions) -> anyhow::Result<C> + Send + Sync,
    C: Cluster,
    C::Node: 'static,
{
    fn guarantees(&self, options: &RunOptions) -> anyhow::Result<Vec<Guarantee>> {
        Ok((self.0)(options)?.guarantees())
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> anyhow::Result<RunOutcome> {
        let cluster = (self.0)(&ctx.options)?;
        crate::runner::simulate(cluster, ctx)
    }
}

/// One adapter registered at run time.
#[derive(Clone)]
struct Registered {
    about: &'static str,
    adapter: std::sync::Arc<dyn DynAdapter>,
}

/// The adapters registered at run time, by name.
static REGISTERED: std::sync::RwLock<std::collections::BTreeMap<&'static str, Registered>> =
    std::sync::RwLock::new(std::collections::BTreeMap::new());

/// Registers `adapter` under `name` for this process: `--adapter NAME`,
/// `run.json`, `ladon adapters`, `run`, `explore`, `replay`, `suite` and
/// `shrink` then know it as a simulated adapter. Registering a name again
/// replaces its adapter. Refuses Ladon's own names and names `--adapter`
/// cannot spell.
pub fn register(
    name: &str,
    about: &str,
    adapter: std::sync::Arc<dyn DynAdapter>,
) -> anyhow::Result<AdapterKind> {
    let kind = AdapterKind::custom(name).map_err(anyhow::Error::msg)?;
    let about: &'static str = Box::leak(about.to_string().into_boxed_str());
    REGISTERED
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(kind.as_str(), Registered { about, adapter });
    Ok(kind)
}

/// The adapter registered under `kind`'s name, or an error saying it is not.
pub fn registered(kind: AdapterKind) -> anyhow::Result<std::sync::Arc<dyn DynAdapter>> {
    REGISTERED
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(kind.as_str())
        .map(|r| r.adapter.clone())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--adapter {kind}: not registered in this program (see docs/write-a-rust-adapter.md)"
            )
        })
}

/// The entry of an adapter registered at run time: its `run` and
/// `guarantees` look the adapter up by the options' `--adapter`.
fn custom_entry(kind: AdapterKind) -> AdapterEntry {
    let about = REGISTERED
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(kind.as_str())
        .map_or("not registered in this program", |r| r.about);
    AdapterEntry {
        kind,
        name: kind.as_str(),
        about,
        mode: Mode::Simulation,
        guarantees: |o| registered(o.adapter)?.guarantees(o),
        run: |ctx| registered(ctx.options.adapter)?.run(ctx),
    }
}

/// Every adapter `ladon run --adapter NAME` knows: Ladon's own (register
/// new ones here), then those registered at run time ([`register`]).
pub fn registry() -> Vec<AdapterEntry> {
    #[allow(unused_mut)]
    let mut all = vec![
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
    ];
    all.extend([
        database_entry(
            AdapterKind::PostgresPglogical,
            cfg!(feature = "postgres"),
            "PostgreSQL servers replicating all-to-all with pglogical (last update wins), run live on loopback",
            "PostgreSQL servers replicating with pglogical, run live (needs a build with --features ladon-harness/postgres)",
        ),
        database_entry(
            AdapterKind::MariaDb,
            cfg!(feature = "mariadb"),
            "MariaDB servers in multi-source replication (no conflict resolution), run live on this machine",
            "MariaDB servers in multi-source replication, run live (needs a build with --features ladon-harness/mariadb)",
        ),
        database_entry(
            AdapterKind::CouchDb,
            cfg!(feature = "couchdb"),
            "pouchdb-server nodes (in memory) replicated over the CouchDB protocol by the harness, run live",
            "pouchdb-server nodes replicated over the CouchDB protocol, run live (needs a build with --features ladon-harness/couchdb)",
        ),
    ]);
    all.extend(crdt_lib_entries());
    let registered: Vec<&'static str> = REGISTERED
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .copied()
        .collect();
    all.extend(
        AdapterKind::customs()
            .into_iter()
            .filter(|k| registered.contains(&k.as_str()))
            .map(custom_entry),
    );
    all
}

/// The registry entry of `kind` (for a name registered at run time, an
/// entry that says so when used if the adapter is not registered).
pub fn find(kind: AdapterKind) -> AdapterEntry {
    if kind.is_custom() {
        return custom_entry(kind);
    }
    registry()
        .into_iter()
        .find(|a| a.kind == kind)
        .expect("every adapter kind is registered")
}

/// The entry of a real database: `about` when built with its feature,
/// `about_without` otherwise. `ladon run --adapter NAME` runs it in
/// `db_run`, its own execution; the simulator's callers cannot run it.
fn database_entry(
    kind: AdapterKind,
    built: bool,
    about: &'static str,
    about_without: &'static str,
) -> AdapterEntry {
    AdapterEntry {
        kind,
        name: kind.as_str(),
        about: if built { about } else { about_without },
        mode: Mode::Live,
        guarantees: |_| Ok(database_default_guarantees()),
        run: |_| anyhow::bail!("{LIVE_ONLY}"),
    }
}

/// What a database adapter declares by default: pglogical's last update
/// wins promises that nodes agree, nothing about which write survives.
pub fn database_default_guarantees() -> Vec<Guarantee> {
    vec![Guarantee::Convergence]
}
