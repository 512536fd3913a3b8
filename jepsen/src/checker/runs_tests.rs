//! Planted histories for the run properties: each violation must be caught (the overall
//! verdict is invalid only because of the property under test), its repaired twin is valid.
use super::*;
use crate::checker::check;
use crate::history::{DbObservation, StateAround};

const A: &str = "127.0.0.1:3306";
const B: &str = "127.0.0.2:3306";
const C: &str = "127.0.0.3:3306";

fn rec(ms: u64, event: Event) -> Record {
    Record {
        time_ns: ms * 1_000_000,
        event,
    }
}

fn step(name: &str, at_ms: u64, by: u64, term: u64) -> crate::history::JournalStep {
    crate::history::JournalStep {
        step: name.into(),
        result: true,
        at_ms,
        by: Some(by),
        term: Some(term),
    }
}

fn line(at_ms: u64, by: u64, event: &str) -> AuditLine {
    AuditLine {
        at_ms,
        by: Some(by),
        event: event.into(),
    }
}

/// Failover 1 of A, started by manager 1 (term 2), taken over by manager 2 (term 3) at
/// 1000 ms, finished by it.
fn resumed_failover(steps: Vec<crate::history::JournalStep>, finished_by: u64) -> Event {
    Event::Journal {
        runs: vec![JournalRun {
            id: 1,
            kind: "failover".into(),
            dead_master: A.into(),
            epoch: 1,
            started_at_ms: 100,
            started_by: Some(1),
            owner: Some((2, 3)),
            steps,
            finished: Some(("Succeeded".into(), 2000)),
            promoted: Some(B.into()),
        }],
        audit: vec![
            line(100, 1, "failover 1 started: master node1 dead"),
            line(
                1000,
                2,
                "failover 1 resumed by manager 2 (term 3), taking over from manager 1 (term 2)",
            ),
            line(2000, finished_by, "failover 1 finished: Succeeded"),
        ],
    }
}

fn with_config(mut events: Vec<Record>) -> Vec<Record> {
    events.insert(
        0,
        rec(
            0,
            Event::Config(RunConfig {
                managers: true,
                ..Default::default()
            }),
        ),
    );
    events
}

fn verdict(history: &[Record], name: &str) -> Verdict {
    check(history)
        .check(name)
        .unwrap_or_else(|| panic!("no check {name}"))
        .verdict
}

#[test]
fn the_owner_history_is_read_from_the_audit_trail() {
    let j = resumed_failover(vec![], 2);
    let Event::Journal { runs, audit } = &j else {
        unreachable!()
    };
    assert_eq!(
        owners(&runs[0], audit),
        Ok(vec![((1, 2), 100), ((2, 3), 1000)])
    );
}

#[test]
fn entries_by_each_owner_in_turn_are_valid() {
    let h = with_config(vec![rec(
        9,
        resumed_failover(
            vec![
                step("fence.0", 200, 1, 2),
                step("plan", 900, 1, 2),
                step("step.0", 1100, 2, 3),
            ],
            2,
        ),
    )]);
    assert_eq!(verdict(&h, "no_entry_from_deposed_owner"), Verdict::Valid);
}

#[test]
fn an_entry_of_the_deposed_owner_after_its_successor_is_invalid() {
    // Manager 1 wakes up after manager 2 took over and its step is accepted: the bug.
    let late = vec![
        step("fence.0", 200, 1, 2),
        step("step.0", 1100, 2, 3),
        step("step.1", 1200, 1, 2),
    ];
    let h = with_config(vec![rec(9, resumed_failover(late, 2))]);
    let report = check(&h);
    let c = report.check("no_entry_from_deposed_owner").unwrap();
    assert_eq!(c.verdict, Verdict::Invalid, "{c:?}");
    assert!(c.details.iter().any(|d| d.contains("after the entries")));
    assert!(c.details.iter().any(|d| d.contains("after (2, 3) took")));
    // Stamped after the takeover even with nothing of the successor's after it yet.
    let stamped_late = vec![step("fence.0", 200, 1, 2), step("step.1", 1200, 1, 2)];
    let h = with_config(vec![rec(9, resumed_failover(stamped_late, 2))]);
    assert_eq!(verdict(&h, "no_entry_from_deposed_owner"), Verdict::Invalid);
    // An entry by a manager that never owned the run.
    let stranger = vec![step("fence.0", 200, 3, 2)];
    let h = with_config(vec![rec(9, resumed_failover(stranger, 2))]);
    assert_eq!(verdict(&h, "no_entry_from_deposed_owner"), Verdict::Invalid);
}

#[test]
fn a_finish_by_the_deposed_owner_is_invalid() {
    let h = with_config(vec![rec(
        9,
        resumed_failover(vec![step("fence.0", 200, 1, 2)], 1),
    )]);
    assert_eq!(check(&h).verdict, Verdict::Invalid);
    assert_eq!(verdict(&h, "no_entry_from_deposed_owner"), Verdict::Invalid);
}

fn obs(node: &str, read_only: bool, writable: Option<bool>, source: Option<&str>) -> DbObservation {
    DbObservation {
        node: node.into(),
        reachable: true,
        read_only: Some(read_only),
        source: source.map(str::to_string),
        gtid_binlog_pos: None,
        writable,
    }
}

fn round(n: u64, nodes: Vec<DbObservation>, master: &str, promoting: &[&str]) -> Record {
    let view = StateView {
        master: Some(master.into()),
        epoch: 1,
        promoting: promoting.iter().map(|s| s.to_string()).collect(),
    };
    rec(
        100 * n,
        Event::DbRound {
            started_ns: None,
            round: n,
            nodes,
            state: Some(StateAround {
                before: Some(view.clone()),
                after: Some(view),
            }),
        },
    )
}

#[test]
fn a_writable_server_the_state_does_not_record_as_master_is_invalid() {
    // B took a non-admin write (its read_only flag said ON) while the state names A: the
    // write probe catches what read_only alone would miss.
    let h = with_config(vec![round(
        1,
        vec![
            obs(A, true, Some(false), None),
            obs(B, true, Some(true), Some(A)),
        ],
        A,
        &[],
    )]);
    assert_eq!(check(&h).verdict, Verdict::Invalid);
    assert_eq!(verdict(&h, "writable_is_recorded_master"), Verdict::Invalid);
    // The same round while a failover promotes B (read_only=OFF before it is recorded).
    let h = with_config(vec![round(
        1,
        vec![obs(A, true, None, None), obs(B, false, Some(true), None)],
        A,
        &[B],
    )]);
    assert_eq!(verdict(&h, "writable_is_recorded_master"), Verdict::Valid);
    // The recorded master itself may write.
    let h = with_config(vec![round(
        1,
        vec![obs(A, false, Some(true), None)],
        A,
        &[],
    )]);
    assert_eq!(verdict(&h, "writable_is_recorded_master"), Verdict::Valid);
}

fn failed_after_promotion(final_source_of_c: &str) -> Vec<Record> {
    let journal = Event::Journal {
        runs: vec![JournalRun {
            id: 1,
            kind: "failover".into(),
            dead_master: A.into(),
            epoch: 1,
            started_at_ms: 100,
            started_by: Some(1),
            owner: Some((1, 2)),
            steps: vec![],
            finished: Some(("Failed".into(), 500)),
            promoted: Some(B.into()),
        }],
        audit: vec![],
    };
    with_config(vec![
        round(
            1,
            vec![
                obs(B, false, Some(true), None),
                obs(C, true, Some(false), Some(A)),
            ],
            B,
            &[],
        ),
        round(
            2,
            vec![
                obs(B, false, Some(true), None),
                obs(C, true, Some(false), Some(final_source_of_c)),
            ],
            B,
            &[],
        ),
        rec(900, journal),
    ])
}

#[test]
fn a_failed_failover_leaving_a_replica_on_the_old_master_is_invalid() {
    let h = failed_after_promotion(A);
    assert_eq!(check(&h).verdict, Verdict::Invalid);
    assert_eq!(
        verdict(&h, "failed_run_left_no_replica_behind"),
        Verdict::Invalid
    );
    let h = failed_after_promotion(B);
    assert_eq!(
        verdict(&h, "failed_run_left_no_replica_behind"),
        Verdict::Valid
    );
}

#[test]
fn a_switchover_rolled_back_counts_as_the_run_a_switchover_scenario_needs() {
    let config = |h: &mut Vec<Record>| {
        h.insert(
            0,
            rec(
                0,
                Event::Config(RunConfig {
                    managers: true,
                    expect_failover: true,
                    ..Default::default()
                }),
            ),
        )
    };
    let mut none = vec![];
    config(&mut none);
    assert_eq!(verdict(&none, "failover_happened"), Verdict::Unknown);
    let mut rolled_back = vec![rec(
        9,
        Event::Journal {
            runs: vec![JournalRun {
                id: 1,
                kind: "switchover".into(),
                finished: Some(("Aborted".into(), 500)),
                ..Default::default()
            }],
            audit: vec![],
        },
    )];
    config(&mut rolled_back);
    assert_eq!(verdict(&rolled_back, "failover_happened"), Verdict::Valid);
}
