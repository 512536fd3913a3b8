//! The leader's duties as plain decisions over replicated state: resume first, discover a
//! missing master, fail over a master dead by quorum (with the replicas' confirmation when
//! configured), never while paused or inside the anti-flapping window; fence only old
//! masters, and none while a run is unfinished.
use super::*;
use crate::db::IoThread;
use crate::detect::ReplicaView;
use crate::state::cluster_file::test_spec;
use crate::state::{Command, ManagerState, Operation, Request};

const NOW: u64 = 1_000_000;

fn spec(confirm: bool) -> String {
    format!(
        "[settings]\nreplica_confirmation = {confirm}\n\
         [[server]]\nname = \"db1\"\nhost = \"10.0.0.1\"\n\
         [[server]]\nname = \"db2\"\nhost = \"10.0.0.2\"\n"
    )
}

fn apply(s: &mut ManagerState, c: Command) -> crate::state::CommandResult {
    s.apply(&Request::new(c, Some(1), NOW - 10))
}

/// A registered cluster with master db1 (unless `master` is false).
fn state(confirm: bool, master: bool) -> ManagerState {
    let mut s = ManagerState::default();
    apply(
        &mut s,
        Command::RegisterCluster {
            spec: Box::new(test_spec(&spec(confirm))),
        },
    );
    if master {
        apply(
            &mut s,
            Command::SetInitialMaster {
                cluster: "app1".into(),
                server: "db1".into(),
            },
        );
    }
    s
}

fn verdict(s: &mut ManagerState, manager: u64, v: crate::state::Verdict) {
    apply(
        s,
        Command::ReportLiveness {
            cluster: "app1".into(),
            server: "db1".into(),
            manager,
            verdict: v,
            window_start_ms: NOW - 3_000,
            window_end_ms: NOW - 100,
            master_epoch: 0,
        },
    );
}

fn voters() -> BTreeSet<u64> {
    [1, 2, 3].into()
}

fn dead_by(s: &mut ManagerState, managers: &[u64]) {
    for m in managers {
        verdict(s, *m, crate::state::Verdict::Dead);
    }
}

fn duty(s: &ManagerState) -> Duty {
    analyze(&s.clusters["app1"], &voters(), NOW)
}

#[test]
fn an_alive_master_needs_nothing_and_an_unknown_one_is_discovered() {
    let mut s = state(true, true);
    assert_eq!(duty(&s), Duty::Idle);
    verdict(&mut s, 1, crate::state::Verdict::Alive);
    assert_eq!(duty(&s), Duty::Idle);
    assert_eq!(duty(&state(true, false)), Duty::DiscoverMaster);
}

#[test]
fn an_unfinished_run_is_resumed_before_anything_else() {
    let mut s = state(true, true);
    dead_by(&mut s, &[1, 2]);
    apply(
        &mut s,
        Command::OperationStarted {
            cluster: "app1".into(),
            server: "db1".into(),
            epoch: 0,
            operation: Operation::ManualFailover {
                new_master: None,
                force: false,
            },
        },
    );
    assert!(matches!(duty(&s), Duty::Run(f) if f.dead_master == "db1"));
}

#[test]
fn one_dead_verdict_of_three_voters_holds_and_a_majority_fails_over() {
    let mut s = state(false, true);
    dead_by(&mut s, &[1]);
    assert!(matches!(duty(&s), Duty::Hold(_)), "{:?}", duty(&s));
    dead_by(&mut s, &[2]);
    match duty(&s) {
        Duty::FailOver { master, supporters } => {
            assert_eq!(master, "db1");
            assert_eq!(supporters, [1, 2]);
        }
        other => panic!("{other:?}"),
    }
}

fn replica_says(connected: bool) -> Vec<ReplicaEvidence> {
    vec![ReplicaEvidence {
        replica: "db2".into(),
        view: ReplicaView::Reachable {
            replicates_from_master: true,
            io_thread: if connected {
                IoThread::Yes
            } else {
                IoThread::Connecting
            },
            last_io_errno: if connected { 0 } else { 2003 },
            progress: None,
            heartbeat_period_ms: None,
            silent_for_ms: None,
        },
    }]
}

#[test]
fn with_replica_confirmation_the_replicas_are_asked_and_a_connected_one_vetoes() {
    let mut s = state(true, true);
    dead_by(&mut s, &[1, 2]);
    assert_eq!(
        duty(&s),
        Duty::ConfirmWithReplicas {
            master: "db1".into()
        }
    );
    let c = &s.clusters["app1"];
    assert!(failover_decision(c, &voters(), NOW, &replica_says(true)).is_err());
    assert_eq!(
        failover_decision(c, &voters(), NOW, &replica_says(false)),
        Ok(vec![1, 2])
    );
}

#[test]
fn a_paused_cluster_or_an_unacknowledged_recent_failover_holds_a_dead_master() {
    let mut s = state(false, true);
    dead_by(&mut s, &[1, 2]);
    apply(
        &mut s,
        Command::SetPaused {
            cluster: "app1".into(),
            paused: true,
            reason: "maintenance".into(),
        },
    );
    assert_eq!(duty(&s), Duty::Hold("failover is paused".into()));

    let mut c = s.clusters["app1"].clone();
    c.paused = false;
    c.last_failover = Some(crate::state::LastFailover {
        failover_id: 4,
        finished_at_ms: NOW - 60_000,
        outcome: FailoverOutcome::Succeeded,
        acknowledged: false,
    });
    let held = policy_hold(&c, NOW).expect("inside the window");
    assert!(held.contains("raftmha ack"), "{held}");
    let window = c.spec.settings.last_failover_minute * 60_000;
    assert_eq!(policy_hold(&c, NOW - 60_000 + window), None, "window over");
    c.last_failover.as_mut().expect("set").acknowledged = true;
    assert_eq!(policy_hold(&c, NOW), None, "acknowledged");
}

#[test]
fn only_failed_over_old_masters_are_fenced_and_none_while_a_run_is_open() {
    let mut s = state(false, true);
    let mut c = s.clusters["app1"].clone();
    assert!(returned_masters(&c).is_empty());
    // A switchover db1 -> db2, opened: nothing to fence while it runs.
    let id = match apply(
        &mut s,
        Command::OperationStarted {
            cluster: "app1".into(),
            server: "db1".into(),
            epoch: 0,
            operation: Operation::Switchover {
                new_master: "db2".into(),
                orig_master_is_new_slave: false,
                limits: Default::default(),
            },
        },
    ) {
        crate::state::CommandResult::Ok { id: Some(id), .. } => id,
        other => panic!("{other:?}"),
    };
    c = s.clusters["app1"].clone();
    assert!(returned_masters(&c).is_empty());
    // Finished and promoted: db1 is an old master now.
    let f = c.failovers.iter_mut().find(|f| f.id == id).expect("record");
    f.finished = Some((FailoverOutcome::Succeeded, NOW));
    c.master = Some("db2".into());
    assert_eq!(returned_masters(&c), ["db1".to_string()].into());
    assert!(still_returned(&c, "db1"));
    assert!(!still_returned(&c, "db2"));
}
