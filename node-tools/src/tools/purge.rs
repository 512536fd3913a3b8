//! `purge_relay_logs`: MHA's safe relay-log purge for replicas running `relay_log_purge=0`.
//!
//! Under the failover advisory lock, `relay_log_purge` is switched on, the relay log flushed so
//! the SQL thread moves to a new file and deletes the old ones, then switched off again. With
//! hard links (on by default; MHA's own flag never worked), each old relay file first gets a
//! second name in the work directory, so the server's delete is a cheap unlink; we then shrink
//! and remove the big files ourselves in steps, so no single unlink stalls the disk.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use super::ToolError;
use super::db::{DbTarget, column, query_string, slave_status};
use crate::binlog::relay::read_index;

/// The advisory lock MHA's failover holds; purging must not race a failover.
pub const FAILOVER_LOCK: &str = "MHA_Master_High_Availability_Failover";

#[derive(Debug, Clone)]
pub struct PurgeRequest {
    pub target: DbTarget,
    pub workdir: PathBuf,
    pub disable_relay_log_purge: bool,
    pub use_hardlink: bool,
    /// How long to wait for the SQL thread to delete the old files.
    pub wait: Duration,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PurgeReport {
    /// Nothing done because `relay_log_purge=1` already (MHA exits 0 then).
    pub skipped_purge_on: bool,
    pub purged: Vec<PathBuf>,
    pub bytes_freed: u64,
    pub hardlinked: usize,
}

/// Shrink step for big files before unlinking.
const SHRINK_STEP: u64 = 64 << 20;

pub async fn purge(req: &PurgeRequest) -> Result<PurgeReport, ToolError> {
    let db = &req.target;
    let mut conn = db.connect().await?;
    let status = slave_status(&mut conn, db).await?;
    if status.is_empty() {
        return Err(ToolError::Invalid(format!(
            "{} is not a replica",
            db.addr()
        )));
    }
    let mut report = PurgeReport::default();
    let purge_on = query_string(&mut conn, db, "SELECT @@global.relay_log_purge").await?;
    if purge_on.as_deref() == Some("1") {
        if !req.disable_relay_log_purge {
            report.skipped_purge_on = true;
            return Ok(report);
        }
        conn.query_drop("SET GLOBAL relay_log_purge = 0")
            .await
            .map_err(|e| db.db_err(e))?;
    }
    let index = query_string(&mut conn, db, "SELECT @@global.relay_log_index").await?;
    let datadir = query_string(&mut conn, db, "SELECT @@global.datadir")
        .await?
        .unwrap_or_default();
    let index = index.map(PathBuf::from).map(|p| {
        if p.is_absolute() {
            p
        } else {
            Path::new(&datadir).join(p)
        }
    });
    let Some(index) = index else {
        return Err(ToolError::Invalid("relay_log_index is not set".into()));
    };
    let current = column(&status, "Relay_Log_File").unwrap_or("").to_string();
    let files = read_index(&index).map_err(ToolError::io(format!("read {}", index.display())))?;
    let old: Vec<PathBuf> = files
        .iter()
        .take_while(|p| p.file_name().and_then(|n| n.to_str()) != Some(current.as_str()))
        .cloned()
        .collect();

    let link_dir = req
        .workdir
        .join(format!("raftmha_purge_relay_{}", std::process::id()));
    let mut links = Vec::new();
    if req.use_hardlink && !old.is_empty() {
        std::fs::create_dir_all(&link_dir)
            .map_err(ToolError::io(format!("create {}", link_dir.display())))?;
        for f in &old {
            let Some(name) = f.file_name() else { continue };
            let link = link_dir.join(name);
            let _ = std::fs::remove_file(&link);
            std::fs::hard_link(f, &link).map_err(ToolError::io(format!(
                "hard-link {} into {} (the work dir must be on the same filesystem)",
                f.display(),
                link_dir.display()
            )))?;
            links.push(link);
        }
        report.hardlinked = links.len();
    }

    let got: Option<i64> = conn
        .exec_first("SELECT GET_LOCK(?, 200)", (FAILOVER_LOCK,))
        .await
        .map_err(|e| db.db_err(e))?;
    if got != Some(1) {
        return Err(ToolError::Invalid(format!(
            "could not take the {FAILOVER_LOCK} lock (a failover may be running)"
        )));
    }
    let result = async {
        conn.query_drop("SET GLOBAL relay_log_purge = 1").await?;
        conn.query_drop("FLUSH NO_WRITE_TO_BINLOG RELAY LOGS")
            .await?;
        Ok::<(), mysql_async::Error>(())
    }
    .await;
    // Give the SQL thread time to move on and delete the old files.
    let deadline = Instant::now() + req.wait;
    while Instant::now() < deadline && old.iter().any(|f| f.exists()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reset = conn.query_drop("SET GLOBAL relay_log_purge = 0").await;
    let _ = conn.exec_drop("DO RELEASE_LOCK(?)", (FAILOVER_LOCK,)).await;
    result.map_err(|e| db.db_err(e))?;
    reset.map_err(|e| db.db_err(e))?;
    let _ = conn.disconnect().await;

    for f in &old {
        if !f.exists() {
            report.purged.push(f.clone());
        }
    }
    for link in links {
        report.bytes_freed += shrink_and_remove(&link)
            .map_err(ToolError::io(format!("remove {}", link.display())))?;
    }
    let _ = std::fs::remove_dir(&link_dir);
    Ok(report)
}

/// Truncates a file in steps, then unlinks it; returns the bytes freed. A file the server still
/// has a name for (it was not purged) is only unlinked: truncating it would destroy a live relay log.
fn shrink_and_remove(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    let meta = f.metadata()?;
    if meta.nlink() > 1 {
        drop(f);
        std::fs::remove_file(path)?;
        return Ok(0);
    }
    let size = meta.len();
    let mut len = size;
    while len > SHRINK_STEP {
        len -= SHRINK_STEP;
        f.set_len(len)?;
    }
    drop(f);
    std::fs::remove_file(path)?;
    Ok(size)
}
