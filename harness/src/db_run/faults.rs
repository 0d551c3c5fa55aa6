//! Faults on a real database: the simulator's schedule
//! ([`crate::nemesis::Nemesis`]) played on the wall clock against the
//! servers and their link proxies, each step recorded with the
//! simulator's names once it has taken effect.
//!
//! | fault | how |
//! |---|---|
//! | partition | the link proxies of the cut directed links hold or drop (`--partition-mode`) |
//! | clock | libfaketime's timestamp file of the node rewritten |
//! | crash | SIGKILL to the server's processes; restart on the same data directory |
//! | pause | SIGSTOP, then SIGCONT |

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ladon_adapters::db::proxy::{Cut as ProxyCut, LinkProxy};
use ladon_adapters::db::Database;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value as Json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::live::nemesis::cut_event;
use crate::live::recorder::Recorder;
use crate::nemesis::{Action, FaultKind, Nemesis, NemesisConfig};
use crate::net::{PartitionMode, Shape};

/// The cluster, shared by clients, faults and the final phase.
pub type SharedDb = Arc<Mutex<Box<dyn Database>>>;

/// Runs `f` on the database from async code (its calls block: starting a
/// server waits until it is ready).
pub fn with_db<T>(db: &SharedDb, f: impl FnOnce(&mut dyn Database) -> T) -> T {
    tokio::task::block_in_place(|| {
        let mut g = db.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut **g)
    })
}

/// The link proxies, by directed link `(from, to)`: node `to`'s
/// subscription to node `from` goes through `(from, to)`.
pub struct Links {
    pub proxies: BTreeMap<(usize, usize), LinkProxy>,
    pub mode: PartitionMode,
}

impl Links {
    /// Cuts exactly the links in `blocked` (healing the others).
    pub fn cut(&self, blocked: &std::collections::BTreeSet<(usize, usize)>) {
        let how = match self.mode {
            PartitionMode::Drop => ProxyCut::Drop,
            PartitionMode::Hold => ProxyCut::Hold,
        };
        for (link, p) in &self.proxies {
            if blocked.contains(link) {
                p.cut(how);
            } else {
                p.heal();
            }
        }
    }

    pub fn heal_all(&self) {
        for p in self.proxies.values() {
            p.heal();
        }
    }
}

/// Everything the fault task needs.
#[derive(Clone)]
pub struct FaultCtx {
    pub names: Vec<String>,
    pub db: SharedDb,
    pub links: Arc<Links>,
    pub recorder: Recorder,
    pub kinds: Vec<FaultKind>,
    pub interval: Duration,
    pub shapes: Vec<Shape>,
    pub clock_skew_ns: u64,
    /// Nodes paused now (SIGSTOP sent, no SIGCONT yet).
    pub paused: Arc<Mutex<Vec<bool>>>,
}

async fn sleep_until_or_stop(t: Instant, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(t) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

/// Runs the schedule until `stop`; what is in force then is healed by
/// [`heal_all`].
pub async fn run(ctx: FaultCtx, seed: u64, mut stop: watch::Receiver<bool>) {
    let mut schedule = Nemesis::new(NemesisConfig {
        kinds: ctx.kinds.clone(),
        interval_ns: ctx.interval.as_nanos() as u64,
        shapes: ctx.shapes.clone(),
        clock_skew_ns: ctx.clock_skew_ns,
        loss: 0.0,
        dup: 0.0,
    });
    if schedule.is_empty() {
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6e656d);
    let mut strobes: Vec<JoinHandle<()>> = Vec::new();
    let mut next = Instant::now();
    'schedule: loop {
        next += Duration::from_nanos(schedule.next_delay(&mut rng));
        if !sleep_until_or_stop(next, &mut stop).await {
            break;
        }
        let step_start = Instant::now();
        // No message counts here: the `hub` shape cuts off node 1.
        for (offset, action) in schedule.step(ctx.names.len(), 0, &mut rng) {
            if !sleep_until_or_stop(step_start + Duration::from_nanos(offset), &mut stop).await {
                break 'schedule;
            }
            apply(&ctx, action, &mut strobes);
        }
    }
    strobes.iter().for_each(JoinHandle::abort);
}

fn names(ctx: &FaultCtx, idx: &[usize]) -> Json {
    json!(idx
        .iter()
        .map(|&i| ctx.names[i].clone())
        .collect::<Vec<_>>())
}

fn set_clock(db: &SharedDb, i: usize, off: i64) -> bool {
    let g = db.lock().unwrap_or_else(|p| p.into_inner());
    match g.set_clock(i, off) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("clock fault: {e}");
            false
        }
    }
}

fn apply(ctx: &FaultCtx, action: Action, strobes: &mut Vec<JoinHandle<()>>) {
    let rec = &ctx.recorder;
    match action {
        Action::Partition(cut) => {
            let (f, v) = cut_event(&ctx.names, &cut);
            ctx.links.cut(&cut.blocked);
            rec.nemesis(f, v);
        }
        Action::Heal => {
            ctx.links.heal_all();
            rec.nemesis("heal", Json::Null);
        }
        Action::ClockBump(bumps) => {
            let mut skew = BTreeMap::new();
            for (i, off) in bumps {
                if set_clock(&ctx.db, i, off) {
                    skew.insert(ctx.names[i].clone(), json!(off));
                }
            }
            if !skew.is_empty() {
                rec.nemesis("clock-skew", json!(skew));
            }
        }
        Action::ClockStrobe {
            nodes,
            delta_ns,
            period_ns,
            duration_ns,
        } => {
            let (db, who) = (ctx.db.clone(), nodes.clone());
            let period = Duration::from_nanos(period_ns.max(1_000_000));
            let flips = duration_ns / period.as_nanos().max(1) as u64;
            strobes.retain(|h| !h.is_finished());
            strobes.push(tokio::spawn(async move {
                for k in 0..flips {
                    let off = if k % 2 == 0 { delta_ns } else { 0 };
                    for &i in &who {
                        set_clock(&db, i, off);
                    }
                    tokio::time::sleep(period).await;
                }
                for &i in &who {
                    set_clock(&db, i, 0);
                }
            }));
            let delta: BTreeMap<String, Json> = nodes
                .iter()
                .map(|&i| (ctx.names[i].clone(), json!(delta_ns)))
                .collect();
            rec.nemesis(
                "clock-strobe",
                json!({"delta": delta, "period_ns": period_ns, "duration_ns": duration_ns}),
            );
        }
        Action::ClockReset => {
            strobes.drain(..).for_each(|h| h.abort());
            for i in 0..ctx.names.len() {
                set_clock(&ctx.db, i, 0);
            }
            rec.nemesis("clock-reset", Json::Null);
        }
        Action::Crash(idx) => {
            let down: Vec<usize> = with_db(&ctx.db, |db| {
                idx.into_iter()
                    .filter(|&i| db.is_up(i) && db.kill(i).is_ok())
                    .collect()
            });
            let mut paused = ctx.paused.lock().unwrap_or_else(|p| p.into_inner());
            for &i in &down {
                paused[i] = false;
            }
            if !down.is_empty() {
                rec.nemesis("crash", names(ctx, &down));
            }
        }
        Action::Restart(idx) => {
            let back: Vec<usize> = with_db(&ctx.db, |db| {
                idx.into_iter()
                    .filter(|&i| {
                        !db.is_up(i)
                            && match db.restart(i) {
                                Ok(()) => true,
                                Err(e) => {
                                    tracing::warn!("restart: {e}");
                                    false
                                }
                            }
                    })
                    .collect()
            });
            if !back.is_empty() {
                rec.nemesis("restart", names(ctx, &back));
            }
        }
        Action::Pause(idx) => {
            let mut paused = ctx.paused.lock().unwrap_or_else(|p| p.into_inner());
            let now: Vec<usize> = with_db(&ctx.db, |db| {
                idx.into_iter()
                    .filter(|&i| db.is_up(i) && !paused[i] && db.pause(i).is_ok())
                    .collect()
            });
            for &i in &now {
                paused[i] = true;
            }
            if !now.is_empty() {
                rec.nemesis("pause", names(ctx, &now));
            }
        }
        Action::Resume(idx) => {
            let mut paused = ctx.paused.lock().unwrap_or_else(|p| p.into_inner());
            let now: Vec<usize> = with_db(&ctx.db, |db| {
                idx.into_iter()
                    .filter(|&i| paused[i] && db.resume(i).is_ok())
                    .collect()
            });
            for &i in &now {
                paused[i] = false;
            }
            if !now.is_empty() {
                rec.nemesis("resume", names(ctx, &now));
            }
        }
        // Refused when the options are resolved (see `db_run::resolve`).
        Action::Loss(_)
        | Action::LossStop
        | Action::Dup(_)
        | Action::DupStop
        | Action::Clog(_)
        | Action::Unclog(_) => {}
    }
}

/// The final phase's heal: every link, every clock, every paused and
/// crashed node; records what it healed.
pub fn heal_all(ctx: &FaultCtx, clocks: bool) {
    ctx.links.heal_all();
    ctx.recorder.nemesis("heal", Json::Null);
    if clocks {
        for i in 0..ctx.names.len() {
            set_clock(&ctx.db, i, 0);
        }
        ctx.recorder.nemesis("clock-reset", Json::Null);
    }
    let paused: Vec<usize> = {
        let mut p = ctx.paused.lock().unwrap_or_else(|p| p.into_inner());
        let idx: Vec<usize> = (0..p.len()).filter(|&i| p[i]).collect();
        with_db(&ctx.db, |db| {
            for &i in &idx {
                let _ = db.resume(i);
            }
        });
        p.iter_mut().for_each(|x| *x = false);
        idx
    };
    if !paused.is_empty() {
        ctx.recorder.nemesis("resume", names(ctx, &paused));
    }
    let restarted: Vec<usize> = with_db(&ctx.db, |db| {
        (0..ctx.names.len())
            .filter(|&i| {
                !db.is_up(i)
                    && match db.restart(i) {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::warn!("final phase: cannot restart n{}: {e}", i + 1);
                            false
                        }
                    }
            })
            .collect()
    });
    if !restarted.is_empty() {
        ctx.recorder.nemesis("restart", names(ctx, &restarted));
    }
}
