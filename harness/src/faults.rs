//! The nemesis applier, one for every execution: what each [`Action`] of
//! the schedule does to a [`FaultTarget`] and the history event that
//! records it once it has taken effect (names from history.md; our own for
//! loss, duplication, clogs, strobes and non-group partitions), and the
//! heal that ends the faulty phase ([`heal_all`]).
//!
//! A target is what differs: the simulated world (`runner::faults`, whose
//! methods finish at once, in virtual time) or live processes and the
//! router (`live::nemesis`, whose methods wait for signals, files and
//! channels). The methods are `async` so one applier serves both; a
//! simulation drives it with [`ready`].

use std::future::Future;
use std::io;

use serde_json::{json, Value as Json};

use crate::nemesis::Action;
use crate::net::Cut;

/// What the nemesis applier acts on. Methods that take nodes return the
/// ones the fault took effect on (a live node already down cannot crash);
/// an action that took effect on none is not recorded.
#[allow(async_fn_in_trait)]
pub trait FaultTarget {
    /// Node names (index `i` is node `i`).
    fn names(&self) -> &[String];
    /// Records a nemesis event at the target's now.
    fn record(&mut self, f: &str, value: Json) -> io::Result<()>;
    /// Whether clock faults may have been applied (the heal resets clocks).
    fn clocks(&self) -> bool;

    async fn partition(&mut self, cut: Cut);
    /// Heals the partitions.
    async fn heal(&mut self);
    /// Heals every network fault: partitions, loss, duplication, clogs.
    async fn heal_network(&mut self);
    /// Jumps clocks; the offsets to record, by node.
    async fn clock_bump(&mut self, bumps: &[(usize, i64)]) -> Vec<(usize, i64)>;
    async fn clock_strobe(
        &mut self,
        nodes: &[usize],
        delta_ns: i64,
        period_ns: u64,
        duration_ns: u64,
    );
    async fn clock_reset(&mut self);
    async fn crash(&mut self, nodes: Vec<usize>) -> Vec<usize>;
    async fn restart(&mut self, nodes: Vec<usize>) -> Vec<usize>;
    async fn pause(&mut self, nodes: Vec<usize>) -> Vec<usize>;
    async fn resume(&mut self, nodes: Vec<usize>) -> Vec<usize>;
    async fn set_loss(&mut self, p: f64);
    async fn set_duplicate(&mut self, p: f64);
    async fn clog(&mut self, node: usize);
    async fn unclog(&mut self, node: usize);
    /// Nodes that are down (crashed, or exited on their own).
    async fn down(&mut self) -> Vec<usize>;
    /// Nodes that are paused.
    async fn paused(&mut self) -> Vec<usize>;
    /// The node that has sent the most messages (the `hub` partition
    /// shape cuts it off); node 0 when the target does not count them.
    async fn busiest(&mut self) -> usize {
        0
    }
}

fn names_json(names: &[String], nodes: &[usize]) -> Json {
    Json::Array(
        nodes
            .iter()
            .map(|&n| Json::String(names[n].clone()))
            .collect(),
    )
}

/// The history event of a cut: `partition` with groups when it is a
/// grouping, `partition-links` with the cut links otherwise.
pub fn cut_event(names: &[String], cut: &Cut) -> (&'static str, Json) {
    match &cut.groups {
        Some(groups) => (
            "partition",
            Json::Array(groups.iter().map(|g| names_json(names, g)).collect()),
        ),
        None => (
            "partition-links",
            json!({ "cut": cut
                .blocked
                .iter()
                .map(|&(a, b)| names_json(names, &[a, b]))
                .collect::<Vec<_>>() }),
        ),
    }
}

/// Records `f` with the nodes an action took effect on, if any.
fn record_nodes<T: FaultTarget>(t: &mut T, f: &str, nodes: &[usize]) -> io::Result<()> {
    if nodes.is_empty() {
        return Ok(());
    }
    let v = names_json(t.names(), nodes);
    t.record(f, v)
}

/// Applies one action to `t` and records it.
pub async fn apply<T: FaultTarget>(t: &mut T, action: Action) -> io::Result<()> {
    match action {
        Action::Partition(cut) => {
            let (f, v) = cut_event(t.names(), &cut);
            t.partition(cut).await;
            t.record(f, v)
        }
        Action::Heal => {
            t.heal().await;
            t.record("heal", Json::Null)
        }
        Action::ClockBump(bumps) => {
            let offsets = t.clock_bump(&bumps).await;
            if offsets.is_empty() {
                return Ok(());
            }
            let map: serde_json::Map<String, Json> = offsets
                .iter()
                .map(|&(i, o)| (t.names()[i].clone(), json!(o)))
                .collect();
            t.record("clock-skew", Json::Object(map))
        }
        Action::ClockStrobe {
            nodes,
            delta_ns,
            period_ns,
            duration_ns,
        } => {
            t.clock_strobe(&nodes, delta_ns, period_ns, duration_ns)
                .await;
            let map: serde_json::Map<String, Json> = nodes
                .iter()
                .map(|&i| (t.names()[i].clone(), json!(delta_ns)))
                .collect();
            t.record(
                "clock-strobe",
                json!({ "delta": Json::Object(map), "period_ns": period_ns, "duration_ns": duration_ns }),
            )
        }
        Action::ClockReset => {
            t.clock_reset().await;
            t.record("clock-reset", Json::Null)
        }
        Action::Crash(nodes) => {
            let done = t.crash(nodes).await;
            record_nodes(t, "crash", &done)
        }
        Action::Restart(nodes) => {
            let done = t.restart(nodes).await;
            record_nodes(t, "restart", &done)
        }
        Action::Pause(nodes) => {
            let done = t.pause(nodes).await;
            record_nodes(t, "pause", &done)
        }
        Action::Resume(nodes) => {
            let done = t.resume(nodes).await;
            record_nodes(t, "resume", &done)
        }
        Action::Loss(p) => {
            t.set_loss(p).await;
            t.record("loss", json!({ "p": p }))
        }
        Action::LossStop => {
            t.set_loss(0.0).await;
            t.record("loss-stop", Json::Null)
        }
        Action::Dup(p) => {
            t.set_duplicate(p).await;
            t.record("duplicate", json!({ "p": p }))
        }
        Action::DupStop => {
            t.set_duplicate(0.0).await;
            t.record("duplicate-stop", Json::Null)
        }
        Action::Clog(node) => {
            t.clog(node).await;
            record_nodes(t, "clog", &[node])
        }
        Action::Unclog(node) => {
            t.unclog(node).await;
            record_nodes(t, "unclog", &[node])
        }
    }
}

/// The end of the faulty phase: heals the network, resets clocks, restarts
/// the nodes that are down and resumes the paused ones, recording each as
/// the nemesis's own actions would.
pub async fn heal_all<T: FaultTarget>(t: &mut T) -> io::Result<()> {
    t.heal_network().await;
    t.record("heal", Json::Null)?;
    if t.clocks() {
        apply(t, Action::ClockReset).await?;
    }
    let down = t.down().await;
    if !down.is_empty() {
        apply(t, Action::Restart(down)).await?;
    }
    let paused = t.paused().await;
    if !paused.is_empty() {
        apply(t, Action::Resume(paused)).await?;
    }
    Ok(())
}

/// Sleeps until `t`; `false` if told to stop first.
async fn sleep_until_or_stop(
    t: tokio::time::Instant,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(t) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

/// Plays the schedule of `config` on the wall clock against a live target
/// (processes, a database) until `stop` turns true, applying and recording
/// each step with [`apply`]. What is in force when it stops is healed by
/// [`heal_all`]. A target's write errors are its own to keep (the live
/// recorder does).
pub async fn play<T: FaultTarget>(
    t: &mut T,
    config: crate::nemesis::NemesisConfig,
    seed: u64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use rand::SeedableRng;
    use std::time::Duration;
    use tokio::time::Instant;
    let mut schedule = crate::nemesis::Nemesis::new(config);
    if schedule.is_empty() {
        return;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x6e656d);
    let mut next = Instant::now();
    loop {
        next += Duration::from_nanos(schedule.next_delay(&mut rng));
        if !sleep_until_or_stop(next, &mut stop).await {
            return;
        }
        let step_start = Instant::now();
        let busiest = t.busiest().await;
        for (offset, action) in schedule.step(t.names().len(), busiest, &mut rng) {
            if !sleep_until_or_stop(step_start + Duration::from_nanos(offset), &mut stop).await {
                return;
            }
            let _ = apply(t, action).await;
        }
    }
}

/// Plays an explicit schedule (`--nemesis-schedule`) on the wall clock: each
/// step at its time from now, until `stop`; nothing is drawn.
pub async fn play_steps<T: FaultTarget>(
    t: &mut T,
    steps: &[crate::schedule::ScheduleStep],
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let start = tokio::time::Instant::now();
    for step in steps {
        let at = start + std::time::Duration::from_nanos(step.at.ns());
        if !sleep_until_or_stop(at, &mut stop).await {
            return;
        }
        let _ = apply(t, step.action.clone()).await;
    }
}

/// Runs a future that never waits (a simulated target's) to its end.
pub fn ready<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => {
            panic!("internal: a simulated fault target waited (its methods must not)")
        }
    }
}
