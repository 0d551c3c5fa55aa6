//! Shrinking a failing simulated run: delta debugging over the run's own
//! parameters and its fault schedule, keeping "the checker still finds
//! this anomaly" as the test.
//!
//! The search is greedy and deterministic. Each pass
//! ([`candidates::PASSES`]) lists smaller variants of the current run, most
//! aggressive first; candidates are simulated in parallel, `jobs` at a time,
//! and the first one *in list order* that still shows the anomaly becomes
//! the current run. Which candidates happen to run together never changes
//! the choice, so the same input gives the same minimal run on any number
//! of threads. Passes repeat until none finds a smaller run.

pub mod candidates;
mod trial;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ladon_checker::report::{Anomaly, Report};
use ladon_checker::{EventType, Process};

use crate::options::RunOptions;
use crate::schedule::NemesisSchedule;
use crate::store;
pub use trial::{shows, thousands, Size, Trial};

/// Simulates `o` (resolved: seed set, swarm applied) in memory and checks it.
pub fn evaluate(o: &RunOptions) -> anyhow::Result<Trial> {
    o.validate().map_err(anyhow::Error::msg)?;
    let run = store::execute_in_memory(o, None)?;
    let report = match (run.report, run.check_error) {
        (Some(r), _) => r,
        (None, e) => anyhow::bail!("the checker did not finish: {}", e.unwrap_or_default()),
    };
    let mut ops = 0;
    let mut client_ops = 0;
    for e in &run.events {
        if e.kind == EventType::Invoke && matches!(e.process, Process::Client(_)) {
            ops += 1;
            if !e.is_final() {
                client_ops += 1;
            }
        }
    }
    Ok(Trial {
        options: o.clone(),
        size: Size {
            ops,
            client_ops,
            nodes: o.nodes,
            schedule: NemesisSchedule {
                steps: run.outcome.schedule,
                source: None,
            },
        },
        report,
    })
}

/// The result of a shrink.
#[derive(Debug, Clone)]
pub struct Shrunk {
    pub anomaly: Anomaly,
    pub original: Trial,
    pub minimal: Trial,
    /// Candidates simulated (cache hits not counted).
    pub candidates: u64,
    /// Candidates accepted, one per step down.
    pub steps: u64,
}

/// The shrinker's state: the anomaly kept, threads, and a cache of
/// candidates already simulated (keyed by their options as JSON).
pub struct Shrinker<'a> {
    pub anomaly: Anomaly,
    pub jobs: usize,
    cache: Mutex<BTreeMap<String, bool>>,
    runs: AtomicU64,
    bar: &'a indicatif::ProgressBar,
}

impl<'a> Shrinker<'a> {
    pub fn new(anomaly: Anomaly, jobs: usize, bar: &'a indicatif::ProgressBar) -> Self {
        Shrinker {
            anomaly,
            jobs: jobs.max(1),
            cache: Mutex::new(BTreeMap::new()),
            runs: AtomicU64::new(0),
            bar,
        }
    }

    /// The candidate's trial if it still shows the anomaly. A candidate
    /// that cannot run (an option the adapter refuses) does not.
    fn attempt(&self, o: &RunOptions) -> Option<Trial> {
        let key = serde_json::to_string(o).ok()?;
        if self.cache.lock().ok()?.get(&key) == Some(&false) {
            return None;
        }
        let trial = evaluate(o).ok().filter(|t| t.shows(self.anomaly));
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.bar.inc(1);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key, trial.is_some());
        }
        trial
    }

    /// The first candidate, in list order, that still shows the anomaly.
    /// Runs `jobs` candidates at a time and stops after the first batch
    /// with a success: the pick is the same whatever the batch size.
    pub fn first_passing(&self, candidates: &[RunOptions]) -> Option<Trial> {
        for batch in candidates.chunks(self.jobs) {
            let results = crate::pool::map(batch, self.jobs, |o| self.attempt(o));
            if let Some(t) = results.into_iter().flatten().next() {
                return Some(t);
            }
        }
        None
    }

    /// Shrinks from `start` (which must show the anomaly) to a fixpoint.
    pub fn shrink(&self, start: Trial) -> Shrunk {
        let original = start.clone();
        let mut cur = start;
        let mut steps = 0;
        loop {
            let mut improved = false;
            for (name, pass) in candidates::PASSES {
                loop {
                    let cands: Vec<RunOptions> = pass(&cur)
                        .into_iter()
                        .filter(|o| o.validate().is_ok() && *o != cur.options)
                        .collect();
                    let Some(t) = self.first_passing(&cands) else {
                        break;
                    };
                    cur = t;
                    steps += 1;
                    improved = true;
                    self.bar
                        .set_message(format!("{name}: {}", cur.size.after_text()));
                }
            }
            if !improved {
                break;
            }
        }
        Shrunk {
            anomaly: self.anomaly,
            original,
            minimal: cur,
            candidates: self.runs.load(Ordering::Relaxed),
            steps,
        }
    }
}

/// The anomaly to keep: `wanted` if given (it must show in `report`), else
/// the first forbidden anomaly in the contract's order.
pub fn pick_anomaly(report: &Report, wanted: Option<Anomaly>) -> anyhow::Result<Anomaly> {
    let found: Vec<Anomaly> = report
        .anomalies
        .keys()
        .copied()
        .filter(|&a| shows(report, a))
        .collect();
    let names = || {
        if found.is_empty() {
            "none".to_string()
        } else {
            found
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    match wanted {
        Some(a) if found.contains(&a) => Ok(a),
        Some(a) => anyhow::bail!(
            "--anomaly {}: the run does not show it (forbidden anomalies found: {})",
            a.as_str(),
            names()
        ),
        None => found.first().copied().ok_or_else(|| {
            anyhow::anyhow!("the run shows no forbidden anomaly: nothing to shrink")
        }),
    }
}

/// Shrinks a run given by resolved options. `o.swarm` is applied and
/// turned off first, so every candidate's options are explicit.
pub fn shrink_options(
    o: &RunOptions,
    wanted: Option<Anomaly>,
    jobs: usize,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Shrunk> {
    let mut o = o.clone();
    let seed = o
        .seed
        .ok_or_else(|| anyhow::anyhow!("internal: shrinking needs a seed"))?;
    if o.swarm {
        o.apply_swarm(seed);
        o.swarm = false;
    }
    let original = evaluate(&o)?;
    let anomaly = pick_anomaly(&original.report, wanted)?;
    let shrinker = Shrinker::new(anomaly, jobs, bar);
    Ok(shrinker.shrink(original))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_with_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(2914), "2,914");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
