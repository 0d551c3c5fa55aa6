//! Ladon's harness: running tests and the `ladon` CLI.

pub mod cli;
pub mod report;
pub mod suite;
