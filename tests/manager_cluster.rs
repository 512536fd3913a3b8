//! Three real manager processes: the cluster forms, survives SIGKILL of its leader without
//! losing a committed command, keeps its state across a restart of every manager, and
//! `raftmha status` reports it (and fails clearly without a quorum).
mod manager_support;

use manager_support::{harness, stderr, stdout, wait_for};
use raftmha::state::{Command, CommandResult};
use std::time::Duration;

const APP1: &str = include_str!("../config/app1.toml");

async fn write_noops(h: &manager_support::Harness, via: u64, n: u64) -> u64 {
    let client = h.client(via);
    for _ in 0..n {
        let (result, _) = client.write(&Command::Noop).await.expect("write");
        assert!(matches!(result, CommandResult::Ok { .. }), "{result:?}");
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_no_committed_command_is_lost() {
    let mut h = harness("kill_leader", 51, 3);
    h.start_all();
    let leader = h.wait_leader(&[1, 2, 3]).await;

    // Writes through a follower are forwarded to the leader.
    let follower = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    let spec = raftmha::state::cluster_file::ClusterSpec::parse(APP1).expect("app1.toml");
    let (registered, _) = h
        .client(follower)
        .write(&Command::RegisterCluster {
            spec: Box::new(spec),
        })
        .await
        .expect("register via follower");
    assert!(
        matches!(registered, CommandResult::Ok { .. }),
        "{registered:?}"
    );
    let acknowledged = 1 + write_noops(&h, follower, 20).await;

    h.kill(leader);
    let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    let new_leader = h.wait_leader(&survivors).await;
    assert_ne!(new_leader, leader);

    let (state, _) = h.client(survivors[0]).read_state().await.expect("read");
    assert!(state.clusters.contains_key("app1"));
    assert_eq!(
        state.applied_commands, acknowledged,
        "every acknowledged command survives"
    );

    // The cluster keeps committing with two of three, and the old leader catches up.
    let more = write_noops(&h, survivors[1], 5).await;
    h.start(leader);
    let (final_state, index) = h.client(new_leader).read_state().await.expect("read");
    assert_eq!(final_state.applied_commands, acknowledged + more);
    wait_for(
        "the restarted manager to catch up",
        Duration::from_secs(30),
        || {
            let h = &h;
            async move {
                let s = h.status(leader).await?;
                (s.applied_index >= Some(index) && s.role == "follower").then_some(())
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_manager_restarted_keeps_the_state() {
    let mut h = harness("restart_all", 52, 3);
    h.start_all();
    let leader = h.wait_leader(&[1, 2, 3]).await;
    let spec = raftmha::state::cluster_file::ClusterSpec::parse(APP1).expect("app1.toml");
    h.client(leader)
        .write(&Command::RegisterCluster {
            spec: Box::new(spec),
        })
        .await
        .expect("register");
    write_noops(&h, leader, 10).await;
    let (before, _) = h.client(leader).read_state().await.expect("read");

    for id in [1, 2, 3] {
        h.kill(id);
    }
    h.start_all();
    h.wait_leader(&[1, 2, 3]).await;
    let after = wait_for("a linearizable read", Duration::from_secs(30), || {
        let h = &h;
        async move { h.client(1).read_state().await.ok() }
    })
    .await
    .0;
    assert_eq!(after, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_every_manager_and_fails_without_quorum() {
    let mut h = harness("status", 53, 3);
    h.start_all();
    let leader = h.wait_leader(&[1, 2, 3]).await;
    let add = h.cli(&[1], &["cluster", "add", "--file", "config/app1.toml"]);
    assert!(add.status.success(), "{}", stderr(&add));

    // Listing one manager is enough: the others are discovered from the membership.
    let out = h.cli(&[1], &["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(json["leader"], leader);
    let managers = json["managers"].as_array().expect("managers");
    assert_eq!(managers.len(), 3);
    for m in managers {
        for key in [
            "id",
            "addr",
            "role",
            "term",
            "last_log_index",
            "applied_index",
        ] {
            assert!(!m[key].is_null(), "{key} missing in {m}");
        }
        assert_eq!(m["reachable"], true);
    }
    assert_eq!(json["clusters"][0]["name"], "app1");

    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    h.kill(others[0]);
    h.kill(others[1]);
    let out = h.cli(&[1, 2, 3], &["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("no quorum"), "{}", stderr(&out));

    // Nobody answers at all: a clear error, not a hang or a panic.
    h.kill(leader);
    let out = h.cli(&[1, 2, 3], &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no quorum"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_leader_gracefully_and_operators_manage_clusters_by_cli() {
    let mut h = harness("sigterm", 58, 3);
    h.start_all();
    let leader = h.wait_leader(&[1, 2, 3]).await;
    let all = [1, 2, 3];
    let add = h.cli(&all, &["cluster", "add", "--file", "config/app1.toml"]);
    assert!(add.status.success(), "{}", stderr(&add));
    let again = h.cli(&all, &["cluster", "add", "--file", "config/app1.toml"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already registered"),
        "{}",
        stderr(&again)
    );
    let pause = h.cli(
        &all,
        &["cluster", "pause", "app1", "--reason", "maintenance"],
    );
    assert!(pause.status.success(), "{}", stderr(&pause));

    h.stop(leader);
    let survivors: Vec<u64> = all.into_iter().filter(|id| *id != leader).collect();
    let new_leader = h.wait_leader(&survivors).await;
    assert_ne!(new_leader, leader);
    assert!(
        h.log(leader).contains("manager stopped"),
        "{}",
        h.log(leader)
    );

    let list = h.cli(&survivors, &["cluster", "list", "--json"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let json: serde_json::Value = serde_json::from_str(&stdout(&list)).expect("json");
    assert_eq!(json[0]["paused"], true);
    let (state, _) = h.client(new_leader).read_state().await.expect("read");
    assert!(state.audit.iter().any(|a| a.event.contains("maintenance")));
    let remove = h.cli(&survivors, &["cluster", "remove", "app1"]);
    assert!(remove.status.success(), "{}", stderr(&remove));
    let unknown = h.cli(&survivors, &["cluster", "remove", "app1"]);
    assert_eq!(unknown.status.code(), Some(1));
}

/// Every manager is SIGKILLed right after a write is acknowledged, so the old leader's
/// `committed` pointer on disk may lag its log by that write. The old leader comes back alone
/// first: it must not resume leadership from its pre-crash vote and answer a linearizable read
/// from a state re-applied only up to that stale pointer; a read is served only after an
/// election, and it contains every acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_leader_never_serves_a_read_missing_an_acknowledged_write() {
    let mut h = harness("restart_leader", 60, 3);
    h.start_all();
    let leader = h.wait_leader(&[1, 2, 3]).await;
    let acknowledged = write_noops(&h, leader, 5).await;
    for id in [1, 2, 3] {
        h.kill(id);
    }

    h.start(leader);
    let alone = wait_for("the old leader to answer", Duration::from_secs(30), || {
        let h = &h;
        async move { h.status(leader).await }
    })
    .await;
    assert_ne!(
        alone.role, "leader",
        "a restarted leader resumed leadership without an election (applied index {:?})",
        alone.applied_index
    );
    // A read sent while it is alone, answered once a second manager is back.
    let early = {
        let client = h.client(leader);
        tokio::spawn(async move { client.read_state().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("another manager");
    h.start(other);
    if let Ok((state, _)) = early.await.expect("read task") {
        assert_eq!(state.applied_commands, acknowledged, "a stale read");
    }
    let (state, _) = wait_for("a linearizable read", Duration::from_secs(30), || {
        let h = &h;
        async move { h.client(leader).read_state().await.ok() }
    })
    .await;
    assert_eq!(state.applied_commands, acknowledged);
}
