//! The CouchDB replication protocol as a multi-leader system: every node a
//! `pouchdb-server --in-memory` (Node.js, from the npm registry), one
//! database `ladon` each, replicated by the harness in one-shot
//! `POST /_replicate` rounds between linked nodes.
//!
//! **Why one-shot rounds.** A continuous replication cannot be cancelled
//! (`"cancel": true` is accepted and ignored) and does not survive a
//! partition, so the adapter's replicator thread asks each linked node to
//! pull from its upstream every [`ROUND`] instead. A partitioned pair is
//! not replicated (the execution tells the adapter through
//! [`Database::partitioned`]); the proxy or namespace cut takes care of the
//! rest of the traffic.
//!
//! **Documents** (see [`super::couch_client`]): a register is a document
//! per key (`r:<k>`), a set a document per element (`s:<k>:<e>`), a list a
//! document per key holding the list (`l:<k>`). Counters are not offered:
//! CouchDB has no increment, and a read-modify-write of a number is a
//! register.
//!
//! In memory: a crash (SIGKILL) loses everything the node held; the
//! restarted node starts empty and gets back what its peers have.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::couch_client::{http, CouchClient, DB};
use super::process_group::RunAs;
use super::servers::{Servers, Shutdown};
use super::{BoxFuture, ClusterSpec, Database, DbClient, DbError, LinkAddr};

/// The pinned package.
pub const PACKAGE: &str = "pouchdb-server@4.2.0";
/// Time between two replication rounds of one link.
pub const ROUND: Duration = Duration::from_millis(200);

/// Where the package is installed: `LADON_POUCHDB_DIR`, else
/// `/var/cache/ladon/pouchdb-server-4.2.0` as root (readable by the user
/// the servers run as), else `~/.cache/ladon/pouchdb-server-4.2.0`.
pub fn install_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LADON_POUCHDB_DIR") {
        return PathBuf::from(d);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/cache/ladon/pouchdb-server-4.2.0");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/ladon/pouchdb-server-4.2.0")
}

/// The command that installs the package where [`install_dir`] looks.
pub fn install_command() -> String {
    format!(
        "npm install --prefix {} --no-audit --no-fund --ignore-scripts {PACKAGE}",
        install_dir().display()
    )
}

/// The server's entry script, or what is missing.
pub fn find_server() -> Result<PathBuf, DbError> {
    if Command::new("node").arg("--version").output().is_err() {
        return Err(DbError::Missing {
            what: "Node.js (`node`)".into(),
            path: "node".into(),
            install: "apt-get install nodejs npm".into(),
        });
    }
    let script = install_dir().join("node_modules/pouchdb-server/bin/pouchdb-server");
    if !script.is_file() {
        return Err(DbError::Missing {
            what: "pouchdb-server".into(),
            path: script.display().to_string(),
            install: install_command(),
        });
    }
    Ok(script)
}

/// One replicated link: `(from, to)` and the URL `to` pulls from.
type Pull = ((usize, usize), String);

/// How the nodes replicate (`--couch-replication`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Replication {
    /// One-shot `POST /_replicate` pulls every [`ROUND`] on each link the
    /// harness has not cut (the default: replication resumes after a heal).
    #[default]
    Rounds,
    /// One continuous replication per link, started at setup and left to
    /// itself, as an application that sets it up once would: a partition
    /// may end it for good, and nothing starts it again.
    Continuous,
}

/// A cluster of pouchdb-server nodes.
pub struct Couch {
    spec: ClusterSpec,
    script: PathBuf,
    run_as: Option<RunAs>,
    servers: Servers,
    ports: Vec<u16>,
    /// The links being replicated, by `(from, to)`: the URL `to` pulls
    /// from.
    links: Arc<Mutex<Vec<Pull>>>,
    /// Directed links not replicated now (a partition).
    cut: Arc<Mutex<BTreeSet<(usize, usize)>>>,
    stop: Arc<AtomicBool>,
    replicator: Option<std::thread::JoinHandle<()>>,
    /// Rounds driven by the harness, or continuous replications.
    pub replication: Replication,
}

impl Couch {
    /// A cluster of `spec.nodes` nodes; nothing starts until setup.
    pub fn new(spec: ClusterSpec) -> Result<Couch, DbError> {
        if spec.nodes == 0 {
            return Err(DbError::Refused("--nodes must be at least 1".into()));
        }
        Ok(Couch {
            script: find_server()?,
            run_as: RunAs::for_root("nobody")?,
            servers: Servers::new(spec.nodes, "pouchdb-server")?,
            ports: Vec::new(),
            links: Default::default(),
            cut: Default::default(),
            stop: Arc::new(AtomicBool::new(false)),
            replicator: None,
            replication: Replication::default(),
            spec,
        })
    }

    fn root(&self) -> &Path {
        self.servers.root()
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self.root().join(super::name_of(i))
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.root().join(format!("{}.log", super::name_of(i)))
    }

    fn start(&mut self, i: usize) -> Result<(), DbError> {
        let node = super::name_of(i);
        let dir = self.node_dir(i);
        let mut cmd = Command::new("node");
        cmd.arg("--require").arg(self.root().join(KEEP_ALIVE_FILE));
        cmd.arg(&self.script)
            .args(["--in-memory", "--no-stdout-logs", "--host"])
            .arg(self.spec.ip(i).to_string())
            .arg("--port")
            .arg(self.ports[i].to_string())
            // Unused in memory, but on the command line the registry's
            // sweep finds the server by (a server of a killed run).
            .arg("--dir")
            .arg(&dir)
            // pouchdb-server writes config.json and log.txt where it runs.
            .current_dir(&dir);
        self.servers.clock_env(i, &mut cmd);
        RunAs::apply(self.run_as, &mut cmd);
        let server = self.spec.spawn(i, cmd, &self.log_path(i), &node)?;
        self.servers.add(i, server, &dir)?;
        self.wait_ready(i, Duration::from_secs(30))?;
        // In memory: the database is made at every start.
        let (status, body) = self.call(i, "PUT", &format!("/{DB}"), None)?;
        if status != 201 && status != 412 {
            return Err(DbError::Command {
                node,
                command: format!("PUT /{DB}"),
                output: format!("{status} {body}"),
            });
        }
        Ok(())
    }

    /// One HTTP request to node `i` from a throwaway runtime (setup only).
    fn call(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), DbError> {
        let addr = self.addr(i);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(DbError::io("start a runtime"))?;
        rt.block_on(http(
            addr,
            method,
            path,
            body.as_ref(),
            Duration::from_secs(5),
        ))
        .map_err(|e| DbError::Command {
            node: super::name_of(i),
            command: format!("{method} {path}"),
            output: e,
        })
    }

    fn wait_ready(&mut self, i: usize, limit: Duration) -> Result<(), DbError> {
        let t0 = Instant::now();
        loop {
            if self.call(i, "GET", "/", None).is_ok_and(|(s, _)| s == 200) {
                return Ok(());
            }
            if self.servers.start_failed(i) || t0.elapsed() > limit {
                return Err(DbError::NotReady {
                    node: super::name_of(i),
                    secs: t0.elapsed().as_secs(),
                    log: self.log_path(i),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the replicator thread: every [`ROUND`], each link not cut
    /// asks its `to` node to pull from its `from` URL once.
    fn start_replicator(&mut self) {
        let targets: Vec<SocketAddr> = (0..self.spec.nodes).map(|i| self.addr(i)).collect();
        let (links, cut, stop) = (self.links.clone(), self.cut.clone(), self.stop.clone());
        self.replicator = Some(std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                while !stop.load(Ordering::SeqCst) {
                    let round: Vec<_> = {
                        let cut = cut.lock().unwrap_or_else(|p| p.into_inner());
                        links
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .iter()
                            .filter(|(l, _)| !cut.contains(l))
                            .cloned()
                            .collect()
                    };
                    // One pull at a time into each node (nodes in
                    // parallel): pouchdb-server applies two replications
                    // into one database concurrently without merging
                    // their revision trees safely (docs/real-systems.md).
                    let mut by_target: Vec<Vec<String>> = vec![Vec::new(); targets.len()];
                    for ((_, to), source) in round {
                        by_target[to].push(source);
                    }
                    let pulls = by_target.into_iter().enumerate().map(|(to, sources)| {
                        let target = targets[to];
                        async move {
                            for source in sources {
                                let body = serde_json::json!({
                                    "source": source,
                                    "target": format!("http://{target}/{DB}"),
                                });
                                let _ = http(
                                    target,
                                    "POST",
                                    "/_replicate",
                                    Some(&body),
                                    Duration::from_secs(2),
                                )
                                .await;
                            }
                        }
                    });
                    futures_join_all(pulls).await;
                    tokio::time::sleep(ROUND).await;
                }
            });
        }));
    }

    fn stop_replicator(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.replicator.take() {
            let _ = h.join();
        }
    }
}

/// The preload that keeps a pouchdb-server up when it throws where nothing
/// catches. pouchdb-server 4.2.0 does so in two ways (measured; both exit
/// Node.js without it): a failed replication's `error` event is emitted
/// with no listener (every node exited after a proxy cut reset its
/// continuous replications, and after one peer's exit reset a one-shot
/// `/_replicate` round's connections), and its changes feed reads a
/// document that is not there under concurrent writes (`TypeError: Cannot
/// read properties of undefined (reading '_rev')` in pouchdb-core's
/// `processChange`, 1 no-fault list-append run in 24). With the servers
/// kept up, the run can read them and show what the system does; what was
/// caught is reported ([`kept_alive`]). The first stack frame says where.
const KEEP_ALIVE: &str = "process.on('uncaughtException', (e) => {\n  \
var at = String(e && e.stack || '').split('\\n').filter((l) => /^\\s+at /.test(l))[0];\n  \
console.error('ladon: uncaught exception (pouchdb-server would have exited): ' + \
String(e && e.message || e).split('\\n')[0] + (at ? ' (' + at.trim() + ')' : ''));\n});\n";

/// Where [`KEEP_ALIVE`] is written, in the cluster's root.
const KEEP_ALIVE_FILE: &str = "ladon-keep-alive.js";

/// What [`KEEP_ALIVE`] caught on node `node`, from its log: a count and
/// the first error. With continuous replication, the link whose error it
/// was is gone for good (never restarted); with rounds, the next round
/// replicates again.
fn kept_alive(node: &str, log: &str, replication: Replication) -> Option<String> {
    const MARK: &str = "ladon: uncaught exception (pouchdb-server would have exited): ";
    let mut caught = log.lines().filter_map(|l| l.strip_prefix(MARK));
    let first = caught.next()?;
    let more = caught.count();
    let after = match replication {
        Replication::Continuous => {
            "; a continuous replication whose error it was is gone and is never restarted"
        }
        Replication::Rounds => "",
    };
    Some(format!(
        "{node}: {} uncaught error{} that would have stopped pouchdb-server \
         (Ladon's keep-alive kept it up{after}); the first: {first}",
        more + 1,
        if more == 0 { "" } else { "s" }
    ))
}

/// Runs every future to completion, concurrently (no extra crate for it).
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    for h in handles {
        let _ = h.await;
    }
}

impl Database for Couch {
    fn name(&self) -> &'static str {
        "couchdb"
    }

    fn nodes(&self) -> Vec<String> {
        (0..self.spec.nodes).map(super::name_of).collect()
    }

    fn enable_clock_faults(&mut self, library: &Path) -> Result<(), DbError> {
        self.servers.enable_clock_faults(library)
    }

    fn set_clock(&self, i: usize, offset_ns: i64) -> Result<(), DbError> {
        self.servers.set_clock(i, offset_ns)
    }

    fn start_nodes(&mut self) -> Result<(), DbError> {
        self.servers.create_root("ladon-couchdb-")?;
        self.ports = super::free_ports(self.spec.nodes)?;
        for i in 0..self.spec.nodes {
            let d = self.node_dir(i);
            std::fs::create_dir_all(&d).map_err(DbError::io(format!("create {}", d.display())))?;
        }
        let f = self.root().join(KEEP_ALIVE_FILE);
        std::fs::write(&f, KEEP_ALIVE).map_err(DbError::io(format!("write {}", f.display())))?;
        RunAs::chown(self.run_as, self.root())?;
        self.servers.make_clocks()?;
        for i in 0..self.spec.nodes {
            self.start(i)?;
        }
        Ok(())
    }

    fn replicate(&mut self, via: LinkAddr<'_>) -> Result<(), DbError> {
        let links: Vec<_> = super::replication_links(self.spec.topology, self.spec.nodes)
            .into_iter()
            .map(|l| ((l.from, l.to), format!("http://{}/{DB}", via(l.from, l.to))))
            .collect();
        *self.links.lock().unwrap_or_else(|p| p.into_inner()) = links.clone();
        self.stop.store(false, Ordering::SeqCst);
        match self.replication {
            Replication::Rounds => self.start_replicator(),
            Replication::Continuous => {
                for ((_, to), source) in links {
                    let body = serde_json::json!({
                        "source": source,
                        "target": format!("http://{}/{DB}", self.addr(to)),
                        "continuous": true,
                    });
                    let (status, answer) = self.call(to, "POST", "/_replicate", Some(body))?;
                    if !(200..300).contains(&status) {
                        return Err(DbError::Command {
                            node: super::name_of(to),
                            command: "POST /_replicate (continuous)".into(),
                            output: format!("{status}: {answer}"),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn partitioned(&mut self, blocked: &BTreeSet<(usize, usize)>) {
        *self.cut.lock().unwrap_or_else(|p| p.into_inner()) = blocked.clone();
    }

    fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::new(self.spec.ip(i), self.ports[i])
    }

    fn connect(
        &self,
        i: usize,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Box<dyn DbClient>, String>> {
        let addr = self.addr(i);
        Box::pin(async move {
            CouchClient::connect(addr, timeout)
                .await
                .map(|c| Box::new(c) as Box<dyn DbClient>)
        })
    }

    fn kill(&mut self, i: usize) -> Result<(), DbError> {
        self.servers.kill(i);
        Ok(())
    }

    fn restart(&mut self, i: usize) -> Result<(), DbError> {
        if self.servers.is_up(i) {
            return Ok(());
        }
        self.start(i)
    }

    fn is_up(&self, i: usize) -> bool {
        self.servers.is_up(i)
    }

    fn pause(&mut self, i: usize) -> Result<(), DbError> {
        self.servers.pause(i);
        Ok(())
    }

    fn resume(&mut self, i: usize) -> Result<(), DbError> {
        self.servers.resume(i);
        Ok(())
    }

    fn exited_by_themselves(&mut self) -> Vec<String> {
        self.servers.exited_by_themselves()
    }

    fn replication_problems(&self) -> Vec<String> {
        (0..self.spec.nodes)
            .filter_map(|i| {
                let log = std::fs::read_to_string(self.log_path(i)).ok()?;
                kept_alive(&super::name_of(i), &log, self.replication)
            })
            .collect()
    }

    fn collect_logs(&self, into: &Path) -> Result<(), DbError> {
        let logs: Vec<_> = (0..self.spec.nodes)
            .map(|i| (super::name_of(i), self.log_path(i)))
            .collect();
        super::append_logs(&logs, into)
    }

    fn teardown(&mut self) -> Result<(), DbError> {
        self.stop_replicator();
        self.servers
            .teardown(Shutdown::Signal(libc::SIGTERM, Duration::from_secs(3)))
    }
}

impl Couch {
    /// The directory the nodes run in while the cluster exists (for tests).
    pub fn data_root(&self) -> Option<PathBuf> {
        self.servers.data_root().map(Path::to_path_buf)
    }

    /// Process group ids of the running servers (for tests).
    pub fn pgids(&self) -> Vec<i32> {
        self.servers.pgids()
    }
}

impl Drop for Couch {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::{kept_alive, Replication};

    const LOG: &str = "\
pouchdb-server has started on http://10.213.1.1:5984/
ladon: uncaught exception (pouchdb-server would have exited): request to http://127.0.0.1:4001/ladon/_changes failed, reason: socket hang up
ladon: uncaught exception (pouchdb-server would have exited): second
";

    #[test]
    fn errors_the_keep_alive_caught_are_counted_with_the_first() {
        assert_eq!(
            kept_alive("n2", LOG, Replication::Continuous).as_deref(),
            Some(
                "n2: 2 uncaught errors that would have stopped pouchdb-server \
                 (Ladon's keep-alive kept it up; a continuous replication whose error it was \
                 is gone and is never restarted); the first: request to \
                 http://127.0.0.1:4001/ladon/_changes failed, reason: socket hang up"
            )
        );
        assert_eq!(
            kept_alive("n2", LOG, Replication::Rounds).as_deref(),
            Some(
                "n2: 2 uncaught errors that would have stopped pouchdb-server \
                 (Ladon's keep-alive kept it up); the first: request to \
                 http://127.0.0.1:4001/ladon/_changes failed, reason: socket hang up"
            )
        );
        assert_eq!(
            kept_alive("n1", "pouchdb-server has started\n", Replication::Rounds),
            None
        );
    }

    /// The preload is valid JavaScript that prints the message and where it
    /// was thrown, and keeps the process up (when Node.js is installed).
    #[test]
    fn the_keep_alive_prints_the_error_and_its_frame_and_keeps_node_up() {
        let dir = tempfile::tempdir().unwrap();
        let pre = dir.path().join("keep.js");
        std::fs::write(&pre, super::KEEP_ALIVE).unwrap();
        let out = match std::process::Command::new("node")
            .arg("--require")
            .arg(&pre)
            .arg("-e")
            .arg("setTimeout(() => { undefined._rev; }, 0); setTimeout(() => console.log('still up'), 50);")
            .output()
        {
            Ok(o) => o,
            Err(_) => return, // no Node.js here: the couchdb suite needs it anyway
        };
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "still up\n");
        assert!(
            err.starts_with(
                "ladon: uncaught exception (pouchdb-server would have exited): \
                 Cannot read properties of undefined (reading '_rev') (at Timeout._onTimeout ("
            ),
            "{err}"
        );
    }
}
