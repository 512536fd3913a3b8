//! raftmha-jepsen: a Jepsen-shaped chaos harness for raftmha, in Rust.
//!
//! - [`history`]: the JSONL history every run records (client ops, observations, faults).
//! - [`checker`]: decides valid / invalid / unknown from a history.
pub mod checker;
pub mod history;
