//! `ladon merge DIR… [--junit FILE]`: the shards of one `explore --shard`
//! or `suite --shard` run combined into one summary, one JUnit file and one
//! exit code, whatever order the shards come in.

use std::path::PathBuf;

use crate::shard::{self, Part};
use crate::suite::judge;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Shard directories (each holding a shard.json), shard.json files, or
    /// directories with shard directories below them.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Write the merged JUnit XML here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// Exit code: as the unsharded command's (0 all valid / every expectation
/// held, 1 invalid / an expectation failed, 2 unknown, error or a shard
/// missing).
pub fn main(args: Args) -> anyhow::Result<u8> {
    let mut files = Vec::new();
    for d in &args.dirs {
        for path in shard::find(d)? {
            let file = shard::read(&path)?;
            files.push((path, file));
        }
    }
    let given = files.len();
    let merged = shard::merge(files)?;
    eprintln!(
        "ladon merge: {given} shard(s) of {} ({} in all)",
        merged.name, merged.count
    );
    match &merged.part {
        Part::Explore {
            seeds, failures, ..
        } => {
            if let Some(path) = &args.junit {
                crate::cli::explore::write_junit(path, &merged.name, *seeds, failures)?;
            }
            print!("{}", crate::cli::explore::result_text(failures, *seeds));
            Ok(crate::cli::explore::exit_code(failures))
        }
        Part::Suite {
            cases,
            outputs,
            judgements,
            ..
        } => {
            if let Some(path) = &args.junit {
                let groups = judge::junit_cases(cases, outputs, judgements);
                crate::report::junit::write(
                    path,
                    &format!("ladon suite {}", merged.name),
                    &groups,
                )?;
            }
            print!("{}", judge::table(&merged.name, cases, outputs, judgements));
            Ok(judge::exit_code(judgements))
        }
    }
}
