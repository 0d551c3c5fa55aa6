//! Real CRDT libraries as simulated nodes: automerge, yrs and loro (cargo
//! feature `crdt-libs`).
//!
//! Each node holds one document of the library and syncs it with its peers
//! using the library's own sync protocol, as bytes over the simulated
//! network ([`Wire`]). What differs between libraries sits behind
//! [`Replica`]; this module owns what they share: the node (client requests
//! as one library transaction each, a push to every peer after a local
//! commit, anti-entropy every 100 ms of the node's clock, which first
//! applies what a library deferred: [`Replica::flush`]), durability
//! ([`Persist`]) and the cluster.
//!
//! Determinism: a node's actor/client/peer id is derived from its node id and
//! its incarnation (how many times the node was built), never drawn at
//! random; timestamps, where a library records one, come from the node's
//! simulated clock. A fresh id per incarnation is what each library asks
//! for: an id must never be reused by a replica that may have lost some of
//! its operations (a restart from an older save), or two different
//! operations would share one id.

mod automerge_doc;
mod loro_doc;
mod yrs_doc;

use ladon_checker::report::Guarantee;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ladon_checker::history::{KeyKind, Mop};
use ladon_workloads::WorkloadKind;
use serde_json::json;

use crate::node::{
    ClientError, Cluster, Ctx, Node, NodeId, NodeSpec, ReplyOk, Request, Role, TimerId,
};

/// The automerge crate the adapter runs, for measuring the library alone
/// (the `crdt_libs` bench's `automerge-alone` group) at the same version.
pub use automerge;
pub use automerge_doc::AutomergeDoc;
pub use loro_doc::LoroDoc;
pub use yrs_doc::YrsDoc;

/// When a node saves its document to durable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Persist {
    /// After every local commit (before the client's reply) and every
    /// received change: nothing acknowledged is ever lost to a crash.
    #[default]
    EveryOp,
    /// Once per anti-entropy round (every 100 ms): a crash loses the writes
    /// acknowledged since the last round that no peer had received yet.
    EverySync,
    /// Never: a crashed node restarts empty and refills from its peers.
    Never,
}

impl Persist {
    pub const NAMES: [&'static str; 3] = ["every-op", "every-sync", "never"];

    pub fn as_str(self) -> &'static str {
        match self {
            Persist::EveryOp => "every-op",
            Persist::EverySync => "every-sync",
            Persist::Never => "never",
        }
    }
}

impl std::str::FromStr for Persist {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "every-op" => Ok(Persist::EveryOp),
            "every-sync" => Ok(Persist::EverySync),
            "never" => Ok(Persist::Never),
            other => Err(format!(
                "--persist {other:?}: expected one of {}",
                Persist::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for Persist {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a sync message is, per the library's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireKind {
    /// automerge: a sync-protocol message (`sync::Message::encode`).
    Sync,
    /// yrs: an encoded state vector; loro: an encoded version vector. The
    /// receiver answers with what the sender lacks.
    Have,
    /// yrs: an update (v1); loro: an exported update blob.
    Update,
}

/// One message between nodes: the library's own encoding, shared not copied
/// when the network duplicates it.
#[derive(Clone, PartialEq, Eq)]
pub struct Wire {
    pub kind: WireKind,
    pub bytes: Arc<[u8]>,
}

impl Wire {
    pub fn new(kind: WireKind, bytes: Vec<u8>) -> Wire {
        Wire {
            kind,
            bytes: bytes.into(),
        }
    }
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:?}({} bytes)", self.kind, self.bytes.len())
    }
}

/// A saved chunk of a document in the library's save encoding; a restarted
/// node loads its chunks in order.
pub type Saved = Arc<[u8]>;

/// One library's document behind a node.
pub trait Replica: Sized + 'static {
    /// The adapter name, e.g. `"automerge"`.
    const NAME: &'static str;

    /// Opens a document as replica `actor` of a cluster of `nodes`, from the
    /// chunks saved before a crash (none on first start).
    fn open(actor: u64, nodes: usize, kind: KeyKind, saved: &[Saved]) -> Result<Self, String>;

    /// Runs a client transaction as one library transaction (one commit),
    /// its reads filled in. `now_ns` is the node's clock.
    fn transact(&mut self, ops: Vec<Mop>, now_ns: u64) -> Result<Vec<Mop>, String>;

    /// The message that pushes a local commit just made to `peer`.
    fn push(&mut self, peer: usize) -> Option<Wire>;

    /// The anti-entropy message to `peer`.
    fn tick(&mut self, peer: usize) -> Option<Wire>;

    /// Applies a message from `peer`, answering into `replies`. Returns
    /// whether the document changed.
    fn receive(&mut self, peer: usize, msg: &Wire, replies: &mut Vec<Wire>)
        -> Result<bool, String>;

    /// Applies what [`Replica::receive`] deferred (loro: the updates it
    /// received since the last round, imported in one batch). Called at the
    /// start of every anti-entropy round; returns whether the document
    /// changed.
    fn flush(&mut self) -> Result<bool, String> {
        Ok(false)
    }

    /// Everything not saved yet, in the library's save encoding (`None`:
    /// nothing new).
    fn save_incremental(&mut self) -> Option<Vec<u8>>;

    /// The guarantees the library documents for this mapping.
    fn guarantees(kind: KeyKind, persist: Persist) -> Vec<Guarantee>;
}

const ANTI_ENTROPY: TimerId = TimerId(1);
const ANTI_ENTROPY_NS: u64 = 100_000_000;

/// One simulated node holding one document.
pub struct LibNode<R: Replica> {
    me: usize,
    nodes: usize,
    actor: u64,
    persist: Persist,
    doc: Result<R, String>,
    bytes_sent: Arc<AtomicU64>,
}

impl<R: Replica> fmt::Debug for LibNode<R> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} node {} (actor {})", R::NAME, self.me, self.actor)
    }
}

impl<R: Replica> LibNode<R> {
    fn send(&self, ctx: &mut Ctx<'_, Wire, Saved>, to: usize, w: Wire) {
        self.bytes_sent
            .fetch_add(w.bytes.len() as u64, Ordering::Relaxed);
        ctx.send(NodeId(to), w);
    }

    fn peers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes).filter(move |&p| p != self.me)
    }

    fn save(&mut self, ctx: &mut Ctx<'_, Wire, Saved>) {
        if let Ok(doc) = self.doc.as_mut() {
            if let Some(chunk) = doc.save_incremental() {
                ctx.persist(chunk.into());
            }
        }
    }
}

impl<R: Replica> Node for LibNode<R> {
    type Msg = Wire;
    type Record = Saved;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Wire, Saved>) {
        match &self.doc {
            Ok(_) => ctx.log(format!(
                "{} document open as actor {}, persist {}",
                R::NAME,
                self.actor,
                self.persist
            )),
            Err(e) => ctx.log(format!("{} document failed to load: {e}", R::NAME)),
        }
        ctx.set_timer(ANTI_ENTROPY, ANTI_ENTROPY_NS);
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_, Wire, Saved>, req: Request) {
        let writes = req.ops.iter().any(Mop::is_write);
        let result = match self.doc.as_mut() {
            Ok(doc) => doc.transact(req.ops, ctx.now_ns),
            Err(e) => Err(format!("document unavailable: {e}")),
        };
        let ops = match result {
            Ok(ops) => ops,
            Err(e) => {
                ctx.log(format!("transaction failed: {e}"));
                let reason = format!("{} error", R::NAME);
                ctx.reply(
                    req.id,
                    Err(ClientError {
                        definite: false,
                        reason,
                    }),
                );
                return;
            }
        };
        if writes {
            if self.persist == Persist::EveryOp {
                self.save(ctx);
            }
            let peers: Vec<usize> = self.peers().collect();
            for p in peers {
                if let Some(w) = self.doc.as_mut().ok().and_then(|d| d.push(p)) {
                    self.send(ctx, p, w);
                }
            }
        }
        ctx.reply(
            req.id,
            Ok(ReplyOk {
                ops,
                meta: Some(json!({ "actor": self.actor })),
                context: serde_json::Value::Null,
            }),
        );
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Wire, Saved>, from: NodeId, msg: Wire) {
        let Ok(doc) = self.doc.as_mut() else { return };
        let mut replies = Vec::new();
        match doc.receive(from.0, &msg, &mut replies) {
            Ok(changed) => {
                if changed && self.persist == Persist::EveryOp {
                    self.save(ctx);
                }
            }
            Err(e) => ctx.log(format!("rejected {msg:?} from {from}: {e}")),
        }
        for w in replies {
            self.send(ctx, from.0, w);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Wire, Saved>, timer: TimerId) {
        if timer != ANTI_ENTROPY {
            return;
        }
        if let Ok(doc) = self.doc.as_mut() {
            match doc.flush() {
                Ok(changed) => {
                    if changed && self.persist == Persist::EveryOp {
                        self.save(ctx);
                    }
                }
                Err(e) => ctx.log(format!("deferred updates rejected: {e}")),
            }
        }
        if self.persist == Persist::EverySync {
            self.save(ctx);
        }
        let peers: Vec<usize> = self.peers().collect();
        for p in peers {
            if let Some(w) = self.doc.as_mut().ok().and_then(|d| d.tick(p)) {
                self.send(ctx, p, w);
            }
        }
        ctx.set_timer(ANTI_ENTROPY, ANTI_ENTROPY_NS);
    }
}

/// A cluster of `nodes` replicas of one library, all accepting writes.
pub struct LibCluster<R: Replica> {
    nodes: usize,
    kind: KeyKind,
    persist: Persist,
    /// How many times each node was built: a restart takes a fresh actor id.
    incarnations: Mutex<Vec<u64>>,
    bytes_sent: Arc<AtomicU64>,
    _doc: std::marker::PhantomData<fn() -> R>,
}

impl<R: Replica> LibCluster<R> {
    pub fn new(nodes: usize, workload: WorkloadKind, persist: Persist) -> Self {
        LibCluster {
            nodes,
            kind: key_kind(workload),
            persist,
            incarnations: Mutex::new(vec![0; nodes]),
            bytes_sent: Arc::new(AtomicU64::new(0)),
            _doc: std::marker::PhantomData,
        }
    }

    /// Bytes of sync messages the nodes sent so far (shared by every clone
    /// of the handle), for the bytes-per-write figure.
    pub fn bytes_sent(&self) -> Arc<AtomicU64> {
        self.bytes_sent.clone()
    }
}

/// The key kind a workload writes.
pub fn key_kind(w: WorkloadKind) -> KeyKind {
    match w {
        WorkloadKind::Register => KeyKind::Register,
        WorkloadKind::ListAppend => KeyKind::List,
        WorkloadKind::Set => KeyKind::Set,
        WorkloadKind::Counter => KeyKind::Counter,
    }
}

/// The actor id of node `node` in its `incarnation`-th life: distinct for
/// every node and life, never 0.
pub fn actor_id(node: usize, nodes: usize, incarnation: u64) -> u64 {
    1 + node as u64 + nodes as u64 * incarnation
}

impl<R: Replica> Cluster for LibCluster<R> {
    type Node = LibNode<R>;

    fn specs(&self) -> Vec<NodeSpec> {
        (0..self.nodes)
            .map(|i| NodeSpec {
                name: format!("n{}", i + 1),
                role: Role::Leader,
            })
            .collect()
    }

    fn build(&self, id: NodeId, records: &[Saved]) -> LibNode<R> {
        let incarnation = {
            let mut inc = self.incarnations.lock().unwrap_or_else(|e| e.into_inner());
            let i = inc[id.0];
            inc[id.0] += 1;
            i
        };
        let actor = actor_id(id.0, self.nodes, incarnation);
        LibNode {
            me: id.0,
            nodes: self.nodes,
            actor,
            persist: self.persist,
            doc: R::open(actor, self.nodes, self.kind, records),
            bytes_sent: self.bytes_sent.clone(),
        }
    }

    fn guarantees(&self) -> Vec<Guarantee> {
        R::guarantees(self.kind, self.persist)
    }
}

/// A library error as the text a node reports.
pub(crate) fn err(e: impl fmt::Display) -> String {
    e.to_string()
}

/// The name of the object holding `key` in documents with named roots.
pub(crate) fn obj_name(kind: KeyKind, key: &ladon_checker::history::Key) -> String {
    let p = match kind {
        KeyKind::Register => "r",
        KeyKind::List => "l",
        KeyKind::Set => "s",
        KeyKind::Counter => "c",
    };
    format!("{p}:{key}")
}

#[cfg(test)]
mod tests;
