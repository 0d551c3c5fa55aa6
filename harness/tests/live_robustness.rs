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
    o.init_timeout = Duration::from_millis(1500);
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
    let err = run(&opts(bin, &dir)).await.unwrap_err();
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
