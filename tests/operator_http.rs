//! `/metrics` and `/health/*` served by three real manager processes: exactly one manager
//! answers 200 on `/health/leader`, and after it is killed a new leader takes over the 200;
//! after a real failover the manager that ran it shows check latencies and phase durations.
mod failover_support;

use std::path::Path;
use std::time::Duration;

use raftmha::manager::local::{LocalManagers, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_raftmha");
const SUBNET: u8 = 153;

fn http_addr(id: u64) -> String {
    format!("127.0.{SUBNET}.{id}:9100")
}

/// (status code, body) of one GET, or None when nothing answers.
async fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

async fn leaders_by_http(ids: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    for id in ids {
        if let Some((200, _)) = get(&http_addr(*id), "/health/leader").await {
            out.push(*id);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_follow_the_raft_leader() {
    let dir = Path::new("/tmp/rmha-operator/operator_http");
    let mut h = LocalManagers::new(Path::new(BIN), dir, SUBNET, 3);
    for id in 1..=3 {
        h.extra_config = format!("[http]\nlisten = \"{}\"\n", http_addr(id));
        h.write_config(id);
    }
    h.start_all();
    let leader = h.wait_leader(&[1, 2, 3]).await;

    wait_for(
        "exactly the leader on /health/leader",
        Duration::from_secs(20),
        || async {
            let l = leaders_by_http(&[1, 2, 3]).await;
            (l == vec![leader]).then_some(())
        },
    )
    .await;
    for id in 1..=3 {
        let (status, body) = get(&http_addr(id), "/health/ready").await.expect("answers");
        assert_eq!(status, 200, "manager {id}: {body}");
        assert_eq!(
            get(&http_addr(id), "/health/live").await.map(|r| r.0),
            Some(200)
        );
    }
    assert_eq!(get(&http_addr(1), "/nope").await.map(|r| r.0), Some(404));

    let app1 = include_str!("../config/app1.toml").replace("127.0.31.", "127.0.153.");
    let spec = raftmha::state::cluster_file::ClusterSpec::parse(&app1).expect("app1");
    h.client(leader)
        .write(&raftmha::state::Command::RegisterCluster {
            spec: Box::new(spec),
        })
        .await
        .expect("register");
    let follower = [1, 2, 3]
        .into_iter()
        .find(|i| *i != leader)
        .expect("follower");
    let text = wait_for(
        "the follower's metrics to show the cluster",
        Duration::from_secs(20),
        || async {
            let (_, body) = get(&http_addr(follower), "/metrics").await?;
            body.lines()
                .any(|l| l == "raftmha_clusters 1")
                .then_some(body)
        },
    )
    .await;
    assert!(
        text.contains("raftmha_raft_role{role=\"follower\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(&format!("raftmha_raft_leader_id {leader}")),
        "{text}"
    );
    assert!(
        text.contains("raftmha_cluster_paused{cluster=\"app1\"} 0"),
        "{text}"
    );
    let (_, leader_text) = get(&http_addr(leader), "/metrics")
        .await
        .expect("leader metrics");
    assert!(
        leader_text.contains("raftmha_raft_role{role=\"leader\"} 1"),
        "{leader_text}"
    );

    h.kill(leader);
    let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != leader).collect();
    let new_leader = h.wait_leader(&survivors).await;
    wait_for(
        "the new leader on /health/leader",
        Duration::from_secs(20),
        || async { (leaders_by_http(&survivors).await == vec![new_leader]).then_some(()) },
    )
    .await;
    assert!(
        get(&http_addr(leader), "/health/live").await.is_none(),
        "the killed manager is gone"
    );
}

#[test]
fn a_bad_http_address_is_refused_at_start_naming_the_key() {
    let dir = Path::new("/tmp/rmha-operator/operator_http_bad");
    let mut h = LocalManagers::new(Path::new(BIN), dir, SUBNET + 1, 1);
    h.extra_config = "[http]\nlisten = \"not-an-address\"\n".into();
    h.write_config(1);
    h.start(1);
    let status = h.wait_exit(1, Duration::from_secs(20)).expect("exits");
    assert!(!status.success());
    assert!(h.log(1).contains("http.listen"), "{}", h.log(1));
}

/// 127.0.225.0/24, /tmp/rmha-bench/operator_http_failover.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_real_failover_shows_phase_durations_on_metrics() {
    use raftmha::manager::testbed::{Testbed, TestbedOptions};
    const PORT: u16 = 9100;
    let opts = TestbedOptions {
        http_port: Some(PORT),
        ..TestbedOptions::default()
    };
    let tb = Testbed::up(
        Path::new(BIN),
        Path::new("/tmp/rmha-bench/operator_http_failover"),
        225,
        &opts,
    )
    .await
    .expect("testbed up");
    let metrics_of = |id: u64| format!("127.0.225.{id}:{PORT}");
    // Every manager monitors the master: each shows its check latency.
    let checks = "raftmha_check_duration_seconds_count{cluster=\"app1\",server=\"node1\"}";
    for id in 1..=3 {
        wait_for(
            "a manager's check latency on /metrics",
            Duration::from_secs(20),
            || async {
                let (_, body) = get(&metrics_of(id), "/metrics").await?;
                body.lines()
                    .any(|l| l.starts_with(checks) && !l.ends_with(" 0"))
                    .then_some(())
            },
        )
        .await;
    }
    tb.sandbox.kill_node(1).await.expect("kill node1");
    failover_support::wait_failover(&tb).await;
    let phase = |p: &str| {
        format!("raftmha_failover_phase_duration_seconds_count{{cluster=\"app1\",phase=\"{p}\"}} 1")
    };
    let text = wait_for(
        "one manager's phase durations on /metrics",
        Duration::from_secs(20),
        || async {
            for id in 1..=3 {
                if let Some((_, body)) = get(&metrics_of(id), "/metrics").await
                    && body.lines().any(|l| l == phase("total"))
                {
                    return Some(body);
                }
            }
            None
        },
    )
    .await;
    for p in ["fence", "plan", "master_recovery", "total"] {
        assert!(text.lines().any(|l| l == phase(p)), "{p}: {text}");
    }
    let total: f64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "raftmha_failover_phase_duration_seconds_sum{cluster=\"app1\",phase=\"total\"} ",
            )
        })
        .and_then(|v| v.parse().ok())
        .expect("a total");
    assert!(total > 0.0, "{text}");
    tb.down().await.expect("down");
}
