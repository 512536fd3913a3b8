use super::*;
use crate::state::cluster_file::ClusterSpec;
use crate::state::{Command, Request};

fn view(role: &'static str, leader: Option<u64>) -> NodeView {
    NodeView {
        id: 2,
        role,
        term: 7,
        leader,
        last_log_index: Some(42),
        applied_index: Some(41),
        committed_index: Some(42),
        members: vec![
            (1, "127.0.0.1:1".into(), true),
            (2, "127.0.0.1:2".into(), true),
            (3, "127.0.0.1:3".into(), false),
        ],
        initialized: true,
    }
}

fn state() -> ManagerState {
    let spec = ClusterSpec::parse(include_str!("../../config/app1.toml")).expect("app1");
    let mut s = ManagerState::default();
    for command in [
        Command::RegisterCluster {
            spec: Box::new(spec),
        },
        Command::PromoteMaster {
            cluster: "app1".into(),
            server: "db1".into(),
            expected_epoch: 0,
            failover_id: None,
        },
        Command::SetPaused {
            cluster: "app1".into(),
            paused: true,
            reason: "test".into(),
        },
    ] {
        // Version 1 (old log rules): a promotion outside any failover sets the epoch to 1.
        s.apply(&Request {
            version: 1,
            at_ms: 1,
            by: Some(1),
            term: None,
            command,
        });
    }
    s
}

fn no_metrics() -> String {
    unreachable!("only /metrics renders metrics")
}

#[test]
fn leader_endpoint_is_200_only_on_the_leader() {
    assert_eq!(
        route("/health/leader", &view("leader", Some(2)), no_metrics).status,
        200
    );
    let follower = route("/health/leader", &view("follower", Some(1)), no_metrics);
    assert_eq!(follower.status, 503);
    assert!(follower.body.contains("manager 1"), "{}", follower.body);
}

#[test]
fn ready_needs_an_initialized_membership_with_a_leader() {
    assert_eq!(
        route("/health/ready", &view("follower", Some(1)), no_metrics).status,
        200
    );
    assert_eq!(
        route("/health/ready", &view("candidate", None), no_metrics).status,
        503
    );
    let mut fresh = view("follower", None);
    fresh.initialized = false;
    fresh.members.clear();
    assert!(
        route("/health/ready", &fresh, no_metrics)
            .body
            .contains("not initialized")
    );
    let mut removed = view("learner", Some(1));
    removed.members.retain(|m| m.0 != 2);
    assert_eq!(route("/health/ready", &removed, no_metrics).status, 503);
    assert_eq!(route("/health/live", &fresh, no_metrics).status, 200);
    assert_eq!(route("/nope", &fresh, no_metrics).status, 404);
}

#[test]
fn metrics_carry_raft_and_cluster_gauges() {
    let text = metrics(&view("leader", Some(2)), &state());
    for line in [
        "raftmha_raft_role{role=\"leader\"} 1",
        "raftmha_raft_role{role=\"follower\"} 0",
        "raftmha_raft_term 7",
        "raftmha_raft_leader_id 2",
        "raftmha_raft_commit_index 42",
        "raftmha_raft_applied_index 41",
        "raftmha_raft_members{kind=\"learner\"} 1",
        "raftmha_clusters 1",
        "raftmha_cluster_paused{cluster=\"app1\"} 1",
        "raftmha_cluster_epoch{cluster=\"app1\"} 1",
        "raftmha_cluster_master{cluster=\"app1\",server=\"db1\"} 1",
        "raftmha_cluster_master{cluster=\"app1\",server=\"db2\"} 0",
        "raftmha_cluster_failovers_recorded{cluster=\"app1\",outcome=\"succeeded\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[test]
fn engine_timings_render_as_summaries_with_escaped_labels() {
    let e = EngineMetrics::default();
    e.observe_check("app1", "db\"1", 0.25);
    e.observe_check("app1", "db\"1", 0.5);
    e.observe_phase("app1", "fence", 1.5);
    let mut text = String::new();
    e.render(&mut text);
    assert!(
        text.contains(
            "raftmha_check_duration_seconds_sum{cluster=\"app1\",server=\"db\\\"1\"} 0.75"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "raftmha_check_duration_seconds_count{cluster=\"app1\",server=\"db\\\"1\"} 2"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "raftmha_failover_phase_duration_seconds_count{cluster=\"app1\",phase=\"fence\"} 1"
        ),
        "{text}"
    );
    assert_eq!(text.matches("# TYPE").count(), 2);
}
