//! raftmha: MHA rebuilt as a Raft-replicated manager cluster.
//!
//! Layout (each folder mirrors a box in DESIGN.md):
//! - [`cli`]: the command-line surface of the `raftmha` binary.
//! - [`sandbox`]: local MariaDB instances on loopback for tests, the demo and benchmarks.
//! - [`db`]: the MariaDB/MySQL dialect layer, GTID sets, typed status and the `DbServer` trait.
pub mod cli;
pub mod db;
pub mod sandbox;

pub mod proto {
    tonic::include_proto!("raftmha.raft.v1");
}
