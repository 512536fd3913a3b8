//! Fault injection on one machine: network partitions between processes on 127.x.y.z
//! addresses, and process pauses and kills. Used by integration tests and `raftmha-jepsen`.
//!
//! Why cgroups: on Linux every connection to a 127.x.y.z address leaves from 127.0.0.1 unless
//! the program binds its source address, and neither mariadbd (replication) nor mysql_async
//! can. So a rule cannot tell "manager 2 → master" from "replica → master" by source address.
//! Instead each process the harness starts runs in its own cgroup v2 group, and a partition is
//! an iptables `OUTPUT` rule matching the sender's group (`-m cgroup --path`) and the receiver's
//! address (every process listens on its own address). Dropping the packets one way breaks a
//! TCP connection both ways; dropping everything to and from an address isolates that process.
//!
//! All rules live in one chain per [`NetFaults`], removed with its cgroups when it is dropped,
//! so a failed test never leaves the machine partitioned.
mod netfaults;

pub use netfaults::{NetFaults, cgroup2_root, process_in_group};
