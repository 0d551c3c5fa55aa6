//! The sans-IO node interface (in the style of stateright's `Actor`).
//!
//! An in-process replica is a state machine. It never touches a socket, a
//! clock or a global RNG: the driver (the deterministic simulator, or a live
//! shell) hands it events together with a [`Ctx`] carrying the node's own
//! clock reading and random stream, and the node answers only by pushing
//! [`Command`]s. Durable state is explicit: a node persists [`Node::Record`]s
//! with [`Ctx::persist`]; a crash drops the node value (its volatile state)
//! and a restart rebuilds it from the records it had persisted, and nothing
//! else.

use std::fmt;

use ladon_checker::history::Mop;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Index of a node in its cluster (0-based); names live in [`NodeSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub usize);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A node's role in the cluster, so clients know where to send writes/reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Accepts writes.
    Leader,
    /// Replicates from `leader`; serves reads only.
    Follower { leader: NodeId },
}

/// One node of a cluster as the adapter lays it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// The name used in histories, e.g. `"n1"` or `"n1f1"`.
    pub name: String,
    pub role: Role,
}

/// Identifies one client request at one node, so the node can reply later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReqId(pub u64);

/// Identifies a timer a node set; setting an id again replaces the timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimerId(pub u64);

/// A client's transaction as it reaches a node: reads carry `null`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: ReqId,
    pub ops: Vec<Mop>,
    /// Opaque causal context the client got from its last reply from this
    /// cluster (`Json::Null` if none): version-vector stores use it so a
    /// write supersedes exactly what its client had read.
    pub context: Json,
}

/// Why a request did not complete `ok`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    /// `true`: certainly did not take effect (history `fail`); `false`: may
    /// have (history `info`).
    pub definite: bool,
    /// Short reason recorded as the history's `error`, e.g. `"unavailable"`.
    pub reason: String,
}

/// A successful reply: the transaction with reads filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyOk {
    pub ops: Vec<Mop>,
    /// What the system said about the operation (`ts`, `vv`, ...), recorded
    /// as the history's `meta`; `None` for nothing.
    pub meta: Option<Json>,
    /// Causal context for the client's next request (see [`Request::context`]).
    pub context: Json,
}

/// What a node asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command<M, R> {
    /// Send `msg` to a peer over the (faulty) network.
    Send {
        to: NodeId,
        msg: M,
    },
    /// Complete a client request, now or later.
    Reply {
        req: ReqId,
        result: Result<ReplyOk, ClientError>,
    },
    /// Fire [`Node::on_timer`] after `after_ns` of this node's clock.
    SetTimer {
        id: TimerId,
        after_ns: u64,
    },
    CancelTimer {
        id: TimerId,
    },
    /// Append a record to durable storage; survives crashes.
    Persist(R),
    /// A line for the node's log file.
    Log(String),
}

/// What a node gets with every event: who it is, what its clock reads, its
/// random stream, and the buffer its commands go to.
pub struct Ctx<'a, M, R> {
    pub id: NodeId,
    /// This node's clock reading in nanoseconds since the Unix epoch: true
    /// time plus the node's skew and drift. May go backwards under a
    /// clock-reset or strobe.
    pub now_ns: u64,
    pub rng: &'a mut ChaCha8Rng,
    pub out: &'a mut Vec<Command<M, R>>,
}

impl<M, R> Ctx<'_, M, R> {
    pub fn send(&mut self, to: NodeId, msg: M) {
        self.out.push(Command::Send { to, msg });
    }
    pub fn reply(&mut self, req: ReqId, result: Result<ReplyOk, ClientError>) {
        self.out.push(Command::Reply { req, result });
    }
    pub fn set_timer(&mut self, id: TimerId, after_ns: u64) {
        self.out.push(Command::SetTimer { id, after_ns });
    }
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.out.push(Command::CancelTimer { id });
    }
    pub fn persist(&mut self, record: R) {
        self.out.push(Command::Persist(record));
    }
    pub fn log(&mut self, line: impl Into<String>) {
        self.out.push(Command::Log(line.into()));
    }
}

/// A replica as a sans-IO state machine.
pub trait Node {
    /// Messages between nodes.
    type Msg: Clone + fmt::Debug;
    /// Durable records; a restarted node is rebuilt from the ones it persisted.
    type Record: Clone + fmt::Debug;

    /// Called once after the node is built (first start or restart).
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self::Msg, Self::Record>);
    fn on_request(&mut self, ctx: &mut Ctx<'_, Self::Msg, Self::Record>, req: Request);
    fn on_message(
        &mut self,
        ctx: &mut Ctx<'_, Self::Msg, Self::Record>,
        from: NodeId,
        msg: Self::Msg,
    );
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self::Msg, Self::Record>, timer: TimerId);

    /// The writes a message carries, as `(key, value)` pairs, so reports can
    /// draw which message carried which write. Default: none known.
    fn msg_writes(_msg: &Self::Msg) -> Vec<(ladon_checker::Key, i64)> {
        Vec::new()
    }
}

/// Builds the nodes of one cluster configuration: the seam between the
/// simulator and an in-process system.
pub trait Cluster {
    type Node: Node;

    /// Every node, in id order (`NodeId(i)` is `specs()[i]`).
    fn specs(&self) -> Vec<NodeSpec>;

    /// Build node `id` from the records it persisted before a crash (empty on
    /// first start).
    fn build(&self, id: NodeId, records: &[<Self::Node as Node>::Record]) -> Self::Node;

    /// The guarantees (of `anomalies.md`) this configuration promises.
    fn guarantees(&self) -> Vec<ladon_checker::report::Guarantee>;

    /// The node a client attached to `node` sends a read-only transaction to
    /// (e.g. one of a leader's followers under `--read-from follower`).
    /// Default: `node` itself. Final-phase reads never go through this: they
    /// read each node directly.
    fn read_target(&self, node: NodeId, _rng: &mut ChaCha8Rng) -> NodeId {
        node
    }
}
