//! One manager's view of one master: a state machine fed by timestamped ping outcomes.
//!
//! It reports only when its verdict changes (that is what goes into the Raft log), plus a
//! periodic re-affirmation while it believes the master dead, so the quorum rule can tell a
//! manager that still sees the master dead from one that said so long ago and then froze.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::db::{FailureKind, PingOutcome, PingType};

/// Milliseconds since the Unix epoch on the observing manager's clock.
pub type Millis = u64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub ping_type: PingType,
    /// Time between checks; every check's timeouts fit inside it.
    pub interval: Duration,
    /// Time between checks while `Suspect`: once a check failed, confirm quickly. Refused
    /// connections and timeouts repeat at this pace; a healthy master answers the next check
    /// and the streak ends.
    pub suspect_interval: Duration,
    /// Consecutive failed checks before the verdict turns `Dead` (MHA hard-codes 4).
    pub failures_to_dead: u32,
    /// While `Dead`, report again this often so the verdict stays fresh for the quorum.
    pub reaffirm_every: Duration,
}

impl Default for MonitorConfig {
    /// 250 ms, then 100 ms × 2 more while suspect: a dead master is seen within about 0.45 s
    /// of its last answer (0.25 s to notice, 0.2 s to confirm).
    fn default() -> Self {
        MonitorConfig {
            ping_type: PingType::Select,
            interval: Duration::from_millis(250),
            suspect_interval: Duration::from_millis(100),
            failures_to_dead: 3,
            reaffirm_every: Duration::from_millis(1000),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonitorConfigError {
    #[error("check interval {0:?} is below the 20 ms minimum")]
    IntervalTooShort(Duration),
    #[error("suspect interval {suspect:?} must be between 20 ms and the interval {interval:?}")]
    SuspectInterval {
        suspect: Duration,
        interval: Duration,
    },
    #[error("failures_to_dead must be at least 1")]
    NoFailuresToDead,
    #[error("reaffirm_every {reaffirm:?} must not be shorter than the interval {interval:?}")]
    ReaffirmShorterThanInterval {
        reaffirm: Duration,
        interval: Duration,
    },
}

impl MonitorConfig {
    pub fn validate(&self) -> Result<(), MonitorConfigError> {
        if self.interval < Duration::from_millis(20) {
            return Err(MonitorConfigError::IntervalTooShort(self.interval));
        }
        if self.suspect_interval < Duration::from_millis(20)
            || self.suspect_interval > self.interval
        {
            return Err(MonitorConfigError::SuspectInterval {
                suspect: self.suspect_interval,
                interval: self.interval,
            });
        }
        if self.failures_to_dead == 0 {
            return Err(MonitorConfigError::NoFailuresToDead);
        }
        if self.reaffirm_every < self.interval {
            return Err(MonitorConfigError::ReaffirmShorterThanInterval {
                reaffirm: self.reaffirm_every,
                interval: self.interval,
            });
        }
        Ok(())
    }

    /// The whole check (connect + query) must finish inside the interval, with a little room
    /// so the next tick is not late.
    pub fn check_timeout(&self) -> Duration {
        self.interval.mul_f64(0.8)
    }

    /// Failures further apart than this are not "consecutive": the manager itself was
    /// stalled (paused, overloaded) and its old failures say nothing about now.
    fn max_gap(&self) -> Duration {
        self.interval * 3 + self.check_timeout()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Verdict {
    Alive,
    /// Failing, but fewer than `failures_to_dead` consecutive checks so far.
    Suspect,
    Dead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportReason {
    /// The verdict differs from the previous report (or this is the first one).
    Changed,
    /// Same `Dead` verdict, repeated so it stays fresh.
    Reaffirmed,
}

/// What a manager commits to the Raft log about a master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictReport {
    pub verdict: Verdict,
    pub reason: ReportReason,
    /// When the check behind this report finished.
    pub observed_at: Millis,
    /// Start of the current failure streak (the window the manager saw failing).
    pub failing_since: Option<Millis>,
    /// When the last check that found the master alive finished (`None`: none since this
    /// monitor started). A manager renews the master's lease only right after such a check,
    /// so none of its renewals is later than this plus the renewal timeout.
    #[serde(default)]
    pub last_alive_at: Option<Millis>,
    pub consecutive_failures: u32,
    pub last_failure: Option<FailureKind>,
}

#[derive(Debug, Clone)]
pub struct Monitor {
    cfg: MonitorConfig,
    verdict: Option<Verdict>,
    consecutive_failures: u32,
    failing_since: Option<Millis>,
    last_failure: Option<FailureKind>,
    last_observation: Option<Millis>,
    last_report: Option<Millis>,
    last_alive: Option<Millis>,
}

impl Monitor {
    pub fn new(cfg: MonitorConfig) -> Self {
        Monitor {
            cfg,
            verdict: None,
            consecutive_failures: 0,
            failing_since: None,
            last_failure: None,
            last_observation: None,
            last_report: None,
            last_alive: None,
        }
    }

    pub fn config(&self) -> &MonitorConfig {
        &self.cfg
    }

    /// How long to wait before the next check: faster while `Suspect`.
    pub fn next_delay(&self) -> Duration {
        match self.verdict {
            Some(Verdict::Suspect) => self.cfg.suspect_interval,
            _ => self.cfg.interval,
        }
    }

    /// The current verdict (`None` before the first check).
    pub fn verdict(&self) -> Option<Verdict> {
        self.verdict
    }

    /// Feeds one check's outcome; returns a report when one must be committed.
    pub fn observe(&mut self, at: Millis, outcome: &PingOutcome) -> Option<VerdictReport> {
        let gap_too_long = self
            .last_observation
            .is_some_and(|prev| at.saturating_sub(prev) > millis(self.cfg.max_gap()));
        self.last_observation = Some(at);
        match outcome {
            // Alive error codes (too many connections, access denied) prove the server is up.
            PingOutcome::Alive | PingOutcome::AliveWithError { .. } => {
                self.consecutive_failures = 0;
                self.failing_since = None;
                self.last_failure = None;
                self.last_alive = Some(at);
            }
            PingOutcome::Failed(kind) => {
                if gap_too_long || self.consecutive_failures == 0 {
                    self.consecutive_failures = 0;
                    self.failing_since = Some(at);
                }
                self.consecutive_failures += 1;
                self.last_failure = Some(kind.clone());
            }
        }
        let verdict = match self.consecutive_failures {
            0 => Verdict::Alive,
            n if n >= self.cfg.failures_to_dead => Verdict::Dead,
            _ => Verdict::Suspect,
        };
        let reason = if self.verdict != Some(verdict) {
            ReportReason::Changed
        } else if verdict == Verdict::Dead
            && self
                .last_report
                .is_none_or(|r| at.saturating_sub(r) >= millis(self.cfg.reaffirm_every))
        {
            ReportReason::Reaffirmed
        } else {
            return None;
        };
        self.verdict = Some(verdict);
        self.last_report = Some(at);
        Some(VerdictReport {
            verdict,
            reason,
            observed_at: at,
            failing_since: self.failing_since,
            last_alive_at: self.last_alive,
            consecutive_failures: self.consecutive_failures,
            last_failure: self.last_failure.clone(),
        })
    }
}

pub(crate) fn millis(d: Duration) -> Millis {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAIL: PingOutcome = PingOutcome::Failed(FailureKind::Refused);

    fn monitor() -> Monitor {
        Monitor::new(MonitorConfig::default())
    }

    /// Feeds outcomes 250 ms apart starting at t=1000; returns the verdicts reported.
    fn feed(m: &mut Monitor, outcomes: &[PingOutcome]) -> Vec<(Millis, Verdict, ReportReason)> {
        let start = m.last_observation.map_or(1000, |t| t + 250);
        outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                let at = start + 250 * i as u64;
                m.observe(at, o).map(|r| (at, r.verdict, r.reason))
            })
            .collect()
    }

    #[test]
    fn the_first_check_is_always_reported_then_only_changes() {
        let mut m = monitor();
        let reports = feed(
            &mut m,
            &[PingOutcome::Alive, PingOutcome::Alive, PingOutcome::Alive],
        );
        assert_eq!(reports, vec![(1000, Verdict::Alive, ReportReason::Changed)]);
    }

    #[test]
    fn n_consecutive_failures_make_dead_via_suspect() {
        let mut m = monitor();
        let reports = feed(&mut m, &[PingOutcome::Alive, FAIL, FAIL, FAIL, FAIL]);
        let verdicts: Vec<_> = reports.iter().map(|r| (r.1, r.2)).collect();
        assert_eq!(
            verdicts,
            vec![
                (Verdict::Alive, ReportReason::Changed),
                (Verdict::Suspect, ReportReason::Changed),
                (Verdict::Dead, ReportReason::Changed),
            ]
        );
        assert_eq!(reports[2].0, 1750, "dead on the third failure");
    }

    #[test]
    fn dead_report_carries_the_failure_window() {
        let mut m = monitor();
        feed(&mut m, &[PingOutcome::Alive, FAIL, FAIL]);
        let r = m
            .observe(1750, &PingOutcome::Failed(FailureKind::Timeout))
            .expect("dead is reported");
        assert_eq!(r.verdict, Verdict::Dead);
        assert_eq!(r.failing_since, Some(1250));
        assert_eq!(r.consecutive_failures, 3);
        assert_eq!(r.last_failure, Some(FailureKind::Timeout));
    }

    #[test]
    fn alive_error_codes_never_count() {
        let mut m = monitor();
        let busy = PingOutcome::AliveWithError { code: 1040 };
        let reports = feed(
            &mut m,
            &[busy.clone(), busy.clone(), busy.clone(), busy.clone(), busy],
        );
        assert_eq!(reports.len(), 1);
        assert_eq!(m.verdict(), Some(Verdict::Alive));
        // And they end a failure streak like a success does.
        feed(
            &mut m,
            &[
                FAIL,
                FAIL,
                PingOutcome::AliveWithError { code: 1045 },
                FAIL,
                FAIL,
            ],
        );
        assert_eq!(m.verdict(), Some(Verdict::Suspect));
    }

    #[test]
    fn flapping_never_reaches_dead() {
        let mut m = monitor();
        let mut outcomes = Vec::new();
        for _ in 0..20 {
            outcomes.extend([FAIL, FAIL, PingOutcome::Alive]);
        }
        let reports = feed(&mut m, &outcomes);
        assert!(reports.iter().all(|r| r.1 != Verdict::Dead), "{reports:?}");
    }

    #[test]
    fn recovery_is_reported_once() {
        let mut m = monitor();
        feed(&mut m, &[FAIL, FAIL, FAIL]);
        assert_eq!(m.verdict(), Some(Verdict::Dead));
        let reports = feed(&mut m, &[PingOutcome::Alive, PingOutcome::Alive]);
        assert_eq!(
            reports.iter().map(|r| r.1).collect::<Vec<_>>(),
            vec![Verdict::Alive]
        );
    }

    #[test]
    fn dead_is_reaffirmed_periodically_and_nothing_else_is() {
        let mut m = monitor();
        let reports = feed(&mut m, &[FAIL; 12]);
        let reasons: Vec<_> = reports.iter().map(|r| (r.0, r.1, r.2)).collect();
        assert_eq!(
            reasons,
            vec![
                (1000, Verdict::Suspect, ReportReason::Changed),
                (1500, Verdict::Dead, ReportReason::Changed),
                (2500, Verdict::Dead, ReportReason::Reaffirmed),
                (3500, Verdict::Dead, ReportReason::Reaffirmed),
            ]
        );
    }

    #[test]
    fn failures_separated_by_a_stall_do_not_add_up() {
        let mut m = monitor();
        assert!(m.observe(1000, &PingOutcome::Alive).is_some());
        m.observe(1250, &FAIL);
        m.observe(1500, &FAIL);
        // The manager was paused for 10 s; this failure starts a new streak.
        let r = m.observe(11_500, &FAIL);
        assert_eq!(m.verdict(), Some(Verdict::Suspect), "{r:?}");
        assert!(m.observe(11_750, &FAIL).is_none());
        assert_eq!(
            m.observe(12_000, &FAIL).map(|r| r.verdict),
            Some(Verdict::Dead)
        );
    }

    #[test]
    fn checks_speed_up_while_suspect_and_slow_down_after() {
        let mut m = monitor();
        let cfg = MonitorConfig::default();
        assert_eq!(m.next_delay(), cfg.interval);
        m.observe(1000, &FAIL);
        assert_eq!(m.next_delay(), cfg.suspect_interval);
        m.observe(1100, &FAIL);
        m.observe(1200, &FAIL);
        assert_eq!(m.verdict(), Some(Verdict::Dead));
        assert_eq!(
            m.next_delay(),
            cfg.interval,
            "dead: back to the normal pace"
        );
        m.observe(1450, &PingOutcome::Alive);
        assert_eq!(m.next_delay(), cfg.interval);
    }

    #[test]
    fn config_rules() {
        assert!(MonitorConfig::default().validate().is_ok());
        let bad = MonitorConfig {
            interval: Duration::from_millis(5),
            ..Default::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(MonitorConfigError::IntervalTooShort(_))
        ));
        let bad = MonitorConfig {
            failures_to_dead: 0,
            ..Default::default()
        };
        assert_eq!(bad.validate(), Err(MonitorConfigError::NoFailuresToDead));
        let bad = MonitorConfig {
            reaffirm_every: Duration::from_millis(100),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        assert!(MonitorConfig::default().check_timeout() < MonitorConfig::default().interval);
    }

    #[test]
    fn a_dead_verdict_names_the_last_check_that_saw_the_master_alive() {
        let mut m = monitor();
        assert!(m.observe(1000, &PingOutcome::Alive).is_some());
        assert!(m.observe(1250, &PingOutcome::Alive).is_none());
        let suspect = m.observe(1500, &FAIL).expect("suspect");
        assert_eq!(
            (suspect.failing_since, suspect.last_alive_at),
            (Some(1500), Some(1250))
        );
        m.observe(1600, &FAIL);
        let dead = m.observe(1700, &FAIL).expect("dead");
        assert_eq!(dead.verdict, Verdict::Dead);
        assert_eq!(dead.last_alive_at, Some(1250));
    }
}
