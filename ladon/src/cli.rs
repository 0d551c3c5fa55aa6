//! The whole `ladon` command line for your own adapters, in a binary of
//! yours.
//!
//! ```no_run
//! # use ladon::toy::ToyCluster as MyStore;
//! // src/main.rs (or src/bin/my-store.rs) of your crate:
//! fn main() -> std::process::ExitCode {
//!     ladon::cli::main_with([("my-store", ladon::Adapter::new(|n| MyStore::new(n, None)))])
//! }
//! ```
//!
//! Then `cargo run -- run --seed 7`, `cargo run -- explore --seeds 200`,
//! `cargo run -- replay results/latest`, `cargo run -- shrink
//! results/latest`, `cargo run -- suite FILE.toml` and `cargo run --
//! adapters` work on `--adapter my-store` (the default adapter of such a
//! binary is the first one given), next to Ladon's own adapters.

use std::process::ExitCode;

use crate::Adapter;

/// Runs Ladon's command line with `adapters` registered under their names
/// (lowercase letters, digits and `-`; not one of Ladon's own adapter
/// names). Reproduce commands it prints start with this program's name.
/// Exit codes as `ladon`'s: 0 valid, 1 invalid, 2 unknown or error.
pub fn main_with<N: Into<String>>(adapters: impl IntoIterator<Item = (N, Adapter)>) -> ExitCode {
    ladon_harness::cli::main_with(
        adapters
            .into_iter()
            .map(|(name, a)| (name.into(), a.about, a.inner))
            .collect(),
    )
}
