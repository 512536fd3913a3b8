//! The Raft state machine: applies committed [`Request`]s to [`ManagerState`] in memory.
//!
//! Durability comes from the log plus snapshot files: on start the newest snapshot file is
//! loaded and openraft re-applies committed log entries after it, up to the `committed`
//! pointer the log store saved (lazily, so possibly behind: the rest is applied once a newly
//! elected leader commits, before it serves reads). Snapshots are built from a point-in-time
//! copy taken on the state-machine worker, because openraft builds them concurrently with
//! later `apply` calls.
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::{Stream, TryStreamExt};
use openraft::EntryPayload;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use serde::{Deserialize, Serialize};

use super::codec::{decode, encode};
use super::{
    LogId, Snapshot, SnapshotData, SnapshotMeta, StoredMembership, TypeConfig, snapshot_file,
};
use crate::state::{CommandResult, ManagerState, SNAPSHOT_FORMAT_VERSION};

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotBody {
    version: u32,
    state: ManagerState,
}

#[derive(Debug, Default)]
struct Inner {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    state: ManagerState,
    /// The newest snapshot file and its meta.
    current: Option<(SnapshotMeta, PathBuf)>,
    /// When each verdict was applied here (local, not part of snapshots).
    arrivals: super::arrivals::VerdictArrivals,
}

/// Shared handle: the Raft worker applies through it, the admin API reads through it.
#[derive(Clone, Debug)]
pub struct StateMachineStore {
    inner: Arc<Mutex<Inner>>,
    dir: PathBuf,
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn corrupt(why: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

fn encode_body(state: &ManagerState) -> io::Result<Vec<u8>> {
    encode(&SnapshotBody {
        version: SNAPSHOT_FORMAT_VERSION,
        state: state.clone(),
    })
}

fn decode_body(data: &[u8]) -> io::Result<ManagerState> {
    let body: SnapshotBody = decode(data)?;
    if body.version > SNAPSHOT_FORMAT_VERSION {
        return Err(corrupt(format!(
            "snapshot format v{} is newer than this binary (v{SNAPSHOT_FORMAT_VERSION})",
            body.version
        )));
    }
    Ok(body.state)
}

impl StateMachineStore {
    /// Opens the state machine whose snapshots live in `dir`, loading the newest snapshot.
    /// A damaged snapshot file is an error: starting without it would lose state.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let mut inner = Inner::default();
        if let Some(path) = snapshot_file::list(dir)?.pop() {
            let (meta_bytes, data) = snapshot_file::read(&path)?;
            let meta: SnapshotMeta = decode(&meta_bytes)?;
            inner.state = decode_body(&data)?;
            inner.last_applied = meta.last_log_id;
            inner.last_membership = meta.last_membership.clone();
            inner.current = Some((meta, path));
        }
        Ok(StateMachineStore {
            inner: Arc::new(Mutex::new(inner)),
            dir: dir.to_path_buf(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means a panic mid-apply elsewhere; the data is still the last
        // consistent value because apply mutates only after validation.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the replicated state and the log id it reflects (local, maybe stale: callers
    /// that need current data run a linearizable read first).
    pub fn read(&self) -> (Option<LogId>, ManagerState) {
        let inner = self.lock();
        (inner.last_applied, inner.state.clone())
    }

    /// When this manager applied `manager`'s verdict about `server` ending at
    /// `window_end_ms` (wall-clock ms), if it is still that manager's newest.
    pub fn verdict_seen_at(&self, v: super::arrivals::VerdictKey<'_>) -> Option<u64> {
        self.lock().arrivals.seen_at(v)
    }
}

/// A point-in-time copy, written to a file when openraft asks for the snapshot.
pub struct SnapshotBuilder {
    dir: PathBuf,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    state: ManagerState,
    store: StateMachineStore,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
        };
        let data = encode_body(&self.state)?;
        let meta_bytes = encode(&meta)?;
        let dir = self.dir.clone();
        let index = self.last_applied.map(|l| l.index).unwrap_or(0);
        let bytes = data.clone();
        let path = tokio::task::spawn_blocking(move || {
            snapshot_file::write(&dir, index, &meta_bytes, &bytes)
        })
        .await
        .map_err(io::Error::other)??;
        {
            let mut inner = self.store.lock();
            let newer = inner
                .current
                .as_ref()
                .is_none_or(|(m, _)| m.last_log_id <= meta.last_log_id);
            if newer {
                inner.current = Some((meta.clone(), path));
            }
        }
        Ok(Snapshot {
            meta,
            snapshot: Cursor::new(data),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let inner = self.lock();
        Ok((inner.last_applied, inner.last_membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + Send,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let result = {
                let mut inner = self.lock();
                inner.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => CommandResult::None,
                    EntryPayload::Normal(req) => {
                        let leader = crate::state::LogLeader {
                            term: entry.log_id.leader_id.term,
                            node: entry.log_id.leader_id.node_id,
                        };
                        if let crate::state::Command::ReportLiveness {
                            cluster,
                            server,
                            manager,
                            window_end_ms,
                            ..
                        } = &req.command
                        {
                            let key = crate::state::VerdictKey {
                                cluster,
                                server,
                                manager: *manager,
                                window_end_ms: *window_end_ms,
                            };
                            inner.arrivals.note(key, wall_ms());
                        }
                        inner.state.apply_logged(&req, Some(leader))
                    }
                    EntryPayload::Membership(m) => {
                        inner.last_membership = StoredMembership::new(Some(entry.log_id), m);
                        CommandResult::None
                    }
                }
            };
            if let Some(responder) = responder {
                responder.send(result);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let inner = self.lock();
        SnapshotBuilder {
            dir: self.dir.clone(),
            last_applied: inner.last_applied,
            last_membership: inner.last_membership.clone(),
            state: inner.state.clone(),
            store: self.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        let data = snapshot.into_inner();
        let state = decode_body(&data)?;
        let meta_bytes = encode(meta)?;
        let dir = self.dir.clone();
        let index = meta.last_log_id.map(|l| l.index).unwrap_or(0);
        let path = tokio::task::spawn_blocking(move || {
            snapshot_file::write(&dir, index, &meta_bytes, &data)
        })
        .await
        .map_err(io::Error::other)??;
        tracing::info!(index, "installed a snapshot received from the leader");
        let mut inner = self.lock();
        inner.state = state;
        inner.last_applied = meta.last_log_id;
        inner.last_membership = meta.last_membership.clone();
        inner.current = Some((meta.clone(), path));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let current = self.lock().current.clone();
        let Some((meta, path)) = current else {
            return Ok(None);
        };
        let (_, data) = tokio::task::spawn_blocking(move || snapshot_file::read(&path))
            .await
            .map_err(io::Error::other)??;
        Ok(Some(Snapshot {
            meta,
            snapshot: Cursor::new(data),
        }))
    }
}
