//! When did the old master's lease surely lapse? Plain logic over the managers' verdicts.
//!
//! A manager renews the lease only right after a check that found the master alive
//! ([`super::renew`]). Its journaled `Dead` verdict's window opens at its last such check
//! (`last_alive_at`, else the first failure: `failing_since` below) and shows an unbroken
//! failure streak up to `observed_at`, so it sent no renewal that arrived later than
//! `failing_since + RENEWAL_TIMEOUT` — at least up to `observed_at`. The agent holds the lease
//! only while a majority of voters renewed within the TTL, so once a majority of voters has
//! stopped, the lease lapses [`lease_wait`] after the *latest* of those stops (the TTL, the
//! renewal in flight, one agent check, the fence itself).
//!
//! The stop times are on each manager's own clock; the deciding manager converts each one
//! two ways and keeps the earlier, both being upper bounds on its own clock:
//! - `failing_since + max_clock_skew` (clocks agree within the skew);
//! - `known_at − (observed_at − failing_since)`: the verdict was already in this manager's
//!   state at `known_at` (when it applied the entry, or at the latest when it read its state),
//!   and the streak's length is measured on one clock, so it needs no agreement between
//!   clocks at all.
//!
//! Assumption (the same as the lease's): a manager that reported the master dead does not
//! see it alive again and renew between its last report and the failover's start reaching
//! it (it stops renewing once it has applied the start, see `run_renewals`).
use std::collections::BTreeSet;
use std::time::Duration;

use super::monitor::{Millis, Verdict};
use super::quorum::{ManagerId, ManagerVerdict, latest_per_voter};
use super::renew::lease_wait;

/// One manager's stop, on the deciding manager's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    pub manager: ManagerId,
    /// No renewal from it arrived after this (plus the renewal timeout, in [`lease_wait`]).
    pub at: Millis,
    /// The streak behind it: its start on the manager's own clock (to re-check later).
    pub failing_since: Millis,
}

/// The stops that prove a majority of `voters` stopped renewing for the master of `epoch`:
/// the earliest majority, sorted by time. `None` when fewer than a majority of voters hold a
/// `Dead` verdict about that epoch.
pub fn majority_stopped(
    voters: &BTreeSet<ManagerId>,
    epoch: u64,
    verdicts: &[ManagerVerdict],
    known_at: impl Fn(&ManagerVerdict) -> Millis,
    max_clock_skew: Duration,
) -> Option<Vec<Stop>> {
    let latest = latest_per_voter(voters, verdicts);
    let skew = u64::try_from(max_clock_skew.as_millis()).unwrap_or(u64::MAX);
    let mut stops: Vec<Stop> = latest
        .values()
        .filter(|v| v.master_epoch == epoch && v.report.verdict == Verdict::Dead)
        .filter_map(|v| {
            let start = v.report.failing_since?;
            let streak = v.report.observed_at.checked_sub(start)?;
            let by_skew = start.saturating_add(skew);
            let by_streak = known_at(v).saturating_sub(streak);
            Some(Stop {
                manager: v.manager,
                at: by_skew.min(by_streak),
                failing_since: start,
            })
        })
        .collect();
    let needed = voters.len() / 2 + 1;
    if stops.len() < needed {
        return None;
    }
    stops.sort_by_key(|s| (s.at, s.manager));
    stops.truncate(needed);
    Some(stops)
}

/// When the lease surely lapsed (deciding manager's wall clock, ms): [`lease_wait`] after the
/// latest stop of the majority.
pub fn lapsed_at(stops: &[Stop], ttl: Duration) -> Option<Millis> {
    let last = stops.iter().map(|s| s.at).max()?;
    let wait = u64::try_from(lease_wait(ttl).as_millis()).unwrap_or(u64::MAX);
    Some(last.saturating_add(wait))
}

#[cfg(test)]
#[path = "lease_bound_tests.rs"]
mod tests;
