//! An encrypted binlog or relay log read through a real agent over gRPC: the status must say
//! so (message and `x-raftmha-binlog-encrypted` metadata), so a manager can tell it from
//! corruption and fall back to what needs no file reading.

use std::path::{Path, PathBuf};
use std::time::Duration;

use raftmha_node::agent::AgentConfig;
use raftmha_node::agent::client::{AgentClient, ClientError};
use raftmha_node::proto::RelayPositionRequest;

const TOKEN: &str = "encrypted-binlog-test-token-0016";

fn encrypted_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/mariadb/mariadb-encrypted.000001")
}

fn config(dir: &Path, listen: std::net::SocketAddr) -> AgentConfig {
    let token_file = dir.join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    AgentConfig {
        listen,
        binlog_dir: dir.to_path_buf(),
        binlog_base: "binlog".into(),
        relay_dir: dir.to_path_buf(),
        relay_base: "relay".into(),
        workdir: dir.join("work"),
        token_file: Some(token_file),
        token_env: None,
        max_request_bytes: 4 << 20,
        max_upload_bytes: 1 << 30,
        call_timeout_secs: 60,
        mysqld_pid_file: None,
        allow_stop_mysqld: false,
        verify_crc: true,
        db: None,
        tls: None,
        http_listen: None,
    }
}

fn assert_encrypted(e: &ClientError, file: &str) {
    assert!(e.binlog_encrypted(), "not recognised as encrypted: {e}");
    let ClientError::Status(s) = e else {
        panic!("expected a status: {e}")
    };
    assert_eq!(s.code(), tonic::Code::FailedPrecondition);
    assert!(s.message().contains(file), "{}", s.message());
    assert!(
        s.message()
            .contains("binlog is encrypted (encrypt_binlog=ON): cannot read past offset 256"),
        "{}",
        s.message()
    );
}

#[tokio::test]
async fn encrypted_logs_give_a_recognisable_status() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(encrypted_file(), dir.path().join("binlog.000001")).unwrap();
    std::fs::copy(encrypted_file(), dir.path().join("relay.000001")).unwrap();
    // An ephemeral loopback port: no fixed address shared with other tests.
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = config(dir.path(), listen);
    cfg.validate().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(raftmha_node::agent::serve(cfg, async {
        let _ = rx.await;
    }));
    let mut client = None;
    for _ in 0..100 {
        match AgentClient::connect(&format!("http://{listen}"), TOKEN, Duration::from_secs(30))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let client = client.expect("agent listening");

    let out = dir.path().join("tail.binlog");
    let e = client
        .save_binary_logs("binlog.000001", 4, false, &out)
        .await
        .unwrap_err();
    assert_encrypted(&e, "binlog.000001");

    let req = RelayPositionRequest {
        target_mlf: "mysql-bin.000001".into(),
        target_rmlp: 4,
        ..Default::default()
    };
    let e = client.generate_diff(req.clone(), &out).await.unwrap_err();
    assert_encrypted(&e, "relay.000001");
    let e = client.find_relay_position(req).await.unwrap_err();
    assert_encrypted(&e, "relay.000001");

    // A corrupt (not encrypted) file is not taken for an encrypted one.
    let mut bytes = std::fs::read(encrypted_file()).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(dir.path().join("binlog.000002"), &bytes).unwrap();
    let e = client
        .save_binary_logs("binlog.000002", 4, false, &out)
        .await
        .unwrap_err();
    assert!(!e.binlog_encrypted(), "{e}");

    let _ = tx.send(());
    let _ = server.await;
}
