//! Opening a manager's data dir safely and starting its Raft node.
//!
//! Layout of a data dir:
//! - `MANAGER` — marker: `{"node_id": N, "format": 1}`; written last when a dir is created;
//! - `raft.sled/` — the log store (vote, log, metadata);
//! - `snapshots/` — snapshot files.
//!
//! A data dir that exists but is damaged (no marker, another node's marker, missing or
//! unmarked log store, a log with holes, a corrupt snapshot) is refused with a message:
//! joining with an empty log could lose a vote and break Raft's safety.
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::log_store::{FORMAT_VERSION, LogStore};
use super::network::Network;
use super::state_machine::StateMachineStore;
use super::{NodeId, Raft, RaftConfig};

const MARKER: &str = "MANAGER";
const SLED_DIR: &str = "raft.sled";
const SNAPSHOT_DIR: &str = "snapshots";

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error(
        "data dir {dir}: {why}; refusing to start (restore it from a backup, or remove this manager with `raftmha members remove {node_id}` and re-add it under a new id with an empty data dir)"
    )]
    Damaged {
        dir: String,
        node_id: NodeId,
        why: String,
    },
    #[error("data dir {dir}: {error}")]
    Io { dir: String, error: io::Error },
}

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    node_id: NodeId,
    format: u64,
}

/// Whether the data dir already holds a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDirState {
    /// Absent or empty: a brand-new manager.
    Fresh,
    /// Holds this manager's store.
    Existing,
}

pub struct Stores {
    pub db: sled::Db,
    pub log: LogStore,
    pub state_machine: StateMachineStore,
}

pub struct DataDir {
    dir: PathBuf,
    node_id: NodeId,
}

impl DataDir {
    pub fn new(dir: &Path, node_id: NodeId) -> Self {
        DataDir {
            dir: dir.to_path_buf(),
            node_id,
        }
    }

    fn damaged(&self, why: impl Into<String>) -> DataDirError {
        DataDirError::Damaged {
            dir: self.dir.display().to_string(),
            node_id: self.node_id,
            why: why.into(),
        }
    }

    fn io(&self, error: io::Error) -> DataDirError {
        DataDirError::Io {
            dir: self.dir.display().to_string(),
            error,
        }
    }

    pub fn inspect(&self) -> Result<DataDirState, DataDirError> {
        let mut entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DataDirState::Fresh),
            Err(e) => return Err(self.io(e)),
        };
        if entries.next().is_none() {
            return Ok(DataDirState::Fresh);
        }
        let text = match std::fs::read_to_string(self.dir.join(MARKER)) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(self.damaged(format!(
                    "not empty but has no {MARKER} marker (not a raftmha data dir, or its creation was interrupted)"
                )));
            }
            Err(e) => return Err(self.io(e)),
        };
        let marker: Marker = serde_json::from_str(&text)
            .map_err(|e| self.damaged(format!("{MARKER} marker is corrupt: {e}")))?;
        if marker.node_id != self.node_id {
            return Err(self.damaged(format!(
                "belongs to manager {} but this is manager {}",
                marker.node_id, self.node_id
            )));
        }
        if marker.format != FORMAT_VERSION {
            return Err(self.damaged(format!("unknown data dir format {}", marker.format)));
        }
        if !self.dir.join(SLED_DIR).is_dir() {
            return Err(self.damaged(format!("the log store {SLED_DIR}/ is missing")));
        }
        Ok(DataDirState::Existing)
    }

    /// Opens (or, for a fresh dir, creates) the stores.
    pub async fn open(&self, state: DataDirState) -> Result<Stores, DataDirError> {
        if state == DataDirState::Fresh {
            std::fs::create_dir_all(self.dir.join(SNAPSHOT_DIR)).map_err(|e| self.io(e))?;
        }
        let path = self.dir.join(SLED_DIR);
        let sled_path = path.clone();
        let create = state == DataDirState::Fresh;
        // sled 0.34 can panic on some corruptions; a panic here must become a refusal.
        let db = tokio::task::spawn_blocking(move || {
            sled::Config::new()
                .path(path)
                .cache_capacity(64 * 1024 * 1024)
                .create_new(create)
                .open()
        })
        .await
        .map_err(|e| self.damaged(format!("the log store crashed while opening: {e}")))?
        .map_err(|e| self.damaged(format!("the log store cannot be opened: {e}")))?;
        let log = LogStore::open(&db, &sled_path).map_err(|e| self.damaged(e.to_string()))?;
        if create {
            log.mark_new().await.map_err(|e| self.io(e))?;
            let marker = serde_json::to_vec(&Marker {
                node_id: self.node_id,
                format: FORMAT_VERSION,
            })
            .map_err(|e| self.io(io::Error::other(e)))?;
            write_atomically(&self.dir, MARKER, &marker).map_err(|e| self.io(e))?;
        } else {
            match log.format() {
                Ok(Some(FORMAT_VERSION)) => {}
                Ok(Some(v)) => return Err(self.damaged(format!("unknown log store format {v}"))),
                Ok(None) => {
                    return Err(self.damaged(
                        "the log store is empty or was wiped (its format mark is missing)",
                    ));
                }
                Err(e) => return Err(self.damaged(format!("the log store is corrupt: {e}"))),
            }
            log.verify()
                .map_err(|e| self.damaged(format!("the log store is corrupt: {e}")))?;
        }
        let state_machine = StateMachineStore::open(&self.dir.join(SNAPSHOT_DIR))
            .map_err(|e| self.damaged(e.to_string()))?;
        Ok(Stores {
            db,
            log,
            state_machine,
        })
    }
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Raft timing, validated by the manager config.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Snapshot (and purge the log before it) every this many entries.
    pub snapshot_every_logs: u64,
}

pub fn raft_config(timing: Timing) -> Result<RaftConfig, openraft::ConfigError> {
    RaftConfig {
        cluster_name: "raftmha".into(),
        heartbeat_interval: timing.heartbeat_ms,
        election_timeout_min: timing.election_timeout_min_ms,
        election_timeout_max: timing.election_timeout_max_ms,
        // A node cut off and healed must not bump the term and depose a healthy leader.
        enable_pre_vote: Some(true),
        // A restarted leader must win a new election (and commit a blank entry of its new
        // term) before it leads again. openraft's default "leader restore" resumes leadership
        // at startup with the `committed` read back from the log store, which is not flushed
        // (see `LogStore::save_committed`), over an in-memory state machine re-applied only up
        // to that value: its ReadIndex (max of its old term's blank entry and that stale
        // `committed`) could then serve a linearizable read missing acknowledged writes.
        enable_leader_restore: Some(false),
        install_snapshot_timeout: 10_000,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(timing.snapshot_every_logs),
        // Keep a tail so a slightly lagging follower catches up from the log, not a snapshot.
        max_in_snapshot_log_to_keep: (timing.snapshot_every_logs / 2).min(1_000),
        replication_lag_threshold: timing.snapshot_every_logs * 2,
        purge_batch_size: (timing.snapshot_every_logs / 4).clamp(1, 256),
        ..Default::default()
    }
    .validate()
}

/// Starts the Raft node over opened stores.
pub async fn start(
    id: NodeId,
    timing: Timing,
    stores: &Stores,
    network: Network,
) -> anyhow::Result<Raft> {
    let config = Arc::new(raft_config(timing)?);
    let raft = Raft::new(
        id,
        config,
        network,
        stores.log.clone(),
        stores.state_machine.clone(),
    )
    .await?;
    Ok(raft)
}

/// The connect timeout for peer channels: long enough for loopback and LANs, short enough
/// that a dead peer does not hold a replication stream.
pub fn connect_timeout(timing: Timing) -> Duration {
    Duration::from_millis(timing.election_timeout_min_ms.max(200))
}

#[cfg(test)]
mod tests;
