//! Measurement, not a pass/fail test (run with `--ignored --no-capture`): SIGKILL of the
//! master → the first write the writer gets acknowledged by the new master, over
//! `RAFTMHA_BENCH_RUNS` (default 10) fresh deployments each, for E1 (kill under a running
//! writer) and E2 (the seed scenario: relay-log diff + saved tail). Prints p50/p99/max.
//! IP ranges 127.0.138.0/24 and 127.0.139.0/24, directories under /tmp/rmha-engine/.
mod failover_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use failover_support::*;
use raftmha::manager::testbed::TestbedOptions;

fn runs() -> usize {
    std::env::var("RAFTMHA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

fn summary(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    println!(
        "{name}: runs={} p50={:.0} ms p99={:.0} ms min={:.0} ms max={:.0} ms all={ms:.0?}",
        ms.len(),
        pct(0.50),
        pct(0.99),
        ms[0],
        ms[ms.len() - 1]
    );
}

/// Kills node1 and returns the time until another node first acknowledged a write of the
/// writer. (Counting writes would mislead: a write node1 acknowledged just before it died may
/// reach the writer task after the kill.)
async fn kill_to_write(tb: &Arc<raftmha::manager::testbed::Testbed>, w: &Writer) -> f64 {
    let kill_ms = raftmha::api::server::now_ms();
    let t0 = Instant::now();
    tb.sandbox.kill_node(1).await.expect("kill");
    let acked_on_new_master = loop {
        let first = w
            .first_ack
            .lock()
            .expect("lock")
            .iter()
            .find(|(node, _)| **node != 1)
            .map(|(_, at)| *at);
        if let Some(at) = first {
            break at;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no write after the kill"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    if let Some(f) = tb.cluster().await.and_then(|c| c.failovers.back().cloned()) {
        let promoted = f
            .steps
            .iter()
            .find(|s| s.detail.starts_with("record "))
            .map(|s| s.at_ms.saturating_sub(kill_ms));
        println!(
            "  breakdown: failover started +{} ms, promotion journaled +{promoted:?} ms",
            f.started_at_ms.saturating_sub(kill_ms)
        );
    }
    acked_on_new_master.duration_since(t0).as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run with --ignored"]
async fn bench_e1_kill_to_new_master_writes() {
    let mut ms = Vec::new();
    for i in 0..runs() {
        let tb = Arc::new(testbed("bench_e1", 138, &TestbedOptions::default()).await);
        sql(&tb, 1, "CREATE DATABASE test").await;
        sql(&tb, 1, "CREATE TABLE test.w (id BIGINT PRIMARY KEY)").await;
        let w = Writer::start(tb.clone(), "test.w");
        wait_writes(&w, 100).await;
        let t = kill_to_write(&tb, &w).await;
        println!("E1 run {i}: {t:.0} ms");
        ms.push(t);
        wait_failover(&tb).await;
        let acked = w.stop().await;
        let c = tb.cluster().await.expect("state");
        let nm = raftmha::manager::testbed::Testbed::index_of(&c.master.expect("m")).expect("k");
        assert_all_acked_on(&tb, nm, &[if nm == 2 { 3 } else { 2 }], &acked).await;
        if let Ok(tb) = Arc::try_unwrap(tb) {
            tb.down().await.expect("down");
        }
    }
    summary("E1 kill -9 -> new master accepts writes", ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run with --ignored"]
async fn bench_e2_seed_kill_to_new_master_writes() {
    let mut ms = Vec::new();
    let opts = TestbedOptions {
        server_extra: [
            String::new(),
            "candidate_master = true".into(),
            String::new(),
        ],
        ..TestbedOptions::default()
    };
    for i in 0..runs() {
        let tb = Arc::new(testbed("bench_e2", 139, &opts).await);
        let before = seed_scenario(&tb).await;
        sql(&tb, 1, "CREATE TABLE test.w (id BIGINT PRIMARY KEY)").await;
        let w = Writer::start(tb.clone(), "test.w");
        wait_writes(&w, 20).await;
        let t = kill_to_write(&tb, &w).await;
        println!("E2 run {i}: {t:.0} ms");
        ms.push(t);
        wait_failover(&tb).await;
        w.stop().await;
        let expected: Vec<i32> = (1..=30).collect();
        assert_eq!(rows(&tb, 2).await, expected);
        assert_eq!(checksum(&tb, 2).await, before);
        if let Ok(tb) = Arc::try_unwrap(tb) {
            tb.down().await.expect("down");
        }
    }
    summary("E2 seed scenario kill -9 -> new master accepts writes", ms);
}
