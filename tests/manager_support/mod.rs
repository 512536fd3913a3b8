//! The integration tests' harness: [`LocalManagers`] on this test build's binary, with
//! data under /tmp/rmha-raft/<test>/.
#![allow(dead_code, unused_imports)]

use std::path::Path;

pub use raftmha::manager::local::{LocalManagers as Harness, stderr, stdout, wait_for};

pub const BIN: &str = env!("CARGO_BIN_EXE_raftmha");

pub fn harness(name: &str, subnet: u8, voters: u64) -> Harness {
    // Local override so concurrent runs on one machine do not share dirs or addresses.
    let root = std::env::var("RMHA_TEST_ROOT").unwrap_or_else(|_| "/tmp/rmha-raft".into());
    let offset: u8 = std::env::var("RMHA_TEST_SUBNET_OFFSET")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let subnet = subnet.checked_add(offset).expect("subnet offset too large");
    Harness::new(Path::new(BIN), &Path::new(&root).join(name), subnet, voters)
}
