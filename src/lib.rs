//! raftmha: MHA rebuilt as a Raft-replicated manager cluster.
//!
//! Layout (each folder mirrors a box in DESIGN.md):
//! - [`chaos`]: partitions (iptables + cgroups) and process faults for tests and the chaos suite.
//! - [`cli`]: the command-line surface of the `raftmha` binary.
//! - [`raft`]: openraft wiring (sled store, tonic network, the node); [`state`]: the
//!   replicated state machine's model and pure apply logic; [`api`]: the admin gRPC API
//!   and its client; [`manager`]: the `raftmha manager` daemon and its config.
//! - [`sandbox`]: local MariaDB instances on loopback for tests, the demo and benchmarks.
//! - [`db`]: the MariaDB/MySQL dialect layer, GTID sets, typed status and the `DbServer` trait.
//! - [`detect`]: dead-master detection: per-manager monitor, quorum rule, monitor loop.
//! - [`failover`]: the failover planner (MHA phases 2–5 as typed steps) and its report.
//! - [`view`]: the managers' read-only web view (topology, verdicts, Raft, failover
//!   timelines) on the `[http]` listener.
//! - [`mha`]: MHA configuration import (`raftmha import-mha`); [`check`]: `raftmha check-repl`'s checks.
pub mod api;
pub mod chaos;
pub mod check;
pub mod cli;
pub mod db;
pub mod detect;
pub mod failover;
pub mod manager;
pub mod mha;
pub mod raft;
pub mod sandbox;
pub mod state;
pub mod view;

#[cfg(test)]
mod layout_tests;

pub mod proto {
    tonic::include_proto!("raftmha.raft.v1");
}

pub mod admin_proto {
    tonic::include_proto!("raftmha.admin.v1");
}
