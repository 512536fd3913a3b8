//! Shared by the operator switch / failover / rejoin tests: a testbed under /tmp/rmha-switch,
//! the CLI run off the async workers, and small SQL helpers.
#![allow(dead_code)]

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use raftmha::manager::testbed::{Testbed, TestbedOptions};

pub const BIN: &str = env!("CARGO_BIN_EXE_raftmha");

pub async fn testbed(name: &str, subnet: u8, gtid: bool) -> Arc<Testbed> {
    let dir = Path::new("/tmp/rmha-switch").join(name);
    let opts = TestbedOptions {
        gtid,
        ..TestbedOptions::default()
    };
    Arc::new(
        Testbed::up(Path::new(BIN), &dir, subnet, &opts)
            .await
            .expect("testbed up"),
    )
}

/// `raftmha <args>` against the three managers, on a blocking thread.
pub async fn cli(tb: &Arc<Testbed>, args: &[&str]) -> Output {
    let tb = tb.clone();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        tb.managers.cli(&[1, 2, 3], &refs)
    })
    .await
    .expect("cli thread")
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

pub async fn read_only(tb: &Testbed, node: usize) -> bool {
    let mut c = tb.sandbox.conn(node).await.expect("connect");
    let ro: Option<u8> = c.query_first("SELECT @@read_only").await.expect("select");
    c.disconnect().await.expect("disconnect");
    ro == Some(1)
}

pub async fn is_replica(tb: &Testbed, node: usize) -> bool {
    let mut c = tb.sandbox.conn(node).await.expect("connect");
    let row: Option<mysql_async::Row> = c.query_first("SHOW SLAVE STATUS").await.expect("status");
    c.disconnect().await.expect("disconnect");
    row.is_some()
}

pub async fn checksum_w(tb: &Testbed, node: usize) -> Option<u64> {
    let mut c = tb.sandbox.conn(node).await.expect("connect");
    let row: Option<(String, Option<u64>)> = c
        .query_first("CHECKSUM TABLE test.w")
        .await
        .expect("checksum");
    c.disconnect().await.expect("disconnect");
    row.and_then(|r| r.1)
}

pub async fn down(tb: Arc<Testbed>) {
    if let Ok(tb) = Arc::try_unwrap(tb) {
        tb.down().await.expect("down");
    }
}

/// Like the testbed's `Writer`, but as an application account without privileges beyond
/// INSERT/SELECT on `test.*`: `read_only` binds it (the admin account holds READ_ONLY ADMIN
/// and would write through a blocked master, as no application should be able to).
pub struct AppWriter {
    acked: Arc<std::sync::Mutex<std::collections::BTreeSet<u64>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

const APP_PASSWORD: &str = "app-password-for-tests";

impl AppWriter {
    /// Creates the account on `master` (it replicates) and starts inserting into `test.w`.
    pub async fn start(tb: Arc<Testbed>, master: usize) -> AppWriter {
        let mut c = tb.sandbox.conn(master).await.expect("connect");
        c.query_drop(format!(
            "CREATE USER IF NOT EXISTS app@'127.%' IDENTIFIED BY '{APP_PASSWORD}'"
        ))
        .await
        .expect("create user");
        c.query_drop("GRANT SELECT, INSERT ON test.* TO app@'127.%'")
            .await
            .expect("grant");
        c.disconnect().await.expect("disconnect");
        tb.sandbox
            .wait_replicas_caught_up(std::time::Duration::from_secs(30))
            .await
            .expect("caught up");
        let acked = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (a, s) = (acked.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut next = 1u64;
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let Some(i) = tb
                    .cluster()
                    .await
                    .and_then(|c| c.master)
                    .and_then(|m| Testbed::index_of(&m))
                else {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                };
                let Ok(admin) = tb.sandbox.admin_opts(i) else {
                    return;
                };
                let opts = mysql_async::OptsBuilder::from_opts(admin)
                    .user(Some("app"))
                    .pass(Some(APP_PASSWORD));
                let conn = tokio::time::timeout(
                    std::time::Duration::from_secs(1),
                    mysql_async::Conn::new(opts),
                )
                .await;
                let Ok(Ok(mut c)) = conn else {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                };
                while !s.load(std::sync::atomic::Ordering::Relaxed) {
                    let q = format!("INSERT INTO test.w (id) VALUES ({next})");
                    let r =
                        tokio::time::timeout(std::time::Duration::from_secs(2), c.query_drop(q))
                            .await;
                    next += 1;
                    match r {
                        Ok(Ok(())) => {
                            a.lock().unwrap_or_else(|p| p.into_inner()).insert(next - 1);
                        }
                        // Refused (read_only) or unknown: reconnect to the recorded master.
                        _ => break,
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        });
        AppWriter { acked, stop, task }
    }

    pub fn count(&self) -> usize {
        self.acked.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Waits until `n` more writes are acknowledged (bounded).
    pub async fn wait(&self, n: usize) {
        let target = self.count() + n;
        for _ in 0..3000 {
            if self.count() >= target {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the writer did not reach {target} writes");
    }

    pub async fn stop(self) -> std::collections::BTreeSet<u64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.task.await;
        self.acked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A testbed with `test.w` created on the master (node1) and an [`AppWriter`] that already
/// had 50 writes acknowledged.
pub async fn testbed_with_writer(name: &str, subnet: u8, gtid: bool) -> (Arc<Testbed>, AppWriter) {
    let tb = testbed(name, subnet, gtid).await;
    for q in [
        "CREATE DATABASE test",
        "CREATE TABLE test.w (id BIGINT PRIMARY KEY)",
    ] {
        let mut c = tb.sandbox.conn(1).await.expect("connect");
        c.query_drop(q).await.expect(q);
        c.disconnect().await.expect("disconnect");
    }
    let writer = AppWriter::start(tb.clone(), 1).await;
    writer.wait(50).await;
    (tb, writer)
}

/// Runs the CLI and expects exit code `code`; returns the output.
pub async fn expect_exit(tb: &Arc<Testbed>, code: i32, args: &[&str]) -> Output {
    let o = cli(tb, args).await;
    assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
    o
}
