//! `MysqlServer` (the mysql_async `DbServer`) against real MariaDB 10.11 nodes from
//! `raftmha::sandbox`: every read the failover relies on, every action it takes, bounded
//! waits, the alive/failed classification, and a SIGKILLed server.
//! IP range 127.0.80.0/24, directory /tmp/rmha-fo/db_mysql_server.
use std::path::PathBuf;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use raftmha::db::{
    ChangeSource, ConnectSettings, DbServer, Dialect, FailureKind, Flavor, GtidSet, IoThread,
    MysqlServer, PingOutcome, PingType, Secret, SourcePosition, WaitOutcome,
};
use raftmha::sandbox::{Sandbox, SandboxGuard, SandboxSpec};

fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from("/tmp/rmha-fo").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn server(sb: &Sandbox, index: usize, password: Option<&str>) -> MysqlServer {
    let opts = sb.admin_opts(index).expect("node exists");
    let mut settings = ConnectSettings::from_opts(
        &opts,
        Duration::from_millis(1000),
        Duration::from_millis(2000),
    );
    if let Some(p) = password {
        settings.password = Secret::new(p);
    }
    MysqlServer::new(settings)
}

async fn dialect(s: &MysqlServer) -> Dialect {
    Dialect::new(s.version().await.expect("version"))
}

async fn exec(sb: &Sandbox, node: usize, sql: &str) {
    let mut c = sb.conn(node).await.expect("connect");
    c.query_drop(sql).await.expect("statement");
    c.disconnect().await.expect("disconnect");
}

#[tokio::test]
async fn mysql_server_reads_acts_and_classifies_against_real_mariadb() {
    let mut spec = SandboxSpec::new(
        fresh_dir("db_mysql_server"),
        3,
        "127.0.80.10".parse().expect("ip"),
    );
    spec.timeout = Duration::from_secs(90);
    let sb = SandboxGuard(Sandbox::up(spec).await.expect("sandbox up"));
    let (m, r2, r3) = (
        server(&sb, 1, None),
        server(&sb, 2, None),
        server(&sb, 3, None),
    );
    let master = sb.node(1).expect("node1").clone();

    // Version: Debian's six-number string parses; MariaDB has no super_read_only.
    let v = m.version().await.expect("version");
    assert_eq!(v.flavor, Flavor::MariaDb, "{v}");
    assert!(v.major >= 10);
    let vars = m.variables().await.expect("variables");
    assert!(vars.is_writable() && vars.log_bin && vars.log_slave_updates);
    assert_eq!(vars.super_read_only, None);
    assert_eq!(vars.server_id, master.server_id);
    let rv = r2.variables().await.expect("replica variables");
    assert!(rv.read_only && !rv.is_writable());
    assert_eq!(rv.relay_log_purge, Some(false));

    // Liveness checks of every type.
    for kind in [PingType::Select, PingType::Connect, PingType::Insert] {
        assert_eq!(m.ping(kind).await, PingOutcome::Alive, "{kind:?}");
    }
    // Wrong password: the server answered, so it is alive (MHA's ALIVE_ERROR_CODES).
    let wrong = server(&sb, 1, Some("not-the-password"));
    assert_eq!(
        wrong.ping(PingType::Connect).await,
        PingOutcome::AliveWithError { code: 1045 }
    );

    // Status: node1 is a master, node2 a receiving replica of it.
    exec(&sb, 1, "CREATE DATABASE app").await;
    exec(&sb, 1, "CREATE TABLE app.t (id INT PRIMARY KEY)").await;
    exec(&sb, 1, "INSERT INTO app.t VALUES (1)").await;
    sb.wait_replicas_caught_up(Duration::from_secs(30))
        .await
        .expect("caught up");
    assert!(m.replica_status().await.expect("status").is_none());
    let ms = m
        .master_status()
        .await
        .expect("master status")
        .expect("binlog on");
    let st = r2
        .replica_status()
        .await
        .expect("status")
        .expect("is a replica");
    assert!(st.replicates_from(&master.ip.to_string(), master.port));
    assert_eq!(st.io_thread, IoThread::Yes);
    assert_eq!(st.read, ms.coord);
    assert_eq!(st.exec, ms.coord);
    let gtid = m.gtid_state().await.expect("gtid state");
    assert!(
        matches!(gtid.executed, GtidSet::MariaDb(ref p) if !p.is_empty()),
        "{gtid:?}"
    );

    // Freeze node3 (stop its IO thread), write more: a bounded wait for the master's position
    // times out instead of hanging, the wait for what it already has succeeds.
    let d3 = dialect(&r3).await;
    r3.execute(&d3.stop_io_thread()).await.expect("stop io");
    let frozen = r3.replica_status().await.expect("status").expect("replica");
    assert_eq!(frozen.io_thread, IoThread::No);
    exec(&sb, 1, "INSERT INTO app.t VALUES (2)").await;
    let ahead = m
        .master_status()
        .await
        .expect("master status")
        .expect("binlog on")
        .coord;
    assert!(ahead > frozen.read);
    let (stmt, kind) = d3.wait_for_position(&frozen.read, Duration::from_secs(5));
    assert_eq!(
        r3.wait(&stmt, kind, Duration::from_secs(5))
            .await
            .expect("wait"),
        WaitOutcome::Reached
    );
    let (stmt, kind) = d3.wait_for_position(&ahead, Duration::from_millis(500));
    assert_eq!(
        r3.wait(&stmt, kind, Duration::from_millis(500))
            .await
            .expect("wait"),
        WaitOutcome::TimedOut
    );

    // Repoint node3 with MASTER_USE_GTID=slave_pos through the builder (escaped, masked) and
    // wait for the master's GTID position.
    let creds = sb.credentials();
    r3.execute(&d3.stop_replica()).await.expect("stop replica");
    let change = d3.change_source(&ChangeSource {
        host: master.ip.to_string(),
        port: master.port,
        user: creds.repl_user.clone(),
        password: Secret::new(creds.repl_password.clone()),
        position: SourcePosition::MariaDbSlavePos,
        connect_retry_secs: Some(1),
        heartbeat_period: Some(Duration::from_millis(500)),
    });
    assert!(!change.to_string().contains(&creds.repl_password));
    r3.execute(&change).await.expect("change master");
    r3.execute(&d3.start_replica())
        .await
        .expect("start replica");
    let target = m
        .gtid_state()
        .await
        .expect("gtid")
        .binlog_pos
        .map(GtidSet::MariaDb)
        .expect("mariadb");
    let (stmt, kind) = d3
        .wait_for_gtids(&target, Duration::from_secs(10))
        .expect("flavor matches");
    assert_eq!(
        r3.wait(&stmt, kind, Duration::from_secs(10))
            .await
            .expect("wait"),
        WaitOutcome::Reached
    );
    let st3 = r3.replica_status().await.expect("status").expect("replica");
    assert!(st3.uses_gtid() && st3.is_receiving(), "{st3:?}");

    // Fencing: read_only, then kill client sessions but not replication or ourselves.
    let dm = dialect(&m).await;
    let mut app = sb.conn(1).await.expect("app session");
    let app_id = u64::from(app.id());
    m.execute(&dm.set_read_only(true))
        .await
        .expect("read_only on");
    assert!(!m.variables().await.expect("vars").is_writable());
    let killed = m.kill_client_connections().await.expect("kill");
    assert!(
        killed.contains(&app_id),
        "killed {killed:?}, app session {app_id}"
    );
    assert!(
        app.query_drop("SELECT 1").await.is_err(),
        "the app session was killed"
    );
    assert_eq!(
        m.ping(PingType::Select).await,
        PingOutcome::Alive,
        "our own sessions survive"
    );
    let st2 = r2.replica_status().await.expect("status").expect("replica");
    assert_eq!(
        st2.io_thread,
        IoThread::Yes,
        "replication threads are not killed"
    );
    m.execute(&dm.set_read_only(false))
        .await
        .expect("read_only off");

    // A server error is reported with its code, and the session stays usable.
    let err = m
        .execute(&raftmha::db::Statement::new("SELECT * FROM app.missing"))
        .await
        .expect_err("no such table");
    assert!(
        matches!(err, raftmha::db::DbError::Server { code: 1146, .. }),
        "{err}"
    );
    assert!(m.variables().await.is_ok());

    // A failing statement that carries a password never reports it, not even through the
    // server's "near '...'" echo.
    let bad = dm.change_source(&ChangeSource {
        host: "x".repeat(300), // longer than MariaDB allows for MASTER_HOST
        port: 3306,
        user: "repl".into(),
        password: Secret::new("leak-me-not"),
        position: SourcePosition::MariaDbSlavePos,
        connect_retry_secs: None,
        heartbeat_period: None,
    });
    let err = m.execute(&bad).await.expect_err("host too long");
    assert!(!format!("{err} {err:?}").contains("leak-me-not"), "{err:?}");

    // SIGKILL the master: checks fail (refused/reset), never "alive", within the timeouts.
    sb.kill_node(1).await.expect("kill node1");
    for kind in [PingType::Select, PingType::Connect, PingType::Insert] {
        match m.ping(kind).await {
            PingOutcome::Failed(
                FailureKind::Refused | FailureKind::Reset | FailureKind::Timeout,
            ) => {}
            other => panic!("{kind:?} after SIGKILL: {other:?}"),
        }
    }
    assert!(m.replica_status().await.is_err());
    // The replicas notice: their IO threads stop receiving.
    let mut io = IoThread::Yes;
    for _ in 0..100 {
        io = r2
            .replica_status()
            .await
            .expect("status")
            .expect("replica")
            .io_thread;
        if io != IoThread::Yes {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(io, IoThread::Connecting);
    sb.down().await.expect("down");
}
