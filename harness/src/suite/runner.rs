//! Running a suite's cases in parallel (std threads). Each case runs as a
//! `ladon run` child process with its own `--store`, so runs are isolated,
//! a crash or hang in one cannot take down the others, and what the suite
//! ran is exactly what a user reproduces.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use ladon_checker::report::{Report, Verdict};

use super::matrix::Case;

/// What one run produced.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunOutput {
    /// `None` when the run produced no report.
    pub verdict: Option<Verdict>,
    /// Anomaly name → (count, forbidden).
    pub anomalies: BTreeMap<String, (u64, bool)>,
    pub run_dir: Option<PathBuf>,
    /// The reproduce command from `run.json`, or the suite's own.
    pub reproduce: String,
    pub duration: Duration,
    /// Why the run produced no verdict (crash, timeout, bad flags), if it did not.
    pub error: Option<String>,
    /// The full report, when there is one (for JUnit texts).
    pub report: Option<Report>,
}

/// Runs one case, writing what it keeps under `store`.
pub trait CaseRunner: Sync {
    fn run(&self, case: &Case, store: &Path) -> RunOutput;
}

/// Runs `ladon run` as a child process.
pub struct LadonRunner {
    pub exe: PathBuf,
    pub timeout: Duration,
}

impl LadonRunner {
    pub fn current(timeout: Duration) -> std::io::Result<LadonRunner> {
        Ok(LadonRunner {
            exe: std::env::current_exe()?,
            timeout,
        })
    }
}

/// The newest directory under `root` (at most 4 levels down) holding a
/// `report.json` written at or after `since`.
pub fn newest_run_dir(root: &Path, since: SystemTime) -> Option<PathBuf> {
    fn walk(dir: &Path, depth: usize, since: SystemTime, best: &mut Option<(SystemTime, PathBuf)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.file_name().is_some_and(|n| n == "report.json") {
                if let Ok(m) = p.metadata().and_then(|m| m.modified()) {
                    if m >= since && best.as_ref().is_none_or(|(t, _)| m > *t) {
                        *best = Some((m, dir.to_path_buf()));
                    }
                }
            } else if depth > 0 && p.is_dir() && !p.is_symlink() {
                walk(&p, depth - 1, since, best);
            }
        }
    }
    let mut best = None;
    walk(root, 4, since, &mut best);
    best.map(|(_, p)| p)
}

/// Reads a run directory's `report.json` and `run.json` into an output.
pub fn read_run_dir(dir: &Path, fallback_reproduce: &str, duration: Duration) -> RunOutput {
    let mut out = RunOutput {
        verdict: None,
        anomalies: BTreeMap::new(),
        run_dir: Some(dir.to_path_buf()),
        reproduce: fallback_reproduce.to_string(),
        duration,
        error: None,
        report: None,
    };
    let rpath = dir.join("report.json");
    match std::fs::read_to_string(&rpath)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str::<Report>(&s).map_err(|e| e.to_string()))
    {
        Ok(r) => {
            out.verdict = Some(r.verdict);
            out.anomalies = r
                .anomalies
                .iter()
                .map(|(a, f)| (a.to_string(), (f.count, f.forbidden)))
                .collect();
            out.report = Some(r);
        }
        Err(e) => out.error = Some(format!("cannot read {}: {e}", rpath.display())),
    }
    if let Ok(s) = std::fs::read_to_string(dir.join("run.json")) {
        if let Some(r) = serde_json::from_str::<serde_json::Value>(&s)
            .ok()
            .and_then(|v| {
                v.get("reproduce")
                    .and_then(|r| r.as_str())
                    .map(str::to_string)
            })
        {
            out.reproduce = r;
        }
    }
    out
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl CaseRunner for LadonRunner {
    fn run(&self, case: &Case, store: &Path) -> RunOutput {
        let start = Instant::now();
        let since = SystemTime::now() - Duration::from_secs(1);
        let dir = store.join(case.slug());
        let failed = |error: String| RunOutput {
            verdict: None,
            anomalies: BTreeMap::new(),
            run_dir: None,
            reproduce: case.command(),
            duration: start.elapsed(),
            error: Some(error),
            report: None,
        };
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return failed(format!("cannot create {}: {e}", dir.display()));
        }
        let log_path = dir.join("ladon-run.log");
        let log = match std::fs::File::create(&log_path) {
            Ok(f) => f,
            Err(e) => return failed(format!("cannot create {}: {e}", log_path.display())),
        };
        let child = Command::new(&self.exe)
            .arg("run")
            .args(&case.args)
            .arg("--seed")
            .arg(case.seed.to_string())
            .arg("--store")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .stderr(Stdio::from(log))
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => return failed(format!("cannot start {}: {e}", self.exe.display())),
        };
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if start.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return failed(format!(
                        "timed out after {} s (killed); log: {}",
                        self.timeout.as_secs(),
                        log_path.display()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return failed(format!("waiting for the run: {e}")),
            }
        };
        match newest_run_dir(&dir, since) {
            Some(run_dir) => read_run_dir(&run_dir, &case.command(), start.elapsed()),
            None => failed(format!(
                "`ladon run` exited with {status} and wrote no report.json; last lines of {}:\n{}",
                log_path.display(),
                tail(&log_path, 8)
            )),
        }
    }
}

/// Runs every case on `jobs` threads; `done` is called as each finishes
/// (from the worker thread). Results are in case order.
pub fn run_all(
    cases: &[Case],
    runner: &dyn CaseRunner,
    jobs: usize,
    store: &Path,
    done: &(dyn Fn(&Case, &RunOutput) + Sync),
) -> Vec<RunOutput> {
    crate::pool::map(cases, jobs, |case| {
        let out = runner.run(case, store);
        done(case, &out);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::super::{matrix::expand, spec::parse};
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A stand-in for `ladon run`: seed 2 is invalid, 3 crashes, 4 hangs.
    const FAKE_RUN: &str = r#"#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in --seed) seed=$2; shift;; --store) store=$2; shift;; esac; shift; done
d="$store/t/x-seed$seed"; mkdir -p "$d"
[ "$seed" = 3 ] && { echo "error: --strategy: unknown strategy" >&2; exit 2; }
[ "$seed" = 4 ] && sleep 10
v=valid; a='{}'
[ "$seed" = 2 ] && { v=invalid; a='{"lost-write":{"count":3,"forbidden":true,"examples":[]}}'; }
echo "{\"verdict\":\"$v\",\"guarantees\":[],\"anomalies\":$a,\"conflicts\":{\"none\":0,\"lww\":0,\"siblings\":0,\"merged\":0,\"diverged\":0,\"lost\":0,\"concurrent_pairs\":0},\"stats\":{\"ok\":1,\"fail\":0,\"info\":0,\"acknowledged_writes\":1,\"lost_writes\":0,\"lost_write_share\":0.0,\"convergence_ns\":null}}" > "$d/report.json"
echo "{\"reproduce\":\"ladon run --seed $seed\"}" > "$d/run.json"
"#;

    #[test]
    fn runs_cases_as_child_processes_in_parallel() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("fake-ladon");
        std::fs::write(&exe, FAKE_RUN).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let suite = parse(
            "[[group]]\nname = \"g\"\nseeds = [1, 2, 3, 4]\nexpect = \"valid\"\n",
            "s.toml",
        )
        .unwrap();
        let cases = expand(&suite);
        let runner = LadonRunner {
            exe,
            timeout: Duration::from_millis(1500),
        };
        let seen = AtomicUsize::new(0);
        let outs = run_all(&cases, &runner, 2, &dir.path().join("store"), &|_, _| {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(seen.load(Ordering::SeqCst), 4);
        assert_eq!(outs[0].verdict, Some(Verdict::Valid));
        assert_eq!(outs[0].reproduce, "ladon run --seed 1");
        assert!(outs[0]
            .run_dir
            .as_ref()
            .unwrap()
            .ends_with("000-g_seed_1/t/x-seed1"));
        assert_eq!(outs[1].verdict, Some(Verdict::Invalid));
        assert_eq!(outs[1].anomalies["lost-write"], (3, true));
        let crashed = outs[2].error.as_ref().unwrap();
        assert!(
            crashed.contains("wrote no report.json") && crashed.contains("unknown strategy"),
            "{crashed}"
        );
        assert_eq!(outs[2].reproduce, "ladon run --seed 3");
        assert!(outs[3]
            .error
            .as_ref()
            .unwrap()
            .starts_with("timed out after 1 s"));
    }
}
