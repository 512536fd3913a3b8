//! The agent's lease keeper: the [`LeaseBook`] behind a lock, its persisted copy, the check
//! loop that self-fences the local mysqld when the lease expires, and the Fence / Unfence
//! calls of the manager leader. Fence and unfence actions on mysqld are serialized.
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use tonic::Status;

use super::config::AgentConfig;
use super::fence::{FenceOutcome, LockConn, fence_local, read_only_replica, writable};
use super::lease::{
    CHECK_INTERVAL, FenceHow, FenceReason, FenceRecord, LeaseBook, Persisted, Renewal,
};
use crate::proto::{FenceReply, FenceState, LeaseReply, RenewLeaseRequest};
use crate::tools::db::DbTarget;

/// How often [`Keeper::housekeeping`] runs.
const LOCK_CHECK_EVERY: Duration = Duration::from_secs(1);

pub struct Keeper {
    book: Mutex<LeaseBook>,
    /// Held while mysqld is being fenced or unfenced; holds the global read lock's connection
    /// while one is taken.
    action: tokio::sync::Mutex<Option<LockConn>>,
    state_file: PathBuf,
    db: Option<DbTarget>,
    pid_file: Option<PathBuf>,
    allow_stop: bool,
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn state_of(rec: Option<&FenceRecord>) -> FenceState {
    match rec {
        None => FenceState::default(),
        Some(r) => FenceState {
            fenced: true,
            cluster: r.cluster.clone(),
            epoch: r.epoch,
            how: r.how.as_str().into(),
            reason: r.reason.as_str().into(),
            at_unix_ms: r.at_unix_ms,
        },
    }
}

impl Keeper {
    /// Loads the persisted lease state from the workdir. A corrupt file is kept aside (never
    /// deleted) and the agent starts unarmed, loudly.
    pub fn new(cfg: &AgentConfig, db: Option<DbTarget>) -> Self {
        let state_file = cfg.workdir.join("lease-state.json");
        let persisted = match std::fs::read(&state_file) {
            Err(_) => Persisted::default(),
            Ok(bytes) => match serde_json::from_slice::<Persisted>(&bytes) {
                Ok(p) => p,
                Err(e) => {
                    let aside = state_file.with_extension("json.corrupt");
                    let _ = std::fs::rename(&state_file, &aside);
                    tracing::error!(
                        "lease state {} is corrupt ({e}); moved to {}; starting unarmed",
                        state_file.display(),
                        aside.display()
                    );
                    Persisted::default()
                }
            },
        };
        if let Some(f) = &persisted.fenced {
            tracing::warn!(
                cluster = %f.cluster,
                epoch = f.epoch,
                "this host's mysqld is FENCED ({}, {}) since an earlier run",
                f.how.as_str(),
                f.reason.as_str()
            );
        }
        Keeper {
            book: Mutex::new(LeaseBook::restore(persisted, Instant::now())),
            action: tokio::sync::Mutex::new(None),
            state_file,
            db,
            pid_file: cfg.mysqld_pid_file.clone(),
            allow_stop: cfg.allow_stop_mysqld,
        }
    }

    fn book(&self) -> MutexGuard<'_, LeaseBook> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, p: &Persisted) {
        let tmp = self.state_file.with_extension("json.tmp");
        let result = serde_json::to_vec(p)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &self.state_file));
        if let Err(e) = result {
            tracing::error!("cannot persist the lease state: {e}");
        }
    }

    /// The lease as the routing check (`/master`) needs it.
    pub fn lease_facts(&self, now: Instant) -> super::route::LeaseFacts {
        let book = self.book();
        super::route::LeaseFacts {
            armed_epoch: book.view(now).map(|v| v.epoch),
            held: book.held(now),
            fenced: book.fenced().is_some(),
        }
    }

    pub fn fence_state(&self) -> FenceState {
        state_of(self.book().fenced())
    }

    pub fn renew(&self, r: &RenewLeaseRequest) -> LeaseReply {
        let ttl = Duration::from_millis(r.ttl_ms);
        let now_ms = now_unix_ms();
        let too_old = r.sent_at_unix_ms != 0 && r.sent_at_unix_ms.saturating_add(r.ttl_ms) < now_ms;
        let renewal = Renewal {
            cluster: r.cluster.clone(),
            epoch: r.epoch,
            manager: r.manager_id,
            voters: r.voters.iter().copied().collect(),
            ttl,
        };
        let now = Instant::now();
        let mut book = self.book();
        let outcome = if too_old {
            Err(format!(
                "sent {} ms ago, longer than the {} ms TTL",
                now_ms - r.sent_at_unix_ms,
                r.ttl_ms
            ))
        } else {
            book.renew(now, &renewal).map_err(|e| e.to_string())
        };
        let view = book.view(now);
        let reply = LeaseReply {
            accepted: outcome.is_ok(),
            refused: outcome.as_ref().err().cloned().unwrap_or_default(),
            holders: view.as_ref().map_or(0, |v| v.holders as u32),
            needed: view.as_ref().map_or(0, |v| v.needed as u32),
            epoch: view.as_ref().map_or(0, |v| v.epoch),
            fence: Some(state_of(book.fenced())),
        };
        if outcome == Ok(true) {
            let p = book.persisted();
            drop(book);
            tracing::info!(
                cluster = %r.cluster,
                epoch = r.epoch,
                ttl_ms = r.ttl_ms,
                "lease {}",
                if r.ttl_ms == 0 { "disarmed" } else { "armed" }
            );
            self.persist(&p);
        }
        reply
    }

    /// Fences now, at the leader's request, and records it.
    pub async fn fence(&self, cluster: &str, epoch: u64) -> FenceReply {
        let mut held = self.action.lock().await;
        if let Some(old) = held.take() {
            old.release().await;
        }
        match fence_local(self.db.as_ref(), self.pid_file.as_deref(), self.allow_stop).await {
            FenceOutcome::Fenced { how, detail, lock } => {
                *held = lock;
                tracing::warn!(%cluster, epoch, "FENCED at the leader's request: {detail}");
                let fence = self.record(cluster, epoch, how, FenceReason::Leader);
                FenceReply {
                    confirmed: true,
                    how: how.as_str().into(),
                    detail,
                    fence: Some(fence),
                }
            }
            FenceOutcome::Unconfirmed(detail) => {
                tracing::error!(%cluster, epoch, "fence requested but NOT confirmed: {detail}");
                FenceReply {
                    confirmed: false,
                    how: String::new(),
                    detail,
                    fence: Some(self.fence_state()),
                }
            }
        }
    }

    fn record(&self, cluster: &str, epoch: u64, how: FenceHow, reason: FenceReason) -> FenceState {
        let mut book = self.book();
        book.record_fence(FenceRecord {
            cluster: cluster.into(),
            epoch,
            how,
            reason,
            at_unix_ms: now_unix_ms(),
        });
        let p = book.persisted();
        let state = state_of(book.fenced());
        drop(book);
        self.persist(&p);
        state
    }

    /// Lifts the fence: refused unless a majority renews for `epoch` right now.
    pub async fn unfence(&self, cluster: &str, epoch: u64) -> Result<FenceReply, Status> {
        let mut held = self.action.lock().await;
        self.book()
            .may_unfence(Instant::now(), cluster, epoch)
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        if let Some(lock) = held.take() {
            lock.release().await;
        }
        let db = self
            .db
            .as_ref()
            .ok_or_else(|| Status::failed_precondition("no [db] section in the agent config"))?;
        writable(db)
            .await
            .map_err(|e| Status::unavailable(format!("read_only=OFF: {e}")))?;
        let mut book = self.book();
        book.clear_fence();
        let p = book.persisted();
        drop(book);
        self.persist(&p);
        tracing::warn!(%cluster, epoch, "UNFENCED: a majority of managers renews again; read_only=OFF");
        Ok(FenceReply {
            confirmed: true,
            how: "unfenced".into(),
            detail: "read_only=OFF".into(),
            fence: Some(FenceState::default()),
        })
    }

    /// Once a second: a host that became a read-only replica (rejoined or switched over) is
    /// no master any more: release the global read lock (its SQL thread needs it gone;
    /// read_only stays), disarm the lease and forget the fence. The lock also goes when the
    /// host was promoted again (armed at a newer epoch than the fence) or its connection died.
    async fn housekeeping(&self) {
        let mut held = self.action.lock().await;
        let active = self.book().is_active();
        if !active && held.is_none() {
            return;
        }
        if let Some(db) = &self.db
            && read_only_replica(db).await == Ok(true)
        {
            if let Some(lock) = held.take() {
                lock.release().await;
            }
            let mut book = self.book();
            if book.retire() {
                let p = book.persisted();
                drop(book);
                self.persist(&p);
                tracing::warn!(
                    "this host replicates from a source with read_only=ON: no longer a master; \
                     lease disarmed, fence record and global read lock released"
                );
            }
            return;
        }
        let Some(lock) = held.as_mut() else { return };
        let newer_epoch = {
            let book = self.book();
            let armed = book.view(Instant::now()).map(|v| v.epoch);
            matches!((armed, book.fenced()), (Some(a), Some(f)) if a > f.epoch)
        };
        let why = if newer_epoch {
            "promoted at a newer epoch"
        } else if !lock.alive().await {
            "its connection is gone"
        } else {
            return;
        };
        if let Some(lock) = held.take() {
            lock.release().await;
        }
        tracing::warn!("global read lock of the fence released: {why}");
    }

    /// Checks the lease every [`CHECK_INTERVAL`] and self-fences when it expired. Runs until
    /// the task is aborted.
    pub async fn run(self: Arc<Self>) {
        let mut last_error = String::new();
        let mut last_lock_check = Instant::now();
        loop {
            tokio::time::sleep(CHECK_INTERVAL).await;
            if last_lock_check.elapsed() >= LOCK_CHECK_EVERY {
                last_lock_check = Instant::now();
                self.housekeeping().await;
            }
            if self.book().must_fence(Instant::now()).is_none() {
                continue;
            }
            let mut held = self.action.lock().await;
            let Some((cluster, epoch)) = self.book().must_fence(Instant::now()) else {
                continue;
            };
            if let Some(old) = held.take() {
                old.release().await;
            }
            match fence_local(self.db.as_ref(), self.pid_file.as_deref(), self.allow_stop).await {
                FenceOutcome::Fenced { how, detail, lock } => {
                    *held = lock;
                    tracing::warn!(
                        %cluster,
                        epoch,
                        "SELF-FENCED: fewer than a majority of managers renewed the lease \
                         within its TTL: {detail}. Stays fenced until the leader unfences it."
                    );
                    self.record(&cluster, epoch, how, FenceReason::LeaseExpired);
                    last_error.clear();
                }
                FenceOutcome::Unconfirmed(e) => {
                    drop(held);
                    if e != last_error {
                        tracing::error!(
                            %cluster,
                            epoch,
                            "the lease expired but the fence could not be confirmed: {e}; retrying"
                        );
                        last_error = e;
                    }
                }
            }
        }
    }
}
