//! E2, the seed scenario in file/position mode through the managers and agents: the
//! candidate's IO thread stopped first, the other replica's later, the master wrote more,
//! then died by SIGKILL. The candidate gets the other replica's relay-log diff and the dead
//! master's saved tail; both survivors end with every transaction (equal checksums).
//! IP range 127.0.132.0/24, directories under /tmp/rmha-engine/.
mod failover_support;

use std::time::Duration;

use failover_support::*;
use mysql_async::prelude::Queryable;
use raftmha::manager::testbed::TestbedOptions;

async fn checksum(tb: &raftmha::manager::testbed::Testbed, node: usize) -> u64 {
    let mut c = tb.sandbox.conn(node).await.expect("connect");
    let row: Option<(String, Option<u64>)> = c
        .query_first("CHECKSUM TABLE test.t1")
        .await
        .expect("checksum");
    c.disconnect().await.expect("disconnect");
    row.and_then(|r| r.1).expect("a checksum")
}

async fn rows(tb: &raftmha::manager::testbed::Testbed, node: usize) -> Vec<i32> {
    let mut c = tb.sandbox.conn(node).await.expect("connect");
    let v: Vec<i32> = c
        .query("SELECT a FROM test.t1 ORDER BY a")
        .await
        .expect("select");
    c.disconnect().await.expect("disconnect");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e2_seed_scenario_relay_diff_and_saved_tail() {
    let opts = TestbedOptions {
        server_extra: [
            String::new(),
            "candidate_master = true".into(),
            String::new(),
        ],
        ..TestbedOptions::default()
    };
    let tb = testbed("e2_seed", 132, &opts).await;
    sql(&tb, 1, "CREATE DATABASE test").await;
    sql(&tb, 1, "CREATE TABLE test.t1 (a INT PRIMARY KEY, pad VARCHAR(200))").await;
    sql(&tb, 1, "INSERT INTO test.t1 VALUES (1, REPEAT('a', 200))").await;
    tb.sandbox
        .wait_replicas_caught_up(Duration::from_secs(30))
        .await
        .expect("caught up");
    sql(&tb, 2, "STOP SLAVE IO_THREAD").await;
    for a in 2..=20 {
        sql(&tb, 1, &format!("INSERT INTO test.t1 VALUES ({a}, REPEAT('b', 200))")).await;
    }
    // node3 receives rows 2..20, then stops receiving too.
    let mut m = tb.sandbox.conn(1).await.expect("master");
    let (file, pos): (String, u64) = m
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("status")
        .map(|r: mysql_async::Row| (r.get(0).expect("file"), r.get(1).expect("pos")))
        .expect("binlog on");
    m.disconnect().await.expect("disconnect");
    let mut c3 = tb.sandbox.conn(3).await.expect("node3");
    let reached: Option<i64> = c3
        .query_first(format!("SELECT MASTER_POS_WAIT('{file}', {pos}, 30)"))
        .await
        .expect("wait");
    assert_eq!(reached.map(|r| r >= 0), Some(true));
    c3.query_drop("STOP SLAVE IO_THREAD").await.expect("stop io");
    c3.disconnect().await.expect("disconnect");
    for a in 21..=30 {
        sql(&tb, 1, &format!("INSERT INTO test.t1 VALUES ({a}, REPEAT('c', 200))")).await;
    }
    let before = checksum(&tb, 1).await;
    tb.sandbox.kill_node(1).await.expect("SIGKILL the master");

    let master = wait_failover(&tb).await;
    assert_eq!(master, "node2", "the candidate master is promoted");
    let expected: Vec<i32> = (1..=30).collect();
    assert_eq!(rows(&tb, 2).await, expected, "node2 has every transaction");
    assert_eq!(checksum(&tb, 2).await, before);
    sql(&tb, 2, "INSERT INTO test.t1 VALUES (31, 'after')").await;
    let mut done = false;
    for _ in 0..500 {
        if rows(&tb, 3).await.len() == 31 {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(done, "node3 replicates the new master's writes");
    assert_eq!(checksum(&tb, 2).await, checksum(&tb, 3).await);
    assert!(replicates_from(&tb, 3, 2).await);
    tb.down().await.expect("down");
}
