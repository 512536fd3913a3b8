//! `raftmha switch` on three real MariaDB servers, three agents and three manager processes,
//! with a writer following the recorded master: no acknowledged write is lost, the old master
//! ends read_only and (with --orig-master-is-new-slave) replicates from the new one.
//! IP range 127.0.200.0/24, directories under /tmp/rmha-switch/.
mod failover_support;
mod operator_switch_support;

use failover_support::{assert_all_acked_on, replicates_from};
use mysql_async::prelude::Queryable;
use operator_switch_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn switch_under_writes_with_the_old_master_as_new_replica() {
    let (tb, writer) = testbed_with_writer("switch_flag", 200, false).await;

    // Bad arguments: one line, exit 2, nothing changes.
    let o = cli(
        &tb,
        &[
            "switch",
            "--cluster",
            "app1",
            "--new-master",
            "node9",
            "--yes",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("has no server \"node9\""), "{}", text(&o));
    let o = cli(
        &tb,
        &["switch", "--cluster", "app1", "--new-master", "node2"],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(2),
        "no --yes without a terminal: {}",
        text(&o)
    );
    let o = cli(
        &tb,
        &[
            "switch",
            "--cluster",
            "app1",
            "--new-master",
            "node1",
            "--yes",
        ],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "node1 is the master: {}",
        text(&o)
    );

    // A transaction holding uncommitted changes for longer than running_updates_limit (1 s)
    // makes the preflight refuse: exit 3, the master untouched.
    let mut open_trx = tb.sandbox.conn(1).await.expect("connect");
    open_trx.query_drop("BEGIN").await.expect("begin");
    open_trx
        .query_drop("INSERT INTO test.w (id) VALUES (999999999)")
        .await
        .expect("insert");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let o = expect_exit(
        &tb,
        3,
        &[
            "switch",
            "--cluster",
            "app1",
            "--new-master",
            "node2",
            "--yes",
        ],
    )
    .await;
    assert!(text(&o).contains("uncommitted changes"), "{}", text(&o));
    open_trx.query_drop("ROLLBACK").await.expect("rollback");
    open_trx.disconnect().await.expect("disconnect");
    assert!(
        !read_only(&tb, 1).await,
        "refused: the master still takes writes"
    );

    let o = cli(
        &tb,
        &[
            "switch",
            "--cluster",
            "app1",
            "--new-master",
            "node2",
            "--orig-master-is-new-slave",
            "--yes",
            "--json",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let v = json(&o);
    assert_eq!(v["kind"], "switchover", "{v}");
    assert_eq!(v["report"]["outcome"], "switched", "{v}");
    assert!(v["report"]["writes_blocked_ms"].is_u64(), "{v}");
    let repointed = v["report"]["repointed"].as_array().expect("list").len();
    assert_eq!(repointed, 2, "node3 and the old master follow node2: {v}");

    writer.wait(50).await;
    let acked = writer.stop().await;
    assert!(acked.iter().any(|_| true), "the writer acknowledged writes");
    assert_all_acked_on(&tb, 2, &[1, 3], &acked).await;
    assert!(replicates_from(&tb, 3, 2).await, "node3 follows node2");
    assert!(
        replicates_from(&tb, 1, 2).await,
        "the old master follows node2"
    );
    assert!(read_only(&tb, 1).await, "the old master is read_only");
    assert!(!read_only(&tb, 2).await, "the new master takes writes");
    let c = tb.cluster().await.expect("state");
    assert_eq!((c.master.as_deref(), c.epoch), (Some("node2"), 1));
    assert!(
        c.last_failover.is_none(),
        "a switchover arms no anti-flapping guard"
    );

    let o = expect_exit(&tb, 0, &["history", "--cluster", "app1"]).await;
    let h = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(h.contains("switchover 2 of node1"), "{h}");
    assert!(
        h.contains("refused"),
        "the refused switchover is in the history too: {h}"
    );
    assert!(h.contains("writes blocked"), "{h}");
    down(tb).await;
}
