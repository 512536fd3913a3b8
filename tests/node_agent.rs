//! The node agent over real gRPC against real MariaDB: authentication, path policy, size limit,
//! fencing, and a failover's file work done entirely through agents (save the master's tail,
//! generate the diff on the latest replica, upload and apply on the lagging one).
mod node_support;

use std::path::PathBuf;
use std::time::Duration;

use node_support::*;
use raftmha::sandbox::{Sandbox, SandboxGuard};
use raftmha_node::agent::AgentConfig;
use raftmha_node::agent::client::{AgentClient, ClientError};
use raftmha_node::agent::config::DbConfig;
use raftmha_node::proto::{ApplyDiffChunk, RelayPositionRequest};
use tonic::Code;

const TOKEN: &str = "correct-horse-battery-staple-42";

fn agent_config(
    sb: &Sandbox,
    node: usize,
    listen: &str,
    work: &std::path::Path,
    allow_stop: bool,
) -> AgentConfig {
    let n = sb.node(node).unwrap();
    let token_file = work.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let pw_file = work.join(format!("db{node}.pw"));
    std::fs::write(&pw_file, &sb.credentials().admin_password).unwrap();
    AgentConfig {
        listen: listen.parse().unwrap(),
        binlog_dir: n.datadir.clone(),
        binlog_base: "binlog".into(),
        relay_dir: n.datadir.clone(),
        relay_base: "relay".into(),
        workdir: work.join(format!("agent{node}")),
        token_file: Some(token_file),
        token_env: None,
        max_request_bytes: 4 << 20,
        max_upload_bytes: 1 << 30,
        call_timeout_secs: 120,
        mysqld_pid_file: Some(n.pid_file.clone()),
        allow_stop_mysqld: allow_stop,
        verify_crc: true,
        db: Some(DbConfig {
            host: n.ip.to_string(),
            port: n.port,
            socket: None,
            user: sb.credentials().admin_user.clone(),
            password_file: Some(pw_file),
            password_env: None,
            client_bindir: None,
        }),
        http_listen: None,
        tls: None,
    }
}

async fn start_agent(cfg: AgentConfig) -> (String, tokio::sync::oneshot::Sender<()>) {
    cfg.validate().unwrap();
    let endpoint = format!("http://{}", cfg.listen);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(raftmha_node::agent::serve(cfg, async {
        let _ = rx.await;
    }));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(endpoint.trim_start_matches("http://"))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (endpoint, tx)
}

fn code(e: ClientError) -> Code {
    match e {
        ClientError::Status(s) => s.code(),
        other => panic!("expected a gRPC status, got {other}"),
    }
}

#[tokio::test]
async fn failover_file_work_through_agents_with_auth_and_limits() {
    let sb = SandboxGuard(Sandbox::up(spec("agent", "127.0.34.10")).await.unwrap());
    let work = workdir("agent");
    let (e1, _s1) = start_agent(agent_config(&sb, 1, "127.0.34.101:7401", &work, true)).await;
    let (e2, _s2) = start_agent(agent_config(&sb, 2, "127.0.34.102:7402", &work, false)).await;
    let (e3, _s3) = start_agent(agent_config(&sb, 3, "127.0.34.103:7403", &work, false)).await;
    let t = Duration::from_secs(60);
    let a1 = AgentClient::connect(&e1, TOKEN, t).await.unwrap();
    let a2 = AgentClient::connect(&e2, TOKEN, t).await.unwrap();
    let a3 = AgentClient::connect(&e3, TOKEN, t).await.unwrap();

    // Authentication.
    let wrong = AgentClient::connect(&e1, "wrong-token-wrong-token", t)
        .await
        .unwrap();
    assert_eq!(
        code(wrong.health().await.unwrap_err()),
        Code::Unauthenticated
    );
    let h = a1.health().await.unwrap();
    assert!(h.mysqld_running && h.mysqld_pid > 0, "{h:?}");
    assert!(h.binlog_dir_readable && h.relay_dir_readable);
    assert!(h.server_version.contains("MariaDB"), "{h:?}");

    // Path policy.
    let out = work.join("x.binlog");
    for bad in [
        "../../../../etc/passwd",
        "/etc/passwd",
        "..",
        "binlog.index/../../x",
    ] {
        let e = a1.save_binary_logs(bad, 4, false, &out).await.unwrap_err();
        assert_eq!(code(e), Code::PermissionDenied, "{bad}");
    }

    // Oversize request: one 5 MiB message against a 4 MiB limit.
    let mut raw = raftmha_node::proto::node_agent_client::NodeAgentClient::connect(e2.clone())
        .await
        .unwrap();
    let big = ApplyDiffChunk {
        file_name: "big.binlog".into(),
        data: vec![0u8; 5 << 20],
        ..Default::default()
    };
    let mut req = tonic::Request::new(tokio_stream::iter(vec![big]));
    req.metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let status = raw.apply_diff(req).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");

    // Fencing is refused where not enabled.
    assert_eq!(
        code(a2.stop_mysqld(true).await.unwrap_err()),
        Code::PermissionDenied
    );

    // The seed scenario, through agents only.
    create_table(&sb).await;
    write_batch(&sb, 1, 20).await;
    sb.wait_replicas_caught_up(t).await.unwrap();
    sql(&sb, 2, "STOP SLAVE IO_THREAD").await;
    write_batch(&sb, 1000, 20).await;
    wait_io_read(&sb, 3, 1).await;
    sql(&sb, 3, "STOP SLAVE IO_THREAD").await;
    write_batch(&sb, 2000, 10).await;
    let master_sum = checksum(&sb, 1, "app.t").await;
    let stopped = a1.stop_mysqld(true).await.unwrap(); // fence the master
    assert!(stopped.was_running && stopped.stopped, "{stopped:?}");
    assert!(!a1.health().await.unwrap().mysqld_running);

    let b_read = read_coord(&sb, 2).await;
    let c_read = read_coord(&sb, 3).await;
    for node in [2, 3] {
        wait_sql_caught_up(&sb, node).await;
        sql(&sb, node, "STOP SLAVE").await;
    }
    let tail = work.join("tail.binlog");
    let d = a1
        .save_binary_logs(&c_read.file, c_read.pos, false, &tail)
        .await
        .unwrap();
    assert!(!d.no_events && d.bytes > 0);
    let pos = RelayPositionRequest {
        target_mlf: b_read.file.clone(),
        target_rmlp: b_read.pos,
        latest_mlf: c_read.file.clone(),
        latest_rmlp: c_read.pos,
    };
    let found = a3.find_relay_position(pos.clone()).await.unwrap();
    assert!(!found.target_has_all && found.offset > 0, "{found:?}");
    let diff = work.join("diff.binlog");
    let d = a3.generate_diff(pos, &diff).await.unwrap();
    assert!(!d.no_events);

    let files: Vec<PathBuf> = vec![diff, tail.clone()];
    let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    let r = a2.apply_diff(&refs).await.unwrap();
    assert!(r.groups_applied > 0 && r.incomplete.is_empty(), "{r:?}");
    let r3 = a3.apply_diff(&[tail.as_path()]).await.unwrap();
    assert!(r3.groups_applied > 0, "{r3:?}");
    assert_eq!(checksum(&sb, 2, "app.t").await, master_sum);
    assert_eq!(checksum(&sb, 3, "app.t").await, master_sum);
    // Again: nothing changes.
    let again = a2.apply_diff(&refs).await.unwrap();
    assert_eq!(again.groups_applied, 0);
    sb.down().await.unwrap();
}
