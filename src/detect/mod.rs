//! Dead-master detection as plain logic plus a thin async driver.
//!
//! - [`monitor`]: one manager's per-master state machine (ping outcomes → verdict changes).
//! - [`quorum`]: the majority-of-managers rule plus replica confirmation.
//! - [`driver`]: the monitor loop over a [`crate::db::DbServer`] and the replica probe.
//! - [`silence`]: how long each replica's stream (events and heartbeats) has stood still.
//! - [`lease_bound`]: when the old master's lease surely lapsed, from the verdicts.
//! - [`renew`]: lease renewals to the master host's agent after each successful check (the
//!   agent self-fences the master when a majority of managers stops renewing).
//!
//! Wiring: every manager runs [`run_monitor`] per cluster master and commits each
//! [`VerdictReport`] it emits (changes and re-affirmations of `Dead`) to the Raft log as a
//! [`ManagerVerdict`] stamped with the cluster epoch. The leader, on each new verdict, gathers
//! [`probe_replicas`] evidence and calls [`decide`] over the latest verdict of every voter;
//! `MasterDead` starts the failover. Validate configs with [`MonitorConfig::validate`] and
//! [`QuorumConfig::validate`].
pub mod driver;
pub mod lease_bound;
pub mod monitor;
pub mod quorum;
pub mod renew;
pub mod silence;

pub use driver::{Clock, SystemClock, probe_replicas, run_monitor, run_monitor_renewing};
pub use monitor::{Millis, Monitor, MonitorConfig, ReportReason, Verdict, VerdictReport};
pub use quorum::{
    Decision, ManagerId, ManagerVerdict, QuorumConfig, QuorumConfigError, Refusal, ReplicaEvidence,
    ReplicaView, decide, note_silence,
};
pub use silence::{ReceiveProgress, SilenceTracker};
