//! Three real managers with `[tls]` and mutual TLS: they form a cluster over TLS, the CLI
//! reaches them with the CA and a client certificate, and is refused without them.
mod manager_support;
mod tls_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use manager_support::{harness, stderr, stdout, wait_for};

/// `ca.{crt,key}` and `mgr.{crt,key}` valid for the three managers' addresses, `cli.{crt,key}`.
fn make_certs(dir: &Path, subnet: u8) {
    tls_support::make_ca(dir, "ca");
    let mgr = format!("IP:127.0.{subnet}.1,IP:127.0.{subnet}.2,IP:127.0.{subnet}.3");
    tls_support::make_cert(dir, "ca", "mgr", &mgr);
    tls_support::make_cert(dir, "ca", "cli", "DNS:operator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_form_a_cluster_over_mutual_tls_and_refuse_plain_clients() {
    let subnet = 59;
    let mut h = harness("tls", subnet, 3);
    make_certs(&h.dir, subnet);
    h.extra_config = "[tls]\ncert_file = \"mgr.crt\"\nkey_file = \"mgr.key\"\nca_file = \"ca.crt\"\nrequire_client_cert = true\n".into();
    for id in 1..=3 {
        h.write_config(id);
    }
    h.start_all();

    let dir = h.dir.clone();
    let with_tls = |args: &[&str], cert: bool| {
        let mut cmd = Command::new(manager_support::BIN);
        cmd.args(args)
            .env("RAFTMHA_MANAGERS", h.managers_env(&[1, 2, 3]))
            .env("RAFTMHA_TOKEN_FILE", dir.join("token"))
            .env("RAFTMHA_TLS_CA", dir.join("ca.crt"));
        if cert {
            cmd.env("RAFTMHA_TLS_CERT", dir.join("cli.crt"))
                .env("RAFTMHA_TLS_KEY", dir.join("cli.key"));
        }
        cmd.output().expect("run cli")
    };

    // The managers can only elect a leader if their Raft traffic works over TLS.
    let status = wait_for("a leader over TLS", Duration::from_secs(30), || {
        let out = with_tls(&["status", "--json"], true);
        async move {
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            doc["leader"].as_u64().map(|_| doc)
        }
    })
    .await;
    assert_eq!(
        status["managers"].as_array().map(|m| m.len()),
        Some(3),
        "{status}"
    );

    // A write through any manager (forwarded to the leader over TLS) commits.
    let app1 = dir.join("app1.toml");
    std::fs::write(&app1, include_str!("../config/app1.toml")).unwrap();
    let out = with_tls(&["cluster", "add", "--file", app1.to_str().unwrap()], true);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&with_tls(&["cluster", "list"], true)).contains("app1"));

    // Plain HTTP/2 to a TLS listener, and TLS without a client certificate, are refused.
    let plain = h.cli(&[1, 2, 3], &["status", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap_or_default();
    assert!(
        doc["leader"].is_null(),
        "plain client got an answer: {}",
        stdout(&plain)
    );
    let anonymous = with_tls(&["cluster", "list"], false);
    assert!(
        !anonymous.status.success(),
        "client without a certificate was served: {}",
        stdout(&anonymous)
    );
}

#[test]
fn a_tls_section_with_a_missing_file_is_refused_naming_the_key() {
    let h = harness("tls_bad", 59, 1);
    let mut h = h;
    h.extra_config =
        "[tls]\ncert_file = \"nope.crt\"\nkey_file = \"nope.key\"\nca_file = \"nope-ca.crt\"\n"
            .into();
    h.write_config(1);
    let out = Command::new(manager_support::BIN)
        .args(["manager", "--config"])
        .arg(h.config_path(1))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`tls`") && err.contains("nope.crt"), "{err}");
}
