//! raftmha: MHA rebuilt as a Raft-replicated manager cluster.
//!
//! Layout (each folder mirrors a box in DESIGN.md):
//! - [`chaos`]: partitions (iptables + cgroups) and process faults for tests and the chaos suite.
//! - [`cli`]: the command-line surface of the `raftmha` binary.
//! - [`sandbox`]: local MariaDB instances on loopback for tests, the demo and benchmarks.
pub mod chaos;
pub mod cli;
pub mod sandbox;

pub mod proto {
    tonic::include_proto!("raftmha.raft.v1");
}
