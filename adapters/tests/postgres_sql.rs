//! Ladon's workloads on PostgreSQL + pglogical through the SQL client: every
//! micro-operation, a multi-operation transaction, an indeterminate outcome
//! from a paused node, and the loss the issue predicts: concurrent counter
//! increments on two nodes under row-level last-update-wins keep only one.
#![cfg(feature = "postgres")]

use std::time::{Duration, Instant};

use ladon_adapters::db::postgres::{find_bin, Postgres};
use ladon_adapters::db::sql::{SqlClient, SqlOutcome};
use ladon_adapters::db::{ClusterSpec, Database, Topology};
use ladon_checker::{Key, KeyKind, Mop, ReadValue};

fn available() -> bool {
    match find_bin() {
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

async fn ok(c: &mut SqlClient, kind: KeyKind, ops: Vec<Mop>) -> Vec<Mop> {
    match c.txn(kind, &ops).await {
        SqlOutcome::Ok(v) => v,
        other => panic!("{ops:?}: {other:?}"),
    }
}

/// Polls a read on `c` until it returns `want` (replication is async).
async fn eventually_reads(c: &mut SqlClient, kind: KeyKind, key: &str, want: ReadValue) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_maps_to_sql_and_concurrent_increments_are_lost_under_lww() {
    if !available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut pg = Postgres::new(ClusterSpec {
        nodes: 2,
        topology: Topology::Mesh,
        dir: tmp.path().to_path_buf(),
        network: None,
    })
    .unwrap();
    let pg = tokio::task::spawn_blocking(move || {
        pg.setup().unwrap();
        pg
    })
    .await
    .unwrap();
    let timeout = Duration::from_secs(2);
    let mut a = SqlClient::connect(pg.addr(0), timeout).await.unwrap();
    let mut b = SqlClient::connect(pg.addr(1), timeout).await.unwrap();

    // Registers: a missing key reads null; write, read back, delete.
    assert_eq!(
        ok(&mut a, KeyKind::Register, vec![read("r")]).await,
        vec![Mop::Read(k("r"), ReadValue::Null)]
    );
    ok(&mut a, KeyKind::Register, vec![Mop::Write(k("r"), 5)]).await;
    eventually_reads(&mut b, KeyKind::Register, "r", ReadValue::Int(5)).await;
    ok(&mut b, KeyKind::Register, vec![Mop::Delete(k("r"))]).await;
    eventually_reads(&mut a, KeyKind::Register, "r", ReadValue::Null).await;

    // Sets, lists and counters, several micro-ops in one transaction, with a
    // read seeing the transaction's own writes.
    let got = ok(
        &mut a,
        KeyKind::List,
        vec![
            Mop::Append(Key::Int(7), 1),
            Mop::Append(Key::Int(7), 2),
            Mop::Read(Key::Int(7), ReadValue::Null),
        ],
    )
    .await;
    assert_eq!(got[2], Mop::Read(Key::Int(7), ReadValue::List(vec![1, 2])));
    ok(
        &mut b,
        KeyKind::Set,
        vec![Mop::Add(k("s"), 3), Mop::Add(k("s"), 1)],
    )
    .await;
    eventually_reads(&mut a, KeyKind::Set, "s", ReadValue::List(vec![1, 3])).await;
    ok(&mut a, KeyKind::Counter, vec![Mop::Incr(k("c"), 2)]).await;
    eventually_reads(&mut b, KeyKind::Counter, "c", ReadValue::Int(2)).await;

    // Concurrent increments: with replication held back on both sides, n1
    // and n2 each add 1 to 2. Each row image says 3; last-update-wins keeps
    // one of them, so the nodes agree on 3 and one increment is lost.
    for (i, sub) in [(0, "from_n2_to_n1"), (1, "from_n1_to_n2")] {
        pg.sql(
            i,
            &format!("SELECT pglogical.alter_subscription_disable('{sub}', true)"),
        )
        .unwrap();
    }
    ok(&mut a, KeyKind::Counter, vec![Mop::Incr(k("c"), 1)]).await;
    ok(&mut b, KeyKind::Counter, vec![Mop::Incr(k("c"), 1)]).await;
    for (i, sub) in [(0, "from_n2_to_n1"), (1, "from_n1_to_n2")] {
        pg.sql(
            i,
            &format!("SELECT pglogical.alter_subscription_enable('{sub}', true)"),
        )
        .unwrap();
    }
    eventually_reads(&mut a, KeyKind::Counter, "c", ReadValue::Int(3)).await;
    eventually_reads(&mut b, KeyKind::Counter, "c", ReadValue::Int(3)).await;

    // A paused node answers nothing: the client's outcome is indeterminate.
    let mut pg = pg;
    pg.pause(1).unwrap();
    let out = b.txn(KeyKind::Register, &[Mop::Write(k("p"), 1)]).await;
    pg.resume(1).unwrap();
    assert_eq!(out, SqlOutcome::Info("no answer within 2s".into()));

    drop((a, b));
    tokio::task::spawn_blocking(move || pg.teardown().unwrap())
        .await
        .unwrap();
}
