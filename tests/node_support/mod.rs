//! Helpers shared by the node-tools integration tests (real mariadbd sandboxes).
#![allow(dead_code)]
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mysql_async::Row;
use mysql_async::prelude::Queryable;
use raftmha::sandbox::{Sandbox, SandboxSpec};
use raftmha_node::binlog::relay::{MasterCoord, read_index};
use raftmha_node::tools::db::DbTarget;

pub fn spec(name: &str, base_ip: &str) -> SandboxSpec {
    let dir = PathBuf::from("/tmp/rmha-node/tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let mut spec = SandboxSpec::new(dir, 3, base_ip.parse().unwrap());
    spec.timeout = Duration::from_secs(90);
    spec
}

pub fn workdir(name: &str) -> PathBuf {
    let d = PathBuf::from("/tmp/rmha-node/tests").join(format!("{name}-work"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub async fn sql(sb: &Sandbox, node: usize, q: &str) {
    let mut c = sb.conn(node).await.unwrap();
    c.query_drop(q)
        .await
        .unwrap_or_else(|e| panic!("node{node}: {q}: {e}"));
    c.disconnect().await.unwrap();
}

pub async fn query_string(sb: &Sandbox, node: usize, q: &str) -> String {
    let mut c = sb.conn(node).await.unwrap();
    let v: Option<Option<String>> = c.query_first(q).await.unwrap();
    c.disconnect().await.unwrap();
    v.flatten().unwrap_or_default()
}

pub async fn checksum(sb: &Sandbox, node: usize, table: &str) -> u64 {
    let mut c = sb.conn(node).await.unwrap();
    let row: Option<(String, Option<u64>)> = c
        .query_first(format!("CHECKSUM TABLE {table}"))
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    row.and_then(|r| r.1).expect("checksum")
}

pub async fn slave_status(sb: &Sandbox, node: usize) -> Vec<(String, String)> {
    let mut c = sb.conn(node).await.unwrap();
    let row: Option<Row> = c.query_first("SHOW SLAVE STATUS").await.unwrap();
    c.disconnect().await.unwrap();
    let row = row.expect("not a replica");
    let cols: Vec<String> = row
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    cols.into_iter()
        .enumerate()
        .map(|(i, n)| {
            let v: Option<String> = row.get_opt(i).and_then(Result::ok).flatten();
            (n, v.unwrap_or_default())
        })
        .collect()
}

pub fn col<'a>(s: &'a [(String, String)], name: &str) -> &'a str {
    s.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// The replica's read coordinate (Master_Log_File, Read_Master_Log_Pos).
pub async fn read_coord(sb: &Sandbox, node: usize) -> MasterCoord {
    let s = slave_status(sb, node).await;
    MasterCoord {
        file: col(&s, "Master_Log_File").to_string(),
        pos: col(&s, "Read_Master_Log_Pos").parse().unwrap(),
    }
}

/// Waits until the SQL thread has executed everything the IO thread read.
pub async fn wait_sql_caught_up(sb: &Sandbox, node: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = slave_status(sb, node).await;
        if col(&s, "Master_Log_File") == col(&s, "Relay_Master_Log_File")
            && col(&s, "Read_Master_Log_Pos") == col(&s, "Exec_Master_Log_Pos")
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node{node} SQL thread did not catch up: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the replica's IO thread has read up to the master's current binlog position.
pub async fn wait_io_read(sb: &Sandbox, node: usize, master: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut c = sb.conn(master).await.unwrap();
        let row: Option<Row> = c.query_first("SHOW MASTER STATUS").await.unwrap();
        c.disconnect().await.unwrap();
        let row = row.unwrap();
        let file: String = row.get(0).unwrap();
        let pos: u64 = row.get(1).unwrap();
        let got = read_coord(sb, node).await;
        if got.file == file && got.pos == pos {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node{node} IO thread did not read {file}:{pos}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn relay_files(sb: &Sandbox, node: usize) -> Vec<PathBuf> {
    read_index(&sb.node(node).unwrap().datadir.join("relay.index")).unwrap()
}

pub fn db_target(sb: &Sandbox, node: usize) -> DbTarget {
    let n = sb.node(node).unwrap();
    let c = sb.credentials();
    DbTarget {
        host: n.ip.to_string(),
        port: n.port,
        socket: None,
        user: c.admin_user.clone(),
        password: c.admin_password.clone(),
    }
}

/// A table the tests fill: a mix of small and multi-row transactions.
pub async fn create_table(sb: &Sandbox) {
    sql(sb, 1, "CREATE DATABASE app").await;
    sql(
        sb,
        1,
        "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(200), n INT NOT NULL DEFAULT 0) ENGINE=InnoDB",
    )
    .await;
}

/// `n` small transactions plus one multi-row transaction, ids from `from`.
pub async fn write_batch(sb: &Sandbox, from: u32, n: u32) {
    let mut c = sb.conn(1).await.unwrap();
    for i in from..from + n {
        c.query_drop(format!(
            "INSERT INTO app.t VALUES ({i}, REPEAT('s', {}), 1)",
            20 + i % 150
        ))
        .await
        .unwrap();
    }
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop(format!(
        "INSERT INTO app.t SELECT seq, REPEAT('m', 180), 2 FROM app.seq_{}_to_{}",
        from + 100_000,
        from + 100_000 + 500
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "UPDATE app.t SET n = n + 1 WHERE id BETWEEN {from} AND {}",
        from + n / 2
    ))
    .await
    .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    c.disconnect().await.unwrap();
}
