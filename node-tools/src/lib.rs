//! raftmha node tools: the native binlog/relay-log engine, MHA-compatible tools, and the agent.
//!
//! Module map:
//! - [`binlog`]: the engine. A streaming, CRC-verifying walker over binlog and relay-log files
//!   (`binlog/reader.rs`), transaction boundaries (`group.rs`), relay→master coordinate mapping
//!   and the verified fast/full position search (`relay.rs`), concatenation into one valid
//!   binlog (`concat.rs`).
//! - [`tools`]: the operations behind the CLI and the agent: `save` (save_binary_logs),
//!   `diff` (apply_diff_relay_logs find/generate), `apply` (apply with GTID idempotency and the
//!   MariaDB `gtid_slave_pos` fix), `purge` (purge_relay_logs), `dump`, `bench`.
//! - [`agent`]: the gRPC node agent (`serve`), its token auth and path policy, and the typed
//!   client managers use ([`agent::client::AgentClient`]).
//! - [`http`]: a small HTTP/1.1 server (hyper) for GET endpoints: the agent's routing checks
//!   and the managers' `/metrics`, health endpoints and web view.
//! - [`tls`]: optional rustls configuration shared by the agent and the managers.
//! - [`cli`]: argument parsing and argv[0] dispatch (`save_binary_logs`, ... symlinks).

pub mod agent;
pub mod binlog;
pub mod cli;
pub mod http;
pub mod tls;
pub mod tools;

pub mod proto {
    tonic::include_proto!("raftmha.node.v1");
}
