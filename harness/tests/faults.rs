//! Each fault kind on a tiny in-test node: what a node sees when the
//! network holds or drops its messages, its clock is skewed, it crashes or
//! it is paused.

use ladon_adapters::node::{
    ClientError, Cluster, Ctx, Node, NodeId, NodeSpec, ReplyOk, ReqId, Request, Role, TimerId,
};
use ladon_checker::history::{Key, Mop, ReadValue};
use ladon_harness::clock::SIM_EPOCH_NS;
use ladon_harness::net::{Cut, Latency, NetConfig, PartitionMode};
use ladon_harness::sim::{NodeStatus, Output, World, WorldConfig};
use serde_json::json;

/// Writes are kept in memory (volatile) and persisted (durable) and sent to
/// every peer; a timer counts ticks every 10 ms; replies carry the node's
/// clock reading.
#[derive(Debug, Default)]
struct Tiny {
    me: usize,
    n: usize,
    volatile: Vec<i64>,
    durable: Vec<i64>,
    received: Vec<i64>,
    ticks: u64,
}

impl Node for Tiny {
    type Msg = i64;
    type Record = i64;

    fn on_start(&mut self, ctx: &mut Ctx<'_, i64, i64>) {
        ctx.set_timer(TimerId(0), 10_000_000);
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_, i64, i64>, req: Request) {
        for m in &req.ops {
            if let Mop::Write(_, v) = m {
                self.volatile.push(*v);
                self.durable.push(*v);
                ctx.persist(*v);
                for p in (0..self.n).filter(|&p| p != self.me) {
                    ctx.send(NodeId(p), *v);
                }
            }
        }
        let reply = ReplyOk {
            ops: req.ops,
            meta: Some(json!({ "clock": ctx.now_ns })),
            context: json!(null),
        };
        ctx.reply(req.id, Ok(reply));
    }

    fn on_message(&mut self, _ctx: &mut Ctx<'_, i64, i64>, _from: NodeId, msg: i64) {
        self.received.push(msg);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, i64, i64>, _t: TimerId) {
        self.ticks += 1;
        ctx.set_timer(TimerId(0), 10_000_000);
    }
}

struct TinyCluster(usize);

impl Cluster for TinyCluster {
    type Node = Tiny;
    fn specs(&self) -> Vec<NodeSpec> {
        (0..self.0)
            .map(|i| NodeSpec {
                name: format!("n{}", i + 1),
                role: Role::Leader,
            })
            .collect()
    }
    fn build(&self, id: NodeId, records: &[i64]) -> Tiny {
        Tiny {
            me: id.0,
            n: self.0,
            durable: records.to_vec(),
            ..Tiny::default()
        }
    }
    fn guarantees(&self) -> Vec<ladon_checker::report::Guarantee> {
        vec![]
    }
}

type Replies = Vec<(usize, ReqId, Result<ReplyOk, ClientError>)>;

fn world(mode: PartitionMode) -> World<'static, TinyCluster, ()> {
    let net = NetConfig {
        latency: Latency::Constant(1_000_000),
        partition_mode: mode,
        ..NetConfig::default()
    };
    World::new(TinyCluster(2), WorldConfig::new(1, net))
}

/// Runs until virtual time `t`, collecting client replies.
fn run_until(w: &mut World<'static, TinyCluster, ()>, t: u64) -> Replies {
    w.schedule(t, ());
    let mut replies = Vec::new();
    loop {
        match w.step() {
            Some(Output::Ext(())) if w.now() >= t => return replies,
            Some(Output::Ext(())) => {}
            Some(Output::Reply { node, req, result }) => replies.push((node, req, result)),
            None => return replies,
        }
    }
}

fn write(w: &mut World<'static, TinyCluster, ()>, node: usize, id: u64, v: i64) {
    w.request(
        node,
        Request {
            id: ReqId(id),
            ops: vec![Mop::Write(Key::Int(0), v)],
            context: json!(null),
        },
    );
}

fn split(w: &mut World<'static, TinyCluster, ()>) {
    w.partition(Cut::from_groups(2, vec![vec![0], vec![1]]));
}

#[test]
fn held_messages_arrive_after_the_heal() {
    let mut w = world(PartitionMode::Hold);
    split(&mut w);
    write(&mut w, 0, 1, 7);
    run_until(&mut w, 1_000_000_000);
    assert_eq!(
        w.node(1).unwrap().received,
        Vec::<i64>::new(),
        "held during the partition"
    );
    assert_eq!(w.network().held_count(), 1);
    w.heal();
    run_until(&mut w, 2_000_000_000);
    assert_eq!(w.node(1).unwrap().received, vec![7], "released by the heal");
}

#[test]
fn dropped_messages_never_arrive() {
    let mut w = world(PartitionMode::Drop);
    split(&mut w);
    write(&mut w, 0, 1, 7);
    run_until(&mut w, 1_000_000_000);
    w.heal();
    run_until(&mut w, 2_000_000_000);
    assert_eq!(w.node(1).unwrap().received, Vec::<i64>::new());
    assert_eq!(w.stats().dropped, 1);
    // The link works again after the heal.
    write(&mut w, 0, 2, 8);
    run_until(&mut w, 3_000_000_000);
    assert_eq!(w.node(1).unwrap().received, vec![8]);
}

#[test]
fn a_skewed_node_reads_a_skewed_clock() {
    let mut w = world(PartitionMode::Drop);
    w.clocks_mut().bump(1, -3_000_000_000);
    run_until(&mut w, 500_000_000);
    write(&mut w, 0, 1, 1);
    write(&mut w, 1, 2, 2);
    let replies = run_until(&mut w, 1_000_000_000);
    let clock = |node: usize| {
        let r = replies.iter().find(|r| r.0 == node).unwrap();
        r.2.as_ref().unwrap().meta.as_ref().unwrap()["clock"]
            .as_u64()
            .unwrap()
    };
    // Requests arrive 100 us after they are sent at 500 ms.
    let arrival = SIM_EPOCH_NS + 500_100_000;
    assert_eq!(clock(0), arrival);
    assert_eq!(clock(1), arrival - 3_000_000_000);
}

#[test]
fn a_crashed_node_loses_volatile_state_and_keeps_durable_state() {
    let mut w = world(PartitionMode::Drop);
    write(&mut w, 0, 1, 5);
    run_until(&mut w, 100_000_000);
    assert_eq!(w.node(0).unwrap().volatile, vec![5]);
    w.crash(0);
    assert!(w.node(0).is_none());
    write(&mut w, 0, 2, 6);
    let replies = run_until(&mut w, 200_000_000);
    assert_eq!(replies.len(), 1);
    assert_eq!(
        replies[0].2,
        Err(ClientError {
            definite: true,
            reason: "unavailable".into()
        })
    );
    w.restart(0);
    let n = w.node(0).unwrap();
    assert_eq!(n.volatile, Vec::<i64>::new(), "volatile state is gone");
    assert_eq!(n.durable, vec![5], "persisted records survive");
    assert_eq!(n.ticks, 0, "timers restart from on_start");
    assert_eq!(w.status(0), NodeStatus::Up);
}

#[test]
fn a_paused_node_gets_nothing_until_it_resumes() {
    let mut w = world(PartitionMode::Drop);
    run_until(&mut w, 95_000_000);
    let ticks_before = w.node(1).unwrap().ticks;
    assert_eq!(ticks_before, 9);
    w.pause(1);
    write(&mut w, 0, 1, 3);
    write(&mut w, 1, 2, 4);
    let replies = run_until(&mut w, 1_000_000_000);
    assert_eq!(
        replies.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![0],
        "paused node does not reply"
    );
    let n = w.node(1).unwrap();
    assert_eq!(
        (n.ticks, n.received.len()),
        (ticks_before, 0),
        "timers and messages held"
    );
    w.resume(1);
    let replies = run_until(&mut w, 1_000_100_000 + 100_000);
    assert_eq!(replies.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1]);
    let n = w.node(1).unwrap();
    assert_eq!(n.received, vec![3]);
    assert_eq!(
        n.ticks,
        ticks_before + 1,
        "the held timer fired once on resume"
    );
}

#[test]
fn clogged_node_messages_wait_for_the_unclog() {
    let mut w = world(PartitionMode::Drop);
    w.clog(1);
    write(&mut w, 0, 1, 9);
    run_until(&mut w, 1_000_000_000);
    assert!(w.node(1).unwrap().received.is_empty());
    w.unclog(1);
    run_until(&mut w, 1_100_000_000);
    assert_eq!(w.node(1).unwrap().received, vec![9]);
}

#[test]
fn loss_and_duplication_change_what_arrives() {
    let mut w = world(PartitionMode::Drop);
    w.set_loss(1.0);
    write(&mut w, 0, 1, 1);
    run_until(&mut w, 100_000_000);
    w.set_loss(0.0);
    w.set_duplicate(1.0);
    write(&mut w, 0, 2, 2);
    run_until(&mut w, 200_000_000);
    assert_eq!(w.node(1).unwrap().received, vec![2, 2]);
    assert_eq!(w.stats().duplicated, 1);
    assert_eq!(w.stats().dropped, 1);
}

#[test]
fn reads_through_a_partition_are_served_locally() {
    // Requests are not network messages: a client reaches its node in a partition.
    let mut w = world(PartitionMode::Drop);
    split(&mut w);
    w.request(
        1,
        Request {
            id: ReqId(1),
            ops: vec![Mop::Read(Key::Int(0), ReadValue::Null)],
            context: json!(null),
        },
    );
    assert_eq!(run_until(&mut w, 10_000_000).len(), 1);
}
