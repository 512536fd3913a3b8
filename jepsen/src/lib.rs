//! raftmha-jepsen: a Jepsen-shaped chaos harness for raftmha, in Rust.
//!
//! - [`scenario`]: the named scenarios and their faults.
//! - [`run`]: one run: databases (and, as they land, agents and managers) on loopback, the
//!   workload, the nemesis, healing, final reads, the verdict, the run folder.
//! - [`workload`]: clients writing unique ids and recording every outcome.
//! - [`observe`]: observation rounds over the databases and the final reads.
//! - [`recorder`] and [`history`]: the JSONL history on one monotonic clock.
//! - [`bench`]: benchmarks on real processes (`bench election`: Raft re-election, admin API
//!   throughput).
//! - [`journal`]: failover phases (started, fenced, promoted, completed) from the engine's
//!   journal in the replicated state.
//! - [`nemesis`] and [`nemesis_runs`]: the faults; the latter aimed at a failover or
//!   switchover in flight, timed on its journal.
//! - [`checker`]: decides valid / invalid / unknown from a history.
pub mod bench;
pub mod checker;
pub mod history;
pub mod journal;
pub mod managers;
pub mod nemesis;
pub mod nemesis_runs;
pub mod observe;
pub mod recorder;
pub mod run;
pub mod scenario;
pub mod sim;
pub mod system;
pub mod workload;
