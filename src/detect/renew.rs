//! Lease renewals: after each successful check of the current master, this manager renews
//! the master's lease on that host's node agent (see `raftmha_node::agent::lease`). The
//! renewal runs in its own task, bounded by [`RENEWAL_TIMEOUT`], and never delays a check.
//! A manager whose checks fail stops renewing, so by the time a majority of managers calls the
//! master dead, a majority has stopped renewing and the agent fences the master itself.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raftmha_node::agent::client::AgentClient;
use raftmha_node::agent::lease::{CHECK_INTERVAL, FENCE_DEADLINE};
use raftmha_node::proto::{LeaseReply, RenewLeaseRequest};
use tokio::sync::watch;
use tokio::time::Instant;

/// Bound on one renewal (connect included). A renewal is sent only within this much of the
/// successful check behind it, so every renewal reaches the agent within twice this after the
/// check that justified it.
pub const RENEWAL_TIMEOUT: Duration = Duration::from_millis(200);

/// How long after the managers stopped renewing the old master is surely fenced by its own
/// agent: the TTL (with 5 % for clock-rate drift), the renewal in flight, one agent check and
/// the fence itself. A leader that can reach neither the master nor its agent waits this long
/// (from the start of its fencing step) before it promotes another server.
pub fn lease_wait(ttl: Duration) -> Duration {
    ttl.mul_f64(1.05) + RENEWAL_TIMEOUT * 2 + CHECK_INTERVAL + FENCE_DEADLINE
}

/// Where and for what this manager renews.
#[derive(Clone)]
pub struct LeaseTarget {
    pub cluster: String,
    /// The master's server name (renewal replies are kept per cluster, tagged with it).
    pub server: String,
    /// The master's MySQL `host:port` (cluster file), for the agent's `/master` check.
    pub server_addr: String,
    pub epoch: u64,
    pub manager: u64,
    /// Zero: tell the agent to disarm.
    pub ttl: Duration,
    /// The agent's `host:port` and token.
    pub endpoint: String,
    pub token: String,
    /// This manager's current Raft term, sent as the renewal's fencing token: an agent that
    /// saw a leader of a newer term act refuses renewals from older terms.
    pub term: std::sync::Arc<dyn Fn() -> u64 + Send + Sync>,
}

/// The latest renewal reply this manager got for each cluster's master.
#[derive(Debug, Clone)]
pub struct LatestReply {
    pub server: String,
    pub epoch: u64,
    pub reply: LeaseReply,
    pub at: Instant,
}

pub type LeaseReplies = Arc<Mutex<BTreeMap<String, LatestReply>>>;

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Renews after every successful check signalled on `alive` (the instant of that check) until
/// the monitor drops its sender. `voters` gives the current Raft voters; while `failing_over`
/// says a failover of this master is in flight, nothing is renewed (a master that answers
/// again mid-failover must still lose its lease: another server is being promoted).
pub async fn run_renewals(
    target: LeaseTarget,
    voters: impl Fn() -> Vec<u64> + Send,
    failing_over: impl Fn() -> bool + Send,
    mut alive: watch::Receiver<Option<Instant>>,
    replies: LeaseReplies,
) {
    let mut client: Option<AgentClient> = None;
    let mut last_refusal = String::new();
    while alive.changed().await.is_ok() {
        let Some(checked) = *alive.borrow_and_update() else {
            continue;
        };
        if checked.elapsed() >= RENEWAL_TIMEOUT || failing_over() {
            continue;
        }
        let req = RenewLeaseRequest {
            cluster: target.cluster.clone(),
            epoch: target.epoch,
            manager_id: target.manager,
            voters: voters(),
            ttl_ms: u64::try_from(target.ttl.as_millis()).unwrap_or(u64::MAX),
            sent_at_unix_ms: now_unix_ms(),
            master: target.server.clone(),
            master_addr: target.server_addr.clone(),
        };
        let deadline = checked + RENEWAL_TIMEOUT;
        let attempt = async {
            let c = match &client {
                Some(c) => c.clone(),
                None => {
                    let url = format!("http://{}", target.endpoint);
                    let c = AgentClient::connect(&url, &target.token, RENEWAL_TIMEOUT).await?;
                    client = Some(c.clone());
                    c
                }
            };
            let fencing = raftmha_node::agent::client::FencingToken {
                cluster: target.cluster.clone(),
                term: (target.term)(),
                epoch: target.epoch,
            };
            c.fenced(&fencing)?.renew_lease(req).await
        };
        match tokio::time::timeout_at(deadline, attempt).await {
            Ok(Ok(reply)) => {
                if !reply.accepted && reply.refused != last_refusal {
                    tracing::warn!(
                        cluster = %target.cluster,
                        "lease renewal refused by {}: {}",
                        target.endpoint,
                        reply.refused
                    );
                    last_refusal = reply.refused.clone();
                }
                let mut map = replies.lock().unwrap_or_else(|p| p.into_inner());
                map.insert(
                    target.cluster.clone(),
                    LatestReply {
                        server: target.server.clone(),
                        epoch: target.epoch,
                        reply,
                        at: Instant::now(),
                    },
                );
            }
            Ok(Err(e)) => {
                tracing::debug!(cluster = %target.cluster, "lease renewal failed: {e}");
                client = None;
            }
            Err(_) => {
                tracing::debug!(cluster = %target.cluster, "lease renewal timed out");
                client = None;
            }
        }
    }
}
