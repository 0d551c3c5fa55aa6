//! Seeded operation generators for Ladon's workloads.
