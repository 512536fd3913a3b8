//! Routing checks for HAProxy-style load balancers, as pure functions of cached facts.
//!
//! - `GET /master`: 200 only while the managers name this host's mysqld as the master at the
//!   newest epoch this agent heard of (it gets their lease renewals, [`Recorded::is_me`]),
//!   the lease is held (a majority of managers renews, or the grace after arming) and not
//!   fenced, and mysqld answers with `read_only=OFF`. A switched-over or failed-over master
//!   stops answering 200 as soon as it is read-only, fenced, or told of a newer epoch.
//! - `GET /replica[?lag=N]`: 200 while mysqld replicates from the recorded master (its
//!   `Master_Host:Master_Port` is the recorded master's address) with both threads running,
//!   no replication error, and `Seconds_Behind_Master ≤ N` when `lag` is given.
//! - `GET /health`: 200 while the agent serves.
//!
//! The managers tell the master through `RenewLease` and every other server through
//! `NoteMaster`; mysqld's state is refreshed in the background ([`super::routing`]), so a
//! check never waits on a database and HAProxy may poll every 250 ms.
use std::time::Duration;

use tokio::time::Instant;

use crate::http::Reply;

/// SQL facts older than this count as unknown (the refresher stopped or mysqld hangs).
pub const SQL_STALE: Duration = Duration::from_millis(1000);
/// With the lease off (`lease_ttl_ms = 0`) the master needs a renewal at least this recent.
pub const RENEWAL_STALE: Duration = Duration::from_secs(5);

/// What the managers last said about the master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub cluster: String,
    pub epoch: u64,
    /// The master's server name and MySQL `host:port` (cluster file).
    pub master: String,
    pub master_addr: String,
    /// Learnt from a lease renewal: the managers renew only their recorded master's lease,
    /// so this host is it.
    pub is_me: bool,
    pub at: Instant,
}

impl Recorded {
    /// Whether `new` replaces `self`: a newer epoch, another cluster, or the same epoch again
    /// (a refresh). An older epoch (a lagging manager) is ignored.
    pub fn superseded_by(&self, new: &Recorded) -> bool {
        new.cluster != self.cluster || new.epoch >= self.epoch
    }
}

/// The local mysqld as the background refresher last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFacts {
    pub at: Instant,
    /// Why mysqld could not be queried; nothing else is meaningful then.
    pub error: Option<String>,
    pub read_only: bool,
    pub replica: Option<ReplicaFacts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaFacts {
    pub source_host: String,
    pub source_port: u16,
    pub io_running: bool,
    pub sql_running: bool,
    pub last_io_errno: u32,
    pub last_sql_errno: u32,
    pub seconds_behind: Option<u64>,
}

/// The lease as the routing check needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseFacts {
    /// The armed epoch; `None` when the lease is off or never armed.
    pub armed_epoch: Option<u64>,
    /// A majority of managers renews (or the grace period after arming runs).
    pub held: bool,
    pub fenced: bool,
}

fn fresh_sql(sql: Option<&SqlFacts>, now: Instant) -> Result<&SqlFacts, String> {
    let s = sql.ok_or("mysqld not queried yet")?;
    let age = now.saturating_duration_since(s.at);
    if age > SQL_STALE {
        return Err(format!("mysqld state is {} ms old", age.as_millis()));
    }
    if let Some(e) = &s.error {
        return Err(format!("mysqld: {e}"));
    }
    Ok(s)
}

/// `GET /master`.
pub fn master(
    rec: Option<&Recorded>,
    lease: LeaseFacts,
    sql: Option<&SqlFacts>,
    now: Instant,
) -> Reply {
    let down = |why: String| Reply::text(503, format!("not master: {why}"));
    let Some(rec) = rec else {
        return down("the managers have not named a master to this agent".into());
    };
    if !rec.is_me {
        return down(format!(
            "the managers record {} ({}) as master of {} at epoch {}",
            rec.master, rec.master_addr, rec.cluster, rec.epoch
        ));
    }
    if lease.fenced {
        return down("fenced".into());
    }
    match lease.armed_epoch {
        Some(e) if e != rec.epoch => {
            return down(format!(
                "lease armed at epoch {e}, recorded epoch {}",
                rec.epoch
            ));
        }
        Some(_) if !lease.held => return down("lease not held by a majority of managers".into()),
        Some(_) => {}
        None if now.saturating_duration_since(rec.at) > RENEWAL_STALE => {
            return down("no renewal from the managers recently".into());
        }
        None => {}
    }
    let sql = match fresh_sql(sql, now) {
        Ok(s) => s,
        Err(e) => return down(e),
    };
    if sql.read_only {
        return down("read_only=ON".into());
    }
    Reply::text(
        200,
        format!(
            "master: {} of {} at epoch {}",
            rec.master, rec.cluster, rec.epoch
        ),
    )
}

/// Whether `addr` (`host:port`) names `host` and `port`.
fn same_addr(addr: &str, host: &str, port: u16) -> bool {
    addr.rsplit_once(':')
        .is_some_and(|(h, p)| h.eq_ignore_ascii_case(host) && p.parse() == Ok(port))
}

/// `GET /replica`, with `max_lag` from `?lag=` (seconds).
pub fn replica(
    rec: Option<&Recorded>,
    sql: Option<&SqlFacts>,
    max_lag: Option<u64>,
    now: Instant,
) -> Reply {
    let down = |why: String| Reply::text(503, format!("not a healthy replica: {why}"));
    let sql = match fresh_sql(sql, now) {
        Ok(s) => s,
        Err(e) => return down(e),
    };
    let Some(r) = &sql.replica else {
        return down("not replicating".into());
    };
    let Some(rec) = rec else {
        return down("the managers have not named a master to this agent".into());
    };
    if rec.is_me {
        return down(format!(
            "this host is the recorded master at epoch {}",
            rec.epoch
        ));
    }
    if !same_addr(&rec.master_addr, &r.source_host, r.source_port) {
        return down(format!(
            "replicates from {}:{}, the recorded master is {} ({})",
            r.source_host, r.source_port, rec.master, rec.master_addr
        ));
    }
    if !r.io_running || !r.sql_running {
        return down(format!(
            "IO thread {}, SQL thread {}",
            if r.io_running {
                "running"
            } else {
                "not running"
            },
            if r.sql_running { "running" } else { "stopped" }
        ));
    }
    if r.last_io_errno != 0 || r.last_sql_errno != 0 {
        return down(format!(
            "replication error (IO {}, SQL {})",
            r.last_io_errno, r.last_sql_errno
        ));
    }
    if let Some(max) = max_lag {
        match r.seconds_behind {
            None => return down("lag unknown".into()),
            Some(l) if l > max => return down(format!("{l} s behind (limit {max} s)")),
            Some(_) => {}
        }
    }
    Reply::text(
        200,
        format!(
            "replica of {} ({} s behind)",
            rec.master,
            r.seconds_behind
                .map_or_else(|| "?".to_string(), |l| l.to_string())
        ),
    )
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
