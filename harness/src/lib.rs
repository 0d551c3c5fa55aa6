//! Ladon's harness: running tests and the `ladon` CLI.

pub mod cli;
pub mod clock;
pub mod live;
pub mod net;
