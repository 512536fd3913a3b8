//! How the supervisor and the runs it starts write to the Raft log: [`Proposer`] (a plain
//! request is forwarded whole to the leader when this manager does not lead, so the log names
//! this manager as its proposer), and [`RaftJournal`], the log as the runs' [`Journal`].
//!
//! The leader's own proposals go through the Raft handle; only a follower's plain requests
//! (its liveness verdicts) take the forwarding path, the leader's admin service.
use std::net::IpAddr;
use std::time::Duration;

use crate::api::auth::AuthToken;
use crate::api::client::AdminClient;
use crate::api::server::now_ms;
use crate::failover::runner::{Deposed, Journal};
use crate::raft::handle::{NotDone, RaftHandle};
use crate::state::{ClusterRecord, Command, CommandResult, Request, RunOwner};

/// This manager's way into the log.
#[derive(Clone)]
pub struct Proposer {
    pub handle: RaftHandle,
    pub id: u64,
    /// For forwarding to the leader.
    pub token: AuthToken,
    pub local_ip: Option<IpAddr>,
}

impl Proposer {
    pub async fn propose(&self, command: Command) -> anyhow::Result<CommandResult> {
        self.propose_request(Request::new(command, Some(self.id), now_ms()))
            .await
    }

    /// Proposes `req`; on a follower it is forwarded whole to the leader, so the log names
    /// this manager (not the leader) as its proposer.
    pub async fn propose_request(&self, req: Request) -> anyhow::Result<CommandResult> {
        let kind = req.command.kind();
        match self.handle.write(req.clone()).await {
            Ok((result, _)) => Ok(result),
            Err(NotDone::NotLeader(Some((_, Some(addr))))) => {
                let client = AdminClient::new_from(
                    &addr,
                    self.token.clone(),
                    Duration::from_secs(5),
                    self.local_ip,
                )
                .map_err(|e| anyhow::anyhow!(e))?
                .forwarding();
                let (result, _) = client.write_request(&req).await?;
                Ok(result)
            }
            Err(e) => anyhow::bail!("cannot propose {kind}: {}", not_done(&e)),
        }
    }
}

/// The Raft log as the runs' journal, and this manager's leadership.
#[derive(Clone)]
pub struct RaftJournal {
    sup: Proposer,
}

impl RaftJournal {
    pub fn new(proposer: Proposer) -> Self {
        RaftJournal { sup: proposer }
    }
}

impl Journal for RaftJournal {
    async fn propose(&self, req: Request) -> anyhow::Result<CommandResult> {
        if req.term.is_none() {
            return self.sup.propose_request(req).await;
        }
        // Acting for a run: only the leader may, so never forwarded.
        match self.sup.handle.write(req).await {
            Ok((result, _)) => Ok(result),
            Err(e) => anyhow::bail!("not proposed: {}", not_done(&e)),
        }
    }

    async fn cluster(&self, name: &str) -> anyhow::Result<Option<ClusterRecord>> {
        let (state, _) = self
            .sup
            .handle
            .read()
            .await
            .map_err(|e| anyhow::anyhow!("linearizable read failed: {}", not_done(&e)))?;
        Ok(state.clusters.get(name).cloned())
    }

    fn local_cluster(&self, name: &str) -> Option<ClusterRecord> {
        self.sup.handle.local_state().1.clusters.get(name).cloned()
    }

    fn verdict_seen_at(&self, v: crate::state::VerdictKey<'_>) -> Option<u64> {
        self.sup.handle.verdict_seen_at(v)
    }

    fn leadership(&self) -> Option<RunOwner> {
        let (manager, term) = self.sup.handle.leadership()?;
        Some(RunOwner { manager, term })
    }

    async fn confirm(&self, owner: RunOwner) -> Result<(), Deposed> {
        if owner.manager != self.sup.id {
            return Err(Deposed(format!("{owner} is not this manager")));
        }
        self.sup
            .handle
            .confirm_leader(owner.term)
            .await
            .map_err(Deposed)
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

fn not_done(e: &NotDone) -> String {
    match e {
        NotDone::NotLeader(l) => format!("not the leader (leader: {l:?})"),
        NotDone::Failed(m) => m.clone(),
    }
}
