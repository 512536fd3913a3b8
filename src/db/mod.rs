//! The database layer: one dialect for MariaDB 10.x/11.x and MySQL 5.7/8.0/8.4.
//!
//! - [`version`]: flavor and version parsing, and the feature questions asked of them.
//! - [`gtid`]: typed GTID sets (MySQL intervals, MariaDB positions) and their algebra.
//! - [`status`]: replica/master status, server variables and process lists parsed by column.
//! - [`sql`]: statement builders (escaped values, masked passwords, bounded waits).
//! - [`server`]: the [`server::DbServer`] trait detection and failover use, and the
//!   alive/failed classification of errors.
//! - [`mysql`]: the mysql_async implementation of that trait.
//! - [`replica_stop`]: stopping an IO thread without waiting on a silent master.
//! - [`binlogs`], [`accounts`], [`sessions`]: a server's binlogs, grants and sessions as SQL
//!   shows them (rejoin, check-repl, switchover).
pub mod accounts;
pub mod binlogs;
pub mod gtid;
pub mod mysql;
pub mod replica_stop;
pub mod server;
pub mod sessions;
pub mod sql;
pub mod status;
pub mod version;

pub use gtid::{GtidSet, MariaGtid, MariaGtidPos, MySqlGtidSet};
pub use mysql::{ConnectSettings, MysqlServer};
pub use server::{ALIVE_ERROR_CODES, DbError, DbServer, FailureKind, PingOutcome, PingType};
pub use sql::{ChangeSource, Dialect, Secret, SourcePosition, Statement, WaitKind, WaitOutcome};
pub use status::{BinlogCoord, GtidState, IoThread, MasterStatus, ReplicaStatus, ServerVariables};
pub use version::{Flavor, ServerVersion};
