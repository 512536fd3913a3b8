//! Shared by the failover integration tests: a [`Testbed`] on this build's binary under
//! /tmp/rmha-engine/<test>/, a writer that follows the master the managers record, and the
//! end-of-test checks (every acknowledged write on every survivor, replication healthy).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use mysql_async::prelude::Queryable;
pub use raftmha::manager::testbed::Writer;
use raftmha::manager::testbed::{Testbed, TestbedOptions};
use raftmha::state::FailoverOutcome;

pub const BIN: &str = env!("CARGO_BIN_EXE_raftmha");

pub async fn testbed(name: &str, subnet: u8, opts: &TestbedOptions) -> Testbed {
    let dir = Path::new("/tmp/rmha-engine").join(name);
    Testbed::up(Path::new(BIN), &dir, subnet, opts)
        .await
        .expect("testbed up")
}

pub async fn sql(tb: &Testbed, node: usize, q: &str) {
    let mut c = tb.sandbox.conn(node).await.expect("connect");
    c.query_drop(q)
        .await
        .unwrap_or_else(|e| panic!("node{node}: {q}: {e}"));
    c.disconnect().await.expect("disconnect");
}

pub async fn ids(tb: &Testbed, node: usize) -> BTreeSet<u64> {
    let mut c = tb.sandbox.conn(node).await.expect("connect");
    let v: Vec<u64> = c.query("SELECT id FROM test.w").await.expect("select");
    c.disconnect().await.expect("disconnect");
    v.into_iter().collect()
}

/// `test.w` with ids 1, 2, 3 on the master, replicated everywhere.
pub async fn create_w_table(tb: &Testbed) {
    sql(tb, 1, "CREATE DATABASE test").await;
    sql(tb, 1, "CREATE TABLE test.w (id BIGINT PRIMARY KEY)").await;
    sql(tb, 1, "INSERT INTO test.w VALUES (1), (2), (3)").await;
    tb.sandbox
        .wait_replicas_caught_up(Duration::from_secs(30))
        .await
        .expect("caught up");
}

/// Waits until `n` more writes are acknowledged (bounded).
pub async fn wait_writes(w: &Writer, n: usize) {
    let target = w.count() + n;
    for _ in 0..3000 {
        if w.count() >= target {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the writer did not reach {target} writes");
}

/// Waits until the latest failover finished, whatever its outcome; returns the cluster and
/// that failover.
pub async fn wait_finished(
    tb: &Testbed,
) -> (
    raftmha::state::ClusterRecord,
    raftmha::state::FailoverRecord,
) {
    let c = tb
        .wait_for("the failover to finish", Duration::from_secs(60), |c| {
            c.failovers.back().is_some_and(|f| f.finished.is_some())
        })
        .await
        .expect("failover finished");
    let f = c.failovers.back().cloned().expect("a failover");
    (c, f)
}

/// Waits for the failover of the original master to finish and returns the new master.
pub async fn wait_failover(tb: &Testbed) -> String {
    let (c, f) = wait_finished(tb).await;
    assert_eq!(
        f.finished.as_ref().map(|(o, _)| o.clone()),
        Some(FailoverOutcome::Succeeded),
        "journal: {:#?}",
        f.steps
    );
    let master = c.master.expect("a master");
    assert_ne!(master, f.dead_master);
    master
}

/// Every acknowledged id is on each of `nodes` once the replicas caught up with `master`.
pub async fn assert_all_acked_on(
    tb: &Testbed,
    master: usize,
    nodes: &[usize],
    acked: &BTreeSet<u64>,
) {
    let expected = ids(tb, master).await;
    for n in nodes {
        let mut have = BTreeSet::new();
        for _ in 0..500 {
            have = ids(tb, *n).await;
            if have == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            have, expected,
            "node{n} did not converge with the new master"
        );
    }
    let missing: Vec<_> = acked.difference(&expected).collect();
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
}

pub async fn replicates_from(tb: &Testbed, replica: usize, master: usize) -> bool {
    let m = tb.sandbox.node(master).expect("node");
    let mut c = tb.sandbox.conn(replica).await.expect("connect");
    let row: Option<mysql_async::Row> = c.query_first("SHOW SLAVE STATUS").await.expect("status");
    c.disconnect().await.expect("disconnect");
    let Some(row) = row else { return false };
    let host: Option<String> = row.get("Master_Host");
    let port: Option<u16> = row.get("Master_Port");
    let io: Option<String> = row.get("Slave_IO_Running");
    let sql: Option<String> = row.get("Slave_SQL_Running");
    host.as_deref() == Some(&m.ip.to_string())
        && port == Some(m.port)
        && io.as_deref() == Some("Yes")
        && sql.as_deref() == Some("Yes")
}

pub async fn checksum(tb: &Testbed, node: usize) -> u64 {
    let mut c = tb.sandbox.conn(node).await.expect("connect");
    let row: Option<(String, Option<u64>)> = c
        .query_first("CHECKSUM TABLE test.t1")
        .await
        .expect("checksum");
    c.disconnect().await.expect("disconnect");
    row.and_then(|r| r.1).expect("a checksum")
}

pub async fn rows(tb: &Testbed, node: usize) -> Vec<i32> {
    let mut c = tb.sandbox.conn(node).await.expect("connect");
    let v: Vec<i32> = c
        .query("SELECT a FROM test.t1 ORDER BY a")
        .await
        .expect("select");
    c.disconnect().await.expect("disconnect");
    v
}

/// Seed 004 on a running testbed: node2's IO thread stopped first, node3's after rows 2..20,
/// rows 21..30 only on the master. Returns the master's checksum of `test.t1`.
pub async fn seed_scenario(tb: &Testbed) -> u64 {
    sql(tb, 1, "CREATE DATABASE test").await;
    sql(
        tb,
        1,
        "CREATE TABLE test.t1 (a INT PRIMARY KEY, pad VARCHAR(200))",
    )
    .await;
    sql(tb, 1, "INSERT INTO test.t1 VALUES (1, REPEAT('a', 200))").await;
    tb.sandbox
        .wait_replicas_caught_up(Duration::from_secs(30))
        .await
        .expect("caught up");
    sql(tb, 2, "STOP SLAVE IO_THREAD").await;
    for a in 2..=20 {
        sql(
            tb,
            1,
            &format!("INSERT INTO test.t1 VALUES ({a}, REPEAT('b', 200))"),
        )
        .await;
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
    c3.query_drop("STOP SLAVE IO_THREAD")
        .await
        .expect("stop io");
    c3.disconnect().await.expect("disconnect");
    for a in 21..=30 {
        sql(
            tb,
            1,
            &format!("INSERT INTO test.t1 VALUES ({a}, REPEAT('c', 200))"),
        )
        .await;
    }
    checksum(tb, 1).await
}

/// The seed scenario's end state: node2 promoted, both survivors hold rows 1..=30 (the
/// master's checksum), a new write on node2 reaches node3, which replicates from node2.
pub async fn assert_seed_recovered(tb: &Testbed, before: u64) {
    let expected: Vec<i32> = (1..=30).collect();
    assert_eq!(
        rows(tb, 2).await,
        expected,
        "node2 has every transaction once"
    );
    assert_eq!(checksum(tb, 2).await, before);
    sql(tb, 2, "INSERT INTO test.t1 VALUES (31, 'after')").await;
    let mut done = false;
    for _ in 0..500 {
        if rows(tb, 3).await.len() == 31 {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(done, "node3 replicates the new master's writes");
    assert_eq!(checksum(tb, 2).await, checksum(tb, 3).await);
    assert!(replicates_from(tb, 3, 2).await);
}
