//! A cluster's servers on other machines (`ladon run --hosts FILE` with a
//! database adapter; docs/remote-hosts.md). Each node's server runs on its
//! host as a daemon of its own session (`setsid`), started and faulted
//! through the host's [`Host`] (the SSH control shell: one round trip per
//! action), never as root: when the login is root the server and its
//! tools run as the system's server user (`setpriv`). Everything of node
//! `nK` lives in `<workdir>/nK` on its host: the data (`db/`), the server's
//! log (`nK.log`, fetched back at the end), its pid file (`nK.pid`, which
//! the next run's preflight reads to kill a server a SIGKILLed Ladon left)
//! and its libfaketime file.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{name_of, DbError};
use crate::host::cleanup::{forget_remote, remote_kill_script, LIVE_REMOTE};
use crate::host::{sh_quote, Host};
use crate::process::clock::Faketime;

/// One node's place: its host, its directory there, and where its server
/// listens.
#[derive(Debug, Clone)]
pub struct RemoteNode {
    pub host: Arc<dyn Host>,
    /// `<workdir>/<node>`, absolute, on the host.
    pub dir: String,
    /// The host's address (the server listens on it; peers and clients
    /// connect to it).
    pub addr: IpAddr,
    pub port: u16,
    /// The user the server runs as when the login (after `sudo`) is root
    /// (`None`: the login user).
    pub run_as: Option<String>,
}

impl RemoteNode {
    /// `script` as the server user (`setpriv` when the login is root).
    pub fn as_server_user(&self, script: &str) -> String {
        match &self.run_as {
            Some(u) => format!(
                "setpriv --reuid={u} --regid={u} --init-groups -- sh -c {}",
                sh_quote(script)
            ),
            None => script.to_string(),
        }
    }
}

/// A started server: its pid on the host (the leader of its own session
/// and process group) and its `LADON_NODE` marker.
#[derive(Debug, Clone)]
struct Running {
    pid: i32,
    marker: String,
}

/// The servers of one cluster on its hosts.
pub struct RemoteServers {
    /// What the servers are, for messages ("PostgreSQL").
    what: &'static str,
    pub nodes: Vec<RemoteNode>,
    running: Vec<Option<Running>>,
    faketime_library: Option<PathBuf>,
    clocks: Vec<Faketime>,
    found_exited: Vec<bool>,
    /// When [`exited_by_themselves`](RemoteServers::exited_by_themselves)
    /// last asked the hosts (at most once a second: each ask is a round
    /// trip per host).
    last_poll: Option<Instant>,
    /// [`teardown`](RemoteServers::teardown) ran and nothing started
    /// since: a second one (on drop, after the run closed the hosts'
    /// connections) has nothing to do.
    torn_down: bool,
}

impl RemoteServers {
    pub fn new(what: &'static str, nodes: Vec<RemoteNode>) -> RemoteServers {
        let n = nodes.len();
        RemoteServers {
            what,
            nodes,
            running: vec![None; n],
            faketime_library: None,
            clocks: Vec::new(),
            found_exited: vec![false; n],
            last_poll: None,
            torn_down: false,
        }
    }

    /// Runs `script` on node `i`'s host, in its directory; its stdout, or
    /// an error naming the node, the host, `what` and stderr's last lines.
    pub fn run(&self, i: usize, what: &str, script: &str) -> Result<String, DbError> {
        let node = &self.nodes[i];
        let full = format!("cd {} && {script}", sh_quote(&node.dir));
        let out = node.host.run(&full).map_err(DbError::io(format!(
            "{} on {}: {what}",
            name_of(i),
            node.host.name()
        )))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
            return Err(DbError::Command {
                node: format!("{} on {}", name_of(i), node.host.name()),
                command: what.to_string(),
                output: tail[tail.len().saturating_sub(3)..].join(" / "),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    /// [`run`](RemoteServers::run) as the server user.
    pub fn run_as_server(&self, i: usize, what: &str, script: &str) -> Result<String, DbError> {
        self.run(i, what, &self.nodes[i].as_server_user(script))
    }

    /// Empties every node's directory of an earlier cluster's files and
    /// makes `db/` there, owned by the server user; in parallel over nodes.
    pub fn prepare_dirs(&mut self) -> Result<(), DbError> {
        self.torn_down = false;
        self.each(|i| {
            let n = &self.nodes[i];
            let own = match &n.run_as {
                Some(u) => format!(" && chown {u}: db"),
                None => String::new(),
            };
            let name = name_of(i);
            self.run(
                i,
                "prepare the node's directory",
                &format!(
                    "rm -rf db {name}.log {name}.pid {name}.faketime {name}.faketime.tmp && \
                     chmod 755 . && mkdir db{own}"
                ),
            )
            .map(|_| ())
        })
    }

    /// Runs `f` for every node at once (one thread each: the hosts answer
    /// in parallel); the first error in node order.
    pub fn each(&self, f: impl Fn(usize) -> Result<(), DbError> + Sync) -> Result<(), DbError> {
        let results: Vec<Result<(), DbError>> = std::thread::scope(|s| {
            let jobs: Vec<_> = (0..self.nodes.len())
                .map(|i| {
                    let f = &f;
                    s.spawn(move || f(i))
                })
                .collect();
            jobs.into_iter()
                .map(|j| {
                    j.join()
                        .unwrap_or_else(|_| Err(DbError::Refused("a node's setup panicked".into())))
                })
                .collect()
        });
        results.into_iter().collect()
    }

    /// Runs every server under libfaketime (`library`, a path on the
    /// hosts) from now on.
    pub fn enable_clock_faults(&mut self, library: &Path) {
        self.faketime_library = Some(library.to_path_buf());
    }

    /// One clock file per node in its directory, when clock faults are on.
    pub fn make_clocks(&mut self) -> Result<(), DbError> {
        let Some(lib) = self.faketime_library.clone() else {
            return Ok(());
        };
        self.clocks.clear();
        for (i, n) in self.nodes.iter().enumerate() {
            let file = format!("{}/{}.faketime", n.dir, name_of(i));
            let ft = Faketime::remote(n.host.clone(), Some(&lib), file)
                .map_err(DbError::io(format!("{}: libfaketime", name_of(i))))?;
            self.clocks.push(ft);
        }
        Ok(())
    }

    /// Sets node `i`'s clock to true time plus `offset_ns`.
    pub fn set_clock(&self, i: usize, offset_ns: i64) -> Result<(), DbError> {
        let ft = self.clocks.get(i).ok_or_else(|| {
            DbError::Refused(format!("{}: clock faults are not enabled", name_of(i)))
        })?;
        ft.set_offset_ns(offset_ns)
            .map_err(DbError::io(format!("{}: set its clock", name_of(i))))
    }

    /// Starts node `i`'s server: `argv` (the program, a path on the host,
    /// then its arguments) as a daemon of its own session, as the server
    /// user, under its clock when clock faults are on, its output appended
    /// to `nK.log`. Returns once its pid is known.
    pub fn start(&mut self, i: usize, argv: &[String]) -> Result<(), DbError> {
        let name = name_of(i);
        let marker = format!("{}.{name}", crate::process::child::new_marker());
        // The server leads its own session and process group (`setsid`,
        // which does not fork for a background job: the pid stays `$!`),
        // so signals to the group reach its workers; its parent is a shell
        // that waits for it, so that a killed server is reaped at once (a
        // server orphaned to a PID 1 that does not reap, as in some
        // containers, stays a zombie, and PostgreSQL then refuses to start
        // again on its data: its lock file's pid still "runs").
        let mut server = String::from("setsid env ");
        server.push_str(&sh_quote(&format!(
            "{}={marker}",
            crate::host::cleanup::MARKER_VAR
        )));
        // The user first, then libfaketime: preloaded as root, it would
        // make its semaphore as root, which the server cannot open.
        if let Some(u) = &self.nodes[i].run_as {
            server.push_str(&format!(
                " setpriv --reuid={u} --regid={u} --init-groups -- env"
            ));
        }
        if let Some(ft) = self.clocks.get(i) {
            for (k, v) in ft.env() {
                server.push(' ');
                server.push_str(&sh_quote(&format!("{k}={v}")));
            }
            server.push_str(" FAKETIME_DONT_FAKE_MONOTONIC=1");
        }
        for a in argv {
            server.push(' ');
            server.push_str(&sh_quote(a));
        }
        let waiter = format!("{server} & echo \"$! {marker}\" > {name}.pid; wait");
        let script = format!(
            "rm -f {name}.pid && setsid -f sh -c {} >> {name}.log 2>&1 < /dev/null; \
             k=0; while [ ! -s {name}.pid ] && [ $k -lt 200 ]; do sleep 0.01; k=$((k+1)); done; \
             cat {name}.pid",
            sh_quote(&waiter)
        );
        let out = self.run(i, &format!("start {}", argv.join(" ")), &script)?;
        let pid = out
            .split_whitespace()
            .next()
            .and_then(|p| p.parse::<i32>().ok())
            .ok_or_else(|| {
                DbError::Refused(format!(
                    "{name} on {}: the server's pid file said {out:?}",
                    self.nodes[i].host.name()
                ))
            })?;
        if let Ok(mut live) = LIVE_REMOTE.lock() {
            live.push((self.nodes[i].host.clone(), pid, marker.clone()));
        }
        self.running[i] = Some(Running { pid, marker });
        self.torn_down = false;
        self.found_exited[i] = false;
        Ok(())
    }

    /// Whether node `i`'s server still runs (asked of its host).
    pub fn alive(&self, i: usize) -> bool {
        let Some(r) = &self.running[i] else {
            return false;
        };
        self.run(i, "check the server", &format!("kill -0 {}", r.pid))
            .is_ok()
    }

    /// Whether node `i` has a server (not killed by Ladon).
    pub fn is_up(&self, i: usize) -> bool {
        self.running.get(i).is_some_and(|r| r.is_some())
    }

    /// Crash: SIGKILL to node `i`'s process group and every process with
    /// its marker; returns once they are gone.
    pub fn kill(&mut self, i: usize) {
        if let Some(r) = self.running[i].take() {
            let host = &self.nodes[i].host;
            let _ = host.run(&format!(
                "{} k=0; while kill -0 {p} 2>/dev/null && [ $k -lt 100 ]; do sleep 0.02; k=$((k+1)); done; {}",
                remote_kill_script(r.pid, &r.marker),
                faketime_shm_script(r.pid),
                p = r.pid
            ));
            forget_remote(r.pid, &r.marker);
        }
    }

    /// SIGSTOP (or SIGCONT) to node `i`'s process group.
    pub fn signal(&self, i: usize, sig: i32) {
        if let Some(r) = &self.running[i] {
            if let Err(e) = self.nodes[i].host.signal(r.pid, sig) {
                tracing::warn!("{}: {e}", name_of(i));
            }
        }
    }

    /// Servers that exited since the last call without Ladon stopping
    /// them, one line each; asks the hosts at most once a second.
    pub fn exited_by_themselves(&mut self) -> Vec<String> {
        if self
            .last_poll
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return Vec::new();
        }
        self.last_poll = Some(Instant::now());
        let mut out = Vec::new();
        for i in 0..self.nodes.len() {
            if self.found_exited[i] || self.running[i].is_none() || self.alive(i) {
                continue;
            }
            self.found_exited[i] = true;
            let line = format!(
                "{}'s server ({}) on {} exited by itself (see its log)",
                name_of(i),
                self.what,
                self.nodes[i].host.name()
            );
            out.push(line);
        }
        out
    }

    /// Node `i`'s server log, read from its host ("" when there is none).
    pub fn log(&self, i: usize) -> String {
        self.run(
            i,
            "read the server log",
            &format!("cat {}.log 2>/dev/null; true", name_of(i)),
        )
        .unwrap_or_default()
    }

    /// Appends every node's server log, fetched from its host, to
    /// `into/<node>.log`.
    pub fn collect_logs(&self, into: &Path) -> Result<(), DbError> {
        std::fs::create_dir_all(into).map_err(DbError::io(format!("create {}", into.display())))?;
        for i in 0..self.nodes.len() {
            let text = self.log(i);
            if text.is_empty() {
                continue;
            }
            let to = into.join(format!("{}.log", name_of(i)));
            // `log` comes without its last newline.
            super::append_to_log(&to, &mut format!("{text}\n").as_bytes())
                .map_err(DbError::io(format!("append to {}", to.display())))?;
        }
        Ok(())
    }

    /// Stops every server (`signal` to its group, SIGKILL after `grace`)
    /// and removes what the cluster made in the nodes' directories, one
    /// command per node, the nodes in parallel. Idempotent.
    pub fn teardown(&mut self, signal: &str, grace: Duration) -> Result<(), DbError> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        let running = std::mem::replace(&mut self.running, vec![None; self.nodes.len()]);
        let steps = (grace.as_millis() / 100).max(1);
        let r = self.each(|i| {
            let name = name_of(i);
            let mut script = String::new();
            if let Some(r) = &running[i] {
                let p = r.pid;
                script.push_str(&format!(
                    "kill -s CONT -- -{p} 2>/dev/null; kill -s {signal} -- -{p} 2>/dev/null; k=0; \
                     while kill -0 {p} 2>/dev/null && [ $k -lt {steps} ]; do sleep 0.1; k=$((k+1)); done; {} {} ",
                    remote_kill_script(p, &r.marker),
                    faketime_shm_script(p)
                ));
            }
            script.push_str(&format!(
                "rm -rf db {name}.log {name}.pid {name}.faketime {name}.faketime.tmp"
            ));
            self.run(i, "stop the server and remove its data", &script)
                .map(|_| ())
        });
        for r in running.iter().flatten() {
            forget_remote(r.pid, &r.marker);
        }
        self.clocks.clear();
        r
    }
}

/// Removes the shared-memory files libfaketime made for the server
/// process `pid` (it removes them at exit, but not after a SIGKILL).
fn faketime_shm_script(pid: i32) -> String {
    format!("rm -f /dev/shm/faketime_shm_{pid} /dev/shm/sem.faketime_sem_{pid};")
}
