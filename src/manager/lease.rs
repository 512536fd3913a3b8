//! The managers' side of the masters' leases (see `raftmha_node::agent::lease`): every
//! manager renews the lease of each cluster's current master after each successful check
//! ([`crate::detect::renew`]), except while a failover of that cluster is in flight; the
//! leader lifts the fence of a master that fenced itself only because the managers lost it.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raftmha_node::agent::client::{AgentClient, FencingToken};
use tokio::sync::watch;

use tokio::time::Instant;

use super::resolve::secret;
use crate::detect::renew::{LeaseReplies, LeaseTarget, run_renewals};
use crate::raft::handle::RaftHandle;
use crate::state::ClusterRecord;
use crate::state::cluster_file::{ClusterSpec, ServerSpec};

/// At most one unfence attempt per cluster this often.
const UNFENCE_EVERY: Duration = Duration::from_secs(1);

/// Shared between the supervisor loop and the renewal tasks.
#[derive(Clone, Default)]
pub struct Leases {
    /// The latest renewal reply per cluster (its fence record, how many renew).
    replies: LeaseReplies,
    /// Clusters with a failover in flight: their master's lease is not renewed.
    failing_over: Arc<Mutex<BTreeSet<String>>>,
}

impl Leases {
    /// Records which clusters have a failover in flight (from the replicated state).
    pub fn note_failovers(&self, clusters: &BTreeMap<String, ClusterRecord>) {
        *self.failing_over.lock().unwrap_or_else(|p| p.into_inner()) = clusters
            .iter()
            // Only a failover (automatic or manual) gives the master up; a switchover fences
            // the live master itself and a rejoin does not touch it, so both keep renewing
            // (a long catch-up or a slow rejoin must not make the current master fence itself).
            .filter(|(_, c)| {
                c.failovers
                    .iter()
                    .any(|f| f.finished.is_none() && f.is_failover())
            })
            .map(|(name, _)| name.clone())
            .collect();
    }

    /// Renews `master`'s lease after each successful check signalled on `alive`, until the
    /// monitor drops its sender. Without an agent (or its token) there is no lease: warned.
    pub fn spawn_renewals(
        &self,
        handle: &RaftHandle,
        manager: u64,
        spec: &ClusterSpec,
        master: &ServerSpec,
        epoch: u64,
        alive: watch::Receiver<Option<Instant>>,
    ) {
        let u = &spec.users;
        let token = secret(&u.agent_token_file, &u.agent_token_env, "agent token");
        let (Some(endpoint), Ok(token)) = (&master.agent, token) else {
            tracing::warn!(
                cluster = %spec.name,
                "{} has no agent (or agent token) configured: no lease, it cannot fence itself",
                master.name
            );
            return;
        };
        let target = LeaseTarget {
            cluster: spec.name.clone(),
            server: master.name.clone(),
            server_addr: format!("{}:{}", master.host, master.port),
            epoch,
            manager,
            ttl: Duration::from_millis(spec.settings.lease_ttl_ms),
            endpoint: endpoint.clone(),
            token,
            term: {
                let handle = handle.clone();
                std::sync::Arc::new(move || handle.view().term)
            },
        };
        let handle = handle.clone();
        let voters = move || {
            let view = handle.view();
            view.members
                .iter()
                .filter(|(_, _, voter)| *voter)
                .map(|(id, _, _)| *id)
                .collect()
        };
        let (busy, name) = (self.failing_over.clone(), spec.name.clone());
        let in_failover = move || {
            busy.lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&name)
        };
        tokio::spawn(run_renewals(
            target,
            voters,
            in_failover,
            alive,
            self.replies.clone(),
        ));
    }

    /// A master that fenced itself because the managers could not renew its lease (manager
    /// outage, or cut off from the managers while the replicas still saw it, so no failover)
    /// is made writable again once a majority renews for the current epoch: only the current
    /// master, with no failover of it at this epoch (in flight or failed), only fences the
    /// agent took on its own (or older than the current epoch); the agent itself refuses
    /// unless a majority renews right now.
    pub fn unfence_task(
        &self,
        name: &str,
        c: &ClusterRecord,
        last: &mut BTreeMap<String, Instant>,
        fencing: FencingToken,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        // A failover of this master at this epoch that did not complete (in flight, or
        // failed) leaves its fence to the operator: it may have half-promoted another server.
        // Any record in flight (switchover, rejoin) waits; finished switchovers and rejoins at
        // this epoch do not keep the master fenced.
        if c.failovers
            .iter()
            .any(|f| f.finished.is_none() || (f.is_failover() && f.epoch == c.epoch))
        {
            return None;
        }
        let master = c.master.as_ref()?;
        let latest = self
            .replies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()?;
        let fence = latest.reply.fence.as_ref()?;
        let lifts = fence.fenced
            && latest.server == *master
            && latest.epoch == c.epoch
            && latest.reply.accepted
            && latest.reply.holders >= latest.reply.needed
            && (fence.epoch < c.epoch || fence.reason == "lease_expired")
            && latest.at.elapsed() < UNFENCE_EVERY
            && last
                .get(name)
                .is_none_or(|t| latest.at > *t && t.elapsed() >= UNFENCE_EVERY);
        if !lifts {
            return None;
        }
        last.insert(name.to_string(), Instant::now());
        let server = c.spec.servers.iter().find(|s| &s.name == master)?;
        let endpoint = server.agent.clone()?;
        let u = &c.spec.users;
        let token = secret(&u.agent_token_file, &u.agent_token_env, "agent token").ok()?;
        let (cluster, master, epoch) = (name.to_string(), master.clone(), c.epoch);
        let (how, reason) = (fence.how.clone(), fence.reason.clone());
        Some(async move {
            let unfence = async {
                let url = format!("http://{endpoint}");
                let client = AgentClient::connect(&url, &token, Duration::from_secs(2))
                    .await?
                    .fenced(&fencing)?;
                anyhow::Ok(client.unfence(&cluster, epoch).await?)
            };
            match tokio::time::timeout(Duration::from_secs(3), unfence).await {
                Ok(Ok(_)) => tracing::warn!(
                    %cluster,
                    "{master} had fenced itself ({how}, {reason}); a majority of managers renews \
                     its lease again at epoch {epoch}: UNFENCED (read_only=OFF)"
                ),
                Ok(Err(e)) => tracing::warn!(%cluster, "unfencing {master}: {e:#}"),
                Err(_) => tracing::warn!(%cluster, "unfencing {master}: no answer"),
            }
        })
    }
}
