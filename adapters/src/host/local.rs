//! This machine as a [`Host`]: commands through `sh -c`, files copied,
//! processes spawned directly.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::process::{Output, Stdio};

use super::{failed, BoxFuture, Host, StartSpec, Started};

/// The machine Ladon runs on.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalHost;

/// Builds the tokio command for `spec` with stdin/stdout piped, stderr
/// appended to the log, its own process group, and death with Ladon
/// (`PR_SET_PDEATHSIG`). Shared with the SSH host, whose local child is
/// the `ssh` client.
pub(crate) fn piped_command(
    program: &str,
    args: &[String],
    log: &Path,
) -> io::Result<tokio::process::Command> {
    let log = OpenOptions::new().create(true).append(true).open(log)?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    Ok(cmd)
}

impl Host for LocalHost {
    fn name(&self) -> &str {
        "local"
    }

    fn is_remote(&self) -> bool {
        false
    }

    fn run(&self, script: &str) -> io::Result<Output> {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .output()
    }

    fn upload(&self, local: &Path, remote: &str, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::copy(local, remote)?;
        std::fs::set_permissions(remote, std::fs::Permissions::from_mode(mode))
    }

    fn write_file(&self, remote: &str, data: &[u8]) -> io::Result<()> {
        let tmp = format!("{remote}.tmp");
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, remote)
    }

    fn fetch(&self, remote: &str, local: &Path) -> io::Result<()> {
        std::fs::copy(remote, local).map(|_| ())
    }

    fn start<'a>(&'a self, spec: &'a StartSpec) -> BoxFuture<'a, io::Result<Started>> {
        Box::pin(async move {
            let mut cmd = piped_command(&spec.program, &spec.args, &spec.log)?;
            cmd.env(super::cleanup::MARKER_VAR, &spec.marker);
            for (k, v) in &spec.env {
                cmd.env(k, v);
            }
            if let Some(dir) = &spec.dir {
                cmd.current_dir(dir);
            }
            let child = cmd.spawn()?;
            let pid = child.id().map(|p| p as i32).unwrap_or(0);
            Ok(Started { child, pid })
        })
    }

    fn signal(&self, pid: i32, sig: i32) -> io::Result<()> {
        if pid <= 0 {
            return Ok(());
        }
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
        let rc = unsafe { libc::kill(-pid, sig) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn kill_marked(&self, marker: &str) -> io::Result<()> {
        super::cleanup::kill_marked(marker, 0);
        Ok(())
    }
}

/// Runs `script` on `host` and fails unless it exits 0 (`what` names the
/// action in the error).
pub fn run_ok(host: &dyn Host, what: &str, script: &str) -> io::Result<Output> {
    let out = host.run(script)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(failed(&format!("{}: {what}", host.name()), &out))
    }
}
