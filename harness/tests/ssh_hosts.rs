//! `ladon run --adapter process --hosts FILE` against real SSH without
//! other machines: each test starts its own `sshd` (Debian's
//! `openssh-server`) on a loopback port with a host key and a client key
//! made for it in a temporary directory, and a hosts file whose three
//! "hosts" are that sshd, each with its own working directory.
//!
//! Without `/usr/sbin/sshd` or `ssh` the tests say so and pass, except
//! under CI (`CI` set), where a missing tool is a failure (scripts/test
//! installs `openssh-server`).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ladon_adapters::host::{Host, SshConfig, SshHost, StartSpec};

const SSHD: &str = "/usr/sbin/sshd";

fn available() -> bool {
    let missing = if !Path::new(SSHD).exists() {
        Some(format!("{SSHD} not found (apt-get install openssh-server)"))
    } else if Command::new("ssh").arg("-V").output().is_err() {
        Some("ssh not found (apt-get install openssh-client)".to_string())
    } else {
        None
    };
    match missing {
        None => true,
        Some(e) if std::env::var_os("CI").is_some() => panic!("{e}"),
        Some(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/nodes")
        .join(name)
}

fn user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
}

/// One sshd on 127.0.0.1, killed and reaped when dropped (also on a
/// failing assertion: unwinding drops it).
struct Sshd {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
}

impl Sshd {
    fn start() -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // sshd started by root wants its privilege separation directory.
        if unsafe { libc::geteuid() } == 0 {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = d.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "ListenAddress 127.0.0.1\nPort {port}\nHostKey {hk}\n\
                     AuthorizedKeysFile {ak}\nStrictModes no\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nUsePAM no\nPidFile none\n\
                     PermitRootLogin prohibit-password\nLogLevel ERROR\nMaxSessions 100\n\
                     MaxStartups 100\n",
                    hk = d.join("host_key").display(),
                    ak = d.join("authorized_keys").display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(d.join("sshd.log")).unwrap();
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let hk = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
                    std::fs::write(d.join("known_hosts"), format!("[127.0.0.1]:{port} {hk}"))
                        .unwrap();
                    return Sshd { dir, child, port };
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break; // port taken meanwhile, or sshd failed: try again
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let log = std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default();
        panic!("sshd did not start: {log}");
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn config(&self) -> SshConfig {
        SshConfig {
            address: "127.0.0.1".into(),
            port: self.port,
            user: Some(user()),
            identity: Some(self.path().join("client_key")),
            sudo: false,
            options: self.options(),
            connect_timeout: Duration::from_secs(10),
        }
    }

    fn options(&self) -> Vec<String> {
        vec![
            format!(
                "UserKnownHostsFile={}",
                self.path().join("known_hosts").display()
            ),
            "StrictHostKeyChecking=yes".into(),
        ]
    }

    /// A hosts file of `n` hosts, all this sshd, each with its own workdir.
    fn hosts_file(&self, n: usize) -> PathBuf {
        let mut text = format!(
            "files = [{:?}]\n",
            example("maelstrom.py").display().to_string()
        );
        for i in 1..=n {
            text.push_str(&format!(
                "\n[[host]]\naddress = \"127.0.0.1\"\nport = {}\nuser = {:?}\nidentity = {:?}\n\
                 workdir = {:?}\nssh_options = {:?}\n",
                self.port,
                user(),
                self.path().join("client_key").display().to_string(),
                self.path().join(format!("h{i}")).display().to_string(),
                self.options()
            ));
        }
        let p = self.path().join("hosts.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The processes sshd started (sessions) still alive.
    fn sessions(&self) -> Vec<i32> {
        descendants(self.pid())
    }

    /// Waits up to 5 s for every session to end; returns those left.
    fn wait_sessions_gone(&self) -> Vec<i32> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = self.sessions();
            if s.is_empty() || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let pids = self.sessions();
        let _ = self.child.kill();
        for p in pids {
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}

fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

/// Every live descendant of `root`.
fn descendants(root: i32) -> Vec<i32> {
    let all: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &c in &all {
            if ppid(c) == Some(p) && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

fn ladon(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ladon"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn report(store: &Path, test: &str) -> serde_json::Value {
    let dir = std::fs::read_dir(store.join(test))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("no run directory in {}", store.join(test).display()));
    let text = std::fs::read_to_string(dir.join("report.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    serde_json::from_str(&text).unwrap()
}

/// The verdict and the forbidden anomalies' names.
fn verdict(r: &serde_json::Value) -> (String, Vec<String>) {
    let v = r["verdict"].as_str().unwrap().to_string();
    let mut a: Vec<String> = r["anomalies"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, f)| f["forbidden"].as_bool() != Some(false))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    a.sort();
    (v, a)
}

/// Runs `bin` locally and over SSH with the same options and seed; returns
/// both verdicts.
fn local_and_remote(
    sshd: &Sshd,
    bin: &str,
    extra: &[&str],
) -> ((String, Vec<String>), (String, Vec<String>)) {
    let store = sshd.path().join("results");
    let store_s = store.display().to_string();
    let bin_path = example(bin).display().to_string();
    let hosts = sshd.hosts_file(3).display().to_string();
    let mut base = vec![
        "run",
        "--adapter",
        "process",
        "--bin",
        &bin_path,
        "--nodes",
        "3",
        "--time-limit",
        "2s",
        "--rate",
        "60",
        "--seed",
        "7",
        "--store",
        &store_s,
    ];
    base.extend_from_slice(extra);
    let mut local = base.clone();
    local.extend(["--test", "local"]);
    let mut remote = base.clone();
    remote.extend(["--test", "remote", "--hosts", &hosts]);
    let out_l = ladon(&local);
    let out_r = ladon(&remote);
    let err_r = String::from_utf8_lossy(&out_r.stderr);
    assert!(
        err_r.contains("3 nodes on 3 host(s)"),
        "remote run's stderr:\n{err_r}"
    );
    assert_eq!(out_l.status.code(), out_r.status.code(), "{err_r}");
    // Each node ran in its own host's workdir, from the uploaded program.
    for (i, n) in ["n1", "n2", "n3"].iter().enumerate() {
        let dir = sshd.path().join(format!("h{}", i + 1)).join(n);
        assert!(dir.join(bin).is_file(), "{}", dir.display());
        assert!(dir.join("maelstrom.py").is_file(), "{}", dir.display());
    }
    let left = sshd.wait_sessions_gone();
    assert!(left.is_empty(), "SSH sessions left: {left:?}");
    (
        verdict(&report(&store, "local")),
        verdict(&report(&store, "remote")),
    )
}

#[test]
fn correct_counter_over_ssh_matches_the_local_run() {
    if !available() {
        return;
    }
    let sshd = Sshd::start();
    let (local, remote) = local_and_remote(&sshd, "counter.py", &["--workload", "pn-counter"]);
    assert_eq!(local, ("valid".to_string(), vec![]));
    assert_eq!(remote, local);
}

#[test]
fn buggy_counter_over_ssh_shows_the_same_anomalies_as_the_local_run() {
    if !available() {
        return;
    }
    let sshd = Sshd::start();
    let (local, remote) = local_and_remote(
        &sshd,
        "counter_buggy.py",
        &["--workload", "g-counter", "--duplicate", "0.5"],
    );
    assert_eq!(local.0, "invalid");
    assert!(local.1.contains(&"duplicate".to_string()), "{local:?}");
    assert_eq!(remote, local);
}

#[test]
fn ssh_host_runs_uploads_writes_fetches_starts_and_signals() {
    if !available() {
        return;
    }
    let sshd = Sshd::start();
    let host = Arc::new(SshHost::connect(&sshd.config()).unwrap());
    let master = host.master_pid().unwrap();
    // run: output and failures with the host's name and stderr.
    let out = host.run("echo hello; echo err >&2").unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    let e = ladon_adapters::host::local::run_ok(host.as_ref(), "fail", "echo nope >&2; exit 3")
        .unwrap_err()
        .to_string();
    assert_eq!(e, format!("{}: fail: nope (exit code 3)", host.name()));
    // upload, write_file, fetch.
    let d = sshd.path();
    let src = d.join("src.txt");
    std::fs::write(&src, "it's \"data\"\n").unwrap();
    let remote = d.join("dir with space/up.txt");
    std::fs::create_dir_all(remote.parent().unwrap()).unwrap();
    let remote_s = remote.display().to_string();
    host.upload(&src, &remote_s, 0o640).unwrap();
    assert_eq!(std::fs::read_to_string(&remote).unwrap(), "it's \"data\"\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&remote).unwrap().permissions().mode() & 0o777,
        0o640
    );
    host.write_file(&remote_s, b"+1.5s\n").unwrap();
    let back = d.join("back.txt");
    host.fetch(&remote_s, &back).unwrap();
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "+1.5s\n");
    // start: a cat echoing stdin to stdout over the channel, with its pid
    // on the host; pause stops the echo, resume lets it through.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let spec = StartSpec {
            node: "n1".into(),
            program: "cat".into(),
            args: vec![],
            env: vec![("X".into(), "y z".into())],
            dir: Some(d.display().to_string()),
            log: d.join("n1.log"),
            pid_file: Some(d.join("n1.pid").display().to_string()),
            marker: "test.1".into(),
        };
        let mut started = host.start(&spec).await.unwrap();
        let pid = started.pid;
        // The pid is printed by the remote shell just before it execs the
        // program: its environ reads empty while the exec is under way.
        let mut env = String::new();
        for _ in 0..200 {
            env = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap())
                .into_owned();
            if env.contains("LADON_NODE=") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(env.contains("LADON_NODE=test.1\0"), "{env}");
        assert!(env.contains("X=y z\0"), "{env}");
        assert_eq!(
            std::fs::read_to_string(d.join("n1.pid")).unwrap(),
            format!("{pid} test.1\n")
        );
        let mut stdin = started.child.stdin.take().unwrap();
        let mut lines = BufReader::new(started.child.stdout.take().unwrap()).lines();
        stdin.write_all(b"one\n").await.unwrap();
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("one"));
        host.signal(pid, libc::SIGSTOP).unwrap();
        let state = |pid: i32| {
            let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            s[s.rfind(')').unwrap() + 2..].chars().next().unwrap()
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while state(pid) != 'T' && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(state(pid), 'T');
        stdin.write_all(b"two\n").await.unwrap();
        let early = tokio::time::timeout(Duration::from_millis(200), lines.next_line()).await;
        assert!(early.is_err(), "a stopped process answered: {early:?}");
        host.signal(pid, libc::SIGCONT).unwrap();
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("two"));
        host.kill_marked("test.1").unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!Path::new(&format!("/proc/{pid}")).exists() || state(pid) == 'Z');
        let _ = started.child.wait().await;
    });
    // Closing ends the master connection and every session.
    drop(host);
    assert!(!Path::new(&format!("/proc/{master}")).exists());
    let left = sshd.wait_sessions_gone();
    assert!(left.is_empty(), "SSH sessions left: {left:?}");
}

#[test]
fn preflight_names_the_host_and_the_missing_piece() {
    if !available() {
        return;
    }
    let sshd = Sshd::start();
    let d = sshd.path();
    let hosts = sshd.hosts_file(3).display().to_string();
    let store = d.join("results").display().to_string();
    let bin = d.join("node.py");
    std::fs::write(&bin, "#!/usr/bin/env ladon-no-such-interpreter\n").unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = ladon(&[
        "run",
        "--adapter",
        "process",
        "--bin",
        &bin.display().to_string(),
        "--workload",
        "pn-counter",
        "--store",
        &store,
        "--hosts",
        &hosts,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap();
    assert_eq!(
        last,
        format!(
            "ladon: {hosts}: host 1 (line 3, {}@127.0.0.1:{}): missing ladon-no-such-interpreter (the #! interpreter of node.py)",
            user(),
            sshd.port
        )
    );
    // Nothing ran: no run directory.
    assert!(!d.join("results").exists());
    let left = sshd.wait_sessions_gone();
    assert!(left.is_empty(), "SSH sessions left: {left:?}");

    // A host nobody listens on: ssh's own reason, naming the host.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let bad = d.join("bad.toml");
    std::fs::write(
        &bad,
        format!("[[host]]\naddress = \"127.0.0.1\"\nport = {port}\n"),
    )
    .unwrap();
    let out = ladon(&[
        "run",
        "--adapter",
        "process",
        "--bin",
        &example("counter.py").display().to_string(),
        "--workload",
        "pn-counter",
        "--store",
        &store,
        "--hosts",
        &bad.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "ladon: {}: host 1 (line 1, 127.0.0.1:{port}): cannot connect: ",
            bad.display()
        )) && last.contains("Connection refused"),
        "{last}"
    );
}

/// Processes whose environment holds `needle` (`KEY=value`).
fn with_env(needle: &str) -> Vec<i32> {
    let needle = format!("{needle}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// Waits up to 5 s for `f` to return nothing; returns what is left.
fn wait_empty(f: impl Fn() -> Vec<i32>) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = f();
        if v.is_empty() || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn nothing_is_left_after_ladon_is_killed_and_the_next_run() {
    if !available() {
        return;
    }
    let sshd = Sshd::start();
    let d = sshd.path();
    let hosts = sshd.hosts_file(3).display().to_string();
    let store = d.join("results").display().to_string();
    let bin = example("counter.py").display().to_string();
    let args = [
        "run",
        "--adapter",
        "process",
        "--bin",
        &bin,
        "--workload",
        "pn-counter",
        "--store",
        &store,
        "--hosts",
        &hosts,
    ];
    // Every local process this Ladon starts inherits the tag.
    let tag = format!("LADON_SSH_TEST={}", std::process::id());
    let mut killed = Command::new(env!("CARGO_BIN_EXE_ladon"))
        .args(args)
        .args(["--time-limit", "60s", "--test", "killed"])
        .env("LADON_SSH_TEST", std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid_files: Vec<PathBuf> = (1..=3)
        .map(|i| d.join(format!("h{i}/n{i}/n{i}.pid")))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pid_files.iter().all(|p| p.exists()) {
        assert!(Instant::now() < deadline, "the nodes did not start");
        assert!(killed.try_wait().unwrap().is_none(), "ladon exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500)); // mid-run
    let markers: Vec<String> = pid_files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.split_whitespace().nth(1).unwrap().to_string()
        })
        .collect();
    assert_eq!(
        markers
            .iter()
            .map(|m| with_env(&format!("LADON_NODE={m}")).len())
            .sum::<usize>(),
        3,
        "three nodes run under sshd"
    );
    killed.kill().unwrap();
    killed.wait().unwrap();
    // Its ssh processes (master connection, sessions) die with it.
    let left = wait_empty(|| with_env(&tag));
    assert!(left.is_empty(), "local processes left: {left:?}");
    // The next run (short) starts clean; afterwards no node of the killed
    // run is alive, and no SSH session either.
    let out = ladon(&[&args[..], &["--time-limit", "1s", "--test", "next"]].concat());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for m in &markers {
        let left = with_env(&format!("LADON_NODE={m}"));
        assert!(
            left.is_empty(),
            "node {m} of the killed run still runs: {left:?}"
        );
    }
    let left = sshd.wait_sessions_gone();
    assert!(left.is_empty(), "SSH sessions left: {left:?}");
}
