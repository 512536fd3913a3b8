//! Clients follow the master through HAProxy: real MariaDB servers, agents answering
//! `/master` and `/replica`, three manager processes and Debian's `haproxy` routing by those
//! checks. A writer keeps one address (HAProxy's write frontend) while the master is killed
//! (then switched over): its writes move to the new master, and the old master acknowledges
//! no write through HAProxy after the new one took one.
//! IP ranges 127.0.236.0/24 and 127.0.237.0/24, directories under /tmp/rmha-engine/.
mod failover_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use failover_support::*;
use raftmha::manager::haproxy::{ProxyWriter, acks_by_old_after_new};
use raftmha::manager::testbed::{ROUTE_PORT, Testbed, TestbedOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` on node `i`'s agent: (status, body).
async fn check(tb: &Testbed, i: usize, path: &str) -> (u16, String) {
    let ip = tb.sandbox.node(i).expect("node").ip;
    let mut s = tokio::net::TcpStream::connect((ip, ROUTE_PORT))
        .await
        .expect("connect to the agent's routing port");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// Waits until node `i` answers `path` with `status` (bounded).
async fn wait_check(tb: &Testbed, i: usize, path: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (got, body) = check(tb, i, path).await;
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node{i} {path}: {got} {body}, expected {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn setup(name: &str, subnet: u8) -> (Arc<Testbed>, ProxyWriter, [u32; 3]) {
    let opts = TestbedOptions {
        haproxy: true,
        ..TestbedOptions::default()
    };
    let tb = Arc::new(testbed(name, subnet, &opts).await);
    tb.create_app_table("test", "w").await.expect("table");
    let ids = [
        tb.server_id(1).await.expect("id"),
        tb.server_id(2).await.expect("id"),
        tb.server_id(3).await.expect("id"),
    ];
    // The agents' own view, as HAProxy polls it.
    wait_check(&tb, 1, "/master", 200).await;
    for i in [2, 3] {
        wait_check(&tb, i, "/master", 503).await;
        wait_check(&tb, i, "/replica", 200).await;
        wait_check(&tb, i, "/replica?lag=30", 200).await;
    }
    wait_check(&tb, 1, "/replica", 503).await;
    assert_eq!(check(&tb, 2, "/replica?lag=soon").await.0, 400);
    assert_eq!(check(&tb, 2, "/health").await.0, 200);

    let writer = ProxyWriter::start(Testbed::app_opts(&tb.write_addr()).expect("opts"), "test.w");
    writer
        .wait_more(50, Duration::from_secs(30))
        .await
        .expect("writes through HAProxy");
    assert!(
        writer.acks().iter().all(|a| a.server_id == ids[0]),
        "before any change every write lands on node1"
    );
    (tb, writer, ids)
}

/// The writes after the change: they moved to `new`, and `old` took none after `new` did.
async fn assert_followed(
    tb: &Arc<Testbed>,
    writer: ProxyWriter,
    ids: [u32; 3],
    new: usize,
    since: Instant,
) {
    writer
        .wait_more(30, Duration::from_secs(30))
        .await
        .expect("writes after the change");
    let first = writer
        .first_ack_by(ids[new - 1], since)
        .expect("the new master acknowledged writes through HAProxy");
    let acks = writer.stop().await;
    let stray = acks_by_old_after_new(&acks, ids[0]);
    assert!(
        stray.is_empty(),
        "node1 acknowledged writes through HAProxy after node{new} did: {stray:?}"
    );
    assert!(
        acks.iter()
            .filter(|a| a.at > first.at)
            .all(|a| a.server_id == ids[new - 1]),
        "every write after the new master's first one landed on it"
    );
    let acked = acks.iter().map(|a| a.id).collect();
    let other = if new == 2 { 3 } else { 2 };
    assert_all_acked_on(tb, new, &[other], &acked).await;
    // HAProxy's write frontend, asked afresh, lands on the new master.
    tb.wait_routed(new, Duration::from_secs(5))
        .await
        .expect("routed to the new master");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_through_haproxy_follow_a_failover_of_a_killed_master() {
    let (tb, writer, ids) = setup("haproxy_kill", 236).await;
    let killed = Instant::now();
    tb.sandbox.kill_node(1).await.expect("kill node1");
    let master = wait_failover(&tb).await;
    let new = Testbed::index_of(&master).expect("nodeK");
    wait_check(&tb, new, "/master", 200).await;
    wait_check(&tb, 1, "/master", 503).await;
    let other = if new == 2 { 3 } else { 2 };
    wait_check(&tb, other, "/replica", 200).await;
    wait_check(&tb, other, "/master", 503).await;
    assert_followed(&tb, writer, ids, new, killed).await;
    if let Ok(tb) = Arc::try_unwrap(tb) {
        tb.down().await.expect("down");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_through_haproxy_follow_a_switchover() {
    let (tb, writer, ids) = setup("haproxy_switch", 237).await;
    let asked = Instant::now();
    let tb2 = tb.clone();
    let o = tokio::task::spawn_blocking(move || {
        tb2.managers.cli(
            &[1, 2, 3],
            &[
                "switch",
                "--cluster",
                "app1",
                "--new-master",
                "node2",
                "--orig-master-is-new-slave",
                "--yes",
            ],
        )
    })
    .await
    .expect("cli thread");
    assert_eq!(
        o.status.code(),
        Some(0),
        "switch: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    wait_check(&tb, 2, "/master", 200).await;
    // The old master is now a replica of the new one: never a write target again.
    wait_check(&tb, 1, "/master", 503).await;
    wait_check(&tb, 1, "/replica", 200).await;
    wait_check(&tb, 3, "/replica", 200).await;
    assert_followed(&tb, writer, ids, 2, asked).await;
    if let Ok(tb) = Arc::try_unwrap(tb) {
        tb.down().await.expect("down");
    }
}
