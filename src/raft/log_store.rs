//! The Raft log store on sled: vote, log entries and metadata share one tree under key
//! prefixes, so every multi-key change (e.g. purge + last_purged) is one atomic batch, and
//! sled's single ordered log keeps vote and log I/O in submission order.
//!
//! Durability: `save_vote` and `append` flush before they acknowledge (sled's flush covers
//! every earlier write to the same `Db`). Truncation and purge ride on the next flush.
//! sled 0.34 ends its flush with `sync_file_range`, which survives a process crash but not
//! a power loss (no disk cache flush), so the store also `fdatasync`s sled's data file.
use std::fmt::Debug;
use std::fs::File;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};

use super::codec::{decode, encode};
use super::{Entry, LogId, TypeConfig, Vote};

/// Bytes of encoded entries appended in this process (one log store per manager process);
/// `/metrics` shows it, so a benchmark can tell the Raft traffic in bytes.
static APPENDED_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn appended_bytes() -> u64 {
    APPENDED_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

const META: u8 = 0;
const LOG: u8 = 1;
const TREE: &str = "raft";

fn meta_key(name: &str) -> Vec<u8> {
    let mut k = vec![META];
    k.extend_from_slice(name.as_bytes());
    k
}

fn log_key(index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = LOG;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

fn index_of(key: &[u8]) -> io::Result<u64> {
    let bytes: [u8; 8] = key
        .get(1..9)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed log key"))?;
    Ok(u64::from_be_bytes(bytes))
}

fn sled_err(e: sled::Error) -> io::Error {
    io::Error::other(e)
}

/// The key that marks a store as created by raftmha (a store without it is not ours, or
/// was wiped).
pub const FORMAT_KEY: &str = "format";
pub const FORMAT_VERSION: u64 = 1;

#[derive(Clone, Debug)]
pub struct LogStore {
    tree: sled::Tree,
    /// sled's data file (`<path>/db`), synced after each flush.
    data_file: Arc<File>,
}

impl LogStore {
    /// Opens the Raft tree of `db`, which sled keeps at `path`.
    pub fn open(db: &sled::Db, path: &Path) -> io::Result<Self> {
        let tree = db.open_tree(TREE).map_err(sled_err)?;
        let data_file = Arc::new(File::open(path.join("db"))?);
        Ok(LogStore { tree, data_file })
    }

    /// Marks a brand-new store and makes the mark durable.
    pub async fn mark_new(&self) -> io::Result<()> {
        self.put_meta(FORMAT_KEY, &FORMAT_VERSION)?;
        self.flush().await
    }

    /// The format version stored by [`mark_new`], or `None` for a store raftmha never wrote.
    pub fn format(&self) -> io::Result<Option<u64>> {
        self.get_meta(FORMAT_KEY)
    }

    /// Checks the log has no holes: entries run contiguously from `last_purged + 1`.
    pub fn verify(&self) -> io::Result<()> {
        let purged: Option<LogId> = self.get_meta("last_purged")?;
        let mut expected = purged.map(|p| p.index + 1);
        for item in self.tree.scan_prefix([LOG]) {
            let (key, value) = item.map_err(sled_err)?;
            let index = index_of(&key)?;
            let entry: Entry = decode(&value)?;
            if entry.index() != index {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("log entry under key {index} claims index {}", entry.index()),
                ));
            }
            if let Some(want) = expected
                && want != index
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("log has a hole: expected index {want}, found {index}"),
                ));
            }
            expected = Some(index + 1);
        }
        Ok(())
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, name: &str) -> io::Result<Option<T>> {
        match self.tree.get(meta_key(name)).map_err(sled_err)? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    fn put_meta<T: serde::Serialize>(&self, name: &str, value: &T) -> io::Result<()> {
        self.tree
            .insert(meta_key(name), encode(value)?)
            .map_err(sled_err)?;
        Ok(())
    }

    async fn flush(&self) -> io::Result<()> {
        self.tree.flush_async().await.map_err(sled_err)?;
        let file = self.data_file.clone();
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(io::Error::other)?
    }

    fn last_entry_log_id(&self) -> io::Result<Option<LogId>> {
        match self.tree.scan_prefix([LOG]).next_back() {
            Some(item) => {
                let (_, value) = item.map_err(sled_err)?;
                let entry: Entry = decode(&value)?;
                Ok(Some(entry.log_id()))
            }
            None => Ok(None),
        }
    }

    /// Removes every log key in `[from, to]` in one batch, together with `extra` meta writes.
    fn remove_range(
        &self,
        from: u64,
        to: Bound<u64>,
        extra: Option<(&str, Vec<u8>)>,
    ) -> io::Result<()> {
        let end = match to {
            Bound::Included(i) => Bound::Included(log_key(i).to_vec()),
            _ => Bound::Included(vec![LOG, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        };
        let mut batch = sled::Batch::default();
        for item in self
            .tree
            .range::<Vec<u8>, _>((Bound::Included(log_key(from).to_vec()), end))
        {
            let (key, _) = item.map_err(sled_err)?;
            batch.remove(key);
        }
        if let Some((name, value)) = extra {
            batch.insert(meta_key(name), value);
        }
        self.tree.apply_batch(batch).map_err(sled_err)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(log_key(*i).to_vec()),
            Bound::Excluded(i) => Bound::Excluded(log_key(*i).to_vec()),
            Bound::Unbounded => Bound::Included(vec![LOG]),
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(log_key(*i).to_vec()),
            Bound::Excluded(i) => Bound::Excluded(log_key(*i).to_vec()),
            Bound::Unbounded => Bound::Excluded(vec![LOG + 1]),
        };
        let mut out = Vec::new();
        for item in self.tree.range::<Vec<u8>, _>((start, end)) {
            let (_, value) = item.map_err(sled_err)?;
            out.push(decode(&value)?);
        }
        Ok(out)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.get_meta("vote")
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged: Option<LogId> = self.get_meta("last_purged")?;
        let last = self.last_entry_log_id()?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.put_meta("vote", vote)?;
        self.flush().await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not flushed: it only speeds up recovery; a stale value is re-learned from the leader.
        // That holds only because a restarted leader never resumes leadership from its old
        // vote (`enable_leader_restore: false` in `raft_config`): with a stale `committed` it
        // would serve ReadIndex reads missing acknowledged writes.
        self.put_meta("committed", &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.get_meta::<Option<LogId>>("committed")?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes = encode(&entry)?;
            APPENDED_BYTES.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
            batch.insert(&log_key(entry.index())[..], bytes);
        }
        self.tree.apply_batch(batch).map_err(sled_err)?;
        let flushed = self.flush().await;
        let result = match &flushed {
            Ok(()) => Ok(()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        callback.io_completed(result);
        flushed
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map(|l| l.index + 1).unwrap_or(0);
        self.remove_range(from, Bound::Unbounded, None)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let index = log_id.index;
        self.remove_range(
            0,
            Bound::Included(index),
            Some(("last_purged", encode(&log_id)?)),
        )
    }
}
