//! The Maelstrom-protocol process adapter: any program that reads JSON
//! messages on stdin and writes them on stdout can be a Ladon node.
//!
//! This module owns the pieces that touch one child process: the wire
//! codec, line reading, spawning and signals, libfaketime clock control,
//! the `init` handshake, Maelstrom's error codes, and the mapping between
//! Maelstrom's workloads and Ladon's. The live runner in `ladon-harness`
//! wires them to the router, clients and nemesis.

pub mod child;
pub mod clock;
pub mod codec;
pub mod error_code;
pub mod init;
pub mod lines;
pub mod workload;

pub use child::{ChildSpec, NodeProcess};
pub use codec::{Envelope, Message};
pub use error_code::RpcError;
pub use workload::{Outcome, Workload};
