//! raftmha-jepsen: a Jepsen-shaped chaos harness for raftmha, in Rust.
//!
//! - [`history`]: the JSONL history every run records (client ops, observations, faults).
//! - [`bench`]: benchmarks on real processes (`bench election`: Raft re-election, admin API
//!   throughput).
//! - [`checker`]: decides valid / invalid / unknown from a history.
pub mod bench;
pub mod checker;
pub mod history;
