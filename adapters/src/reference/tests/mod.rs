//! Unit tests driving reference nodes by hand through the `Node` trait.

mod driver;
mod failures;
mod replication;
mod strategies;
