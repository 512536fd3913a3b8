//! E3: the leader dies (really: `abort` at a named failpoint) in the middle of the seed
//! scenario's failover, and the next leader resumes it from the journal: no row missing,
//! none applied twice. Needs `--features failpoints`.
//! IP ranges 127.0.133.0/24 – 127.0.137.0/24, directories under /tmp/rmha-engine/.
mod failover_support;

use failover_support::*;
use raftmha::manager::testbed::TestbedOptions;

async fn leader_dies_at(point: &str, name: &str, subnet: u8) {
    let marker = std::path::Path::new("/tmp/rmha-engine").join(format!("{name}.fired"));
    let _ = std::fs::remove_file(&marker);
    // SAFETY: set before any thread of this test process reads the environment concurrently;
    // the manager processes inherit it. nextest runs each test in its own process.
    unsafe {
        std::env::set_var("RAFTMHA_FAILPOINT", point);
        std::env::set_var("RAFTMHA_FAILPOINT_MARKER", &marker);
    }
    let opts = TestbedOptions {
        server_extra: [
            String::new(),
            "candidate_master = true".into(),
            String::new(),
        ],
        ..TestbedOptions::default()
    };
    let tb = testbed(name, subnet, &opts).await;
    let before = seed_scenario(&tb).await;
    tb.sandbox.kill_node(1).await.expect("SIGKILL the master");
    let master = wait_failover(&tb).await;
    assert!(marker.exists(), "the failpoint {point} fired");
    assert_eq!(master, "node2");
    assert_seed_recovered(&tb, before).await;
    let c = tb.cluster().await.expect("state");
    assert_eq!(c.failovers.len(), 1, "resumed, not restarted");
    assert_eq!(c.epoch, 1, "exactly one promotion");
    tb.down().await.expect("down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e3_leader_dies_after_fencing() {
    leader_dies_at("after-fencing", "e3_fencing", 133).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e3_leader_dies_after_the_tail_is_saved() {
    leader_dies_at("after-tail-saved", "e3_tail", 134).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e3_leader_dies_during_the_apply() {
    // The relay-log diff was applied on the new master but its result never journaled:
    // the successor applies it again, which must not apply any transaction twice.
    leader_dies_at("before-result:ApplyRelayDiff", "e3_apply", 135).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e3_leader_dies_after_promotion_before_repointing() {
    leader_dies_at("after-promotion", "e3_promotion", 136).await;
}
