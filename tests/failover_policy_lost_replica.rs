//! A replica that is dead when the master dies (MHA issue #85): by default it does not block
//! the failover and the Failover Report names it lost; with `settings.strict_replicas` (MHA's
//! own rule) the failover refuses unless that replica's server is `ignore_fail`.
//! IP ranges 127.0.221.0/24 – 127.0.223.0/24, directories under /tmp/rmha-bench/.
mod failover_support;

use std::path::Path;
use std::time::Duration;

use failover_support::*;
use raftmha::failover::{FailoverReport, Outcome};
use raftmha::manager::testbed::{Testbed, TestbedOptions};
use raftmha::state::FailoverOutcome;

async fn bench_testbed(name: &str, subnet: u8, opts: &TestbedOptions) -> Testbed {
    let dir = Path::new("/tmp/rmha-bench").join(name);
    Testbed::up(Path::new(BIN), &dir, subnet, opts)
        .await
        .expect("testbed up")
}

/// node3 (a replica) dies, then node1 (the master); returns the finished failover's record.
async fn kill_replica_then_master(tb: &Testbed) -> raftmha::state::FailoverRecord {
    create_w_table(tb).await;
    tb.sandbox.kill_node(3).await.expect("kill node3");
    sql(tb, 1, "INSERT INTO test.w VALUES (4)").await;
    tb.sandbox.kill_node(1).await.expect("kill node1");
    wait_finished(tb).await.1
}

fn succeeded_with_node3_lost(f: &raftmha::state::FailoverRecord) {
    assert_eq!(
        f.finished.as_ref().map(|(o, _)| o.clone()),
        Some(FailoverOutcome::Succeeded),
        "journal: {:#?}",
        f.steps
    );
    let report: FailoverReport =
        serde_json::from_str(f.report.as_deref().expect("a report")).expect("report JSON");
    assert_eq!(
        report.new_master.as_ref().map(|s| s.name.as_str()),
        Some("node2")
    );
    assert_eq!(
        report.outcome,
        Outcome::Partial,
        "a lost replica: MHA's exit 10"
    );
    let lost: Vec<&str> = report.lost.iter().map(|l| l.server.name.as_str()).collect();
    assert_eq!(lost, vec!["node3"], "{report:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_replica_does_not_block_the_failover_and_is_reported_lost() {
    let tb = bench_testbed("policy_lost", 221, &TestbedOptions::default()).await;
    let f = kill_replica_then_master(&tb).await;
    succeeded_with_node3_lost(&f);
    let c = tb.cluster().await.expect("state");
    assert_eq!(c.master.as_deref(), Some("node2"));
    let have = ids(&tb, 2).await;
    assert!(
        have.contains(&4),
        "the last write before the kill: {have:?}"
    );
    sql(&tb, 2, "INSERT INTO test.w VALUES (5)").await;
    tb.down().await.expect("down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strict_mode_refuses_a_failover_with_a_dead_replica() {
    let opts = TestbedOptions {
        settings: "strict_replicas = true".into(),
        ..TestbedOptions::default()
    };
    let tb = bench_testbed("policy_strict", 222, &opts).await;
    let f = kill_replica_then_master(&tb).await;
    assert_eq!(
        f.finished.as_ref().map(|(o, _)| o.clone()),
        Some(FailoverOutcome::Failed)
    );
    let why = f.report.clone().unwrap_or_default();
    assert!(
        why.contains("node3") && why.contains("ignore_fail"),
        "the refusal names the replica and the way out: {why}"
    );
    // Refused for good (MHA's anti-flapping guard holds until an ack): nobody is promoted.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c = tb.cluster().await.expect("state");
    assert_eq!(c.failovers.len(), 1, "no retry without an ack");
    assert_eq!(c.master.as_deref(), Some("node1"));
    assert_eq!(
        c.epoch, f.epoch,
        "no promotion: the epoch the failover started in"
    );
    let mut conn = tb.sandbox.conn(2).await.expect("connect node2");
    let read_only: Option<u8> =
        mysql_async::prelude::Queryable::query_first(&mut conn, "SELECT @@global.read_only")
            .await
            .expect("read_only");
    assert_eq!(read_only, Some(1), "node2 was not made writable");
    drop(conn);
    tb.down().await.expect("down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strict_mode_fails_over_when_the_dead_replica_is_ignore_fail() {
    let opts = TestbedOptions {
        settings: "strict_replicas = true".into(),
        server_extra: [String::new(), String::new(), "ignore_fail = true".into()],
        ..TestbedOptions::default()
    };
    let tb = bench_testbed("policy_ignore_fail", 223, &opts).await;
    let f = kill_replica_then_master(&tb).await;
    succeeded_with_node3_lost(&f);
    let c = tb.cluster().await.expect("state");
    assert_eq!(c.master.as_deref(), Some("node2"));
    tb.down().await.expect("down");
}
