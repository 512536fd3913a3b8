//! E5 with a leader crash: the master is cut off from the managers and the replicas, and the
//! leader dies (`abort` at a failpoint) while its promotion step waits the old master's lease
//! out. The next leader runs the promotion step again (it cannot know how long the first one
//! waited: it counts the lapse from the journaled verdicts on its own clock, or a whole lease
//! from its own start) and finishes the failover: one promotion, and the old master stopped
//! taking writes before the new master took its first. Needs `--features failpoints`.
//! IP range 127.0.198.0/24, directories under /tmp/rmha-fence/.
mod failover_support;
mod fencing_support;

use failover_support::{Writer, wait_failover, wait_writes};
use fencing_support::*;
use raftmha::manager::testbed::Testbed;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e5_a_resuming_leader_waits_a_full_lease_before_promoting() {
    let marker = std::path::Path::new("/tmp/rmha-fence/e5_resume.fired");
    let _ = std::fs::create_dir_all("/tmp/rmha-fence");
    let _ = std::fs::remove_file(marker);
    // SAFETY: set before any thread of this test process reads the environment concurrently;
    // the manager processes inherit it. nextest runs each test in its own process.
    unsafe {
        std::env::set_var("RAFTMHA_FAILPOINT", "in-lease-wait");
        std::env::set_var("RAFTMHA_FAILPOINT_MARKER", marker);
    }
    let (tb, faults) = fenced_testbed("e5_resume", 198, false).await;
    let writer = Writer::start(tb.clone(), "test.w");
    let pinned = PinnedWriter::start(tb.clone(), 1);
    wait_writes(&writer, 50).await;

    cut_managers_from(&tb, &faults, 1, &[1, 2, 3]);
    cut_replicas_from(&tb, &faults, 1);
    let master = wait_failover(&tb).await;
    assert!(marker.exists(), "the leader died in the lease wait");
    let new_master = Testbed::index_of(&master).expect("nodeK");
    wait_writes(&writer, 30).await;

    let c = tb.cluster().await.expect("state");
    assert_eq!(c.failovers.len(), 1, "resumed, not restarted");
    assert_eq!(c.epoch, 1, "exactly one promotion");
    let fence = fence_step_result(&tb).await;
    assert!(fence.contains("lease"), "{fence}");
    let gate = promotion_step_result(&tb).await;
    assert!(gate.contains("lease"), "{gate}");
    let first_new = first_ack_on(&writer, new_master);
    let last_old = pinned.last_ack().expect("node1 acknowledged writes");
    assert!(
        last_old < first_new,
        "node1 acknowledged a write after the new master's first"
    );
    faults.heal().expect("heal");
    assert_eq!(read_only(&tb, 1).await, Some(true), "node1 stays read-only");
    pinned.stop().await;
    writer.stop().await;
    down(tb, faults).await;
}
