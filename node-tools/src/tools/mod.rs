//! The operations behind the CLI tools and the agent's RPCs.
//!
//! - [`save`]: `save_binary_logs` — a binlog tail from `file:pos` into one valid binlog file.
//! - [`diff`]: `apply_diff_relay_logs --command=find|generate` on the latest replica.
//! - [`apply`]: `apply_diff_relay_logs --command=apply` — GTID-idempotent, never half a
//!   transaction, and `gtid_slave_pos` left right on MariaDB.
//! - [`purge`]: MHA's `purge_relay_logs`.
//! - [`dump`]: one line (or JSON object) per event, for operators.
//! - [`bench`]: throughput and memory of scan, search, generate and save.
//! - [`db`]: connection settings and the private client option file.

pub mod apply;
pub mod bench;
pub mod db;
pub mod diff;
pub mod dump;
pub mod purge;
pub mod save;

use crate::binlog::WalkError;
use crate::binlog::relay::FindError;

/// Errors of the tools; each says what was being done and to which file or server.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(transparent)]
    Walk(#[from] WalkError),
    #[error(transparent)]
    Find(#[from] FindError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("database {addr}: {message}")]
    Db { addr: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("applying the diff failed: {0}")]
    Apply(String),
}

impl ToolError {
    /// True when a binlog or relay log could not be read because it is encrypted.
    pub fn is_encrypted(&self) -> bool {
        match self {
            ToolError::Walk(e) | ToolError::Find(FindError::Walk(e)) => e.is_encrypted(),
            _ => false,
        }
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ToolError {
        let context = context.into();
        move |source| ToolError::Io { context, source }
    }
}
