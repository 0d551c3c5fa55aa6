//! The analyses of `anomalies.md`, one module per family.

pub mod finals;
pub mod reads;
pub mod visibility;
