//! Where running clusters record themselves, so that one left behind by a
//! Ladon killed with SIGKILL is removed before the next starts.
//!
//! The registry is a directory (`$TMPDIR/ladon-db/`, or `LADON_DB_REGISTRY`)
//! with one file per server process group, named by its group id and
//! holding the node's data directory. An entry whose group is gone is
//! stale and removed; one whose group is alive but belongs to no running
//! Ladon is killed, with its data directory.

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
        Ok(out)
    }
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
