//! Live clients: each logical client sends its operations to one node (its
//! own Maelstrom client name `c<k>`), one at a time, and records invoke and
//! completion. No reply within the timeout, an indefinite error or a reply
//! that makes no sense completes the operation as `info`, after which the
//! client continues under a fresh process id.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ladon_adapters::process::codec::Message;
use ladon_adapters::process::workload::invoked;
use ladon_adapters::process::{Outcome, Workload};
use ladon_checker::history::{EventType, Mop};
use serde_json::{Map, Value as Json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::recorder::Recorder;
use super::router::{Control, RouterIn};
use ladon_workloads::rpc::RpcGenerator;

/// How one operation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    Ok(Vec<Mop>),
    Fail(String),
    Info(String),
}

/// A Maelstrom client endpoint: a name, its msg ids and its reply inbox.
pub struct Endpoint {
    pub name: String,
    next_msg_id: u64,
    replies: mpsc::UnboundedReceiver<Map<String, Json>>,
    router: mpsc::Sender<RouterIn>,
}

impl Endpoint {
    pub async fn register(name: String, router: mpsc::Sender<RouterIn>) -> Endpoint {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = router
            .send(RouterIn::Control(Control::RegisterClient(name.clone(), tx)))
            .await;
        Endpoint {
            name,
            next_msg_id: 0,
            replies: rx,
            router,
        }
    }

    /// Performs `ops` against node `node` (index, name) through the workload's RPCs.
    pub async fn perform(
        &mut self,
        workload: Workload,
        node: (usize, &str),
        ops: &[Mop],
        timeout: Duration,
    ) -> Completion {
        let plan = match workload.requests(ops) {
            Ok(p) => p,
            Err(e) => return Completion::Fail(e.to_string()),
        };
        let deadline = Instant::now() + timeout;
        let mut done = ops.to_vec();
        for (mut body, idxs) in plan {
            self.next_msg_id += 1;
            let msg_id = self.next_msg_id;
            body["msg_id"] = Json::from(msg_id);
            let line = Message::new(self.name.clone(), node.1, body).encode();
            let line = line[..line.len() - 1].to_vec();
            let sent = RouterIn::FromClient {
                node: node.0,
                client: self.name.clone(),
                msg_id,
                line,
            };
            if self.router.send(sent).await.is_err() {
                return Completion::Info("harness stopping".into());
            }
            let reply = loop {
                match tokio::time::timeout_at(deadline, self.replies.recv()).await {
                    Err(_) => return Completion::Info("timeout".into()),
                    Ok(None) => return Completion::Info("harness stopping".into()),
                    // Late replies to earlier, timed-out requests are ignored.
                    Ok(Some(b)) if b.get("in_reply_to").and_then(Json::as_u64) == Some(msg_id) => {
                        break b
                    }
                    Ok(Some(_)) => continue,
                }
            };
            let mut part: Vec<Mop> = idxs.iter().map(|&i| done[i].clone()).collect();
            match workload.apply_reply(&mut part, &reply) {
                Ok(()) => {
                    for (&i, m) in idxs.iter().zip(part) {
                        done[i] = m;
                    }
                }
                Err(Outcome::Failed(why)) => return Completion::Fail(why),
                Err(Outcome::Indeterminate(why)) => return Completion::Info(why),
            }
        }
        Completion::Ok(done)
    }
}

/// Records `invoke`, performs, records the completion; returns it and the
/// process id to use next (fresh after `info`).
#[allow(clippy::too_many_arguments)]
pub async fn run_op(
    ep: &mut Endpoint,
    rec: &Recorder,
    workload: Workload,
    node: (usize, &str),
    f: &str,
    process: u64,
    ops: Vec<Mop>,
    timeout: Duration,
    fresh: &AtomicU64,
) -> (Completion, u64) {
    // Reads carry `null` until they complete (a compare-and-set's read
    // holds its expected value only for the request).
    rec.client(
        EventType::Invoke,
        process,
        node.0,
        f,
        invoked(&ops),
        None,
        None,
    );
    let c = ep.perform(workload, node, &ops, timeout).await;
    match &c {
        Completion::Ok(done) => {
            rec.client(EventType::Ok, process, node.0, f, done.clone(), None, None);
            (c, process)
        }
        Completion::Fail(why) => {
            rec.client(
                EventType::Fail,
                process,
                node.0,
                f,
                invoked(&ops),
                Some(why.clone()),
                None,
            );
            (c, process)
        }
        Completion::Info(why) => {
            rec.client(
                EventType::Info,
                process,
                node.0,
                f,
                invoked(&ops),
                Some(why.clone()),
                None,
            );
            (c, fresh.fetch_add(1, Ordering::SeqCst))
        }
    }
}

pub struct ClientCtx {
    pub index: usize,
    pub workload: Workload,
    pub node: (usize, String),
    pub generator: Arc<Mutex<RpcGenerator>>,
    pub recorder: Recorder,
    pub router: mpsc::Sender<RouterIn>,
    pub timeout: Duration,
    /// Pause between one client's operations.
    pub think: Duration,
    pub stop: Arc<AtomicBool>,
    pub fresh: Arc<AtomicU64>,
}

/// One client's loop until `stop` is set.
pub async fn client_loop(ctx: ClientCtx) {
    let mut ep = Endpoint::register(format!("c{}", ctx.index + 1), ctx.router.clone()).await;
    let mut process = ctx.index as u64;
    while !ctx.stop.load(Ordering::SeqCst) {
        let ops = ctx
            .generator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_op();
        let node = (ctx.node.0, ctx.node.1.as_str());
        let (_, next) = run_op(
            &mut ep,
            &ctx.recorder,
            ctx.workload,
            node,
            "txn",
            process,
            ops,
            ctx.timeout,
            &ctx.fresh,
        )
        .await;
        process = next;
        if !ctx.think.is_zero() {
            tokio::time::sleep(ctx.think).await;
        }
    }
}
