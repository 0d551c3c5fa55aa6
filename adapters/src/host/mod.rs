//! Where a node runs: this machine ([`LocalHost`]) or another one reached
//! over SSH ([`SshHost`]). Every action the process adapter takes on a
//! node's machine goes through the [`Host`] trait: run a shell command,
//! upload a file, write a small file atomically (libfaketime's offset),
//! start a long-lived process with stdin/stdout piped, signal a started
//! process, and fetch a file back.
//!
//! The SSH implementation drives the system OpenSSH client (`ssh`) with
//! connection multiplexing: one master connection per host, opened by
//! [`SshHost::connect`] and closed when the host is dropped; every command,
//! upload and node process is a session on that one connection
//! (docs/remote-hosts.md says why not a Rust SSH library).

pub mod cleanup;
pub mod local;
pub mod nft;
pub mod ssh;
pub mod tar;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Output;

pub use local::LocalHost;
pub use ssh::{SshConfig, SshHost};

/// A boxed future, for the trait's one asynchronous method.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What to start on a host: a program with arguments and environment, its
/// working directory there, and the local file its stderr is appended to.
#[derive(Debug, Clone)]
pub struct StartSpec {
    /// Node name, for errors.
    pub node: String,
    /// The program, as a path on the host.
    pub program: String,
    pub args: Vec<String>,
    /// Extra environment variables (the node marker, libfaketime's).
    pub env: Vec<(String, String)>,
    /// Working directory on the host (`None`: inherit).
    pub dir: Option<String>,
    /// Local file that receives the process's stderr (appended).
    pub log: PathBuf,
    /// A file on the host that records the process's pid and marker, so a
    /// later run can find and kill it should Ladon die without cleaning up.
    pub pid_file: Option<String>,
    /// The value of the `LADON_NODE` marker the process carries.
    pub marker: String,
}

/// A process started by [`Host::start`].
pub struct Started {
    /// The local child: the process itself on [`LocalHost`], the `ssh`
    /// client carrying its stdin/stdout on [`SshHost`]. It leads its own
    /// process group.
    pub child: tokio::process::Child,
    /// The process's pid on its host (what [`Host::signal`] takes).
    pub pid: i32,
}

/// One machine nodes run on.
pub trait Host: Send + Sync + std::fmt::Debug {
    /// How errors and logs name this host: `local`, `user@address:port`.
    fn name(&self) -> &str;

    /// Whether this host is another machine (then the node's program is
    /// uploaded to it first).
    fn is_remote(&self) -> bool;

    /// Runs `script` with `sh -c` on the host (under `sudo -n` if the host
    /// says so) and returns its output.
    fn run(&self, script: &str) -> io::Result<Output>;

    /// Copies the local file `local` to `remote` on the host with `mode`
    /// (creating `remote`'s directory on a remote host).
    fn upload(&self, local: &Path, remote: &str, mode: u32) -> io::Result<()>;

    /// Replaces `remote` with `data` atomically (written beside it, then
    /// renamed), so a reader never sees half of it.
    fn write_file(&self, remote: &str, data: &[u8]) -> io::Result<()>;

    /// Copies the host's file `remote` to the local file `local`.
    fn fetch(&self, remote: &str, local: &Path) -> io::Result<()>;

    /// Starts a long-lived process with stdin and stdout piped to this
    /// process (over the SSH channel for a remote host).
    fn start<'a>(&'a self, spec: &'a StartSpec) -> BoxFuture<'a, io::Result<Started>>;

    /// Sends `sig` to the started process `pid` (and its process group).
    fn signal(&self, pid: i32, sig: i32) -> io::Result<()>;

    /// Kills every process on the host that carries the `LADON_NODE`
    /// marker `marker` (a node's forked descendants).
    fn kill_marked(&self, marker: &str) -> io::Result<()>;
}

/// Quotes `s` for a POSIX shell: one single-quoted word.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./=:,+@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The shell name of a signal (`kill -STOP`).
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSTOP => "STOP",
        libc::SIGCONT => "CONT",
        libc::SIGKILL => "KILL",
        libc::SIGTERM => "TERM",
        libc::SIGINT => "INT",
        libc::SIGHUP => "HUP",
        _ => "KILL",
    }
}

/// The last non-empty line a command printed on stderr ("" for none).
pub fn last_stderr_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

/// The error for a command that ran but failed: its stderr's last line.
pub(crate) fn failed(what: &str, out: &Output) -> io::Error {
    let last = last_stderr_line(out);
    let status = match out.status.code() {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal".to_string(),
    };
    io::Error::other(if last.is_empty() {
        format!("{what}: {status}")
    } else {
        format!("{what}: {last} ({status})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_plain_words_and_quotes_the_rest() {
        assert_eq!(sh_quote("/tmp/a-b_c.py"), "/tmp/a-b_c.py");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("$HOME"), "'$HOME'");
    }
}
