use super::*;
use crate::detect::monitor::{ReportReason, VerdictReport};

const EPOCH: u64 = 4;
const SKEW: Duration = Duration::from_millis(500);

fn voters(n: u64) -> BTreeSet<ManagerId> {
    (1..=n).collect()
}

fn dead(manager: ManagerId, failing_since: Millis, observed_at: Millis) -> ManagerVerdict {
    ManagerVerdict {
        manager,
        master_epoch: EPOCH,
        report: VerdictReport {
            verdict: Verdict::Dead,
            reason: ReportReason::Changed,
            observed_at,
            failing_since: Some(failing_since),
            last_alive_at: None,
            consecutive_failures: 3,
            last_failure: None,
        },
    }
}

#[test]
fn the_latest_stop_of_the_earliest_majority_counts() {
    // Three managers stopped at 10.0 s, 10.1 s and 12.0 s (their clocks); read long after.
    let v = [
        dead(1, 10_000, 10_450),
        dead(2, 10_100, 10_550),
        dead(3, 12_000, 12_450),
    ];
    let stops = majority_stopped(&voters(3), EPOCH, &v, |_| 60_000, SKEW).expect("majority");
    assert_eq!(
        stops.iter().map(|s| (s.manager, s.at)).collect::<Vec<_>>(),
        vec![(1, 10_500), (2, 10_600)]
    );
    let ttl = Duration::from_secs(2);
    let wait = u64::try_from(lease_wait(ttl).as_millis()).expect("ms");
    assert_eq!(lapsed_at(&stops, ttl), Some(10_600 + wait));
}

#[test]
fn the_streak_length_bounds_the_stop_without_trusting_clocks() {
    // Manager 2's clock runs 5 s ahead: its stamps alone would put the stop in our future.
    // The streak (1.5 s, measured on its own clock) read at 12.0 s bounds it at 10.5 s.
    let v = [dead(1, 10_000, 11_000), dead(2, 15_000, 16_500)];
    let stops = majority_stopped(&voters(3), EPOCH, &v, |_| 12_000, SKEW).expect("majority");
    assert_eq!(
        stops.iter().map(|s| (s.manager, s.at)).collect::<Vec<_>>(),
        vec![(1, 10_500), (2, 10_500)]
    );
}

#[test]
fn each_verdict_counts_from_when_it_was_applied_here() {
    // Read late (14.0 s), but the verdicts were applied here 20 ms after their observation:
    // the streaks then bound the stops within 20 ms, tighter than the clock skew allowance.
    let v = [dead(1, 10_000, 10_900), dead(2, 10_100, 11_000)];
    let applied = |m: &ManagerVerdict| m.report.observed_at + 20;
    let stops = majority_stopped(&voters(3), EPOCH, &v, applied, SKEW).expect("majority");
    assert_eq!(
        stops.iter().map(|s| (s.manager, s.at)).collect::<Vec<_>>(),
        vec![(1, 10_020), (2, 10_120)]
    );
    let late = majority_stopped(&voters(3), EPOCH, &v, |_| 14_000, SKEW).expect("majority");
    assert_eq!(late.iter().map(|s| s.at).max(), Some(10_600), "skew bound");
}

#[test]
fn no_majority_of_dead_verdicts_no_bound() {
    let v = [dead(1, 10_000, 10_450)];
    assert_eq!(
        majority_stopped(&voters(3), EPOCH, &v, |_| 20_000, SKEW),
        None
    );
    // Another epoch's verdicts, non-voters, and verdicts that are no longer Dead do not count.
    let mut other = dead(2, 10_000, 10_450);
    other.master_epoch = EPOCH - 1;
    let mut alive = dead(3, 10_000, 10_450);
    alive.report.verdict = Verdict::Alive;
    let stranger = dead(9, 10_000, 10_450);
    let v = [dead(1, 10_000, 10_450), other, alive, stranger];
    assert_eq!(
        majority_stopped(&voters(3), EPOCH, &v, |_| 20_000, SKEW),
        None
    );
    // A later Alive verdict of the same manager replaces its Dead one.
    let mut back = dead(2, 10_000, 11_000);
    back.report.verdict = Verdict::Alive;
    let v = [dead(1, 10_000, 10_450), dead(2, 10_000, 10_450), back];
    assert_eq!(
        majority_stopped(&voters(3), EPOCH, &v, |_| 20_000, SKEW),
        None
    );
    assert_eq!(lapsed_at(&[], Duration::from_secs(2)), None);
}

#[test]
fn five_voters_need_three_stops() {
    let v = [
        dead(1, 10_000, 10_450),
        dead(2, 10_000, 10_450),
        dead(5, 11_000, 11_450),
    ];
    let stops = majority_stopped(&voters(5), EPOCH, &v, |_| 30_000, SKEW).expect("majority");
    assert_eq!(stops.len(), 3);
    assert_eq!(stops.iter().map(|s| s.at).max(), Some(11_500));
    assert_eq!(
        majority_stopped(&voters(5), EPOCH, &v[..2], |_| 30_000, SKEW),
        None
    );
}
