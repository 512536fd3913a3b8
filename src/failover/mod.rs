//! The failover as plain logic: observed state in, typed decisions and steps out.
//!
//! - [`input`]: what the planner observes (dead master, replicas, MHA's policy knobs).
//! - [`observe`]: gathering that input from live servers through [`crate::db::DbServer`].
//! - [`select`]: survivors and lost replicas, latest/oldest, errant GTIDs, the new master.
//! - [`plan`]: the ordered steps for MHA's phases 2–5, each with what a successor needs.
//! - [`repoint`]: the source definition for a repointed replica.
//! - [`effects`]: the engine's effects trait ([`env`] holds what the real one reaches).
//! - [`fence`]: fencing the old master (SQL, then its agent, else its lease, which the
//!   promotion waits out).
//! - [`runner`]: the one step runner under every run: journal, ownership, resume.
//! - [`report`]: MHA's `----- Failover Report -----` (text and JSON).
//! - [`timing`]: when each phase ended, from the journal (metrics, benchmarks).
//!
//! How the engine (journaling, execution, resume; not in this module) drives them:
//! 1. Probe the replicas ([`observe_replicas`]) into a [`FailoverInput`]; journal
//!    `FailoverStarted`; run [`plan_fencing`]'s steps (fence the old master, stop every IO
//!    thread) journaling intent and result of each.
//! 2. Probe again (positions are frozen now) and call [`plan_failover`]; journal the plan (it
//!    serializes). A [`PlanError`] ends the failover with
//!    [`FailoverReport::aborted_before_plan`].
//! 3. Execute the steps in order: steps in different [`Lane::Server`] lanes between two
//!    [`Lane::Serial`] steps may run concurrently. Each step is idempotent given the journal:
//!    check the effect (GTID sets, coordinates, read_only, source) before acting. Results that
//!    later steps need (the captured position, the saved tail's chunks) go into the journal.
//!    [`change_source`] builds each `Repoint`.
//! 4. Render [`FailoverReport::from_record`] and keep it (text and JSON) in the history.
pub mod effects;
pub mod engine;
pub mod env;
pub mod exec;
#[cfg(test)]
pub(crate) mod fakes;
pub mod fence;
pub mod finish_report;
pub mod hooks;
pub mod input;
pub mod lease_lapse;
pub mod observe;
pub mod operation;
pub mod plan;
pub mod rejoin;
pub mod rejoin_effects;
pub mod rejoin_run;
pub mod repoint;
pub mod report;
pub mod runner;
pub mod select;
pub mod switchover;
pub mod switchover_effects;
pub mod switchover_run;
pub mod timing;

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

#[cfg(test)]
mod stored_log_tests;
