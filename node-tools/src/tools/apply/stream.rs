//! Builds the stream that is actually applied: the diff files read as one continuous event
//! stream (a transaction may continue from one file into the next), keeping only complete
//! groups whose GTID the target has not executed, plus the FORMAT_DESCRIPTION events a reader
//! needs. A trailing half transaction, or one cut inside an event, is left out and reported.
//!
//! Groups are copied to the output as they are read and taken back (truncate) if they turn out
//! incomplete, so memory stays bounded whatever the transaction size.

use std::path::{Path, PathBuf};

use crate::binlog::WalkError;
use crate::binlog::concat::{OutFile, PendingRange};
use crate::binlog::events::MariaGtid;
use crate::binlog::group::{GroupId, GroupTracker, Role};
use crate::binlog::header::{MAGIC, types};
use crate::binlog::reader::Walker;

use super::gtid::GtidPos;

/// What went into the apply stream, and what was left out.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StreamReport {
    pub groups_applied: u64,
    pub groups_skipped: u64,
    pub first_applied: Option<String>,
    pub last_applied: Option<String>,
    /// Last GTID per domain of every complete group in the input (applied or skipped).
    pub complete: GtidPos,
    /// A group that never completed (trailing half transaction, or interrupted), left out.
    pub incomplete: Vec<String>,
    /// Group-internal events that arrived with no group open (the input started mid-group).
    pub orphan_events: u64,
    /// Sequence-number jumps inside a domain (events may be missing between the files).
    pub gaps: Vec<String>,
    pub bytes: u64,
}

struct OpenGroup {
    out_start: u64,
    skip: bool,
    gtid: Option<MariaGtid>,
    id: String,
    at: (PathBuf, u64),
}

/// Builds `out` from `files`, skipping groups covered by `executed`.
pub fn build(
    files: &[PathBuf],
    executed: &GtidPos,
    out_path: &Path,
    verify_crc: bool,
) -> Result<StreamReport, WalkError> {
    let io = |p: &Path, e: std::io::Error| WalkError::new(p, 0, e);
    let mut out = OutFile::create(out_path).map_err(|e| io(out_path, e))?;
    out.write_bytes(&MAGIC).map_err(|e| io(out_path, e))?;
    let mut report = StreamReport::default();
    let mut tracker = GroupTracker::new();
    let mut open: Option<OpenGroup> = None;
    let mut written_checksum: Option<bool> = None;
    let mut last_seq: std::collections::BTreeMap<u32, u64> = Default::default();

    for path in files {
        let mut w = Walker::open(path)?.verify_crc(verify_crc);
        let src = w.file().try_clone().map_err(|e| io(path, e))?;
        let mut run = PendingRange::default();
        loop {
            let ev = match w.next_event() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) if e.is_truncation() => {
                    report
                        .incomplete
                        .push(format!("{e} (partial event left out)"));
                    break;
                }
                Err(e) => return Err(e),
            };
            let t = ev.header.type_code;
            if t == types::FORMAT_DESCRIPTION {
                if written_checksum != Some(ev.checksum_after) {
                    written_checksum = Some(ev.checksum_after);
                    run.push(&mut out, &src, &ev).map_err(|e| io(out_path, e))?;
                }
                continue;
            }
            let role = tracker.observe(&ev);
            match role {
                Role::Outside => {}
                Role::Orphan => report.orphan_events += 1,
                Role::Begin | Role::Single => {
                    run.flush(&mut out, &src).map_err(|e| io(out_path, e))?;
                    if let Some(g) = open.take() {
                        out.truncate_to(g.out_start).map_err(|e| io(out_path, e))?;
                        report.incomplete.push(format!(
                            "group {} at {}:{} has no commit before the next group; left out",
                            g.id,
                            g.at.0.display(),
                            g.at.1
                        ));
                    }
                    let gtid = match tracker.current() {
                        Some(GroupId::Maria(g)) => Some(*g),
                        _ => None,
                    };
                    let id = tracker
                        .current()
                        .map_or_else(|| "-".to_string(), ToString::to_string);
                    let skip = gtid.is_some_and(|g| executed.covers(&g));
                    if let Some(g) = gtid {
                        if let Some(prev) = last_seq.get(&g.domain)
                            && g.seq > prev + 1
                        {
                            report.gaps.push(format!(
                                "domain {}: {} follows seq {prev} at {}:{}",
                                g.domain,
                                g,
                                path.display(),
                                ev.offset
                            ));
                        }
                        last_seq.insert(g.domain, g.seq);
                    }
                    if !skip {
                        run.push(&mut out, &src, &ev).map_err(|e| io(out_path, e))?;
                    }
                    open = Some(OpenGroup {
                        out_start: out.position(),
                        skip,
                        gtid,
                        id,
                        at: (path.clone(), ev.offset),
                    });
                    // out_start must point before this event: it was pushed into `run`
                    // after the flush, so the output position is still the group start.
                    if role == Role::Single
                        && let Some(g) = open.take()
                    {
                        complete(&mut report, g);
                    }
                }
                Role::Inside | Role::End => {
                    if let Some(g) = &open
                        && !g.skip
                    {
                        run.push(&mut out, &src, &ev).map_err(|e| io(out_path, e))?;
                    }
                    if role == Role::End
                        && let Some(g) = open.take()
                    {
                        complete(&mut report, g);
                    }
                }
            }
        }
        run.flush(&mut out, &src).map_err(|e| io(out_path, e))?;
    }
    if let Some(g) = open.take() {
        out.truncate_to(g.out_start).map_err(|e| io(out_path, e))?;
        report.incomplete.push(format!(
            "group {} starting at {}:{} is cut (the input ends inside the transaction); left out",
            g.id,
            g.at.0.display(),
            g.at.1
        ));
    }
    report.bytes = out.position();
    out.finish().map_err(|e| io(out_path, e))?;
    Ok(report)
}

fn complete(report: &mut StreamReport, g: OpenGroup) {
    if let Some(gtid) = g.gtid {
        report.complete.raise(gtid);
    }
    if g.skip {
        report.groups_skipped += 1;
    } else {
        report.groups_applied += 1;
        if report.first_applied.is_none() {
            report.first_applied = Some(g.id.clone());
        }
        report.last_applied = Some(g.id);
    }
}
