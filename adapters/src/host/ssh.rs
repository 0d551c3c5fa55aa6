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
        // Unix socket paths are short (108 bytes): a directory in /tmp.
        let dir = tempfile::Builder::new()
            .prefix("ladon-ssh-")
            .tempdir_in("/tmp")?;
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

    /// Runs `script` with `data` on its stdin.
    fn run_with_input(&self, script: &str, data: &[u8]) -> io::Result<Output> {
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

    /// Ends the master connection (and every session on it). Idempotent.
    pub fn close(&self) {
        let master = self.master.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut m) = master {
            let _ = self.control("exit");
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = m.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            kill_child(&mut m);
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
        let script = format!("kill -{s} -- -{pid} 2>/dev/null || kill -{s} {pid}");
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
