//! Synthetic histories.
