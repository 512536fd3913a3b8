//! The client workload: processes inserting unique ids into the current master, recording
//! every invoke and its outcome.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

use crate::history::Event;
use crate::recorder::Recorder;

/// Where writes go: the master and the epoch the client believes in.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub node: String,
    pub opts: Opts,
    pub epoch: u64,
}

/// How a client finds the master. Production clients ask the managers; runs without managers
/// use a fixed master.
pub trait MasterDirectory: Send + Sync + 'static {
    fn current(&self) -> impl std::future::Future<Output = Option<Target>> + Send;
}

/// A master that never changes (runs without managers).
pub struct FixedMaster(pub Target);

impl MasterDirectory for FixedMaster {
    async fn current(&self) -> Option<Target> {
        Some(self.0.clone())
    }
}

pub const SCHEMA: &str = "CREATE DATABASE IF NOT EXISTS jepsen";
pub const TABLE: &str = "CREATE TABLE IF NOT EXISTS jepsen.writes (id BIGINT UNSIGNED PRIMARY KEY, process INT UNSIGNED NOT NULL, epoch BIGINT UNSIGNED NOT NULL)";

const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
const WRITE_TIMEOUT: Duration = Duration::from_millis(2000);

/// How often a client waiting on a master checks whether the directory still names it.
const DIRECTORY_POLL: Duration = Duration::from_millis(20);

/// Resolves once `directory` names another master than `target` (a client library told of a
/// failover drops what it was waiting for on the old master, as a proxy does: a frozen or
/// cut-off old master would otherwise hold the client until its own timeouts).
async fn master_moved<D: MasterDirectory>(directory: &D, target: &Target) {
    loop {
        tokio::time::sleep(DIRECTORY_POLL).await;
        if directory
            .current()
            .await
            .is_some_and(|now| now.node != target.node || now.epoch != target.epoch)
        {
            return;
        }
    }
}

/// Server errors after which the statement certainly did not commit.
fn certainly_not_committed(code: u16) -> bool {
    matches!(
        code,
        1290 /* read-only */ | 1792 /* read-only transaction */ | 1836 /* read-only mode */
            | 1205 /* lock wait timeout */ | 1213 /* deadlock */ | 1142 | 1044 | 1045 /* privileges */
            | 1146 /* no table */ | 1049 /* no database */ | 1062 /* duplicate: id already there */
    )
}

/// Runs one client process until `stop` is set, drawing ids from `next_id`.
pub async fn client<D: MasterDirectory>(
    process: u32,
    directory: Arc<D>,
    next_id: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    pause_between: Duration,
    rec: Recorder,
) {
    let mut conn: Option<(Target, Conn)> = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(target) = directory.current().await else {
            tokio::time::sleep(pause_between.max(Duration::from_millis(20))).await;
            continue;
        };
        if conn.as_ref().is_none_or(|(t, _)| *t != target) {
            let connect = tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(target.opts.clone()));
            let connected = tokio::select! {
                c = connect => c.ok(),
                () = master_moved(&*directory, &target) => None,
            };
            conn = match connected {
                Some(Ok(c)) => Some((target.clone(), c)),
                _ => {
                    // Nothing was invoked: a failed connect is not an operation.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
        }
        let Some((_, c)) = conn.as_mut() else {
            continue;
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        rec.record(Event::Invoke {
            process,
            id,
            node: target.node.clone(),
            epoch: target.epoch,
        });
        let insert = c.exec_drop(
            "INSERT INTO jepsen.writes (id, process, epoch) VALUES (?, ?, ?)",
            (id, process, target.epoch),
        );
        let outcome = tokio::select! {
            r = tokio::time::timeout(WRITE_TIMEOUT, insert) => r.map_err(|_| format!("no answer within {WRITE_TIMEOUT:?}")),
            () = master_moved(&*directory, &target) => Err("abandoned: the directory names a new master".to_string()),
        };
        match outcome {
            Ok(Ok(())) => rec.record(Event::Ok {
                process,
                id,
                node: target.node.clone(),
                epoch: target.epoch,
            }),
            Ok(Err(mysql_async::Error::Server(e))) if certainly_not_committed(e.code) => {
                rec.record(Event::Fail {
                    process,
                    id,
                    error: format!("{} {}", e.code, e.message),
                });
            }
            Ok(Err(e)) => {
                rec.record(Event::Info {
                    process,
                    id,
                    error: e.to_string(),
                });
                conn = None;
            }
            Err(why) => {
                rec.record(Event::Info {
                    process,
                    id,
                    error: why,
                });
                conn = None;
            }
        }
        if !pause_between.is_zero() {
            tokio::time::sleep(pause_between).await;
        }
    }
    if let Some((_, c)) = conn {
        let _ = tokio::time::timeout(Duration::from_millis(500), c.disconnect()).await;
    }
}
