//! The final reads of a database run: after the heal, every node reads every
//! written key, round after round, until all nodes return the same state or
//! `--converge-timeout` passes. What a round means (agreement, the window,
//! the time to converge, the last change) is the shared bookkeeping of
//! every execution ([`FinalRounds`], states compared canonically as a live
//! process run compares them); only how a node is read is here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ladon_adapters::db::{DbClient, TxnOutcome};
use ladon_adapters::process::Workload;
use ladon_checker::history::{EventType, Mop, F_FINAL};

use super::faults::SharedDb;
use crate::final_phase::{Compare, FinalReads, FinalRounds};
use crate::live::recorder::Recorder;

pub struct FinalCtx {
    pub workload: Workload,
    pub names: Vec<String>,
    pub db: SharedDb,
    pub recorder: Recorder,
    /// The final read: every written key (`RpcGenerator::final_reads`).
    pub reads: Vec<Mop>,
    pub timeout: Duration,
    pub converge_timeout: Duration,
    pub fresh: std::sync::Arc<AtomicU64>,
    /// Servers found exited by themselves (recorded by the execution's
    /// tick, every 100 ms).
    pub exits: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// One node's final reader: its connection (re-made after an error) and
/// its process id (fresh after `info`).
struct Reader {
    node: usize,
    client: Option<Box<dyn DbClient>>,
    process: u64,
}

/// Connects a client to node `i` (the connect call itself is quick; the
/// future does the network part).
pub async fn connect(
    db: &SharedDb,
    i: usize,
    timeout: Duration,
) -> Result<Box<dyn DbClient>, String> {
    let fut = {
        let g = db.lock().unwrap_or_else(|p| p.into_inner());
        g.connect(i, timeout)
    };
    fut.await
}

impl Reader {
    /// One read of every key, recorded as a `final` operation; `None` when
    /// the node could not be reached (nothing recorded then).
    async fn read(&mut self, ctx: &FinalCtx, reads: &[Mop]) -> Option<Vec<Mop>> {
        if self.client.is_none() {
            self.client = connect(&ctx.db, self.node, ctx.timeout).await.ok();
        }
        let client = self.client.as_mut()?;
        let node = self.node;
        let rec = &ctx.recorder;
        rec.client(
            EventType::Invoke,
            self.process,
            node,
            F_FINAL,
            reads.to_vec(),
            None,
            None,
        );
        match client.txn(ctx.workload.kind(), reads).await {
            TxnOutcome::Ok(done) => {
                let meta = client.take_meta();
                rec.client(
                    EventType::Ok,
                    self.process,
                    node,
                    F_FINAL,
                    done.clone(),
                    None,
                    meta,
                );
                Some(done)
            }
            TxnOutcome::Fail(why) => {
                rec.client(
                    EventType::Fail,
                    self.process,
                    node,
                    F_FINAL,
                    reads.to_vec(),
                    Some(why),
                    None,
                );
                self.client = None;
                None
            }
            TxnOutcome::Info(why) => {
                rec.client(
                    EventType::Info,
                    self.process,
                    node,
                    F_FINAL,
                    reads.to_vec(),
                    Some(why),
                    None,
                );
                self.client = None;
                self.process = ctx.fresh.fetch_add(1, Ordering::SeqCst);
                None
            }
        }
    }
}

/// Reads every node until they agree or the window ends.
pub async fn final_reads(ctx: &FinalCtx) -> FinalReads {
    let n = ctx.names.len();
    let mut readers: Vec<Reader> = (0..n)
        .map(|node| Reader {
            node,
            client: None,
            process: ctx.fresh.fetch_add(1, Ordering::SeqCst),
        })
        .collect();
    let reads = &ctx.reads;
    let mut rounds = FinalRounds::new(
        ctx.names.clone(),
        Compare::Canonical(ctx.workload.kind()),
        ctx.recorder.now_ns(),
        ctx.converge_timeout.as_nanos() as u64,
    );
    let deadline = tokio::time::Instant::now() + ctx.converge_timeout;
    let mut next_halt_check = tokio::time::Instant::now();
    loop {
        let results = crate::live::final_phase::futures_join_all(
            readers.iter_mut().map(|r| r.read(ctx, reads)).collect(),
        )
        .await;
        if rounds.round(ctx.recorder.now_ns(), &results)
            || tokio::time::Instant::now() + Duration::from_millis(100) >= deadline
        {
            return rounds.into_reads();
        }
        // Disagreement the system says is for good (a server gone by
        // itself, which the execution's tick records; replication stopped
        // on an error, asked at most once a second: MariaDB's answer runs
        // a client per node): no point in waiting.
        let mut halted = ctx.exits.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if tokio::time::Instant::now() >= next_halt_check {
            next_halt_check = tokio::time::Instant::now() + Duration::from_secs(1);
            let db = ctx.db.clone();
            halted.extend(
                tokio::task::spawn_blocking(move || {
                    db.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .replication_halted()
                })
                .await
                .unwrap_or_default(),
            );
        }
        if !halted.is_empty() {
            rounds.end_early(ctx.recorder.now_ns(), halted.join("; "));
            return rounds.into_reads();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
