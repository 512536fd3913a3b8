//! Tells every server that is not the recorded master which one is (`NoteMaster`), so its
//! agent's `/replica` check can verify it replicates from that server. The master itself
//! learns it from its lease renewals ([`crate::detect::renew`]). Each manager sends from its
//! own copy of the replicated state: at once when a cluster's (epoch, master) changes, and
//! every [`RESEND`] otherwise (an agent that restarted knows nothing). Agents ignore a note
//! of an older epoch, so a lagging manager cannot confuse them.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raftmha_node::agent::client::AgentClient;
use raftmha_node::proto::NoteMasterRequest;
use tokio::sync::watch;
use tokio::time::Instant;

use super::resolve::secret;
use crate::raft::handle::RaftHandle;
use crate::state::ManagerState;

const TICK: Duration = Duration::from_millis(200);
const RESEND: Duration = Duration::from_secs(2);
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// One note to send: to `endpoint` (agent `host:port`) with the cluster's agent token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub endpoint: String,
    pub token_file: Option<String>,
    pub token_env: Option<String>,
    pub request: NoteMasterRequest,
}

/// The notes the replicated state calls for: one per server with an agent that is not its
/// cluster's recorded master.
pub fn notes(state: &ManagerState, manager: u64) -> Vec<Note> {
    let mut out = Vec::new();
    for (name, c) in &state.clusters {
        let Some(master) = c.master.as_deref() else {
            continue;
        };
        let Some(m) = c.spec.servers.iter().find(|s| s.name == master) else {
            continue;
        };
        for s in c.spec.servers.iter().filter(|s| s.name != master) {
            let Some(endpoint) = &s.agent else { continue };
            out.push(Note {
                endpoint: endpoint.clone(),
                token_file: c.spec.users.agent_token_file.clone(),
                token_env: c.spec.users.agent_token_env.clone(),
                request: NoteMasterRequest {
                    cluster: name.clone(),
                    epoch: c.epoch,
                    manager_id: manager,
                    master: m.name.clone(),
                    master_addr: format!("{}:{}", m.host, m.port),
                },
            });
        }
    }
    out
}

type Clients = Arc<Mutex<BTreeMap<String, AgentClient>>>;

/// Sends the notes until `stop` turns true; each call runs in its own task, so an agent
/// that does not answer delays no other.
pub async fn run(handle: RaftHandle, manager: u64, mut stop: watch::Receiver<bool>) {
    // endpoint -> (what was last sent, when)
    let mut sent: BTreeMap<String, (NoteMasterRequest, Instant)> = BTreeMap::new();
    let clients: Clients = Arc::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let (_, state) = handle.local_state();
        for note in notes(&state, manager) {
            let due = sent
                .get(&note.endpoint)
                .is_none_or(|(req, at)| *req != note.request || at.elapsed() >= RESEND);
            if due {
                sent.insert(
                    note.endpoint.clone(),
                    (note.request.clone(), Instant::now()),
                );
                tokio::spawn(send(note, clients.clone()));
            }
        }
    }
}

async fn send(note: Note, clients: Clients) {
    let endpoint = note.endpoint.clone();
    let cached = clients
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&endpoint)
        .cloned();
    let result = tokio::time::timeout(CALL_TIMEOUT, async {
        let client = match cached {
            Some(c) => c,
            None => {
                let token = secret(&note.token_file, &note.token_env, "agent token")?;
                let url = format!("http://{}", note.endpoint);
                AgentClient::connect(&url, &token, CALL_TIMEOUT).await?
            }
        };
        client.note_master(note.request).await?;
        anyhow::Ok(client)
    })
    .await;
    let mut clients = clients.lock().unwrap_or_else(|p| p.into_inner());
    match result {
        Ok(Ok(client)) => {
            clients.insert(endpoint, client);
        }
        Ok(Err(e)) => {
            tracing::debug!("NoteMaster to {endpoint}: {e:#}");
            clients.remove(&endpoint);
        }
        Err(_) => {
            tracing::debug!("NoteMaster to {endpoint}: no answer");
            clients.remove(&endpoint);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ClusterRecord;
    use crate::state::cluster_file::ClusterSpec;

    #[test]
    fn every_server_but_the_recorded_master_is_told_which_one_it_is() {
        let spec = ClusterSpec::parse(
            "name = \"app1\"\n[users]\nadmin_user = \"a\"\nadmin_password_env = \"P\"\n\
             repl_user = \"r\"\nrepl_password_env = \"R\"\nagent_token_env = \"T\"\n\
             [[server]]\nname = \"db1\"\nhost = \"10.0.0.11\"\nagent = \"10.0.0.11:7600\"\n\
             [[server]]\nname = \"db2\"\nhost = \"10.0.0.12\"\nagent = \"10.0.0.12:7600\"\n\
             [[server]]\nname = \"db3\"\nhost = \"10.0.0.13\"\n",
        )
        .expect("spec");
        let mut state = ManagerState::default();
        let mut c = ClusterRecord {
            spec,
            master: None,
            epoch: 4,
            paused: false,
            verdicts: Default::default(),
            failovers: Default::default(),
            last_failover: None,
            registered_at_ms: 0,
        };
        state.clusters.insert("app1".into(), c.clone());
        assert!(notes(&state, 1).is_empty(), "no master recorded yet");
        c.master = Some("db2".into());
        state.clusters.insert("app1".into(), c);
        let n = notes(&state, 7);
        assert_eq!(n.len(), 1, "db3 has no agent, db2 is the master: {n:?}");
        assert_eq!(n[0].endpoint, "10.0.0.11:7600");
        assert_eq!(n[0].request.master, "db2");
        assert_eq!(n[0].request.master_addr, "10.0.0.12:3306");
        assert_eq!((n[0].request.epoch, n[0].request.manager_id), (4, 7));
    }
}
