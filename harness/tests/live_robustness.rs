//! Misbehaving nodes: the run ends with a clear error or `info` operations,
//! the history stays well-formed, and every child is reaped.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use ladon_adapters::process::Workload;
use ladon_checker::history::EventType;
use ladon_harness::live::{run, LiveOptions};

fn script(dir: &tempfile::TempDir, name: &str, body: &str) -> PathBuf {
    let p = dir.path().join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    writeln!(f, "#!/usr/bin/env python3\nimport json, sys, time\n{body}").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn opts(bin: PathBuf, dir: &tempfile::TempDir) -> LiveOptions {
    let mut o = LiveOptions::new(bin, Workload::GCounter, dir.path().join("run"));
    o.time_limit = Duration::from_millis(800);
    o.op_timeout = Duration::from_millis(300);
    // Readiness gets a generous deadline: Python starting on two loaded cores
    // can take seconds. The test of the init timeout sets its own.
    o.init_timeout = Duration::from_secs(20);
    o.converge_timeout = Duration::from_millis(600);
    o.nodes = 2;
    o.concurrency = 2;
    o
}

const INIT_THEN: &str = r#"
for line in sys.stdin:
    m = json.loads(line)
    b = m["body"]
    if b["type"] == "init":
        print(json.dumps({"src": b["node_id"], "dest": m["src"], "body": {"type": "init_ok", "in_reply_to": b["msg_id"]}}), flush=True)
        continue
    handle(m)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dies_at_start_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bin = script(&dir, "dies.py", "sys.stderr.write('boom\\n'); sys.exit(3)");
    let err = run(&opts(bin, &dir)).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("cannot start node n1")
            && msg.contains("closed stdout before answering init")
            && msg.contains("exit code 3"),
        "{msg}"
    );
    let log = std::fs::read_to_string(dir.path().join("run/nodes/n1.log")).unwrap();
    assert_eq!(log, "boom\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_never_answers_init_times_out_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bin = script(&dir, "silent.py", "time.sleep(60)");
    let mut o = opts(bin, &dir);
    o.init_timeout = Duration::from_millis(1500);
    let err = run(&o).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("node n1 did not answer init within 1.5s"),
        "{err:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_wrong_replies_and_hangs_become_info_and_the_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let handler = r#"
def handle(m):
    b = m["body"]
    print("not json at all", flush=True)
    if b["type"] == "add":
        # answers the wrong message type
        print(json.dumps({"src": m["dest"], "dest": m["src"], "body": {"type": "txn_ok", "in_reply_to": b["msg_id"]}}), flush=True)
    # reads hang forever: never answered
"#;
    let bin = script(&dir, "rude.py", &format!("{handler}\n{INIT_THEN}"));
    let out = run(&opts(bin, &dir)).await.expect("the run completes");
    let infos: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.kind == EventType::Info && e.f == "txn")
        .collect();
    assert!(!infos.is_empty());
    for e in &infos {
        let err = e.error.as_deref().unwrap();
        assert!(
            err == "timeout"
                || err.starts_with("unexpected reply: type \"txn_ok\", expected \"add_ok\""),
            "{err}"
        );
    }
    assert!(out
        .events
        .iter()
        .all(|e| e.kind != EventType::Ok || e.f != "txn"));
    assert!(out.router.malformed > 0);
    let log = std::fs::read_to_string(dir.path().join("run/nodes/n1.log")).unwrap();
    assert!(
        log.contains("not JSON (log to stderr instead): not json at all"),
        "{log}"
    );
    for pid in &out.pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} still exists"
        );
    }
}

/// Test binaries run tests on parallel threads of one process: a panic on
/// another thread (another test failing) must not kill this run's nodes.
/// (A process-wide panic hook that SIGKILLed every registered node did, and
/// made the example tests fail together on loaded machines.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_elsewhere_in_the_process_leaves_a_runs_nodes_alone() {
    let dir = tempfile::tempdir().unwrap();
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/nodes/counter.py");
    let mut o = opts(bin, &dir);
    o.time_limit = Duration::from_millis(1500);
    o.op_timeout = Duration::from_secs(1);
    o.converge_timeout = Duration::from_secs(5);
    let history = dir.path().join("run/history.jsonl");
    let live = tokio::spawn(async move { run(&o).await });
    // Wait until the nodes are up and clients are writing.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&history).map_or(0, |t| t.lines().count()) < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let other = std::thread::spawn(|| panic!("another test failing (expected by this test)"));
    assert!(other.join().is_err());
    let out = live.await.unwrap().expect("the run completes");
    let exits: Vec<_> = out.events.iter().filter(|e| e.f == "node-exit").collect();
    assert!(exits.is_empty(), "nodes were killed: {exits:?}");
    assert!(out.converged_ns.is_some());
    assert!(out
        .events
        .iter()
        .any(|e| e.kind == EventType::Ok && e.f == "final"));
}
