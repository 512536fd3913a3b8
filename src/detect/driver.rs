//! The async loop that feeds a [`Monitor`] from real checks, and the replica probe that
//! gathers [`ReplicaEvidence`] for the quorum rule. Every check is bounded by the interval;
//! the loop ticks on a timer, never sleeping whole seconds.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout};

use super::monitor::{Millis, Monitor, MonitorConfig, MonitorConfigError, VerdictReport};
use super::quorum::{ReplicaEvidence, ReplicaView};
use super::silence::ReceiveProgress;
use crate::db::{DbServer, FailureKind, PingOutcome};

/// Wall-clock milliseconds; verdicts carry them so other managers can judge freshness.
pub trait Clock: Send + Sync {
    fn now(&self) -> Millis;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Checks `server` every `cfg.interval` (every `cfg.suspect_interval` while suspect) and sends each report the monitor emits (verdict
/// changes and re-affirmations) to `reports`. Returns when `stop` turns true or is dropped, or
/// when nobody listens to `reports` any more.
pub async fn run_monitor<S: DbServer, C: Clock>(
    server: &S,
    cfg: &MonitorConfig,
    clock: &C,
    reports: mpsc::Sender<VerdictReport>,
    stop: watch::Receiver<bool>,
) -> Result<(), MonitorConfigError> {
    run_monitor_renewing(server, cfg, clock, reports, stop, None).await
}

/// [`run_monitor`] that also publishes the instant of every check that found the server
/// alive on `alive` (lease renewals follow it, see [`super::renew`]); never waits on it.
pub async fn run_monitor_renewing<S: DbServer, C: Clock>(
    server: &S,
    cfg: &MonitorConfig,
    clock: &C,
    reports: mpsc::Sender<VerdictReport>,
    mut stop: watch::Receiver<bool>,
    alive: Option<watch::Sender<Option<Instant>>>,
) -> Result<(), MonitorConfigError> {
    cfg.validate()?;
    let mut monitor = Monitor::new(cfg.clone());
    let mut next = Instant::now();
    loop {
        tokio::select! {
            _ = sleep_until(next) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return Ok(());
                }
                continue;
            }
        }
        if *stop.borrow() {
            return Ok(());
        }
        let started = Instant::now();
        let outcome = match timeout(cfg.check_timeout(), server.ping(cfg.ping_type)).await {
            Ok(outcome) => outcome,
            Err(_) => PingOutcome::Failed(FailureKind::Timeout),
        };
        if let Some(alive) = &alive
            && matches!(
                outcome,
                PingOutcome::Alive | PingOutcome::AliveWithError { .. }
            )
        {
            alive.send_replace(Some(Instant::now()));
        }
        if let Some(report) = monitor.observe(clock.now(), &outcome) {
            tracing::debug!(server = server.addr(), ?report, "verdict report");
            if reports.send(report).await.is_err() {
                return Ok(());
            }
        }
        // Paced from the start of this check; a check slower than the delay is followed by
        // the next one at once, never by a burst.
        next = started + monitor.next_delay();
    }
}

/// Asks every replica, in parallel and within `limit`, whether it still receives from the
/// master at `master_host:master_port`.
pub async fn probe_replicas<S: DbServer>(
    replicas: &[(String, &S)],
    master_host: &str,
    master_port: u16,
    limit: Duration,
) -> Vec<ReplicaEvidence> {
    let probes = replicas.iter().map(|(name, server)| async move {
        let view = match timeout(limit, server.replica_status()).await {
            Ok(Ok(Some(status))) => ReplicaView::Reachable {
                replicates_from_master: status.replicates_from(master_host, master_port),
                io_thread: status.io_thread,
                last_io_errno: status.last_io_errno,
                progress: ReceiveProgress::of(&status),
                heartbeat_period_ms: status.heartbeat_period_ms,
                silent_for_ms: None,
            },
            Ok(Ok(None)) => ReplicaView::Reachable {
                replicates_from_master: false,
                io_thread: crate::db::IoThread::No,
                last_io_errno: 0,
                progress: None,
                heartbeat_period_ms: None,
                silent_for_ms: None,
            },
            Ok(Err(_)) | Err(_) => ReplicaView::Unreachable,
        };
        ReplicaEvidence {
            replica: name.clone(),
            view,
        }
    });
    join_all(probes).await
}
