//! The manager leader dies (`abort` at a named failpoint) in the middle of a switchover under
//! writes; the next leader finds the operation unfinished and rolls it back when the promotion
//! had not committed (the old master takes writes again, exit 4) or forward when it had
//! (exit 0). Never two writable masters, no acknowledged write lost.
//! Needs `--features failpoints`. IP ranges 127.0.204.0/24 and 127.0.205.0/24.
mod failover_support;
mod operator_switch_support;

use failover_support::{assert_all_acked_on, replicates_from};
use operator_switch_support::*;

async fn leader_dies_at(
    point: &str,
    name: &str,
    subnet: u8,
) -> (
    std::sync::Arc<raftmha::manager::testbed::Testbed>,
    AppWriter,
    std::process::Output,
) {
    let marker = std::path::Path::new("/tmp/rmha-switch").join(format!("{name}.fired"));
    let _ = std::fs::create_dir_all("/tmp/rmha-switch");
    let _ = std::fs::remove_file(&marker);
    // SAFETY: set before any thread of this test process reads the environment concurrently;
    // the manager processes inherit it. nextest runs each test in its own process.
    unsafe {
        std::env::set_var("RAFTMHA_FAILPOINT", point);
        std::env::set_var("RAFTMHA_FAILPOINT_MARKER", &marker);
    }
    let (tb, writer) = testbed_with_writer(name, subnet, false).await;
    let o = cli(
        &tb,
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
    .await;
    assert!(marker.exists(), "the failpoint {point} fired: {}", text(&o));
    (tb, writer, o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_dying_before_the_promotion_is_rolled_back_by_its_successor() {
    let (tb, writer, o) = leader_dies_at("switch-before-promote", "resume_back", 204).await;
    assert_eq!(o.status.code(), Some(4), "rolled back: {}", text(&o));
    writer.wait(50).await;
    let acked = writer.stop().await;
    let c = tb.cluster().await.expect("state");
    assert_eq!((c.master.as_deref(), c.epoch), (Some("node1"), 0));
    assert!(
        !read_only(&tb, 1).await,
        "the old master takes writes again"
    );
    assert!(read_only(&tb, 2).await, "node2 was never made writable");
    assert!(
        replicates_from(&tb, 2, 1).await,
        "node2 replicates from node1 again"
    );
    assert_all_acked_on(&tb, 1, &[2, 3], &acked).await;
    down(tb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_dying_after_the_promotion_is_rolled_forward_by_its_successor() {
    let (tb, writer, o) = leader_dies_at("switch-after-promote", "resume_forward", 205).await;
    assert!(o.status.success(), "rolled forward: {}", text(&o));
    writer.wait(50).await;
    let acked = writer.stop().await;
    let c = tb.cluster().await.expect("state");
    assert_eq!((c.master.as_deref(), c.epoch), (Some("node2"), 1));
    assert!(read_only(&tb, 1).await);
    assert!(replicates_from(&tb, 1, 2).await && replicates_from(&tb, 3, 2).await);
    assert_all_acked_on(&tb, 2, &[1, 3], &acked).await;
    down(tb).await;
}
