//! Dead-master detection as plain logic plus a thin async driver.
//!
//! - [`monitor`]: one manager's per-master state machine (ping outcomes → verdict changes).
//! - [`quorum`]: the majority-of-managers rule plus replica confirmation.
//! - [`driver`]: the monitor loop over a [`crate::db::DbServer`] and the replica probe.
pub mod driver;
pub mod monitor;
pub mod quorum;

pub use driver::{Clock, SystemClock, probe_replicas, run_monitor};
pub use monitor::{Millis, Monitor, MonitorConfig, ReportReason, Verdict, VerdictReport};
pub use quorum::{
    Decision, ManagerId, ManagerVerdict, QuorumConfig, QuorumConfigError, Refusal, ReplicaEvidence,
    ReplicaView, decide,
};
