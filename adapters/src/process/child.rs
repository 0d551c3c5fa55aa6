//! Child processes, one per node: spawning with stdin/stdout piped and stderr
//! appended to the node's log, signals (`crash` = SIGKILL, `pause` =
//! SIGSTOP, `resume` = SIGCONT), and reaping on every exit path.
//!
//! Each child runs in its own process group (so a terminal's Ctrl-C reaches
//! only Ladon, which then kills the groups itself) and asks the kernel to
//! SIGKILL it should Ladon die (`PR_SET_PDEATHSIG`). Every live group is in a
//! process-wide registry that [`kill_all`] empties: the CLI's Ctrl-C handler and
//! panic hook call it, and dropping a [`NodeProcess`] kills its group.
//!
//! A node may also leave its group: a daemon made by `setsid` and a double
//! fork. Every node is started with a marker in its environment
//! (`LADON_NODE=<ladon pid>.<n>`), which its descendants inherit; when the
//! node is stopped, every process carrying its marker is killed too, and
//! Ladon, a child subreaper ([`become_subreaper`]), reaps those that were
//! reparented to it. (A descendant that clears its environment escapes the
//! marker; it still dies with the group unless it also left the group.)

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;

use tokio::process::{Child, ChildStdin, ChildStdout};

use super::clock::Faketime;
pub use crate::host::cleanup::{
    become_subreaper, install_panic_hook, kill_all, kill_marked, live_count, marked_processes,
    register_group, unregister_group, MARKER_VAR,
};
use crate::host::cleanup::{forget_remote, remote_kill_script, LIVE_REMOTE};
use crate::host::{Host, LocalHost, StartSpec};

/// What to run for one node.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Node name, for errors and logs.
    pub node: String,
    pub bin: PathBuf,
    pub args: Vec<String>,
    /// stderr is appended here (restarts keep appending).
    pub log: PathBuf,
    /// Clock control through libfaketime, if enabled.
    pub faketime: Option<Faketime>,
    /// Where the node runs when not on this machine (`--hosts`).
    pub remote: Option<RemoteNode>,
}

/// A node on another machine: its host, its directory there and the path
/// of its (uploaded) program there.
#[derive(Debug, Clone)]
pub struct RemoteNode {
    pub host: Arc<dyn Host>,
    pub dir: String,
    pub program: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("node {node}: cannot open log {}: {source}", path.display())]
    Log {
        node: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("node {node}: cannot start {}: {source}", bin.display())]
    Spawn {
        node: String,
        bin: PathBuf,
        source: io::Error,
    },
    #[error("node {node} on {host}: cannot start {program}: {source}")]
    Remote {
        node: String,
        host: String,
        program: String,
        source: io::Error,
    },
}

/// A `LADON_NODE` marker no other process of this run carries: this
/// process's pid and a counter.
pub(crate) fn new_marker() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    format!(
        "{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A running node process. Dropping it kills the whole process group.
pub struct NodeProcess {
    pub node: String,
    /// The local child's pid (the node itself, or the `ssh` client carrying
    /// a remote node's stdin/stdout), leading its own process group.
    pub pid: i32,
    child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    exited: bool,
    /// This node's `LADON_NODE` environment marker.
    pub marker: String,
    /// Where the node runs, and its pid there (equal to `pid` locally).
    host: Arc<dyn Host>,
    pub host_pid: i32,
    /// The remote kill was sent ([`NodeProcess::kill_remote`]).
    remote_killed: bool,
}

impl NodeProcess {
    /// Starts the node on its host (this machine, or `spec.remote`'s).
    pub async fn spawn(spec: &ChildSpec) -> Result<NodeProcess, SpawnError> {
        let marker = new_marker();
        let env = spec
            .faketime
            .as_ref()
            .map(Faketime::env)
            .unwrap_or_default();
        let (host, start): (Arc<dyn Host>, StartSpec) = match &spec.remote {
            None => {
                // Fail on the log first, with its own error.
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&spec.log)
                    .map_err(|source| SpawnError::Log {
                        node: spec.node.clone(),
                        path: spec.log.clone(),
                        source,
                    })?;
                (
                    Arc::new(LocalHost) as Arc<dyn Host>,
                    StartSpec {
                        node: spec.node.clone(),
                        program: spec.bin.display().to_string(),
                        args: spec.args.clone(),
                        env,
                        dir: None,
                        log: spec.log.clone(),
                        pid_file: None,
                        marker: marker.clone(),
                    },
                )
            }
            Some(r) => (
                r.host.clone(),
                StartSpec {
                    node: spec.node.clone(),
                    program: r.program.clone(),
                    args: spec.args.clone(),
                    env,
                    dir: Some(r.dir.clone()),
                    log: spec.log.clone(),
                    pid_file: Some(format!("{}/{}.pid", r.dir, spec.node)),
                    marker: marker.clone(),
                },
            ),
        };
        let mut started = host
            .start(&start)
            .await
            .map_err(|source| match &spec.remote {
                None => SpawnError::Spawn {
                    node: spec.node.clone(),
                    bin: spec.bin.clone(),
                    source,
                },
                Some(r) => SpawnError::Remote {
                    node: spec.node.clone(),
                    host: r.host.name().to_string(),
                    program: r.program.clone(),
                    source,
                },
            })?;
        let pid = started.child.id().map(|p| p as i32).unwrap_or(0);
        register_group(pid, Some(&marker));
        if host.is_remote() {
            if let Ok(mut r) = LIVE_REMOTE.lock() {
                r.push((host.clone(), started.pid, marker.clone()));
            }
        }
        Ok(NodeProcess {
            node: spec.node.clone(),
            pid,
            stdin: started.child.stdin.take(),
            stdout: started.child.stdout.take(),
            child: started.child,
            exited: false,
            marker,
            host_pid: started.pid,
            host,
            remote_killed: false,
        })
    }

    /// Where the node runs (`local`, `user@address:port`).
    pub fn host_name(&self) -> &str {
        self.host.name()
    }

    fn signal_group(&self, sig: i32) -> io::Result<()> {
        if self.exited || self.pid <= 0 {
            return Ok(());
        }
        if self.host.is_remote() {
            return self.host.signal(self.host_pid, sig);
        }
        // SAFETY: see kill_all.
        let rc = unsafe { libc::kill(-self.pid, sig) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// A remote node: kill it, its group and its marked descendants on its
    /// host (one round trip), and forget it. Once: `kill` and the reaping
    /// after it both call this.
    fn kill_remote(&mut self) {
        if self.host.is_remote() && !self.remote_killed {
            self.remote_killed = true;
            let _ = self
                .host
                .run(&remote_kill_script(self.host_pid, &self.marker));
            forget_remote(self.host_pid, &self.marker);
        }
    }

    /// `pause`: SIGSTOP the node's process group.
    pub fn stop(&self) -> io::Result<()> {
        self.signal_group(libc::SIGSTOP)
    }

    /// `resume`: SIGCONT the node's process group.
    pub fn cont(&self) -> io::Result<()> {
        self.signal_group(libc::SIGCONT)
    }

    /// `crash`: SIGKILL the group and reap the child.
    pub async fn kill(&mut self) -> io::Result<ExitStatus> {
        if !self.exited && self.pid > 0 {
            self.kill_remote();
            // SAFETY: see kill_all (locally: the node's group, or its ssh client's).
            unsafe {
                libc::kill(-self.pid, libc::SIGKILL);
            }
        }
        self.wait().await
    }

    /// Waits for the child to exit and reaps it.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        self.mark_exited();
        Ok(status)
    }

    /// Reaps the child if it has exited, without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        let st = self.child.try_wait()?;
        if st.is_some() {
            self.mark_exited();
        }
        Ok(st)
    }

    fn mark_exited(&mut self) {
        if !self.exited {
            self.exited = true;
            // Kill stragglers the node forked into its group, then forget the group.
            self.kill_remote();
            // SAFETY: see kill_all.
            unsafe {
                libc::kill(-self.pid, libc::SIGKILL);
            }
            kill_marked(&self.marker, self.pid);
            unregister_group(self.pid);
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if !self.exited {
            self.kill_remote();
            // SAFETY: see kill_all.
            unsafe {
                libc::kill(-self.pid, libc::SIGKILL);
            }
            kill_marked(&self.marker, self.pid);
            // Reap if it is already gone; otherwise tokio's kill_on_drop reaps it.
            let _ = self.child.try_wait();
            unregister_group(self.pid);
        }
    }
}

/// Describes an exit status for a person: "exit code 3" or "signal 9 (SIGKILL)".
pub fn describe_exit(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(c) = status.code() {
        format!("exit code {c}")
    } else if let Some(s) = status.signal() {
        let name = match s {
            libc::SIGKILL => " (SIGKILL)",
            libc::SIGTERM => " (SIGTERM)",
            libc::SIGSEGV => " (SIGSEGV)",
            libc::SIGABRT => " (SIGABRT)",
            _ => "",
        };
        format!("signal {s}{name}")
    } else {
        "unknown status".into()
    }
}

/// Whether a path looks runnable, for an early, clear error.
pub fn check_executable(bin: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(bin).map_err(|e| format!("--bin {}: {e}", bin.display()))?;
    if !meta.is_file() {
        return Err(format!("--bin {}: not a file", bin.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "--bin {}: not executable (try chmod +x)",
            bin.display()
        ));
    }
    Ok(())
}
