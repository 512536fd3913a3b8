use super::*;

const TTL: Duration = Duration::from_millis(2000);

fn t0() -> Instant {
    Instant::now()
}

fn ms(base: Instant, n: u64) -> Instant {
    base + Duration::from_millis(n)
}

fn renewal(epoch: u64, manager: u64) -> Renewal {
    Renewal {
        cluster: "app1".into(),
        epoch,
        manager,
        voters: [1, 2, 3].into(),
        ttl: TTL,
    }
}

fn fence(epoch: u64, reason: FenceReason) -> FenceRecord {
    FenceRecord {
        cluster: "app1".into(),
        epoch,
        how: FenceHow::ReadOnly,
        reason,
        at_unix_ms: 0,
    }
}

#[test]
fn an_agent_that_never_got_a_renewal_never_fences() {
    let b = LeaseBook::default();
    assert_eq!(b.must_fence(ms(t0(), 1_000_000)), None);
}

#[test]
fn arming_gives_one_ttl_of_grace_then_a_majority_is_needed() {
    let base = t0();
    let mut b = LeaseBook::default();
    assert!(
        b.renew(base, &renewal(1, 1)).expect("armed"),
        "arming is persisted"
    );
    // One manager of three: within the grace period nothing happens.
    assert_eq!(b.must_fence(ms(base, 1999)), None);
    assert_eq!(b.must_fence(ms(base, 2000)), Some(("app1".into(), 1)));
}

#[test]
fn a_majority_of_distinct_voters_holds_the_lease() {
    let base = t0();
    let mut b = LeaseBook::default();
    for at in (0..10_000).step_by(250) {
        b.renew(ms(base, at), &renewal(1, 1)).expect("renew");
        b.renew(ms(base, at + 10), &renewal(1, 2)).expect("renew");
        assert_eq!(b.must_fence(ms(base, at + 20)), None, "at {at} ms");
    }
    let v = b.view(ms(base, 10_000)).expect("armed");
    assert_eq!((v.holders, v.needed), (2, 2));
    // The same manager renewing twice counts once.
    let mut b = LeaseBook::default();
    for at in (0..5000).step_by(100) {
        b.renew(ms(base, at), &renewal(1, 3)).expect("renew");
    }
    assert_eq!(b.must_fence(ms(base, 5000)), Some(("app1".into(), 1)));
}

#[test]
fn the_lease_expires_ttl_after_the_majority_stopped_renewing() {
    let base = t0();
    let mut b = LeaseBook::default();
    b.renew(base, &renewal(1, 1)).expect("renew");
    b.renew(base, &renewal(1, 2)).expect("renew");
    b.renew(ms(base, 3000), &renewal(1, 1)).expect("renew");
    b.renew(ms(base, 3000), &renewal(1, 2)).expect("renew");
    // Manager 2 stops at 3000 ms; manager 1 keeps renewing: one of three is not a majority.
    for at in (3250..5000).step_by(250) {
        b.renew(ms(base, at), &renewal(1, 1)).expect("renew");
    }
    assert_eq!(b.must_fence(ms(base, 4999)), None);
    assert_eq!(b.must_fence(ms(base, 5000)), Some(("app1".into(), 1)));
}

#[test]
fn renewals_from_non_voters_and_other_clusters_are_refused() {
    let base = t0();
    let mut b = LeaseBook::default();
    assert_eq!(
        b.renew(base, &renewal(1, 7)),
        Err(Refused::NotAVoter(7)),
        "a manager must be among the voters it sends"
    );
    b.renew(base, &renewal(1, 1)).expect("renew");
    let other = Renewal {
        cluster: "app2".into(),
        ..renewal(1, 2)
    };
    assert!(matches!(
        b.renew(base, &other),
        Err(Refused::OtherCluster { .. })
    ));
}

#[test]
fn stale_epochs_are_refused_and_newer_epochs_rearm() {
    let base = t0();
    let mut b = LeaseBook::default();
    b.renew(base, &renewal(2, 1)).expect("renew");
    assert_eq!(
        b.renew(base, &renewal(1, 2)),
        Err(Refused::StaleEpoch { armed: 2, got: 1 })
    );
    assert!(b.renew(ms(base, 1500), &renewal(3, 1)).expect("rearm"));
    assert_eq!(b.view(ms(base, 1500)).map(|v| v.epoch), Some(3));
    // A new grace period started at the re-arming.
    assert_eq!(b.must_fence(ms(base, 3000)), None);
    assert_eq!(b.must_fence(ms(base, 3500)), Some(("app1".into(), 3)));
}

#[test]
fn a_zero_ttl_disarms() {
    let base = t0();
    let mut b = LeaseBook::default();
    b.renew(base, &renewal(1, 1)).expect("renew");
    let off = Renewal {
        ttl: Duration::ZERO,
        ..renewal(1, 1)
    };
    assert!(b.renew(base, &off).expect("disarm"));
    assert_eq!(b.must_fence(ms(base, 60_000)), None);
}

#[test]
fn a_fenced_agent_stays_fenced_while_renewals_come_back() {
    let base = t0();
    let mut b = LeaseBook::default();
    b.renew(base, &renewal(1, 1)).expect("renew");
    let (_, epoch) = b.must_fence(ms(base, 2500)).expect("expired");
    b.record_fence(fence(epoch, FenceReason::LeaseExpired));
    assert_eq!(b.must_fence(ms(base, 2600)), None, "fenced once");
    for m in [1, 2, 3] {
        b.renew(ms(base, 3000), &renewal(1, m)).expect("renew");
    }
    assert!(b.fenced().is_some(), "renewals never lift a fence");
    assert_eq!(b.must_fence(ms(base, 9000)), None);
}

#[test]
fn unfence_needs_the_armed_epoch_and_a_majority_now() {
    let base = t0();
    let mut b = LeaseBook::default();
    b.renew(base, &renewal(1, 1)).expect("renew");
    b.record_fence(fence(1, FenceReason::LeaseExpired));
    assert!(matches!(
        b.may_unfence(ms(base, 100), "app1", 1),
        Err(Refused::NoMajority {
            holders: 1,
            needed: 2
        })
    ));
    b.renew(ms(base, 200), &renewal(1, 2)).expect("renew");
    assert!(matches!(
        b.may_unfence(ms(base, 300), "app1", 2),
        Err(Refused::NotArmed { .. })
    ));
    assert!(matches!(
        b.may_unfence(ms(base, 300), "app2", 1),
        Err(Refused::NotArmed { .. })
    ));
    assert_eq!(b.may_unfence(ms(base, 300), "app1", 1), Ok(()));
    b.clear_fence();
    assert!(b.fenced().is_none());
    // Later expiry fences again.
    assert_eq!(b.must_fence(ms(base, 2300)), Some(("app1".into(), 1)));
}

#[test]
fn an_old_fence_does_not_hide_an_expired_newer_lease() {
    let base = t0();
    let mut b = LeaseBook::default();
    b.record_fence(fence(1, FenceReason::Leader));
    b.renew(base, &renewal(3, 1))
        .expect("promoted again at epoch 3");
    assert_eq!(b.must_fence(ms(base, 2000)), Some(("app1".into(), 3)));
    // A fence of an older epoch never replaces a newer one.
    b.record_fence(fence(3, FenceReason::LeaseExpired));
    b.record_fence(fence(2, FenceReason::Leader));
    assert_eq!(b.fenced().map(|f| f.epoch), Some(3));
}

#[test]
fn a_restored_book_keeps_the_fence_and_enforces_the_lease_after_grace() {
    let base = t0();
    let mut b = LeaseBook::default();
    b.renew(base, &renewal(1, 1)).expect("renew");
    b.renew(base, &renewal(1, 2)).expect("renew");
    let json = serde_json::to_string(&b.persisted()).expect("json");
    let p: Persisted = serde_json::from_str(&json).expect("parse");
    let restarted = ms(base, 60_000);
    let r = LeaseBook::restore(p, restarted);
    assert_eq!(
        r.must_fence(ms(restarted, 1000)),
        None,
        "grace after restart"
    );
    assert_eq!(
        r.must_fence(ms(restarted, 2000)),
        Some(("app1".into(), 1)),
        "a restarted agent holds no renewals"
    );
    let mut fenced = LeaseBook::default();
    fenced.record_fence(fence(4, FenceReason::Leader));
    let r = LeaseBook::restore(fenced.persisted(), restarted);
    assert_eq!(r.fenced().map(|f| f.epoch), Some(4));
}

#[test]
fn a_host_that_became_a_replica_retires_its_lease_and_refuses_old_epochs() {
    let base = t0();
    let mut b = LeaseBook::default();
    b.renew(base, &renewal(2, 1)).expect("renew");
    b.record_fence(fence(2, FenceReason::LeaseExpired));
    assert!(b.is_active());
    assert!(b.retire());
    assert!(b.fenced().is_none(), "a replica carries no fence record");
    assert_eq!(b.must_fence(ms(base, 60_000)), None, "and no lease");
    assert_eq!(
        b.renew(ms(base, 100), &renewal(2, 2)),
        Err(Refused::Retired { retired: 2, got: 2 }),
        "a lagging manager renewing the old master"
    );
    assert!(!b.retire(), "nothing left to retire");
    // Promoted again later: a newer epoch arms.
    assert!(b.renew(ms(base, 200), &renewal(3, 1)).expect("arms"));
    let mut restored = LeaseBook::restore(b.persisted(), ms(base, 300));
    assert!(
        matches!(
            restored.renew(ms(base, 400), &renewal(2, 1)),
            Err(Refused::Retired { retired: 2, .. })
        ),
        "the retired epoch survives a restart"
    );
}
