//! What the manager feeds into [`EngineMetrics`] (served on `/metrics`, see
//! [`crate::api::http`]): the duration of every master health check, through a [`DbServer`]
//! wrapper around the monitored server, and each phase of a finished failover, read from its
//! journal ([`crate::failover::timing`]) so the detection and engine code stay untouched.
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::http::EngineMetrics;
use crate::db::{
    DbError, DbServer, GtidState, MasterStatus, PingOutcome, PingType, ReplicaStatus,
    ServerVariables, ServerVersion, Statement, WaitKind, WaitOutcome,
};
use crate::failover::timing::phase_durations;
use crate::state::FailoverRecord;

/// A server whose pings (the monitor's health checks) are timed into `metrics`.
pub struct TimedChecks<S> {
    pub inner: S,
    pub metrics: Arc<EngineMetrics>,
    pub cluster: String,
    pub server: String,
}

impl<S: DbServer> DbServer for TimedChecks<S> {
    fn addr(&self) -> &str {
        self.inner.addr()
    }

    async fn ping(&self, kind: PingType) -> PingOutcome {
        let t = Instant::now();
        let outcome = self.inner.ping(kind).await;
        self.metrics
            .observe_check(&self.cluster, &self.server, t.elapsed().as_secs_f64());
        outcome
    }

    async fn version(&self) -> Result<ServerVersion, DbError> {
        self.inner.version().await
    }

    async fn variables(&self) -> Result<ServerVariables, DbError> {
        self.inner.variables().await
    }

    async fn gtid_state(&self) -> Result<GtidState, DbError> {
        self.inner.gtid_state().await
    }

    async fn replica_status(&self) -> Result<Option<ReplicaStatus>, DbError> {
        self.inner.replica_status().await
    }

    async fn master_status(&self) -> Result<Option<MasterStatus>, DbError> {
        self.inner.master_status().await
    }

    async fn execute(&self, statement: &Statement) -> Result<(), DbError> {
        self.inner.execute(statement).await
    }

    async fn wait(
        &self,
        statement: &Statement,
        kind: WaitKind,
        timeout: Duration,
    ) -> Result<WaitOutcome, DbError> {
        self.inner.wait(statement, kind, timeout).await
    }

    async fn kill_client_connections(&self) -> Result<Vec<u64>, DbError> {
        self.inner.kill_client_connections().await
    }
}

/// Records the phases of a finished failover (`fence`, `plan`, `master_recovery`,
/// `replica_recovery`, `cleanup`, `total`).
pub fn record_failover(metrics: &EngineMetrics, cluster: &str, f: &FailoverRecord) {
    for (phase, seconds) in phase_durations(f) {
        metrics.observe_phase(cluster, phase, seconds);
    }
}
