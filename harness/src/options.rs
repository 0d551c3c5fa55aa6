//! Options of a test run: one serde struct, parsed from the command line
//! (clap) and written to `run.json` (serde), so a stored run can be re-run
//! exactly. Adapter-specific options live in the flattened
//! [`AdapterOptions`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use ladon_adapters::process::Workload;
use ladon_checker::report::Guarantee;
use ladon_workloads::WorkloadKind;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::nemesis::{FaultKind, FaultList};
use crate::net::{Latency, NetConfig, PartitionMode, Shape};
use ladon_adapters::reference::{Bug, ReadFrom, Strategy, Topology};

pub use crate::dur::Dur;

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

/// `--adapter`: the system under test (see `ladon adapters`): one of
/// Ladon's own adapters, or one a program registered under its own name
/// (`ladon::cli::main_with`, see docs/write-a-rust-adapter.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AdapterKind {
    /// The reference multi-leader store, simulated.
    #[default]
    Reference,
    /// The harness's small op-based store, simulated.
    Toy,
    /// Any program speaking Maelstrom's protocol, run live.
    Process,
    /// automerge documents, simulated (cargo feature `crdt-libs`).
    Automerge,
    /// yrs (Yjs) documents, simulated (cargo feature `crdt-libs`).
    Yrs,
    /// loro documents, simulated (cargo feature `crdt-libs`).
    Loro,
    /// PostgreSQL servers replicating with pglogical, run live (cargo
    /// feature `postgres`).
    PostgresPglogical,
    /// MariaDB servers in multi-source replication, run live (cargo
    /// feature `mariadb`).
    MariaDb,
    /// pouchdb-server nodes replicated over the CouchDB protocol, run live
    /// (cargo feature `couchdb`).
    CouchDb,
    /// A simulated adapter registered at run time under this name (see
    /// `adapters::register`); names are interned, so the kind stays `Copy`.
    Custom(&'static str),
}

/// The names of the adapters registered at run time, in registration
/// order. Kept here, below both the options and the adapter registry, so
/// that `--adapter NAME` and `run.json` can name them.
static CUSTOM_NAMES: std::sync::RwLock<Vec<&'static str>> = std::sync::RwLock::new(Vec::new());

impl AdapterKind {
    /// Ladon's own adapters.
    pub const ALL: [AdapterKind; 9] = [
        AdapterKind::Reference,
        AdapterKind::Toy,
        AdapterKind::Process,
        AdapterKind::Automerge,
        AdapterKind::Yrs,
        AdapterKind::Loro,
        AdapterKind::PostgresPglogical,
        AdapterKind::MariaDb,
        AdapterKind::CouchDb,
    ];

    /// The adapter's name, as `--adapter` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AdapterKind::Reference => "reference",
            AdapterKind::Toy => "toy",
            AdapterKind::Process => "process",
            AdapterKind::Automerge => "automerge",
            AdapterKind::Yrs => "yrs",
            AdapterKind::Loro => "loro",
            AdapterKind::PostgresPglogical => "postgres-pglogical",
            AdapterKind::MariaDb => "mariadb",
            AdapterKind::CouchDb => "couchdb",
            AdapterKind::Custom(name) => name,
        }
    }

    /// The kind naming `name` as an adapter registered at run time,
    /// interning the name (once per distinct name). Refuses Ladon's own
    /// names and names `--adapter` could not spell (lowercase letters,
    /// digits and `-`, starting with a letter).
    pub fn custom(name: &str) -> Result<AdapterKind, String> {
        if Self::ALL.iter().any(|k| k.as_str() == name) {
            return Err(format!(
                "adapter name {name:?} is one of Ladon's own adapters; pick another"
            ));
        }
        let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(format!(
                "adapter name {name:?}: use lowercase letters, digits and '-', starting with a letter"
            ));
        }
        let mut names = CUSTOM_NAMES.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&known) = names.iter().find(|&&n| n == name) {
            return Ok(AdapterKind::Custom(known));
        }
        let interned: &'static str = Box::leak(name.to_string().into_boxed_str());
        names.push(interned);
        Ok(AdapterKind::Custom(interned))
    }

    /// The adapters registered at run time (see [`AdapterKind::custom`]).
    pub fn customs() -> Vec<AdapterKind> {
        let names = CUSTOM_NAMES.read().unwrap_or_else(|e| e.into_inner());
        names.iter().map(|&n| AdapterKind::Custom(n)).collect()
    }

    /// Every adapter `--adapter` accepts: Ladon's own, then the registered ones.
    pub fn every() -> Vec<AdapterKind> {
        let mut all = Self::ALL.to_vec();
        all.extend(Self::customs());
        all
    }

    /// One line on the adapter for `--help`.
    pub fn about(self) -> &'static str {
        match self {
            AdapterKind::Reference => "The reference multi-leader store, simulated",
            AdapterKind::Toy => "The harness's small op-based store, simulated",
            AdapterKind::Process => "Any program speaking Maelstrom's protocol, run live",
            AdapterKind::Automerge => "automerge documents, simulated (cargo feature `crdt-libs`)",
            AdapterKind::Yrs => "yrs (Yjs) documents, simulated (cargo feature `crdt-libs`)",
            AdapterKind::Loro => "loro documents, simulated (cargo feature `crdt-libs`)",
            AdapterKind::PostgresPglogical => {
                "PostgreSQL servers replicating with pglogical, run live (cargo feature `postgres`)"
            }
            AdapterKind::MariaDb => {
                "MariaDB servers in multi-source replication, run live (cargo feature `mariadb`)"
            }
            AdapterKind::CouchDb => {
                "pouchdb-server nodes replicated over the CouchDB protocol, run live (cargo feature `couchdb`)"
            }
            AdapterKind::Custom(_) => "A simulated adapter of this program",
        }
    }

    /// Whether the adapter was registered at run time.
    pub fn is_custom(self) -> bool {
        matches!(self, AdapterKind::Custom(_))
    }

    /// `--adapter`'s parser: the names of [`AdapterKind::every`] at the
    /// time the command is built (so after a program registered its own),
    /// listed with a line each in `--help`.
    pub fn parser() -> impl clap::builder::TypedValueParser<Value = AdapterKind> {
        use clap::builder::{PossibleValue, TypedValueParser};
        let values = Self::every()
            .into_iter()
            .map(|k| PossibleValue::new(k.as_str()).help(k.about()));
        clap::builder::PossibleValuesParser::new(values)
            .map(|s: String| s.parse::<AdapterKind>().expect("every listed name parses"))
    }
}

impl FromStr for AdapterKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::every()
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::every().iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown adapter {s:?}: expected one of {} (an adapter of your own is \
                     known only to the program that registers it: see docs/write-a-rust-adapter.md)",
                    names.join(", ")
                )
            })
    }
}

impl Serialize for AdapterKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AdapterKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `--network`: how a real database's nodes are connected, and so how a
/// partition is made (docs/real-systems.md, "Partitions").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// netns when Ladon runs as root with `ip` and `nft` and no
    /// `--latency` or `--partition-mode hold` is asked for; proxy
    /// otherwise. The run prints which one it took, and `run.json` keeps it.
    #[default]
    Auto,
    /// Each node in its own network namespace on a bridge Ladon creates;
    /// cuts are nftables rules inside the namespaces (needs root).
    Netns,
    /// Every node on loopback, each replication link through a TCP proxy
    /// that drops, holds or delays (no root needed).
    Proxy,
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            NetworkMode::Auto => "auto",
            NetworkMode::Netns => "netns",
            NetworkMode::Proxy => "proxy",
        })
    }
}

/// `--persist`: when a CRDT library's node saves its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PersistMode {
    /// After every operation (the default): nothing acknowledged is lost.
    EveryOp,
    /// After each sync round: a crash loses what came since.
    EverySync,
    /// Never: a crash loses everything since the start.
    Never,
}

impl fmt::Display for AdapterKind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `--workload`: a simulated workload (reference, toy) or a Maelstrom one
/// (process). The two sets of names are disjoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadName {
    Sim(WorkloadKind),
    Maelstrom(Workload),
}

impl WorkloadName {
    /// Every name `--workload` accepts: the simulated ones, then Maelstrom's.
    pub fn names() -> Vec<&'static str> {
        let sim = WorkloadKind::ALL.iter().map(|w| w.as_str());
        sim.chain(Workload::ALL.iter().map(|w| w.as_str()))
            .collect()
    }

    /// The simulated workload, or an error naming the flag.
    pub fn sim(self) -> Result<WorkloadKind, String> {
        match self {
            WorkloadName::Sim(w) => Ok(w),
            WorkloadName::Maelstrom(w) => Err(format!(
                "--workload {w}: a Maelstrom workload runs only with --adapter process; \
                 simulated adapters run {}",
                WorkloadKind::ALL.map(|w| w.as_str()).join(", ")
            )),
        }
    }

    /// The Maelstrom workload, or an error naming the flag.
    pub fn maelstrom(self) -> Result<Workload, String> {
        match self {
            WorkloadName::Maelstrom(w) => Ok(w),
            WorkloadName::Sim(w) => Err(format!(
                "--workload {w}: --adapter process runs Maelstrom workloads: {}",
                Workload::ALL.map(|w| w.as_str()).join(", ")
            )),
        }
    }
}

impl From<WorkloadKind> for WorkloadName {
    fn from(w: WorkloadKind) -> Self {
        WorkloadName::Sim(w)
    }
}

impl FromStr for WorkloadName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(w) = s.parse::<WorkloadKind>() {
            return Ok(WorkloadName::Sim(w));
        }
        s.parse::<Workload>()
            .map(WorkloadName::Maelstrom)
            .map_err(|_| {
                format!(
                    "unknown workload {s:?}: expected one of {}",
                    Self::names().join(", ")
                )
            })
    }
}

impl fmt::Display for WorkloadName {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            WorkloadName::Sim(w) => f.write_str(w.as_str()),
            WorkloadName::Maelstrom(w) => f.write_str(w.as_str()),
        }
    }
}

/// A clap parser for a type with a fixed list of names (its `FromStr` and
/// `Display` spell them): `--help` lists the names, a wrong one is refused
/// with the list, and the value arrives typed.
pub fn named<T>(
    names: impl IntoIterator<Item = &'static str>,
) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: FromStr + Clone + Send + Sync + 'static,
    T::Err: fmt::Debug,
{
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(names)
        .map(|s: String| s.parse::<T>().expect("every listed name parses"))
}

/// serde as the value's name (`Display` / `FromStr`), as `run.json` keeps it.
pub mod by_name {
    use super::*;
    pub fn serialize<T: fmt::Display, S: serde::Serializer>(
        v: &T,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: fmt::Display,
        D: serde::Deserializer<'de>,
    {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// [`by_name`] for an optional value (`null` when absent).
pub mod by_name_opt {
    use super::*;
    pub fn serialize<T: fmt::Display, S: serde::Serializer>(
        v: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr,
        T::Err: fmt::Display,
        D: serde::Deserializer<'de>,
    {
        Option::<String>::deserialize(d)?
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A list of guarantees as `--guarantees` spells it (`a,b`, or `none`).
pub fn guarantee_list(gs: &[Guarantee]) -> String {
    if gs.is_empty() {
        "none".into()
    } else {
        gs.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(",")
    }
}

/// `--guarantees` in `run.json`: the flag's spelling, or `null`.
mod guarantees_opt {
    use super::*;
    pub fn serialize<S: serde::Serializer>(
        v: &Option<Vec<Guarantee>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(gs) => s.serialize_str(&guarantee_list(gs)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<Guarantee>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| Guarantee::parse_list(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Help headings of `ladon run`'s options that apply to some adapters only;
/// an option under one of them given with another adapter is refused.
pub mod heading {
    use super::AdapterKind;
    pub const SIMULATED: &str =
        "Simulated runs only (--adapter reference, toy, automerge, yrs, loro)";
    pub const REFERENCE: &str = "Options of --adapter reference";
    pub const REFERENCE_TOY: &str = "Options of --adapter reference and toy";
    pub const REFERENCE_PROCESS: &str =
        "Options of --adapter reference, process, postgres-pglogical, mariadb and couchdb";
    pub const PROCESS: &str = "Options of --adapter process";
    pub const PROCESS_DB: &str =
        "Options of --adapter process, postgres-pglogical, mariadb and couchdb";
    pub const DB: &str = "Options of --adapter postgres-pglogical, mariadb and couchdb";
    pub const MARIADB: &str = "Options of --adapter mariadb";
    pub const COUCHDB: &str = "Options of --adapter couchdb";
    pub const SIMULATED_DB: &str =
        "Simulated runs and --adapter postgres-pglogical, mariadb and couchdb";
    pub const CRDT_LIBS: &str = "Options of --adapter automerge, yrs and loro";

    /// The adapters an option under `heading` applies to (`None`: all).
    pub fn adapters(heading: Option<&str>) -> Option<&'static [AdapterKind]> {
        use AdapterKind::*;
        Some(match heading? {
            SIMULATED => &[Reference, Toy, Automerge, Yrs, Loro],
            REFERENCE_TOY => &[Reference, Toy],
            REFERENCE => &[Reference],
            REFERENCE_PROCESS => &[Reference, Process, PostgresPglogical, MariaDb, CouchDb],
            PROCESS => &[Process],
            PROCESS_DB => &[Process, PostgresPglogical, MariaDb, CouchDb],
            DB => &[PostgresPglogical, MariaDb, CouchDb],
            MARIADB => &[MariaDb],
            COUCHDB => &[CouchDb],
            SIMULATED_DB => &[
                Reference,
                Toy,
                Automerge,
                Yrs,
                Loro,
                PostgresPglogical,
                MariaDb,
                CouchDb,
            ],
            CRDT_LIBS => &[Automerge, Yrs, Loro],
            _ => return None,
        })
    }

    /// Whether an option under `heading` applies to `adapter`. An adapter
    /// registered at run time is simulated: it takes every option but those
    /// of one of Ladon's own adapters.
    pub fn applies(heading: Option<&str>, adapter: AdapterKind) -> bool {
        match adapters(heading) {
            None => true,
            Some(_) if adapter.is_custom() => {
                heading == Some(SIMULATED) || heading == Some(SIMULATED_DB)
            }
            Some(kinds) => kinds.contains(&adapter),
        }
    }
}

/// The network fault model's flags, the same for simulated runs and live
/// ones (`--adapter process` starts from `--latency constant:0ms`: see
/// [`ProcessFlags`]).
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct NetFlags {
    /// What partitions do to messages: drop or hold.
    #[arg(long, value_enum, default_value_t = PartitionMode::Drop)]
    pub partition_mode: PartitionMode,
    /// Partition shapes the nemesis picks from (one, halves, majorities-ring,
    /// bridge, ring-cut, hub, one-way, groups:0,1/2); the same default for
    /// every adapter.
    #[arg(long, default_value = SIM_SHAPES)]
    pub partition_shapes: ShapeList,
    /// Per-link latency: constant:D, uniform:MIN..MAX, exponential:MEAN
    /// (--adapter process: constant:0ms by default, real processes have
    /// latency of their own).
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
        use clap::ValueEnum;
        let mode = self
            .partition_mode
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
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

/// `ladon run`'s flags of the `process` adapter, shown under their own
/// heading in `ladon run --help` and refused with any other adapter.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct ProcessFlags {
    /// The node program; one process per node (required).
    #[arg(long, value_name = "PATH", help_heading = heading::PROCESS)]
    pub bin: Option<PathBuf>,
    /// An argument for the node program (repeatable).
    #[arg(long = "bin-arg", value_name = "ARG", allow_hyphen_values = true, help_heading = heading::PROCESS)]
    pub bin_args: Vec<String>,
    /// libfaketime's `libfaketime.so.1` for the clock nemesis (default: searched for).
    #[arg(long, value_name = "PATH", help_heading = heading::PROCESS_DB)]
    pub faketime_library: Option<PathBuf>,
    /// How long a (re)started node may take to answer `init`.
    #[arg(long, default_value = "10s", help_heading = heading::PROCESS)]
    pub init_timeout: Dur,
    /// Run the nodes on other machines over SSH: a TOML file of `[[host]]`
    /// entries, node i on entry i (round robin); --adapter process or
    /// postgres-pglogical; see docs/remote-hosts.md.
    #[arg(long, value_name = "FILE", help_heading = heading::PROCESS_DB)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<PathBuf>,
}

/// `--slave-exec-mode`: what a MariaDB replica does with a row event that
/// does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SlaveExecMode {
    /// Stop the replication connection with the server's error (MariaDB's
    /// default).
    #[default]
    Strict,
    /// Apply silently: a duplicate insert overwrites the row, a missing
    /// row is skipped.
    Idempotent,
}

/// `--couch-replication`: how CouchDB nodes replicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CouchReplication {
    /// One-shot pulls every 200 ms on each link not cut, driven by Ladon:
    /// replication resumes after a heal.
    #[default]
    Rounds,
    /// One continuous replication per link, started at setup and never
    /// restarted: what an application that sets it up once gets.
    Continuous,
}

/// `ladon run`'s flags of the real-database adapters
/// (`--adapter postgres-pglogical`, `mariadb`), under their own headings.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct DbFlags {
    /// Share of register writes that are deletes (`["d", k, null]`),
    /// 0 to 1; --workload register only.
    #[arg(long, default_value_t = 0.0, help_heading = heading::DB)]
    pub delete_share: f64,
    /// What a replica does with a row event that does not apply: strict
    /// stops that replication connection with the server's error,
    /// idempotent applies silently (a duplicate insert overwrites the row,
    /// a missing row is skipped).
    #[arg(long, value_enum, default_value = "strict", help_heading = heading::MARIADB)]
    #[serde(default)]
    pub slave_exec_mode: SlaveExecMode,
    /// Replicas write what they apply to their own binary log, so their
    /// downstream nodes get it too (needed for --topology ring and star;
    /// in a mesh it relays writes around a partial partition).
    #[arg(long, help_heading = heading::MARIADB)]
    #[serde(default)]
    pub log_slave_updates: bool,
    /// How CouchDB nodes replicate: rounds (one-shot pulls every 200 ms on
    /// each link not cut, driven by Ladon) or continuous (one continuous
    /// replication per link, started at setup and never restarted).
    #[arg(long, value_enum, default_value = "rounds", help_heading = heading::COUCHDB)]
    #[serde(default)]
    pub couch_replication: CouchReplication,
    /// How nodes are connected and partitions made: netns (a network
    /// namespace per node, nftables cuts; root), proxy (loopback, a TCP
    /// proxy per link), or auto (netns when it can).
    #[arg(long, value_enum, default_value_t = NetworkMode::Auto, help_heading = heading::DB)]
    #[serde(default)]
    pub network: NetworkMode,
}

/// Options only some adapters read. Flattened into [`RunOptions`]: every
/// field is a `ladon run` flag and a key of `run.json`'s `options`, typed
/// (`run.json` spells each value by its name). New adapters add their
/// fields here (with `#[serde(default)]`, so older `run.json` files still
/// load) under a help heading naming the adapters they apply to (see
/// [`heading`]).
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct AdapterOptions {
    /// A planted bug variant of the adapter (`ladon adapters` says what each
    /// breaks); toy has no-anti-entropy and forget-on-crash only.
    #[arg(long, help_heading = heading::REFERENCE_TOY, value_parser = named::<Bug>(Bug::ALL.iter().map(|b| b.as_str())))]
    #[serde(default, with = "by_name_opt")]
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
    #[serde(default = "default_topology", with = "by_name")]
    pub topology: TopologyName,
    /// Conflict strategy.
    #[arg(long, default_value = "crdt", help_heading = heading::REFERENCE,
          value_parser = named::<Strategy>(Strategy::ALL.iter().map(|s| s.as_str())))]
    #[serde(default = "default_strategy", with = "by_name")]
    pub strategy: Strategy,
    /// Where clients send read-only transactions.
    #[arg(long, default_value = "leader", help_heading = heading::REFERENCE,
          value_parser = named::<ReadFrom>(ReadFrom::ALL.iter().map(|r| r.as_str())))]
    #[serde(default = "default_read_from", with = "by_name")]
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
    pub lww_resolution: Option<Dur>,
    /// When a node saves its document (default every-op). Lazy saving loses
    /// acknowledged writes on a crash (see docs/crdt-libraries.md).
    #[arg(long, value_enum, help_heading = heading::CRDT_LIBS)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist: Option<PersistMode>,
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
            persist: None,
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

/// Every option of `ladon run` (and the run flags of `ladon explore`).
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct RunOptions {
    /// System under test (see `ladon adapters`).
    #[arg(long, default_value = "reference", value_parser = AdapterKind::parser())]
    pub adapter: AdapterKind,
    /// Simulated: register, list-append, set or counter; --adapter process:
    /// a Maelstrom workload (required).
    #[arg(long, default_value = "list-append", value_parser = named::<WorkloadName>(WorkloadName::names()))]
    #[serde(with = "by_name")]
    pub workload: WorkloadName,
    /// Number of nodes (leaders).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Fault packages: partition,clock,crash,pause,loss,dup,clog or none
    /// (--adapter process: none by default).
    #[arg(long, default_value = "partition,clock")]
    pub nemesis: FaultList,
    /// Mean time between nemesis steps (staggered: each 0.5x to 1.5x;
    /// --adapter process: 2s by default).
    #[arg(long, default_value = "5s")]
    pub nemesis_interval: Dur,
    /// Length of the faulty phase: virtual time when simulated, wall-clock
    /// time live (--adapter process: 10s by default).
    #[arg(long, default_value = "30s")]
    pub time_limit: Dur,
    /// Client operations per virtual second, over all clients.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Number of logical clients (--adapter process: 3 by default).
    #[arg(long, default_value_t = 6)]
    pub concurrency: usize,
    /// sticky (each client bound to one node) or roaming.
    #[arg(long, value_enum, default_value_t = ClientMode::Sticky, help_heading = heading::SIMULATED)]
    pub clients: ClientMode,
    /// Seed of every random choice (drawn at random and printed if absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where run directories go.
    #[arg(long, default_value = "results")]
    pub store: PathBuf,
    /// Guarantees to check, comma-separated or none (default: what the
    /// adapter declares; --adapter process: convergence,no-lost-writes,
    /// plus linearizable for lin-kv).
    #[arg(long, value_parser = Guarantee::parse_list)]
    #[serde(with = "guarantees_opt")]
    pub guarantees: Option<std::vec::Vec<Guarantee>>,
    /// Draw the fault mix and its parameters from the seed.
    #[arg(long, help_heading = heading::SIMULATED)]
    pub swarm: bool,
    /// The network's flags (shared with the live `process` adapter).
    #[command(flatten)]
    #[serde(flatten)]
    pub net: NetFlags,
    /// Bound of clock offsets the clock nemesis sets (`--max-clock-skew`
    /// is an old spelling).
    #[arg(long, alias = "max-clock-skew", default_value = "5s")]
    pub clock_skew: Dur,
    /// Bound of each node's clock drift, parts per million.
    #[arg(long, default_value_t = 0, help_heading = heading::SIMULATED)]
    pub clock_drift_ppm: i64,
    /// Up to this many micro-operations per transaction (--adapter process:
    /// 3 by default, txn-* workloads).
    #[arg(long, default_value_t = 2)]
    pub txn_size: usize,
    /// Keys rotate after this many writes.
    #[arg(long, default_value_t = 32)]
    pub max_writes_per_key: u32,
    /// Keys in use at once.
    #[arg(long, default_value_t = 4, help_heading = heading::SIMULATED)]
    pub keys: usize,
    /// A client operation without a reply after this long is `info`.
    #[arg(long, default_value = "1s")]
    pub op_timeout: Dur,
    /// Final reads stop when nodes agree or this long after the heal
    /// (Maelstrom waits 10 s too).
    #[arg(long, default_value = "10s")]
    pub converge_timeout: Dur,
    /// Pause between final read rounds.
    #[arg(long, default_value = "250ms", help_heading = heading::SIMULATED)]
    pub final_interval: Dur,
    /// Stop invoking client operations after this many (the faulty phase
    /// still lasts --time-limit). `ladon shrink` sets it.
    #[arg(long, value_name = "N", help_heading = heading::SIMULATED)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ops: Option<u64>,
    /// Apply exactly this fault schedule (a JSON file, as `ladon shrink`
    /// writes it) instead of drawing one from the seed; --nemesis and
    /// --nemesis-interval are then ignored. run.json holds the steps.
    /// Database runs play the steps on the wall clock.
    #[arg(long, value_name = "FILE", value_parser = crate::schedule::NemesisSchedule::parse_arg, help_heading = heading::SIMULATED_DB)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nemesis_schedule: Option<crate::schedule::NemesisSchedule>,
    /// Test name (results/<test>/...); default `<adapter>-<workload>`
    /// (--adapter process: `<workload>-<program name>`).
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
        assert_eq!(o.adapter, AdapterKind::Reference);
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

/// `ladon run`: every adapter's options (see the `Run` command); those of
/// one adapter only are grouped under a heading naming it.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub options: RunOptions,
    #[command(flatten)]
    pub process: ProcessFlags,
    #[command(flatten)]
    pub db: DbFlags,
    /// Write JUnit XML here: one test case per anomaly class.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
}

/// A fresh seed for a run given none (printed with the run, so it can be
/// repeated).
pub fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // splitmix64 of time and pid: a seed, printed, never needed again.
    let mut z = t ^ ((std::process::id() as u64) << 32);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Applies a run mode's own defaults (`what`: "process", "database") to
/// the options not given on the command line (`given`: their clap ids).
/// `defaults` are `(id, value)` pairs in the flags' own syntax.
pub fn apply_defaults(
    o: &mut RunOptions,
    defaults: &[(&str, &str)],
    given: &std::collections::BTreeSet<String>,
    what: &str,
) -> anyhow::Result<()> {
    for (id, value) in defaults {
        if given.contains(*id) {
            continue;
        }
        let bad = |e: String| anyhow::anyhow!("internal: {what} default {id}={value}: {e}");
        match *id {
            "concurrency" => o.concurrency = value.parse().map_err(|e| bad(format!("{e}")))?,
            "time_limit" => o.time_limit = value.parse().map_err(bad)?,
            "nemesis" => o.nemesis = value.parse().map_err(bad)?,
            "nemesis_interval" => o.nemesis_interval = value.parse().map_err(bad)?,
            "txn_size" => o.txn_size = value.parse().map_err(|e| bad(format!("{e}")))?,
            "latency" => o.net.latency = value.parse().map_err(bad)?,
            "topology" => o.adapter_options.topology = value.parse().map_err(bad)?,
            other => anyhow::bail!("internal: no {what} default for {other}"),
        }
    }
    Ok(())
}
