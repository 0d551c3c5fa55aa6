//! Sharding `ladon explore` seeds and `ladon suite` cells over machines
//! (`--shard I/N`), each shard's result file (`shard.json`), and combining
//! the shards again (`ladon merge`).
//!
//! Shard `I` of `N` (1-based, as nextest's and Playwright's `--shard`) takes
//! the seeds (or the suite's cells) at positions `p` with `p % N == I - 1`:
//! deterministic, disjoint, and together exactly the unsharded run's. A
//! suite shards by cell, not by run, so the seeds of one `require = "any"`
//! cell are judged together, as without sharding.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::suite::judge::Judgement;
use crate::suite::matrix::Case;
use crate::suite::runner::RunOutput;

/// One failing seed of an exploration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub seed: u64,
    pub verdict: ladon_checker::report::Verdict,
    pub anomalies: Vec<String>,
    pub reproduce: String,
}

/// The file each shard writes into its output directory.
pub const FILE: &str = "shard.json";

/// The version of [`ShardFile`]'s shape.
pub const FORMAT: u32 = 1;

/// Shard `index` of `count`, `1 ≤ index ≤ count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole run as one shard.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Whether this shard takes the unit at `position` (from 0).
    pub fn takes(&self, position: u64) -> bool {
        position % u64::from(self.count) == u64::from(self.index - 1)
    }

    /// The directory name of this shard under a results root.
    pub fn dir_name(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || {
            format!(
                "{s:?} is not a shard: give I/N with 1 <= I <= N, e.g. 2/4 \
                 (for a Kubernetes indexed Job: $((JOB_COMPLETION_INDEX + 1))/N)"
            )
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// What a shard ran and found: `shard.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardFile {
    /// [`FORMAT`].
    pub format: u32,
    pub shard: Shard,
    /// The test's name (explore) or the suite's name.
    pub name: String,
    /// The subcommand's arguments without the per-shard ones (`--shard`,
    /// `--out`, `--jobs`, `--junit`, `--store`): equal in every shard of one run.
    pub args: Vec<String>,
    #[serde(flatten)]
    pub part: Part,
}

/// The subcommand-specific part of a shard's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Part {
    Explore {
        /// The unsharded run's first seed and number of seeds.
        first: u64,
        seeds: u64,
        /// The seeds this shard ran, ascending.
        ran: Vec<u64>,
        /// Its failing seeds, ascending.
        failures: Vec<Failure>,
    },
    Suite {
        /// How many cases the whole (filtered) suite has.
        total_cases: usize,
        /// This shard's cases with their outputs and judgements, in suite order.
        cases: Vec<Case>,
        outputs: Vec<RunOutput>,
        judgements: Vec<Judgement>,
    },
}

/// Arguments without the flags that differ between the shards of one run.
pub fn shared_args(args: &[String]) -> Vec<String> {
    const PER_SHARD: [&str; 5] = ["--shard", "--out", "--jobs", "--junit", "--store"];
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let flag = a.split('=').next().unwrap_or(a);
        if PER_SHARD.contains(&flag) {
            i += if a.contains('=') { 1 } else { 2 };
            continue;
        }
        out.push(a.clone());
        i += 1;
    }
    out
}

/// Writes `shard.json` (and the shard's JUnit beside it, by the caller) into `dir`.
pub fn write(dir: &Path, file: &ShardFile) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating --out {}", dir.display()))?;
    let path = dir.join(FILE);
    let text = serde_json::to_string_pretty(file).context("serializing shard.json")?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Reads one `shard.json`.
pub fn read(path: &Path) -> anyhow::Result<ShardFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: ShardFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a Ladon shard.json", path.display()))?;
    anyhow::ensure!(
        file.format == FORMAT,
        "{}: shard format {} (this ladon reads {FORMAT})",
        path.display(),
        file.format
    );
    Ok(file)
}

/// Every `shard.json` a path names: the file itself, a shard's directory,
/// or a directory with shard directories below it (4 levels at most), in
/// path order.
pub fn find(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let own = dir.join(FILE);
        if own.is_file() {
            out.push(own);
            return;
        }
        if depth == 0 {
            return;
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut subdirs: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        subdirs.sort();
        for d in subdirs {
            walk(&d, depth - 1, out);
        }
    }
    anyhow::ensure!(
        path.exists(),
        "{}: no such file or directory",
        path.display()
    );
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    walk(path, 4, &mut out);
    anyhow::ensure!(!out.is_empty(), "no {FILE} in or below {}", path.display());
    Ok(out)
}

/// The shards of one run combined; independent of the order they came in.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub name: String,
    pub count: u32,
    pub part: Part,
}

/// Combines the shards of one run. Refuses shards of different runs, a
/// shard given twice, and missing shards, naming the files.
pub fn merge(mut shards: Vec<(PathBuf, ShardFile)>) -> anyhow::Result<Merged> {
    anyhow::ensure!(!shards.is_empty(), "no shards to merge");
    shards.sort_by_key(|(_, f)| f.shard);
    let (first_path, first) = &shards[0];
    let count = first.shard.count;
    for (p, f) in &shards[1..] {
        let differs = if f.name != first.name {
            Some(format!("test {:?} vs {:?}", f.name, first.name))
        } else if f.shard.count != count {
            Some(format!("{} shards vs {count}", f.shard.count))
        } else if f.args != first.args {
            Some(format!(
                "arguments `{}` vs `{}`",
                f.args.join(" "),
                first.args.join(" ")
            ))
        } else if std::mem::discriminant(&f.part) != std::mem::discriminant(&first.part) {
            Some("an explore and a suite".to_string())
        } else {
            None
        };
        if let Some(why) = differs {
            anyhow::bail!(
                "{} and {} are not shards of one run: {why}",
                p.display(),
                first_path.display()
            );
        }
    }
    for w in shards.windows(2) {
        anyhow::ensure!(
            w[0].1.shard != w[1].1.shard,
            "shard {} given twice: {} and {}",
            w[0].1.shard,
            w[0].0.display(),
            w[1].0.display()
        );
    }
    let have: BTreeSet<u32> = shards.iter().map(|(_, f)| f.shard.index).collect();
    let missing: Vec<String> = (1..=count)
        .filter(|i| !have.contains(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "missing shard(s) {} of {}",
        missing.join(", "),
        first.name
    );
    let name = first.name.clone();
    let part = match &first.part {
        Part::Explore { first, seeds, .. } => merge_explore(&shards, *first, *seeds)?,
        Part::Suite { total_cases, .. } => merge_suite(&shards, *total_cases)?,
    };
    Ok(Merged { name, count, part })
}

fn merge_explore(shards: &[(PathBuf, ShardFile)], first: u64, seeds: u64) -> anyhow::Result<Part> {
    let mut ran = Vec::new();
    let mut failures = Vec::new();
    for (p, f) in shards {
        let Part::Explore {
            first: f0,
            seeds: n,
            ran: r,
            failures: fs,
        } = &f.part
        else {
            unreachable!("kinds checked by merge");
        };
        anyhow::ensure!(
            (*f0, *n) == (first, seeds),
            "{}: seeds {f0}.. ({n}) differ from the other shards' {first}.. ({seeds})",
            p.display()
        );
        ran.extend_from_slice(r);
        failures.extend(fs.iter().cloned());
    }
    ran.sort_unstable();
    failures.sort_by_key(|f| f.seed);
    let expected: Vec<u64> = (first..first.saturating_add(seeds)).collect();
    anyhow::ensure!(
        ran == expected,
        "the shards ran {} seeds, not the {seeds} seeds {first}..{} exactly once",
        ran.len(),
        first.saturating_add(seeds)
    );
    Ok(Part::Explore {
        first,
        seeds,
        ran,
        failures,
    })
}

fn merge_suite(shards: &[(PathBuf, ShardFile)], total: usize) -> anyhow::Result<Part> {
    let mut rows: Vec<(Case, RunOutput, Judgement)> = Vec::new();
    for (p, f) in shards {
        let Part::Suite {
            total_cases,
            cases,
            outputs,
            judgements,
        } = &f.part
        else {
            unreachable!("kinds checked by merge");
        };
        anyhow::ensure!(
            *total_cases == total
                && cases.len() == outputs.len()
                && cases.len() == judgements.len(),
            "{}: inconsistent suite shard ({} cases of {total_cases}, {} outputs, {} judgements)",
            p.display(),
            cases.len(),
            outputs.len(),
            judgements.len()
        );
        for ((c, o), j) in cases.iter().zip(outputs).zip(judgements) {
            rows.push((c.clone(), o.clone(), j.clone()));
        }
    }
    rows.sort_by_key(|(c, _, _)| c.id);
    let distinct: BTreeSet<usize> = rows.iter().map(|(c, _, _)| c.id).collect();
    anyhow::ensure!(
        distinct.len() == rows.len() && rows.len() == total,
        "the shards ran {} cases ({} distinct), not the suite's {total} exactly once",
        rows.len(),
        distinct.len()
    );
    let (mut cases, mut outputs, mut judgements) = (Vec::new(), Vec::new(), Vec::new());
    for (c, o, j) in rows {
        cases.push(c);
        outputs.push(o);
        judgements.push(j);
    }
    Ok(Part::Suite {
        total_cases: total,
        cases,
        outputs,
        judgements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_refuse_with_the_form_expected() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "1", "a/b", "1/2/3", ""] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("give I/N with 1 <= I <= N"), "{bad}: {e}");
        }
    }

    #[test]
    fn shards_are_disjoint_and_cover_every_position() {
        for count in 1..=7u32 {
            for pos in 0..100u64 {
                let owners: Vec<u32> = (1..=count)
                    .filter(|&index| Shard { index, count }.takes(pos))
                    .collect();
                assert_eq!(owners, vec![(pos % u64::from(count)) as u32 + 1]);
            }
        }
    }

    #[test]
    fn per_shard_flags_are_left_out_of_the_shared_arguments() {
        let args: Vec<String> = [
            "--seeds",
            "40",
            "--shard",
            "1/4",
            "--out=x",
            "--jobs",
            "2",
            "--junit",
            "j.xml",
            "--adapter",
            "toy",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(shared_args(&args), ["--seeds", "40", "--adapter", "toy"]);
    }

    fn explore_shard(index: u32, count: u32, seeds: u64) -> (PathBuf, ShardFile) {
        let shard = Shard { index, count };
        let ran: Vec<u64> = (1..=seeds).filter(|s| shard.takes(s - 1)).collect();
        let failures = ran
            .iter()
            .filter(|s| *s % 5 == 0)
            .map(|&seed| Failure {
                seed,
                verdict: ladon_checker::report::Verdict::Invalid,
                anomalies: vec!["lost-write:1".into()],
                reproduce: format!("ladon run --seed {seed}"),
            })
            .collect();
        (
            PathBuf::from(format!("s{index}")),
            ShardFile {
                format: FORMAT,
                shard,
                name: "t".into(),
                args: vec!["--seeds".into(), seeds.to_string()],
                part: Part::Explore {
                    first: 1,
                    seeds,
                    ran,
                    failures,
                },
            },
        )
    }

    #[test]
    fn merging_is_order_independent_and_refuses_gaps_and_repeats() {
        let shards: Vec<_> = (1..=4).map(|i| explore_shard(i, 4, 30)).collect();
        let a = merge(shards.clone()).unwrap();
        let mut rev = shards.clone();
        rev.reverse();
        assert_eq!(merge(rev).unwrap(), a);
        let Part::Explore { ran, failures, .. } = &a.part else {
            panic!("explore")
        };
        assert_eq!(ran, &(1..=30).collect::<Vec<_>>());
        assert_eq!(
            failures.iter().map(|f| f.seed).collect::<Vec<_>>(),
            vec![5, 10, 15, 20, 25, 30]
        );
        let e = merge(shards[..3].to_vec()).unwrap_err().to_string();
        assert_eq!(e, "missing shard(s) 4/4 of t");
        let mut twice = shards.clone();
        twice[3] = explore_shard(3, 4, 30);
        let e = merge(twice).unwrap_err().to_string();
        assert_eq!(e, "shard 3/4 given twice: s3 and s3");
        let mut other = shards.clone();
        other[1].1.args = vec!["--seeds".into(), "31".into()];
        let e = merge(other).unwrap_err().to_string();
        assert!(e.contains("are not shards of one run: arguments"), "{e}");
    }
}
