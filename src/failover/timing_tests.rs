//! Phase times from constructed journals, as the engine writes them.
use super::*;
use crate::db::status::RowMap;
use crate::db::{Flavor, ReplicaStatus, ServerVariables, ServerVersion};
use crate::failover::{
    DeadMaster, FailoverInput, FailoverPolicy, ReplicaFacts, ReplicaSnapshot, ReplicaState,
    ServerPolicy, ServerRef, plan_failover, plan_fencing,
};
use crate::state::FailoverOutcome;

fn step(name: &str, phase: StepPhase, detail: &str, at_ms: u64) -> FailoverStepRecord {
    FailoverStepRecord {
        step: name.into(),
        phase,
        detail: detail.into(),
        at_ms,
        by: None,
        term: None,
    }
}

/// node1 died; node2 and node3 (file/position mode) received and executed up to `read`, as
/// their `SHOW SLAVE STATUS` and `SHOW VARIABLES` rows say.
fn two_replicas() -> FailoverInput {
    let replica = |n: u8, read: u64| {
        let pos = read.to_string();
        let status = RowMap::from_pairs([
            ("Master_Host", Some("127.0.0.1")),
            ("Master_Port", Some("3306")),
            ("Master_Server_Id", Some("1")),
            ("Master_Log_File", Some("mysql-bin.000001")),
            ("Read_Master_Log_Pos", Some(pos.as_str())),
            ("Relay_Master_Log_File", Some("mysql-bin.000001")),
            ("Exec_Master_Log_Pos", Some(pos.as_str())),
            ("Slave_IO_Running", Some("No")),
            ("Slave_SQL_Running", Some("Yes")),
            ("Using_Gtid", Some("No")),
        ]);
        let id = n.to_string();
        let variables = RowMap::from_pairs([
            ("server_id", Some(id.as_str())),
            ("version", Some("10.11.19-MariaDB-0+deb12u1-log")),
            ("log_bin", Some("ON")),
            ("log_slave_updates", Some("ON")),
            ("binlog_format", Some("ROW")),
        ]);
        ReplicaSnapshot {
            server: ServerRef::new(format!("node{n}"), format!("127.0.0.{n}"), 3306),
            policy: ServerPolicy::default(),
            state: ReplicaState::Reachable(Box::new(ReplicaFacts {
                version: ServerVersion::new(Flavor::MariaDb, 10, 11, 19),
                variables: ServerVariables::parse(&variables).expect("variables"),
                status: Some(ReplicaStatus::parse(&status).expect("status")),
                gtid: None,
            })),
        }
    };
    FailoverInput {
        cluster: "jepsen".into(),
        dead_master: DeadMaster {
            server: ServerRef::new("node1", "127.0.0.1", 3306),
            server_id: Some(1),
            server_uuid: None,
            host_reachable: false,
        },
        replicas: vec![replica(2, 900), replica(3, 800)],
        policy: FailoverPolicy::default(),
    }
}

/// A journal up to the plan: fencing steps done at 1030, 1031, …, the plan at 1100.
fn journal() -> (FailoverRecord, FailoverPlan) {
    let input = two_replicas();
    let fencing = plan_fencing(&input);
    let plan = plan_failover(&input).expect("a plan");
    let mut steps = vec![step(
        "fence-plan",
        StepPhase::Result,
        &serde_json::to_string(&fencing).expect("json"),
        1_010,
    )];
    for (i, s) in fencing.iter().enumerate() {
        let name = format!("fence.{}", s.id);
        steps.push(step(&name, StepPhase::Intent, "", 1_020));
        steps.push(step(&name, StepPhase::Result, "ok", 1_030 + i as u64));
    }
    steps.push(step(
        "plan",
        StepPhase::Result,
        &serde_json::to_string(&plan).expect("json"),
        1_100,
    ));
    let f = FailoverRecord {
        id: 7,
        dead_master: "node1".into(),
        epoch: 1,
        started_at_ms: 1_000,
        started_by: Some(1),
        steps,
        tail: Vec::new(),
        diffs: Default::default(),
        finished: None,
        report: None,
        operation: None,
        owner: None,
    };
    (f, plan)
}

/// Journals every plan step as done, step k at `1200 + 10 k`.
fn finish(f: &mut FailoverRecord, plan: &FailoverPlan) {
    for (k, s) in plan.steps.iter().enumerate() {
        let name = format!("step.{}", s.id);
        f.steps
            .push(step(&name, StepPhase::Intent, "", 1_200 + 10 * k as u64));
        f.steps
            .push(step(&name, StepPhase::Result, "", 1_200 + 10 * k as u64));
    }
    f.finished = Some((FailoverOutcome::Succeeded, 2_000));
}

/// How many fencing steps the journal holds (each has an intent and a result).
fn fencing_steps(f: &FailoverRecord) -> usize {
    f.steps
        .iter()
        .filter(|s| s.step.starts_with("fence."))
        .count()
        / 2
}

#[test]
fn fenced_once_every_fencing_step_has_a_result() {
    let (mut f, _) = journal();
    let fences = fencing_steps(&f);
    assert!(fences > 0);
    assert_eq!(fenced_at(&f), Some(1_030 + fences as u64 - 1));
    let i = f
        .steps
        .iter()
        .rposition(|s| s.step.starts_with("fence.") && s.phase == StepPhase::Result)
        .expect("a fence result");
    f.steps.remove(i);
    assert_eq!(fenced_at(&f), None, "a fencing step without result");
}

#[test]
fn promoted_is_the_result_of_the_plans_enable_writes_step() {
    let (mut f, plan) = journal();
    assert_eq!(promoted_at(&f), None);
    let enable = plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::EnableWrites { .. }))
        .expect("the plan enables writes");
    let name = format!("step.{}", enable.id);
    f.steps.push(step(&name, StepPhase::Intent, "", 1_200));
    assert_eq!(promoted_at(&f), None, "intent only");
    f.steps
        .push(step(&name, StepPhase::Result, "failed: boom", 1_250));
    assert_eq!(promoted_at(&f), None, "failed");
    f.steps.push(step(&name, StepPhase::Result, "", 1_300));
    assert_eq!(promoted_at(&f), Some((1_300, "node2".into())));
}

#[test]
fn phase_durations_follow_the_journal() {
    let (mut f, plan) = journal();
    let names = |f: &FailoverRecord| -> Vec<&str> {
        phase_durations(f).into_iter().map(|(n, _)| n).collect()
    };
    assert_eq!(names(&f), vec!["fence", "plan"]);
    finish(&mut f, &plan);
    let fences = fencing_steps(&f);
    let d = phase_durations(&f);
    // The last fencing result is at 1030 + fences - 1, the start at 1000.
    assert_eq!(
        d.first(),
        Some(&("fence", (30 + fences - 1) as f64 / 1000.0))
    );
    assert_eq!(d.last(), Some(&("total", 1.0)));
    assert!(names(&f).contains(&"master_recovery"), "{d:?}");
    assert!(names(&f).contains(&"replica_recovery"), "{d:?}");
    let phases: f64 = d
        .iter()
        .filter(|(n, _)| *n != "total")
        .map(|(_, s)| s)
        .sum();
    assert!(
        phases <= 1.0 + 1e-9,
        "phases never add up to more than the total: {d:?}"
    );
    assert!(d.iter().all(|(_, s)| *s >= 0.0));
}

#[test]
fn a_journal_without_plans_has_only_its_total() {
    let (mut f, _) = journal();
    f.steps.clear();
    f.finished = Some((FailoverOutcome::Failed, 1_500));
    assert_eq!(fenced_at(&f), None);
    assert_eq!(phase_durations(&f), vec![("total", 0.5)]);
}
