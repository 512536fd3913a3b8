//! The failover as plain logic: observed state in, typed decisions and steps out.
//!
//! - [`input`]: what the planner observes (dead master, replicas, MHA's policy knobs).
//! - [`observe`]: gathering that input from live servers through [`crate::db::DbServer`].
//! - [`select`]: survivors and lost replicas, latest/oldest, errant GTIDs, the new master.
//! - [`plan`]: the ordered steps for MHA's phases 2–5, each with what a successor needs.
//! - [`repoint`]: the source definition for a repointed replica.
//! - [`report`]: MHA's `----- Failover Report -----` (text and JSON).
//!
//! The engine (journaling, execution, resume) lives elsewhere and drives these functions.
pub mod input;
pub mod observe;
pub mod plan;
pub mod repoint;
pub mod report;
pub mod select;

pub use input::{
    DeadMaster, FailoverInput, FailoverPolicy, ReplicaFacts, ReplicaSnapshot, ReplicaState,
    ServerPolicy, ServerRef,
};
pub use observe::{observe_replica, observe_replicas, replica_facts};
pub use plan::{
    Action, FailoverPlan, Lane, Need, Phase, PlanError, Recovery, RepointBy, Step, plan_failover,
    plan_fencing,
};
pub use repoint::{ReplicationAccount, change_source};
pub use report::{FailoverRecord, FailoverReport, Outcome, StepResult, StepStatus};
pub use select::{LostReason, LostReplica, Mode, Rejection, SelectionReason};
