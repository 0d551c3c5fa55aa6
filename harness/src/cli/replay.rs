//! `ladon replay RUN_DIR`: re-runs a stored simulated run from its
//! `run.json` and fails loudly if the history differs by one byte.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::store::{self, RunInfo};

/// Re-run a stored simulated run and compare histories byte for byte.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// A run directory (holding run.json and history.jsonl).
    pub run_dir: PathBuf,
}

/// Replays `dir`; returns the new run's directory.
pub fn replay(dir: &std::path::Path, store_dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let info_path = dir.join("run.json");
    let text = std::fs::read_to_string(&info_path)
        .with_context(|| format!("reading {}", info_path.display()))?;
    // A live run's options are not simulator options: look at the mode first.
    let head: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", info_path.display()))?;
    let mode = head.get("mode").and_then(|m| m.as_str()).unwrap_or("");
    if mode != "simulation" {
        let how = match head.get("reproduce").and_then(|r| r.as_str()) {
            Some(cmd) => format!("re-run it with its reproduce command:\n  {cmd}"),
            None => "re-run it with the same `ladon run` flags".into(),
        };
        bail!(
            "{}: a {mode:?} run cannot be replayed: real processes on wall-clock time \
             do not repeat a history byte for byte, only simulated runs do; {how}",
            info_path.display()
        );
    }
    let info: RunInfo =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", info_path.display()))?;
    let mut o = info.options.clone();
    o.seed = Some(info.seed);
    if let Some(s) = store_dir {
        o.store = s;
    }
    let o = crate::cli::run::resolve(o)?;
    let run = store::execute(&o, info.reproduce.clone(), true, None)?;
    let new_dir = run.dir.context("replay produced no run directory")?;
    let old = std::fs::read(dir.join("history.jsonl"))
        .with_context(|| format!("reading {}/history.jsonl", dir.display()))?;
    let new = std::fs::read(new_dir.join("history.jsonl"))?;
    if old != new {
        let (ol, nl) = (String::from_utf8_lossy(&old), String::from_utf8_lossy(&new));
        let line = ol
            .lines()
            .zip(nl.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(ol.lines().count().min(nl.lines().count()));
        bail!(
            "replay of {} DIFFERS from the stored history at line {} (stored {} lines, replay {} lines); new run in {}\n  stored: {}\n  replay: {}",
            dir.display(),
            line + 1,
            ol.lines().count(),
            nl.lines().count(),
            new_dir.display(),
            ol.lines().nth(line).unwrap_or("<end>"),
            nl.lines().nth(line).unwrap_or("<end>")
        );
    }
    Ok(new_dir)
}

pub fn main(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let new_dir = replay(&args.run_dir, None)?;
    println!(
        "replay identical: {} reproduces byte for byte (new run in {})",
        args.run_dir.display(),
        new_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_live_run_is_refused_with_its_reproduce_command() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = "ladon run --adapter process --bin n.py --workload g-set --seed 9";
        let run_json = serde_json::json!({
            "test": "g-set-n", "seed": 9, "mode": "live", "adapter": "process",
            "options": {"live": {"bin": "n.py"}}, "reproduce": cmd,
            "ladon_version": "0", "git_revision": null, "guarantees": ["convergence"],
        });
        std::fs::write(dir.path().join("run.json"), run_json.to_string()).unwrap();
        let err = format!("{:#}", super::replay(dir.path(), None).unwrap_err());
        assert_eq!(
            err,
            format!(
                "{}: a \"live\" run cannot be replayed: real processes on wall-clock time \
                 do not repeat a history byte for byte, only simulated runs do; \
                 re-run it with its reproduce command:\n  {cmd}",
                dir.path().join("run.json").display()
            )
        );
    }
}
