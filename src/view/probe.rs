//! What the web view shows of each server beyond the replicated state: `read_only`, the
//! replication threads, lag and the last replication error (over SQL, with the cluster's
//! admin account), and the fence record its agent keeps (agent `Health`). Probed every
//! [`EVERY`] by this manager, all servers in parallel, only while the page was fetched in the
//! last [`WATCHED`]: an unwatched view costs nothing.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raftmha_node::agent::client::AgentClient;
use serde::Serialize;
use tokio::time::Instant;

use crate::check::collect::resolve_password;
use crate::db::{ConnectSettings, DbServer, IoThread, MysqlServer};
use crate::manager::agent_token;
use crate::raft::handle::RaftHandle;
use crate::state::cluster_file::{ClusterSpec, ServerSpec};

const EVERY: Duration = Duration::from_millis(1000);
const WATCHED: Duration = Duration::from_secs(15);
const TIMEOUT: Duration = Duration::from_millis(800);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerProbe {
    pub at_ms: u64,
    /// Why SQL did not answer; the SQL fields are then empty.
    pub error: Option<String>,
    pub read_only: Option<bool>,
    /// `host:port` it replicates from, when it does.
    pub source: Option<String>,
    /// `Yes`, `Connecting` or `No`.
    pub io_thread: Option<String>,
    pub sql_running: Option<bool>,
    pub lag_seconds: Option<u64>,
    pub replication_error: Option<String>,
    /// The agent's fence record (`read_only (lease_expired, epoch 3)`), `none`, or why the
    /// agent did not answer.
    pub fence: Option<String>,
}

type Key = (String, String);

#[derive(Default)]
pub struct Probes {
    seen: Mutex<BTreeMap<Key, ServerProbe>>,
    viewed: Mutex<Option<Instant>>,
}

impl Probes {
    /// The page was fetched: keep probing for a while.
    pub fn viewed(&self) {
        *self.viewed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    fn watched(&self) -> bool {
        self.viewed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| t.elapsed() < WATCHED)
    }

    pub fn snapshot(&self) -> BTreeMap<Key, ServerProbe> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Connections kept between rounds: SQL per server, agent clients per endpoint.
#[derive(Default)]
struct Conns {
    sql: BTreeMap<(Key, String), Arc<MysqlServer>>,
    agents: BTreeMap<String, AgentClient>,
}

/// Probes every server of every cluster each [`EVERY`] while the view is watched.
pub async fn run(raft: RaftHandle, probes: Arc<Probes>) {
    let conns = Arc::new(tokio::sync::Mutex::new(Conns::default()));
    loop {
        tokio::time::sleep(EVERY).await;
        if !probes.watched() {
            continue;
        }
        let (_, state) = raft.local_state();
        let mut tasks = Vec::new();
        for (name, c) in &state.clusters {
            for s in &c.spec.servers {
                let key = (name.clone(), s.name.clone());
                let (spec, server) = (c.spec.clone(), s.clone());
                let conns = conns.clone();
                tasks.push(tokio::spawn(async move {
                    let p = probe_one(&spec, &server, &key, &conns).await;
                    (key, p)
                }));
            }
        }
        let mut seen = BTreeMap::new();
        for t in tasks {
            if let Ok((key, p)) = t.await {
                seen.insert(key, p);
            }
        }
        *probes.seen.lock().unwrap_or_else(|p| p.into_inner()) = seen;
    }
}

async fn probe_one(
    spec: &ClusterSpec,
    s: &ServerSpec,
    key: &Key,
    conns: &tokio::sync::Mutex<Conns>,
) -> ServerProbe {
    let mut p = ServerProbe {
        at_ms: crate::api::server::now_ms(),
        ..ServerProbe::default()
    };
    let addr = format!("{}:{}", s.host, s.port);
    let sql = conns
        .lock()
        .await
        .sql
        .get(&(key.clone(), addr.clone()))
        .cloned();
    let sql = match sql {
        Some(db) => Ok(db),
        None => resolve_password(
            spec.users.admin_password_file.as_deref(),
            spec.users.admin_password_env.as_deref(),
        )
        .map(|password| {
            Arc::new(MysqlServer::new(ConnectSettings {
                host: s.host.clone(),
                port: s.port,
                user: spec.users.admin_user.clone(),
                password,
                connect_timeout: TIMEOUT,
                read_timeout: TIMEOUT,
            }))
        }),
    };
    match sql {
        Err(e) => p.error = Some(e),
        Ok(db) => {
            conns
                .lock()
                .await
                .sql
                .insert((key.clone(), addr), db.clone());
            fill_sql(&mut p, &db).await;
        }
    }
    if let Some(endpoint) = &s.agent {
        p.fence = Some(fence_of(spec, endpoint, conns).await);
    }
    p
}

async fn fill_sql(p: &mut ServerProbe, db: &MysqlServer) {
    let work = async {
        let vars = db.variables().await.map_err(|e| e.to_string())?;
        let replica = db.replica_status().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((vars, replica))
    };
    match tokio::time::timeout(TIMEOUT * 2, work).await {
        Err(_) => p.error = Some("no answer".into()),
        Ok(Err(e)) => p.error = Some(e),
        Ok(Ok((vars, replica))) => {
            p.read_only = Some(!vars.is_writable());
            if let Some(r) = replica {
                p.source = Some(format!("{}:{}", r.source_host, r.source_port));
                p.io_thread = Some(
                    match r.io_thread {
                        IoThread::Yes => "Yes",
                        IoThread::Connecting => "Connecting",
                        IoThread::No => "No",
                    }
                    .into(),
                );
                p.sql_running = Some(r.sql_running);
                p.lag_seconds = r.seconds_behind;
                p.replication_error = [
                    (r.last_io_errno, &r.last_io_error),
                    (r.last_sql_errno, &r.last_sql_error),
                ]
                .into_iter()
                .find(|(n, _)| *n != 0)
                .map(|(n, m)| format!("{n}: {m}"));
            }
        }
    }
}

async fn fence_of(spec: &ClusterSpec, endpoint: &str, conns: &tokio::sync::Mutex<Conns>) -> String {
    let cached = conns.lock().await.agents.get(endpoint).cloned();
    let work = async {
        let client = match cached {
            Some(c) => c,
            None => {
                let u = &spec.users;
                let token = agent_token(&u.agent_token_file, &u.agent_token_env)?;
                let url = format!("http://{endpoint}");
                AgentClient::connect(&url, &token, TIMEOUT).await?
            }
        };
        let health = client.health().await?;
        anyhow::Ok((client, health))
    };
    match tokio::time::timeout(TIMEOUT * 2, work).await {
        Ok(Ok((client, health))) => {
            conns
                .lock()
                .await
                .agents
                .insert(endpoint.to_string(), client);
            match health.fence {
                Some(f) if f.fenced => format!("{} ({}, epoch {})", f.how, f.reason, f.epoch),
                _ => "none".into(),
            }
        }
        Ok(Err(e)) => {
            conns.lock().await.agents.remove(endpoint);
            format!("agent: {e:#}")
        }
        Err(_) => {
            conns.lock().await.agents.remove(endpoint);
            "agent: no answer".into()
        }
    }
}
