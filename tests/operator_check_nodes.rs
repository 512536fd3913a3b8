//! `raftmha check-nodes` against real agents (raftmha-node's gRPC service on real sockets):
//! a healthy agent, one that cannot read its binlog dir, an address where nothing listens,
//! and a wrong token.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use raftmha_node::agent::config::AgentConfig;

const BIN: &str = env!("CARGO_BIN_EXE_raftmha");
const TOKEN: &str = "check-nodes-test-token";

fn agent_config(dir: &Path, listen: &str, binlog_dir: PathBuf) -> AgentConfig {
    let text = format!(
        "listen = \"{listen}\"\nbinlog_dir = \"{}\"\nrelay_dir = \"{}\"\nworkdir = \"{}\"\ntoken_file = \"{}\"\n",
        binlog_dir.display(),
        dir.display(),
        dir.join("work").display(),
        dir.join("token").display()
    );
    let cfg: AgentConfig = toml::from_str(&text).expect("agent config");
    cfg.validate().expect("valid");
    cfg
}

async fn start(cfg: AgentConfig) -> tokio::sync::oneshot::Sender<()> {
    let addr = cfg.listen;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(raftmha_node::agent::serve(cfg, async {
        let _ = rx.await;
    }));
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tx
}

fn check_nodes(file: &Path, token_file: &Path) -> (Option<i32>, serde_json::Value) {
    let o = Command::new(BIN)
        .args(["check-nodes", "--json", "--file"])
        .arg(file)
        .arg("--agent-token-file")
        .arg(token_file)
        .output()
        .expect("run check-nodes");
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("json ({e}): {}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code(), v)
}

fn level(v: &serde_json::Value, check: &str, server: &str) -> String {
    let rank = |l: &str| ["OK", "WARN", "FAIL"].iter().position(|x| *x == l);
    let mut worst = String::new();
    for f in v["findings"].as_array().expect("findings") {
        if f["check"] == check && f["server"] == server {
            let l = f["level"].as_str().unwrap_or("").to_string();
            if rank(&l) > rank(&worst) {
                worst = l;
            }
        }
    }
    worst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_are_checked_for_reachability_auth_and_directories() {
    let dir = Path::new("/tmp/rmha-operator/operator_check_nodes");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("binlogs")).expect("dirs");
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).expect("token");
    std::fs::write(dir.join("wrong-token"), "not-the-token\n").expect("token");
    let _a = start(agent_config(dir, "127.0.157.1:7600", dir.join("binlogs"))).await;
    let _b = start(agent_config(
        dir,
        "127.0.157.2:7600",
        dir.join("no-such-dir"),
    ))
    .await;
    let file = dir.join("c.toml");
    let mut text = String::from(
        "name = \"c\"\n[users]\nadmin_user = \"a\"\nadmin_password_env = \"X\"\nrepl_user = \"r\"\nrepl_password_env = \"Y\"\nagent_token_env = \"RMHA_CHECK_NODES_TOKEN\"\n",
    );
    for (name, n) in [("good", 1), ("nodir", 2), ("down", 3)] {
        text.push_str(&format!(
            "[[server]]\nname = \"{name}\"\nhost = \"127.0.157.{n}\"\nagent = \"127.0.157.{n}:7600\"\n"
        ));
    }
    text.push_str("[[server]]\nname = \"noagent\"\nhost = \"127.0.157.4\"\n");
    std::fs::write(&file, text).expect("cluster file");

    let (code, v) = check_nodes(&file, &dir.join("token"));
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(level(&v, "agent reachable", "good"), "OK", "{v:#}");
    assert_eq!(level(&v, "agent authenticated", "good"), "OK");
    assert_eq!(level(&v, "directories", "good"), "OK");
    assert_eq!(level(&v, "agent version", "good"), "OK");
    assert_eq!(level(&v, "directories", "nodir"), "FAIL");
    assert_eq!(level(&v, "agent reachable", "down"), "FAIL");
    assert_eq!(level(&v, "agent", "noagent"), "WARN");

    let (code, v) = check_nodes(&file, &dir.join("wrong-token"));
    assert_eq!(code, Some(1));
    assert_eq!(level(&v, "agent authenticated", "good"), "FAIL", "{v:#}");
}
