//! Conflict strategies on hand-made conflicts.

use ladon_checker::history::{Mop, ReadValue};
use serde_json::Value as Json;

use super::driver::*;
use crate::reference::{Config, Strategy, Topology};

fn cfg(strategy: Strategy) -> Config {
    Config {
        strategy,
        topology: Topology::Mesh,
        causal_delivery: false,
        ..Config::default()
    }
}

/// n1's clock runs 5 s ahead. A client writes x=1 at n1, n2 receives it, a
/// client reads it at n2 and then writes x=2 there: x=2 happens after x=1.
fn skewed_overwrite(strategy: Strategy) -> (ReadValue, ReadValue) {
    let mut d = Driver::new(cfg(strategy));
    d.skew[0] = 5 * SECOND as i64;
    d.txn(n(0), write("x", 1), Json::Null).unwrap();
    let read = d
        .txn(n(1), vec![Mop::Read(k("x"), ReadValue::Null)], Json::Null)
        .unwrap();
    assert_eq!(read.ops[0], Mop::Read(k("x"), ReadValue::Int(1)));
    d.txn(n(1), write("x", 2), read.context).unwrap();
    (d.read(n(0), "x"), d.read(n(2), "x"))
}

#[test]
fn lww_on_a_skewed_clock_lets_the_causally_older_write_win() {
    assert_eq!(
        skewed_overwrite(Strategy::Lww),
        (ReadValue::Int(1), ReadValue::Int(1))
    );
}

#[test]
fn lww_hlc_orders_the_later_write_after_what_it_saw() {
    assert_eq!(
        skewed_overwrite(Strategy::LwwHlc),
        (ReadValue::Int(2), ReadValue::Int(2))
    );
}

#[test]
fn lww_ties_go_to_the_priority_leader() {
    let mut d = Driver::new(Config {
        priority: vec!["n3".into()],
        ..cfg(Strategy::Lww)
    });
    d.request(n(0), write("x", 1), Json::Null);
    d.now -= 1_000_000; // same millisecond
    d.request(n(2), write("x", 3), Json::Null);
    d.deliver_all();
    for i in 0..3 {
        assert_eq!(d.read(n(i), "x"), ReadValue::Int(3));
    }
}

#[test]
fn lww_loses_concurrent_appends_whole_value() {
    let mut d = Driver::new(cfg(Strategy::Lww));
    d.request(n(0), append("x", 1), Json::Null);
    d.request(n(1), append("x", 2), Json::Null);
    d.deliver_all();
    assert_eq!(d.read(n(0), "x"), list(&[2]));
    assert_eq!(d.read(n(2), "x"), list(&[2]));
}

#[test]
fn version_vectors_keep_siblings_until_a_client_that_saw_both_writes() {
    let mut d = Driver::new(cfg(Strategy::VersionVector));
    d.request(n(0), write("x", 1), Json::Null);
    d.request(n(1), write("x", 2), Json::Null);
    d.deliver_all();
    let read = d
        .txn(n(2), vec![Mop::Read(k("x"), ReadValue::Null)], Json::Null)
        .unwrap();
    assert_eq!(read.ops[0], Mop::Read(k("x"), list(&[1, 2])));
    // A blind write is concurrent with both: three siblings.
    d.txn(n(0), write("x", 3), Json::Null).unwrap();
    assert_eq!(d.read(n(1), "x"), list(&[1, 2, 3]));
    // A write by the client that read {1, 2} supersedes exactly those.
    d.txn(n(2), write("x", 4), read.context).unwrap();
    for i in 0..3 {
        assert_eq!(d.read(n(i), "x"), list(&[3, 4]));
    }
}

#[test]
fn crdt_types_merge_every_write() {
    let mut d = Driver::new(cfg(Strategy::Crdt));
    d.request(
        n(0),
        vec![
            Mop::Append(k("l"), 1),
            Mop::Incr(k("c"), 5),
            Mop::Add(k("s"), 1),
        ],
        Json::Null,
    );
    d.request(
        n(1),
        vec![
            Mop::Append(k("l"), 2),
            Mop::Incr(k("c"), -2),
            Mop::Add(k("s"), 2),
        ],
        Json::Null,
    );
    d.deliver_all();
    let l = d.read(n(0), "l");
    let ReadValue::List(items) = &l else {
        panic!("{l:?}")
    };
    assert_eq!(items.len(), 2);
    for i in 0..3 {
        assert_eq!(d.read(n(i), "l"), l, "same order everywhere");
        assert_eq!(d.read(n(i), "c"), ReadValue::Int(3));
        assert_eq!(d.read(n(i), "s"), list(&[1, 2]));
    }
    // An append goes after everything its writer had seen, even from a slow clock.
    d.skew[2] = -10 * SECOND as i64;
    d.txn(n(2), append("l", 3), Json::Null).unwrap();
    let ReadValue::List(after) = d.read(n(0), "l") else {
        panic!()
    };
    assert_eq!(after.last(), Some(&3));
}

#[test]
fn avoidance_forwards_to_the_home_and_fails_definitely_when_it_is_cut_off() {
    use crate::reference::strategy::avoidance::home_of;
    let mut d = Driver::new(cfg(Strategy::Avoidance));
    d.ping();
    let home = home_of(&k("x"), 3);
    let other = n((home.0 + 1) % 3);
    let ok = d.txn(other, write("x", 1), Json::Null).unwrap();
    assert_eq!(
        ok.meta.unwrap()["origin"],
        d.cluster.config().name(home).as_str()
    );
    d.isolate(home);
    for _ in 0..6 {
        d.ping();
    }
    let err = d.txn(other, write("x", 2), Json::Null).unwrap_err();
    assert!(err.definite, "{err:?}");
    assert!(err.reason.contains("unreachable"), "{err:?}");
}

#[test]
fn quorum_commits_with_a_majority_and_a_minority_refuses() {
    let mut d = Driver::new(cfg(Strategy::Quorum));
    d.ping();
    d.txn(n(0), append("x", 1), Json::Null).unwrap();
    assert_eq!(d.read(n(2), "x"), list(&[1]));
    d.isolate(n(2));
    for _ in 0..6 {
        d.ping();
    }
    let err = d.txn(n(2), append("x", 2), Json::Null).unwrap_err();
    assert!(
        err.definite && err.reason.starts_with("no quorum"),
        "{err:?}"
    );
    d.txn(n(1), append("x", 3), Json::Null).unwrap();
    assert_eq!(d.read(n(0), "x"), list(&[1, 3]));
}

#[test]
fn quorum_lets_only_one_of_two_concurrent_writes_commit() {
    let mut d = Driver::new(cfg(Strategy::Quorum));
    d.ping();
    let a = d.request(n(0), write("x", 1), Json::Null);
    let b = d.request(n(1), write("x", 2), Json::Null);
    d.deliver_all();
    let (ra, rb) = (d.replies.remove(&a).unwrap(), d.replies.remove(&b).unwrap());
    assert!(
        ra.is_ok() != rb.is_ok(),
        "exactly one commits: {ra:?} {rb:?}"
    );
    // A blind write to a written register conflicts; one based on a read commits.
    assert!(d.txn(n(2), write("x", 3), Json::Null).is_err());
    let read = d
        .txn(n(2), vec![Mop::Read(k("x"), ReadValue::Null)], Json::Null)
        .unwrap();
    d.txn(n(2), write("x", 4), read.context).unwrap();
    assert_eq!(d.read(n(0), "x"), ReadValue::Int(4));
}

#[test]
fn two_appends_to_one_key_in_one_transaction_both_survive_whole_value_strategies() {
    for strategy in [
        Strategy::Lww,
        Strategy::LwwHlc,
        Strategy::Avoidance,
        Strategy::Quorum,
    ] {
        let mut d = Driver::new(Config {
            leaders: 1,
            ..cfg(strategy)
        });
        d.ping();
        d.txn(
            n(0),
            vec![Mop::Append(k("x"), 1), Mop::Append(k("x"), 2)],
            Json::Null,
        )
        .unwrap();
        assert_eq!(d.read(n(0), "x"), list(&[1, 2]), "{strategy}");
    }
}

#[test]
fn a_version_vector_write_supersedes_only_what_its_transaction_read_before_it() {
    let mut d = Driver::new(cfg(Strategy::VersionVector));
    d.txn(n(0), write("x", 1), Json::Null).unwrap();
    // Write then read in one transaction: the read sees the transaction's own
    // write, so x=1 was never observed and stays as a sibling.
    let r = d
        .txn(
            n(1),
            vec![Mop::Write(k("x"), 2), Mop::Read(k("x"), ReadValue::Null)],
            Json::Null,
        )
        .unwrap();
    assert_eq!(r.ops[1], Mop::Read(k("x"), ReadValue::Int(2)));
    assert_eq!(d.read(n(2), "x"), list(&[1, 2]));
    // Read then write: the write supersedes what was read.
    d.txn(
        n(1),
        vec![Mop::Read(k("x"), ReadValue::Null), Mop::Write(k("x"), 3)],
        Json::Null,
    )
    .unwrap();
    assert_eq!(d.read(n(2), "x"), ReadValue::Int(3));
}

#[test]
fn a_duplicated_forward_runs_once_even_after_the_home_restarts() {
    use crate::reference::strategy::avoidance::home_of;
    let mut d = Driver::new(cfg(Strategy::Avoidance));
    d.ping();
    let home = home_of(&k("x"), 3);
    let other = n((home.0 + 1) % 3);
    d.request(other, append("x", 1), Json::Null);
    let forward = d.queue.front().cloned().unwrap();
    assert_eq!(forward.1, home);
    d.queue.push_back(forward.clone());
    d.deliver_all();
    d.crash(home);
    d.restart(home);
    d.queue.push_back(forward);
    d.deliver_all();
    assert_eq!(d.read(home, "x"), list(&[1]));
}

#[test]
fn a_coordinator_that_crashes_mid_round_aborts_on_restart_and_frees_the_keys() {
    let mut d = Driver::new(cfg(Strategy::Quorum));
    d.ping();
    d.request(n(0), append("x", 1), Json::Null);
    // Deliver the proposals, hold the votes, crash the coordinator.
    let proposals: Vec<_> = d.hold();
    assert_eq!(proposals.len(), 2);
    d.queue.extend(proposals);
    d.deliver_one();
    d.deliver_one();
    assert_eq!(
        d.node(n(1)).locks.held(),
        1,
        "n2 voted yes and holds the lock"
    );
    d.hold();
    d.crash(n(0));
    // Another coordinator is refused while the lock is held.
    let refused = d.txn(n(1), append("x", 2), Json::Null).unwrap_err();
    assert!(refused.reason.contains("locked"), "{refused:?}");
    d.restart(n(0));
    d.deliver_all();
    assert_eq!(d.node(n(1)).locks.held(), 0, "the abort entry released it");
    for _ in 0..2 {
        d.ping();
    }
    d.txn(n(1), append("x", 3), Json::Null).unwrap();
    for i in 0..3 {
        assert_eq!(d.read(n(i), "x"), list(&[3]), "x=1 never committed");
    }
}
