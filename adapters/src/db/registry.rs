//! Where running clusters record themselves, so that one left behind by a
//! Ladon killed with SIGKILL is removed before the next starts.
//!
//! The registry is a directory (`$TMPDIR/ladon-db/`, or `LADON_DB_REGISTRY`)
//! with one file per server process group, named by its group id and
//! holding the node's data directory. An entry whose group is gone is
//! stale and removed; one whose group is alive but belongs to no running
//! Ladon is killed, with its data directory.
//!
//! Each cluster's root directory (data, logs, sockets, clock files) has an
//! entry too (`root.<owner pid>.<n>`), written before anything is created
//! in it: a Ladon killed while a node was being copied or started (no
//! server entry yet) still leaves nothing once the root's owner is gone.
//! Any process still running a server on a directory under that root is
//! killed first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::process_group::{group_alive, remove_faketime_shm, signal_tree, wait_group_gone};
use super::DbError;

#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
}

/// What [`Registry::sweep`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Process groups killed (their owner was gone).
    pub killed: Vec<i32>,
    /// Data directories removed.
    pub removed: Vec<PathBuf>,
}

impl Registry {
    /// The default registry.
    pub fn default_dir() -> PathBuf {
        std::env::var_os("LADON_DB_REGISTRY")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("ladon-db"))
    }

    pub fn open(dir: impl Into<PathBuf>) -> Result<Registry, DbError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(DbError::io(format!("create {}", dir.display())))?;
        Ok(Registry { dir })
    }

    /// Records server group `pgid` (owned by this process) and its data
    /// directory.
    pub fn add(&self, pgid: i32, data_dir: &Path) -> Result<(), DbError> {
        let f = self.dir.join(pgid.to_string());
        std::fs::write(
            &f,
            format!("{}\n{}\n", std::process::id(), data_dir.display()),
        )
        .map_err(DbError::io(format!("write {}", f.display())))
    }

    /// Records a cluster root directory owned by this process; returns the
    /// entry, for [`Registry::remove_root`].
    pub fn add_root(&self, root: &Path) -> Result<PathBuf, DbError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let f = self.dir.join(format!("root.{}.{n}", std::process::id()));
        std::fs::write(&f, format!("{}\n{}\n", std::process::id(), root.display()))
            .map_err(DbError::io(format!("write {}", f.display())))?;
        Ok(f)
    }

    /// Forgets a cluster root (it was removed).
    pub fn remove_root(&self, entry: &Path) {
        let _ = std::fs::remove_file(entry);
    }

    /// Forgets group `pgid` (it was stopped).
    pub fn remove(&self, pgid: i32) {
        let _ = std::fs::remove_file(self.dir.join(pgid.to_string()));
    }

    /// Kills every recorded server whose owning Ladon process is gone and
    /// removes its data directory; drops entries whose group is gone.
    pub fn sweep(&self) -> Result<Swept, DbError> {
        let mut out = Swept::default();
        let rd = std::fs::read_dir(&self.dir)
            .map_err(DbError::io(format!("read {}", self.dir.display())))?;
        for entry in rd.flatten() {
            let Some(pgid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let mut lines = text.lines();
            let owner: i32 = lines.next().and_then(|l| l.parse().ok()).unwrap_or(0);
            let data = lines.next().map(PathBuf::from);
            if owner > 0 && process_alive(owner) && owner != std::process::id() as i32 {
                continue; // another live Ladon's server
            }
            if owner == std::process::id() as i32 {
                continue; // ours, still in use
            }
            if group_alive(pgid) && data.as_ref().is_some_and(|d| group_uses(pgid, d)) {
                signal_tree(pgid, libc::SIGCONT);
                signal_tree(pgid, libc::SIGKILL);
                wait_group_gone(pgid, Duration::from_secs(10));
                out.killed.push(pgid);
            }
            // Its group is gone: so is any use of libfaketime's files.
            remove_faketime_shm(pgid);
            if let Some(d) = data {
                if d.exists() && std::fs::remove_dir_all(&d).is_ok() {
                    out.removed.push(d.clone());
                }
                // The cluster's own temporary directory (logs, sockets,
                // clock files), once its last node's entry is swept.
                if let Some(root) = d.parent().filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("ladon-"))
                }) {
                    let empty_of_nodes = std::fs::read_dir(root).is_ok_and(|rd| {
                        rd.flatten().all(|e| !e.path().join("PG_VERSION").exists())
                    });
                    if empty_of_nodes && std::fs::remove_dir_all(root).is_ok() {
                        out.removed.push(root.to_path_buf());
                    }
                }
            }
            let _ = std::fs::remove_file(entry.path());
        }
        self.sweep_roots(&mut out)?;
        Ok(out)
    }

    /// Removes the cluster roots whose owner is gone, killing any server
    /// still running on a directory under one.
    fn sweep_roots(&self, out: &mut Swept) -> Result<(), DbError> {
        let rd = std::fs::read_dir(&self.dir)
            .map_err(DbError::io(format!("read {}", self.dir.display())))?;
        for entry in rd.flatten() {
            if !entry
                .file_name()
                .to_str()
                .is_some_and(|s| s.starts_with("root."))
            {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let mut lines = text.lines();
            let owner: i32 = lines.next().and_then(|l| l.parse().ok()).unwrap_or(0);
            let Some(root) = lines.next().map(PathBuf::from) else {
                let _ = std::fs::remove_file(entry.path());
                continue;
            };
            if owner > 0 && process_alive(owner) {
                continue; // a running Ladon's (or ours)
            }
            // Scanned again until none is left: an `initdb` caught
            // mid-setup may start its next `postgres` after a scan.
            for _ in 0..10 {
                let pids = processes_under(&root);
                if pids.is_empty() {
                    break;
                }
                for pid in pids {
                    signal_tree(pid, libc::SIGCONT);
                    signal_tree(pid, libc::SIGKILL);
                    // SAFETY: a process running on this dead owner's
                    // directory (a server, or an `initdb` caught mid-setup).
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    wait_gone(pid, Duration::from_secs(10));
                    remove_faketime_shm(pid);
                    out.killed.push(pid);
                }
            }
            // A removal that races a process's last writes is tried again.
            let existed = root.exists();
            for _ in 0..5 {
                if !root.exists() || std::fs::remove_dir_all(&root).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if existed && !root.exists() {
                out.removed.push(root);
            }
            let _ = std::fs::remove_file(entry.path());
        }
        Ok(())
    }
}

/// Polls until process `pid` is gone (reaped if it was our child) or
/// `limit` passes.
fn wait_gone(pid: i32, limit: Duration) {
    let t0 = std::time::Instant::now();
    loop {
        // SAFETY: WNOHANG never blocks; it reaps only our own child.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        if !super::process_group::running(pid) || t0.elapsed() > limit {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Processes whose command line has an argument naming a path under
/// `root` (a server started as `postgres -D <root>/<node>`, an `initdb
/// -D <root>/template`).
fn processes_under(root: &Path) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let prefix = root.as_os_str().as_encoded_bytes();
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split(|&b| b == 0).any(|arg| {
                    arg.starts_with(prefix) && arg.get(prefix.len()).is_none_or(|&b| b == b'/')
                })
            })
        })
        .filter(|&pid| pid != std::process::id() as i32)
        .collect()
}

fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.contains(") Z "),
        Err(_) => false,
    }
}

/// Whether the leader of group `pgid` is a server on `data_dir` (its command
/// line names the directory): a recycled pid is never killed.
fn group_uses(pgid: i32, data_dir: &Path) -> bool {
    std::fs::read(format!("/proc/{pgid}/cmdline"))
        .map(|c| {
            let needle = data_dir.as_os_str().as_encoded_bytes();
            c.split(|&b| b == 0).any(|arg| arg == needle)
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_whose_owner_is_gone_is_removed_with_what_runs_under_it() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = Registry::open(tmp.path().join("registry")).unwrap();
        let root = tmp.path().join("ladon-postgres-x");
        std::fs::create_dir_all(root.join("n3")).unwrap();
        // A "server" on a node directory that no server entry names (its
        // Ladon died before registering it), in a process group of its own.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "setsid sh -c 'sleep 60' {}/n3 >/dev/null 2>&1 & echo $!",
                root.display()
            ))
            .output()
            .unwrap();
        let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let t0 = std::time::Instant::now();
        while !group_alive(pid) || processes_under(&root).is_empty() {
            assert!(t0.elapsed() < Duration::from_secs(5), "{pid} never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Ours while we live: kept.
        let entry = reg.add_root(&root).unwrap();
        assert_eq!(reg.sweep().unwrap(), Swept::default());
        assert!(root.exists());
        // Its owner gone: the process is killed, the root removed.
        let dead = {
            let mut c = std::process::Command::new("true").spawn().unwrap();
            c.wait().unwrap();
            c.id()
        };
        std::fs::write(&entry, format!("{dead}\n{}\n", root.display())).unwrap();
        let swept = reg.sweep().unwrap();
        assert_eq!(swept.killed, vec![pid]);
        assert_eq!(swept.removed, vec![root.clone()]);
        assert!(!root.exists());
        assert!(
            !super::super::process_group::running(pid),
            "{pid} still runs"
        );
        assert!(!entry.exists());
    }
}
