//! Fencing a master that is alive but unreachable, with real managers, agents and mariadbd
//! processes, iptables partitions by cgroup, SIGSTOP:
//! - E5: the master cut off from every manager and the replicas while a client keeps writing
//!   to it: failover, and the old master stopped taking writes before the new one took its
//!   first; after healing it stays read-only and not the master.
//! - SIGSTOP of the master: failover, the paused mysqld is killed by its agent (on the
//!   leader's request or on its own lease expiry), no second writable master after SIGCONT.
//! - E4: one manager cut off from the master: no failover, no fence, writes go on.
//! - The master cut off from every manager while the replicas still see it: no failover, it
//!   fences itself; after healing the leader unfences it and it takes writes again.
//!
//! IP ranges 127.0.190.0/24 – 127.0.193.0/24, directories under /tmp/rmha-fence/.
mod failover_support;
mod fencing_support;

use std::time::Duration;

use failover_support::{Writer, wait_failover, wait_writes};
use fencing_support::*;
use raftmha::manager::testbed::Testbed;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e5_partitioned_master_is_fenced_before_the_new_master_takes_writes() {
    let (tb, faults) = fenced_testbed("e5_partition", 190, false).await;
    let writer = Writer::start(tb.clone(), "test.w");
    let pinned = PinnedWriter::start(tb.clone(), 1);
    wait_writes(&writer, 50).await;

    let cut_at = std::time::Instant::now();
    cut_managers_from(&tb, &faults, 1, &[1, 2, 3]);
    cut_replicas_from(&tb, &faults, 1);
    let master = wait_failover(&tb).await;
    let new_master = Testbed::index_of(&master).expect("nodeK");
    wait_writes(&writer, 30).await;

    let first_new = first_ack_on(&writer, new_master);
    let last_old = pinned
        .last_ack()
        .expect("node1 acknowledged writes before the cut");
    // Measurement for the report, not an assertion.
    println!(
        "E5: cut -> first write acknowledged by the new master: {} ms; node1's last write {} ms after the cut",
        (first_new - cut_at).as_millis(),
        last_old.saturating_duration_since(cut_at).as_millis()
    );
    assert!(
        last_old < first_new,
        "node1 acknowledged a write {:?} after the new master's first",
        last_old - first_new
    );
    let fence = fence_step_result(&tb).await;
    println!("fence step: {fence}");
    assert!(fence.contains("lease"), "{fence}");
    let gate = promotion_step_result(&tb).await;
    assert!(gate.contains("lease"), "{gate}");

    faults.heal().expect("heal");
    let acked_before = pinned.acked();
    // Long enough for the agent's renewals, the leader's sweep and an unfence to happen if
    // any of them wrongly would.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(read_only(&tb, 1).await, Some(true), "node1 stays read-only");
    assert!(
        !accepts_a_write(&tb, 1, 1_000_000).await,
        "node1 takes no write"
    );
    assert_eq!(
        pinned.acked(),
        acked_before,
        "node1 acknowledged writes after the heal"
    );
    let c = tb.cluster().await.expect("state");
    assert_eq!(c.master.as_deref(), Some(master.as_str()));
    assert_eq!(c.failovers.len(), 1);
    pinned.stop().await;
    writer.stop().await;
    down(tb, faults).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigstopped_master_is_killed_by_its_agent_and_no_second_master_appears() {
    let (tb, faults) = fenced_testbed("sigstop", 191, true).await;
    let writer = Writer::start(tb.clone(), "test.w");
    let pinned = PinnedWriter::start(tb.clone(), 1);
    wait_writes(&writer, 50).await;

    let pid = tb.sandbox.pid(1).expect("node").expect("node1 runs");
    // SAFETY: plain syscalls on the sandbox's own mysqld.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let master = wait_failover(&tb).await;
    unsafe { libc::kill(pid, libc::SIGCONT) };
    wait_writes(&writer, 30).await;

    let fence = fence_step_result(&tb).await;
    println!("fence step: {fence}");
    // Killed by the leader's Fence call, or earlier by the agent's own lease expiry (then
    // the leader finds it not running).
    assert!(
        fence.contains("stopped") || fence.contains("not running"),
        "the paused mysqld is SIGKILLed: {fence}"
    );
    let acked = pinned.acked();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        tb.sandbox.pid(1).expect("node"),
        None,
        "node1's mysqld is gone"
    );
    assert!(!accepts_a_write(&tb, 1, 1_000_000).await);
    assert_eq!(
        pinned.acked(),
        acked,
        "no write acknowledged by node1 after SIGCONT"
    );
    assert_ne!(master, "node1");
    pinned.stop().await;
    writer.stop().await;
    down(tb, faults).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e4_one_manager_cut_from_the_master_changes_nothing() {
    let (tb, faults) = fenced_testbed("e4_minority", 192, false).await;
    let writer = Writer::start(tb.clone(), "test.w");
    wait_writes(&writer, 30).await;

    cut_managers_from(&tb, &faults, 1, &[1]);
    // Several lease TTLs (2 s) and detection windows.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        wait_writes(&writer, 20).await;
    }
    let fence = agent_fence(&tb, 1).await.expect("agent answers");
    assert!(!fence.fenced, "node1 fenced itself: {fence:?}");
    assert_eq!(read_only(&tb, 1).await, Some(false));
    let c = tb.cluster().await.expect("state");
    assert!(c.failovers.is_empty(), "a failover started");
    assert_eq!(c.master.as_deref(), Some("node1"));
    writer.stop().await;
    down(tb, faults).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn master_cut_from_all_managers_fences_itself_and_is_unfenced_after_healing() {
    let (tb, faults) = fenced_testbed("self_fence", 193, false).await;
    let writer = Writer::start(tb.clone(), "test.w");
    wait_writes(&writer, 30).await;

    // The replicas still see node1: replica confirmation refuses a failover.
    cut_managers_from(&tb, &faults, 1, &[1, 2, 3]);
    eventually("node1 to fence itself", Duration::from_secs(20), || async {
        agent_fence(&tb, 1).await.is_some_and(|f| f.fenced)
    })
    .await;
    let fence = agent_fence(&tb, 1).await.expect("agent answers");
    assert_eq!(fence.reason, "lease_expired", "{fence:?}");
    assert_eq!(read_only(&tb, 1).await, Some(true));
    assert!(
        !accepts_a_write(&tb, 1, 1_000_000).await,
        "a self-fenced master takes no write"
    );

    faults.heal().expect("heal");
    eventually("node1 to be unfenced", Duration::from_secs(20), || async {
        agent_fence(&tb, 1).await.is_some_and(|f| !f.fenced)
    })
    .await;
    assert_eq!(read_only(&tb, 1).await, Some(false));
    wait_writes(&writer, 30).await;
    assert!(accepts_a_write(&tb, 1, 1_000_001).await);
    let c = tb.cluster().await.expect("state");
    assert!(c.failovers.is_empty(), "a failover started");
    assert_eq!(c.master.as_deref(), Some("node1"));
    writer.stop().await;
    down(tb, faults).await;
}
