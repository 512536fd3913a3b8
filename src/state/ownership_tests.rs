//! The ownership rules of run journals, over the pure state machine.
use super::super::cluster_file::test_spec;
use super::super::command::{Command, FailoverOutcome, Operation, RunOwner, StepPhase};
use super::*;

const SERVERS: &str = r#"
[[server]]
name = "db1"
host = "127.0.0.1"
[[server]]
name = "db2"
host = "127.0.0.2"
"#;

const A: RunOwner = RunOwner {
    manager: 1,
    term: 3,
};
const B: RunOwner = RunOwner {
    manager: 2,
    term: 4,
};

/// Appended by `owner` itself, as leader of its term.
fn own_log(owner: RunOwner) -> Option<LogLeader> {
    Some(LogLeader {
        term: owner.term,
        node: owner.manager,
    })
}

fn state() -> ManagerState {
    let mut s = ManagerState::default();
    let spec = test_spec(SERVERS);
    let plain = |command| Request::new(command, Some(1), 1);
    s.apply(&plain(Command::RegisterCluster {
        spec: Box::new(spec),
    }));
    s.apply(&plain(Command::SetInitialMaster {
        cluster: "app1".into(),
        server: "db1".into(),
    }));
    s
}

fn started(s: &mut ManagerState, owner: RunOwner) -> u64 {
    let cmd = Command::FailoverStarted {
        cluster: "app1".into(),
        dead_master: "db1".into(),
        epoch: 0,
    };
    match s.apply_logged(&Request::as_owner(cmd, owner, 10), own_log(owner)) {
        CommandResult::Ok { id: Some(id), .. } => id,
        other => panic!("not started: {other:?}"),
    }
}

fn step(id: u64, name: &str) -> Command {
    Command::FailoverStep {
        cluster: "app1".into(),
        failover_id: id,
        step: name.into(),
        phase: StepPhase::Intent,
        detail: String::new(),
    }
}

fn resumed(id: u64) -> Command {
    Command::RunResumed {
        cluster: "app1".into(),
        failover_id: id,
    }
}

fn finish(id: u64) -> Command {
    Command::FailoverFinished {
        cluster: "app1".into(),
        failover_id: id,
        outcome: FailoverOutcome::Failed,
        detail: "deposed leader's error".into(),
    }
}

fn accepted(r: &CommandResult) -> bool {
    matches!(r, CommandResult::Ok { .. })
}

fn apply_as(
    s: &mut ManagerState,
    owner: RunOwner,
    log: Option<LogLeader>,
    c: Command,
) -> CommandResult {
    s.apply_logged(&Request::as_owner(c, owner, 20), log)
}

#[test]
fn the_leader_that_starts_a_failover_owns_it_and_only_it_writes_the_journal() {
    let mut s = state();
    let id = started(&mut s, A);
    assert_eq!(s.clusters["app1"].failovers[0].owner, Some(A));
    assert!(accepted(&apply_as(&mut s, A, own_log(A), step(id, "a"))));
    let other = RunOwner {
        manager: 2,
        term: 3,
    };
    let r = apply_as(&mut s, other, own_log(other), step(id, "b"));
    assert!(!accepted(&r), "{r:?}");
    let anonymous = s.apply(&Request::new(step(id, "c"), Some(1), 20));
    assert!(
        !accepted(&anonymous),
        "a request without a term acts for no run"
    );
    let steps: Vec<_> = s.clusters["app1"].failovers[0]
        .steps
        .iter()
        .map(|s| s.step.as_str())
        .collect();
    assert_eq!(steps, ["a"]);
}

#[test]
fn an_owner_entry_forwarded_to_a_newer_leader_is_refused_even_before_a_takeover() {
    // The paused leader resumes and proposes; its entry is appended by the new leader.
    let mut s = state();
    let id = started(&mut s, A);
    let by_new_leader = own_log(B);
    for c in [step(id, "late"), finish(id)] {
        let r = apply_as(&mut s, A, by_new_leader, c);
        assert!(!accepted(&r), "{r:?}");
    }
    let f = &s.clusters["app1"].failovers[0];
    assert!(f.steps.is_empty() && f.finished.is_none());
}

#[test]
fn a_newer_leader_takes_over_and_the_deposed_owner_can_neither_step_promote_nor_finish() {
    let mut s = state();
    let id = started(&mut s, A);
    assert!(accepted(&apply_as(&mut s, B, own_log(B), resumed(id))));
    assert_eq!(s.clusters["app1"].failovers[0].owner, Some(B));
    let promote = Command::PromoteMaster {
        cluster: "app1".into(),
        server: "db2".into(),
        expected_epoch: 0,
        failover_id: Some(id),
    };
    // Even if the deposed leader's entries were somehow appended under its own term.
    for c in [step(id, "late"), promote.clone(), finish(id)] {
        let r = apply_as(&mut s, A, own_log(A), c);
        assert!(!accepted(&r), "{r:?}");
    }
    assert_eq!(s.clusters["app1"].epoch, 0);
    assert!(accepted(&apply_as(&mut s, B, own_log(B), promote)));
    assert_eq!(s.clusters["app1"].master.as_deref(), Some("db2"));
    assert!(accepted(&apply_as(&mut s, B, own_log(B), finish(id))));
}

#[test]
fn a_takeover_needs_a_newer_term_and_the_takers_own_leadership() {
    let mut s = state();
    let id = started(&mut s, A);
    let same_term = RunOwner {
        manager: 2,
        term: 3,
    };
    let older = RunOwner {
        manager: 2,
        term: 2,
    };
    for o in [same_term, older] {
        let r = apply_as(&mut s, o, own_log(o), resumed(id));
        assert!(!accepted(&r), "{o}: {r:?}");
    }
    // A claim forwarded to another leader proves nothing about the claimer's leadership.
    let forwarded = apply_as(
        &mut s,
        B,
        own_log(RunOwner { manager: 3, ..B }),
        resumed(id),
    );
    assert!(!accepted(&forwarded), "{forwarded:?}");
    assert_eq!(s.clusters["app1"].failovers[0].owner, Some(A));
    // The owner resuming its own run again is a no-op.
    assert!(accepted(&apply_as(&mut s, A, own_log(A), resumed(id))));
}

#[test]
fn an_operation_is_written_only_after_a_leader_took_it_on() {
    let mut s = state();
    let op = Command::OperationStarted {
        cluster: "app1".into(),
        server: "db2".into(),
        epoch: 0,
        operation: Operation::Rejoin { force: false },
    };
    let id = match s.apply(&Request::new(op, Some(3), 5)) {
        CommandResult::Ok { id: Some(id), .. } => id,
        other => panic!("{other:?}"),
    };
    assert_eq!(s.clusters["app1"].failovers[0].owner, None);
    assert!(!accepted(&apply_as(&mut s, A, own_log(A), step(id, "x"))));
    assert!(accepted(&apply_as(&mut s, A, own_log(A), resumed(id))));
    assert!(accepted(&apply_as(&mut s, A, own_log(A), step(id, "x"))));
}

#[test]
fn version_one_entries_replay_under_the_old_rules() {
    let mut s = state();
    let old = |c| Request {
        version: 1,
        ..Request::new(c, Some(9), 5)
    };
    let started = s.apply(&old(Command::FailoverStarted {
        cluster: "app1".into(),
        dead_master: "db1".into(),
        epoch: 0,
    }));
    let Some(id) = (match started {
        CommandResult::Ok { id, .. } => id,
        _ => None,
    }) else {
        panic!("{started:?}");
    };
    assert_eq!(s.clusters["app1"].failovers[0].owner, None);
    assert!(accepted(&s.apply(&old(step(id, "a")))));
    assert!(accepted(&s.apply(&old(finish(id)))));
}
