//! `ladon suite FILE.toml`: a matrix of runs with expectations, run in
//! parallel, summarised in one table, JUnit and an exit code for CI.

pub mod judge;
pub mod matrix;
pub mod runner;
pub mod spec;
