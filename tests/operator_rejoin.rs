//! `raftmha rejoin` after a switchover without --orig-master-is-new-slave (the old master is
//! read_only and detached; it comes back clean), and after a manual failover where the old
//! master took a write while out of the cluster (refused with the errant events listed, then
//! accepted with --force), and after automatic failovers of a SIGKILLed master (file/position
//! and GTID). IP ranges 127.0.201.0/24, 127.0.202.0/24, 127.0.207.0/24 and 127.0.208.0/24.
mod failover_support;
mod operator_switch_support;

use std::time::Duration;

use failover_support::{assert_all_acked_on, replicates_from, sql};
use operator_switch_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn switch_without_the_flag_then_a_clean_rejoin() {
    let (tb, writer) = testbed_with_writer("rejoin_clean", 201, true).await;
    let o = cli(
        &tb,
        &[
            "switch",
            "--cluster",
            "app1",
            "--new-master",
            "node3",
            "--yes",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("switchover done"), "{}", text(&o));
    writer.wait(50).await;
    let acked = writer.stop().await;
    assert_all_acked_on(&tb, 3, &[2], &acked).await;
    assert!(read_only(&tb, 1).await, "the old master is read_only");
    assert!(
        !is_replica(&tb, 1).await,
        "without the flag it replicates from nobody"
    );
    assert!(replicates_from(&tb, 2, 3).await);

    expect_exit(&tb, 0, &["rejoin", "--cluster", "app1", "--host", "node1"]).await;
    assert_all_acked_on(&tb, 3, &[1, 2], &acked).await;
    assert!(
        replicates_from(&tb, 1, 3).await,
        "node1 replicates from node3"
    );
    assert!(read_only(&tb, 1).await);
    sql(&tb, 3, "INSERT INTO test.w (id) VALUES (100000000)").await;
    let mut same = false;
    for _ in 0..200 {
        if checksum_w(&tb, 1).await == checksum_w(&tb, 3).await {
            same = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(same, "node1's checksum equals the master's");
    down(tb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn manual_failover_to_a_chosen_replica_then_an_errant_old_master_is_refused() {
    let (tb, writer) = testbed_with_writer("rejoin_errant", 202, false).await;
    // Automatic failover off: the operator decides.
    expect_exit(&tb, 0, &["pause", "--cluster", "app1"]).await;
    tb.sandbox.kill_node(1).await.expect("SIGKILL the master");
    let o = cli(
        &tb,
        &[
            "failover",
            "--cluster",
            "app1",
            "--dead-master",
            "node1",
            "--new-master",
            "node3",
            "--yes",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    writer.wait(50).await;
    let acked = writer.stop().await;
    assert_all_acked_on(&tb, 3, &[2], &acked).await;
    let c = tb.cluster().await.expect("state");
    assert_eq!(c.master.as_deref(), Some("node3"), "the forced new master");

    // The old master comes back and takes a write nobody else has.
    tb.sandbox.start_node(1).await.expect("restart node1");
    sql(&tb, 1, "INSERT INTO test.w (id) VALUES (900000001)").await;
    let o = expect_exit(&tb, 3, &["rejoin", "--cluster", "app1", "--host", "node1"]).await;
    assert!(text(&o).contains("errant"), "{}", text(&o));
    assert_eq!(
        text(&o).matches("BEGIN GTID").count(),
        1,
        "exactly the planted transaction: {}",
        text(&o)
    );
    assert!(
        text(&o).contains("Write_rows") || text(&o).contains("Query"),
        "{}",
        text(&o)
    );
    assert!(!is_replica(&tb, 1).await, "refused: nothing changed");

    let o = cli(
        &tb,
        &["rejoin", "--cluster", "app1", "--host", "node1", "--force"],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        replicates_from(&tb, 1, 3).await,
        "forced: node1 replicates from node3"
    );
    assert!(read_only(&tb, 1).await);
    down(tb).await;
}

/// Automatic failover of a SIGKILLed master under writes (its binlog tail saved through its
/// agent), then the restarted old master rejoins without errant transactions: the divergence
/// point from the journal is exact, and it converges with the new master.
async fn failed_over_master_rejoins_clean(name: &str, subnet: u8, gtid: bool) {
    let (tb, writer) = testbed_with_writer(name, subnet, gtid).await;
    tb.sandbox.kill_node(1).await.expect("SIGKILL the master");
    let c = tb
        .wait_for("the failover", std::time::Duration::from_secs(60), |c| {
            c.failovers.back().is_some_and(|f| f.finished.is_some())
        })
        .await
        .expect("failover");
    let master = c.master.clone().expect("a master");
    let m = raftmha::manager::testbed::Testbed::index_of(&master).expect("nodeK");
    writer.wait(50).await;
    let acked = writer.stop().await;
    tb.sandbox.start_node(1).await.expect("restart node1");
    let o = expect_exit(
        &tb,
        0,
        &["rejoin", "--cluster", "app1", "--host", "node1", "--json"],
    )
    .await;
    let v = json(&o);
    assert_eq!(
        v["report"]["errant"].as_array().map(Vec::len),
        Some(0),
        "{v}"
    );
    assert!(
        replicates_from(&tb, 1, m).await,
        "node1 replicates from {master}"
    );
    assert!(read_only(&tb, 1).await);
    let others: Vec<usize> = (1..=3).filter(|n| *n != m).collect();
    assert_all_acked_on(&tb, m, &others, &acked).await;
    down(tb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_over_master_rejoins_clean_file_position() {
    failed_over_master_rejoins_clean("rejoin_after_failover", 207, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_over_master_rejoins_clean_gtid() {
    failed_over_master_rejoins_clean("rejoin_after_failover_gtid", 208, true).await;
}
