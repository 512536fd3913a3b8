//! The sandbox against real mariadbd processes. Each test owns one 127.0.1X.0/24 range and one
//! directory, so the tests run in parallel without colliding.
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use raftmha::sandbox::{BINDIR_ENV, Sandbox, SandboxGuard, SandboxSpec};

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("rmha-sandbox-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn spec(name: &str, base_ip: &str) -> SandboxSpec {
    let mut spec = SandboxSpec::new(fresh_dir(name), 3, base_ip.parse().unwrap());
    spec.timeout = Duration::from_secs(90);
    spec
}

async fn query_u64(sb: &Sandbox, node: usize, sql: &str) -> u64 {
    let mut conn = sb.conn(node).await.unwrap();
    let v: Option<u64> = conn.query_first(sql).await.unwrap();
    conn.disconnect().await.unwrap();
    v.unwrap()
}

/// A row written on the master is readable on every replica; status shows the topology.
async fn assert_replicates(sb: &Sandbox, using_gtid: &str) {
    let status = sb.status().await;
    assert_eq!(status[0].role, "master", "{status:#?}");
    assert_eq!(status[0].read_only, Some(false));
    for replica in &status[1..] {
        assert_eq!(replica.role, "replica", "{status:#?}");
        assert_eq!(replica.read_only, Some(true));
        assert_eq!(replica.io_running.as_deref(), Some("Yes"));
        assert_eq!(replica.sql_running.as_deref(), Some("Yes"));
        assert_eq!(replica.using_gtid.as_deref(), Some(using_gtid));
        assert_eq!(replica.source.as_deref(), Some(status[0].addr.as_str()));
    }
    let mut m = sb.conn(1).await.unwrap();
    m.query_drop("CREATE DATABASE app").await.unwrap();
    m.query_drop("CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))")
        .await
        .unwrap();
    m.query_drop("INSERT INTO app.t VALUES (1, 'written on master')")
        .await
        .unwrap();
    m.disconnect().await.unwrap();
    sb.wait_replicas_caught_up(Duration::from_secs(30))
        .await
        .unwrap();
    for node in 2..=3 {
        let mut c = sb.conn(node).await.unwrap();
        let v: Option<String> = c
            .query_first("SELECT v FROM app.t WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(v.as_deref(), Some("written on master"), "node{node}");
        c.disconnect().await.unwrap();
    }
}

async fn assert_down_leaves_nothing(sb: &Sandbox) {
    let pids: Vec<i32> = sb.running_nodes().iter().map(|(_, p)| *p).collect();
    assert_eq!(pids.len(), 3);
    sb.down().await.unwrap();
    assert!(sb.running_nodes().is_empty());
    for pid in pids {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let alive_mariadbd = String::from_utf8_lossy(&cmdline).contains("mariadbd")
            && !stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
        assert!(!alive_mariadbd, "pid {pid} still runs mariadbd after down");
    }
}

#[tokio::test]
async fn file_position_mode_replicates_to_every_replica_and_down_stops_all() {
    let sb = SandboxGuard(Sandbox::up(spec("filepos", "127.0.10.10")).await.unwrap());
    assert_replicates(&sb, "No").await;
    assert_down_leaves_nothing(&sb).await;
}

#[tokio::test]
async fn gtid_mode_replicates_with_slave_pos() {
    let mut spec = spec("gtid", "127.0.11.10");
    spec.gtid = true;
    let sb = SandboxGuard(Sandbox::up(spec).await.unwrap());
    assert_replicates(&sb, "Slave_Pos").await;
    let status = sb.status().await;
    assert!(
        !status[0]
            .gtid_binlog_pos
            .as_deref()
            .unwrap_or("")
            .is_empty()
    );
    assert_eq!(status[1].gtid_slave_pos, status[0].gtid_binlog_pos);
    assert_down_leaves_nothing(&sb).await;
}

#[tokio::test]
async fn semi_sync_mode_acknowledges_commits_from_replicas() {
    let mut spec = spec("semisync", "127.0.12.10");
    spec.semi_sync = true;
    let sb = SandboxGuard(Sandbox::up(spec).await.unwrap());
    let mut m = sb.conn(1).await.unwrap();
    // Replicas register as semi-sync clients asynchronously after their IO thread starts.
    let mut clients = 0;
    for _ in 0..200 {
        let row: Option<(String, u64)> = m
            .query_first("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'")
            .await
            .unwrap();
        clients = row.map_or(0, |r| r.1);
        if clients == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(clients, 2);
    let wait_point: Option<String> = m
        .query_first("SELECT @@rpl_semi_sync_master_wait_point")
        .await
        .unwrap();
    assert_eq!(wait_point.as_deref(), Some("AFTER_SYNC"));
    m.query_drop("CREATE TABLE mysql.semi_probe (id INT PRIMARY KEY)")
        .await
        .unwrap();
    m.query_drop("INSERT INTO mysql.semi_probe VALUES (1)")
        .await
        .unwrap();
    let yes: Option<(String, u64)> = m
        .query_first("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_yes_tx'")
        .await
        .unwrap();
    assert!(
        yes.unwrap().1 >= 2,
        "commits were not acknowledged by a semi-sync replica"
    );
    m.disconnect().await.unwrap();
    assert_eq!(
        query_u64(&sb, 2, "SELECT @@rpl_semi_sync_slave_enabled").await,
        1
    );
}

#[tokio::test]
async fn a_node_that_cannot_start_fails_fast_with_its_error_log_and_leaves_nothing_running() {
    let mut spec = spec("badnode", "127.0.13.10");
    spec.extra_cnf = vec!["no_such_mariadb_option=1".into()];
    let dir = spec.dir.clone();
    let err = Sandbox::up(spec).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("failed to start"), "{msg}");
    assert!(
        msg.contains("no_such_mariadb_option"),
        "error log tail missing: {msg}"
    );
    let sb = Sandbox::open(&dir).unwrap();
    assert!(sb.running_nodes().is_empty());
}

#[tokio::test]
async fn up_twice_refuses_down_twice_is_safe_and_up_again_restarts_with_data() {
    let spec = spec("twice", "127.0.14.10");
    let sb = SandboxGuard(Sandbox::up(spec.clone()).await.unwrap());
    let mut m = sb.conn(1).await.unwrap();
    m.query_drop("CREATE TABLE mysql.kept (id INT PRIMARY KEY)")
        .await
        .unwrap();
    m.query_drop("INSERT INTO mysql.kept VALUES (42)")
        .await
        .unwrap();
    m.disconnect().await.unwrap();

    let err = Sandbox::up(spec.clone()).await.unwrap_err();
    assert!(format!("{err:#}").contains("already running"), "{err:#}");
    assert_eq!(
        sb.running_nodes().len(),
        3,
        "a refused up must not disturb the running one"
    );

    sb.down().await.unwrap();
    sb.down().await.unwrap();
    assert!(sb.running_nodes().is_empty());

    let again = SandboxGuard(Sandbox::up(spec).await.unwrap());
    assert_eq!(again.running_nodes().len(), 3);
    assert_eq!(query_u64(&again, 1, "SELECT id FROM mysql.kept").await, 42);
    let status = again.status().await;
    assert_eq!(status[2].io_running.as_deref(), Some("Yes"), "{status:#?}");
}

#[tokio::test]
async fn kill_and_restart_of_a_single_node() {
    let mut spec = spec("killnode", "127.0.15.10");
    spec.nodes = 2;
    let sb = SandboxGuard(Sandbox::up(spec).await.unwrap());
    sb.kill_node(2).await.unwrap();
    assert_eq!(sb.pid(2).unwrap(), None);
    assert_eq!(sb.status().await[1].role, "down");
    sb.start_node(2).await.unwrap();
    sb.wait_replicas_caught_up(Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(sb.status().await[1].io_running.as_deref(), Some("Yes"));
}

fn raftmha(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_raftmha"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bad_cli_arguments_get_a_one_line_error_and_exit_2() {
    let cases: &[&[&str]] = &[
        &["sandbox", "up", "--nodes", "3"],
        &[
            "sandbox",
            "up",
            "--dir",
            "/tmp/rmha-bad",
            "--base-ip",
            "127.0.0",
        ],
        &[
            "sandbox",
            "up",
            "--dir",
            "/tmp/rmha-bad",
            "--base-ip",
            "10.1.1.1",
        ],
        &["sandbox", "up", "--dir", "/tmp/rmha-bad", "--nodes", "0"],
        &["sandbox", "up", "--dir", "/tmp/rmha-bad", "--nodes", "-1"],
        &["sandbox", "status", "--dir", "/tmp/rmha-no-such-sandbox"],
        &["sandbox", "down", "--dir", "/tmp/rmha-no-such-sandbox"],
    ];
    for args in cases {
        let out = raftmha(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error:"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn missing_mariadb_says_how_to_install_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_raftmha"))
        .args([
            "sandbox",
            "up",
            "--dir",
            "/tmp/rmha-sandbox-tests/nobin",
            "--base-ip",
            "127.0.16.10",
        ])
        .env(BINDIR_ENV, "/nonexistent-bindir")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("apt-get install -y mariadb-server mariadb-client"),
        "{stderr}"
    );
}
