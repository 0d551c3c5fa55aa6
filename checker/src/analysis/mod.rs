//! The analyses of `anomalies.md`, one module per family.

pub mod convergence;
pub mod finals;
pub mod lin_search;
pub mod linearizable;
pub mod loss_examples;
pub mod policy;
pub mod reads;
pub mod unknown_reads;
pub mod visibility;
