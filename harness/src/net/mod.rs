//! The network fault model, sans-IO: it decides the fate of each message and
//! never touches a socket, a clock or an event queue, so the deterministic
//! simulator (virtual time) and the live process adapter's router (real time)
//! share it.
//!
//! # Protocol
//!
//! Time is any monotonic nanosecond count the driver chooses (virtual time in
//! the simulator, time since the test started in the live router). Node
//! indices are `0..n`.
//!
//! ```
//! use ladon_harness::net::{Arrival, Cut, Delivery, Latency, NetConfig, Network, PartitionMode, Shape};
//! use rand::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
//! let config = NetConfig { latency: Latency::Constant(1_000_000), partition_mode: PartitionMode::Hold, ..NetConfig::default() };
//! let mut net: Network<&str> = Network::new(3, config);
//! let mut wire: Vec<Delivery<&str>> = Vec::new();
//!
//! // 1. A node sends: the network pushes 0 (lost), 1 or 2 (duplicated)
//! //    copies, each with the time it reaches its destination.
//! net.send(0, 0, 1, "hello", &mut rng, &mut wire);
//!
//! // 2. The driver waits until `at_ns` (an event queue, or a tokio sleep),
//! //    then asks what happens on arrival: partitions and clogs are judged
//! //    at arrival time, so messages in flight when a partition starts are
//! //    caught by it.
//! net.partition(500_000, Cut::of_shape(&Shape::One, 3, net.busiest(), &mut rng), &mut rng, &mut wire);
//! let copy = wire.remove(0);
//! match net.arrive(copy.at_ns, copy) {
//!     Arrival::Deliver(msg) => { /* hand msg to node `to` */ }
//!     Arrival::Dropped(msg) => { /* record a drop */ }
//!     Arrival::Held => { /* the network keeps it */ }
//! }
//!
//! // 3. Healing (or unclogging) pushes held copies back onto the wire with
//! //    fresh latencies, in random order; they go through step 2 again.
//! net.heal(2_000_000, &mut rng, &mut wire);
//! ```
//!
//! Faults: [`Network::partition`] with a [`Cut`] built from a [`Shape`]
//! (`one`, `halves`, `majorities-ring`, `bridge`, `ring-cut`, `hub`,
//! `one-way`, explicit groups), [`Network::heal`], [`Network::clog`] /
//! [`Network::unclog`] (FoundationDB's swizzle-clog is a sequence of these,
//! driven by the nemesis), [`Network::set_fault_loss`],
//! [`Network::set_fault_duplicate`], and [`Network::heal_all`].

pub mod latency;
pub mod network;
pub mod partition;

pub use latency::{format_duration_ns, parse_duration_ns, Latency};
pub use network::{Arrival, Delivery, NetConfig, Network, PartitionMode, SendFate};
pub use partition::{Cut, Shape};
