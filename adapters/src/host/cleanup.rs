//! Emergency cleanup of every process Ladon started for nodes, on this
//! machine or on a remote host: the registry of live process groups and
//! remote nodes, the environment marker their descendants carry, and
//! [`kill_all`] for panics and signals. Below both the process adapter
//! (`process::child`) and the hosts' SSH master connections, which
//! register here.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::Host;

/// Process groups of children still alive, for emergency cleanup, with
/// each node's environment marker.
static LIVE_GROUPS: Mutex<BTreeMap<i32, String>> = Mutex::new(BTreeMap::new());

/// Nodes started on other machines, still alive: (host, pid there, marker).
pub(crate) type RemoteEntry = (Arc<dyn Host>, i32, String);
pub(crate) static LIVE_REMOTE: Mutex<Vec<RemoteEntry>> = Mutex::new(Vec::new());

/// Registers a local process group (an SSH master connection) for
/// [`kill_all`]; `marker` is the environment marker its descendants carry.
pub fn register_group(pgid: i32, marker: Option<&str>) {
    if let Ok(mut g) = LIVE_GROUPS.lock() {
        g.insert(pgid, marker.unwrap_or("").to_string());
    }
}

/// Forgets a group registered with [`register_group`].
pub fn unregister_group(pgid: i32) {
    if let Ok(mut g) = LIVE_GROUPS.lock() {
        g.remove(&pgid);
    }
}

/// The nftables table (family `inet`) holding Ladon's partitions on a
/// host (`host::nft`).
pub const NFT_TABLE: &str = "ladon_hosts";

/// A shell command that removes [`NFT_TABLE`] if it exists (succeeds
/// either way).
pub fn nft_remove_script() -> String {
    format!("nft delete table inet {NFT_TABLE} 2>/dev/null; true")
}

/// Hosts holding Ladon's nftables rules (`host::nft::Partitions`).
static LIVE_CUTS: Mutex<Vec<Arc<dyn Host>>> = Mutex::new(Vec::new());

pub(crate) fn register_cut(host: Arc<dyn Host>) {
    if let Ok(mut c) = LIVE_CUTS.lock() {
        if !c.iter().any(|h| Arc::ptr_eq(h, &host)) {
            c.push(host);
        }
    }
}

pub(crate) fn forget_cut(host: &Arc<dyn Host>) {
    if let Ok(mut c) = LIVE_CUTS.lock() {
        c.retain(|h| !Arc::ptr_eq(h, host));
    }
}

pub(crate) fn forget_remote(pid: i32, marker: &str) {
    if let Ok(mut r) = LIVE_REMOTE.lock() {
        r.retain(|(_, p, m)| !(*p == pid && m == marker));
    }
}

/// One shell script that kills a remote node's group, the node, and every
/// process carrying its marker: one round trip.
pub(crate) fn remote_kill_script(pid: i32, marker: &str) -> String {
    format!(
        "kill -s KILL -- -{pid} 2>/dev/null; kill -s KILL {pid} 2>/dev/null; {}",
        kill_marked_script(marker)
    )
}

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
    // Remote nodes first: their kill travels over the SSH master
    // connections, which are local groups killed below.
    let remote: Vec<RemoteEntry> = match LIVE_REMOTE.lock() {
        Ok(mut r) => std::mem::take(&mut *r),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    for (host, pid, marker) in &remote {
        let _ = host.run(&remote_kill_script(*pid, marker));
    }
    // Then the hosts' partitions (over the same connections).
    let cuts: Vec<Arc<dyn Host>> = match LIVE_CUTS.lock() {
        Ok(mut c) => std::mem::take(&mut *c),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    for host in &cuts {
        let _ = host.run(&nft_remove_script());
    }
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
    for (pgid, marker) in groups.iter().filter(|(_, m)| !m.is_empty()) {
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
/// other runs mid-test; there, unwinding drops each run's `NodeProcess`
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

/// A shell script that SIGKILLs every process whose environment holds
/// `LADON_NODE=<marker>` (one `grep` over `/proc`, no process per pid).
pub fn kill_marked_script(marker: &str) -> String {
    let needle = super::sh_quote(&format!("{}={marker}", MARKER_VAR));
    format!(
        "for f in $(grep -lzx {needle} /proc/[0-9]*/environ 2>/dev/null); do \
         p=${{f#/proc/}}; kill -9 ${{p%/environ}} 2>/dev/null; done; true"
    )
}
