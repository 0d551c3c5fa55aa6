//! `ladon run`: one test, stored under `results/`.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use ladon_checker::report::Verdict;

use crate::options::RunOptions;
use crate::store::{self, StoredRun};

/// `ladon run`: the options of a simulated run (see the `Run` command).
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub options: RunOptions,
    /// Write JUnit XML here: one test case per anomaly class.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
}

/// Resolves options before anything expensive: seed drawn if absent, swarm
/// applied, values validated.
pub fn resolve(mut o: RunOptions) -> anyhow::Result<RunOptions> {
    let seed = o.seed.unwrap_or_else(random_seed);
    o.seed = Some(seed);
    if o.swarm {
        o.apply_swarm(seed);
    }
    o.validate().map_err(anyhow::Error::msg)?;
    let adapter = crate::adapters::find(&o.adapter)?;
    // Only `ladon run` itself drives live adapters (see `run_process`).
    anyhow::ensure!(
        adapter.mode == crate::adapters::Mode::Simulation,
        "{}",
        crate::adapters::LIVE_ONLY
    );
    store::resolve_guarantees(&o)?;
    Ok(o)
}

fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // splitmix64 of time and pid: a seed, printed, never needed again.
    let mut z = t ^ ((std::process::id() as u64) << 32);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The reproduce command for resolved options `o`: the user's flags, with
/// `--adapter` and `--workload` spelled out when they were defaults (so the
/// command survives a change of defaults), then `--seed S`.
pub fn reproduce_for(o: &RunOptions, args: &[String], skip: &[&str]) -> String {
    let given = |flag: &str| {
        args.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    let mut full = Vec::new();
    if !given("--adapter") {
        full.extend(["--adapter".to_string(), o.adapter.clone()]);
    }
    if !given("--workload") {
        full.extend(["--workload".to_string(), o.workload.to_string()]);
    }
    full.extend(args.iter().cloned());
    reproduce_command(&full, o.seed.unwrap_or(0), skip)
}

/// The command that repeats a run: the user's flags without `--seed` (and
/// without the listed explore-only flags), then `--seed S`.
pub fn reproduce_command(args: &[String], seed: u64, skip: &[&str]) -> String {
    let mut out = vec!["ladon".to_string(), "run".to_string()];
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let flag = a.split('=').next().unwrap_or(a);
        if flag == "--seed" || skip.contains(&flag) {
            i += if a.contains('=') { 1 } else { 2 };
            continue;
        }
        out.push(shell_quote(a));
        i += 1;
    }
    out.push("--seed".into());
    out.push(seed.to_string());
    out.join(" ")
}

/// A `ladon run` command for options `o` built from the options alone (no
/// user flags to start from, as for a shrunk run): `--adapter` and
/// `--workload`, every option that differs from its default, the schedule
/// file if `o` has a schedule, then `--seed S`.
pub fn command_from_options(o: &RunOptions, schedule_file: Option<&std::path::Path>) -> String {
    let cur = serde_json::to_value(o).unwrap_or_default();
    let def = serde_json::to_value(RunOptions::default()).unwrap_or_default();
    let mut out: Vec<String> = ["ladon", "run", "--adapter", &o.adapter, "--workload"]
        .iter()
        .map(|s| shell_quote(s))
        .collect();
    out.push(o.workload.to_string());
    let skip = ["adapter", "workload", "seed", "nemesis_schedule"];
    for (k, v) in cur.as_object().into_iter().flatten() {
        if skip.contains(&k.as_str()) || def.get(k) == Some(v) {
            continue;
        }
        let flag = format!("--{}", k.replace('_', "-"));
        let value = match v {
            serde_json::Value::Null => continue,
            // A plain switch (`--swarm`): no value.
            serde_json::Value::Bool(true) if def.get(k).is_some_and(|d| d.is_boolean()) => {
                out.push(flag);
                continue;
            }
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push(flag);
        out.push(shell_quote(&value));
    }
    if let (Some(_), Some(path)) = (&o.nemesis_schedule, schedule_file) {
        out.push("--nemesis-schedule".into());
        out.push(shell_quote(&path.display().to_string()));
    }
    out.push("--seed".into());
    out.push(o.seed.unwrap_or(0).to_string());
    out.join(" ")
}

/// Quotes `s` for a POSIX shell when it holds anything but plain characters.
pub(crate) fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:,=+@%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The flags after the subcommand name.
pub fn user_args(subcommand: &str) -> Vec<String> {
    let all: Vec<String> = std::env::args().collect();
    match all.iter().position(|a| a == subcommand) {
        Some(p) => all[p + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// Prints the options that matter before a run (durations for people, in
/// the reports' one format; `run.json` keeps the flags' own spelling).
pub fn print_header(o: &RunOptions) {
    use ladon_checker::explain::duration;
    eprintln!(
        "ladon run: test {} adapter {} workload {} nodes {} seed {}",
        o.test_name(),
        o.adapter,
        o.workload,
        o.nodes,
        o.seed.unwrap_or(0)
    );
    eprintln!(
        "  nemesis {} every ~{} ({} partitions), time limit {}, rate {}/s, {} {} clients, latency {}{}",
        o.nemesis,
        duration(o.nemesis_interval.0),
        serde_json::to_value(o.net.partition_mode).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        duration(o.time_limit.0),
        o.rate,
        o.concurrency,
        serde_json::to_value(o.clients).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        o.net.latency.describe(),
        if o.swarm { ", swarm" } else { "" }
    );
}

/// Runs with a progress bar on a terminal, plain lines otherwise.
pub fn execute_with_progress(o: &RunOptions, reproduce: String) -> anyhow::Result<StoredRun> {
    let total = o.time_limit.ns();
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total / 1_000_000);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} virtual ms {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let mut cb = |now: u64, _total: u64| bar.set_position(now.min(total) / 1_000_000);
        let r = store::execute(o, reproduce, true, Some(&mut cb));
        bar.finish_and_clear();
        r
    } else {
        let mut last = 0u64;
        let mut cb = |now: u64, total: u64| {
            for tenth in tenths_passed(&mut last, now, total) {
                eprintln!("  {tenth}0% of virtual time");
            }
        };
        store::execute(o, reproduce, true, Some(&mut cb))
    }
}

/// The tenths of `total` reached since the last call, every one of them
/// (a callback that comes rarely must not skip a line): `last` is the last
/// tenth printed.
pub fn tenths_passed(last: &mut u64, now: u64, total: u64) -> std::ops::RangeInclusive<u64> {
    let reached = now.min(total) * 10 / total.max(1);
    let from = *last + 1;
    *last = (*last).max(reached);
    from..=reached
}

/// Prints where a run went and its verdict; the reproduce command if it failed.
pub fn print_result(run: &StoredRun) {
    if let Some(dir) = &run.dir {
        eprintln!("stored in {}", dir.display());
    }
    let summary = store::summary_text(
        &run.info,
        &run.outcome,
        run.report.as_ref(),
        run.check_error.as_deref(),
    );
    print!("{summary}");
    if run.verdict() != Verdict::Valid {
        eprintln!("reproduce with: {}", run.info.reproduce);
    }
}

pub fn main(args: RunArgs) -> anyhow::Result<ExitCode> {
    let o = resolve(args.options).context("invalid options")?;
    let reproduce = reproduce_for(&o, &user_args("run"), &["--junit"]);
    print_header(&o);
    let run = execute_with_progress(&o, reproduce)?;
    print_result(&run);
    if let Some(path) = &args.junit {
        crate::report::junit::write_for_run(
            path,
            &run.info.test,
            run.report.as_ref(),
            run.check_error.as_deref(),
            &run.info.reproduce,
        )?;
    }
    Ok(ExitCode::from(run.verdict().exit_code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduce_replaces_the_seed_and_drops_explore_flags() {
        let args: Vec<String> = [
            "--nodes",
            "5",
            "--seed",
            "9",
            "--seeds=100",
            "--jobs",
            "2",
            "--bug",
            "no-anti-entropy",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            reproduce_command(&args, 42, &["--seeds", "--jobs"]),
            "ladon run --nodes 5 --bug no-anti-entropy --seed 42"
        );
    }

    #[test]
    fn progress_prints_every_tenth_once_even_when_called_rarely() {
        let mut last = 0;
        let mut printed = Vec::new();
        for now in [50, 250, 260, 700, 1000, 1000] {
            printed.extend(tenths_passed(&mut last, now, 1000));
        }
        assert_eq!(printed, (1..=10).collect::<Vec<u64>>());
    }

    #[test]
    fn simulated_commands_refuse_the_live_adapter_before_running() {
        let o = RunOptions {
            adapter: "process".into(),
            ..RunOptions::default()
        };
        let err = resolve(o).unwrap_err().to_string();
        assert_eq!(err, crate::adapters::LIVE_ONLY);
    }

    #[test]
    fn a_command_built_from_options_parses_back_to_the_same_options() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            o: RunOptions,
        }
        let mut o = RunOptions {
            seed: Some(7),
            nodes: 2,
            max_ops: Some(9),
            time_limit: crate::options::Dur(1_500_000_000),
            rate: 12.5,
            swarm: true,
            test: Some("my test".into()),
            ..RunOptions::default()
        };
        o.net.loss = 0.05;
        o.net.latency = "constant:0ms".parse().unwrap();
        o.adapter_options.bug = Some("no-anti-entropy".into());
        o.adapter_options.causal_delivery = Some(false);
        let cmd = command_from_options(&o, None);
        assert_eq!(
            cmd,
            "ladon run --adapter reference --workload list-append \
             --bug no-anti-entropy --causal-delivery false --latency constant:0ms --loss 0.05 \
             --max-ops 9 --nodes 2 --rate 12.5 --swarm --test 'my test' --time-limit 1500ms --seed 7"
        );
        let words: Vec<String> = cmd
            .split(' ')
            .map(|w| w.trim_matches('\'').to_string())
            .collect();
        // `'my test'` is one shell word: rejoin it for clap.
        let mut args: Vec<String> = Vec::new();
        let mut i = 0;
        while i < words.len() {
            if words[i] == "my" {
                args.push("my test".into());
                i += 2;
            } else {
                args.push(words[i].clone());
                i += 1;
            }
        }
        let back =
            P::parse_from(std::iter::once("ladon".to_string()).chain(args.into_iter().skip(2))).o;
        assert_eq!(back, o);
    }

    #[test]
    fn reproduce_spells_out_default_adapter_and_workload() {
        let o = RunOptions {
            seed: Some(5),
            ..RunOptions::default()
        };
        let args = vec!["--nodes".to_string(), "4".to_string()];
        assert_eq!(
            reproduce_for(&o, &args, &[]),
            format!(
                "ladon run --adapter {} --workload list-append --nodes 4 --seed 5",
                o.adapter
            )
        );
        let args: Vec<String> = ["--adapter=toy", "--workload", "set"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            reproduce_for(&o, &args, &[]),
            "ladon run --adapter=toy --workload set --seed 5"
        );
    }
}
