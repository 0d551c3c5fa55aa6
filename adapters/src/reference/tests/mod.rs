//! Unit tests driving reference nodes by hand through the `Node` trait.

mod driver;
mod failures;
mod random;
mod replication;
mod strategies;
