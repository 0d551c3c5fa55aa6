//! The flags of `ladon run` that only `--adapter process` reads (the run
//! itself: [`crate::live::process_run`]).

use std::path::PathBuf;

use crate::options::{heading, Dur};

/// `ladon run`'s flags of the `process` adapter, shown under their own
/// heading in `ladon run --help` and refused with any other adapter.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct ProcessFlags {
    /// The node program; one process per node (required).
    #[arg(long, value_name = "PATH", help_heading = heading::PROCESS)]
    pub bin: Option<PathBuf>,
    /// An argument for the node program (repeatable).
    #[arg(long = "bin-arg", value_name = "ARG", allow_hyphen_values = true, help_heading = heading::PROCESS)]
    pub bin_args: Vec<String>,
    /// libfaketime's `libfaketime.so.1` for the clock nemesis (default: searched for).
    #[arg(long, value_name = "PATH", help_heading = heading::PROCESS)]
    pub faketime_library: Option<PathBuf>,
    /// How long a (re)started node may take to answer `init`.
    #[arg(long, default_value = "10s", help_heading = heading::PROCESS)]
    pub init_timeout: Dur,
}
