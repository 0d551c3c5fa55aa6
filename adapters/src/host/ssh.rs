//! Another machine as a [`Host`], through the system OpenSSH client with
//! connection multiplexing.
//!
//! [`SshHost::connect`] starts one master connection (`ssh -M -N`) as a
//! child of Ladon: in its own process group, killed should Ladon die
//! (`PR_SET_PDEATHSIG`), and registered with the process adapter's
//! emergency cleanup ([`super::cleanup::kill_all`]). Every later
//! command is a session on that connection (`ssh -S <socket>`), which
//! costs a round trip, not a handshake. Dropping the host (or
//! [`SshHost::close`]) ends the master and with it every session.
//!
//! A started process runs under the remote user's shell as
//! `cd DIR && echo "$$ MARKER" > PIDFILE && echo "ladon-pid $$" && exec env … PROGRAM`:
//! the first line on its stdout is its pid on the host (the shell's, which
//! `exec` hands to the program), read before the stream is handed over.
//! sshd makes each session a process group of its own, so the node leads
//! its group and signals go to `-PID`.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;

use super::local::piped_command;
use super::{failed, sh_quote, signal_name, BoxFuture, Host, StartSpec, Started};

/// How to reach one host (a `[[host]]` entry of a hosts file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfig {
    pub address: String,
    pub port: u16,
    pub user: Option<String>,
    pub identity: Option<PathBuf>,
    /// Run commands and nodes under `sudo -n` on the host.
    pub sudo: bool,
    /// Extra `-o` options for `ssh` (`StrictHostKeyChecking=accept-new`).
    pub options: Vec<String>,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

impl SshConfig {
    /// `user@address:port`, how errors name the host.
    pub fn name(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}:{}", self.address, self.port),
            None => format!("{}:{}", self.address, self.port),
        }
    }
}

/// A host reached over one multiplexed SSH connection.
#[derive(Debug)]
pub struct SshHost {
    config: SshConfig,
    name: String,
    /// Holds the control socket; removed with the host.
    _dir: tempfile::TempDir,
    socket: PathBuf,
    master: Mutex<Option<std::process::Child>>,
    /// The control shell: one long-lived `sh` session that runs commands
    /// without a session setup each ([`SshHost::open_control`]).
    ctl: Mutex<Option<Control>>,
}

/// Where the control-socket directories are made, and their names.
const SOCKET_PARENT: &str = "/tmp";
pub const SOCKET_PREFIX: &str = "ladon-ssh-";
/// The file in a control-socket directory naming its owner:
/// `<pid> <start time in clock ticks since boot>`.
const OWNER_FILE: &str = "owner";

/// A process's start time (field 22 of `/proc/PID/stat`), which tells a
/// live owner from a later process that reuses its pid.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

fn owner_line() -> String {
    let me = std::process::id();
    format!("{me} {}\n", start_time(me).unwrap_or(0))
}

/// Removes the control-socket directories (`/tmp/ladon-ssh-<pid>-*`)
/// whose owner is dead: a Ladon killed with SIGKILL cannot remove its own
/// (its master connections die with it, their sockets stay). A directory
/// without an owner file (being made, or not Ladon's) is left alone.
/// Returns how many were removed.
pub fn sweep_stale_dirs(parent: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(SOCKET_PREFIX) {
            continue;
        }
        let path = e.path();
        let Ok(owner) = std::fs::read_to_string(path.join(OWNER_FILE)) else {
            continue;
        };
        let mut words = owner.split_whitespace();
        let (Some(pid), Some(started)) = (
            words.next().and_then(|w| w.parse::<u32>().ok()),
            words.next().and_then(|w| w.parse::<u64>().ok()),
        ) else {
            continue;
        };
        if start_time(pid) == Some(started) {
            continue; // its owner lives
        }
        if std::fs::remove_dir_all(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The control shell's set-up, sent as its first line: a function `x`
/// that runs one script (given quoted, as its argument) with stdin from
/// /dev/null and answers `ladon-rc <status> <stdout bytes> <stderr bytes>`
/// followed by both outputs. The outputs go through a private directory
/// that the shell removes when it exits.
const CONTROL_SETUP: &str = "T=$(mktemp -d \"${TMPDIR:-/tmp}/ladon-ctl-$$.XXXXXX\") || exit 1; \
    trap 'rm -rf \"$T\"' EXIT; trap 'exit 1' HUP INT TERM PIPE; \
    x() { (eval \"$1\") </dev/null >\"$T/o\" 2>\"$T/e\"; r=$?; \
    printf 'ladon-rc %d %d %d\\n' \"$r\" $(wc -c <\"$T/o\") $(wc -c <\"$T/e\"); cat \"$T/o\" \"$T/e\"; }\n";

/// A long-lived shell session on the host, fed one command per line.
#[derive(Debug)]
struct Control {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Control {
    /// Runs `script` in the shell and reads its answer.
    fn exec(&mut self, script: &str) -> io::Result<Output> {
        use std::io::{BufRead as _, Read as _};
        use std::os::unix::process::ExitStatusExt as _;
        self.stdin
            .write_all(format!("x {}\n", sh_quote(script)).as_bytes())?;
        self.stdin.flush()?;
        // Anything before the answer (a login script's chatter) is skipped.
        let header = loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the control shell ended",
                ));
            }
            if let Some(at) = line.find("ladon-rc ") {
                break line[at + "ladon-rc ".len()..].trim().to_string();
            }
        };
        let nums: Vec<u64> = header
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let [rc, olen, elen] = nums[..] else {
            return Err(io::Error::other(format!(
                "the control shell answered {header:?}"
            )));
        };
        let mut stdout = vec![0; olen as usize];
        self.stdout.read_exact(&mut stdout)?;
        let mut stderr = vec![0; elen as usize];
        self.stdout.read_exact(&mut stderr)?;
        Ok(Output {
            status: std::process::ExitStatus::from_raw(((rc & 0xff) as i32) << 8),
            stdout,
            stderr,
        })
    }

    /// Ends the shell (EOF on its stdin: it removes its directory and
    /// exits), then the local `ssh` client.
    fn close(self) {
        let Control {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        end_child(&mut child, Duration::from_secs(1));
    }
}

impl SshHost {
    /// Opens the master connection to `config`'s host, waiting until it is
    /// authenticated; fails with ssh's own last error line otherwise.
    pub fn connect(config: &SshConfig) -> io::Result<SshHost> {
        Self::start_master(config)?.ready()
    }

    /// Connects to every host of `configs` at once (the handshakes overlap):
    /// one result per config, in order.
    pub fn connect_all(configs: &[SshConfig]) -> Vec<io::Result<SshHost>> {
        let pending: Vec<io::Result<Pending>> = configs.iter().map(Self::start_master).collect();
        pending.into_iter().map(|p| p?.ready()).collect()
    }

    /// Starts the master connection without waiting for it.
    fn start_master(config: &SshConfig) -> io::Result<Pending> {
        // Unix socket paths are short (108 bytes): a directory in /tmp,
        // named and marked with its owner so that a later run can remove it
        // should this one be killed with SIGKILL (`sweep_stale_dirs`).
        sweep_stale_dirs(Path::new(SOCKET_PARENT));
        let dir = tempfile::Builder::new()
            .prefix(&format!("{SOCKET_PREFIX}{}-", std::process::id()))
            .tempdir_in(SOCKET_PARENT)?;
        std::fs::write(dir.path().join(OWNER_FILE), owner_line())?;
        let socket = dir.path().join("cm");
        let err_path = dir.path().join("master.err");
        let err = std::fs::File::create(&err_path)?;
        let name = config.name();
        let mut cmd = Command::new("ssh");
        cmd.args(["-M", "-N", "-S"])
            .arg(&socket)
            .args(["-o", "ControlPersist=no"])
            .args(common_options(config))
            .arg(target(config))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err));
        use std::os::unix::process::CommandExt as _;
        cmd.process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let master = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{name}: cannot run ssh: {e}")))?;
        super::cleanup::register_group(master.id() as i32, None);
        let host = SshHost {
            config: config.clone(),
            name,
            _dir: dir,
            socket,
            master: Mutex::new(None),
            ctl: Mutex::new(None),
        };
        let deadline = Instant::now() + config.connect_timeout + Duration::from_secs(2);
        Ok(Pending {
            host,
            master,
            err_path,
            deadline,
        })
    }
}

/// A master connection started, not yet known to be up.
struct Pending {
    host: SshHost,
    master: std::process::Child,
    err_path: PathBuf,
    deadline: Instant,
}

impl Pending {
    /// Waits until the master connection is authenticated.
    fn ready(self) -> io::Result<SshHost> {
        let Pending {
            host,
            mut master,
            err_path,
            deadline,
        } = self;
        let name = host.name.clone();
        let config = host.config.clone();
        loop {
            if let Some(status) = master.try_wait()? {
                super::cleanup::unregister_group(master.id() as i32);
                let text = std::fs::read_to_string(&err_path).unwrap_or_default();
                let last = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("no error message");
                return Err(io::Error::other(format!(
                    "{name}: cannot connect: {last} (ssh {status})"
                )));
            }
            if host.socket.exists() && host.control("check").is_ok() {
                break;
            }
            if Instant::now() > deadline {
                kill_child(&mut master);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{name}: cannot connect: no answer in {:?}",
                        config.connect_timeout
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        *host.master.lock().unwrap_or_else(|p| p.into_inner()) = Some(master);
        Ok(host)
    }
}

impl SshHost {
    pub fn config(&self) -> &SshConfig {
        &self.config
    }

    /// `ssh -O <op>` on the master.
    fn control(&self, op: &str) -> io::Result<()> {
        let out = Command::new("ssh")
            .arg("-S")
            .arg(&self.socket)
            .args(["-O", op])
            .args(common_options(&self.config))
            .arg(target(&self.config))
            .stdin(Stdio::null())
            .output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(failed(&format!("{}: ssh -O {op}", self.name), &out))
        }
    }

    /// The arguments of a session on the master connection running
    /// `script` on the host (under `sudo -n` if configured).
    fn session_args(&self, script: &str) -> Vec<String> {
        let mut args = vec![
            "-S".to_string(),
            self.socket.display().to_string(),
            "-o".into(),
            "ControlMaster=no".into(),
            "-T".into(),
        ];
        args.extend(common_options(&self.config));
        args.push(target(&self.config));
        args.push("--".into());
        args.push(self.wrap(script));
        args
    }

    fn wrap(&self, script: &str) -> String {
        if self.config.sudo {
            format!("sudo -n sh -c {}", sh_quote(script))
        } else {
            script.to_string()
        }
    }

    fn session(&self, script: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(self.session_args(script));
        cmd
    }

    /// Runs `script` in a session of its own with `data` on its stdin.
    pub fn run_with_input(&self, script: &str, data: &[u8]) -> io::Result<Output> {
        let mut child = self
            .session(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let data = data.to_vec();
        // Written from a thread so a command that fails early cannot block us.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output()?;
        let _ = writer.join();
        Ok(out)
    }

    fn run_ok(&self, what: &str, script: &str, data: Option<&[u8]>) -> io::Result<Output> {
        let out = match data {
            Some(d) => self.run_with_input(script, d)?,
            None => self.run(script)?,
        };
        if out.status.success() {
            Ok(out)
        } else {
            Err(failed(&format!("{}: {what}", self.name), &out))
        }
    }

    /// Starts the control shell: one session running `sh` that later
    /// commands ([`Host::run`], signals, kills, small files) are fed to, so
    /// that they cost a round trip instead of a session's setup (0.2 to
    /// 0.5 s each on a host whose login shell reads a heavy `.bashrc`).
    /// Does not wait for it; its first use does. Start it from a thread
    /// that lives as long as the host: the `ssh` client dies with the
    /// thread that started it (`PR_SET_PDEATHSIG`).
    pub fn open_control(&self) -> io::Result<()> {
        let mut guard = self.ctl.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_some() {
            return Ok(());
        }
        let mut cmd = self.session("exec sh");
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        use std::os::unix::process::CommandExt as _;
        cmd.process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        super::cleanup::register_group(child.id() as i32, None);
        let mut stdin = child.stdin.take().expect("piped stdin");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
        if let Err(e) = stdin.write_all(CONTROL_SETUP.as_bytes()) {
            kill_child(&mut child);
            return Err(e);
        }
        *guard = Some(Control {
            child,
            stdin,
            stdout,
        });
        Ok(())
    }

    /// Runs `script` in the control shell if there is one and no other
    /// thread is using it; `None`: run it in a session of its own.
    fn run_in_control(&self, script: &str) -> Option<Output> {
        let mut guard = self.ctl.try_lock().ok()?;
        let ctl = guard.as_mut()?;
        match ctl.exec(script) {
            Ok(out) => Some(out),
            Err(_) => {
                // A broken control shell is closed; sessions take over.
                if let Some(c) = guard.take() {
                    c.close();
                }
                None
            }
        }
    }

    /// Whether commands go through the control shell (for tests).
    pub fn has_control(&self) -> bool {
        self.ctl.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Ends the master connection (and every session on it). Idempotent.
    pub fn close(&self) {
        let ctl = self.ctl.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(c) = ctl {
            c.close();
        }
        let master = self.master.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut m) = master {
            let _ = self.control("exit");
            end_child(&mut m, Duration::from_secs(2));
        }
    }

    /// The master connection's local pid, while open.
    pub fn master_pid(&self) -> Option<i32> {
        self.master
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|m| m.id() as i32)
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        self.close();
    }
}

/// SIGKILLs and reaps a child, and forgets it in the cleanup registry.
/// Waits up to `grace` for `child` to exit by itself, then kills its
/// group ([`kill_child`], which also reaps it).
fn end_child(child: &mut std::process::Child, grace: Duration) {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    kill_child(child);
}

fn kill_child(child: &mut std::process::Child) {
    let pid = child.id() as i32;
    // SAFETY: kill(2) on a process group we started; no memory is touched.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    let _ = child.wait();
    super::cleanup::unregister_group(pid);
}

fn target(config: &SshConfig) -> String {
    match &config.user {
        Some(u) => format!("{u}@{}", config.address),
        None => config.address.clone(),
    }
}

/// Options every ssh invocation for `config` carries.
fn common_options(config: &SshConfig) -> Vec<String> {
    let mut args = vec![
        "-p".to_string(),
        config.port.to_string(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        format!("ConnectTimeout={}", config.connect_timeout.as_secs().max(1)),
        "-o".into(),
        "ServerAliveInterval=5".into(),
        "-o".into(),
        "LogLevel=ERROR".into(),
    ];
    if let Some(id) = &config.identity {
        args.extend([
            "-i".into(),
            id.display().to_string(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
        ]);
    }
    for o in &config.options {
        args.extend(["-o".into(), o.clone()]);
    }
    args
}

impl Host for SshHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn run(&self, script: &str) -> io::Result<Output> {
        if let Some(out) = self.run_in_control(script) {
            return Ok(out);
        }
        self.session(script).stdin(Stdio::null()).output()
    }

    fn upload(&self, local: &Path, remote: &str, mode: u32) -> io::Result<()> {
        let data = std::fs::read(local)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", local.display())))?;
        let r = sh_quote(remote);
        let tmp = sh_quote(&format!("{remote}.tmp"));
        // The directory is made in the same session: one round trip.
        let dir = sh_quote(
            Path::new(remote)
                .parent()
                .map(|d| d.to_str().unwrap_or("."))
                .filter(|d| !d.is_empty())
                .unwrap_or("."),
        );
        let script =
            format!("mkdir -p {dir} && cat > {tmp} && chmod {mode:o} {tmp} && mv -f {tmp} {r}");
        self.run_ok(&format!("upload to {remote}"), &script, Some(&data))
            .map(|_| ())
    }

    fn write_file(&self, remote: &str, data: &[u8]) -> io::Result<()> {
        let r = sh_quote(remote);
        let tmp = sh_quote(&format!("{remote}.tmp"));
        // Small text (libfaketime's offset) goes inside the command, which
        // the control shell runs without a session of its own.
        if data.len() <= 4096 && !data.contains(&0) {
            if let Ok(text) = std::str::from_utf8(data) {
                let script = format!("printf '%s' {} > {tmp} && mv -f {tmp} {r}", sh_quote(text));
                return self
                    .run_ok(&format!("write {remote}"), &script, None)
                    .map(|_| ());
            }
        }
        let script = format!("cat > {tmp} && mv -f {tmp} {r}");
        self.run_ok(&format!("write {remote}"), &script, Some(data))
            .map(|_| ())
    }

    fn fetch(&self, remote: &str, local: &Path) -> io::Result<()> {
        let out = self.run_ok(
            &format!("fetch {remote}"),
            &format!("cat {}", sh_quote(remote)),
            None,
        )?;
        std::fs::write(local, out.stdout)
    }

    fn start<'a>(&'a self, spec: &'a StartSpec) -> BoxFuture<'a, io::Result<Started>> {
        Box::pin(async move {
            let mut script = String::new();
            if let Some(dir) = &spec.dir {
                script.push_str(&format!("cd {} && ", sh_quote(dir)));
            }
            if let Some(pf) = &spec.pid_file {
                script.push_str(&format!(
                    "echo \"$$ {}\" > {} && ",
                    spec.marker,
                    sh_quote(pf)
                ));
            }
            script.push_str("echo \"ladon-pid $$\" && exec env ");
            script.push_str(&sh_quote(&format!(
                "{}={}",
                super::cleanup::MARKER_VAR,
                spec.marker
            )));
            for (k, v) in &spec.env {
                script.push(' ');
                script.push_str(&sh_quote(&format!("{k}={v}")));
            }
            script.push(' ');
            script.push_str(&sh_quote(&spec.program));
            for a in &spec.args {
                script.push(' ');
                script.push_str(&sh_quote(a));
            }
            let mut cmd = piped_command("ssh", &self.session_args(&script), &spec.log)?;
            let mut child = cmd.spawn()?;
            // The first stdout line is the node's pid on the host; read it
            // byte by byte so nothing of the node's own output is consumed.
            let stdout = child.stdout.as_mut().expect("piped stdout");
            let read_pid = async {
                let mut line = Vec::new();
                loop {
                    match stdout.read_u8().await {
                        Ok(b'\n') => break,
                        Ok(b) if line.len() < 64 => line.push(b),
                        Ok(_) => break,
                        Err(e) => return Err(e),
                    }
                }
                Ok(line)
            };
            let line = match tokio::time::timeout(self.config.connect_timeout, read_pid).await {
                Ok(Ok(line)) => line,
                Ok(Err(_)) | Err(_) => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    return Err(io::Error::other(format!(
                        "{}: node {} did not start (see its log {})",
                        self.name,
                        spec.node,
                        spec.log.display()
                    )));
                }
            };
            let text = String::from_utf8_lossy(&line);
            let pid = text
                .strip_prefix("ladon-pid ")
                .and_then(|p| p.trim().parse::<i32>().ok())
                .ok_or_else(|| {
                    io::Error::other(format!(
                        "{}: node {}: expected \"ladon-pid N\" first, got {text:?}",
                        self.name, spec.node
                    ))
                })?;
            Ok(Started { child, pid })
        })
    }

    fn signal(&self, pid: i32, sig: i32) -> io::Result<()> {
        let s = signal_name(sig);
        let script = format!("kill -s {s} -- -{pid} 2>/dev/null || kill -s {s} {pid}");
        self.run_ok(&format!("kill -{s} {pid}"), &script, None)
            .map(|_| ())
    }

    fn kill_marked(&self, marker: &str) -> io::Result<()> {
        self.run_ok(
            "kill marked processes",
            &super::cleanup::kill_marked_script(marker),
            None,
        )
        .map(|_| ())
    }
}
