//! The servers of one database cluster, whatever the system: the temporary
//! root their data lives in, one [`Server`] slot per node, the registry
//! entries that let a later run sweep what a killed Ladon left, and the
//! libfaketime clocks. Each [`Database`](super::Database) owns one and
//! delegates its crash, pause, clock and teardown operations to it; only
//! how a node is configured and started is the system's own.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use super::process_group::{remove_faketime_shm, signal_tree, Server};
use super::registry::Registry;
use super::{name_of, DbError};
use crate::process::clock::Faketime;

/// How [`Servers::teardown`] stops a server.
#[derive(Debug, Clone, Copy)]
pub enum Shutdown {
    /// SIGKILL at once (the data goes with the cluster).
    Kill,
    /// This signal to the leader (the server's own fast shutdown), then
    /// SIGKILL after the grace period.
    Signal(i32, Duration),
}

/// One cluster's servers and their temporary root.
pub struct Servers {
    /// What the servers are, for messages ("PostgreSQL").
    what: &'static str,
    registry: Registry,
    root: Option<tempfile::TempDir>,
    /// The root's registry entry (see [`Registry::add_root`]).
    root_entry: Option<PathBuf>,
    slots: Vec<Option<Server>>,
    faketime_library: Option<PathBuf>,
    clocks: Vec<Faketime>,
    /// Servers that exited without Ladon stopping them, said once each.
    exits: Vec<String>,
    /// Whether node `i`'s server (still in its slot) was found exited.
    found_exited: Vec<bool>,
}

impl Servers {
    /// `nodes` empty slots, with the default registry.
    pub fn new(nodes: usize, what: &'static str) -> Result<Servers, DbError> {
        Ok(Servers {
            what,
            registry: Registry::open(Registry::default_dir())?,
            root: None,
            root_entry: None,
            slots: (0..nodes).map(|_| None).collect(),
            faketime_library: None,
            clocks: Vec::new(),
            exits: Vec::new(),
            found_exited: vec![false; nodes],
        })
    }

    /// Sweeps what killed runs left behind, then creates the cluster's
    /// temporary root (`/tmp/<prefix>XXXX`) and registers it.
    pub fn create_root(&mut self, prefix: &str) -> Result<(), DbError> {
        let swept = self.registry.sweep()?;
        if !swept.killed.is_empty() {
            tracing::warn!(
                "removed {} server(s) left behind by a killed run",
                swept.killed.len()
            );
        }
        let root = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(DbError::io(format!(
                "create a temporary directory for the {} nodes",
                self.what
            )))?;
        self.root_entry = Some(self.registry.add_root(root.path())?);
        self.root = Some(root);
        Ok(())
    }

    /// The root (`/` before [`create_root`](Servers::create_root)).
    pub fn root(&self) -> &Path {
        self.root
            .as_ref()
            .map(|t| t.path())
            .unwrap_or(Path::new("/"))
    }

    /// The root while the cluster exists.
    pub fn data_root(&self) -> Option<&Path> {
        self.root.as_ref().map(|t| t.path())
    }

    /// Runs every server under libfaketime from now on (before
    /// [`make_clocks`](Servers::make_clocks)).
    pub fn enable_clock_faults(&mut self, library: &Path) -> Result<(), DbError> {
        if !library.is_file() {
            return Err(DbError::Missing {
                what: "libfaketime (for --nemesis clock)".into(),
                path: library.display().to_string(),
                install: "apt-get install faketime libfaketime".into(),
            });
        }
        self.faketime_library = Some(library.to_path_buf());
        Ok(())
    }

    /// One clock file per node in the root, when clock faults are on.
    pub fn make_clocks(&mut self) -> Result<(), DbError> {
        let Some(lib) = self.faketime_library.clone() else {
            return Ok(());
        };
        self.clocks.clear();
        for i in 0..self.slots.len() {
            let file = self.root().join(format!("{}.faketime", name_of(i)));
            let ft = Faketime::new(Some(&lib), file)
                .map_err(DbError::io(format!("{}: faketime", name_of(i))))?;
            self.clocks.push(ft);
        }
        Ok(())
    }

    /// Puts node `i`'s server under its libfaketime clock, if any. Only
    /// wall-clock time moves: timeouts and waits keep true time.
    pub fn clock_env(&self, i: usize, cmd: &mut Command) {
        if let Some(ft) = self.clocks.get(i) {
            cmd.envs(ft.env());
            cmd.env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
    }

    /// Sets node `i`'s clock to true time plus `offset_ns`.
    pub fn set_clock(&self, i: usize, offset_ns: i64) -> Result<(), DbError> {
        let ft = self.clocks.get(i).ok_or_else(|| {
            DbError::Refused(format!("{}: clock faults are not enabled", name_of(i)))
        })?;
        ft.set_offset_ns(offset_ns).map_err(DbError::io(format!(
            "{}: write {}",
            name_of(i),
            ft.timestamp_file.display()
        )))
    }

    /// Node `i` now runs `server`; `marker` is a path on its command line
    /// by which the registry's sweep recognises it.
    pub fn add(&mut self, i: usize, server: Server, marker: &Path) -> Result<(), DbError> {
        self.registry.add(server.pgid(), marker)?;
        self.slots[i] = Some(server);
        self.found_exited[i] = false;
        Ok(())
    }

    /// Whether node `i`'s server has exited (none running counts as
    /// exited), for waits during start.
    pub fn start_failed(&mut self, i: usize) -> bool {
        self.slots[i].as_mut().is_none_or(|s| s.exited())
    }

    /// Whether node `i` has a server (not killed by Ladon; one that exited
    /// by itself still counts).
    pub fn is_up(&self, i: usize) -> bool {
        self.slots.get(i).is_some_and(|s| s.is_some())
    }

    /// Crash: SIGKILL to node `i`'s whole process tree.
    pub fn kill(&mut self, i: usize) {
        if let Some(s) = self.slots[i].take() {
            self.forget(s.pgid());
            s.kill();
        }
    }

    /// SIGSTOP to node `i`'s process tree.
    pub fn pause(&self, i: usize) {
        if let Some(s) = &self.slots[i] {
            signal_tree(s.pgid(), libc::SIGSTOP);
        }
    }

    /// SIGCONT to node `i`'s process tree.
    pub fn resume(&self, i: usize) {
        if let Some(s) = &self.slots[i] {
            signal_tree(s.pgid(), libc::SIGCONT);
        }
    }

    fn forget(&self, pgid: i32) {
        remove_faketime_shm(pgid);
        self.registry.remove(pgid);
    }

    /// Servers that exited since the last call without Ladon stopping
    /// them, one line each (`n2's server (pouchdb-server) exited by
    /// itself (exit status 1)`). Such a server keeps its slot: Ladon did not
    /// crash it, so the node counts as up and nothing restarts it (a crash
    /// fault still may: it kills and restarts the node as usual).
    pub fn exited_by_themselves(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..self.slots.len() {
            if self.found_exited[i] {
                continue;
            }
            let Some(status) = self.slots[i].as_mut().and_then(Server::exit_status) else {
                continue;
            };
            self.found_exited[i] = true;
            let line = format!(
                "{}'s server ({}) exited by itself ({})",
                name_of(i),
                self.what,
                describe(status)
            );
            self.exits.push(line.clone());
            out.push(line);
        }
        out
    }

    /// Every exit [`exited_by_themselves`](Servers::exited_by_themselves)
    /// found so far.
    pub fn exits(&self) -> &[String] {
        &self.exits
    }

    /// Stops every server as `how` says and removes the root. Idempotent.
    pub fn teardown(&mut self, how: Shutdown) -> Result<(), DbError> {
        for i in 0..self.slots.len() {
            if let Some(s) = self.slots[i].take() {
                self.forget(s.pgid());
                match how {
                    Shutdown::Kill => s.kill(),
                    Shutdown::Signal(sig, grace) => s.stop(sig, grace),
                }
            }
        }
        if let Some(root) = self.root.take() {
            root.close().map_err(DbError::io(format!(
                "remove the {} nodes' directory",
                self.what
            )))?;
        }
        if let Some(entry) = self.root_entry.take() {
            self.registry.remove_root(&entry);
        }
        Ok(())
    }

    /// Process group ids of the running servers (for tests).
    pub fn pgids(&self) -> Vec<i32> {
        self.slots.iter().flatten().map(|s| s.pgid()).collect()
    }

    /// Leaks the servers and the root, as a Ladon killed with SIGKILL
    /// would (for tests of the registry sweep).
    pub fn abandon(&mut self) {
        for s in self.slots.iter_mut() {
            std::mem::forget(s.take());
        }
        if let Some(root) = self.root.take() {
            let _ = root.keep();
        }
        self.root_entry = None;
    }
}

/// "exit status 1" or "killed by signal 9 (SIGKILL)".
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}{}", signal_name(sig)),
        _ => status.to_string(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGBUS => " (SIGBUS)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_that_exits_by_itself_is_reported_once_with_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let mut servers = Servers {
            registry: Registry::open(dir.path().join("registry")).unwrap(),
            ..Servers::new(2, "test").unwrap()
        };
        let log = dir.path().join("n1.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 3"]);
        let s = Server::spawn(cmd, &log, "n1").unwrap();
        servers.add(0, s, dir.path()).unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let s = Server::spawn(cmd, &dir.path().join("n2.log"), "n2").unwrap();
        servers.add(1, s, dir.path()).unwrap();
        let t0 = std::time::Instant::now();
        let mut found = Vec::new();
        while found.is_empty() && t0.elapsed() < Duration::from_secs(10) {
            found = servers.exited_by_themselves();
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            found,
            ["n1's server (test) exited by itself (exit status 3)"]
        );
        // Still in its slot: nothing restarts a server Ladon did not crash.
        assert!(servers.is_up(0));
        assert!(servers.is_up(1));
        assert!(servers.exited_by_themselves().is_empty());
        // A crash Ladon caused is not an exit by itself.
        servers.kill(1);
        assert!(servers.exited_by_themselves().is_empty());
        assert_eq!(servers.exits().len(), 1);
        servers.teardown(Shutdown::Kill).unwrap();
    }
}
