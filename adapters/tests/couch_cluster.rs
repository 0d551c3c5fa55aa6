//! pouchdb-server nodes replicated by Ladon over the CouchDB protocol:
//! three nodes up and replicating, concurrent updates kept as siblings with
//! the same winner on every node, nothing left after the teardown.
//!
//! Needs Node.js and pouchdb-server (scripts/test installs them; see
//! `ladon_adapters::db::COUCHDB_INSTALL`). Without them the tests say so
//! and pass, except under CI (`CI` set), where a missing server is a
//! failure.
#![cfg(feature = "couchdb")]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ladon_adapters::db::couch::{find_server, Couch};
use ladon_adapters::db::process_group::group_alive;
use ladon_adapters::db::{ClusterSpec, Database, DbClient, Topology, TxnOutcome};
use ladon_checker::history::{Key, KeyKind, Mop, ReadValue};

fn available() -> bool {
    match find_server() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => panic!("{e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn txn(
    rt: &tokio::runtime::Runtime,
    db: &Couch,
    node: usize,
    kind: KeyKind,
    ops: Vec<Mop>,
) -> TxnOutcome {
    rt.block_on(async {
        let mut c: Box<dyn DbClient> = db.connect(node, Duration::from_secs(5)).await.unwrap();
        c.txn(kind, &ops).await
    })
}

fn read(rt: &tokio::runtime::Runtime, db: &Couch, node: usize, kind: KeyKind, k: i64) -> ReadValue {
    match txn(
        rt,
        db,
        node,
        kind,
        vec![Mop::Read(Key::Int(k), ReadValue::Null)],
    ) {
        TxnOutcome::Ok(done) => match &done[0] {
            Mop::Read(_, v) => v.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("read on n{}: {other:?}", node + 1),
    }
}

fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn three_nodes_replicate_keep_conflicts_as_siblings_and_leave_nothing() {
    if !available() {
        return;
    }
    let rt = rt();
    let mut db = Couch::new(ClusterSpec {
        nodes: 3,
        topology: Topology::Mesh,
        dir: std::env::temp_dir(),
        network: None,
    })
    .unwrap();
    let t0 = Instant::now();
    db.setup().unwrap();
    eprintln!("3 nodes up and replicating in {:?}", t0.elapsed());
    // A write on n1 reaches every node; so do a set element and an append.
    let w = |k, v| vec![Mop::Write(Key::Int(k), v)];
    assert!(matches!(
        txn(&rt, &db, 0, KeyKind::Register, w(1, 10)),
        TxnOutcome::Ok(_)
    ));
    assert!(matches!(
        txn(&rt, &db, 1, KeyKind::Set, vec![Mop::Add(Key::Int(5), 7)]),
        TxnOutcome::Ok(_)
    ));
    assert!(matches!(
        txn(
            &rt,
            &db,
            2,
            KeyKind::List,
            vec![Mop::Append(Key::Int(6), 3)]
        ),
        TxnOutcome::Ok(_)
    ));
    assert!(
        eventually(Duration::from_secs(10), || (0..3).all(|i| {
            read(&rt, &db, i, KeyKind::Register, 1) == ReadValue::Int(10)
                && read(&rt, &db, i, KeyKind::Set, 5) == ReadValue::List(vec![7])
                && read(&rt, &db, i, KeyKind::List, 6) == ReadValue::List(vec![3])
        })),
        "the writes did not reach every node"
    );
    // Cut every link: concurrent updates of key 1 on n1 and n2.
    let all: BTreeSet<(usize, usize)> = (0..3)
        .flat_map(|a| (0..3).filter(move |&b| b != a).map(move |b| (a, b)))
        .collect();
    db.partitioned(&all);
    std::thread::sleep(Duration::from_millis(500));
    assert!(matches!(
        txn(&rt, &db, 0, KeyKind::Register, w(1, 20)),
        TxnOutcome::Ok(_)
    ));
    assert!(matches!(
        txn(&rt, &db, 1, KeyKind::Register, w(1, 21)),
        TxnOutcome::Ok(_)
    ));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        read(&rt, &db, 2, KeyKind::Register, 1),
        ReadValue::Int(10),
        "n3 saw a write through the cut"
    );
    db.partitioned(&BTreeSet::new());
    // Both kept, as siblings, on every node.
    assert!(
        eventually(Duration::from_secs(10), || (0..3).all(|i| read(
            &rt,
            &db,
            i,
            KeyKind::Register,
            1
        )
            == ReadValue::List(vec![20, 21]))),
        "siblings: {:?}",
        (0..3)
            .map(|i| read(&rt, &db, i, KeyKind::Register, 1))
            .collect::<Vec<_>>()
    );
    // A write that read the siblings resolves them everywhere.
    assert!(matches!(
        txn(&rt, &db, 2, KeyKind::Register, w(1, 30)),
        TxnOutcome::Ok(_)
    ));
    assert!(
        eventually(Duration::from_secs(10), || (0..3).all(|i| read(
            &rt,
            &db,
            i,
            KeyKind::Register,
            1
        )
            == ReadValue::Int(30))),
        "after the resolving write: {:?}",
        (0..3)
            .map(|i| read(&rt, &db, i, KeyKind::Register, 1))
            .collect::<Vec<_>>()
    );
    let root = db.data_root().unwrap();
    assert!(root.exists());
    let pgids = db.pgids();
    assert_eq!(pgids.len(), 3);
    db.teardown().unwrap();
    for p in pgids {
        assert!(!group_alive(p), "server {p} still runs");
    }
    assert!(!root.exists(), "{} left behind", root.display());
}
