//! Test your own multi-leader replication code under Ladon's deterministic
//! simulator and checker, from `cargo test`, without forking Ladon.
//!
//! ```
//! use std::time::Duration;
//! use ladon::{Fault, Guarantee, Test, Workload};
//! # use ladon::toy::ToyCluster as MyStore;
//!
//! // `MyStore` is your [`Cluster`](node::Cluster): it builds your nodes,
//! // sans-IO state machines implementing [`Node`](node::Node). (Here it is
//! // Ladon's own small store, `ladon::toy::ToyCluster`.)
//! let outcome = Test::new(|nodes| MyStore::new(nodes, None))
//!     .nodes(3)
//!     .workload(Workload::ListAppend)
//!     .nemesis([Fault::Partition, Fault::Clock])
//!     .guarantees([Guarantee::Convergence, Guarantee::NoLostWrites])
//!     .time_limit(Duration::from_secs(2))
//!     .nemesis_interval(Duration::from_millis(500))
//!     .seeds(0..8)
//!     .run();
//! // Panics with the first failing seed, its anomalies in plain English,
//! // the command that reproduces it and where its report.html is.
//! outcome.assert_valid();
//! ```
//!
//! Each seed is one simulated test: clients run the workload against your
//! nodes while the nemesis partitions the network, skews clocks, crashes
//! nodes (whatever [`Fault`]s you pick); then the faults heal and final
//! reads check that the nodes agree. Every random choice comes from the
//! seed, so a seed is a complete reproduction. Seeds run on every core.
//!
//! - [`Test`]: the builder; [`Outcome`] and [`Failure`]: what it found.
//! - [`cli::main_with`]: the whole `ladon` command line (`run`, `explore`,
//!   `replay`, `shrink`, `suite`) for your adapter, in a binary of yours;
//!   the same seed gives the same history there as in `cargo test`.
//! - [`Failure::snapshot`]: pin a found bug as an insta snapshot.
//! - [`node`]: the sans-IO interface your nodes implement.
//!
//! The walk-through is `docs/write-a-rust-adapter.md` in Ladon's
//! repository; `examples/my-store/` there is a complete user crate.

#![deny(missing_docs)]

mod adapter;
pub mod cli;
mod outcome;
mod test;

pub use adapter::Adapter;
pub use outcome::{Failure, Outcome, SeedResult};
pub use test::Test;

/// The sans-IO interface between the simulator and your nodes: implement
/// [`Node`](node::Node) for a replica and [`Cluster`](node::Cluster) for
/// the set of them.
pub mod node {
    pub use ladon_adapters::node::{
        ClientError, Cluster, Command, Ctx, Node, NodeId, NodeSpec, ReplyOk, ReqId, Request, Role,
        TimerId,
    };
    /// A JSON value: a reply's causal context and metadata.
    pub use serde_json::Value as Json;
}

/// The operations clients send ([`Mop`](history::Mop): micro-operations of
/// a transaction) and the values reads return.
pub mod history {
    pub use ladon_checker::history::{Key, Mop, ReadValue};
}

/// Ladon's own small multi-leader store (`--adapter toy`), handy for trying
/// the builder before your own store is ready.
pub mod toy {
    pub use ladon_adapters::toy::{ToyBug, ToyCluster};
}

/// A workload: what the clients do (`--workload`).
pub use ladon_workloads::WorkloadKind as Workload;

/// A fault package of the nemesis (`--nemesis`).
pub use ladon_harness::nemesis::FaultKind as Fault;

/// A guarantee the checker checks (`--guarantees`).
pub use ladon_checker::report::Guarantee;

/// The checker's report of one history, its verdict and its anomalies.
pub use ladon_checker::report::{Anomaly, Report, Verdict};

/// Every option of a run (`ladon run`'s flags, `run.json`'s `options`): the
/// run spec [`Test::options`] gives full access to.
pub use ladon_harness::options::RunOptions;

/// A duration as the options hold it (nanoseconds).
pub use ladon_harness::options::Dur;

/// Errors of this crate (setting up a test or the command line).
pub type Error = anyhow::Error;
