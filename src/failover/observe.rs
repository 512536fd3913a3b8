//! Gathers the planner's input from live servers through [`DbServer`]: every replica probed
//! in parallel, each probe bounded, an unreachable replica recorded as such (it will be
//! reported lost, never block).
use std::time::Duration;

use futures::future::join_all;
use tokio::time::timeout;

use super::input::{ReplicaFacts, ReplicaSnapshot, ReplicaState, ServerPolicy, ServerRef};
use crate::db::{DbError, DbServer};

/// One replica's facts: version, variables, replication status and GTID state.
pub async fn replica_facts<S: DbServer>(server: &S) -> Result<ReplicaFacts, DbError> {
    let version = server.version().await?;
    let variables = server.variables().await?;
    let status = server.replica_status().await?;
    let gtid = if version.has_gtid() {
        Some(server.gtid_state().await?)
    } else {
        None
    };
    Ok(ReplicaFacts {
        version,
        variables,
        status,
        gtid,
    })
}

/// Probes one replica within `limit`.
pub async fn observe_replica<S: DbServer>(
    server: &S,
    name: ServerRef,
    policy: ServerPolicy,
    limit: Duration,
) -> ReplicaSnapshot {
    let state = match timeout(limit, replica_facts(server)).await {
        Ok(Ok(facts)) => ReplicaState::Reachable(Box::new(facts)),
        Ok(Err(e)) => ReplicaState::Unreachable {
            reason: e.to_string(),
        },
        Err(_) => ReplicaState::Unreachable {
            reason: format!("no answer within {limit:?}"),
        },
    };
    ReplicaSnapshot {
        server: name,
        policy,
        state,
    }
}

/// Probes every replica in parallel, keeping the configuration order.
pub async fn observe_replicas<S: DbServer>(
    replicas: &[(&S, ServerRef, ServerPolicy)],
    limit: Duration,
) -> Vec<ReplicaSnapshot> {
    join_all(
        replicas
            .iter()
            .map(|(server, name, policy)| observe_replica(*server, name.clone(), *policy, limit)),
    )
    .await
}
