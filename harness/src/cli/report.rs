//! `ladon report RUN_DIR`: renders `RUN_DIR/report.html` from the run's
//! `history.jsonl` and `report.json` (with `messages.jsonl` and `run.json`
//! where present).

use std::path::PathBuf;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A run directory holding history.jsonl and report.json.
    pub run_dir: PathBuf,
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let (path, notice) = crate::report::html::write_report_noting(&args.run_dir)
        .with_context(|| format!("failed to render the report of {}", args.run_dir.display()))?;
    if let Some(notice) = notice {
        eprintln!("warning: {notice}");
    }
    println!("{}", path.display());
    Ok(0)
}
