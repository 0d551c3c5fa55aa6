//! The database run's spec: `ladon run --adapter postgres-pglogical` or
//! `mariadb`'s options resolved, checked and typed, and its reproduce line.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ladon_adapters::process::Workload;
use ladon_checker::report::Guarantee;
use ladon_workloads::WorkloadKind;

use crate::nemesis::{Action, FaultKind, FaultList};
use crate::net::{Latency, PartitionMode, Shape};
use crate::options::{AdapterKind, DbFlags, Dur, NetworkMode, RunArgs, RunOptions};

/// The cargo feature of `ladon-harness` that builds `adapter`'s client.
pub fn feature_of(adapter: AdapterKind) -> &'static str {
    match adapter {
        AdapterKind::MariaDb => "mariadb",
        AdapterKind::CouchDb => "couchdb",
        _ => "postgres",
    }
}

/// Whether this build has `adapter`'s client.
pub fn built_with(adapter: AdapterKind) -> bool {
    match adapter {
        AdapterKind::MariaDb => cfg!(feature = "mariadb"),
        AdapterKind::CouchDb => cfg!(feature = "couchdb"),
        _ => cfg!(feature = "postgres"),
    }
}

/// Why `--adapter ADAPTER` cannot run in a build without its client.
pub fn needs_feature(adapter: AdapterKind) -> String {
    format!(
        "this ladon was built without the {adapter} adapter's client: build it with \
         `cargo build --release --features ladon-harness/{}` (see docs/real-systems.md)",
        feature_of(adapter)
    )
}

/// The defaults of a database run where they differ from a simulated
/// run's (argument id, value): wall-clock time, no faults unless asked,
/// no added latency (the proxies add only what `--latency` asks).
pub const DB_DEFAULTS: &[(&str, &str)] = &[
    ("concurrency", "3"),
    ("time_limit", "10s"),
    ("nemesis", "none"),
    ("nemesis_interval", "2s"),
    ("txn_size", "3"),
    ("latency", "constant:0ms"),
];

/// A resolved database run: every option typed, defaults applied.
#[derive(Debug, Clone)]
pub struct DbSpec {
    pub adapter: AdapterKind,
    /// The workload as the user named it (register, set, counter, list-append).
    pub workload_name: WorkloadKind,
    /// The live generator's shape of it.
    pub workload: Workload,
    pub nodes: usize,
    pub concurrency: usize,
    pub rate: f64,
    pub time_limit: Dur,
    pub seed: u64,
    pub nemesis: FaultList,
    pub nemesis_interval: Dur,
    pub partition_mode: PartitionMode,
    pub shapes: Vec<Shape>,
    /// Added to every chunk a link proxy forwards.
    pub latency_ns: u64,
    pub clock_skew: Dur,
    pub topology: ladon_adapters::db::Topology,
    /// netns or proxy (`auto` resolved).
    pub network: NetworkMode,
    /// Why `auto` chose the proxy (empty otherwise).
    pub network_why: String,
    /// The nodes run on these hosts (`--hosts`; `network` is then
    /// unused: the hosts' own network carries replication, and partitions
    /// are nftables rules on the hosts).
    pub hosts: Option<crate::hosts::HostsFile>,
    pub op_timeout: Dur,
    pub converge_timeout: Dur,
    pub txn_size: usize,
    pub max_writes_per_key: u64,
    pub delete_share: f64,
    pub faketime_library: Option<PathBuf>,
    pub store: PathBuf,
    pub test: String,
    pub guarantees: Vec<Guarantee>,
    pub junit: Option<PathBuf>,
    /// The resolved options as `run.json` keeps them.
    pub options: RunOptions,
    pub flags: DbFlags,
    pub reproduce: String,
}

/// The live generator's workload for a Ladon workload on SQL.
pub fn sql_workload(w: WorkloadKind) -> Workload {
    match w {
        WorkloadKind::Register => Workload::TxnRwRegister,
        WorkloadKind::ListAppend => Workload::TxnListAppend,
        WorkloadKind::Set => Workload::GSet,
        WorkloadKind::Counter => Workload::PnCounter,
    }
}

pub use crate::adapters::database_default_guarantees as default_guarantees;

/// Resolves `ladon run --adapter postgres-pglogical` or `mariadb`.
pub fn resolve(args: &RunArgs, given: &BTreeSet<String>) -> anyhow::Result<DbSpec> {
    let mut o = args.options.clone();
    crate::options::apply_defaults(&mut o, DB_DEFAULTS, given, "database")?;
    if o.adapter == AdapterKind::CouchDb {
        // CouchDB has no transactions: one micro-operation each.
        anyhow::ensure!(
            !given.contains("txn_size") || o.txn_size == 1,
            "--txn-size {}: --adapter couchdb has no transactions (one micro-operation each: \
             --txn-size 1)",
            o.txn_size
        );
        o.txn_size = 1;
        anyhow::ensure!(
            !matches!(o.workload.sim(), Ok(WorkloadKind::Counter)),
            "--workload counter: --adapter couchdb has no increment; it runs register, set or list-append"
        );
    }
    o.validate().map_err(anyhow::Error::msg)?;
    let adapter = o.adapter;
    let workload_name = o.workload.sim().map_err(|_| {
        anyhow::anyhow!(
            "--workload {}: --adapter {adapter} runs register, list-append, set or counter",
            o.workload
        )
    })?;
    use crate::nemesis::FaultKind;
    for k in &o.nemesis.0 {
        if matches!(k, FaultKind::Loss | FaultKind::Dup | FaultKind::Clog) {
            anyhow::bail!(
                "--nemesis {k}: --adapter {adapter} takes partition, clock, crash and pause \
                 (its links are TCP streams through proxies: a lost or duplicated message is \
                 not a fault they can have)"
            );
        }
    }
    let latency_ns = match o.net.latency {
        Latency::Constant(ns) => ns,
        other => anyhow::bail!(
            "--latency {other}: --adapter {adapter} adds a constant latency on its link \
             proxies only (constant:D)"
        ),
    };
    for (flag, p) in [
        ("loss", o.net.loss),
        ("duplicate", o.net.duplicate),
        ("reorder", o.net.reorder),
    ] {
        anyhow::ensure!(
            p == 0.0,
            "--{flag} {p}: --adapter {adapter} has no background message faults (its links are TCP streams)"
        );
    }
    let mut flags = args.db.clone();
    let hosts = match &args.process.hosts {
        None => None,
        Some(path) => {
            anyhow::ensure!(
                adapter == AdapterKind::PostgresPglogical,
                "--hosts {}: --adapter {adapter} runs its servers on this machine only (--hosts \
                 takes --adapter process or postgres-pglogical; docs/remote-hosts.md)",
                path.display()
            );
            anyhow::ensure!(
                !given.contains("network"),
                "--network {}: with --hosts the nodes replicate over the hosts' own network and \
                 partitions are nftables rules on the hosts; leave --network out",
                flags.network
            );
            anyhow::ensure!(
                latency_ns == 0,
                "--latency: with --hosts there are no link proxies to add latency on"
            );
            anyhow::ensure!(
                o.net.partition_mode == PartitionMode::Drop,
                "--partition-mode hold: with --hosts partitions are nftables rules on the hosts, \
                 which drop packets (--partition-mode drop)"
            );
            Some(crate::hosts::load(path).map_err(anyhow::Error::msg)?)
        }
    };
    let (network, network_why) = if hosts.is_some() {
        (flags.network, String::new())
    } else {
        resolve_network(flags.network, latency_ns, o.net.partition_mode)?
    };
    flags.network = network;
    anyhow::ensure!(
        (0.0..=1.0).contains(&flags.delete_share),
        "--delete-share {}: must be between 0 and 1",
        flags.delete_share
    );
    anyhow::ensure!(
        flags.delete_share == 0.0 || workload_name == WorkloadKind::Register,
        "--delete-share {}: deletes are register micro-operations (--workload register)",
        flags.delete_share
    );
    let topology = o.adapter_options.topology.leaders().map_err(|_| {
        anyhow::anyhow!(
            "--topology {}: --adapter {adapter} replicates mesh, ring or star",
            o.adapter_options.topology
        )
    })?;
    if let Some(schedule) = &o.nemesis_schedule {
        schedule.validate(o.nodes).map_err(anyhow::Error::msg)?;
        if let Some((i, step)) = schedule.steps.iter().enumerate().find(|(_, s)| {
            matches!(
                s.action,
                Action::Loss(_)
                    | Action::LossStop
                    | Action::Dup(_)
                    | Action::DupStop
                    | Action::Clog(_)
                    | Action::Unclog(_)
            )
        }) {
            anyhow::bail!(
                "--nemesis-schedule {}: step {} ({} at {}): --adapter {adapter} has no message \
                 loss, duplication or clogging (its links are TCP streams)",
                schedule
                    .source
                    .as_ref()
                    .map_or_else(String::new, |p| p.display().to_string()),
                i + 1,
                step.action.name(),
                step.at
            );
        }
    }
    let seed = o.seed.unwrap_or_else(crate::options::random_seed);
    let test = o
        .test
        .clone()
        .unwrap_or_else(|| format!("{adapter}-{workload_name}"));
    o.seed = Some(seed);
    o.test = Some(test.clone());
    let guarantees = o.guarantees.clone().unwrap_or_else(default_guarantees);
    let mut spec = DbSpec {
        adapter,
        workload_name,
        workload: sql_workload(workload_name),
        nodes: o.nodes,
        concurrency: o.concurrency,
        rate: o.rate,
        time_limit: o.time_limit,
        seed,
        nemesis: o.nemesis.clone(),
        nemesis_interval: o.nemesis_interval,
        partition_mode: o.net.partition_mode,
        shapes: o.net.partition_shapes.0.clone(),
        latency_ns,
        clock_skew: o.clock_skew,
        topology,
        network,
        network_why,
        hosts,
        op_timeout: o.op_timeout,
        converge_timeout: o.converge_timeout,
        txn_size: o.txn_size,
        max_writes_per_key: o.max_writes_per_key.into(),
        delete_share: flags.delete_share,
        faketime_library: args.process.faketime_library.clone(),
        store: o.store.clone(),
        test,
        guarantees,
        junit: args.junit.clone(),
        options: o,
        flags,
        reproduce: String::new(),
    };
    spec.reproduce = reproduce(&spec);
    Ok(spec)
}

/// `--network` resolved: `auto` becomes netns where namespaces can be
/// made and nothing asked for needs the proxy, proxy otherwise (with the
/// reason, which the run prints).
pub fn resolve_network(
    asked: NetworkMode,
    latency_ns: u64,
    partition_mode: PartitionMode,
) -> anyhow::Result<(NetworkMode, String)> {
    let needs_proxy = if latency_ns > 0 {
        Some("--latency (this kernel has no tc netem: latency comes from the proxy)")
    } else if partition_mode == PartitionMode::Hold {
        Some("--partition-mode hold (nftables drops packets; only the proxy holds them)")
    } else {
        None
    };
    let unavailable = ladon_adapters::db::netns::unavailable();
    match asked {
        NetworkMode::Proxy => Ok((NetworkMode::Proxy, String::new())),
        NetworkMode::Netns => {
            if let Some(why) = needs_proxy {
                anyhow::bail!("--network netns: {why} needs --network proxy");
            }
            if let Some(why) = unavailable {
                anyhow::bail!("--network netns: {why}; or use --network proxy");
            }
            Ok((NetworkMode::Netns, String::new()))
        }
        NetworkMode::Auto => match needs_proxy.map(str::to_string).or(unavailable) {
            Some(why) => Ok((NetworkMode::Proxy, why)),
            None => Ok((NetworkMode::Netns, String::new())),
        },
    }
}

/// The command that reruns this configuration, every option resolved.
impl DbSpec {
    /// Whether the run may partition the nodes: the partition nemesis is
    /// on, or the explicit schedule cuts links.
    pub fn partitions(&self) -> bool {
        self.nemesis.0.contains(&FaultKind::Partition)
            || self.options.nemesis_schedule.as_ref().is_some_and(|s| {
                s.steps
                    .iter()
                    .any(|st| matches!(st.action, Action::Partition(_)))
            })
    }

    /// Whether the servers run under libfaketime: the clock nemesis is on,
    /// or the explicit schedule moves a clock.
    pub fn clock_faults(&self) -> bool {
        self.nemesis.0.contains(&FaultKind::Clock)
            || self.options.nemesis_schedule.as_ref().is_some_and(|s| {
                s.steps.iter().any(|st| {
                    matches!(
                        st.action,
                        Action::ClockBump(_) | Action::ClockStrobe { .. } | Action::ClockReset
                    )
                })
            })
    }
}

pub fn reproduce(s: &DbSpec) -> String {
    let mut words: Vec<(&str, String)> = vec![
        ("--adapter", s.adapter.to_string()),
        ("--workload", s.workload_name.to_string()),
        ("--nodes", s.nodes.to_string()),
        ("--concurrency", s.concurrency.to_string()),
        ("--rate", s.rate.to_string()),
        ("--time-limit", s.time_limit.to_string()),
        ("--nemesis", s.nemesis.to_string()),
        ("--nemesis-interval", s.nemesis_interval.to_string()),
    ];
    words.extend(
        s.options
            .net
            .flags()
            .into_iter()
            .filter(|(f, _)| matches!(*f, "--partition-mode" | "--partition-shapes" | "--latency")),
    );
    if let Some(lib) = &s.faketime_library {
        words.push(("--faketime-library", lib.display().to_string()));
    }
    if let Some(path) = s
        .options
        .nemesis_schedule
        .as_ref()
        .and_then(|n| n.source.as_ref())
    {
        words.push(("--nemesis-schedule", path.display().to_string()));
    }
    words.extend([
        ("--clock-skew", s.clock_skew.to_string()),
        ("--topology", s.topology.as_str().to_string()),
    ]);
    match &s.hosts {
        Some(h) => words.push(("--hosts", h.path.display().to_string())),
        None => words.push(("--network", s.network.to_string())),
    }
    words.extend([
        ("--op-timeout", s.op_timeout.to_string()),
        ("--converge-timeout", s.converge_timeout.to_string()),
        ("--txn-size", s.txn_size.to_string()),
        ("--max-writes-per-key", s.max_writes_per_key.to_string()),
        ("--delete-share", s.delete_share.to_string()),
    ]);
    if s.adapter == AdapterKind::MariaDb {
        words.push((
            "--slave-exec-mode",
            match s.flags.slave_exec_mode {
                crate::options::SlaveExecMode::Strict => "strict",
                crate::options::SlaveExecMode::Idempotent => "idempotent",
            }
            .to_string(),
        ));
        if s.flags.log_slave_updates {
            // A switch: printed without a value (see below).
            words.push(("--log-slave-updates", String::new()));
        }
    }
    if s.adapter == AdapterKind::CouchDb {
        words.push((
            "--couch-replication",
            match s.flags.couch_replication {
                crate::options::CouchReplication::Rounds => "rounds",
                crate::options::CouchReplication::Continuous => "continuous",
            }
            .to_string(),
        ));
    }
    words.extend([
        ("--store", s.store.display().to_string()),
        ("--test", s.test.clone()),
        (
            "--guarantees",
            crate::options::guarantee_list(&s.guarantees),
        ),
        ("--seed", s.seed.to_string()),
    ]);
    let mut cmd = "ladon run".to_string();
    for (flag, value) in words {
        if flag == "--log-slave-updates" {
            cmd.push_str(" --log-slave-updates");
            continue;
        }
        cmd.push(' ');
        cmd.push_str(flag);
        cmd.push(' ');
        cmd.push_str(&crate::store::shell_quote(&value));
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ladon run ARGS` resolved as a database run.
    fn resolve_args(args: &[&str]) -> anyhow::Result<DbSpec> {
        use clap::{CommandFactory, FromArgMatches};
        let argv: Vec<&str> = ["ladon", "run"].iter().chain(args).copied().collect();
        let m = crate::cli::Cli::command().try_get_matches_from(argv)?;
        let cli = crate::cli::Cli::from_arg_matches(&m)?;
        let crate::cli::Command::Run(run) = cli.command else {
            anyhow::bail!("not a run");
        };
        let (_, sub) = m.subcommand().expect("run");
        resolve(&run, &crate::cli::run::given_ids(sub))
    }

    #[test]
    fn hosts_take_postgres_only_and_replace_the_network() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hosts.toml");
        std::fs::write(&file, "[[host]]\naddress = \"10.0.0.1\"\n").unwrap();
        let f = file.display().to_string();
        let err = resolve_args(&["--adapter", "mariadb", "--hosts", &f]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "--hosts {f}: --adapter mariadb runs its servers on this machine only (--hosts \
                 takes --adapter process or postgres-pglogical; docs/remote-hosts.md)"
            )
        );
        let err = resolve_args(&[
            "--adapter",
            "postgres-pglogical",
            "--hosts",
            &f,
            "--network",
            "netns",
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--network netns: with --hosts the nodes replicate over"),
            "{err}"
        );
        let err = resolve_args(&[
            "--adapter",
            "postgres-pglogical",
            "--hosts",
            &f,
            "--partition-mode",
            "hold",
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--partition-mode hold: with --hosts"),
            "{err}"
        );
        let spec = resolve_args(&[
            "--adapter",
            "postgres-pglogical",
            "--hosts",
            &f,
            "--nemesis",
            "partition",
        ])
        .unwrap();
        assert_eq!(spec.hosts.as_ref().unwrap().hosts.len(), 1);
        assert!(spec.partitions());
        assert!(
            spec.reproduce.contains(&format!(" --hosts {f} ")),
            "{}",
            spec.reproduce
        );
        assert!(!spec.reproduce.contains("--network"), "{}", spec.reproduce);
        // A bad hosts file is named with its line.
        std::fs::write(&file, "[[host]]\naddress = \"a b\"\n").unwrap();
        let err = resolve_args(&["--adapter", "postgres-pglogical", "--hosts", &f]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{f}:2: host 1: address \"a b\" is not a host name or address")
        );
    }
}
