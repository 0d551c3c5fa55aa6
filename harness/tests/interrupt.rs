//! Interrupted and failed runs, in every mode: SIGINT and SIGTERM into a
//! simulated and a live (`--adapter process`) run write the history so far,
//! report.json (verdict unknown, reason interrupted), summary.txt,
//! report.html and run.json's outcome, move `latest`, print one line and
//! exit 2, leaving no node process; SIGKILL leaves whole lines; a run that
//! cannot start leaves no run directory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn example(name: &str) -> String {
    format!("{}/../examples/nodes/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Starts `ladon run ARGS --store STORE`, its output into files in `store`.
fn spawn(args: &[&str], store: &Path) -> Child {
    std::fs::create_dir_all(store).unwrap();
    Command::new(env!("CARGO_BIN_EXE_ladon"))
        .arg("run")
        .args(args)
        .arg("--store")
        .arg(store)
        .stdin(Stdio::null())
        .stdout(File::create(store.join("stdout.txt")).unwrap())
        .stderr(File::create(store.join("stderr.txt")).unwrap())
        .spawn()
        .unwrap()
}

/// Polls `f` every 20 ms for up to 30 s.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The one run directory under `store/test`.
fn run_dir(store: &Path, test: &str) -> Option<PathBuf> {
    std::fs::read_dir(store.join(test))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.is_dir())
}

/// Waits until `file` in the run directory holds at least `min` bytes.
fn wait_for_file(store: &Path, test: &str, file: &str, min: u64) -> PathBuf {
    wait_for(file, || {
        let dir = run_dir(store, test)?;
        let len = std::fs::metadata(dir.join(file)).ok()?.len();
        (len >= min).then_some(dir)
    })
}

/// Every descendant process id of `pid` (via /proc/PID/task/*/children).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.filter_map(|t| t.ok()) {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

/// Whether `pid` still runs (a zombie waiting for its reaper does not).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
    }
}

fn wait_exit(child: &mut Child) -> i32 {
    let status = wait_for("ladon to exit", || child.try_wait().unwrap());
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Sends `signal` once the run has a history, and checks everything an
/// interrupted run leaves; returns the run directory.
fn interrupt(args: &[&str], test: &str, signal: i32, name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("results");
    let mut args = args.to_vec();
    args.extend(["--test", test]);
    let mut child = spawn(&args, &store);
    let dir = wait_for_file(&store, test, "history.jsonl", 2_000);
    let nodes = descendants(child.id());
    unsafe { libc::kill(child.id() as i32, signal) };
    let code = wait_exit(&mut child);
    let stderr = std::fs::read_to_string(store.join("stderr.txt")).unwrap();
    assert_eq!(code, 2, "{stderr}");
    let line = format!(
        "ladon: interrupted by {name}: the history so far, report.json (verdict unknown), summary.txt and report.html are in {}",
        dir.display()
    );
    assert_eq!(stderr.lines().last(), Some(line.as_str()), "{stderr}");
    let report = json(&dir.join("report.json"));
    assert_eq!(report["verdict"], "unknown");
    let reason = report["unknown_reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("interrupted by {name} before the run's end")),
        "{reason}"
    );
    let summary = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    assert!(
        summary.contains(&format!("interrupted by {name}")),
        "{summary}"
    );
    assert!(summary.contains("Verdict: UNKNOWN"), "{summary}");
    assert!(dir.join("report.html").is_file());
    let history = std::fs::read(dir.join("history.jsonl")).unwrap();
    assert!(
        history.ends_with(b"\n"),
        "history.jsonl ends in a whole line"
    );
    let run = json(&dir.join("run.json"));
    assert_eq!(run["outcome"]["interrupted"], name, "{run}");
    assert_eq!(
        std::fs::read_link(store.join("latest")).unwrap(),
        dir.strip_prefix(&store).unwrap()
    );
    for pid in nodes {
        assert!(!alive(pid), "node process {pid} outlived the run");
    }
    (tmp, dir)
}

const SIM: &[&str] = &[
    "--adapter",
    "toy",
    "--time-limit",
    "100000s",
    "--rate",
    "50",
    "--seed",
    "1",
];

#[test]
fn sigint_stops_a_simulated_run_with_every_file_written() {
    interrupt(SIM, "sim-int", libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_stops_a_simulated_run_with_every_file_written() {
    interrupt(SIM, "sim-term", libc::SIGTERM, "SIGTERM");
}

fn live_args(bin: &str) -> Vec<&str> {
    vec![
        "--adapter",
        "process",
        "--bin",
        bin,
        "--workload",
        "broadcast",
        "--time-limit",
        "60s",
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "300ms",
        "--seed",
        "1",
    ]
}

#[test]
fn sigint_stops_a_live_run_kills_its_nodes_and_writes_every_file() {
    let bin = example("broadcast.py");
    let (_tmp, dir) = interrupt(&live_args(&bin), "live-int", libc::SIGINT, "SIGINT");
    let messages = std::fs::read(dir.join("messages.jsonl")).unwrap();
    assert!(!messages.is_empty() && messages.ends_with(b"\n"));
}

#[test]
fn sigterm_stops_a_live_run_kills_its_nodes_and_writes_every_file() {
    let bin = example("broadcast.py");
    interrupt(&live_args(&bin), "live-term", libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigkill_of_a_live_run_leaves_whole_lines_and_no_node() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("results");
    let bin = example("broadcast.py");
    let mut args = live_args(&bin);
    args.extend(["--test", "live-kill"]);
    let mut child = spawn(&args, &store);
    let dir = wait_for_file(&store, "live-kill", "messages.jsonl", 1);
    wait_for_file(&store, "live-kill", "history.jsonl", 2_000);
    let nodes = descendants(child.id());
    assert!(!nodes.is_empty(), "the nodes run");
    child.kill().unwrap();
    child.wait().unwrap();
    for file in ["messages.jsonl", "history.jsonl"] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        assert!(!bytes.is_empty(), "{file} is empty");
        assert!(bytes.ends_with(b"\n"), "{file} ends in a torn line");
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            serde_json::from_slice::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("{file}: {e}: {}", String::from_utf8_lossy(line)));
        }
    }
    // The nodes die with Ladon (PR_SET_PDEATHSIG).
    for pid in nodes {
        wait_for("the nodes to die", || (!alive(pid)).then_some(()));
    }
}

#[test]
fn a_run_that_cannot_start_leaves_no_run_directory_and_keeps_latest() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("results");
    // A finished run first: `latest` points at it.
    let mut first = spawn(
        &[
            "--adapter",
            "toy",
            "--time-limit",
            "1s",
            "--seed",
            "2",
            "--test",
            "ok",
        ],
        &store,
    );
    assert_eq!(wait_exit(&mut first), 0);
    let latest = std::fs::read_link(store.join("latest")).unwrap();
    for (args, want) in [
        (
            vec![
                "--adapter",
                "process",
                "--workload",
                "g-set",
                "--test",
                "bad",
            ],
            "ladon: --adapter process needs --bin PATH (the node program)",
        ),
        (
            vec![
                "--adapter",
                "process",
                "--bin",
                "/nonexistent/node",
                "--workload",
                "g-set",
                "--test",
                "bad",
            ],
            "/nonexistent/node",
        ),
    ] {
        let mut child = spawn(&args, &store);
        assert_eq!(wait_exit(&mut child), 2);
        let stderr = std::fs::read_to_string(store.join("stderr.txt")).unwrap();
        assert!(stderr.contains(want), "{stderr}");
        assert!(!store.join("bad").exists(), "{args:?} left a directory");
        assert_eq!(std::fs::read_link(store.join("latest")).unwrap(), latest);
    }
}
