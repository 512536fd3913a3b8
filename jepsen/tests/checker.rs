//! The checker against planted histories: each property must catch its violation, and the
//! baseline (a clean failover) must be valid.
use raftmha_jepsen::checker::{Verdict, check};
use raftmha_jepsen::history::*;

const MS: u64 = 1_000_000;

fn rec(time_ms: u64, event: Event) -> Record {
    Record {
        time_ns: time_ms * MS,
        event,
    }
}

fn db(node: &str, read_only: bool) -> DbObservation {
    DbObservation {
        node: node.into(),
        reachable: true,
        read_only: Some(read_only),
        source: None,
        gtid_binlog_pos: None,
        writable: None,
    }
}

fn mgr(id: u64, role: &str, term: u64, leader: u64) -> ManagerObservation {
    ManagerObservation {
        manager: id,
        reachable: true,
        role: Some(role.into()),
        term: Some(term),
        leader: Some(leader),
        master: None,
        epoch: None,
    }
}

fn write(h: &mut Vec<Record>, at: u64, id: u64, node: &str, epoch: u64) {
    h.push(rec(
        at,
        Event::Invoke {
            process: 1,
            id,
            node: node.into(),
            epoch,
        },
    ));
    h.push(rec(
        at + 2,
        Event::Ok {
            process: 1,
            id,
            node: node.into(),
            epoch,
        },
    ));
}

/// A clean failover: db1 is master under epoch 1, dies, db2 takes over under epoch 2.
fn baseline() -> Vec<Record> {
    let mut h = vec![rec(
        0,
        Event::Config(RunConfig {
            scenario: "kill-master".into(),
            seed: 7,
            required_faults: vec!["kill-master".into()],
            acked_writes_covered: true,
            anti_flap_window_ns: 60_000 * MS,
            ..Default::default()
        }),
    )];
    h.push(rec(
        1,
        Event::ManagerRound {
            round: 1,
            managers: vec![
                mgr(1, "leader", 3, 1),
                mgr(2, "follower", 3, 1),
                mgr(3, "follower", 3, 1),
            ],
        },
    ));
    h.push(rec(
        2,
        Event::DbRound {
            started_ns: None,
            round: 1,
            state: None,
            nodes: vec![db("db1", false), db("db2", true), db("db3", true)],
        },
    ));
    for id in 1..=10 {
        write(&mut h, 10 + id * 5, id, "db1", 1);
    }
    h.push(rec(
        100,
        Event::Nemesis {
            fault: "kill-master".into(),
            action: NemesisAction::Start,
            outcome: NemesisOutcome::Installed,
            detail: "SIGKILL db1".into(),
        },
    ));
    h.push(rec(
        101,
        Event::Invoke {
            process: 2,
            id: 11,
            node: "db1".into(),
            epoch: 1,
        },
    ));
    h.push(rec(
        150,
        Event::Info {
            process: 2,
            id: 11,
            error: "connection lost".into(),
        },
    ));
    h.push(rec(
        400,
        Event::Failover {
            cluster: "app1".into(),
            failover_id: "f1".into(),
            epoch: 2,
            phase: FailoverPhase::Started,
            detail: String::new(),
        },
    ));
    h.push(rec(
        700,
        Event::Failover {
            cluster: "app1".into(),
            failover_id: "f1".into(),
            epoch: 2,
            phase: FailoverPhase::Completed,
            detail: String::new(),
        },
    ));
    h.push(rec(
        750,
        Event::DbRound {
            started_ns: None,
            round: 2,
            state: None,
            nodes: vec![db("db2", false), db("db3", true)],
        },
    ));
    for id in 12..=20 {
        write(&mut h, 800 + id * 5, id, "db2", 2);
    }
    h.push(rec(
        1000,
        Event::ManagerRound {
            round: 2,
            managers: vec![mgr(1, "follower", 4, 2), mgr(2, "leader", 4, 2)],
        },
    ));
    let ids: Vec<u64> = (1..=20).filter(|i| *i != 11).collect();
    for (node, role) in [("db2", "master"), ("db3", "replica"), ("db1", "replica")] {
        h.push(rec(
            2000,
            Event::FinalRead {
                node: node.into(),
                role: role.into(),
                ids: ids.clone(),
                checksum: Some(42),
            },
        ));
    }
    h
}

#[test]
fn a_clean_failover_history_is_valid_and_unknown_writes_may_be_absent() {
    let report = check(&baseline());
    assert_eq!(report.verdict, Verdict::Valid, "{}", report.render());
}

#[test]
fn a_planted_lost_write_is_invalid() {
    let mut h = baseline();
    for r in &mut h {
        if let Event::FinalRead { ids, role, .. } = &mut r.event
            && role == "master"
        {
            ids.retain(|id| *id != 7);
        }
    }
    let report = check(&h);
    assert_eq!(report.verdict, Verdict::Invalid);
    let c = report.check("no_acknowledged_write_lost").unwrap();
    assert_eq!(c.verdict, Verdict::Invalid);
    assert!(
        c.details
            .iter()
            .any(|d| d.contains("lost acknowledged writes: 7")),
        "{c:?}"
    );
}

#[test]
fn loss_outside_the_contract_is_reported_but_not_a_violation() {
    let mut h = baseline();
    if let Event::Config(c) = &mut h[0].event {
        c.acked_writes_covered = false;
    }
    for r in &mut h {
        if let Event::FinalRead { ids, .. } = &mut r.event {
            ids.retain(|id| *id != 10);
        }
    }
    let c = check(&h)
        .check("no_acknowledged_write_lost")
        .cloned()
        .unwrap();
    assert_eq!(c.verdict, Verdict::Valid);
    assert!(
        c.details
            .iter()
            .any(|d| d.contains("within the replication contract")),
        "{c:?}"
    );
}

#[test]
fn a_planted_second_writable_master_is_invalid() {
    let mut h = baseline();
    h.push(rec(
        760,
        Event::DbRound {
            started_ns: None,
            round: 3,
            state: None,
            nodes: vec![db("db1", false), db("db2", false), db("db3", true)],
        },
    ));
    let report = check(&h);
    assert_eq!(report.verdict, Verdict::Invalid);
    assert_eq!(
        report.check("one_writable_master").unwrap().verdict,
        Verdict::Invalid
    );
}

#[test]
fn writes_acknowledged_by_two_nodes_in_one_epoch_are_invalid() {
    let mut h = baseline();
    write(&mut h, 900, 99, "db3", 2);
    let report = check(&h);
    assert_eq!(
        report.check("one_writable_master").unwrap().verdict,
        Verdict::Invalid
    );
}

#[test]
fn a_planted_double_leader_is_invalid() {
    let mut h = baseline();
    h.push(rec(
        1100,
        Event::ManagerRound {
            round: 3,
            managers: vec![mgr(3, "leader", 4, 3)],
        },
    ));
    let report = check(&h);
    assert_eq!(report.verdict, Verdict::Invalid);
    assert_eq!(
        report.check("one_leader_per_term").unwrap().verdict,
        Verdict::Invalid
    );
}

#[test]
fn an_old_master_acknowledging_after_the_new_one_served_is_invalid() {
    let mut h = baseline();
    // Invoked on db1 (epoch 1) after db2 had already acknowledged epoch 2 writes.
    write(&mut h, 1500, 77, "db1", 1);
    let report = check(&h);
    assert_eq!(
        report.check("old_master_fenced_first").unwrap().verdict,
        Verdict::Invalid
    );
}

#[test]
fn a_run_whose_required_fault_never_installed_is_unknown_not_valid() {
    let mut h = baseline();
    for r in &mut h {
        if let Event::Nemesis { outcome, .. } = &mut r.event {
            *outcome = NemesisOutcome::Skipped;
        }
    }
    assert_eq!(check(&h).verdict, Verdict::Unknown);
}

#[test]
fn a_failed_write_that_appears_is_invalid_and_diverged_nodes_are_invalid() {
    let mut h = baseline();
    h.push(rec(
        1600,
        Event::Invoke {
            process: 3,
            id: 500,
            node: "db2".into(),
            epoch: 2,
        },
    ));
    h.push(rec(
        1601,
        Event::Fail {
            process: 3,
            id: 500,
            error: "read only".into(),
        },
    ));
    for r in &mut h {
        if let Event::FinalRead { ids, role, .. } = &mut r.event
            && role == "master"
        {
            ids.push(500);
        }
    }
    let report = check(&h);
    assert_eq!(
        report.check("no_acknowledged_write_lost").unwrap().verdict,
        Verdict::Invalid
    );
    assert_eq!(
        report.check("nodes_converge").unwrap().verdict,
        Verdict::Invalid
    );
}

#[test]
fn a_second_failover_inside_the_window_without_ack_is_flapping() {
    let mut h = baseline();
    h.push(rec(
        5000,
        Event::Failover {
            cluster: "app1".into(),
            failover_id: "f2".into(),
            epoch: 3,
            phase: FailoverPhase::Started,
            detail: String::new(),
        },
    ));
    assert_eq!(
        check(&h).check("no_flapping").unwrap().verdict,
        Verdict::Invalid
    );
    let mut acked = baseline();
    acked.push(rec(
        4000,
        Event::Ack {
            cluster: "app1".into(),
        },
    ));
    acked.push(rec(
        5000,
        Event::Failover {
            cluster: "app1".into(),
            failover_id: "f2".into(),
            epoch: 3,
            phase: FailoverPhase::Started,
            detail: String::new(),
        },
    ));
    assert_eq!(
        check(&acked).check("no_flapping").unwrap().verdict,
        Verdict::Valid
    );
}

#[test]
fn histories_round_trip_through_jsonl() {
    let h = baseline();
    let dir = std::env::temp_dir().join("rmha-jepsen-checker-test");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.jsonl");
    let mut w = HistoryWriter::new(std::fs::File::create(&path).unwrap());
    for r in &h {
        w.write(r).unwrap();
    }
    assert_eq!(read_history(&path).unwrap(), h);
    std::fs::write(&path, "{\"time_ns\": 1, \"type\": \"nope\"}\n").unwrap();
    let err = read_history(&path).unwrap_err();
    assert!(format!("{err:#}").contains("line 1"), "{err:#}");
}

fn set_config(h: &mut [Record], f: impl Fn(&mut RunConfig)) {
    for r in h.iter_mut() {
        if let Event::Config(c) = &mut r.event {
            f(c);
        }
    }
}

fn round_with_master(round: u64, master: &str, epoch: u64) -> Event {
    let mut managers = vec![
        mgr(1, "leader", 3, 1),
        mgr(2, "follower", 3, 1),
        mgr(3, "follower", 3, 1),
    ];
    for m in &mut managers {
        m.master = Some(master.into());
        m.epoch = Some(epoch);
    }
    Event::ManagerRound { round, managers }
}

#[test]
fn a_planted_false_failover_is_invalid() {
    // A manager-only scenario: the master is healthy, yet the managers moved it.
    let mut h = baseline();
    set_config(&mut h, |c| c.expect_no_failover = true);
    h.insert(2, rec(3, round_with_master(2, "db1", 1)));
    h.push(rec(900, round_with_master(3, "db2", 2)));
    let report = check(&h);
    let c = report.check("no_false_failover").unwrap();
    assert_eq!(c.verdict, Verdict::Invalid, "{}", report.render());
    assert_eq!(report.verdict, Verdict::Invalid);
}

#[test]
fn a_failover_scenario_without_a_failover_is_unknown_not_valid() {
    let mut h: Vec<Record> = baseline()
        .into_iter()
        .filter(|r| !matches!(r.event, Event::Failover { .. }))
        .collect();
    set_config(&mut h, |c| c.expect_failover = true);
    h.insert(2, rec(3, round_with_master(2, "db1", 1)));
    let c = check(&h);
    let c = c.check("failover_happened").unwrap();
    assert_eq!(c.verdict, Verdict::Unknown, "{c:?}");
}

#[test]
fn managers_disagreeing_after_healing_is_invalid() {
    let mut h = baseline();
    set_config(&mut h, |c| c.managers = true);
    for (id, epoch) in [(1, 2), (2, 2), (3, 1)] {
        h.push(rec(
            2000 + id,
            Event::ManagerFinal {
                manager: id,
                reachable: true,
                cluster: Some("app1".into()),
                master: Some(if epoch == 2 { "db2" } else { "db1" }.into()),
                epoch: Some(epoch),
                applied_commands: Some(10),
            },
        ));
    }
    let report = check(&h);
    let c = report.check("manager_state_intact").unwrap();
    assert_eq!(c.verdict, Verdict::Invalid, "{}", report.render());
}

#[test]
fn a_master_left_fenced_after_healing_is_invalid_and_one_writing_again_is_valid() {
    // A manager-only scenario: the master self-fenced while cut off from the managers; after
    // healing nothing acknowledges a write any more.
    let mut h = baseline();
    set_config(&mut h, |c| c.expect_no_failover = true);
    let end = h.last().map_or(0, |r| r.time_ns / 1_000_000);
    h.push(rec(end + 10, Event::Healed));
    let report = check(&h);
    let c = report.check("writable_after_heal").unwrap();
    assert_eq!(c.verdict, Verdict::Invalid, "{}", report.render());

    // The same run where the master took a write again after healing.
    write(&mut h, end + 20, 99_001, "db1", 1);
    let report = check(&h);
    let c = report.check("writable_after_heal").unwrap();
    assert_eq!(c.verdict, Verdict::Valid, "{}", report.render());
}
