//! Measurement, not a pass/fail test (run with `--release -- --ignored --nocapture`): over
//! `RAFTMHA_BENCH_RUNS` (default 5) fresh deployments each,
//! - E1 with the lease on: SIGKILL of the master → the first write the new master
//!   acknowledges (the agent confirms "not running" at once: fencing must not slow this);
//! - E5: the master cut off by iptables from the managers and the replicas → the first write
//!   the new master acknowledges (detection, replica confirmation, waiting out the lease).
//!
//! Prints p50/max. IP ranges 127.0.196.0/24 and 127.0.197.0/24, directories under
//! /tmp/rmha-fence/.
mod failover_support;
mod fencing_support;

use std::time::{Duration, Instant};

use failover_support::{Writer, wait_failover, wait_writes};
use fencing_support::*;
use raftmha::manager::testbed::Testbed;

fn runs() -> usize {
    std::env::var("RAFTMHA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

fn summary(name: &str, mut ms: Vec<u128>) {
    ms.sort_unstable();
    println!(
        "{name}: runs={} p50={} ms max={} ms all={ms:?}",
        ms.len(),
        ms[(ms.len() - 1) / 2],
        ms[ms.len() - 1]
    );
}

/// From `t0` until a node other than node1 first acknowledged a write of `w`.
async fn until_new_master_writes(w: &Writer, t0: Instant) -> u128 {
    loop {
        let first = w
            .first_ack
            .lock()
            .expect("lock")
            .iter()
            .find(|(node, _)| **node != 1)
            .map(|(_, at)| *at);
        if let Some(at) = first {
            return at.saturating_duration_since(t0).as_millis();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no write after the fault"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run with --ignored"]
async fn bench_e1_kill_with_the_lease_on() {
    let mut ms = Vec::new();
    for i in 0..runs() {
        let (tb, faults) = fenced_testbed("bench_e1_lease", 196, false).await;
        let w = Writer::start(tb.clone(), "test.w");
        wait_writes(&w, 100).await;
        let t0 = Instant::now();
        tb.sandbox.kill_node(1).await.expect("kill");
        let t = until_new_master_writes(&w, t0).await;
        println!("E1 run {i}: {t} ms");
        ms.push(t);
        wait_failover(&tb).await;
        w.stop().await;
        down(tb, faults).await;
    }
    summary("E1 kill -9 -> new master accepts writes (lease on)", ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run with --ignored"]
async fn bench_e5_partition_to_new_master_writes() {
    let mut ms = Vec::new();
    for i in 0..runs() {
        let (tb, faults) = fenced_testbed("bench_e5", 197, false).await;
        let w = Writer::start(tb.clone(), "test.w");
        wait_writes(&w, 100).await;
        let t0 = Instant::now();
        cut_managers_from(&tb, &faults, 1, &[1, 2, 3]);
        cut_replicas_from(&tb, &faults, 1);
        let t = until_new_master_writes(&w, t0).await;
        let master = wait_failover(&tb).await;
        assert_ne!(Testbed::index_of(&master), Some(1));
        println!(
            "E5 run {i}: {t} ms (fence: {})",
            fence_step_result(&tb).await
        );
        ms.push(t);
        w.stop().await;
        down(tb, faults).await;
    }
    summary("E5 partition -> new master accepts writes", ms);
}
