//! Ladon's adapters: the interfaces between the harness and a system under
//! test, and their implementations.

#[cfg(feature = "crdt-libs")]
pub mod crdt_libs;
pub mod db;
pub mod host;
pub mod node;
pub mod process;
pub mod reference;
pub mod toy;
