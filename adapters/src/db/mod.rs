//! Real databases as systems under test: each node is a server process that
//! Ladon creates, configures, starts, faults and removes, in the spirit of
//! Jepsen's `db` protocol. [`Database`] is the seam a system implements; the
//! harness decides *when* a node is killed or paused, the implementation
//! *how*.
//!
//! Every server runs in its own process group, so a crash (SIGKILL) or a
//! pause (SIGSTOP) reaches its worker processes too, and never as root: when
//! Ladon runs as root the servers run as the system's own user (`postgres`).
//! Each cluster records itself in a registry directory
//! ([`registry::Registry`]); a cluster left behind by a Ladon that was killed
//! with SIGKILL is found and removed before the next one starts.

#[cfg(feature = "couchdb")]
pub mod couch;
#[cfg(feature = "couchdb")]
pub mod couch_client;
pub mod error;
pub mod mariadb;
#[cfg(feature = "mariadb")]
pub mod mysql;
pub mod netns;
pub mod postgres;
pub mod process_group;
pub mod proxy;
pub mod registry;
pub mod remote;
pub mod servers;
#[cfg(feature = "postgres")]
pub mod sql;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use ladon_checker::history::{KeyKind, Mop};

pub use error::DbError;

/// How to install what `--adapter couchdb` runs (the package pinned in
/// `couch::PACKAGE`, where `couch::install_dir` looks for it).
pub const COUCHDB_INSTALL: &str = "npm install --prefix DIR --no-audit --no-fund --ignore-scripts \
     pouchdb-server@4.2.0 (DIR: $LADON_POUCHDB_DIR, else /var/cache/ladon/pouchdb-server-4.2.0 \
     as root, else ~/.cache/ladon/pouchdb-server-4.2.0)";

/// How the nodes replicate to each other.
pub use crate::reference::config::Topology;

/// One replication link of a topology: node `to` applies node `from`'s
/// changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationLink {
    pub from: usize,
    pub to: usize,
    /// `from` also passes on the changes it applied from other nodes (a
    /// ring's or a star's hub's forwarding); otherwise only its own.
    pub relay: bool,
}

/// The replication links of `topology` over `n` nodes, as the reference
/// store's shapes (`reference::topology`): mesh, every node pulls every
/// other's own changes; ring, `n(i+1)` pulls everything `n(i)` has (so a
/// write travels the whole ring); star, the hub `n1` pulls every leaf's own
/// changes and every leaf pulls everything the hub has.
pub fn replication_links(topology: Topology, n: usize) -> Vec<ReplicationLink> {
    let link = |from, to, relay| ReplicationLink { from, to, relay };
    if n < 2 {
        return Vec::new();
    }
    match topology {
        Topology::Mesh => (0..n)
            .flat_map(|to| {
                (0..n)
                    .filter(move |&f| f != to)
                    .map(move |f| link(f, to, false))
            })
            .collect(),
        Topology::Ring => (0..n).map(|i| link(i, (i + 1) % n, true)).collect(),
        Topology::Star => (1..n)
            .flat_map(|leaf| [link(leaf, 0, false), link(0, leaf, true)])
            .collect(),
    }
}

/// One cluster's shape and where it lives.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Node count (`n1` … `nN`).
    pub nodes: usize,
    pub topology: Topology,
    /// Where the data directories and logs go (created if absent).
    pub dir: PathBuf,
    /// Each node in its own network namespace ([`netns::Network`]); `None`:
    /// every server on loopback.
    pub network: Option<std::sync::Arc<netns::Network>>,
}

impl ClusterSpec {
    /// The address node `i`'s server listens on: its namespace's, or
    /// loopback.
    pub fn ip(&self, i: usize) -> std::net::IpAddr {
        match &self.network {
            Some(n) => n.addr(i).into(),
            None => std::net::Ipv4Addr::LOCALHOST.into(),
        }
    }

    /// Where the servers' peers and clients connect from, in CIDR form
    /// (for a server's access rules).
    pub fn clients_cidr(&self) -> String {
        match &self.network {
            Some(n) => n.subnet(),
            None => "127.0.0.1/32".into(),
        }
    }

    /// Starts node `i`'s server ([`process_group::Server::spawn`]), inside
    /// its network namespace when there is one.
    pub fn spawn(
        &self,
        i: usize,
        cmd: std::process::Command,
        log: &Path,
        node: &str,
    ) -> Result<process_group::Server, DbError> {
        match &self.network {
            Some(n) => n.run_in(i, || process_group::Server::spawn(cmd, log, node)),
            None => process_group::Server::spawn(cmd, log, node),
        }
    }
}

/// A boxed future (the client seam is object-safe: one execution drives
/// any system's clients).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How one client transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Committed; reads carry what they saw.
    Ok(Vec<Mop>),
    /// Definitely not applied.
    Fail(String),
    /// May or may not have been applied.
    Info(String),
}

/// One logical client's connection to one node.
pub trait DbClient: Send {
    /// Runs `ops` (of key kind `kind`) as one transaction.
    fn txn<'a>(&'a mut self, kind: KeyKind, ops: &'a [Mop]) -> BoxFuture<'a, TxnOutcome>;
    /// What the system said about the last transaction, for its history
    /// event's `meta` (CouchDB: `{"winners": [[key, value], …]}`, the
    /// value a plain read returns of each register read as siblings).
    fn take_meta(&mut self) -> Option<serde_json::Value> {
        None
    }
}

/// Where node `to` reaches node `from` for replication (a link proxy's
/// address, or `from`'s own).
pub type LinkAddr<'a> = &'a dyn Fn(usize, usize) -> SocketAddr;

/// The node lifecycle of a real multi-leader database.
pub trait Database: Send {
    /// The adapter's name, as on the command line (`postgres-pglogical`).
    fn name(&self) -> &'static str;
    /// Node names, `n1` … `nN`.
    fn nodes(&self) -> Vec<String>;
    /// Runs every server under libfaketime from now on (call before
    /// [`start_nodes`](Database::start_nodes)); each node's clock is then
    /// moved by [`set_clock`](Database::set_clock).
    fn enable_clock_faults(&mut self, library: &Path) -> Result<(), DbError>;
    /// Sets node `i`'s clock to true time plus `offset_ns`.
    fn set_clock(&self, i: usize, offset_ns: i64) -> Result<(), DbError>;
    /// Creates, configures and starts every node; returns once every node
    /// accepts connections ([`addr`](Database::addr) is known from here).
    fn start_nodes(&mut self) -> Result<(), DbError>;
    /// Sets up replication between the running nodes, node `to` reaching
    /// node `from` at `via(from, to)`; returns once it runs.
    fn replicate(&mut self, via: LinkAddr<'_>) -> Result<(), DbError>;
    /// [`start_nodes`](Database::start_nodes), then replication over
    /// direct links.
    fn setup(&mut self) -> Result<(), DbError> {
        self.start_nodes()?;
        let addrs: Vec<SocketAddr> = (0..self.nodes().len()).map(|i| self.addr(i)).collect();
        self.replicate(&|from, _to| addrs[from])
    }
    /// The address clients of node `i` connect to.
    fn addr(&self, i: usize) -> SocketAddr;
    /// Connects one client to node `i`; every statement limited to `timeout`.
    fn connect(
        &self,
        i: usize,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Box<dyn DbClient>, String>>;
    /// Crash: SIGKILL to the node's whole process group.
    fn kill(&mut self, i: usize) -> Result<(), DbError>;
    /// Starts a killed node again on the same data directory.
    fn restart(&mut self, i: usize) -> Result<(), DbError>;
    /// Whether node `i` is running (not killed).
    fn is_up(&self, i: usize) -> bool;
    /// SIGSTOP to the node's process group.
    fn pause(&mut self, i: usize) -> Result<(), DbError>;
    /// SIGCONT to the node's process group.
    fn resume(&mut self, i: usize) -> Result<(), DbError>;
    /// The directed links cut now (the execution calls it at every
    /// partition and heal, beside its own cut of the traffic): a system
    /// whose replication the adapter drives stops replicating them.
    fn partitioned(&mut self, blocked: &std::collections::BTreeSet<(usize, usize)>) {
        let _ = blocked;
    }
    /// Node `i`'s data directory while the cluster exists (`None`: the
    /// system keeps none worth keeping). A run that fails copies each one
    /// into its run directory before the teardown removes it.
    fn data_dir(&self, i: usize) -> Option<PathBuf> {
        let _ = i;
        None
    }
    /// Replication that has stopped and will not resume by itself, one
    /// line per stopped link with the server's own error
    /// (`replication stopped on n2 from n1: error 1062: …`, read from
    /// MariaDB's `SHOW ALL SLAVES STATUS`); read after the final phase and
    /// put in the report and the run summary. Systems whose replication
    /// cannot stop say nothing.
    fn replication_problems(&self) -> Vec<String> {
        Vec::new()
    }
    /// Servers that exited since the last call without Ladon stopping
    /// them (`n2's server (pouchdb-server) exited by itself (exit status
    /// 1)`), one line each; such a node is down from then on. The
    /// execution asks during the run and the final phase, and reports
    /// every line.
    fn exited_by_themselves(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// Replication that has stopped for good, so that the nodes cannot
    /// converge whatever the final phase waits (MariaDB: an SQL thread
    /// stopped on an error); one line each. The final phase ends early
    /// when a round disagrees and this is not empty. Default: never.
    fn replication_halted(&self) -> Vec<String> {
        Vec::new()
    }
    /// Appends every node's server log to `into/<name>.log` (the run's
    /// node log, which holds Ladon's own lines about the node too).
    fn collect_logs(&self, into: &Path) -> Result<(), DbError>;
    /// Stops every node and removes what setup created. Idempotent; also
    /// run on drop.
    fn teardown(&mut self) -> Result<(), DbError>;
}

/// Node `i`'s name: `n1` … `nN`.
pub fn name_of(i: usize) -> String {
    format!("n{}", i + 1)
}

/// Free loopback ports, one per node.
pub fn free_ports(n: usize) -> Result<Vec<u16>, DbError> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<_, _>>()
        .map_err(DbError::io("pick a free loopback port"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(DbError::io("pick a free loopback port"))
}

/// Appends each `(node, server log)` that exists to `into/<node>.log` (the
/// run's node log, which holds Ladon's own lines about the node too).
pub fn append_logs(logs: &[(String, PathBuf)], into: &Path) -> Result<(), DbError> {
    std::fs::create_dir_all(into).map_err(DbError::io(format!("create {}", into.display())))?;
    for (node, from) in logs.iter().filter(|(_, f)| f.exists()) {
        let to = into.join(format!("{node}.log"));
        std::fs::File::open(from)
            .and_then(|mut src| append_to_log(&to, &mut src))
            .map_err(DbError::io(format!(
                "append {} to {}",
                from.display(),
                to.display()
            )))?;
    }
    Ok(())
}

/// Appends what `src` holds to the node log `to` (created if absent).
pub fn append_to_log(to: &Path, src: &mut dyn std::io::Read) -> std::io::Result<()> {
    let mut dst = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(to)?;
    std::io::copy(src, &mut dst).map(|_| ())
}
