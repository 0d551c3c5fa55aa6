//! The live final phase's window (`--converge-timeout`), end to end through
//! the `ladon` binary: a node whose state is still changing when the window
//! ends gets a `divergence` whose explanation says so (naming the flag and
//! the last change seen), and whose examples list what each node lacks
//! rather than both full sets.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value as Json;

/// A g-set node that learns its peers' elements only by a slow trickle: every
/// 150 ms it sends each peer one element the peer may lack. Adds at 100 per
/// second outrun the trickle, so the nodes agree only long after the heal.
const TRICKLE: &str = r#"#!/usr/bin/env python3
import json, sys, threading, time
me, peers, have, lock = None, [], set(), threading.Lock()
sent = {}
def out(m):
    with lock:
        sys.stdout.write(json.dumps(m) + "\n"); sys.stdout.flush()
def trickle():
    while True:
        time.sleep(0.15)
        for p in peers:
            todo = sorted(have - sent.setdefault(p, set()))
            if todo:
                sent[p].add(todo[0])
                out({"src": me, "dest": p, "body": {"type": "gossip", "element": todo[0]}})
for line in sys.stdin:
    m = json.loads(line); b = m["body"]; t = b["type"]
    if t == "init":
        me = b["node_id"]; peers = [n for n in b["node_ids"] if n != me]
        threading.Thread(target=trickle, daemon=True).start()
        out({"src": me, "dest": m["src"], "body": {"type": "init_ok", "in_reply_to": b["msg_id"]}})
    elif t == "add":
        have.add(b["element"])
        out({"src": me, "dest": m["src"], "body": {"type": "add_ok", "in_reply_to": b["msg_id"]}})
    elif t == "read":
        out({"src": me, "dest": m["src"], "body": {"type": "read_ok", "in_reply_to": b["msg_id"], "value": sorted(have)}})
    elif t == "gossip":
        have.add(b["element"])
"#;

#[test]
fn a_window_ending_while_states_change_says_so_and_lists_only_differences() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("trickle.py");
    std::fs::File::create(&bin)
        .unwrap()
        .write_all(TRICKLE.as_bytes())
        .unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = dir.path().join("store");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ladon"))
        .args(["run", "--adapter", "process", "--bin"])
        .arg(&bin)
        .args([
            "--workload",
            "g-set",
            "--nodes",
            "2",
            "--concurrency",
            "2",
            "--rate",
            "100",
            "--time-limit",
            "1s",
            "--converge-timeout",
            "1s",
            "--seed",
            "3",
            "--store",
        ])
        .arg(&store)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let report: Json =
        serde_json::from_str(&std::fs::read_to_string(store.join("latest/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["verdict"], "invalid");
    let ex = &report["anomalies"]["divergence"]["examples"][0];
    let text = ex["explanation"].as_str().unwrap();
    // What the window note says: the window, the flag, the last change.
    assert!(
        text.contains(
            "(the final reads were still changing when the 1s window (--converge-timeout) ended: \
             the last change was seen on "
        ),
        "{text}"
    );
    assert!(
        text.contains("a longer --converge-timeout may let the nodes agree)"),
        "{text}"
    );
    // Long states are described by their differences, not printed whole.
    let states = ex["detail"]["states"].as_array().unwrap();
    assert_eq!(states.len(), 2, "{text}");
    let sizes: Vec<usize> = states
        .iter()
        .map(|s| s["state"].as_array().unwrap().len())
        .collect();
    assert!(sizes.iter().all(|&n| n > 8), "{sizes:?}");
    let union = {
        let mut all: Vec<i64> = states
            .iter()
            .flat_map(|s| s["state"].as_array().unwrap().iter())
            .map(|v| v.as_i64().unwrap())
            .collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    };
    assert!(
        text.starts_with(&format!(
            "after the final phase the nodes disagree on set key {}: {union} elements in all; ",
            ex["key"]
                .as_str()
                .map_or(ex["key"].to_string(), str::to_string)
        )),
        "{text}"
    );
    assert!(text.contains(" but lack"), "{text}");
    // Each node's whole state is not spelled out: the explanation is short.
    assert!(text.len() < 700, "{} bytes: {text}", text.len());
    no_stray(&bin);
}

/// None of the run's node processes outlived `ladon`.
fn no_stray(bin: &Path) {
    let stray = std::process::Command::new("pgrep")
        .arg("-f")
        .arg(bin)
        .output()
        .unwrap();
    let pids = String::from_utf8_lossy(&stray.stdout);
    assert!(
        pids.trim().is_empty(),
        "{} still running: {pids}",
        bin.display()
    );
}
