//! E1 and E7: SIGKILL of the master under a running writer, with three real managers
//! deciding by quorum and the journaled engine failing over through real agents. A new
//! master takes writes, every acknowledged write is on it and on the other replica, and the
//! replica replicates from the new master. File/position mode and GTID mode.
//! IP ranges 127.0.130.0/24 and 127.0.131.0/24, directories under /tmp/rmha-engine/.
mod failover_support;

use std::sync::Arc;

use failover_support::*;
use raftmha::manager::testbed::{Testbed, TestbedOptions};

async fn kill_master_under_writes(name: &str, subnet: u8, gtid: bool) {
    let opts = TestbedOptions {
        gtid,
        ..TestbedOptions::default()
    };
    let tb = Arc::new(testbed(name, subnet, &opts).await);
    sql(&tb, 1, "CREATE DATABASE test").await;
    sql(&tb, 1, "CREATE TABLE test.w (id BIGINT PRIMARY KEY)").await;
    let writer = Writer::start(tb.clone(), "test.w");
    wait_writes(&writer, 50).await;

    tb.sandbox.kill_node(1).await.expect("SIGKILL the master");
    let master = wait_failover(&tb).await;
    wait_writes(&writer, 50).await;
    let acked = writer.stop().await;

    let new_master = Testbed::index_of(&master).expect("nodeK");
    let other = if new_master == 2 { 3 } else { 2 };
    assert_all_acked_on(&tb, new_master, &[other], &acked).await;
    assert!(
        replicates_from(&tb, other, new_master).await,
        "node{other} replicates from the new master node{new_master}"
    );
    let c = tb.cluster().await.expect("state");
    assert_eq!(c.epoch, 1, "one promotion, one epoch step");
    if let Ok(tb) = Arc::try_unwrap(tb) {
        tb.down().await.expect("down");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e1_kill_9_of_the_master_file_position() {
    kill_master_under_writes("e1_filepos", 130, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e7_kill_9_of_the_master_gtid() {
    kill_master_under_writes("e7_gtid", 131, true).await;
}
