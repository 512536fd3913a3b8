//! The node agent over TLS (rustls) with real certificates made by `openssl`: a client that
//! trusts the CA gets through, a plain-text client and a client trusting another CA do not,
//! and with `client_ca_file` set only clients presenting a certificate are served.
mod tls_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use raftmha_node::agent::AgentConfig;
use raftmha_node::agent::client::AgentClient;
use raftmha_node::tls::{ClientTls, ServerTls};
use tls_support::{make_ca, make_cert};

const TOKEN: &str = "tls-test-token-0123456789";

fn agent_config(dir: &Path, listen: &str, tls: Option<ServerTls>) -> AgentConfig {
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let toml = format!(
        "listen = \"{listen}\"\nbinlog_dir = \"{d}\"\nrelay_dir = \"{d}\"\nworkdir = \"{d}/work\"\ntoken_file = \"{d}/token\"\n",
        d = dir.display()
    );
    let path = dir.join(format!("agent-{}.toml", listen.replace([':', '.'], "_")));
    std::fs::write(&path, toml).unwrap();
    let mut cfg = AgentConfig::load(&path).unwrap();
    cfg.tls = tls;
    cfg
}

async fn start(cfg: AgentConfig) -> tokio::sync::oneshot::Sender<()> {
    let addr = cfg.listen;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(raftmha_node::agent::serve(cfg, async {
        let _ = rx.await;
    }));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tx
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join("rmha-tls-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn agent_serves_tls_only_to_clients_that_trust_its_ca() {
    let d = dir("server");
    make_ca(&d, "ca");
    make_ca(&d, "other-ca");
    make_cert(&d, "ca", "agent", "IP:127.0.39.10");
    let server = ServerTls {
        cert_file: d.join("agent.crt"),
        key_file: d.join("agent.key"),
        client_ca_file: None,
    };
    let _stop = start(agent_config(&d, "127.0.39.10:7450", Some(server))).await;
    let t = Duration::from_secs(5);
    let trusted = ClientTls {
        ca_file: d.join("ca.crt"),
        cert_file: None,
        key_file: None,
        domain: None,
    };
    let client = AgentClient::connect_with_tls("127.0.39.10:7450", TOKEN, t, Some(&trusted))
        .await
        .unwrap();
    assert!(!client.health().await.unwrap().agent_version.is_empty());

    // Plain HTTP/2 against a TLS listener: no answer.
    let plain = AgentClient::connect("http://127.0.39.10:7450", TOKEN, t).await;
    assert!(plain.is_err() || plain.unwrap().health().await.is_err());

    // A client trusting another CA refuses the agent's certificate.
    let wrong = ClientTls {
        ca_file: d.join("other-ca.crt"),
        cert_file: None,
        key_file: None,
        domain: None,
    };
    let refused = AgentClient::connect_with_tls("127.0.39.10:7450", TOKEN, t, Some(&wrong)).await;
    assert!(refused.is_err() || refused.unwrap().health().await.is_err());
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate() {
    let d = dir("mtls");
    make_ca(&d, "ca");
    make_cert(&d, "ca", "agent", "IP:127.0.39.11");
    make_cert(&d, "ca", "manager", "IP:127.0.39.1");
    let server = ServerTls {
        cert_file: d.join("agent.crt"),
        key_file: d.join("agent.key"),
        client_ca_file: Some(d.join("ca.crt")),
    };
    let _stop = start(agent_config(&d, "127.0.39.11:7451", Some(server))).await;
    let t = Duration::from_secs(5);
    let anonymous = ClientTls {
        ca_file: d.join("ca.crt"),
        cert_file: None,
        key_file: None,
        domain: None,
    };
    let refused =
        AgentClient::connect_with_tls("127.0.39.11:7451", TOKEN, t, Some(&anonymous)).await;
    assert!(refused.is_err() || refused.unwrap().health().await.is_err());
    let with_cert = ClientTls {
        ca_file: d.join("ca.crt"),
        cert_file: Some(d.join("manager.crt")),
        key_file: Some(d.join("manager.key")),
        domain: None,
    };
    let client = AgentClient::connect_with_tls("127.0.39.11:7451", TOKEN, t, Some(&with_cert))
        .await
        .unwrap();
    assert!(client.health().await.is_ok());
}

#[test]
fn unreadable_or_non_pem_files_name_the_file() {
    let d = dir("badfiles");
    std::fs::write(d.join("junk.crt"), "not a certificate").unwrap();
    let tls = ServerTls {
        cert_file: d.join("junk.crt"),
        key_file: d.join("missing.key"),
        client_ca_file: None,
    };
    let err = tls.load().unwrap_err().to_string();
    assert!(err.contains("junk.crt") && err.contains("no PEM"), "{err}");
    let client = ClientTls {
        ca_file: d.join("missing-ca.crt"),
        cert_file: None,
        key_file: None,
        domain: None,
    };
    let err = client.load().unwrap_err().to_string();
    assert!(err.contains("missing-ca.crt"), "{err}");
    std::fs::write(d.join("looks.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    let half = ClientTls {
        ca_file: d.join("looks.pem"),
        cert_file: Some(d.join("looks.pem")),
        key_file: None,
        domain: None,
    };
    assert!(half.load().unwrap_err().to_string().contains("go together"));
}
