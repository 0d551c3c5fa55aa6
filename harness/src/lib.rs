//! Ladon's harness: running tests and the `ladon` CLI.

// The CLI's doc comments are also its `--help` text, where placeholders
// such as `results/<test>/<time>-seed<seed>/` are written the usual way.
#![allow(rustdoc::invalid_html_tags)]

pub mod adapters;
pub mod cli;
pub mod clock;
pub mod db_run;
pub mod dur;
pub mod events;
pub mod execution;
pub mod faults;
pub mod final_phase;
pub mod hosts;
pub mod interrupt;
pub mod listeners;
pub mod live;
pub mod nemesis;
pub mod net;
pub mod options;
pub mod pool;
pub mod record;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod shard;
pub mod shrink;
pub mod sim;
pub mod store;
pub mod suite;
