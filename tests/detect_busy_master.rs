//! Fast defaults must not see a busy master as dead: many concurrent slow queries and a
//! long-running transaction holding row locks, while monitors of every ping type run with the
//! default 250 ms × 3. No monitor may report `Dead`.
//! IP range 127.0.85.0/24, directory /tmp/rmha-fo/detect_busy_master.
use std::path::PathBuf;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use raftmha::db::{ConnectSettings, MysqlServer, PingType};
use raftmha::detect::{MonitorConfig, SystemClock, Verdict, run_monitor};
use raftmha::sandbox::{Sandbox, SandboxGuard, SandboxSpec};
use tokio::sync::{mpsc, watch};

#[tokio::test]
async fn a_busy_master_is_never_reported_dead() {
    let dir = PathBuf::from("/tmp/rmha-fo/detect_busy_master");
    let _ = std::fs::remove_dir_all(&dir);
    let mut spec = SandboxSpec::new(dir, 1, "127.0.85.10".parse().expect("ip"));
    spec.timeout = Duration::from_secs(90);
    let sb = SandboxGuard(Sandbox::up(spec).await.expect("sandbox up"));
    let mut setup = sb.conn(1).await.expect("connect");
    setup.query_drop("CREATE DATABASE app").await.expect("db");
    setup
        .query_drop("CREATE TABLE app.t (id INT PRIMARY KEY, v INT)")
        .await
        .expect("table");
    setup
        .query_drop("INSERT INTO app.t WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 1000) SELECT n, 0 FROM s")
        .await
        .expect("rows");

    // A long transaction holding every row lock, and a crowd of slow queries.
    let mut long_trx = sb.conn(1).await.expect("connect");
    long_trx.query_drop("BEGIN").await.expect("begin");
    long_trx
        .query_drop("UPDATE app.t SET v = v + 1")
        .await
        .expect("update");
    let mut load = Vec::new();
    for _ in 0..24 {
        let mut c = sb.conn(1).await.expect("connect");
        load.push(tokio::spawn(async move {
            let _ = c.query_drop("SELECT SLEEP(4)").await;
            let _ = c.disconnect().await;
        }));
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let (tx, mut rx) = mpsc::channel(256);
    let mut monitors = Vec::new();
    for ping_type in [PingType::Select, PingType::Connect, PingType::Insert] {
        let cfg = MonitorConfig {
            ping_type,
            ..MonitorConfig::default()
        };
        let opts = sb.admin_opts(1).expect("node1");
        let server = MysqlServer::new(ConnectSettings::from_opts(
            &opts,
            cfg.check_timeout(),
            cfg.check_timeout(),
        ));
        let (tx, stop) = (tx.clone(), stop_rx.clone());
        monitors.push(tokio::spawn(async move {
            run_monitor(&server, &cfg, &SystemClock, tx, stop)
                .await
                .map(|()| ping_type)
        }));
    }
    drop(tx);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_tx.send(true).expect("monitors listening");
    for m in monitors {
        m.await.expect("monitor task").expect("valid config");
    }
    let mut reports = Vec::new();
    while let Some(r) = rx.recv().await {
        reports.push(r);
    }
    assert!(
        reports.iter().any(|r| r.verdict == Verdict::Alive),
        "{reports:?}"
    );
    assert!(
        reports.iter().all(|r| r.verdict != Verdict::Dead),
        "{reports:?}"
    );

    long_trx.query_drop("ROLLBACK").await.expect("rollback");
    for l in load {
        l.await.expect("load task");
    }
    sb.down().await.expect("down");
}
