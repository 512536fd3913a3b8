//! How long the promotion waits when neither the old master nor its agent answered: the
//! instant its lease surely lapsed, from the managers' journaled verdicts
//! ([`crate::detect::lease_bound`]), and never later than a whole lease counted from the
//! start of the wait (the bound that needs no verdicts).
use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use crate::detect::lease_bound::{lapsed_at, majority_stopped};
use crate::detect::renew::lease_wait;
use crate::detect::{ManagerVerdict, Millis, QuorumConfig, ReportReason, Verdict, VerdictReport};
use crate::state::ClusterRecord;

/// When the lease of `master` surely lapsed, as an instant, given the cluster state read
/// before `now` (`now_ms`: the same moment on the wall clock). `step_started` is the start of
/// the wait. `seen_at(manager, window_end_ms)`: when this manager applied that verdict (wall
/// clock), if known; `now_ms` stands in otherwise.
pub fn lease_lapsed_at(
    cluster: &ClusterRecord,
    master: &str,
    epoch: u64,
    ttl: Duration,
    (step_started, now, now_ms): (Instant, Instant, Millis),
    seen_at: impl Fn(u64, Millis) -> Option<Millis>,
) -> Instant {
    let whole_lease = step_started + lease_wait(ttl);
    let verdicts = journaled_verdicts(cluster, master);
    // The managers that ever reported on this master: every voter that checked it once is
    // among them (its first check is reported), and counting more is only stricter.
    let voters: BTreeSet<u64> = verdicts.iter().map(|v| v.manager).collect();
    let skew = QuorumConfig::default().max_clock_skew;
    let known_at = |v: &ManagerVerdict| {
        seen_at(v.manager, v.report.observed_at)
            .unwrap_or(now_ms)
            .min(now_ms)
    };
    let Some(at) = majority_stopped(&voters, epoch, &verdicts, known_at, skew)
        .and_then(|stops| lapsed_at(&stops, ttl))
    else {
        return whole_lease;
    };
    let from_verdicts = now + Duration::from_millis(at.saturating_sub(now_ms));
    from_verdicts.min(whole_lease)
}

/// The managers' latest journaled verdicts about `master`, as the detection rules read them.
pub fn journaled_verdicts(c: &ClusterRecord, master: &str) -> Vec<ManagerVerdict> {
    let Some(by_manager) = c.verdicts.get(master) else {
        return Vec::new();
    };
    by_manager
        .iter()
        .map(|(id, v)| ManagerVerdict {
            manager: *id,
            master_epoch: v.master_epoch,
            report: VerdictReport {
                verdict: match v.verdict {
                    crate::state::Verdict::Alive => Verdict::Alive,
                    crate::state::Verdict::Suspect => Verdict::Suspect,
                    crate::state::Verdict::Dead => Verdict::Dead,
                },
                reason: ReportReason::Changed,
                observed_at: v.window_end_ms,
                failing_since: Some(v.window_start_ms),
                last_alive_at: None,
                consecutive_failures: 0,
                last_failure: None,
            },
        })
        .collect()
}
