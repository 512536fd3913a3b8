//! `raftmha history` and the top-level `pause|resume|ack --cluster C` against three real
//! manager processes.
use std::path::Path;

use raftmha::manager::local::{LocalManagers, stderr, stdout};

const BIN: &str = env!("CARGO_BIN_EXE_raftmha");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_ack_show_up_in_the_history() {
    let dir = Path::new("/tmp/rmha-operator/operator_history");
    let mut h = LocalManagers::new(Path::new(BIN), dir, 152, 3);
    h.start_all();
    h.wait_leader(&[1, 2, 3]).await;
    let file = dir.join("app1.toml");
    let app1 = include_str!("../config/app1.toml").replace("127.0.31.", "127.0.152.");
    std::fs::write(&file, app1).expect("write");
    let ok = |args: &[&str]| {
        let o = h.cli(&[1, 2, 3], args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    ok(&["cluster", "add", "--file", file.to_str().expect("utf8")]);
    ok(&["pause", "--cluster", "app1", "--reason", "kernel upgrade"]);
    let (state, _) = h.client(3).read_state().await.expect("read");
    assert!(state.clusters["app1"].paused, "top-level pause took effect");
    ok(&["resume", "--cluster", "app1"]);

    // Nothing to acknowledge yet: the state machine's refusal reaches the operator (exit 1).
    let o = h.cli(&[1, 2, 3], &["ack", "--cluster", "app1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no failover to acknowledge"),
        "{}",
        stderr(&o)
    );

    let table = ok(&["history", "--cluster", "app1"]);
    assert!(table.contains("cluster registered"), "{table}");
    assert!(table.contains("failover paused: kernel upgrade"), "{table}");
    assert!(table.contains("failover resumed"), "{table}");
    assert!(table.contains("no failovers recorded"), "{table}");

    let json = ok(&["history", "--cluster", "app1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["cluster"], "app1");
    assert_eq!(v["paused"], false);
    assert_eq!(v["events"].as_array().map(Vec::len), Some(3), "{json}");

    let o = h.cli(&[1, 2, 3], &["history", "--cluster", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no cluster named \"nope\""),
        "{}",
        stderr(&o)
    );
}
