//! Membership changes through the CLI: a new manager joins as a learner and is promoted to
//! voter; a voter is removed; the cluster keeps committing throughout.
mod manager_support;

use std::time::Duration;

use manager_support::{harness, stderr, stdout, wait_for};
use raftmha::state::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_is_added_as_voter_and_another_removed() {
    let mut h = harness("membership", 54, 3);
    // Frequent snapshots: the log is purged, so the new member must get a snapshot.
    h.extra_config = "[raft]\nsnapshot_every_logs = 20\n".into();
    for id in 1..=3 {
        h.write_config(id);
    }
    h.start_all();
    let leader = h.wait_leader(&[1, 2, 3]).await;
    for _ in 0..100 {
        h.client(leader).write(&Command::Noop).await.expect("write");
    }

    // Manager 4 starts with an empty data dir; it does not bootstrap anything itself.
    h.write_config(4);
    h.start(4);
    wait_for("manager 4 to answer", Duration::from_secs(30), || {
        let h = &h;
        async move { h.status(4).await }
    })
    .await;
    let addr4 = h.addr(4);
    // Through a follower: forwarded to the leader.
    let follower = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("follower");
    let out = h.cli(&[follower], &["members", "add", "4", &addr4]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Manager 4 lists itself as a voter once it applied the membership change (the leader
    // acknowledged it already; manager 4 may be a few entries behind).
    wait_for(
        "manager 4 to list itself as a voter",
        Duration::from_secs(10),
        || {
            let h = &h;
            let addr4 = addr4.clone();
            async move {
                let list = h.cli(&[4], &["members", "list"]);
                assert!(list.status.success(), "{}", stderr(&list));
                stdout(&list)
                    .lines()
                    .any(|l| l.contains(&addr4) && l.contains("voter"))
                    .then_some(())
            }
        },
    )
    .await;
    let (state, index) = h.client(4).read_state().await.expect("read via 4");
    assert_eq!(state.applied_commands, 100);
    wait_for(
        "manager 4 to apply the log",
        Duration::from_secs(30),
        || {
            let h = &h;
            async move { (h.status(4).await?.applied_index >= Some(index)).then_some(()) }
        },
    )
    .await;

    // Remove a voter that is not the leader; the remaining three keep a quorum.
    let victim = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("victim");
    let out = h.cli(&[leader], &["members", "remove", &victim.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = h.status(leader).await.expect("leader status");
    assert_eq!(status.members.len(), 3);
    assert!(status.members.iter().all(|m| m.id != victim && m.voter));
    h.kill(victim);
    h.client(4)
        .write(&Command::Noop)
        .await
        .expect("write after removal");

    // Manager 4 got its state from a snapshot streamed by the leader, and restarts from it.
    assert!(
        h.log(4)
            .contains("installed a snapshot received from the leader"),
        "{}",
        h.log(4)
    );
    let snapshots = std::fs::read_dir(h.data_dir(4).join("snapshots")).expect("snapshots");
    assert!(
        snapshots
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".snap"))
    );
    h.kill(4);
    h.start(4);
    let (after, _) = wait_for(
        "manager 4 to serve reads again",
        Duration::from_secs(30),
        || {
            let h = &h;
            async move { h.client(4).read_state().await.ok() }
        },
    )
    .await;
    assert_eq!(after.applied_commands, 101);

    // Removing an unknown member is a clear error.
    let out = h.cli(&[leader], &["members", "remove", "99"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a member"), "{}", stderr(&out));
}
