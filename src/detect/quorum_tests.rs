use super::*;
use crate::detect::monitor::ReportReason;

const NOW: Millis = 100_000;
const EPOCH: u64 = 7;

fn voters(n: u64) -> BTreeSet<ManagerId> {
    (1..=n).collect()
}

fn verdict(manager: ManagerId, verdict: Verdict, observed_at: Millis) -> ManagerVerdict {
    ManagerVerdict {
        manager,
        master_epoch: EPOCH,
        report: VerdictReport {
            verdict,
            reason: ReportReason::Changed,
            observed_at,
            failing_since: None,
            last_alive_at: None,
            consecutive_failures: 3,
            last_failure: None,
        },
    }
}

fn replica(name: &str, io: IoThread) -> ReplicaEvidence {
    ReplicaEvidence {
        replica: name.into(),
        view: ReplicaView::Reachable {
            replicates_from_master: true,
            io_thread: io,
            last_io_errno: 2003,
            progress: None,
            heartbeat_period_ms: None,
            silent_for_ms: None,
        },
    }
}

/// A replica whose IO thread still looks connected, heartbeats every `period` ms, and whose
/// stream has stood still for `silent` ms.
fn connected(name: &str, period: u64, silent: Millis) -> ReplicaEvidence {
    ReplicaEvidence {
        replica: name.into(),
        view: ReplicaView::Reachable {
            replicates_from_master: true,
            io_thread: IoThread::Yes,
            last_io_errno: 0,
            progress: Some(progress(100, 7)),
            heartbeat_period_ms: Some(period),
            silent_for_ms: Some(silent),
        },
    }
}

fn progress(pos: u64, heartbeats: u64) -> ReceiveProgress {
    ReceiveProgress {
        read: crate::db::BinlogCoord::new("binlog.000001", pos),
        gtid_io_pos: None,
        heartbeats,
    }
}

/// The default rule with three voting managers, at `NOW`, about `EPOCH`.
fn decide3(verdicts: &[ManagerVerdict], replicas: &[ReplicaEvidence]) -> Decision {
    decide(
        &QuorumConfig::default(),
        &voters(3),
        EPOCH,
        verdicts,
        NOW,
        replicas,
    )
}

fn confirming() -> Vec<ReplicaEvidence> {
    vec![
        replica("db2", IoThread::Connecting),
        replica("db3", IoThread::No),
    ]
}

#[test]
fn a_fresh_majority_with_confirming_replicas_decides_dead() {
    let verdicts = [
        verdict(1, Verdict::Dead, NOW - 100),
        verdict(2, Verdict::Dead, NOW - 900),
    ];
    let d = decide3(&verdicts, &confirming());
    assert_eq!(
        d,
        Decision::MasterDead {
            supporters: vec![1, 2],
            confirming_replicas: vec!["db2".into(), "db3".into()]
        }
    );
}

#[test]
fn a_minority_of_managers_seeing_dead_never_decides() {
    let cfg = QuorumConfig::default();
    let verdicts = [
        verdict(1, Verdict::Dead, NOW),
        verdict(2, Verdict::Alive, NOW),
        verdict(3, Verdict::Alive, NOW),
    ];
    let d = decide(&cfg, &voters(3), EPOCH, &verdicts, NOW, &confirming());
    assert!(
        matches!(d, Decision::NotDead(Refusal::NoQuorum { needed: 2, .. })),
        "{d:?}"
    );
    // Two of five is still a minority, even with replicas confirming.
    let verdicts = [
        verdict(1, Verdict::Dead, NOW),
        verdict(2, Verdict::Dead, NOW),
    ];
    let d = decide(&cfg, &voters(5), EPOCH, &verdicts, NOW, &confirming());
    assert!(
        matches!(d, Decision::NotDead(Refusal::NoQuorum { needed: 3, .. })),
        "{d:?}"
    );
    // Silent managers do not count as dead votes.
    let d = decide(&cfg, &voters(3), EPOCH, &verdicts[..1], NOW, &confirming());
    assert!(matches!(d, Decision::NotDead(_)));
}

#[test]
fn a_paused_managers_stale_verdict_is_not_fresh() {
    // Manager 2 said "dead" 10 s ago and then froze (SIGSTOP); only manager 1 is current.
    let verdicts = [
        verdict(1, Verdict::Dead, NOW - 200),
        verdict(2, Verdict::Dead, NOW - 10_000),
    ];
    let d = decide3(&verdicts, &confirming());
    assert_eq!(
        d,
        Decision::NotDead(Refusal::NoQuorum {
            dead_votes: vec![1],
            needed: 2,
            stale: vec![2],
            other_epoch: vec![]
        })
    );
}

#[test]
fn verdicts_from_the_future_count_only_within_the_clock_skew() {
    let cfg = QuorumConfig::default();
    let ok = [
        verdict(1, Verdict::Dead, NOW + 300),
        verdict(2, Verdict::Dead, NOW),
    ];
    assert!(matches!(
        decide(&cfg, &voters(3), EPOCH, &ok, NOW, &confirming()),
        Decision::MasterDead { .. }
    ));
    let skewed = [
        verdict(1, Verdict::Dead, NOW + 5_000),
        verdict(2, Verdict::Dead, NOW),
    ];
    assert!(matches!(
        decide(&cfg, &voters(3), EPOCH, &skewed, NOW, &confirming()),
        Decision::NotDead(_)
    ));
}

#[test]
fn verdicts_about_another_epoch_do_not_count() {
    let mut old = verdict(2, Verdict::Dead, NOW);
    old.master_epoch = EPOCH - 1;
    let verdicts = [verdict(1, Verdict::Dead, NOW), old];
    let d = decide3(&verdicts, &confirming());
    assert!(
        matches!(d, Decision::NotDead(Refusal::NoQuorum { ref other_epoch, .. }) if other_epoch == &vec![2]),
        "{d:?}"
    );
}

#[test]
fn only_the_latest_verdict_of_each_manager_counts() {
    // Manager 2 said dead, then alive again: it no longer supports a failover.
    let verdicts = [
        verdict(1, Verdict::Dead, NOW),
        verdict(2, Verdict::Dead, NOW - 500),
        verdict(2, Verdict::Alive, NOW - 100),
    ];
    let d = decide3(&verdicts, &confirming());
    assert!(
        matches!(d, Decision::NotDead(Refusal::NoQuorum { .. })),
        "{d:?}"
    );
}

#[test]
fn non_voters_are_ignored() {
    let verdicts = [
        verdict(1, Verdict::Dead, NOW),
        verdict(9, Verdict::Dead, NOW),
    ];
    let d = decide3(&verdicts, &confirming());
    assert!(
        matches!(d, Decision::NotDead(Refusal::NoQuorum { .. })),
        "{d:?}"
    );
}

#[test]
fn a_replica_still_receiving_refutes() {
    let verdicts = [
        verdict(1, Verdict::Dead, NOW),
        verdict(2, Verdict::Dead, NOW),
    ];
    let replicas = [
        replica("db2", IoThread::Connecting),
        replica("db3", IoThread::Yes),
    ];
    let d = decide3(&verdicts, &replicas);
    assert_eq!(
        d,
        Decision::NotDead(Refusal::ReplicasStillReceiving {
            replicas: vec!["db3".into()]
        })
    );
}

#[test]
fn unreachable_replicas_neither_confirm_nor_refute() {
    let verdicts = [
        verdict(1, Verdict::Dead, NOW),
        verdict(2, Verdict::Dead, NOW),
    ];
    let unreachable = ReplicaEvidence {
        replica: "db3".into(),
        view: ReplicaView::Unreachable,
    };
    let d = decide3(
        &verdicts,
        &[replica("db2", IoThread::Connecting), unreachable.clone()],
    );
    assert_eq!(
        d,
        Decision::MasterDead {
            supporters: vec![1, 2],
            confirming_replicas: vec!["db2".into()]
        }
    );
    let d = decide3(&verdicts, &[unreachable]);
    assert_eq!(d, Decision::NotDead(Refusal::NoReplicaCouldConfirm));
}

#[test]
fn replicas_of_another_source_are_ignored() {
    let verdicts = [
        verdict(1, Verdict::Dead, NOW),
        verdict(2, Verdict::Dead, NOW),
    ];
    let elsewhere = ReplicaEvidence {
        replica: "db4".into(),
        view: ReplicaView::Reachable {
            replicates_from_master: false,
            io_thread: IoThread::Yes,
            last_io_errno: 0,
            progress: None,
            heartbeat_period_ms: None,
            silent_for_ms: None,
        },
    };
    let d = decide3(&verdicts, &[elsewhere, replica("db2", IoThread::No)]);
    assert!(matches!(d, Decision::MasterDead { .. }), "{d:?}");
}

#[test]
fn confirmation_can_be_turned_off() {
    let cfg = QuorumConfig {
        replica_confirmation: false,
        ..Default::default()
    };
    let verdicts = [
        verdict(1, Verdict::Dead, NOW),
        verdict(3, Verdict::Dead, NOW),
    ];
    let d = decide(&cfg, &voters(3), EPOCH, &verdicts, NOW, &[]);
    assert_eq!(
        d,
        Decision::MasterDead {
            supporters: vec![1, 3],
            confirming_replicas: vec![]
        }
    );
}

#[test]
fn suspect_is_not_dead() {
    let verdicts = [
        verdict(1, Verdict::Dead, NOW),
        verdict(2, Verdict::Suspect, NOW),
    ];
    let d = decide3(&verdicts, &confirming());
    assert!(matches!(d, Decision::NotDead(_)));
}

#[test]
fn freshness_must_outlast_the_reaffirmation_period() {
    let monitor = crate::detect::MonitorConfig::default();
    assert!(QuorumConfig::default().validate(&monitor).is_ok());
    let short = QuorumConfig {
        freshness: std::time::Duration::from_millis(1000),
        ..Default::default()
    };
    assert!(short.validate(&monitor).is_err());
}

fn two_dead() -> [ManagerVerdict; 2] {
    [
        verdict(1, Verdict::Dead, NOW),
        verdict(2, Verdict::Dead, NOW),
    ]
}

#[test]
fn a_connected_replica_whose_stream_stood_still_for_three_periods_confirms() {
    let d = decide3(
        &two_dead(),
        &[connected("db2", 500, 1501), connected("db3", 500, 1600)],
    );
    assert_eq!(
        d,
        Decision::MasterDead {
            supporters: vec![1, 2],
            confirming_replicas: vec!["db2".into(), "db3".into()]
        }
    );
}

#[test]
fn a_connected_replica_that_heard_from_the_master_recently_refutes() {
    // 1.5 s is exactly three periods: not more.
    let d = decide3(
        &two_dead(),
        &[connected("db2", 500, 1500), connected("db3", 500, 5000)],
    );
    assert_eq!(
        d,
        Decision::NotDead(Refusal::ReplicasStillReceiving {
            replicas: vec!["db2".into()]
        })
    );
    // Sampled once only: no evidence of silence yet.
    let mut fresh = connected("db2", 500, 0);
    if let ReplicaView::Reachable { silent_for_ms, .. } = &mut fresh.view {
        *silent_for_ms = None;
    }
    assert!(matches!(
        decide3(&two_dead(), &[fresh]),
        Decision::NotDead(Refusal::ReplicasStillReceiving { .. })
    ));
}

#[test]
fn without_heartbeats_silence_proves_nothing() {
    // Period 0 (heartbeats off) or unknown (no counter on this server): only the IO thread
    // giving up confirms, however long the stream has been still.
    for period in [Some(0), None] {
        let mut r = connected("db2", 0, 600_000);
        if let ReplicaView::Reachable {
            heartbeat_period_ms,
            ..
        } = &mut r.view
        {
            *heartbeat_period_ms = period;
        }
        assert!(
            matches!(
                decide3(&two_dead(), &[r]),
                Decision::NotDead(Refusal::ReplicasStillReceiving { .. })
            ),
            "{period:?}"
        );
    }
}

#[test]
fn a_tiny_heartbeat_period_is_held_to_the_silence_floor() {
    assert!(matches!(
        decide3(&two_dead(), &[connected("db2", 10, 450)]),
        Decision::NotDead(Refusal::ReplicasStillReceiving { .. })
    ));
    assert!(matches!(
        decide3(&two_dead(), &[connected("db2", 10, 501)]),
        Decision::MasterDead { .. }
    ));
}

#[test]
fn silence_is_measured_over_the_deciding_managers_samples() {
    let mut tracker = SilenceTracker::default();
    let sample = |pos: u64, hb: u64| {
        let mut r = connected("db2", 500, 0);
        if let ReplicaView::Reachable {
            progress,
            silent_for_ms,
            ..
        } = &mut r.view
        {
            *progress = Some(self::progress(pos, hb));
            *silent_for_ms = None;
        }
        vec![r]
    };
    let mut at = 50_000;
    let mut verdicts = Vec::new();
    // A master that keeps sending heartbeats: never confirmed, however long we sample.
    for hb in 0..20 {
        let mut ev = sample(100, hb);
        note_silence(&mut tracker, &mut ev, at, 1000);
        verdicts.push(decide3(&two_dead(), &ev));
        at += 400;
    }
    assert!(verdicts.iter().all(|d| matches!(d, Decision::NotDead(_))));
    // It goes silent: confirmed once the stream stood still for more than 1.5 s.
    let mut confirmed_after = None;
    for i in 0..10u64 {
        let mut ev = sample(100, 19);
        note_silence(&mut tracker, &mut ev, at + i * 400, 1000);
        if matches!(decide3(&two_dead(), &ev), Decision::MasterDead { .. }) {
            confirmed_after = Some(i * 400);
            break;
        }
    }
    // The last heartbeat (19) was seen at the previous sample, 400 ms before `at`.
    assert_eq!(confirmed_after, Some(1200));
}
