//! What detection and failover ask of one database server, behind a trait so the logic can
//! be tested without a database and the engine can hold any implementation.
use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::gtid::FlavorMismatch;
use super::sql::{Statement, WaitKind, WaitOutcome};
use super::status::{GtidState, MasterStatus, ReplicaStatus, ServerVariables, StatusError};
use super::version::{ServerVersion, VersionParseError};

/// MHA's `@ALIVE_ERROR_CODES`: the server answered, so it is up, it just refuses us (too many
/// connections, access denied, host blocked, ...). These never count as a failed ping.
pub const ALIVE_ERROR_CODES: &[u16] = &[
    1040, 1042, 1043, 1044, 1045, 1129, 1130, 1203, 1226, 1251, 1275,
];

/// MHA's `ping_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum PingType {
    /// `SELECT 1` on a persistent connection (MHA's default).
    #[default]
    Select,
    /// A new connection every check: catches a full connection table or a stuck listener.
    Connect,
    /// A write on a persistent connection: catches "accepts connections, cannot write"
    /// (full disk, failed storage). Not binlogged, so it does not replicate or create GTIDs.
    Insert,
}

impl std::str::FromStr for PingType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "SELECT" => Ok(PingType::Select),
            "CONNECT" => Ok(PingType::Connect),
            "INSERT" => Ok(PingType::Insert),
            _ => Err(format!(
                "unknown ping_type {s:?}: expected SELECT, CONNECT or INSERT"
            )),
        }
    }
}

/// Why a check failed, as far as the network and the server let us tell.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureKind {
    /// TCP connection refused: nothing listens (mysqld down, host up).
    Refused,
    /// No answer within the timeout (host down, partition, hung server).
    Timeout,
    /// The connection broke (reset, closed, unexpected EOF).
    Reset,
    /// The server answered with an error that does not prove it healthy (for example a write
    /// probe failing on a read-only or full server).
    Server { code: u16 },
    /// Anything else at the I/O level.
    Io(String),
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::Refused => f.write_str("connection refused"),
            FailureKind::Timeout => f.write_str("timed out"),
            FailureKind::Reset => f.write_str("connection reset"),
            FailureKind::Server { code } => write!(f, "server error {code}"),
            FailureKind::Io(m) => write!(f, "I/O error: {m}"),
        }
    }
}

/// The result of one liveness check.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PingOutcome {
    Alive,
    /// Refused with one of [`ALIVE_ERROR_CODES`]: up, but not usable by us.
    AliveWithError {
        code: u16,
    },
    Failed(FailureKind),
}

impl PingOutcome {
    /// Whether this outcome counts towards "dead".
    pub fn counts_as_failure(&self) -> bool {
        matches!(self, PingOutcome::Failed(_))
    }
}

/// Errors from a database call, classified the way detection and failover need.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    #[error("cannot reach {addr}: {kind}")]
    Unreachable { addr: String, kind: FailureKind },
    #[error("{addr} refused us with error {code} (the server is up): {message}")]
    Refused {
        addr: String,
        code: u16,
        message: String,
    },
    #[error("{addr}: `{statement}` failed with error {code}: {message}")]
    Server {
        addr: String,
        statement: String,
        code: u16,
        message: String,
    },
    #[error("{addr}: `{what}` did not finish within {after:?}")]
    Timeout {
        addr: String,
        what: String,
        after: Duration,
    },
    #[error("{addr}: unexpected result: {message}")]
    Unexpected { addr: String, message: String },
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error(transparent)]
    Version(#[from] VersionParseError),
    #[error(transparent)]
    Flavor(#[from] FlavorMismatch),
}

impl DbError {
    /// The outcome this error means for a liveness check.
    pub fn as_ping_outcome(&self) -> PingOutcome {
        match self {
            DbError::Unreachable { kind, .. } => PingOutcome::Failed(kind.clone()),
            DbError::Refused { code, .. } => PingOutcome::AliveWithError { code: *code },
            DbError::Server { code, .. } => {
                PingOutcome::Failed(FailureKind::Server { code: *code })
            }
            DbError::Timeout { .. } => PingOutcome::Failed(FailureKind::Timeout),
            other => PingOutcome::Failed(FailureKind::Io(other.to_string())),
        }
    }
}

/// One server as detection and failover see it. Every call is bounded by the
/// implementation's connect/read timeouts; waits carry their own.
pub trait DbServer: Send + Sync {
    /// `host:port`, for logs and errors.
    fn addr(&self) -> &str;

    fn ping(&self, kind: PingType) -> impl Future<Output = PingOutcome> + Send;

    fn version(&self) -> impl Future<Output = Result<ServerVersion, DbError>> + Send;

    fn variables(&self) -> impl Future<Output = Result<ServerVariables, DbError>> + Send;

    fn gtid_state(&self) -> impl Future<Output = Result<GtidState, DbError>> + Send;

    /// `None` when the server is not a replica.
    fn replica_status(&self)
    -> impl Future<Output = Result<Option<ReplicaStatus>, DbError>> + Send;

    /// `None` when binary logging is off.
    fn master_status(&self) -> impl Future<Output = Result<Option<MasterStatus>, DbError>> + Send;

    /// Runs a statement that returns no rows.
    fn execute(&self, statement: &Statement) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Runs a wait statement (see [`super::sql::Dialect::wait_for_position`]); the client side
    /// gives up shortly after `timeout` too.
    fn wait(
        &self,
        statement: &Statement,
        kind: WaitKind,
        timeout: Duration,
    ) -> impl Future<Output = Result<WaitOutcome, DbError>> + Send;

    /// Kills every client session except replication threads and our own; returns the ids.
    fn kill_client_connections(&self) -> impl Future<Output = Result<Vec<u64>, DbError>> + Send;

    /// Sets `read_only` in this server's dialect.
    fn set_read_only(&self, on: bool) -> impl Future<Output = Result<(), DbError>> + Send {
        async move {
            let d = super::sql::Dialect::new(self.version().await?);
            self.execute(&d.set_read_only(on)).await
        }
    }

    /// MHA's fence of a master over SQL: `read_only=ON`, then every client session killed (so
    /// no open transaction commits afterwards); the ids killed. The one place this is written.
    fn stop_client_writes(&self) -> impl Future<Output = Result<Vec<u64>, DbError>> + Send {
        async move {
            self.set_read_only(true).await?;
            self.kill_client_connections().await
        }
    }
}
