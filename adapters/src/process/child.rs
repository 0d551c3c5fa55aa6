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

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;

use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::clock::Faketime;

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
}

/// Process groups of children still alive, for emergency cleanup, with
/// each node's environment marker.
static LIVE_GROUPS: Mutex<BTreeMap<i32, String>> = Mutex::new(BTreeMap::new());

/// The environment variable every node and its descendants carry.
pub const MARKER_VAR: &str = "LADON_NODE";

/// Makes this process a child subreaper: orphaned descendants of nodes
/// (a daemonized grandchild) are reparented to Ladon, not to init, so
/// Ladon can kill and reap them. Harmless to call more than once.
pub fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER only sets a process attribute.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

fn new_marker() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    format!(
        "{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Processes whose environment holds `LADON_NODE=<marker>` (other users'
/// processes cannot be read, and are not ours anyway).
pub fn marked_processes(marker: &str) -> Vec<i32> {
    let needle = format!("{MARKER_VAR}={marker}\0");
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                out.push(pid);
            }
        }
    }
    out
}

/// SIGKILLs every process carrying `marker` (repeating while new ones
/// appear, for a node forking as it dies) and reaps those that are Ladon's
/// children (orphans reparented to the subreaper). `node` (the node process
/// itself, reaped by its owner) is killed but not reaped here.
pub fn kill_marked(marker: &str, node: i32) {
    for _ in 0..5 {
        let pids = marked_processes(marker);
        if pids.is_empty() {
            return;
        }
        for &pid in &pids {
            // SAFETY: kill(2) and a non-blocking waitpid(2) on one pid touch no memory of ours.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        for &pid in pids.iter().filter(|&&p| p != node) {
            reap(pid);
        }
    }
}

/// Reaps `pid` if it is our child and has died (waits briefly for a
/// SIGKILLed process to die).
fn reap(pid: i32) {
    for _ in 0..50 {
        let mut status = 0;
        // SAFETY: waitpid on one pid with WNOHANG; `status` is a local.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc != 0 {
            return; // reaped, or not our child (ECHILD)
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// SIGKILLs every child process group still registered. Safe to call from a
/// panic hook or signal handler task, and more than once.
pub fn kill_all() {
    let groups: Vec<(i32, String)> = match LIVE_GROUPS.lock() {
        Ok(mut g) => std::mem::take(&mut *g).into_iter().collect(),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner())
            .into_iter()
            .collect(),
    };
    for (pgid, _) in &groups {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    for (pgid, marker) in &groups {
        kill_marked(marker, *pgid);
    }
}

/// Number of child groups Ladon still considers alive (for tests).
pub fn live_count() -> usize {
    LIVE_GROUPS.lock().map(|g| g.len()).unwrap_or(0)
}

/// Installs (once) a panic hook that kills every child before the default
/// hook runs, so a panicking harness leaves no node behind.
///
/// For a process that runs one live test at a time (the `ladon` CLI) only:
/// the hook kills the nodes of *every* run in the process, whichever thread
/// panicked. Where several runs share a process (test binaries run tests on
/// parallel threads), one failing assertion would SIGKILL the nodes of the
/// other runs mid-test; there, unwinding drops each run's [`NodeProcess`]
/// values, which kill and reap their own groups.
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            kill_all();
            prev(info);
        }));
    });
}

/// A running node process. Dropping it kills the whole process group.
pub struct NodeProcess {
    pub node: String,
    pub pid: i32,
    child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    exited: bool,
    /// This node's `LADON_NODE` environment marker.
    pub marker: String,
}

impl NodeProcess {
    pub fn spawn(spec: &ChildSpec) -> Result<NodeProcess, SpawnError> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .map_err(|source| SpawnError::Log {
                node: spec.node.clone(),
                path: spec.log.clone(),
                source,
            })?;
        let mut cmd = Command::new(&spec.bin);
        cmd.args(&spec.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .process_group(0);
        let marker = new_marker();
        cmd.env(MARKER_VAR, &marker);
        if let Some(ft) = &spec.faketime {
            for (k, v) in ft.env() {
                cmd.env(k, v);
            }
        }
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| SpawnError::Spawn {
            node: spec.node.clone(),
            bin: spec.bin.clone(),
            source,
        })?;
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        if let Ok(mut g) = LIVE_GROUPS.lock() {
            g.insert(pid, marker.clone());
        }
        Ok(NodeProcess {
            node: spec.node.clone(),
            pid,
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            child,
            exited: false,
            marker,
        })
    }

    fn signal_group(&self, sig: i32) -> io::Result<()> {
        if self.exited || self.pid <= 0 {
            return Ok(());
        }
        // SAFETY: see kill_all.
        let rc = unsafe { libc::kill(-self.pid, sig) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
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
        let _ = self.signal_group(libc::SIGKILL);
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
            // SAFETY: see kill_all.
            unsafe {
                libc::kill(-self.pid, libc::SIGKILL);
            }
            kill_marked(&self.marker, self.pid);
            if let Ok(mut g) = LIVE_GROUPS.lock() {
                g.remove(&self.pid);
            }
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if !self.exited {
            let _ = self.signal_group(libc::SIGKILL);
            kill_marked(&self.marker, self.pid);
            // Reap if it is already gone; otherwise tokio's kill_on_drop reaps it.
            let _ = self.child.try_wait();
            if let Ok(mut g) = LIVE_GROUPS.lock() {
                g.remove(&self.pid);
            }
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
