//! The master's lease, as plain logic over an injected monotonic instant.
//!
//! Every manager that sees the master alive renews the lease on the master host's agent. The
//! agent arms on the first renewal of a (cluster, epoch) and, from then on, holds the lease
//! while a majority of the voters renewed within the TTL, measured only on its own monotonic
//! clock. When it does not, the agent fences the local mysqld ([`super::fence`]): by the time
//! a majority of managers calls the master dead, a majority has stopped renewing, so the old
//! master stops taking writes before the leader promotes another one (the leader waits the
//! lease out when it cannot reach this host).
//!
//! A fence is recorded and never lifted by the agent itself: only an `Unfence` call does,
//! and only while a majority renews again for the epoch the caller names.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// How often the agent checks its lease.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// The SQL part of a fence (connect, read_only=ON, kill sessions, confirm) must finish within
/// this, or the agent escalates to SIGKILL where allowed.
pub const SQL_FENCE_TIMEOUT: Duration = Duration::from_millis(500);
/// Bound on a whole fence action: the SQL part, then SIGKILL and waiting for the process to go.
pub const FENCE_DEADLINE: Duration = Duration::from_millis(1000);

/// How the local mysqld was fenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FenceHow {
    /// `read_only=ON` confirmed and client sessions killed (or it was read-only already).
    ReadOnly,
    /// SQL did not answer in time (paused or hung): SIGKILLed, the process is gone.
    Stopped,
    /// No mysqld was running: nothing can take writes.
    NotRunning,
}

impl FenceHow {
    pub fn as_str(self) -> &'static str {
        match self {
            FenceHow::ReadOnly => "read_only",
            FenceHow::Stopped => "stopped",
            FenceHow::NotRunning => "not_running",
        }
    }
}

/// Why the agent fenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FenceReason {
    /// Fewer than a majority of managers renewed within the TTL.
    LeaseExpired,
    /// The manager leader asked (failover of this master).
    Leader,
}

impl FenceReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FenceReason::LeaseExpired => "lease_expired",
            FenceReason::Leader => "leader",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceRecord {
    pub cluster: String,
    pub epoch: u64,
    pub how: FenceHow,
    pub reason: FenceReason,
    /// Wall clock, for people reading it (never used to decide anything).
    pub at_unix_ms: u64,
}

/// One manager's renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    pub cluster: String,
    pub epoch: u64,
    pub manager: u64,
    pub voters: BTreeSet<u64>,
    /// Zero disables self-fencing for the cluster (the agent disarms).
    pub ttl: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("this agent holds the lease of cluster {armed:?}, not {got:?}")]
    OtherCluster { armed: String, got: String },
    #[error("epoch {got} is older than the armed epoch {armed}")]
    StaleEpoch { armed: u64, got: u64 },
    #[error("manager {0} is not among the voters it sent")]
    NotAVoter(u64),
    #[error("no voters")]
    NoVoters,
    #[error("the lease is not armed for cluster {cluster:?} at epoch {epoch}")]
    NotArmed { cluster: String, epoch: u64 },
    #[error("only {holders} of the {needed} managers needed renewed within the TTL")]
    NoMajority { holders: usize, needed: usize },
    #[error("the fence of epoch {fenced} is newer than epoch {got}")]
    NewerFence { fenced: u64, got: u64 },
    #[error("this host became a replica after epoch {retired}; epoch {got} is not newer")]
    Retired { retired: u64, got: u64 },
}

/// What the agent persists so an agent restart neither forgets a fence nor a lease it must
/// enforce (a restarted agent holds no renewals: it gets one TTL of grace, like arming).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    pub armed: Option<ArmedAt>,
    pub fenced: Option<FenceRecord>,
    /// The newest epoch after which this host was seen as a read-only replica.
    #[serde(default)]
    pub retired: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmedAt {
    pub cluster: String,
    pub epoch: u64,
    pub voters: BTreeSet<u64>,
    pub ttl_ms: u64,
}

#[derive(Debug, Clone)]
struct Armed {
    at: ArmedAt,
    since: Instant,
    /// Manager id → when its latest renewal arrived.
    renewed: BTreeMap<u64, Instant>,
}

/// The lease book of one agent (one mysqld, so one cluster).
#[derive(Debug, Clone, Default)]
pub struct LeaseBook {
    armed: Option<Armed>,
    fenced: Option<FenceRecord>,
    retired: Option<u64>,
}

/// The lease as a renewal reply reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    pub epoch: u64,
    pub holders: usize,
    pub needed: usize,
}

impl LeaseBook {
    /// Restores what an earlier run persisted; an armed lease starts a fresh grace period.
    pub fn restore(p: Persisted, now: Instant) -> Self {
        LeaseBook {
            armed: p.armed.map(|at| Armed {
                at,
                since: now,
                renewed: BTreeMap::new(),
            }),
            fenced: p.fenced,
            retired: p.retired,
        }
    }

    pub fn persisted(&self) -> Persisted {
        Persisted {
            armed: self.armed.as_ref().map(|a| a.at.clone()),
            fenced: self.fenced.clone(),
            retired: self.retired,
        }
    }

    pub fn fenced(&self) -> Option<&FenceRecord> {
        self.fenced.as_ref()
    }

    /// Records a renewal. Returns whether what must be persisted changed (arming).
    pub fn renew(&mut self, now: Instant, r: &Renewal) -> Result<bool, Refused> {
        if r.ttl.is_zero() {
            return Ok(self.armed.take().is_some());
        }
        if r.voters.is_empty() {
            return Err(Refused::NoVoters);
        }
        if !r.voters.contains(&r.manager) {
            return Err(Refused::NotAVoter(r.manager));
        }
        if let Some(retired) = self.retired
            && r.epoch <= retired
        {
            return Err(Refused::Retired {
                retired,
                got: r.epoch,
            });
        }
        let mut changed = false;
        match &mut self.armed {
            Some(a) if a.at.cluster != r.cluster => {
                return Err(Refused::OtherCluster {
                    armed: a.at.cluster.clone(),
                    got: r.cluster.clone(),
                });
            }
            Some(a) if r.epoch < a.at.epoch => {
                return Err(Refused::StaleEpoch {
                    armed: a.at.epoch,
                    got: r.epoch,
                });
            }
            Some(a) if r.epoch == a.at.epoch => {
                let ttl_ms = millis(r.ttl);
                if a.at.voters != r.voters || a.at.ttl_ms != ttl_ms {
                    a.at.voters = r.voters.clone();
                    a.at.ttl_ms = ttl_ms;
                    changed = true;
                }
            }
            _ => {
                // First renewal, or a newer epoch: arm afresh with one TTL of grace for a
                // majority to show up.
                self.armed = Some(Armed {
                    at: ArmedAt {
                        cluster: r.cluster.clone(),
                        epoch: r.epoch,
                        voters: r.voters.clone(),
                        ttl_ms: millis(r.ttl),
                    },
                    since: now,
                    renewed: BTreeMap::new(),
                });
                changed = true;
            }
        }
        if let Some(a) = &mut self.armed {
            a.renewed.insert(r.manager, now);
        }
        Ok(changed)
    }

    /// The armed lease: its epoch, how many voters hold it now, how many are needed.
    pub fn view(&self, now: Instant) -> Option<LeaseView> {
        let a = self.armed.as_ref()?;
        let ttl = Duration::from_millis(a.at.ttl_ms);
        let holders = a
            .renewed
            .iter()
            .filter(|(m, at)| a.at.voters.contains(m) && now.saturating_duration_since(**at) < ttl)
            .count();
        Some(LeaseView {
            epoch: a.at.epoch,
            holders,
            needed: a.at.voters.len() / 2 + 1,
        })
    }

    /// Whether the lease holds now: unarmed, in its grace period, or renewed by a majority.
    pub fn held(&self, now: Instant) -> bool {
        let Some(a) = &self.armed else { return true };
        let grace = now.saturating_duration_since(a.since) < Duration::from_millis(a.at.ttl_ms);
        grace || self.view(now).is_some_and(|v| v.holders >= v.needed)
    }

    /// The (cluster, epoch) whose lease expired and is not fenced yet: fence it now.
    pub fn must_fence(&self, now: Instant) -> Option<(String, u64)> {
        let a = self.armed.as_ref()?;
        if self.held(now) {
            return None;
        }
        if self.fenced.as_ref().is_some_and(|f| f.epoch >= a.at.epoch) {
            return None;
        }
        Some((a.at.cluster.clone(), a.at.epoch))
    }

    /// Records a fence (the agent's own or the leader's). A record never goes away by itself.
    pub fn record_fence(&mut self, rec: FenceRecord) {
        if self.fenced.as_ref().is_some_and(|f| f.epoch > rec.epoch) {
            return;
        }
        self.fenced = Some(rec);
    }

    /// Whether the fence may be lifted for `cluster` at `epoch`: the lease is armed there, a
    /// majority holds it now, and no fence of a newer epoch exists.
    pub fn may_unfence(&self, now: Instant, cluster: &str, epoch: u64) -> Result<(), Refused> {
        let not_armed = || Refused::NotArmed {
            cluster: cluster.into(),
            epoch,
        };
        let a = self.armed.as_ref().ok_or_else(not_armed)?;
        if a.at.cluster != cluster || a.at.epoch != epoch {
            return Err(not_armed());
        }
        if let Some(f) = &self.fenced
            && f.epoch > epoch
        {
            return Err(Refused::NewerFence {
                fenced: f.epoch,
                got: epoch,
            });
        }
        let v = self.view(now).ok_or_else(not_armed)?;
        if v.holders < v.needed {
            return Err(Refused::NoMajority {
                holders: v.holders,
                needed: v.needed,
            });
        }
        Ok(())
    }

    /// This host replicates from a source with read_only on: it is no longer a master, so its
    /// lease and fence are done with. Disarms, forgets the fence, and refuses renewals of
    /// epochs up to the newest one seen (a lagging manager still renewing the old master).
    /// Returns whether anything changed.
    pub fn retire(&mut self) -> bool {
        let newest = [
            self.armed.as_ref().map(|a| a.at.epoch),
            self.fenced.as_ref().map(|f| f.epoch),
        ]
        .into_iter()
        .flatten()
        .max();
        let Some(newest) = newest else { return false };
        self.retired = Some(self.retired.map_or(newest, |r| r.max(newest)));
        self.armed = None;
        self.fenced = None;
        true
    }

    /// Whether there is anything a [`LeaseBook::retire`] would end.
    pub fn is_active(&self) -> bool {
        self.armed.is_some() || self.fenced.is_some()
    }

    /// Forgets the fence record (after read_only=OFF was confirmed).
    pub fn clear_fence(&mut self) {
        self.fenced = None;
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
