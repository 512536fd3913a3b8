use super::*;

fn rec(now: Instant, epoch: u64, is_me: bool) -> Recorded {
    Recorded {
        cluster: "app1".into(),
        epoch,
        master: "db1".into(),
        master_addr: "10.0.0.11:3306".into(),
        is_me,
        at: now,
    }
}

fn writable(now: Instant) -> SqlFacts {
    SqlFacts {
        at: now,
        error: None,
        read_only: false,
        replica: None,
    }
}

fn replicating(now: Instant) -> SqlFacts {
    SqlFacts {
        at: now,
        error: None,
        read_only: true,
        replica: Some(ReplicaFacts {
            source_host: "10.0.0.11".into(),
            source_port: 3306,
            io_running: true,
            sql_running: true,
            seconds_behind: Some(2),
            ..ReplicaFacts::default()
        }),
    }
}

const HELD: LeaseFacts = LeaseFacts {
    armed_epoch: Some(3),
    held: true,
    fenced: false,
};

#[test]
fn the_renewed_writable_master_with_a_held_lease_is_master() {
    let now = Instant::now();
    let r = master(Some(&rec(now, 3, true)), HELD, Some(&writable(now)), now);
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn master_is_refused_for_every_missing_condition() {
    let now = Instant::now();
    let me = rec(now, 3, true);
    let ok = writable(now);
    let cases: Vec<(&str, Reply)> = vec![
        ("unknown", master(None, HELD, Some(&ok), now)),
        (
            "another is recorded",
            master(Some(&rec(now, 4, false)), HELD, Some(&ok), now),
        ),
        (
            "fenced",
            master(
                Some(&me),
                LeaseFacts {
                    fenced: true,
                    ..HELD
                },
                Some(&ok),
                now,
            ),
        ),
        (
            "lease lapsed",
            master(
                Some(&me),
                LeaseFacts {
                    held: false,
                    ..HELD
                },
                Some(&ok),
                now,
            ),
        ),
        (
            "lease of another epoch",
            master(
                Some(&me),
                LeaseFacts {
                    armed_epoch: Some(2),
                    ..HELD
                },
                Some(&ok),
                now,
            ),
        ),
        ("not queried", master(Some(&me), HELD, None, now)),
        (
            "read_only",
            master(
                Some(&me),
                HELD,
                Some(&SqlFacts {
                    read_only: true,
                    ..ok.clone()
                }),
                now,
            ),
        ),
        (
            "mysqld down",
            master(
                Some(&me),
                HELD,
                Some(&SqlFacts {
                    error: Some("connection refused".into()),
                    ..ok.clone()
                }),
                now,
            ),
        ),
        (
            "stale facts",
            master(Some(&me), HELD, Some(&ok), now + SQL_STALE * 2),
        ),
    ];
    for (what, r) in cases {
        assert_eq!(r.status, 503, "{what}: {}", r.body);
    }
}

#[test]
fn with_the_lease_off_the_master_needs_recent_renewals() {
    let now = Instant::now();
    let off = LeaseFacts {
        armed_epoch: None,
        held: true,
        fenced: false,
    };
    let me = rec(now, 3, true);
    let later = now + RENEWAL_STALE + Duration::from_millis(1);
    let sql = writable(later);
    assert_eq!(
        master(Some(&me), off, Some(&writable(now)), now).status,
        200
    );
    assert_eq!(master(Some(&me), off, Some(&sql), later).status, 503);
}

#[test]
fn a_replica_of_the_recorded_master_within_the_lag_bound_is_a_replica() {
    let now = Instant::now();
    let other = rec(now, 3, false);
    let r = replica(Some(&other), Some(&replicating(now)), Some(5), now);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = replica(Some(&other), Some(&replicating(now)), None, now);
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn replica_is_refused_for_every_missing_condition() {
    let now = Instant::now();
    let other = rec(now, 3, false);
    let base = replicating(now);
    let with = |f: &dyn Fn(&mut ReplicaFacts)| {
        let mut s = base.clone();
        if let Some(r) = s.replica.as_mut() {
            f(r);
        }
        s
    };
    let cases: Vec<(&str, Reply)> = vec![
        ("unknown master", replica(None, Some(&base), None, now)),
        (
            "this is the master",
            replica(Some(&rec(now, 3, true)), Some(&base), None, now),
        ),
        (
            "not replicating",
            replica(Some(&other), Some(&writable(now)), None, now),
        ),
        (
            "other source",
            replica(
                Some(&other),
                Some(&with(&|r| r.source_host = "10.0.0.12".into())),
                None,
                now,
            ),
        ),
        (
            "io stopped",
            replica(
                Some(&other),
                Some(&with(&|r| r.io_running = false)),
                None,
                now,
            ),
        ),
        (
            "sql error",
            replica(
                Some(&other),
                Some(&with(&|r| r.last_sql_errno = 1062)),
                None,
                now,
            ),
        ),
        (
            "too far behind",
            replica(Some(&other), Some(&base), Some(1), now),
        ),
        (
            "lag unknown",
            replica(
                Some(&other),
                Some(&with(&|r| r.seconds_behind = None)),
                Some(10),
                now,
            ),
        ),
        (
            "stale",
            replica(Some(&other), Some(&base), None, now + SQL_STALE * 2),
        ),
    ];
    for (what, r) in cases {
        assert_eq!(r.status, 503, "{what}: {}", r.body);
    }
}

#[test]
fn an_older_epoch_never_replaces_a_newer_record() {
    let now = Instant::now();
    let newer = rec(now, 4, false);
    assert!(!newer.superseded_by(&rec(now, 3, true)));
    assert!(newer.superseded_by(&rec(now, 4, false)));
    assert!(newer.superseded_by(&rec(now, 5, true)));
}
