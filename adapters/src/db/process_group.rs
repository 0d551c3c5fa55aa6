//! A server process started in its own process group, signalled as a group.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::error::DbError;

/// The system user a server runs as when Ladon is root (`None`: as Ladon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    /// `user`'s ids when this process is root; `None` otherwise (servers
    /// then run as the current, unprivileged user). Root without `user` is
    /// refused: a database server never runs as root.
    pub fn for_root(user: &str) -> Result<Option<RunAs>, DbError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(None);
        }
        let name = std::ffi::CString::new(user).map_err(|_| DbError::Refused(user.into()))?;
        // SAFETY: getpwnam reads a static buffer; we copy the ids out at once.
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        if pw.is_null() {
            return Err(DbError::Refused(format!(
                "running as root, and there is no `{user}` user to run the database servers as \
                 (they never run as root); install the server package, which creates it"
            )));
        }
        // SAFETY: pw is non-null and points at a valid passwd record.
        let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
        Ok(Some(RunAs { uid, gid }))
    }

    /// Applies the ids to a command (no-op for `None`).
    pub fn apply(this: Option<RunAs>, cmd: &mut Command) {
        if let Some(r) = this {
            // std drops root's supplementary groups (setgroups(0)) when it
            // sets the uid as root.
            cmd.uid(r.uid).gid(r.gid);
        }
    }

    /// Hands `path` (recursively) to the server user.
    pub fn chown(this: Option<RunAs>, path: &Path) -> Result<(), DbError> {
        let Some(r) = this else { return Ok(()) };
        for entry in walk(path) {
            std::os::unix::fs::lchown(&entry, Some(r.uid), Some(r.gid))
                .map_err(DbError::io(format!("chown {}", entry.display())))?;
        }
        Ok(())
    }
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() && !out[i].is_symlink() {
            if let Ok(rd) = std::fs::read_dir(&out[i]) {
                let children: Vec<_> = rd.flatten().map(|e| e.path()).collect();
                out.extend(children);
            }
        }
        i += 1;
    }
    out
}

/// A running server: the leader of its own process group.
#[derive(Debug)]
pub struct Server {
    child: Child,
}

impl Server {
    /// Starts `cmd` as the leader of a new process group, its output
    /// appended to `log`.
    pub fn spawn(mut cmd: Command, log: &Path, node: &str) -> Result<Server, DbError> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(DbError::io(format!("{node}: open {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(DbError::io(format!("{node}: {}", log.display())))?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn().map_err(DbError::io(format!(
            "{node}: start {:?}",
            cmd.get_program()
        )))?;
        Ok(Server { child })
    }

    /// The process group id (the leader's pid).
    pub fn pgid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` to the whole group and to every descendant of the
    /// leader: servers such as PostgreSQL put each worker in its own
    /// session (`setsid`), out of the leader's group.
    pub fn signal(&self, sig: i32) {
        signal_tree(self.pgid(), sig);
    }

    /// Whether the leader has exited (reaps it if so).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// How the leader exited, once it has (reaps it).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL to the group, then reaps the leader and waits (up to 10 s)
    /// until no process of the group is left.
    pub fn kill(mut self) {
        let tree = descendants(self.pgid());
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
        wait_group_gone(self.pgid(), Duration::from_secs(10));
        let t0 = Instant::now();
        while tree.iter().any(|&p| running(p)) && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asks the server to stop with `sig` (e.g. SIGQUIT: immediate
    /// shutdown), waits up to `grace`, then kills the group.
    pub fn stop(mut self, sig: i32, grace: Duration) {
        self.signal(libc::SIGCONT);
        // SAFETY: signalling our own child (the server's own shutdown
        // signal goes to the leader only; it stops its workers).
        unsafe { libc::kill(self.pgid(), sig) };
        let t0 = Instant::now();
        while t0.elapsed() < grace {
            if self.exited() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

/// `sig` to group `pgid` and to every descendant of process `pgid`
/// (children first listed, then signalled leader last for SIGSTOP so none
/// is forked unseen; the order does not matter for SIGKILL/SIGCONT).
pub fn signal_tree(pgid: i32, sig: i32) {
    for pid in descendants(pgid) {
        // SAFETY: signalling a process we found as our server's descendant.
        unsafe { libc::kill(pid, sig) };
    }
    signal_group(pgid, sig);
}

/// Every live descendant of `root`, from `/proc/*/stat`'s parent ids.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The command is in parentheses and may hold spaces: fields
            // after the last ')' are state, ppid, ...
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            let mut f = rest.split_whitespace();
            let (_state, ppid) = (f.next(), f.next().and_then(|p| p.parse::<i32>().ok()));
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &parent_of {
            if ppid == p && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

/// Whether `pid` exists and is not a zombie.
pub fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, r)| !r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// `kill(-pgid, sig)`.
pub fn signal_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        // SAFETY: a negative pid signals that process group.
        unsafe { libc::kill(-pgid, sig) };
    }
}

/// Whether any process is in group `pgid`.
pub fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    pgid > 1 && unsafe { libc::kill(-pgid, 0) } == 0
}

/// Polls until group `pgid` is empty or `limit` passes.
pub fn wait_group_gone(pgid: i32, limit: Duration) -> bool {
    let t0 = Instant::now();
    loop {
        // Members that were reparented to us (Ladon is a child subreaper in
        // live runs) stay zombies, and so "alive", until reaped.
        // SAFETY: waitpid on a process group with WNOHANG does not block.
        while pgid > 1 && unsafe { libc::waitpid(-pgid, std::ptr::null_mut(), libc::WNOHANG) } > 0 {
        }
        if !group_alive(pgid) {
            break;
        }
        if t0.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Removes the shared-memory files libfaketime creates for a process it
/// was preloaded into (`/dev/shm/faketime_shm_<pid>`,
/// `/dev/shm/sem.faketime_sem_<pid>`): it removes them at exit, but not
/// after a SIGKILL.
pub fn remove_faketime_shm(pid: i32) {
    for f in [
        format!("/dev/shm/faketime_shm_{pid}"),
        format!("/dev/shm/sem.faketime_sem_{pid}"),
    ] {
        let _ = std::fs::remove_file(f);
    }
}
