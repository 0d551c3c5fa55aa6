//! Each known-bug variant, deviating where its documentation says.

use ladon_checker::history::{Mop, ReadValue};
use serde_json::Value as Json;

use super::driver::*;
use crate::reference::{Bug, Config, Strategy, Topology};

fn cfg(strategy: Strategy, bug: Bug) -> Config {
    Config {
        strategy,
        topology: Topology::Mesh,
        causal_delivery: false,
        bug: Some(bug),
        ..Config::default()
    }
}

#[test]
fn no_loop_guard_storms_and_duplicates_list_elements() {
    let mut d = Driver::new(cfg(Strategy::Crdt, Bug::NoLoopGuard));
    d.txn(n(0), append("x", 1), Json::Null).unwrap();
    assert!(d.sent > 10, "storm: {} messages for one write", d.sent);
    let ReadValue::List(l) = d.read(n(1), "x") else {
        panic!()
    };
    assert!(
        l.len() > 1 && l.iter().all(|e| *e == 1),
        "duplicates: {l:?}"
    );
}

#[test]
fn tiebreak_self_diverges_on_equal_timestamps() {
    let mut d = Driver::new(cfg(Strategy::Lww, Bug::TiebreakSelf));
    d.request(n(0), write("x", 1), Json::Null);
    d.now -= 1_000_000;
    d.request(n(1), write("x", 2), Json::Null);
    d.deliver_all();
    assert_eq!(d.read(n(0), "x"), ReadValue::Int(1));
    assert_eq!(d.read(n(1), "x"), ReadValue::Int(2));
}

#[test]
fn no_anti_entropy_never_recovers_a_dropped_write() {
    let mut d = Driver::new(cfg(Strategy::Crdt, Bug::NoAntiEntropy));
    d.isolate(n(2));
    d.txn(n(0), append("x", 1), Json::Null).unwrap();
    d.heal();
    d.anti_entropy();
    assert_eq!(d.read(n(2), "x"), ReadValue::Null);
}

#[test]
fn forget_on_crash_loses_acknowledged_writes_and_reuses_sequence_numbers() {
    let mut d = Driver::new(cfg(Strategy::Crdt, Bug::ForgetOnCrash));
    d.isolate(n(0));
    d.txn(n(0), append("x", 1), Json::Null).unwrap();
    d.crash(n(0));
    d.heal();
    d.restart(n(0));
    d.anti_entropy();
    for i in 0..3 {
        assert_eq!(d.read(n(i), "x"), ReadValue::Null, "x=1 is gone everywhere");
    }
    // Without the partition the write reached n2 as (n1, 1); after the
    // restart n1 numbers a new write 1 again and n2 drops it as a duplicate.
    let mut d = Driver::new(cfg(Strategy::Crdt, Bug::ForgetOnCrash));
    d.txn(n(0), append("x", 1), Json::Null).unwrap();
    d.crash(n(0));
    d.restart(n(0));
    d.txn(n(0), append("y", 2), Json::Null).unwrap();
    assert_eq!(d.read(n(1), "y"), ReadValue::Null);
}

#[test]
fn counter_reapply_over_counts_a_resent_entry() {
    let mut d = Driver::new(cfg(Strategy::Crdt, Bug::CounterReapply));
    d.request(n(0), vec![Mop::Incr(k("c"), 5)], Json::Null);
    // n2's marks go out before the entry arrives: n1 resends it.
    d.with(n(1), |node, ctx| {
        use crate::node::Node;
        node.on_timer(ctx, crate::reference::replica::ANTI_ENTROPY)
    });
    d.deliver_all();
    // Both n1 and n3 (which had it by then) resend it: counted three times.
    assert_eq!(d.read(n(1), "c"), ReadValue::Int(15));
    assert_eq!(d.read(n(2), "c"), ReadValue::Int(5));
}

#[test]
fn follower_stale_forever_after_its_leader_restarts() {
    for bug in [None, Some(Bug::FollowerStaleForever)] {
        let mut d = Driver::new(Config {
            followers: 1,
            bug,
            ..cfg(Strategy::Crdt, Bug::FollowerStaleForever)
        });
        d.deliver_all();
        d.txn(n(0), append("x", 1), Json::Null).unwrap();
        d.crash(n(0));
        d.restart(n(0));
        d.txn(n(0), append("x", 2), Json::Null).unwrap();
        d.anti_entropy();
        let expect = if bug.is_some() {
            list(&[1])
        } else {
            d.read(n(0), "x")
        };
        assert_eq!(d.read(n(3), "x"), expect, "n1f1 with bug {bug:?}");
    }
}
