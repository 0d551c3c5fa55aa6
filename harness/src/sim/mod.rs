//! The deterministic simulator: virtual nanosecond time, one event queue
//! with a sequence tiebreak, one seed. [`World`] runs the nodes of any
//! [`ladon_adapters::node::Cluster`] over the faulty [`crate::net`] network
//! with [`crate::clock`] clocks; a driver (the test runner, or a unit test)
//! schedules its own events and receives replies through [`World::step`].

pub mod queue;
pub mod world;

pub use world::{
    rng_stream, MsgEvent, MsgStats, NoObserver, NodeStatus, Observer, Output, World, WorldConfig,
};
