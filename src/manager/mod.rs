//! The `raftmha manager` daemon: one per manager host. It opens the data dir (refusing a
//! damaged one), starts the Raft node, serves the Raft and admin gRPC services on one
//! listener, bootstraps a new cluster safely, and shuts down gracefully. [`supervise`] is the
//! per-manager loop (monitors, and on the leader: decisions, failovers, fencing); [`lease`] its
//! masters' leases (renewals, unfence of a self-fenced master); [`route_notes`] tells the
//! other servers' agents which server is master (their `/replica` checks).
pub mod config;
pub mod duties;
pub mod haproxy;
pub mod heartbeat;
pub mod leader_tasks;
pub mod lease;
pub mod local;
pub mod metrics;
pub mod raft_journal;
pub mod replica_watch;
pub mod resolve;
pub mod route_notes;
pub mod supervise;
pub mod testbed;

use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::admin_proto::admin_service_server::AdminServiceServer;
use crate::api::client::AdminClient;
use crate::api::server::AdminServer;
use crate::proto::raft_service_server::RaftServiceServer;
use crate::raft::handle::RaftHandle;
use crate::raft::network::Network;
use crate::raft::node::{self, DataDir, DataDirState};
use crate::raft::service::RaftServer;
pub use config::ManagerConfig;

/// The agents' token a cluster file names (its file's first line, or an environment variable).
pub fn agent_token(file: &Option<String>, env: &Option<String>) -> anyhow::Result<String> {
    resolve::secret(file, env, "agent token")
}

/// Runs a manager until `shutdown` resolves.
pub async fn run(
    cfg: ManagerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let data = DataDir::new(&cfg.data_dir, cfg.node_id);
    let state = data.inspect()?;
    if state == DataDirState::Fresh {
        refuse_if_already_a_member(&cfg).await?;
    }
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("`listen`: cannot listen on {}", cfg.listen))?;
    let stores = data.open(state).await?;
    tracing::info!(
        node_id = cfg.node_id,
        listen = %cfg.listen,
        data_dir = %cfg.data_dir.display(),
        fresh = (state == DataDirState::Fresh),
        "manager starting"
    );
    let local_ip = Some(cfg.listen.ip()).filter(|ip| !ip.is_unspecified());
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = &cfg.tls {
        crate::raft::network::use_client_tls(tls.client.load()?);
        server = server.tls_config(tls.server.load()?).context("`tls`")?;
    }
    let network = Network::new(
        cfg.token.clone(),
        node::connect_timeout(cfg.timing),
        local_ip,
    );
    let raft = node::start(cfg.node_id, cfg.timing, &stores, network).await?;
    let handle = RaftHandle::new(raft.clone(), stores.state_machine.clone());
    let metrics = std::sync::Arc::new(crate::api::http::EngineMetrics::default());
    let web_view = cfg.http_listen.map(|_| crate::view::routes(handle.clone()));
    crate::api::http::start(cfg.http_listen, handle.clone(), metrics.clone(), web_view).await?;
    let op_timeout = Duration::from_secs(5);
    let admin = AdminServer {
        raft: handle.clone(),
        id: cfg.node_id,
        addr: cfg.advertised_addr(),
        token: cfg.token.clone(),
        initial_voters: cfg.initial_voters.clone(),
        op_timeout,
        local_ip,
        peers: Default::default(),
    };
    let raft_service =
        RaftServiceServer::new(RaftServer::new(raft, cfg.node_id, cfg.token.clone()))
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024);

    if cfg.auto_init {
        tokio::spawn(auto_initialize(cfg.clone(), op_timeout));
    }

    let (sup_stop_tx, sup_stop_rx) = tokio::sync::watch::channel(false);
    let supervisor = supervise::Supervisor {
        handle: handle.clone(),
        id: cfg.node_id,
        token: cfg.token.clone(),
        local_ip,
        work_dir: cfg.data_dir.join("failover"),
        metrics,
        replica_watch: Default::default(),
    };
    tokio::spawn(route_notes::run(
        handle.clone(),
        cfg.node_id,
        sup_stop_rx.clone(),
    ));
    tokio::spawn(supervisor.run(sup_stop_rx));

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stepping_down = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = sup_stop_tx.send(true);
        tracing::info!("shutdown requested");
        // Hand leadership over first: the others do not wait out an election timeout.
        stepping_down.step_down().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = stop_tx.send(());
    });
    server
        .tcp_nodelay(true)
        .add_service(raft_service)
        .add_service(AdminServiceServer::new(admin).max_decoding_message_size(16 * 1024 * 1024))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
            let _ = stop_rx.await;
        })
        .await
        .context("gRPC server failed")?;
    handle.shutdown().await;
    stores
        .db
        .flush_async()
        .await
        .context("final flush of the log store")?;
    tracing::info!("manager stopped");
    Ok(())
}

/// A fresh data dir on a manager the running cluster already counts as a member means
/// the data was lost: joining with an empty log could vote twice in a term. Refuse.
async fn refuse_if_already_a_member(cfg: &ManagerConfig) -> anyhow::Result<()> {
    for (id, addr) in &cfg.initial_voters {
        if *id == cfg.node_id {
            continue;
        }
        let Ok(peer) = AdminClient::new(addr, cfg.token.clone(), Duration::from_secs(1)) else {
            continue;
        };
        let Ok(status) = peer.status().await else {
            continue;
        };
        if status.members.iter().any(|m| m.id == cfg.node_id) {
            anyhow::bail!(
                "data dir {} is missing or empty, but manager {} (at {addr}) lists manager {} as a member of the running cluster; refusing to rejoin with an empty log (restore the data dir, or `raftmha members remove {}` and re-add this host under a new node_id)",
                cfg.data_dir.display(),
                status.id,
                cfg.node_id,
                cfg.node_id
            );
        }
    }
    Ok(())
}

/// The lowest-id initial voter initializes a brand-new cluster once every initial voter
/// answers and is uninitialized (see `AdminServer::initialize_cluster`).
async fn auto_initialize(cfg: ManagerConfig, op_timeout: Duration) {
    let lowest = cfg.initial_voters.iter().map(|(id, _)| *id).min();
    if lowest != Some(cfg.node_id) {
        return;
    }
    let Ok(me) = AdminClient::new(&cfg.advertised_addr(), cfg.token.clone(), op_timeout) else {
        return;
    };
    let mut last_reason = String::new();
    loop {
        match me.initialize().await {
            Ok(message) => {
                tracing::info!("{message}");
                return;
            }
            Err(s) if s.code() == tonic::Code::AlreadyExists => return,
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                tracing::warn!("not initializing: {}", s.message());
                return;
            }
            Err(s) => {
                if s.message() != last_reason {
                    tracing::info!("waiting to initialize the cluster: {}", s.message());
                    last_reason = s.message().to_string();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
