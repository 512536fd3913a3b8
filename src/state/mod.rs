//! The replicated state machine's data model and its pure apply logic.
//!
//! Nothing here knows about openraft: `src/raft/` feeds committed [`Request`]s into
//! [`ManagerState::apply`] and stores [`ManagerState`] in snapshots. That keeps the
//! rules unit-testable without a cluster and lets the Failover issue extend the model
//! (new command kinds, new record fields) in one place.
//!
//! Compatibility rules (stored logs and snapshots outlive binaries):
//! - commands are an internally tagged enum (`"kind": "..."`); a kind this binary does not
//!   know decodes as [`Command::Unknown`] and is answered with a rejection instead of
//!   failing the log read;
//! - every request carries a format `version`; snapshots carry [`SNAPSHOT_FORMAT_VERSION`];
//! - new fields are added with `#[serde(default)]`.
mod bytes;
pub mod cluster_file;
mod command;
mod model;
mod operation;
mod ownership;

pub use command::{
    Command, CommandResult, FailoverOutcome, LogLeader, OWNERSHIP_VERSION, Operation,
    REQUEST_VERSION, ROLLBACK_STEP, Request, RunOwner, StepPhase, SwitchLimits, Verdict,
    VerdictKey,
};
pub use model::{
    AuditRecord, BinlogTailChunk, ClusterRecord, FailoverRecord, FailoverStepRecord, LastFailover,
    LivenessVerdict, ManagerState, SNAPSHOT_FORMAT_VERSION,
};
impl ManagerState {
    /// A state holding only cluster `name` (if registered) and the counters: what a read of
    /// one cluster returns, without the other clusters or the audit trail.
    pub fn only_cluster(&self, name: &str) -> ManagerState {
        ManagerState {
            clusters: self
                .clusters
                .get_key_value(name)
                .map(|(k, c)| (k.clone(), c.clone()))
                .into_iter()
                .collect(),
            audit: Default::default(),
            next_failover_id: self.next_failover_id,
            applied_commands: self.applied_commands,
        }
    }
}
