//! The integration tests' harness: [`LocalManagers`] on this test build's binary, with
//! data under /tmp/rmha-raft/<test>/.
#![allow(dead_code, unused_imports)]

use std::path::Path;

pub use raftmha::manager::local::{LocalManagers as Harness, stderr, stdout, wait_for};

pub const BIN: &str = env!("CARGO_BIN_EXE_raftmha");

pub fn harness(name: &str, subnet: u8, voters: u64) -> Harness {
    Harness::new(
        Path::new(BIN),
        &Path::new("/tmp/rmha-raft").join(name),
        subnet,
        voters,
    )
}
