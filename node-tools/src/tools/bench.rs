//! `raftmha-node bench`: throughput and peak memory of the engine on real files.
//!
//! Each item runs in a child process so its peak RSS (VmHWM) is its own. Items: `scan` (full
//! walk with CRC32 verification), `search` (a position search that must scan every file),
//! `generate` (diff generation from the first event to the end), `save` (a binlog tail), and
//! `cp`/`cat` of the same files for scale.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::binlog::concat::OutFile;
use crate::binlog::relay::{MasterPosTracker, full_scan};
use crate::binlog::{WalkError, Walker};

use super::ToolError;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BenchResult {
    pub item: String,
    pub bytes: u64,
    pub events: u64,
    pub seconds: f64,
    pub mb_per_s: f64,
    pub events_per_s: f64,
    pub peak_rss_kib: u64,
    pub note: String,
}

impl BenchResult {
    fn new(item: &str, bytes: u64, events: u64, seconds: f64, note: String) -> Self {
        let s = seconds.max(1e-9);
        BenchResult {
            item: item.into(),
            bytes,
            events,
            seconds,
            mb_per_s: bytes as f64 / s / 1e6,
            events_per_s: events as f64 / s,
            peak_rss_kib: peak_rss_kib(),
            note,
        }
    }
}

/// VmHWM of this process, in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn total_size(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

/// Full walk with CRC verification.
pub fn scan(files: &[PathBuf]) -> Result<BenchResult, WalkError> {
    let t = Instant::now();
    let mut events = 0;
    for f in files {
        let mut w = Walker::open(f)?;
        while w.next_event()?.is_some() {}
        events += w.events_read();
    }
    let secs = t.elapsed().as_secs_f64();
    Ok(BenchResult::new(
        "scan+crc",
        total_size(files),
        events,
        secs,
        String::new(),
    ))
}

/// A search for the coordinate of the last master event: the full scan walks everything.
pub fn search(files: &[PathBuf]) -> Result<BenchResult, ToolError> {
    // Unmeasured pre-pass: learn the last master coordinate.
    let mut tracker = MasterPosTracker::new();
    let mut last = None;
    let mut events = 0;
    for f in files {
        let mut w = Walker::open(f)?.verify_crc(false);
        tracker.new_file();
        while let Some(ev) = w.next_event()? {
            if let Some(c) = tracker.observe(&ev).into_iter().flatten().last() {
                last = Some(c);
            }
        }
        events += w.events_read();
    }
    let target = last.ok_or_else(|| ToolError::Invalid("no master events in the files".into()))?;
    let t = Instant::now();
    let found = full_scan(files, &target)?;
    let secs = t.elapsed().as_secs_f64();
    Ok(BenchResult::new(
        "search(full scan)",
        total_size(files),
        events,
        secs,
        format!("target {target} -> {found:?}"),
    ))
}

/// Concatenation from the first event of `files[0]` to the end, CRC verified.
pub fn generate(
    item: &str,
    files: &[PathBuf],
    out: &Path,
    verify: bool,
) -> Result<BenchResult, ToolError> {
    let t = Instant::now();
    let mut o = OutFile::create(out).map_err(ToolError::io(format!("create {}", out.display())))?;
    let r = crate::binlog::concat::concat_from(files, 4, &mut o, verify)?;
    drop(o);
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(out);
    Ok(BenchResult::new(
        item,
        r.bytes_written,
        r.events_copied,
        secs,
        format!("crc verified: {verify}"),
    ))
}

/// `cp` (or `cat > /dev/null`) of the same files, for scale.
pub fn external(item: &str, files: &[PathBuf], out_dir: &Path) -> Result<BenchResult, ToolError> {
    let t = Instant::now();
    for f in files {
        let status = if item == "cat" {
            std::process::Command::new("cat")
                .arg(f)
                .stdout(std::process::Stdio::null())
                .status()
        } else {
            std::process::Command::new("cp")
                .arg(f)
                .arg(out_dir.join("cp.tmp"))
                .status()
        }
        .map_err(ToolError::io(item.to_string()))?;
        if !status.success() {
            return Err(ToolError::Invalid(format!(
                "{item} failed on {}",
                f.display()
            )));
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(out_dir.join("cp.tmp"));
    let mut r = BenchResult::new(item, total_size(files), 0, secs, "external command".into());
    r.peak_rss_kib = 0;
    Ok(r)
}
