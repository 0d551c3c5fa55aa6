//! `ladon run --adapter mariadb` end to end: a no-fault set run is valid,
//! stores the servers' logs and leaves nothing; insert/insert conflicts
//! under partitions stop replication in STRICT mode, which the run reports
//! as non-convergence with the servers' error 1062 in the summary and the
//! report; a Ladon killed with SIGKILL mid-run leaves servers that the
//! next run removes; a missing server binary is refused with the install
//! command.
//!
//! Needs MariaDB (scripts/test installs it); without it the tests say so
//! and pass, except under CI (`CI` set).
#![cfg(feature = "mariadb")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use db_common::{output_of, registry_entries, registry_files, report_of, run_dir};
use ladon_adapters::db::process_group::group_alive;

mod db_common;

fn available() -> bool {
    db_common::found(ladon_adapters::db::mariadb::find_bins())
}

fn ladon(args: &[&str], store: &Path, registry: &Path) -> Command {
    db_common::ladon("mariadb", args, store, registry)
}

#[test]
fn a_no_fault_set_run_is_valid_stores_the_logs_and_leaves_nothing() {
    if !available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (store, registry) = (tmp.path().join("store"), tmp.path().join("registry"));
    let status = ladon(
        &[
            "--workload",
            "set",
            "--time-limit",
            "3s",
            "--seed",
            "1",
            "--guarantees",
            "convergence,no-lost-writes",
            "--test",
            "maria",
        ],
        &store,
        &registry,
    )
    .status()
    .unwrap();
    assert_eq!(status.code(), Some(0), "{}", output_of(&store));
    let dir = run_dir(&store, "maria").unwrap();
    assert_eq!(report_of(&dir)["verdict"], "valid");
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let oks = history
        .lines()
        .filter(|l| l.contains("\"type\":\"ok\"") && l.contains("\"f\":\"txn\""))
        .count();
    assert!(oks > 20, "only {oks} ok transactions");
    for n in ["n1", "n2", "n3"] {
        let log = std::fs::read_to_string(dir.join("nodes").join(format!("{n}.log"))).unwrap();
        assert!(log.contains("ready for connections"), "{n}: {log}");
    }
    let summary = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    assert!(summary.contains("nodes up and replicating in"), "{summary}");
    assert!(summary.contains("final phase: nodes agreed"), "{summary}");
    assert!(!summary.contains("replication stopped"), "{summary}");
    assert_eq!(registry_files(&registry), Vec::<PathBuf>::new());
}

#[test]
fn insert_conflicts_in_strict_mode_stop_replication_and_the_run_says_so() {
    if !available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (store, registry) = (tmp.path().join("store"), tmp.path().join("registry"));
    let status = ladon(
        &[
            "--workload",
            "register",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "1s",
            "--time-limit",
            "4s",
            // Long: the final phase must end as soon as it sees the SQL
            // thread stopped, not wait this out.
            "--converge-timeout",
            "60s",
            "--seed",
            "1",
            "--guarantees",
            "convergence",
            "--test",
            "strict",
            // The loopback proxies (the other tests take the default,
            // namespaces when Ladon is root): the replication state is read
            // while they still forward.
            "--network",
            "proxy",
        ],
        &store,
        &registry,
    )
    .status()
    .unwrap();
    let out = output_of(&store);
    assert_eq!(status.code(), Some(1), "{out}");
    let dir = run_dir(&store, "strict").unwrap();
    let finals = &report_of(&dir)["final_phase"];
    assert!(
        finals["rounds"].as_u64().is_some_and(|r| r < 100),
        "the final phase waited: {finals}"
    );
    let report = report_of(&dir);
    assert_eq!(report["verdict"], "invalid", "{out}");
    assert!(report["anomalies"]["divergence"].is_object(), "{report}");
    let problems: Vec<String> =
        serde_json::from_value(report["replication_problems"].clone()).unwrap();
    // Insert/insert: a duplicate key (1062). Multi-source replication
    // keeps no order across connections, so an update of a row that came
    // to its writer through a third node can also reach a replica that has
    // not got the row yet: a missing row (1032).
    let duplicates = problems
        .iter()
        .filter(|p| p.contains(": error 1062: ") && p.contains("Duplicate entry"))
        .count();
    assert!(duplicates > 0, "{problems:?}");
    for p in &problems {
        assert!(
            p.starts_with("replication stopped on n")
                && (p.contains(": error 1062: ") || p.contains(": error 1032: "))
                && p.ends_with("(IO thread Yes, SQL thread No)"),
            "{p}"
        );
    }
    let summary = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    // The final phase ends as soon as it sees an SQL thread stopped.
    assert!(
        summary.contains(
            "before --converge-timeout 60s, because the nodes cannot converge: \
             replication stopped on n"
        ) && summary.contains(" (error 10"),
        "{summary}"
    );
    for p in &problems {
        assert!(summary.contains(p.as_str()), "{summary}");
        // Printed with the result, too.
        assert!(out.contains(p.as_str()), "{out}");
    }
    assert!(out.contains("--slave-exec-mode strict"), "{out}");
    // And on the report's page, under the verdict.
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("Replication problems, in the servers' own words (why nodes disagree):"),
        "no replication problems on the page"
    );
    assert!(html.contains("replication stopped on n"), "no problem line");
    assert_eq!(registry_files(&registry), Vec::<PathBuf>::new());
}

#[test]
fn a_ladon_killed_mid_run_leaves_nothing_after_the_next_run() {
    if !available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (store, registry) = (tmp.path().join("store"), tmp.path().join("registry"));
    let mut child = ladon(
        &[
            "--workload",
            "set",
            "--time-limit",
            "60s",
            "--seed",
            "2",
            "--test",
            "killed",
        ],
        &store,
        &registry,
    )
    .spawn()
    .unwrap();
    let t0 = Instant::now();
    loop {
        let started = run_dir(&store, "killed")
            .and_then(|d| std::fs::metadata(d.join("history.jsonl")).ok())
            .is_some_and(|m| m.len() > 1000);
        if started {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "ladon exited: {}",
            output_of(&store)
        );
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{}",
            output_of(&store)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let left = registry_entries(&registry);
    assert_eq!(left.len(), 3, "{left:?}");
    for (pgid, data) in &left {
        assert!(group_alive(*pgid), "server {pgid} died with Ladon");
        assert!(data.exists());
    }
    let store2 = tmp.path().join("store2");
    let status = ladon(
        &[
            "--workload",
            "set",
            "--time-limit",
            "1s",
            "--seed",
            "3",
            "--test",
            "next",
        ],
        &store2,
        &registry,
    )
    .status()
    .unwrap();
    assert_eq!(status.code(), Some(0), "{}", output_of(&store2));
    for (pgid, data) in &left {
        assert!(!group_alive(*pgid), "server {pgid} still runs");
        assert!(!data.exists(), "{} still exists", data.display());
        // The node's directory and the cluster root went with it.
        let root = data.parent().unwrap().parent().unwrap();
        assert!(!root.exists(), "{} left behind", root.display());
    }
    assert_eq!(registry_files(&registry), Vec::<PathBuf>::new());
}

#[test]
fn a_ladon_killed_during_setup_leaves_nothing_after_the_next_run() {
    if !available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (store, registry) = (tmp.path().join("store"), tmp.path().join("registry"));
    let mut child = ladon(
        &[
            "--workload",
            "set",
            "--time-limit",
            "30s",
            "--seed",
            "4",
            "--test",
            "setup",
        ],
        &store,
        &registry,
    )
    .spawn()
    .unwrap();
    // Kill it as soon as its cluster root exists: mariadb-install-db is
    // running (it takes seconds), and no server is recorded yet.
    let t0 = Instant::now();
    let root = loop {
        let entry = registry_files(&registry).into_iter().find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("root."))
        });
        if let Some(root) = entry
            .and_then(|e| std::fs::read_to_string(e).ok())
            .and_then(|t| t.lines().nth(1).map(PathBuf::from))
        {
            break root;
        }
        assert!(child.try_wait().unwrap().is_none(), "{}", output_of(&store));
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{}",
            output_of(&store)
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    std::thread::sleep(Duration::from_millis(1000));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(root.exists(), "{}", root.display());
    let store2 = tmp.path().join("store2");
    let status = ladon(
        &[
            "--workload",
            "set",
            "--time-limit",
            "1s",
            "--seed",
            "5",
            "--test",
            "next",
        ],
        &store2,
        &registry,
    )
    .status()
    .unwrap();
    assert_eq!(status.code(), Some(0), "{}", output_of(&store2));
    assert!(!root.exists(), "{} left behind", root.display());
    // Nothing runs on the killed run's directory any more (the install
    // script, its bootstrap server).
    let needle = root.to_str().unwrap().to_string();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    assert_eq!(registry_files(&registry), Vec::<PathBuf>::new());
}

#[test]
fn a_missing_server_is_refused_with_the_install_command() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, registry) = (tmp.path().join("store"), tmp.path().join("registry"));
    let status = ladon(
        &["--workload", "set", "--test", "missing"],
        &store,
        &registry,
    )
    .env("LADON_MARIADB_BIN", tmp.path().join("nowhere"))
    .status()
    .unwrap();
    let out = output_of(&store);
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(
        out.contains("MariaDB's `mariadbd` not found")
            && out.contains("install it with: apt-get install mariadb-server mariadb-client"),
        "{out}"
    );
}
