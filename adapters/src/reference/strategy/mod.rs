//! Conflict strategies: how writes are stamped and how concurrent writes to
//! one key merge. `Strategy` (the flag) lives in `config`; the logic here.

pub mod avoidance;
pub mod crdt;
pub mod hlc;
pub mod lww;
pub mod quorum;
pub mod version_vector;
