//! The state machine's apply rules.
use super::*;
use crate::state::cluster_file::{ServerSpec, Settings, Users};

fn spec(name: &str) -> ClusterSpec {
    ClusterSpec {
        name: name.into(),
        users: Users {
            admin_user: "a".into(),
            admin_password_file: Some("/p".into()),
            admin_password_env: None,
            repl_user: "r".into(),
            repl_password_file: None,
            repl_password_env: Some("R".into()),
            agent_token_file: None,
            agent_token_env: None,
        },
        settings: Settings::default(),
        servers: vec![ServerSpec {
            name: "db1".into(),
            host: "127.0.0.1".into(),
            port: 3306,
            agent: None,
            candidate_master: false,
            no_master: false,
            ignore_fail: false,
            priority: 1,
        }],
    }
}

fn req(command: Command) -> Request {
    Request::as_owner(
        command,
        RunOwner {
            manager: 1,
            term: 1,
        },
        1000,
    )
}

#[test]
fn registering_twice_is_rejected_without_changing_state() {
    let mut s = ManagerState::default();
    let first = s.apply(&req(Command::RegisterCluster {
        spec: Box::new(spec("app1")),
    }));
    assert!(matches!(first, CommandResult::Ok { .. }));
    let before = s.clusters.clone();
    let again = s.apply(&req(Command::RegisterCluster {
        spec: Box::new(spec("app1")),
    }));
    assert!(matches!(again, CommandResult::Rejected { .. }));
    assert_eq!(s.clusters, before);
}

#[test]
fn promotion_with_a_stale_epoch_is_fenced() {
    let mut s = ManagerState::default();
    s.apply(&req(Command::RegisterCluster {
        spec: Box::new(spec("app1")),
    }));
    // A version-1 entry (old log): a promotion outside any failover, fenced by epoch.
    let promote = |epoch| Request {
        version: 1,
        ..req(Command::PromoteMaster {
            cluster: "app1".into(),
            server: "db1".into(),
            expected_epoch: epoch,
            failover_id: None,
        })
    };
    assert!(matches!(
        s.apply(&promote(0)),
        CommandResult::Ok { id: Some(1), .. }
    ));
    assert!(matches!(
        s.apply(&promote(0)),
        CommandResult::Rejected { .. }
    ));
    assert_eq!(s.clusters["app1"].epoch, 1);
    assert_eq!(s.clusters["app1"].master.as_deref(), Some("db1"));
}

#[test]
fn a_failover_journal_records_steps_until_finished() {
    let mut s = ManagerState::default();
    s.apply(&req(Command::RegisterCluster {
        spec: Box::new(spec("app1")),
    }));
    let started = s.apply(&req(Command::FailoverStarted {
        cluster: "app1".into(),
        dead_master: "db1".into(),
        epoch: 0,
    }));
    let CommandResult::Ok { id: Some(id), .. } = started else {
        panic!("not started: {started:?}")
    };
    let second = s.apply(&req(Command::FailoverStarted {
        cluster: "app1".into(),
        dead_master: "db1".into(),
        epoch: 0,
    }));
    assert!(
        matches!(second, CommandResult::Rejected { .. }),
        "one at a time"
    );
    let step = |phase| {
        req(Command::FailoverStep {
            cluster: "app1".into(),
            failover_id: id,
            step: "fence".into(),
            phase,
            detail: String::new(),
        })
    };
    assert!(matches!(
        s.apply(&step(StepPhase::Intent)),
        CommandResult::Ok { .. }
    ));
    s.apply(&req(Command::FailoverFinished {
        cluster: "app1".into(),
        failover_id: id,
        outcome: FailoverOutcome::Succeeded,
        detail: String::new(),
    }));
    assert!(matches!(
        s.apply(&step(StepPhase::Result)),
        CommandResult::Rejected { .. }
    ));
    let c = &s.clusters["app1"];
    assert_eq!(c.failovers[0].steps.len(), 1);
    // Each step says who proposed it, so an audit can check it came from the owner.
    let first = &c.failovers[0].steps[0];
    assert_eq!((first.by, first.term), (Some(1), Some(1)));
    assert_eq!(
        c.last_failover.as_ref().map(|l| l.acknowledged),
        Some(false)
    );
}

#[test]
fn the_state_round_trips_through_json() {
    let mut s = ManagerState::default();
    s.apply(&req(Command::RegisterCluster {
        spec: Box::new(spec("app1")),
    }));
    let json = serde_json::to_vec(&s).expect("encodes");
    let back: ManagerState = serde_json::from_slice(&json).expect("decodes");
    assert_eq!(back, s);
}
