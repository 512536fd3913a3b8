//! The node agent: a tonic gRPC service the managers call instead of SSH.
//!
//! - [`config`]: `node.toml` and its validation.
//! - [`auth`]: the shared token (file or env var), compared in constant time.
//! - [`paths`]: only bare file names inside the configured directories are served.
//! - [`service`]: the RPCs (`proto/node.proto`).
//! - [`lease`]: the master's lease as plain logic (majority of renewals within the TTL);
//!   [`keeper`] runs it (check loop, persisted state) and [`fence`] fences the local mysqld.
//! - [`tokens`]: fencing tokens; a mutating call lower than the highest seen is refused.
//! - [`route`]: the routing checks (`/master`, `/replica`, `/health`) for HAProxy, as plain
//!   logic; [`routing`] keeps their facts fresh and serves them on `http_listen`.
//! - [`client`]: the typed client managers use.

pub mod auth;
pub mod client;
pub mod config;
pub mod fence;
pub mod keeper;
pub mod lease;
pub mod paths;
pub mod route;
pub mod routing;
pub mod service;
pub mod tokens;

use std::time::Duration;

use crate::proto::node_agent_server::NodeAgentServer;

pub use config::AgentConfig;

/// Runs the agent until `shutdown` resolves.
pub async fn serve(
    cfg: AgentConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let token = auth::load_token(&cfg)?;
    let addr = cfg.listen;
    let max_request = cfg.max_request_bytes;
    let timeout = Duration::from_secs(cfg.call_timeout_secs);
    let cfg_tls = cfg.tls.clone();
    let http_listen = cfg.http_listen;
    let svc = service::Agent::new(cfg)?;
    // Self-fencing runs as long as the agent serves.
    let lease_loop = tokio::spawn(svc.keeper().run());
    let routing_tasks = match http_listen {
        Some(addr) => routing::start(addr, svc.routes(), svc.keeper(), svc.db_target())
            .await
            .map_err(|e| anyhow::anyhow!("`http_listen`: cannot listen on {addr}: {e}"))?
            .into(),
        None => Vec::new(),
    };
    let server = NodeAgentServer::new(svc)
        .max_decoding_message_size(max_request)
        .max_encoding_message_size(service::CHUNK * 2);
    let server =
        tonic::service::interceptor::InterceptedService::new(server, auth::TokenCheck::new(token));
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &cfg_tls {
        builder = builder.tls_config(tls.load()?)?;
    }
    tracing::info!(%addr, tls = cfg_tls.is_some(), "node agent listening");
    let served = builder
        .timeout(timeout)
        .add_service(server)
        .serve_with_shutdown(addr, shutdown)
        .await;
    lease_loop.abort();
    for t in routing_tasks {
        t.abort();
    }
    served?;
    Ok(())
}
