//! What a failover does outside the journal, as the engine sees it: one trait, implemented by
//! [`super::exec`] over real servers and agents, and by an in-memory fake in unit tests.
use std::future::Future;

use serde::{Deserialize, Serialize};

use super::input::{FailoverInput, FailoverPolicy};
use super::plan::Action;
use super::runner::{Journal, Runner};
use crate::db::BinlogCoord;
use crate::state::{ClusterRecord, FailoverRecord};

/// What a step produced that later steps (or a successor leader) need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepOutput {
    Position(BinlogCoord),
    Skipped(String),
    Note(String),
    /// The old master could not be fenced now (neither it nor its agent answered): its lease
    /// will do it, and the promotion waits until it surely lapsed
    /// ([`super::fence::await_old_master_fenced`]).
    AwaitLease(String),
}

/// What one step acts on: the records as journaled so far, the new master's captured
/// position, and the run's fencing token for agents.
pub struct StepContext<'r> {
    pub cluster: &'r ClusterRecord,
    pub failover: &'r FailoverRecord,
    pub captured: Option<&'r BinlogCoord>,
    pub token: raftmha_node::agent::client::FencingToken,
}

/// Everything a failover does outside the journal: probing servers and executing actions.
/// [`super::exec::Env`] is the real one (SQL, agents, scripts); tests use a fake.
pub trait Effects: Send + Sync {
    /// Probes the replicas of `failover`'s dead master into the planner's input.
    fn observe(
        &self,
        cluster: &ClusterRecord,
        failover: &FailoverRecord,
        policy: &FailoverPolicy,
    ) -> impl Future<Output = anyhow::Result<FailoverInput>> + Send;

    /// Runs one action (idempotently: it checks its effect before acting). Chunks and the
    /// promotion are journaled through `run`, as the run's owner.
    fn execute<J: Journal>(
        &self,
        run: &Runner<'_, J>,
        ctx: &StepContext<'_>,
        action: &Action,
    ) -> impl Future<Output = anyhow::Result<Option<StepOutput>>> + Send;

    /// `ApplyRelayDiff` then `ApplyMasterTail` on `target` in one agent call.
    fn apply_diff_and_tail(
        &self,
        ctx: &StepContext<'_>,
        donor: &str,
        target: &str,
    ) -> impl Future<Output = anyhow::Result<Option<StepOutput>>> + Send;
}
