//! An application-level facade over the openraft handle, so callers outside `src/raft/`
//! (the admin API, the manager daemon) never touch openraft types.
use std::collections::{BTreeMap, BTreeSet};

use openraft::async_runtime::WatchReceiver;
use openraft::raft::ReadPolicy;
use openraft::{ChangeMembers, RaftMetrics};

use super::state_machine::StateMachineStore;
use super::{Node, NodeId, Raft, ServerState, TypeConfig};
use crate::state::{CommandResult, ManagerState, Request};

/// Why a leader-only operation did not run here.
#[derive(Debug)]
pub enum NotDone {
    /// Another manager leads (or none is known: `None`); the caller may forward.
    NotLeader(Option<(NodeId, Option<String>)>),
    /// Rejected or failed for a reason forwarding will not fix.
    Failed(String),
}

/// One manager's view of the cluster, from its local Raft metrics.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub id: NodeId,
    pub role: &'static str,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub committed_index: Option<u64>,
    /// `(id, addr, is_voter)` of every member.
    pub members: Vec<(NodeId, String, bool)>,
    pub initialized: bool,
}

#[derive(Clone)]
pub struct RaftHandle {
    raft: Raft,
    state_machine: StateMachineStore,
}

fn not_done<E>(e: openraft::error::RaftError<TypeConfig, E>) -> NotDone
where
    E: std::error::Error + openraft::TryAsRef<openraft::error::ForwardToLeader<TypeConfig>>,
{
    match e.forward_to_leader() {
        Some(f) => NotDone::NotLeader(
            f.leader_id
                .map(|id| (id, f.leader_node.as_ref().map(|n| n.addr.clone()))),
        ),
        None => NotDone::Failed(e.to_string()),
    }
}

impl RaftHandle {
    pub fn new(raft: Raft, state_machine: StateMachineStore) -> Self {
        RaftHandle {
            raft,
            state_machine,
        }
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    fn metrics(&self) -> RaftMetrics<TypeConfig> {
        self.raft.metrics().borrow_watched().clone()
    }

    pub fn view(&self) -> NodeView {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| (*id, node.addr.clone(), voters.contains(id)))
            .collect();
        let role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        NodeView {
            id: m.id,
            role,
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            committed_index: m.local_committed.map(|l| l.index),
            members,
            initialized: m.membership_config.log_id().is_some() || m.last_log_index.is_some(),
        }
    }

    /// The address of a member, from the local membership config.
    pub fn member_addr(&self, id: NodeId) -> Option<String> {
        self.metrics()
            .membership_config
            .get_node(&id)
            .map(|n| n.addr.clone())
    }

    /// Proposes a request; returns its result and log index once applied here.
    pub async fn write(&self, req: Request) -> Result<(CommandResult, u64), NotDone> {
        match self.raft.client_write(req).await {
            Ok(resp) => Ok((resp.data, resp.log_id.index)),
            Err(e) => Err(not_done(e)),
        }
    }

    /// This manager's applied copy of the replicated state (may lag the leader's) and the
    /// index it reflects.
    pub fn local_state(&self) -> (Option<u64>, ManagerState) {
        let (applied, state) = self.state_machine.read();
        (applied.map(|l| l.index), state)
    }

    /// When this manager applied a verdict (see [`super::arrivals`]).
    pub fn verdict_seen_at(&self, v: super::arrivals::VerdictKey<'_>) -> Option<u64> {
        self.state_machine.verdict_seen_at(v)
    }

    pub fn is_leader(&self) -> bool {
        self.metrics().state == ServerState::Leader
    }

    /// This manager's id and term while it is the leader.
    pub fn leadership(&self) -> Option<(NodeId, u64)> {
        let m = self.metrics();
        (m.state == ServerState::Leader).then_some((m.id, m.current_term))
    }

    /// Confirms that this manager still leads in `term`: the local view says so and a quorum
    /// acknowledges it now (a ReadIndex round). A leader that was paused and woke up fails
    /// this as soon as a majority has moved on, even before it learns the new term itself.
    pub async fn confirm_leader(&self, term: u64) -> Result<(), String> {
        let still =
            |m: &RaftMetrics<TypeConfig>| m.state == ServerState::Leader && m.current_term == term;
        if !still(&self.metrics()) {
            return Err(format!("no longer the leader of term {term}"));
        }
        self.raft
            .ensure_linearizable(ReadPolicy::ReadIndex)
            .await
            .map_err(|e| format!("leadership of term {term} not confirmed: {e}"))?;
        if !still(&self.metrics()) {
            return Err(format!("no longer the leader of term {term}"));
        }
        Ok(())
    }

    /// Resolves once an entry past `applied` is applied here or leadership changes from
    /// `leader`, or after `within` (so time-based rules are re-evaluated).
    pub async fn changed_since(
        &self,
        applied: Option<u64>,
        leader: bool,
        within: std::time::Duration,
    ) {
        let _ = self
            .raft
            .wait(Some(within))
            .metrics(
                move |m| {
                    m.last_applied.map(|l| l.index) != applied
                        || (m.state == ServerState::Leader) != leader
                },
                "state change",
            )
            .await;
    }

    /// A linearizable (ReadIndex) read of the replicated state.
    pub async fn read(&self) -> Result<(ManagerState, u64), NotDone> {
        self.raft
            .ensure_linearizable(ReadPolicy::ReadIndex)
            .await
            .map_err(not_done)?;
        let (applied, state) = self.state_machine.read();
        Ok((state, applied.map(|l| l.index).unwrap_or(0)))
    }

    pub async fn is_initialized(&self) -> Result<bool, String> {
        self.raft.is_initialized().await.map_err(|e| e.to_string())
    }

    pub async fn initialize(&self, voters: &[(NodeId, String)]) -> Result<(), String> {
        let members: BTreeMap<NodeId, Node> = voters
            .iter()
            .map(|(id, addr)| (*id, Node { addr: addr.clone() }))
            .collect();
        self.raft
            .initialize(members)
            .await
            .map_err(|e| e.to_string())
    }

    /// Adds a manager as a learner, waits until it caught up, then promotes it to voter.
    pub async fn add_voter(&self, id: NodeId, addr: &str) -> Result<u64, NotDone> {
        let node = Node {
            addr: addr.to_string(),
        };
        self.raft
            .add_learner(id, node, true)
            .await
            .map_err(not_done)?;
        let ids: BTreeSet<NodeId> = [id].into();
        let resp = self
            .raft
            .change_membership(ChangeMembers::AddVoterIds(ids), false)
            .await
            .map_err(not_done)?;
        Ok(resp.log_id.index)
    }

    /// Removes a voter or learner from the membership.
    pub async fn remove_member(&self, id: NodeId) -> Result<u64, NotDone> {
        let membership = self.metrics().membership_config.clone();
        if membership.get_node(&id).is_none() {
            return Err(NotDone::Failed(format!("manager {id} is not a member")));
        }
        let ids: BTreeSet<NodeId> = [id].into();
        let change = if membership.voter_ids().any(|v| v == id) {
            ChangeMembers::RemoveVoters(ids)
        } else {
            ChangeMembers::RemoveNodes(ids)
        };
        let resp = self
            .raft
            .change_membership(change, false)
            .await
            .map_err(not_done)?;
        Ok(resp.log_id.index)
    }

    /// Hands leadership to the most caught-up other voter (graceful shutdown), if leader.
    pub async fn step_down(&self) {
        let m = self.metrics();
        if m.current_leader != Some(m.id) {
            return;
        }
        let Some(replication) = m.replication.as_ref() else {
            return;
        };
        let voters: BTreeSet<NodeId> = m.membership_config.voter_ids().collect();
        let best = replication
            .iter()
            .filter(|(id, _)| **id != m.id && voters.contains(id))
            .max_by_key(|(_, matched)| matched.as_ref().map(|l| l.index))
            .map(|(id, _)| *id);
        if let Some(to) = best {
            let _ = self.raft.trigger().transfer_leader(to).await;
        }
    }

    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }
}
