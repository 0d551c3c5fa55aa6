//! Replication: topologies, the loop guard, anti-entropy, causal delivery,
//! followers and durability.

use ladon_checker::history::ReadValue;
use serde_json::Value as Json;

use super::driver::*;
use crate::reference::{Config, ReadFrom, Strategy, Topology};

fn cfg(topology: Topology) -> Config {
    Config {
        topology,
        strategy: Strategy::Crdt,
        causal_delivery: false,
        ..Config::default()
    }
}

#[test]
fn mesh_sends_each_write_once_to_every_other_leader() {
    let mut d = Driver::new(cfg(Topology::Mesh));
    d.txn(n(0), append("x", 1), Json::Null).unwrap();
    assert_eq!(d.sent, 2);
    for i in 0..3 {
        assert_eq!(d.read(n(i), "x"), list(&[1]));
        assert_eq!(d.node(n(i)).log().len(), 1);
    }
}

#[test]
fn ring_forwards_to_successors_and_the_origin_drops_its_own_entry() {
    let mut d = Driver::new(Config {
        leaders: 4,
        ..cfg(Topology::Ring)
    });
    d.txn(n(1), append("x", 1), Json::Null).unwrap();
    // n2 → n3 → n4 → n1; n1 does not send it back to n2 (passed-through set).
    assert_eq!(d.sent, 3);
    for i in 0..4 {
        assert_eq!(d.read(n(i), "x"), list(&[1]));
    }
}

#[test]
fn ring_stalls_behind_a_cut_off_leader_until_the_heal() {
    let mut d = Driver::new(cfg(Topology::Ring));
    d.isolate(n(1));
    d.txn(n(0), append("x", 1), Json::Null).unwrap();
    d.anti_entropy();
    d.anti_entropy();
    // n3 is reachable from n1 directly, but the ring only runs n1 → n2 → n3.
    assert_eq!(d.read(n(2), "x"), ReadValue::Null);
    d.heal();
    d.anti_entropy();
    d.anti_entropy();
    assert_eq!(d.read(n(2), "x"), list(&[1]));
    assert_eq!(d.read(n(1), "x"), list(&[1]));
}

#[test]
fn star_relays_through_the_hub_and_stops_without_it() {
    let mut d = Driver::new(cfg(Topology::Star));
    d.txn(n(1), append("x", 1), Json::Null).unwrap();
    assert_eq!(d.sent, 2, "spoke → hub → other spoke");
    assert_eq!(d.read(n(2), "x"), list(&[1]));
    d.isolate(n(0));
    d.txn(n(1), append("x", 2), Json::Null).unwrap();
    d.anti_entropy();
    assert_eq!(
        d.read(n(2), "x"),
        list(&[1]),
        "spokes never talk to each other"
    );
    d.heal();
    d.anti_entropy();
    d.anti_entropy();
    assert_eq!(d.read(n(2), "x"), list(&[1, 2]));
}

#[test]
fn anti_entropy_resends_what_a_partition_dropped() {
    let mut d = Driver::new(cfg(Topology::Mesh));
    d.isolate(n(2));
    d.txn(n(0), append("x", 1), Json::Null).unwrap();
    d.txn(n(2), append("x", 2), Json::Null).unwrap();
    assert_eq!(d.read(n(2), "x"), list(&[2]));
    d.heal();
    d.anti_entropy();
    let all = d.read(n(0), "x");
    assert_eq!(all.clone(), d.read(n(1), "x"));
    assert_eq!(all, d.read(n(2), "x"));
    let ReadValue::List(l) = all else { panic!() };
    assert_eq!(l.len(), 2);
}

#[test]
fn causal_delivery_holds_an_entry_until_its_cause_arrives() {
    for causal in [false, true] {
        let mut d = Driver::new(Config {
            causal_delivery: causal,
            ..cfg(Topology::Mesh)
        });
        // n1 writes x=1; hold its messages; n2 never sees it... n1 writes y
        // after x, and n3 receives y's entry first (overtaking).
        d.request(n(0), append("x", 1), Json::Null);
        let first = d.hold();
        d.request(n(0), append("y", 2), Json::Null);
        let second = d.hold();
        for m in second.into_iter().chain(first.clone()) {
            if m.1 == n(2) {
                d.queue.push_back(m);
                d.deliver_one();
                break;
            }
        }
        let (x, y) = (
            d.node(n(2)).store().read(&k("x")).value,
            d.node(n(2)).store().read(&k("y")).value,
        );
        if causal {
            assert_eq!((x, y), (ReadValue::Null, ReadValue::Null), "y waits for x");
            let to_n3 = first.into_iter().find(|m| m.1 == n(2)).unwrap();
            d.queue.push_back(to_n3);
            d.deliver_all();
            assert_eq!(d.read(n(2), "y"), list(&[2]));
            assert_eq!(d.read(n(2), "x"), list(&[1]));
        } else {
            assert_eq!((x, y), (ReadValue::Null, list(&[2])), "y overtook x");
        }
    }
}

#[test]
fn a_client_waits_at_a_node_that_lacks_its_causal_past() {
    let mut d = Driver::new(Config {
        causal_delivery: true,
        ..cfg(Topology::Mesh)
    });
    d.isolate(n(1));
    let ok = d.txn(n(0), append("x", 1), Json::Null).unwrap();
    let waiting = d.request(
        n(1),
        vec![ladon_checker::history::Mop::Read(k("x"), ReadValue::Null)],
        ok.context,
    );
    d.deliver_all();
    assert!(!d.replies.contains_key(&waiting), "n2 has not seen x=1 yet");
    d.heal();
    d.anti_entropy();
    let read = d.replies.remove(&waiting).unwrap().unwrap();
    assert_eq!(
        read.ops[0],
        ladon_checker::history::Mop::Read(k("x"), list(&[1]))
    );
}

#[test]
fn followers_replicate_from_their_leader_and_pass_writes_up() {
    let mut d = Driver::new(Config {
        leaders: 2,
        followers: 1,
        read_from: ReadFrom::Follower,
        ..cfg(Topology::Mesh)
    });
    d.deliver_all(); // subscriptions
    d.txn(n(0), append("x", 1), Json::Null).unwrap();
    assert_eq!(d.read(n(2), "x"), list(&[1]), "n1f1 follows n1");
    assert_eq!(
        d.read(n(3), "x"),
        list(&[1]),
        "n2f1 follows n2, which got it from n1"
    );
    let via_follower = d.txn(n(3), append("x", 2), Json::Null).unwrap();
    assert_eq!(
        via_follower.meta.unwrap()["origin"],
        "n2",
        "the follower's leader wrote it"
    );
    assert_eq!(d.read(n(2), "x"), list(&[1, 2]));
}

#[test]
fn a_restarted_node_keeps_what_it_persisted_and_catches_up() {
    let mut d = Driver::new(cfg(Topology::Mesh));
    d.txn(n(0), append("x", 1), Json::Null).unwrap();
    d.crash(n(1));
    d.txn(n(0), append("x", 2), Json::Null).unwrap();
    d.restart(n(1));
    assert_eq!(d.node(n(1)).store().read(&k("x")).value, list(&[1]));
    d.anti_entropy();
    assert_eq!(d.read(n(1), "x"), list(&[1, 2]));
    // Its own sequence numbers continue: a new write is not taken for a duplicate.
    d.crash(n(0));
    d.restart(n(0));
    d.txn(n(0), append("x", 3), Json::Null).unwrap();
    assert_eq!(d.read(n(2), "x"), list(&[1, 2, 3]));
}

#[test]
fn read_from_sends_read_only_transactions_to_the_chosen_role() {
    use crate::node::Cluster;
    use crate::reference::ReferenceCluster;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let targets = |read_from, rng: &mut rand_chacha::ChaCha8Rng| {
        let c = ReferenceCluster::new(Config {
            leaders: 2,
            followers: 2,
            read_from,
            ..Config::default()
        })
        .unwrap();
        // Client of n2 (id 1) and client of n2f1 (id 4), 20 reads each.
        let mut seen = std::collections::BTreeSet::new();
        for node in [n(1), n(4)] {
            for _ in 0..20 {
                seen.insert((node.0, c.read_target(node, rng).0));
            }
        }
        seen.into_iter().collect::<Vec<_>>()
    };
    assert_eq!(targets(ReadFrom::Leader, &mut rng), [(1, 1), (4, 1)]);
    assert_eq!(
        targets(ReadFrom::Follower, &mut rng),
        [(1, 4), (1, 5), (4, 4)]
    );
    assert_eq!(
        targets(ReadFrom::Any, &mut rng),
        [(1, 1), (1, 4), (1, 5), (4, 1), (4, 4), (4, 5)]
    );
}
