//! Relay logs: which files, which master coordinates each event carries, and where in the relay
//! logs a master coordinate `(file, pos)` ends.
//!
//! Relay logs are not byte copies of the master's binlog: the replica adds its own FDE, ROTATEs
//! and STOP events (its own server_id, `end_log_pos` relative to the relay file), artificial
//! fake ROTATEs and master FDE copies (`end_log_pos = 0`), artificial GTID_LISTs (position jumps),
//! stores compressed MariaDB events decompressed, and leaves out ANNOTATE_ROWS without
//! `log_slave_updates`. So relay offsets and master positions only line up by luck.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::{ErrorKind, WalkError};
use super::events::Rotate;
use super::header::{HEADER_LEN, Header, flags, types};
use super::reader::{Event, Walker};

/// A position in the master's binlog.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MasterCoord {
    pub file: String,
    pub pos: u64,
}

impl std::fmt::Display for MasterCoord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// The numeric suffix of `base.NNNNNN`.
pub fn file_number(name: &str) -> Option<u64> {
    let (_, n) = name.rsplit_once('.')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// Files `dir/base.NNNNNN`, sorted by number (the index file may be stale or missing).
pub fn list_numbered(dir: &Path, base: &str) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((stem, _)) = name.rsplit_once('.') else {
            continue;
        };
        if stem == base
            && let Some(n) = file_number(name)
        {
            found.push((n, entry.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// The relay (or binlog) files named in an index file, resolved relative to its directory.
pub fn read_index(index: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = index.parent().unwrap_or(Path::new("."));
    let text = fs::read_to_string(index)?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let p = Path::new(l);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            }
        })
        .collect())
}

/// The relay log directory and base name from a MariaDB/MySQL `relay-log.info` file
/// (first line: line count, second: the current relay log).
pub fn relay_from_info(info: &Path) -> io::Result<(PathBuf, String)> {
    let text = fs::read_to_string(info)?;
    let mut lines = text.lines().map(str::trim);
    let mut first = lines.next().unwrap_or("");
    if first.bytes().all(|b| b.is_ascii_digit()) {
        first = lines.next().unwrap_or("");
    }
    let current = Path::new(first);
    let invalid = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "no relay log name in relay-log.info",
        )
    };
    let name = current
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(invalid)?;
    let (base, _) = name.rsplit_once('.').ok_or_else(invalid)?;
    let dir = match current.parent() {
        Some(p) if p.is_absolute() => p.to_path_buf(),
        Some(p) => info.parent().unwrap_or(Path::new(".")).join(p),
        None => info.parent().unwrap_or(Path::new(".")).to_path_buf(),
    };
    Ok((dir, base.to_string()))
}

/// Tracks the master coordinate carried by a relay-log event stream.
#[derive(Debug, Default, Clone)]
pub struct MasterPosTracker {
    /// The replica's own server id (from the relay FDE at the start of each file).
    pub self_id: Option<u32>,
    pub file: Option<String>,
    pub pos: Option<u64>,
    first_in_file: bool,
}

impl MasterPosTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Call at the start of each relay file.
    pub fn new_file(&mut self) {
        self.first_in_file = true;
    }

    /// The coordinate after the last event observed, if known.
    pub fn coord(&self) -> Option<MasterCoord> {
        Some(MasterCoord {
            file: self.file.clone()?,
            pos: self.pos?,
        })
    }

    /// Whether the event was written by the replica itself.
    pub fn is_own(&self, h: &Header) -> bool {
        h.flags & flags::RELAY_LOG != 0 || Some(h.server_id) == self.self_id
    }

    /// Updates the coordinate. Returns the coordinates this event *passes through*: a real
    /// master ROTATE ends one file and starts another, so it yields two.
    pub fn observe(&mut self, ev: &Event<'_>) -> [Option<MasterCoord>; 2] {
        let old_file = self.file.clone();
        match self.step(ev) {
            Step::None => [None, None],
            Step::Pos => [self.coord(), None],
            Step::Rotate { old_end } => {
                let before = old_end.and_then(|pos| {
                    Some(MasterCoord {
                        file: old_file?,
                        pos,
                    })
                });
                [before, self.coord()]
            }
        }
    }

    /// Like [`observe`](Self::observe), but only answers whether the event passes through
    /// `target` — without allocating, for scans over millions of events.
    pub fn hits(&mut self, ev: &Event<'_>, target: &MasterCoord) -> bool {
        let old_file_is_target = self.file.as_deref() == Some(target.file.as_str());
        let now =
            |t: &Self| t.pos == Some(target.pos) && t.file.as_deref() == Some(target.file.as_str());
        match self.step(ev) {
            Step::None => false,
            Step::Pos => now(self),
            Step::Rotate { old_end } => {
                (old_file_is_target && old_end == Some(target.pos)) || now(self)
            }
        }
    }

    fn step(&mut self, ev: &Event<'_>) -> Step {
        let h = &ev.header;
        if self.first_in_file && h.type_code == types::FORMAT_DESCRIPTION {
            self.first_in_file = false;
            self.self_id = Some(h.server_id);
            return Step::None;
        }
        self.first_in_file = false;
        if self.is_own(h) {
            return Step::None;
        }
        match h.type_code {
            types::ROTATE => {
                let Some(r) = Rotate::parse(ev.body()) else {
                    return Step::None;
                };
                // A real rotate (log_pos > 0, not artificial) ends the current master file.
                let old_end = (h.log_pos > 0 && !h.is_artificial()).then_some(u64::from(h.log_pos));
                self.file = Some(r.next_file);
                self.pos = Some(r.position);
                Step::Rotate { old_end }
            }
            _ if h.log_pos > 0 => {
                self.pos = Some(u64::from(h.log_pos));
                Step::Pos
            }
            _ => Step::None,
        }
    }
}

enum Step {
    None,
    Pos,
    Rotate { old_end: Option<u64> },
}

/// Where a diff for a lagging replica starts in the latest replica's relay logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Found {
    /// Start copying at `offset` of `files[index]`.
    At {
        index: usize,
        path: PathBuf,
        offset: u64,
    },
    /// The target already has every event in these relay logs.
    TargetHasAll,
}

/// How the position was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Method {
    Fast,
    FullScan { fast_rejected: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FindResult {
    pub found: Found,
    pub method: Method,
}

#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("no relay log files to search")]
    NoRelayLogs,
    #[error("master position {0} not found in the relay logs (they may have been purged)")]
    NotFound(MasterCoord),
    #[error(transparent)]
    Walk(#[from] WalkError),
}

/// Finds where the events after master coordinate `target` start in `files` (oldest first).
/// With `latest` (the coordinate the latest replica has read) and the same master file, the
/// MHA size-offset shortcut is tried first and trusted only after verification.
pub fn find_position(
    files: &[PathBuf],
    target: &MasterCoord,
    latest: Option<&MasterCoord>,
) -> Result<FindResult, FindError> {
    if files.is_empty() {
        return Err(FindError::NoRelayLogs);
    }
    let mut fast_rejected = None;
    if let Some(latest) = latest {
        match fast_find(files, target, latest) {
            Ok(found) => {
                return Ok(FindResult {
                    found,
                    method: Method::Fast,
                });
            }
            Err(why) => fast_rejected = Some(why),
        }
    }
    let found = full_scan(files, target)?;
    Ok(FindResult {
        found,
        method: Method::FullScan { fast_rejected },
    })
}

/// Forward scan of every relay file, headers only.
pub fn full_scan(files: &[PathBuf], target: &MasterCoord) -> Result<Found, FindError> {
    let mut tracker = MasterPosTracker::new();
    for (index, path) in files.iter().enumerate() {
        let mut w = Walker::open(path)?.verify_crc(false);
        tracker.new_file();
        let mut matched = None;
        loop {
            let ev = match w.next_event() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                // A partial event at the very end of the newest file: the IO thread was writing.
                Err(e) if e.is_truncation() && index + 1 == files.len() => break,
                Err(e) => return Err(e.into()),
            };
            if tracker.hits(&ev, target) {
                matched = Some(ev.end());
                break;
            }
        }
        if let Some(offset) = matched {
            let found = normalize(files, index, offset, w.len());
            if let Found::At { index, offset, .. } = &found
                && !data_follows(files, *index, *offset, &tracker)?
            {
                // Only the replica's own STOP/ROTATE or bookkeeping events remain.
                return Ok(Found::TargetHasAll);
            }
            return Ok(found);
        }
    }
    Err(FindError::NotFound(target.clone()))
}

/// Whether any master event that carries data follows `files[index]:offset` (stops at the first).
fn data_follows(
    files: &[PathBuf],
    index: usize,
    offset: u64,
    tracker: &MasterPosTracker,
) -> Result<bool, FindError> {
    let mut tracker = tracker.clone();
    for (i, path) in files.iter().enumerate().skip(index) {
        let mut w = Walker::open(path)?.verify_crc(false);
        tracker.new_file();
        if i == index {
            w.skip_to(offset)?;
        }
        loop {
            let ev = match w.next_event() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) if e.is_truncation() => break,
                Err(e) => return Err(e.into()),
            };
            let first = i > index && ev.offset == 4;
            if first && ev.header.type_code == types::FORMAT_DESCRIPTION {
                tracker.observe(&ev);
                continue;
            }
            if !tracker.is_own(&ev.header) && !super::concat::is_bookkeeping(ev.header.type_code) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn normalize(files: &[PathBuf], index: usize, offset: u64, len: u64) -> Found {
    if offset < len {
        Found::At {
            index,
            path: files[index].clone(),
            offset,
        }
    } else if index + 1 < files.len() {
        Found::At {
            index: index + 1,
            path: files[index + 1].clone(),
            offset: 4,
        }
    } else {
        Found::TargetHasAll
    }
}

/// MHA's shortcut: `offset = size(last relay) − (latest_pos − target_pos)`, accepted only if the
/// event that ends there is a master event with `end_log_pos == target_pos` (checked by a short
/// backward search with CRC), and the events from there to EOF form a valid, gap-free chain that
/// ends at `latest_pos`. Returns why it was rejected otherwise.
fn fast_find(
    files: &[PathBuf],
    target: &MasterCoord,
    latest: &MasterCoord,
) -> Result<Found, String> {
    if target.file != latest.file {
        return Err("target and latest read different master files".into());
    }
    let dist = latest
        .pos
        .checked_sub(target.pos)
        .ok_or("target is ahead of latest")?;
    let index = files.len() - 1;
    let path = &files[index];
    let mut w = Walker::open(path).map_err(|e| e.to_string())?;
    let size = w.len();
    let cand = size
        .checked_sub(dist)
        .filter(|c| *c > 4)
        .ok_or("distance exceeds the last relay file")?;
    // Learn the relay's own id and the format in force from the header block.
    let mut tracker = MasterPosTracker::new();
    tracker.new_file();
    let mut fde = None;
    while w.position() < cand {
        let Some(ev) = w.next_event().map_err(|e| e.to_string())? else {
            break;
        };
        let t = ev.header.type_code;
        tracker.observe(&ev);
        if !matches!(
            t,
            types::FORMAT_DESCRIPTION | types::ROTATE | types::PREVIOUS_GTIDS
        ) {
            break;
        }
        fde = w.format().cloned();
    }
    let fde = fde.ok_or("no FORMAT_DESCRIPTION at the start of the last relay file")?;
    if tracker.file.as_deref().is_some_and(|f| f != target.file) {
        return Err(format!(
            "the last relay file holds master file {:?}",
            tracker.file
        ));
    }
    check_previous_event(w.file(), cand, target.pos, tracker.self_id, fde.checksum)
        .map_err(|e| format!("at offset {cand}: {e}"))?;
    if cand == size {
        return Ok(Found::TargetHasAll);
    }
    // Walk the tail: it must be whole, CRC-valid, and reach exactly `latest`.
    w.start_at(cand, fde);
    let mut last_master = target.pos;
    loop {
        let ev = match w.next_event() {
            Ok(Some(ev)) => ev,
            Ok(None) => break,
            Err(e) => return Err(e.to_string()),
        };
        let h = ev.header;
        if tracker.is_own(&h) {
            continue;
        }
        if matches!(h.type_code, types::ROTATE | types::FORMAT_DESCRIPTION) {
            return Err("a master ROTATE or FDE lies between target and latest".into());
        }
        if h.log_pos > 0 {
            if u64::from(h.log_pos) <= last_master {
                return Err(format!(
                    "end_log_pos goes backwards at offset {}",
                    ev.offset
                ));
            }
            last_master = u64::from(h.log_pos);
        }
    }
    if last_master != latest.pos {
        return Err(format!(
            "the tail ends at master position {last_master}, not {}",
            latest.pos
        ));
    }
    Ok(Found::At {
        index,
        path: path.clone(),
        offset: cand,
    })
}

/// Looks back from `end` for the event that ends exactly there (within 64 KiB): it must be a
/// master event whose `end_log_pos` is `target_pos`, with a valid CRC when checksums are on.
fn check_previous_event(
    file: &fs::File,
    end: u64,
    target_pos: u64,
    self_id: Option<u32>,
    checksum: bool,
) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    const LOOKBACK: u64 = 64 * 1024;
    let from = end.saturating_sub(LOOKBACK).max(4);
    let mut buf = vec![0u8; (end - from) as usize];
    file.read_exact_at(&mut buf, from)
        .map_err(|e| e.to_string())?;
    let mut p = buf.len().saturating_sub(HEADER_LEN);
    loop {
        if let Some(h) = Header::parse(&buf[p..]) {
            let len = buf.len() - p;
            if h.event_size as usize == len
                && u64::from(h.log_pos) == target_pos
                && Some(h.server_id) != self_id
                && h.flags & flags::RELAY_LOG == 0
            {
                let ok = !checksum || {
                    let ev = &buf[p..];
                    let (data, crc) = ev.split_at(len - 4);
                    super::fde::event_crc(data, &h).to_le_bytes() == crc
                };
                if ok {
                    return Ok(());
                }
            }
        }
        if p == 0 {
            break;
        }
        p -= 1;
    }
    Err(format!(
        "no master event ending here with end_log_pos {target_pos}"
    ))
}

/// Error helper for callers that need an "invalid" walk error.
pub fn invalid(path: &Path, offset: u64, msg: impl Into<String>) -> WalkError {
    WalkError::new(path, offset, ErrorKind::Invalid(msg.into()))
}
