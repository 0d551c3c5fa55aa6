//! MariaDB multi-source replication through the MySQL client: every
//! micro-operation, and the two conflict behaviours issue 15 measured by
//! hand: update/update conflicts swap the nodes' values (divergence), and
//! an insert/insert conflict stops both SQL threads with error 1062 in
//! STRICT mode, which `replication_problems` reports with the server's
//! error; in IDEMPOTENT mode the duplicate insert overwrites the row
//! silently, so the nodes keep each other's values.
#![cfg(feature = "mariadb")]

use std::time::{Duration, Instant};

use ladon_adapters::db::mariadb::{find_bins, MariaDb, MariaDbOptions, SlaveExecMode, DATABASE};
use ladon_adapters::db::mysql::MysqlClient;
use ladon_adapters::db::{ClusterSpec, Database, Topology, TxnOutcome};
use ladon_checker::{Key, KeyKind, Mop, ReadValue};

fn available() -> bool {
    match find_bins() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => panic!("{e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

fn k(s: &str) -> Key {
    Key::Str(s.into())
}

fn read(key: &str) -> Mop {
    Mop::Read(k(key), ReadValue::Null)
}

async fn ok(c: &mut MysqlClient, kind: KeyKind, ops: Vec<Mop>) -> Vec<Mop> {
    match c.txn(kind, &ops).await {
        TxnOutcome::Ok(v) => v,
        other => panic!("{ops:?}: {other:?}"),
    }
}

/// Polls a read on `c` until it returns `want` (replication is async).
async fn eventually_reads(c: &mut MysqlClient, kind: KeyKind, key: &str, want: ReadValue) {
    let t0 = Instant::now();
    loop {
        let got = ok(c, kind, vec![read(key)]).await;
        if got == vec![Mop::Read(k(key), want.clone())] {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "{got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn cluster(mode: SlaveExecMode) -> MariaDb {
    let mut db = MariaDb::new(
        ClusterSpec {
            nodes: 2,
            topology: Topology::Mesh,
            dir: std::env::temp_dir(),
            network: None,
        },
        MariaDbOptions {
            slave_exec_mode: mode,
            log_slave_updates: false,
        },
    )
    .unwrap();
    tokio::task::spawn_blocking(move || {
        db.setup().unwrap();
        db
    })
    .await
    .unwrap()
}

/// Stops replication on both nodes, runs `during`, starts it again.
fn cut(db: &MariaDb, on: bool) {
    for i in 0..2 {
        let verb = if on { "STOP" } else { "START" };
        db.sql(i, &format!("{verb} ALL SLAVES")).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_map_to_sql_and_update_conflicts_diverge_with_swapped_values() {
    if !available() {
        return;
    }
    let mut db = cluster(SlaveExecMode::Strict).await;
    let root = db.data_root().unwrap().to_path_buf();
    let timeout = Duration::from_secs(2);
    let mut a = MysqlClient::connect(db.addr(0), DATABASE, timeout)
        .await
        .unwrap();
    let mut b = MysqlClient::connect(db.addr(1), DATABASE, timeout)
        .await
        .unwrap();

    // Every kind, written on n1 and seen on n2.
    assert_eq!(
        ok(&mut a, KeyKind::Register, vec![read("r")]).await,
        vec![Mop::Read(k("r"), ReadValue::Null)]
    );
    ok(&mut a, KeyKind::Register, vec![Mop::Write(k("r"), 1)]).await;
    ok(&mut a, KeyKind::Counter, vec![Mop::Incr(k("c"), 5)]).await;
    ok(&mut a, KeyKind::Counter, vec![Mop::Incr(k("c"), -2)]).await;
    ok(
        &mut a,
        KeyKind::Set,
        vec![Mop::Add(k("s"), 7), Mop::Add(k("s"), 3)],
    )
    .await;
    ok(&mut a, KeyKind::List, vec![Mop::Append(k("l"), 9)]).await;
    ok(&mut a, KeyKind::List, vec![Mop::Append(k("l"), 4)]).await;
    eventually_reads(&mut b, KeyKind::Register, "r", ReadValue::Int(1)).await;
    eventually_reads(&mut b, KeyKind::Counter, "c", ReadValue::Int(3)).await;
    eventually_reads(&mut b, KeyKind::Set, "s", ReadValue::List(vec![3, 7])).await;
    eventually_reads(&mut b, KeyKind::List, "l", ReadValue::List(vec![9, 4])).await;
    ok(&mut b, KeyKind::Register, vec![Mop::Delete(k("r"))]).await;
    eventually_reads(&mut a, KeyKind::Register, "r", ReadValue::Null).await;

    // Update/update: each node applies the other's row event last.
    ok(&mut a, KeyKind::Register, vec![Mop::Write(k("x"), 1)]).await;
    eventually_reads(&mut b, KeyKind::Register, "x", ReadValue::Int(1)).await;
    cut(&db, true);
    ok(&mut a, KeyKind::Register, vec![Mop::Write(k("x"), 10)]).await;
    ok(&mut b, KeyKind::Register, vec![Mop::Write(k("x"), 20)]).await;
    cut(&db, false);
    eventually_reads(&mut a, KeyKind::Register, "x", ReadValue::Int(20)).await;
    eventually_reads(&mut b, KeyKind::Register, "x", ReadValue::Int(10)).await;
    assert_eq!(db.replication_problems(), Vec::<String>::new());

    // Insert/insert in STRICT mode stops both SQL threads.
    cut(&db, true);
    ok(&mut a, KeyKind::Set, vec![Mop::Add(k("t"), 1)]).await;
    ok(&mut b, KeyKind::Set, vec![Mop::Add(k("t"), 1)]).await;
    cut(&db, false);
    let t0 = Instant::now();
    let problems = loop {
        let p = db.replication_problems();
        if p.len() == 2 || t0.elapsed() > Duration::from_secs(15) {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(problems.len(), 2, "{problems:?}");
    for (p, (node, from)) in problems.iter().zip([("n1", "n2"), ("n2", "n1")]) {
        assert!(
            p.starts_with(&format!(
                "replication stopped on {node} from {from}: error 1062: "
            )) && p.contains("Duplicate entry")
                && p.ends_with("(IO thread Yes, SQL thread No)"),
            "{p}"
        );
    }

    drop((a, b));
    tokio::task::spawn_blocking(move || db.teardown().unwrap())
        .await
        .unwrap();
    assert!(!root.exists(), "{} left behind", root.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_mode_applies_insert_conflicts_over_each_other_and_the_nodes_keep_swapped_values(
) {
    if !available() {
        return;
    }
    let db = cluster(SlaveExecMode::Idempotent).await;
    let timeout = Duration::from_secs(2);
    let mut a = MysqlClient::connect(db.addr(0), DATABASE, timeout)
        .await
        .unwrap();
    let mut b = MysqlClient::connect(db.addr(1), DATABASE, timeout)
        .await
        .unwrap();
    cut(&db, true);
    ok(&mut a, KeyKind::Register, vec![Mop::Write(k("y"), 1)]).await;
    ok(&mut b, KeyKind::Register, vec![Mop::Write(k("y"), 2)]).await;
    cut(&db, false);
    // A marker written after the conflict arrives everywhere: the
    // conflict's events were applied before it. IDEMPOTENT mode turns the
    // duplicate insert into an overwrite: each node ends with the other's
    // value, and no connection stops.
    ok(&mut a, KeyKind::Register, vec![Mop::Write(k("m1"), 1)]).await;
    ok(&mut b, KeyKind::Register, vec![Mop::Write(k("m2"), 1)]).await;
    eventually_reads(&mut b, KeyKind::Register, "m1", ReadValue::Int(1)).await;
    eventually_reads(&mut a, KeyKind::Register, "m2", ReadValue::Int(1)).await;
    assert_eq!(
        ok(&mut a, KeyKind::Register, vec![read("y")]).await,
        vec![Mop::Read(k("y"), ReadValue::Int(2))]
    );
    assert_eq!(
        ok(&mut b, KeyKind::Register, vec![read("y")]).await,
        vec![Mop::Read(k("y"), ReadValue::Int(1))]
    );
    assert_eq!(db.replication_problems(), Vec::<String>::new());
    drop((a, b));
    tokio::task::spawn_blocking(move || drop(db)).await.unwrap();
}
