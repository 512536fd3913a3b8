//! Fast defaults without false failovers: the master is kept busy (many concurrent slow
//! queries and a long-running transaction) while one manager is frozen with SIGSTOP for a
//! second, twice (the leader, then a follower). No failover may happen and every manager's
//! latest verdict about the master ends `alive`.
//! IP range 127.0.143.0/24, directories under /tmp/rmha-engine/.
mod failover_support;

use std::time::Duration;

use failover_support::*;
use mysql_async::prelude::Queryable;
use raftmha::manager::testbed::TestbedOptions;

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a manager process this test's harness spawned and still holds.
    let rc = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_master_and_a_paused_manager_cause_no_failover() {
    let tb = testbed("busy_master", 143, &TestbedOptions::default()).await;
    sql(&tb, 1, "CREATE DATABASE test").await;
    sql(&tb, 1, "CREATE TABLE test.w (id BIGINT PRIMARY KEY)").await;
    sql(&tb, 1, "INSERT INTO test.w VALUES (1)").await;

    // 30 sessions each running slow queries back to back, and one long transaction
    // holding a row lock, for the whole test.
    let mut load = Vec::new();
    for i in 0..30 {
        let mut c = tb.sandbox.conn(1).await.expect("connect");
        load.push(tokio::spawn(async move {
            for _ in 0..4 {
                let q = if i % 2 == 0 {
                    "SELECT SLEEP(2)".to_string()
                } else {
                    "SELECT COUNT(*) FROM information_schema.columns a, \
                     information_schema.columns b LIMIT 1"
                        .to_string()
                };
                let _ = c.query_drop(q).await;
            }
        }));
    }
    let mut tx = tb.sandbox.conn(1).await.expect("connect");
    tx.query_drop("START TRANSACTION").await.expect("begin");
    tx.query_drop("UPDATE test.w SET id = 100 WHERE id = 1")
        .await
        .expect("update");

    let leader = tb.managers.wait_leader(&[1, 2, 3]).await;
    let follower = if leader == 1 { 2 } else { 1 };
    for id in [leader, follower] {
        let pid = tb.managers.pid(id).expect("running");
        signal(pid, libc::SIGSTOP);
        tokio::time::sleep(Duration::from_secs(1)).await;
        signal(pid, libc::SIGCONT);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tx.query_drop("ROLLBACK").await.expect("rollback");
    tx.disconnect().await.expect("disconnect");
    for l in load {
        let _ = l.await;
    }

    let c = tb.cluster().await.expect("state");
    assert!(c.failovers.is_empty(), "false failover: {:?}", c.failovers);
    assert_eq!(c.master.as_deref(), Some("node1"));
    assert_eq!(c.epoch, 0);
    tb.down().await.expect("down");
}
