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

mod db_common;

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
    /// Where it listens: 127.0.0.1, or its namespace's address.
    address: String,
}

impl Sshd {
    fn start() -> Sshd {
        Self::start_in(None)
    }

    /// An sshd on 127.0.0.1 (`None`), or inside node `i`'s namespace of a
    /// network on port 22 of the namespace's address (a "host" of its own,
    /// reached from this namespace over the network's bridge).
    fn start_in(ns: Option<(&ladon_adapters::db::netns::Network, usize)>) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // sshd started by root wants its privilege separation directory.
        if unsafe { libc::geteuid() } == 0 {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let address = match ns {
            Some((net, i)) => net.addr(i).to_string(),
            None => "127.0.0.1".to_string(),
        };
        for _ in 0..5 {
            let port = match ns {
                Some(_) => 22,
                None => std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port(),
            };
            let config = d.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "ListenAddress {address}\nPort {port}\nHostKey {hk}\n\
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
            let spawn = || {
                Command::new(SSHD)
                    .args(["-D", "-e", "-f"])
                    .arg(&config)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log.try_clone().unwrap())
                    .spawn()
            };
            let mut child = match ns {
                Some((net, i)) => net
                    .run_in(i, || {
                        spawn().map_err(|e| ladon_adapters::db::DbError::Refused(e.to_string()))
                    })
                    .unwrap(),
                None => spawn().unwrap(),
            };
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if TcpStream::connect((address.as_str(), port)).is_ok() {
                    let hk = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
                    let entry = if port == 22 {
                        format!("{address} {hk}")
                    } else {
                        format!("[{address}]:{port} {hk}")
                    };
                    std::fs::write(d.join("known_hosts"), entry).unwrap();
                    return Sshd {
                        dir,
                        child,
                        port,
                        address,
                    };
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
            address: self.address.clone(),
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
        // Database servers a failing test left in the hosts' workdirs.
        let mut pids = processes_in(self.path());
        pids.extend(self.sessions());
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

/// The run directory of test `test` in `store`.
fn run_dir(store: &Path, test: &str) -> PathBuf {
    db_common::run_dir(store, test)
        .unwrap_or_else(|| panic!("no run directory in {}", store.join(test).display()))
}

/// Whether network namespace `ns` holds Ladon's `inet ladon_hosts` table.
fn nft_table_in(ns: &str) -> bool {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "nft",
            "list",
            "table",
            "inet",
            "ladon_hosts",
        ])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One sshd in each of `net`'s namespaces, each a host of its own.
fn namespaced_sshds(net: &ladon_adapters::db::netns::Network) -> Vec<Sshd> {
    (0..3).map(|i| Sshd::start_in(Some((net, i)))).collect()
}

fn report(store: &Path, test: &str) -> serde_json::Value {
    let dir = run_dir(store, test);
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
        &[
            "--workload",
            "g-counter",
            "--duplicate",
            "0.5",
            "--converge-timeout",
            "2s",
        ],
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
    // The control shell: the same answers, without a session per command
    // (every command runs in one shell, `$$`), and sessions again once it
    // is gone.
    assert!(!host.has_control());
    host.open_control().unwrap();
    assert!(host.has_control());
    let out = host.run("echo hello; echo err >&2").unwrap();
    // (The control shell is up now: later commands add no sshd process;
    // the sessions of the commands before may still be ending.)
    let sessions_before: std::collections::BTreeSet<i32> = sshd.sessions().into_iter().collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let e = ladon_adapters::host::local::run_ok(host.as_ref(), "fail", "echo nope >&2; exit 3")
        .unwrap_err()
        .to_string();
    assert_eq!(e, format!("{}: fail: nope (exit code 3)", host.name()));
    let out = host
        .run("printf 'no newline, \"quotes\", it'\\''s'; cat; exit 0")
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "no newline, \"quotes\", it's"
    );
    let shell = |host: &SshHost| {
        String::from_utf8_lossy(&host.run("echo $$").unwrap().stdout)
            .trim()
            .to_string()
    };
    let first = shell(&host);
    assert_eq!(shell(&host), first);
    // New processes under sshd: none may stay (a process caught while it
    // ends, under a loaded machine, is given 300 ms to go).
    let new_now = || -> Vec<i32> {
        sshd.sessions()
            .into_iter()
            .filter(|p| !sessions_before.contains(p))
            .collect()
    };
    let mut new = new_now();
    if !new.is_empty() {
        std::thread::sleep(Duration::from_millis(300));
        let again = new_now();
        new.retain(|p| again.contains(p));
    }
    assert_eq!(new, Vec::<i32>::new(), "processes a session would add");
    // Its scratch directory is gone when it ends.
    let scratch = format!("ladon-ctl-{first}.");
    let scratch_dirs = || {
        std::fs::read_dir("/tmp")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&scratch))
            .count()
    };
    assert_eq!(scratch_dirs(), 1);
    let _ = host.run("kill -9 $$");
    assert!(!host.has_control());
    assert_ne!(shell(&host), first);
    // (SIGKILLed, it could not remove its scratch directory: the hosts
    // preflight sweeps those of dead shells; here the test does.)
    for e in std::fs::read_dir("/tmp").unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with(&scratch) {
            std::fs::remove_dir_all(e.path()).unwrap();
        }
    }
    host.open_control().unwrap();
    let second = shell(&host);
    assert_ne!(second, first);
    let scratch2 = format!("ladon-ctl-{second}.");
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
            // A worker in the background, as a server's: signals reach it
            // through the process group.
            program: "sh".into(),
            args: vec!["-c".into(), "sleep 300 & exec cat".into()],
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
        // The whole group stops (dash's `kill` takes no `kill -STOP --
        // -PID`: the signal once reached the node alone).
        let workers = descendants(pid);
        assert!(!workers.is_empty(), "no background sleep");
        let deadline = Instant::now() + Duration::from_secs(2);
        while workers.iter().any(|&w| state(w) != 'T') && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for &w in &workers {
            assert_eq!(state(w), 'T', "the node's worker {w} was not stopped");
        }
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
    // Closing ends the control shell (which removes its scratch
    // directory), the master connection and every session.
    drop(host);
    assert!(!Path::new(&format!("/proc/{master}")).exists());
    let left = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&scratch2))
        .count();
    assert_eq!(
        left, 0,
        "the control shell's directory /tmp/{scratch2}* is left"
    );
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
    // With libfaketime, the killed run has clock faults: its nodes'
    // libfaketime files must not outlive the next run either.
    let clock = Path::new(ladon_adapters::process::clock::LIBFAKETIME).exists();
    let nemesis: &[&str] = if clock { &["--nemesis", "clock"] } else { &[] };
    let mut killed = Command::new(env!("CARGO_BIN_EXE_ladon"))
        .args(args)
        .args(["--time-limit", "60s", "--test", "killed"])
        .args(nemesis)
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
    if clock {
        for i in 1..=3 {
            let f = d.join(format!("h{i}/n{i}/n{i}.faketime"));
            assert!(f.is_file(), "{}", f.display());
        }
    }
    let killed_pid = killed.id();
    killed.kill().unwrap();
    killed.wait().unwrap();
    // Its ssh processes (master connection, sessions) die with it.
    let left = wait_empty(|| with_env(&tag));
    assert!(left.is_empty(), "local processes left: {left:?}");
    // Its control-socket directories stay (nobody could remove them), one
    // per host, each naming its dead owner.
    let socket_dirs = || -> Vec<PathBuf> {
        std::fs::read_dir("/tmp")
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("ladon-ssh-{killed_pid}-")))
            })
            .collect()
    };
    let stale = socket_dirs();
    assert_eq!(stale.len(), 3, "{stale:?}");
    for dir in &stale {
        let owner = std::fs::read_to_string(dir.join("owner")).unwrap();
        assert_eq!(
            owner.split_whitespace().next(),
            Some(killed_pid.to_string().as_str()),
            "{}",
            dir.display()
        );
    }
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
    // The next run removed the dead run's control-socket directories, and
    // every node's pid and libfaketime files on the hosts.
    assert_eq!(socket_dirs(), Vec::<PathBuf>::new());
    for i in 1..=3 {
        for ext in ["pid", "faketime", "faketime.tmp"] {
            let f = d.join(format!("h{i}/n{i}/n{i}.{ext}"));
            assert!(!f.exists(), "{} is left", f.display());
        }
    }
    // No control shell's directory of a dead shell is left on the host.
    let dead_ctl: Vec<PathBuf> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.strip_prefix("ladon-ctl-")
                .and_then(|rest| rest.split('.').next())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        })
        .collect();
    assert_eq!(dead_ctl, Vec::<PathBuf>::new());
}

/// A user made for one test (root only), with passwordless sudo through a
/// file in /etc/sudoers.d; the user and the file are removed when dropped
/// (also on a failing assertion: unwinding drops it).
struct SudoUser {
    name: String,
    sudoers: PathBuf,
}

impl SudoUser {
    /// `None` (with the reason) when this is not root or sudo/useradd are
    /// missing.
    fn create(home: &Path) -> Result<SudoUser, String> {
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root: cannot make a user".into());
        }
        for tool in ["sudo", "useradd", "userdel"] {
            let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
                .iter()
                .any(|d| Path::new(d).join(tool).exists());
            if !found {
                return Err(format!("{tool} not found (apt-get install sudo passwd)"));
            }
        }
        let name = format!("ladon-t{}", std::process::id());
        // A usable password field ('*', not the locked '!') so that sshd
        // without PAM lets the key in; /bin/sh as its shell.
        let st = Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", "-p", "*", "-d"])
            .arg(home)
            .arg(&name)
            .status()
            .map_err(|e| format!("useradd: {e}"))?;
        if !st.success() {
            return Err(format!("useradd {name} failed: {st}"));
        }
        let user = SudoUser {
            sudoers: PathBuf::from(format!("/etc/sudoers.d/{name}")),
            name,
        };
        user.allow(true);
        Ok(user)
    }

    /// Adds or removes the user's passwordless sudo.
    fn allow(&self, yes: bool) {
        if yes {
            std::fs::write(
                &self.sudoers,
                format!("{} ALL=(ALL) NOPASSWD: ALL\n", self.name),
            )
            .unwrap();
            std::fs::set_permissions(
                &self.sudoers,
                std::os::unix::fs::PermissionsExt::from_mode(0o440),
            )
            .unwrap();
        } else {
            let _ = std::fs::remove_file(&self.sudoers);
        }
    }
}

impl Drop for SudoUser {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.sudoers);
        // Any process of the user (a session not yet ended) first, by pid.
        if let Some(uid) = Command::new("id")
            .args(["-u", &self.name])
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            for pid in std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let owner = status
                    .lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok());
                if owner == Some(uid) {
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

#[test]
fn sudo_hosts_run_nodes_and_commands_as_root() {
    if !available() {
        return;
    }
    let sshd = Sshd::start();
    let d = sshd.path();
    // The new user reads the authorized keys in the sshd's directory (as
    // itself) but cannot write there: only sudo can make the workdirs.
    std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let user = match SudoUser::create(d) {
        Ok(u) => u,
        Err(e) if std::env::var_os("CI").is_some() && unsafe { libc::geteuid() } == 0 => {
            panic!("{e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    // A node that says who it runs as, then is the correct counter.
    let node = d.join("whoami-node.sh");
    std::fs::write(
        &node,
        "#!/bin/sh\necho \"uid $(id -u)\" >&2\nexec python3 \"$(dirname \"$0\")/counter.py\" \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&node, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut text = format!(
        "files = [{:?}, {:?}]\n",
        example("maelstrom.py").display().to_string(),
        example("counter.py").display().to_string()
    );
    for i in 1..=3 {
        text.push_str(&format!(
            "\n[[host]]\naddress = \"127.0.0.1\"\nport = {}\nuser = {:?}\nidentity = {:?}\n\
             workdir = {:?}\nsudo = true\nssh_options = {:?}\n",
            sshd.port,
            user.name,
            d.join("client_key").display().to_string(),
            d.join(format!("s{i}")).display().to_string(),
            sshd.options()
        ));
    }
    let hosts = d.join("sudo-hosts.toml");
    std::fs::write(&hosts, text).unwrap();
    let store = d.join("results").display().to_string();
    let run = |test: &str| {
        ladon(&[
            "run",
            "--adapter",
            "process",
            "--bin",
            &node.display().to_string(),
            "--workload",
            "pn-counter",
            "--nodes",
            "3",
            "--time-limit",
            "1s",
            "--rate",
            "40",
            "--nemesis",
            "pause",
            "--store",
            &store,
            "--test",
            test,
            "--hosts",
            &hosts.display().to_string(),
        ])
    };
    let out = run("sudo");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("3 nodes on 3 host(s)"), "{err}");
    assert_eq!(
        verdict(&report(d.join("results").as_path(), "sudo")),
        ("valid".to_string(), vec![])
    );
    // The uploads were made by root in directories the user cannot write.
    use std::os::unix::fs::MetadataExt as _;
    for i in 1..=3 {
        let prog = d.join(format!("s{i}/n{i}/whoami-node.sh"));
        assert_eq!(
            std::fs::metadata(&prog).unwrap().uid(),
            0,
            "{}",
            prog.display()
        );
    }
    // Every node ran as root.
    let run_dir = std::fs::read_dir(d.join("results/sudo"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap();
    for n in ["n1", "n2", "n3"] {
        let log = std::fs::read_to_string(run_dir.join(format!("nodes/{n}.log"))).unwrap();
        assert!(log.lines().any(|l| l == "uid 0"), "{n}.log:\n{log}");
        assert!(
            !log.lines().any(|l| l.starts_with("uid ") && l != "uid 0"),
            "{n}.log:\n{log}"
        );
    }
    let left = sshd.wait_sessions_gone();
    assert!(left.is_empty(), "SSH sessions left: {left:?}");

    // Without passwordless sudo: one line naming the host and what is missing.
    user.allow(false);
    let out = run("nosudo");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "ladon: {}: host 1 (line 3, {}@127.0.0.1:{}): missing passwordless sudo (sudo -n): ",
            hosts.display(),
            user.name,
            sshd.port
        )),
        "{last}"
    );
    assert!(last.contains("password is required"), "{last}");
    let left = sshd.wait_sessions_gone();
    assert!(left.is_empty(), "SSH sessions left: {left:?}");
}

/// A hosts file with one host per sshd (each its own machine), written into
/// the first sshd's directory.
fn hosts_file_of(sshds: &[Sshd]) -> PathBuf {
    let mut text = format!(
        "files = [{:?}]\n",
        example("maelstrom.py").display().to_string()
    );
    for (i, s) in sshds.iter().enumerate() {
        text.push_str(&format!(
            "\n[[host]]\naddress = {:?}\nport = {}\nuser = {:?}\nidentity = {:?}\n\
             workdir = {:?}\nssh_options = {:?}\n",
            s.address,
            s.port,
            user(),
            s.path().join("client_key").display().to_string(),
            s.path().join(format!("w{}", i + 1)).display().to_string(),
            s.options()
        ));
    }
    let p = sshds[0].path().join("ns-hosts.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn partitions_between_namespaced_hosts_are_real_and_removed() {
    if !available() {
        return;
    }
    use ladon_adapters::db::netns::{self, Network};
    use ladon_adapters::host::nft::Partitions;
    use std::collections::BTreeSet;
    if let Some(why) = netns::unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    // Declared first, dropped last: the sshds inside go before it.
    let net = Network::create(3).unwrap();
    let sshds = namespaced_sshds(&net);
    let hosts: Vec<Arc<SshHost>> = sshds
        .iter()
        .map(|s| Arc::new(SshHost::connect(&s.config()).unwrap()))
        .collect();
    for h in &hosts {
        h.open_control().unwrap();
    }
    let addrs: Vec<std::net::IpAddr> = (0..3).map(|i| net.addr(i).into()).collect();
    // Whether host `i` opens a TCP connection to host `j`'s sshd within
    // 0.5 s (bash's /dev/tcp; --norc: no login script).
    let reach = |i: usize, j: usize| {
        let out = hosts[i]
            .run(&format!(
                "timeout 0.5 bash --norc -c 'exec 3<>/dev/tcp/{}/22'",
                addrs[j]
            ))
            .unwrap();
        out.status.success()
    };
    let table = |i: usize| nft_table_in(&net.ns(i));
    assert!(reach(0, 1) && reach(1, 0) && reach(0, 2));
    {
        let parts = Partitions::new(
            hosts.iter().map(|h| h.clone() as Arc<dyn Host>).collect(),
            addrs.clone(),
        );
        // n1 and n2 cut from each other; n3 still reaches both, and
        // Ladon (on this namespace's address) still reaches every host.
        parts.cut(&BTreeSet::from([(0, 1), (1, 0)])).unwrap();
        assert!(!reach(0, 1), "n1 still reaches n2");
        assert!(!reach(1, 0), "n2 still reaches n1");
        assert!(reach(0, 2) && reach(2, 1) && reach(1, 2));
        assert!(table(0) && table(1) && !table(2));
        // A one-way cut: n3 drops what n1 sends; n1 drops what it sends to n3.
        parts.cut(&BTreeSet::from([(0, 2)])).unwrap();
        assert!(reach(0, 1) && reach(1, 0));
        assert!(!reach(0, 2) && !reach(2, 0));
        parts.heal().unwrap();
        assert!(reach(0, 1) && reach(0, 2) && reach(2, 0));
        assert!(!table(0) && !table(1) && !table(2));
        // Dropping the partitions heals them too.
        parts.cut(&BTreeSet::from([(1, 2)])).unwrap();
        assert!(table(1) && table(2));
    }
    assert!(!table(0) && !table(1) && !table(2));
    // A table a killed Ladon left on n2 (written behind Partitions' back).
    let leftover =
        ladon_adapters::host::nft::ruleset(&BTreeSet::from([addrs[0]]), &BTreeSet::new());
    let st = Command::new("ip")
        .args(["netns", "exec", &net.ns(1), "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(leftover.as_bytes())?;
            c.wait()
        })
        .unwrap();
    assert!(st.success() && table(1));
    drop(hosts);
    // A process-adapter run over the three namespaced hosts, with
    // partitions (the router's: the nodes talk only through Ladon), matches
    // the local run, and its preflight removed the leftover table.
    let file = hosts_file_of(&sshds);
    let store = sshds[0].path().join("results");
    let store_s = store.display().to_string();
    let bin = example("counter.py").display().to_string();
    let base = [
        "run",
        "--adapter",
        "process",
        "--bin",
        &bin,
        "--workload",
        "pn-counter",
        "--nodes",
        "3",
        "--time-limit",
        "2s",
        "--rate",
        "60",
        "--seed",
        "11",
        "--nemesis",
        "partition",
        "--store",
        &store_s,
    ];
    let out_l = ladon(&[&base[..], &["--test", "local"]].concat());
    let out_r = ladon(
        &[
            &base[..],
            &["--test", "remote", "--hosts", &file.display().to_string()],
        ]
        .concat(),
    );
    let err_r = String::from_utf8_lossy(&out_r.stderr);
    assert_eq!(
        out_r.status.code(),
        out_l.status.code(),
        "remote:\n{}\nlocal:\n{}",
        String::from_utf8_lossy(&out_r.stdout),
        String::from_utf8_lossy(&out_l.stdout)
    );
    assert!(
        err_r.contains(&format!(
            "host 2 (line 11, {}@{}:22): removed the nft table inet ladon_hosts an earlier run left behind",
            user(),
            addrs[1]
        )),
        "{err_r}"
    );
    assert!(!table(0) && !table(1) && !table(2));
    assert_eq!(
        verdict(&report(&store, "remote")),
        verdict(&report(&store, "local"))
    );
    assert_eq!(verdict(&report(&store, "local")).0, "valid");
    for s in &sshds {
        let left = s.wait_sessions_gone();
        assert!(left.is_empty(), "SSH sessions left: {left:?}");
    }
}

/// Processes whose working directory is under `dir` (a database server
/// runs in its data directory).
fn processes_in(dir: &Path) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| std::fs::read_link(format!("/proc/{p}/cwd")).is_ok_and(|c| c.starts_with(dir)))
        .collect()
}

/// Root's servers run as `postgres`, which must reach the hosts' workdirs.
#[cfg(feature = "postgres")]
fn open_to_all(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The three hosts of `sshd.hosts_file(3)` hold nothing of a database
/// run's nodes (no data, log, pid or clock file), and no SSH session is
/// left.
#[cfg(feature = "postgres")]
fn assert_nothing_left_on(sshd: &Sshd) {
    for (i, n) in ["n1", "n2", "n3"].iter().enumerate() {
        let dir = sshd.path().join(format!("h{}", i + 1)).join(n);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{}: {left:?}", dir.display());
    }
    let left = sshd.wait_sessions_gone();
    assert!(left.is_empty(), "SSH sessions left: {left:?}");
}

/// A run's exit code, verdict and forbidden anomalies.
#[cfg(feature = "postgres")]
type Outcome = (Option<i32>, (String, Vec<String>));

/// A database run locally and over SSH (`--hosts file`) with the same
/// options: both exit codes and verdicts, and the remote run's stderr.
#[cfg(feature = "postgres")]
fn db_local_and_remote(
    store: &Path,
    file: &Path,
    local_network: &str,
    args: &[&str],
) -> (Outcome, Outcome, String) {
    let store_s = store.display().to_string();
    let mut base = vec![
        "run",
        "--adapter",
        "postgres-pglogical",
        "--nodes",
        "3",
        "--store",
        &store_s,
    ];
    base.extend_from_slice(args);
    let out_l = ladon(&[&base[..], &["--test", "local", "--network", local_network]].concat());
    let file_s = file.display().to_string();
    let out_r = ladon(&[&base[..], &["--test", "remote", "--hosts", &file_s]].concat());
    let err_r = String::from_utf8_lossy(&out_r.stderr).into_owned();
    let err_l = String::from_utf8_lossy(&out_l.stderr);
    assert!(
        err_r.contains("nodes on the hosts of"),
        "remote run's stderr:\n{err_r}\nlocal run's stderr:\n{err_l}"
    );
    let reported = |test: &str| {
        db_common::run_dir(store, test).is_some_and(|d| d.join("report.json").is_file())
    };
    assert!(reported("local"), "local run's stderr:\n{err_l}");
    assert!(reported("remote"), "remote run's stderr:\n{err_r}");
    (
        (out_l.status.code(), verdict(&report(store, "local"))),
        (out_r.status.code(), verdict(&report(store, "remote"))),
        err_r,
    )
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_over_ssh_matches_the_local_run_under_crashes_pauses_and_clocks() {
    if !available() || !db_common::postgres_available() {
        return;
    }
    let sshd = Sshd::start();
    open_to_all(sshd.path());
    let file = sshd.hosts_file(3);
    let store = sshd.path().join("results");
    let (local, remote, err) = db_local_and_remote(
        &store,
        &file,
        "proxy",
        // Sets: inserts only, so no pglogical UPDATE can overtake its
        // INSERT (which diverges a register run at random, locally too):
        // both runs must be valid.
        &[
            "--workload",
            "set",
            "--time-limit",
            "5s",
            "--nemesis",
            "crash,pause,clock",
            "--nemesis-interval",
            "1s",
            "--seed",
            "5",
        ],
    );
    assert_eq!(remote, local, "{err}");
    assert_eq!(remote.1 .0, "valid", "{err}");
    let r = report(&store, "remote");
    // The faults reached the remote servers: every kind is in the history.
    let history = std::fs::read_to_string(run_dir(&store, "remote").join("history.jsonl")).unwrap();
    for f in ["\"f\":\"crash\"", "\"f\":\"pause\"", "\"f\":\"clock"] {
        assert!(history.contains(f), "no {f} nemesis event:\n{r}");
    }
    // Nothing is left on the hosts: no server, data, pid or clock file.
    assert_eq!(processes_in(sshd.path()), Vec::<i32>::new());
    assert_nothing_left_on(&sshd);
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_over_ssh_partitions_namespaced_hosts() {
    if !available() || !db_common::postgres_available() {
        return;
    }
    use ladon_adapters::db::netns::{self, Network};
    use std::sync::atomic::{AtomicBool, Ordering};
    if let Some(why) = netns::unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    // Declared first, dropped last: the sshds inside go before it.
    let net = Network::create(3).unwrap();
    let sshds = namespaced_sshds(&net);
    for s in &sshds {
        open_to_all(s.path());
    }
    let file = hosts_file_of(&sshds);
    let dir = sshds[0].path();
    // n1 cut off from n2 and n3 for 6 s (longer than the servers'
    // replication timeouts), then healed.
    let schedule = dir.join("cut.json");
    std::fs::write(
        &schedule,
        r#"{"steps": [
  {"at": "1s", "action": {"partition": {"blocked": [[0,1],[1,0],[0,2],[2,0]], "groups": [[0],[1,2]]}}},
  {"at": "7s", "action": "heal"}
]}"#,
    )
    .unwrap();
    let table = |i: usize| nft_table_in(&net.ns(i));
    // Watch the hosts' rules while the runs go: the remote run's cut must
    // be a table on n1's, n2's and n3's hosts.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, ns): (_, Vec<String>) = (stop.clone(), (0..3).map(|i| net.ns(i)).collect());
        std::thread::spawn(move || {
            let mut seen = [false; 3];
            while !stop.load(Ordering::Relaxed) {
                for (i, n) in ns.iter().enumerate() {
                    seen[i] |= nft_table_in(n);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            seen
        })
    };
    let store = dir.join("results");
    let schedule_s = schedule.display().to_string();
    let (local, remote, err) = db_local_and_remote(
        &store,
        &file,
        "netns",
        &[
            "--workload",
            "set",
            "--time-limit",
            "9s",
            "--nemesis-schedule",
            &schedule_s,
            "--seed",
            "3",
        ],
    );
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    assert_eq!(
        seen,
        [true, true, true],
        "the cut never reached the hosts' rules\n{err}"
    );
    assert!(
        !table(0) && !table(1) && !table(2),
        "rules left on the hosts"
    );
    assert_eq!(remote, local, "{err}");
    assert_eq!(remote.1 .0, "valid", "{err}");
    // The cut was real: n1's server lost its replication connections.
    let n1 = std::fs::read_to_string(run_dir(&store, "remote").join("nodes/n1.log")).unwrap();
    assert!(
        n1.contains("timeout") || n1.contains("could not receive data"),
        "no replication timeout in n1's log:\n{n1}"
    );
    for s in &sshds {
        assert_eq!(processes_in(s.path()), Vec::<i32>::new());
        let left = s.wait_sessions_gone();
        assert!(left.is_empty(), "SSH sessions left: {left:?}");
    }
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_servers_left_by_a_killed_ladon_are_removed_by_the_next_run() {
    if !available() || !db_common::postgres_available() {
        return;
    }
    let sshd = Sshd::start();
    open_to_all(sshd.path());
    let file = sshd.hosts_file(3).display().to_string();
    let store = sshd.path().join("results");
    let store_s = store.display().to_string();
    let stderr = sshd.path().join("killed.stderr");
    let args = [
        "run",
        "--adapter",
        "postgres-pglogical",
        "--workload",
        "register",
        "--nodes",
        "3",
        "--store",
        &store_s,
        "--hosts",
        &file,
    ];
    // Clock faults on: each server has libfaketime's shared memory too.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ladon"))
        .args(args)
        .args([
            "--time-limit",
            "60s",
            "--nemesis",
            "clock",
            "--test",
            "killed",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&stderr)
        .unwrap_or_default()
        .contains("nodes up and replicating")
    {
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "{}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The servers outlive the killed Ladon (daemons on their hosts).
    let servers = processes_in(sshd.path());
    assert!(!servers.is_empty(), "no server ran");
    let shm = |pids: &[i32]| -> Vec<String> {
        pids.iter()
            .map(|p| format!("/dev/shm/faketime_shm_{p}"))
            .filter(|f| Path::new(f).exists())
            .collect()
    };
    // The postmasters (their pid files), and their libfaketime files.
    let postmasters: Vec<i32> = ["n1", "n2", "n3"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let f = sshd.path().join(format!("h{}/{n}/{n}.pid", i + 1));
            let text = std::fs::read_to_string(&f).unwrap();
            text.split_whitespace().next().unwrap().parse().unwrap()
        })
        .collect();
    // The next run sweeps them, runs, and leaves nothing.
    let out = ladon(&[&args[..], &["--time-limit", "2s", "--test", "next"]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for h in 1..=3 {
        assert!(
            err.contains(&format!(
                "host {h} (line {}, {}@127.0.0.1:{}): killed 1 node process(es) an earlier run left behind",
                3 + (h - 1) * 8,
                user(),
                sshd.port
            )),
            "{err}"
        );
    }
    assert_eq!(processes_in(sshd.path()), Vec::<i32>::new());
    assert_eq!(shm(&postmasters), Vec::<String>::new());
    assert_nothing_left_on(&sshd);
}
