//! Maelstrom parity and hostile nodes: messages before `init_ok`, slow
//! gossip, daemonized grandchildren, floods, over-long lines and SIGTERM.
//! Each test runs a small node of its own and asserts a valid outcome and
//! that no process is left behind.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ladon_adapters::process::Workload;
use ladon_checker::{check_path, CheckOptions, Verdict};
use ladon_harness::live::{run, LiveOptions, LiveOutcome};
use serde_json::Value as Json;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/nodes")
        .join(name)
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    writeln!(
        f,
        "#!/usr/bin/env python3\nimport json, os, sys, time\n{body}"
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn opts(bin: PathBuf, workload: Workload, dir: &Path) -> LiveOptions {
    let mut o = LiveOptions::new(bin, workload, dir.join("run"));
    o.time_limit = Duration::from_millis(1200);
    o.op_timeout = Duration::from_millis(500);
    o.init_timeout = Duration::from_secs(20);
    o.rate = 50.0;
    o
}

fn messages(dir: &Path) -> Vec<Json> {
    std::fs::read_to_string(dir.join("run/messages.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn alive(pid: i32) -> bool {
    // A zombie is dead for our purposes; /proc/<pid>/stat's state is 'Z'.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.contains(") Z "),
        Err(_) => false,
    }
}

fn assert_reaped(out: &LiveOutcome) {
    for &pid in &out.pids {
        assert!(!alive(pid), "node process {pid} outlived the run");
    }
}

fn verdict(out: &LiveOutcome) -> Verdict {
    let r = check_path(&out.history, &CheckOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{:#?}", r.anomalies);
    r.verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_uses_lww_kv_and_greets_peers_before_init_ok_runs_txn_rw_register() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(
        example("rw_register.py"),
        Workload::TxnRwRegister,
        dir.path(),
    );
    let out = run(&o).await.unwrap();
    assert_reaped(&out);
    assert_eq!(verdict(&out), Verdict::Valid);
    assert!(out.finals.converged_ns.is_some());
    // Each node waited for lww-kv's reply before init_ok: it got one.
    assert!(out.router.service_requests >= 3, "{:?}", out.router);
    // Every greeting sent before init reached its peer, none was dropped.
    let events = messages(dir.path());
    let hellos = |e: &str| {
        events
            .iter()
            .filter(|m| m["summary"] == "hello" && m["event"] == e)
            .count()
    };
    assert_eq!(
        (hellos("send"), hellos("deliver"), hellos("drop")),
        (6, 6, 0)
    );
    assert!(events.iter().all(|m| m["event"] != "drop"));
    let log = std::fs::read_to_string(dir.path().join("run/nodes/n1.log")).unwrap();
    assert!(log.contains("greeted by ['n2', 'n3']"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_gossiping_every_5s_converges_within_the_default_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(
        example("rw_register.py"),
        Workload::TxnRwRegister,
        dir.path(),
    );
    o.bin_args = vec!["--gossip-every".into(), "5".into()];
    o.time_limit = Duration::from_millis(500);
    assert_eq!(o.converge_timeout, Duration::from_secs(10), "the default");
    let out = run(&o).await.unwrap();
    assert_reaped(&out);
    let t = out.finals.time_to_converge_s().expect("converged");
    assert!(t < 10.0, "{t}");
    assert!(out.finals.rounds >= 1);
    assert_eq!(verdict(&out), Verdict::Valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_drop_names_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    // n1 sends to a node that does not exist, and to n2 which crashes.
    let body = r#"
for line in sys.stdin:
    m = json.loads(line); b = m["body"]
    if b["type"] == "init":
        me = b["node_id"]
        print(json.dumps({"src": me, "dest": m["src"], "body": {"type": "init_ok", "in_reply_to": b["msg_id"]}}), flush=True)
        if me == "n2":
            os._exit(0)
        print(json.dumps({"src": me, "dest": "n9", "body": {"type": "hi"}}), flush=True)
    elif b["type"] in ("read", "add"):
        # n2 is down by the time clients run.
        print(json.dumps({"src": m["dest"], "dest": "n2", "body": {"type": "hi"}}), flush=True)
        print(json.dumps({"src": m["dest"], "dest": m["src"], "body": {"type": b["type"] + "_ok", "value": 0, "in_reply_to": b["msg_id"]}}), flush=True)
"#;
    let bin = script(dir.path(), "drops.py", body);
    let mut o = opts(bin, Workload::GCounter, dir.path());
    o.nodes = 2;
    o.concurrency = 1;
    o.converge_timeout = Duration::from_millis(200);
    let out = run(&o).await.unwrap();
    assert_reaped(&out);
    let drops: Vec<(String, String)> = messages(dir.path())
        .iter()
        .filter(|m| m["event"] == "drop")
        .map(|m| {
            (
                m["to"].as_str().unwrap().to_string(),
                m["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        drops.contains(&("n9".into(), "unknown destination".into())),
        "{drops:?}"
    );
    assert!(
        drops.contains(&("n2".into(), "peer crashed".into())),
        "{drops:?}"
    );
    assert_eq!(out.router.dropped, drops.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemonized_grandchild_does_not_outlive_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    std::fs::create_dir(&pids).unwrap();
    let body = format!(
        r#"
def daemon():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            open(os.path.join({pids:?}, str(os.getpid())), "w").close()
            time.sleep(120)
        os._exit(0)
for line in sys.stdin:
    m = json.loads(line); b = m["body"]
    if b["type"] == "init":
        daemon()
        print(json.dumps({{"src": b["node_id"], "dest": m["src"], "body": {{"type": "init_ok", "in_reply_to": b["msg_id"]}}}}), flush=True)
    elif b["type"] == "read":
        print(json.dumps({{"src": m["dest"], "dest": m["src"], "body": {{"type": "read_ok", "value": 0, "in_reply_to": b["msg_id"]}}}}), flush=True)
"#,
        pids = pids.display().to_string()
    );
    let bin = script(dir.path(), "daemon.py", &body);
    let mut o = opts(bin, Workload::GCounter, dir.path());
    o.nodes = 2;
    o.concurrency = 0;
    o.converge_timeout = Duration::from_millis(200);
    let out = run(&o).await.unwrap();
    assert_reaped(&out);
    let daemons: Vec<i32> = std::fs::read_dir(&pids)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(daemons.len(), 2, "each node daemonized one grandchild");
    for pid in daemons {
        assert!(!alive(pid), "daemonized grandchild {pid} outlived the run");
    }
}

/// Runs the `ladon` binary on `args`, sampling its peak RSS (VmHWM) while
/// it runs; calls `during` once `ready()` holds.
fn ladon(
    args: &[&str],
    ready: impl Fn() -> bool,
    during: impl FnOnce(i32),
) -> (std::process::Output, u64) {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ladon"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut during = Some(during);
    let mut peak_kb = 0u64;
    let status_path = format!("/proc/{pid}/status");
    loop {
        match std::fs::read_to_string(&status_path) {
            Ok(s) if !s.contains("State:\tZ") => {
                if let Some(kb) = s
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    peak_kb = peak_kb.max(kb);
                }
            }
            _ => break,
        }
        if during.is_some() && ready() {
            if let Some(f) = during.take() {
                f(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), peak_kb)
}

#[test]
fn a_flooding_node_is_paused_and_ladon_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    // n1 prints 1 MiB messages to n2 as fast as it can; n2 reads slowly.
    let body = r#"
me = None
pad = "x" * (1 << 20)
for line in sys.stdin:
    m = json.loads(line); b = m["body"]
    if b["type"] == "init":
        me = b["node_id"]
        print(json.dumps({"src": me, "dest": m["src"], "body": {"type": "init_ok", "in_reply_to": b["msg_id"]}}), flush=True)
        if me == "n1":
            msg = json.dumps({"src": me, "dest": "n2", "body": {"type": "junk", "pad": pad}}) + "\n"
            while True:
                sys.stdout.write(msg)
        else:
            while True:
                time.sleep(0.05)
                os.read(0, 1 << 16)
"#;
    let bin = script(dir.path(), "flood.py", body);
    let store = dir.path().join("store");
    let (out, peak_kb) = ladon(
        &[
            "run",
            "--adapter",
            "process",
            "--bin",
            bin.to_str().unwrap(),
            "--workload",
            "g-counter",
            "--nodes",
            "2",
            "--concurrency",
            "0",
            "--time-limit",
            "2s",
            "--converge-timeout",
            "100ms",
            "--store",
            store.to_str().unwrap(),
            "--seed",
            "1",
        ],
        || false,
        |_| {},
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("ladon's peak RSS under the flood: {peak_kb} kB");
    assert!(peak_kb < 200 * 1024, "peak RSS {peak_kb} kB; {stderr}");
    let run = store.join("latest");
    let summary = std::fs::read_to_string(run.join("summary.txt")).unwrap();
    assert!(
        summary.contains("backpressure: Ladon paused reading n1's stdout"),
        "{summary}"
    );
    let log = std::fs::read_to_string(run.join("nodes/n1.log")).unwrap();
    assert!(log.contains("paused reading its stdout"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_over_16_mib_is_reported_as_over_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"
for line in sys.stdin:
    m = json.loads(line); b = m["body"]
    if b["type"] == "init":
        print(json.dumps({"src": b["node_id"], "dest": m["src"], "body": {"type": "init_ok", "in_reply_to": b["msg_id"]}}), flush=True)
        if b["node_id"] == "n1":
            sys.stdout.write('{"src": "n1", "dest": "n2", "body": {"type": "big", "pad": "' + "y" * (17 << 20) + '"}}\n')
            sys.stdout.flush()
    elif b["type"] == "read":
        print(json.dumps({"src": m["dest"], "dest": m["src"], "body": {"type": "read_ok", "value": 0, "in_reply_to": b["msg_id"]}}), flush=True)
"#;
    let bin = script(dir.path(), "long.py", body);
    let mut o = opts(bin, Workload::GCounter, dir.path());
    o.nodes = 2;
    o.concurrency = 1;
    o.converge_timeout = Duration::from_millis(300);
    let out = run(&o).await.unwrap();
    assert_reaped(&out);
    let log = std::fs::read_to_string(dir.path().join("run/nodes/n1.log")).unwrap();
    assert!(
        log.contains("printed a line over the 16 MiB limit"),
        "{log}"
    );
    assert!(!log.contains("not JSON"), "{log}");
    assert_eq!(out.router.malformed, 1);
}

#[test]
fn sigterm_is_handled_like_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    std::fs::create_dir(&pids).unwrap();
    let body = format!(
        r#"
open(os.path.join({pids:?}, str(os.getpid())), "w").close()
for line in sys.stdin:
    m = json.loads(line); b = m["body"]
    r = {{"type": b["type"] + "_ok", "in_reply_to": b["msg_id"]}}
    if b["type"] == "read":
        r["value"] = 0
    print(json.dumps({{"src": m["dest"], "dest": m["src"], "body": r}}), flush=True)
"#,
        pids = pids.display().to_string()
    );
    let bin = script(dir.path(), "quiet.py", &body);
    let store = dir.path().join("store");
    let (out, _) = ladon(
        &[
            "run",
            "--adapter",
            "process",
            "--bin",
            bin.to_str().unwrap(),
            "--workload",
            "g-counter",
            "--time-limit",
            "60s",
            "--store",
            store.to_str().unwrap(),
            "--seed",
            "1",
        ],
        || std::fs::read_dir(&pids).unwrap().count() == 3,
        |pid| unsafe {
            libc::kill(pid, libc::SIGTERM);
        },
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    let history = std::fs::read_to_string(store.join("latest/history.jsonl")).unwrap();
    for line in history.lines() {
        serde_json::from_str::<Json>(line).unwrap();
    }
    let nodes: Vec<i32> = std::fs::read_dir(&pids)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(nodes.len(), 3);
    for pid in nodes {
        assert!(!alive(pid), "node {pid} outlived SIGTERM");
    }
}

#[test]
fn checking_dev_zero_stops_at_the_line_cap() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ladon"))
        .args(["check", "/dev/zero"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("over the 64 MiB limit"), "{stderr}");
    assert!(stderr.contains("/dev/zero"), "{stderr}");
}
