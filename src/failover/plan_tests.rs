//! Planner scenarios from the seeds (`shared/seeds/*.txt`) and MHA's notes.
//! Over 600 lines on purpose: one table of planner cases sharing their fixtures, read top to
//! bottom like the seeds they come from.
use super::*;
use crate::db::{BinlogCoord, Flavor, IoThread, ReplicaStatus, ServerVariables, ServerVersion};
use crate::failover::input::{
    DeadMaster, FailoverInput, FailoverPolicy, ReplicaFacts, ReplicaSnapshot, ReplicaState,
    ServerPolicy,
};
use crate::failover::report::{FailoverRecord, FailoverReport, Outcome, StepResult, StepStatus};
use crate::failover::select::LostReason;

pub(super) const MASTER_HOST: &str = "192.168.0.101";

pub(super) fn coord(pos: u64) -> BinlogCoord {
    BinlogCoord::new("mysql-bin.000008", pos)
}

pub(super) fn status(read: BinlogCoord, exec: BinlogCoord) -> ReplicaStatus {
    ReplicaStatus {
        source_host: MASTER_HOST.into(),
        source_port: 3306,
        source_user: "repl".into(),
        source_server_id: Some(1),
        source_uuid: None,
        read,
        exec,
        relay: BinlogCoord::new("relay.000002", 400),
        io_thread: IoThread::No,
        sql_running: true,
        last_io_errno: 0,
        last_io_error: String::new(),
        last_sql_errno: 0,
        last_sql_error: String::new(),
        seconds_behind: None,
        sql_delay: 0,
        sql_running_state: String::new(),
        retrieved_gtid_set: None,
        executed_gtid_set: None,
        auto_position: false,
        using_gtid: Some("No".into()),
        gtid_io_pos: None,
        received_heartbeats: None,
        heartbeat_period_ms: None,
    }
}

pub(super) fn vars(server_id: u32) -> ServerVariables {
    ServerVariables {
        server_id,
        version: "10.11.19-MariaDB-0+deb12u1-log".into(),
        version_comment: String::new(),
        read_only: true,
        super_read_only: None,
        log_bin: true,
        log_slave_updates: true,
        binlog_format: "ROW".into(),
        relay_log_purge: Some(false),
        server_uuid: None,
        gtid_mode: None,
        gtid_strict_mode: Some(false),
        datadir: None,
    }
}

pub(super) fn facts(server_id: u32, st: ReplicaStatus) -> ReplicaFacts {
    ReplicaFacts {
        version: ServerVersion::new(Flavor::MariaDb, 10, 11, 19),
        variables: vars(server_id),
        status: Some(st),
        gtid: None,
    }
}

pub(super) fn snapshot(n: u8, policy: ServerPolicy, f: ReplicaFacts) -> ReplicaSnapshot {
    ReplicaSnapshot {
        server: ServerRef::new(format!("mha0{n}"), format!("192.168.0.10{n}"), 3306),
        policy,
        state: ReplicaState::Reachable(Box::new(f)),
    }
}

/// A file/position replica that executed everything it received at `read`.
pub(super) fn replica(n: u8, read: u64, policy: ServerPolicy) -> ReplicaSnapshot {
    snapshot(
        n,
        policy,
        facts(u32::from(n), status(coord(read), coord(read))),
    )
}

pub(super) fn unreachable(n: u8, reason: &str) -> ReplicaSnapshot {
    ReplicaSnapshot {
        server: ServerRef::new(format!("mha0{n}"), format!("192.168.0.10{n}"), 3306),
        policy: PLAIN,
        state: ReplicaState::Unreachable {
            reason: reason.into(),
        },
    }
}

pub(super) fn input(replicas: Vec<ReplicaSnapshot>) -> FailoverInput {
    FailoverInput {
        cluster: "app1".into(),
        dead_master: DeadMaster {
            server: ServerRef::new("mha01", MASTER_HOST, 3306),
            server_id: Some(1),
            server_uuid: None,
            host_reachable: true,
        },
        replicas,
        policy: FailoverPolicy::default(),
    }
}

pub(super) const CANDIDATE: ServerPolicy = ServerPolicy {
    candidate_master: true,
    no_master: false,
    ignore_fail: false,
};
pub(super) const PLAIN: ServerPolicy = ServerPolicy {
    candidate_master: false,
    no_master: false,
    ignore_fail: false,
};
pub(super) const NO_MASTER: ServerPolicy = ServerPolicy {
    candidate_master: false,
    no_master: true,
    ignore_fail: false,
};

pub(super) fn plan(i: &FailoverInput) -> FailoverPlan {
    plan_failover(i).unwrap_or_else(|e| panic!("plan failed: {e}"))
}

/// Every step journaled as done.
pub(super) fn all_done(p: &FailoverPlan) -> Vec<StepResult> {
    p.steps
        .iter()
        .map(|s| StepResult {
            step: s.id,
            status: StepStatus::Done { detail: None },
        })
        .collect()
}

pub(super) fn actions(p: &FailoverPlan) -> Vec<&Action> {
    p.steps.iter().map(|s| &s.action).collect()
}

pub(super) fn index_of(p: &FailoverPlan, pred: impl Fn(&Action) -> bool) -> usize {
    p.steps
        .iter()
        .position(|s| pred(&s.action))
        .unwrap_or_else(|| panic!("step missing in {:#?}", actions(p)))
}

/// Seed 004: mha02's IO thread stopped first (it has row 1), mha03's later (rows 1–2), the
/// master wrote row 3 and died. mha02 is the candidate.
pub(crate) fn seed_004() -> FailoverInput {
    input(vec![replica(2, 609, CANDIDATE), replica(3, 900, PLAIN)])
}

#[test]
fn seed_004_candidate_behind_gets_relay_diff_from_latest_and_the_master_tail() {
    let p = plan(&seed_004());
    assert_eq!(p.mode, Mode::FilePosition);
    assert_eq!(
        p.latest.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["mha03"]
    );
    assert_eq!(
        p.oldest.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["mha02"]
    );
    assert_eq!(p.new_master.name, "mha02");
    assert_eq!(p.selection, SelectionReason::Candidate);
    assert_eq!(p.base.name, "mha03");
    assert_eq!(
        p.save_tail_from,
        Some(coord(900)),
        "the tail starts where the latest replica stopped"
    );
    assert_eq!(
        p.recoveries[0].needs,
        vec![
            Need::RelayDiff {
                donor: "mha03".into(),
                from: coord(609),
                to: coord(900)
            },
            Need::MasterTail
        ]
    );
    assert_eq!(p.recoveries[1].needs, vec![Need::MasterTail]);
    assert!(p.recoveries[1].is_latest && !p.recoveries[0].is_latest);

    // Order: tail saved first; diffs cut before anyone is repointed; new master level,
    // captured, then writable; replicas repointed; cleanup last.
    let save = index_of(&p, |a| matches!(a, Action::SaveMasterTail { .. }));
    let diff = index_of(&p, |a| matches!(a, Action::GenerateRelayDiff { .. }));
    let apply_diff = index_of(
        &p,
        |a| matches!(a, Action::ApplyRelayDiff { target, .. } if target == "mha02"),
    );
    let tail_nm = index_of(
        &p,
        |a| matches!(a, Action::ApplyMasterTail { target } if target == "mha02"),
    );
    let capture = index_of(&p, |a| matches!(a, Action::CaptureNewMasterPosition { .. }));
    let writes = index_of(&p, |a| matches!(a, Action::EnableWrites { .. }));
    let repoint = index_of(
        &p,
        |a| matches!(a, Action::Repoint { replica, by: RepointBy::CapturedPosition, .. } if replica == "mha03"),
    );
    let reset = index_of(&p, |a| matches!(a, Action::ResetReplicaOnNewMaster { .. }));
    let complete = index_of(&p, |a| matches!(a, Action::CompleteFailover { .. }));
    assert!(save < diff && diff < apply_diff && apply_diff < tail_nm && tail_nm < capture);
    // The new master forgets its source before it takes writes (crash-safe cleanup).
    assert!(capture < reset && reset < writes && writes < complete && complete < repoint);
    assert!(
        p.steps.iter().enumerate().all(|(i, s)| s.id as usize == i),
        "ids are positions"
    );
}

#[test]
fn seed_004_report_reads_like_mhas() {
    let p = plan(&seed_004());
    let results = all_done(&p);
    let record = FailoverRecord {
        plan: p,
        automated: false,
        results,
        aborted: None,
        new_master_position: Some(BinlogCoord::new("mysql-bin.000003", 976)),
    };
    let report = FailoverReport::from_record(&record);
    assert_eq!(report.outcome, Outcome::Succeeded);
    let text = report.render_text();
    for expected in [
        "----- Failover Report -----",
        "app1: MySQL Master failover mha01(192.168.0.101:3306) to mha02(192.168.0.102:3306) succeeded",
        "Master mha01(192.168.0.101:3306) is down!",
        "Started manual(interactive) failover.",
        "The latest slave mha03(192.168.0.103:3306) has all relay logs for recovery.",
        "Selected mha02(192.168.0.102:3306) as a new master.",
        "mha02(192.168.0.102:3306): OK: Applying all logs succeeded.",
        "mha03(192.168.0.103:3306): This host has the latest relay log events.",
        "Generating relay diff files from the latest slave succeeded.",
        "mha03(192.168.0.103:3306): OK: Applying all logs succeeded. Slave started, replicating from mha02(192.168.0.102:3306).",
        "mha02(192.168.0.102:3306): Resetting slave info succeeded.",
        "Master failover to mha02(192.168.0.102:3306) completed successfully.",
        "mysql-bin.000003:976",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let json = report.to_json();
    let back: FailoverReport = serde_json::from_str(&json).expect("json parses back");
    assert_eq!(back, report);
}

#[test]
fn level_replicas_without_candidates_promote_the_first_latest() {
    let p = plan(&input(vec![replica(2, 900, PLAIN), replica(3, 900, PLAIN)]));
    assert_eq!(
        (p.new_master.name.as_str(), p.selection),
        ("mha02", SelectionReason::Latest)
    );
    assert_eq!(p.latest.len(), 2);
    assert!(
        p.recoveries
            .iter()
            .all(|r| r.needs == vec![Need::MasterTail])
    );
    assert!(
        !actions(&p)
            .iter()
            .any(|a| matches!(a, Action::GenerateRelayDiff { .. }))
    );
}

#[test]
fn latest_priority_prefers_a_latest_candidate_then_any_candidate() {
    let mut i = input(vec![
        replica(2, 500, CANDIDATE),
        replica(3, 900, CANDIDATE),
        replica(4, 900, PLAIN),
    ]);
    assert_eq!(plan(&i).new_master.name, "mha03");
    assert_eq!(plan(&i).selection, SelectionReason::LatestCandidate);
    i.policy.latest_priority = false;
    let p = plan(&i);
    assert_eq!(
        (p.new_master.name.as_str(), p.selection),
        ("mha02", SelectionReason::Candidate)
    );
}

#[test]
fn a_dead_replica_is_lost_not_blocking_unless_strict() {
    let dead = unreachable(4, "connection refused");
    let mut i = input(vec![
        replica(2, 900, PLAIN),
        replica(3, 900, PLAIN),
        dead.clone(),
    ]);
    let p = plan(&i);
    assert_eq!(p.lost.len(), 1);
    assert_eq!(p.lost[0].server.name, "mha04");
    assert!(
        !actions(&p)
            .iter()
            .any(|a| format!("{a:?}").contains("mha04")),
        "no step touches the lost replica"
    );
    let results = all_done(&p);
    let report = FailoverReport::from_record(&FailoverRecord {
        plan: p,
        automated: true,
        results,
        aborted: None,
        new_master_position: None,
    });
    assert_eq!(report.outcome, Outcome::Partial);
    assert!(
        report
            .render_text()
            .contains("mha04(192.168.0.104:3306): Lost: unreachable at failover time")
    );

    i.policy.strict_replicas = true;
    assert!(
        matches!(plan_failover(&i), Err(PlanError::ReplicaFailed { ref server, .. }) if server.name == "mha04")
    );
    // ignore_fail lets strict mode proceed, like MHA.
    i.replicas[2].policy.ignore_fail = true;
    assert_eq!(plan(&i).lost.len(), 1);
}

#[test]
fn a_replica_with_a_broken_sql_thread_is_lost() {
    let mut st = status(coord(900), coord(700));
    st.sql_running = false;
    st.last_sql_errno = 1062;
    st.last_sql_error = "Duplicate entry".into();
    let i = input(vec![
        snapshot(2, CANDIDATE, facts(2, st)),
        replica(3, 800, PLAIN),
    ]);
    let p = plan(&i);
    assert_eq!(p.new_master.name, "mha03");
    assert!(matches!(
        p.lost[0].reason,
        LostReason::SqlThreadError { errno: 1062, .. }
    ));
}

#[test]
fn no_candidate_possible_is_an_error_with_every_reason() {
    let i = input(vec![replica(2, 900, NO_MASTER), replica(3, 900, NO_MASTER)]);
    match plan_failover(&i) {
        Err(PlanError::NoCandidate { rejected }) => {
            assert_eq!(rejected.len(), 2);
            assert!(
                rejected
                    .iter()
                    .all(|(_, r)| r == &vec![Rejection::NoMaster])
            );
        }
        other => panic!("expected NoCandidate, got {other:?}"),
    }
    let all_lost = input(vec![unreachable(2, "timeout")]);
    assert!(matches!(
        plan_failover(&all_lost),
        Err(PlanError::NoAliveReplica { .. })
    ));
}

#[test]
fn forced_new_master_is_that_host_or_nothing() {
    let mut i = input(vec![
        replica(2, 900, PLAIN),
        replica(3, 500, PLAIN),
        replica(4, 900, NO_MASTER),
    ]);
    i.policy.forced_new_master = Some("mha03".into());
    let p = plan(&i);
    assert_eq!(
        (p.new_master.name.as_str(), p.selection),
        ("mha03", SelectionReason::Forced)
    );
    i.policy.forced_new_master = Some("mha04".into());
    assert!(matches!(
        plan_failover(&i),
        Err(PlanError::ForcedNewMasterRejected { .. })
    ));
    i.policy.forced_new_master = Some("mha09".into());
    assert!(matches!(
        plan_failover(&i),
        Err(PlanError::ForcedNewMasterNotAlive(_))
    ));
}

#[test]
fn a_candidate_whose_sql_thread_is_far_behind_is_skipped() {
    let far = snapshot(
        2,
        CANDIDATE,
        facts(2, status(coord(300_000_000), coord(100))),
    );
    let p = plan(&input(vec![far, replica(3, 300_000_000, PLAIN)]));
    assert_eq!(p.new_master.name, "mha03");
    assert!(matches!(p.rejected[0].1[0], Rejection::TooFarBehind { .. }));
}

#[test]
fn one_binlog_file_behind_with_a_small_gap_is_not_too_far() {
    // MHA issue #143: right after a rotation the SQL thread is on the previous file.
    let st = status(
        BinlogCoord::new("mysql-bin.000009", 2_000),
        BinlogCoord::new("mysql-bin.000008", 900_000),
    );
    let p = plan(&input(vec![
        snapshot(2, CANDIDATE, facts(2, st.clone())),
        snapshot(3, PLAIN, facts(3, st)),
    ]));
    assert_eq!(p.new_master.name, "mha02");
    assert!(p.rejected.is_empty());
    assert!(matches!(p.recoveries[0].needs[0], Need::OwnRelayLog { .. }));
    assert!(matches!(actions(&p)[1], Action::WaitRelayLogApplied { .. }));
}

#[test]
fn binlog_files_compare_numerically_past_999999() {
    let old = snapshot(
        2,
        PLAIN,
        facts(
            2,
            status(
                BinlogCoord::new("b.999999", 9_000),
                BinlogCoord::new("b.999999", 9_000),
            ),
        ),
    );
    let new = snapshot(
        3,
        PLAIN,
        facts(
            3,
            status(
                BinlogCoord::new("b.1000000", 400),
                BinlogCoord::new("b.1000000", 400),
            ),
        ),
    );
    let p = plan(&input(vec![old, new]));
    assert_eq!(p.latest[0].name, "mha03");
}

#[test]
fn newer_major_versions_and_log_bin_off_are_not_promoted() {
    let mut newer = facts(2, status(coord(900), coord(900)));
    newer.version = ServerVersion::new(Flavor::MariaDb, 11, 4, 2);
    let mut no_binlog = facts(3, status(coord(900), coord(900)));
    no_binlog.variables.log_bin = false;
    let p = plan(&input(vec![
        snapshot(2, CANDIDATE, newer),
        snapshot(3, CANDIDATE, no_binlog),
        replica(4, 900, PLAIN),
    ]));
    assert_eq!(p.new_master.name, "mha04");
    assert!(matches!(
        p.rejected[0].1[0],
        Rejection::NewerMajorVersion { .. }
    ));
    assert_eq!(p.rejected[1].1, vec![Rejection::LogBinOff]);
}

#[test]
fn without_the_dead_masters_host_no_tail_is_saved_and_the_report_says_so() {
    let mut i = seed_004();
    i.dead_master.host_reachable = false;
    let p = plan(&i);
    assert_eq!(p.save_tail_from, None);
    assert!(!actions(&p).iter().any(|a| matches!(
        a,
        Action::SaveMasterTail { .. } | Action::ApplyMasterTail { .. }
    )));
    let record = FailoverRecord {
        plan: p,
        automated: true,
        results: vec![],
        aborted: Some("killed".into()),
        new_master_position: None,
    };
    let report = FailoverReport::from_record(&record);
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(report.render_text().contains("may be lost"));
}

#[test]
fn fencing_plan_freezes_every_reachable_replica_and_runs_configured_hooks() {
    let mut i = seed_004();
    i.replicas.push(unreachable(4, "timeout"));
    i.policy.master_ip_failover_script = true;
    i.policy.shutdown_script = true;
    let steps = plan_fencing(&i);
    let kinds: Vec<String> = steps
        .iter()
        .map(|s| {
            format!("{:?}", s.action)
                .split(' ')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "FenceOldMaster",
            "StopIoThread",
            "StopIoThread",
            "MasterIpFailoverStop",
            "ShutdownScript"
        ]
    );
    assert!(steps.iter().all(|s| s.phase == Phase::Fence));
    assert!(matches!(steps[1].lane, Lane::Server(ref n) if n == "mha02"));
    let p = plan(&i);
    assert!(
        actions(&p)
            .iter()
            .any(|a| matches!(a, Action::MasterIpFailoverStart { .. }))
    );
}

#[test]
fn a_plan_survives_a_json_round_trip_for_the_journal() {
    let p = plan(&seed_004());
    let back: FailoverPlan =
        serde_json::from_str(&serde_json::to_string(&p).expect("serializes")).expect("parses");
    assert_eq!(back, p);
}

#[test]
fn a_report_for_a_failover_that_never_got_a_plan() {
    let r = FailoverReport::aborted_before_plan(
        "app1",
        &ServerRef::new("mha01", MASTER_HOST, 3306),
        true,
        "no candidate",
    );
    let text = r.render_text();
    assert!(text.contains("app1: MySQL Master failover mha01(192.168.0.101:3306) failed"));
    assert!(text.contains("Got ERROR: no candidate"));
}

#[test]
fn duplicate_server_names_are_rejected() {
    let i = input(vec![replica(2, 900, PLAIN), replica(2, 800, PLAIN)]);
    assert_eq!(
        plan_failover(&i),
        Err(PlanError::DuplicateServer("mha02".into()))
    );
}

/// Seed 002 (MHA 0.56 log, 2017): the candidate master received up to
/// mysql-bin.000001:452, the other slave up to :880; SSH to the dead master worked, so its
/// binlog was saved from :880; the candidate got the relay diff 452→880 plus the saved binlog.
#[test]
fn seed_002_candidate_master_behind_the_slave() {
    let at = |pos| BinlogCoord::new("mysql-bin.000001", pos);
    let candidate = snapshot(2, CANDIDATE, facts(2, status(at(452), at(452))));
    let slave = snapshot(3, PLAIN, facts(3, status(at(880), at(880))));
    let p = plan(&input(vec![candidate, slave]));
    assert_eq!(p.save_tail_from, Some(at(880)));
    assert_eq!(
        (p.latest[0].name.as_str(), p.oldest[0].name.as_str()),
        ("mha03", "mha02")
    );
    assert_eq!(p.new_master.name, "mha02");
    assert_eq!(
        p.recoveries[0].needs,
        vec![
            Need::RelayDiff {
                donor: "mha03".into(),
                from: at(452),
                to: at(880)
            },
            Need::MasterTail
        ]
    );
}

#[test]
fn steps_print_one_readable_line_each() {
    let p = plan(&seed_004());
    let lines: Vec<String> = p
        .steps
        .iter()
        .map(|s| format!("{}: {}", s.phase, s.action))
        .collect();
    assert_eq!(
        lines[0],
        "Phase 3: Master Recovery: save mha01(192.168.0.101:3306)'s binlog from mysql-bin.000008:900"
    );
    assert!(lines.contains(&"Phase 3: Master Recovery: mha03: relay-log diff mysql-bin.000008:609 → mysql-bin.000008:900 for mha02".to_string()), "{lines:#?}");
    assert!(
        lines.contains(
            &"Phase 4: Slaves Recovery: mha03: replicate from mha02 at the captured position"
                .to_string()
        ),
        "{lines:#?}"
    );
}
