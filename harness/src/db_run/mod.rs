//! Live runs against real multi-leader databases
//! (`ladon run --adapter postgres-pglogical` or `mariadb`): the database
//! execution.
//!
//! The execution (`execution::DatabaseExecution`, cargo feature
//! `postgres` or `mariadb`) is generic over `ladon_adapters::db::Database`: it sets the
//! cluster up with a proxy (`ladon_adapters::db::proxy::LinkProxy`) on
//! every directed replication link, drives one SQL client per logical
//! client (the live runner's generator and recorder), plays the simulator's
//! fault schedule on the real servers (`faults`), heals, polls every node
//! until they agree (`final_reads`) and tears the cluster down on every
//! exit path. A MariaDB or CouchDB adapter implements `Database` (and its
//! client) and reuses all of it.
//!
//! This module resolves `ladon run`'s flags into a [`DbSpec`]; without the
//! cargo feature it refuses with the command that builds it.

#[cfg(any(feature = "postgres", feature = "mariadb", feature = "couchdb"))]
pub mod execution;
#[cfg(any(feature = "postgres", feature = "mariadb", feature = "couchdb"))]
pub mod faults;
#[cfg(any(feature = "postgres", feature = "mariadb", feature = "couchdb"))]
pub mod final_reads;

mod spec;

use std::collections::BTreeSet;
use std::process::ExitCode;

use crate::options::RunArgs;
pub use spec::{
    built_with, default_guarantees, feature_of, needs_feature, reproduce, resolve, sql_workload,
    DbSpec, DB_DEFAULTS,
};

/// `ladon run --adapter postgres-pglogical` or `mariadb`.
pub fn main(args: RunArgs, given: &BTreeSet<String>) -> anyhow::Result<ExitCode> {
    let spec = resolve(&args, given).map_err(|e| e.context("invalid options"))?;
    if !built_with(spec.adapter) {
        anyhow::bail!(
            "--adapter {}: {}",
            spec.adapter,
            needs_feature(spec.adapter)
        );
    }
    run(spec)
}

#[cfg(not(any(feature = "postgres", feature = "mariadb", feature = "couchdb")))]
fn run(spec: DbSpec) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "--adapter {}: {}",
        spec.adapter,
        needs_feature(spec.adapter)
    )
}

#[cfg(any(feature = "postgres", feature = "mariadb", feature = "couchdb"))]
fn run(spec: DbSpec) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    let (db, network, hosts) = execution::build(&spec)?;
    let info = crate::store::RunInfo {
        test: spec.test.clone(),
        seed: spec.seed,
        mode: crate::adapters::Mode::Live.as_str().to_string(),
        options: spec.options.clone(),
        reproduce: spec.reproduce.clone(),
        ladon_version: env!("CARGO_PKG_VERSION").to_string(),
        git_revision: crate::store::git_revision(),
        guarantees: spec.guarantees.clone(),
        started_at: crate::store::utc_stamp(),
        outcome: None,
        process: None,
        db: Some(spec.flags.clone()),
    };
    eprintln!(
        "ladon: live run of {} ({} nodes, {} topology, workload {}, seed {}) into {}",
        spec.adapter,
        spec.nodes,
        spec.topology.as_str(),
        spec.workload_name,
        spec.seed,
        spec.store.join(&spec.test).display()
    );
    eprintln!("  {}", execution::network_line(&spec));
    crate::interrupt::install().context("installing the SIGINT/SIGTERM handlers")?;
    let (store, junit) = (spec.store.clone(), spec.junit.clone());
    let total = spec.time_limit.ns();
    let mut exec = execution::DatabaseExecution::new(spec, db, network, hosts);
    let mut progress = crate::events::Listeners::new();
    progress.push(crate::listeners::Progress::new(total, "wall-clock"));
    let run = crate::store::run_stored(info, &mut exec, &store, progress)?;
    crate::store::report_result(&run, junit.as_deref())
}
