//! `raftmha rejoin` after a freeze: the master's mysqld is SIGSTOPped with client statements
//! queued in its sockets, the managers fail it over (asynchronous replication, lease off, so
//! nothing fences it), and when it resumes it executes those statements, which the new master
//! never gets. `rejoin` must refuse it and list exactly the transactions the old master has
//! and the new master lacks. Real mariadbd and manager processes. IP range 127.0.209.0/24.
mod failover_support;
mod operator_switch_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use operator_switch_support::*;
use raftmha::manager::testbed::{Testbed, TestbedOptions};

async fn ids(tb: &Testbed, node: usize) -> BTreeSet<u64> {
    let mut c = tb.sandbox.conn(node).await.expect("connect");
    let ids: Vec<u64> = c.query("SELECT id FROM test.w").await.expect("ids");
    c.disconnect().await.expect("disconnect");
    ids.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resumed_frozen_master_is_refused_with_exactly_the_writes_the_new_master_lacks() {
    let opts = TestbedOptions {
        gtid: true,
        // Nothing fences the resumed master (the profile without a lease): it executes what
        // its clients queued while it was frozen.
        settings: "lease_ttl_ms = 0\n".into(),
        ..TestbedOptions::default()
    };
    let dir = Path::new("/tmp/rmha-switch").join("rejoin_freeze");
    let tb = Arc::new(
        Testbed::up(Path::new(BIN), &dir, 209, &opts)
            .await
            .expect("testbed up"),
    );
    failover_support::sql(&tb, 1, "CREATE DATABASE test").await;
    failover_support::sql(&tb, 1, "CREATE TABLE test.w (id BIGINT PRIMARY KEY)").await;
    let writer = AppWriter::start(tb.clone(), 1).await;
    writer.wait(50).await;

    // Pooled clients of the master, connected before the freeze.
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(tb.sandbox.conn(1).await.expect("connect"));
    }
    let pid = tb.sandbox.pid(1).expect("node").expect("node1 runs");
    // SAFETY: plain syscalls on the sandbox's own mysqld.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let queued: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            tokio::spawn(async move {
                let q = format!("INSERT INTO test.w (id) VALUES ({})", 900_000_000 + i);
                let ok = c.query_drop(q).await.is_ok();
                let _ = c.disconnect().await;
                ok
            })
        })
        .collect();
    let failover = tb
        .wait_for("the failover", Duration::from_secs(90), |c| {
            c.master.as_deref() != Some("node1")
                && c.failovers.back().is_some_and(|f| f.finished.is_some())
        })
        .await;
    // Resume before asserting anything, so a failure never leaves mysqld stopped.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let c = failover.expect("failover");
    let master = c.master.clone().expect("a master");
    let m = Testbed::index_of(&master).expect("nodeK");
    let mut executed = 0;
    for q in queued {
        if tokio::time::timeout(Duration::from_secs(20), q)
            .await
            .expect("the queued statements finish after the resume")
            .expect("client task")
        {
            executed += 1;
        }
    }
    writer.wait(20).await;
    writer.stop().await;
    println!("queued statements acknowledged by the resumed old master: {executed}");

    // What the old master has that the new master lacks (the new master's own writes are
    // not on node1: it replicates from nobody).
    let on_old = ids(&tb, 1).await;
    let on_new = ids(&tb, m).await;
    let lacking: Vec<u64> = on_old.difference(&on_new).copied().collect();
    assert!(
        lacking.len() >= executed && executed > 0,
        "the resumed master executed its queued statements: {lacking:?}"
    );

    let o = expect_exit(
        &tb,
        3,
        &["rejoin", "--cluster", "app1", "--host", "node1", "--json"],
    )
    .await;
    let v = json(&o);
    let errant = v["report"]["errant"].as_array().expect("errant list");
    let gtids: Vec<&str> = errant
        .iter()
        .filter_map(|e| e["info"].as_str())
        .filter(|i| i.starts_with("BEGIN GTID"))
        .collect();
    // One autocommit INSERT per missing row: exactly those transactions, all node1's own.
    assert_eq!(gtids.len(), lacking.len(), "{v}");
    let mut c = tb.sandbox.conn(1).await.expect("connect");
    let server_id: Option<u64> = c.query_first("SELECT @@server_id").await.expect("id");
    c.disconnect().await.expect("disconnect");
    let own = format!(" 0-{}-", server_id.expect("server_id"));
    assert!(gtids.iter().all(|g| g.contains(&own)), "{gtids:?}");
    let rows = errant
        .iter()
        .filter(|e| e["event_type"].as_str() == Some("Write_rows_v1"))
        .count();
    assert_eq!(rows, lacking.len(), "one row event per transaction: {v}");
    assert!(!is_replica(&tb, 1).await, "refused: nothing changed");
    down(tb).await;
}
