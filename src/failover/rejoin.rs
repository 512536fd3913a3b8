//! `raftmha rejoin`: a failed or switched-out old master comes back as a replica of the
//! current master, unless it holds errant transactions.
//!
//! The journal knows up to where the cluster took the host's binlog (its *divergence point*):
//! after a switchover, the old master's final position; after a failover, the end of its saved
//! binlog tail, or, when none was saved, the position the most advanced replica had received.
//! Every transaction event in the host's binlog after that point never reached the cluster:
//! it is errant (listed from `SHOW BINLOG EVENTS`), and the rejoin is refused unless
//! `--force`. The host is made read_only (sessions killed) before it starts replicating:
//! by GTID from the divergence point (`BINLOG_GTID_POS`), or, in file/position mode, at the
//! new master's position the operation captured, which requires that no later promotion
//! happened.
//!
//! This file holds the decisions, as plain functions of the journal and of what was
//! observed; [`super::rejoin_run`] runs them over [`super::rejoin_effects::RejoinEffects`].
use serde::{Deserialize, Serialize};

use super::effects::StepOutput;
use super::plan::{Action, FailoverPlan};
use super::runner::result_of;
use super::switchover::FollowBy;
use crate::db::BinlogCoord;
use crate::db::binlogs::BinaryLog;
pub use crate::db::binlogs::BinlogEvent;
use crate::state::{BinlogTailChunk, ClusterRecord, FailoverOutcome, Operation};

/// Up to where the cluster has the host's binlog, and where its replacement started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// The operation that replaced the host.
    pub operation_id: u64,
    /// The host's own binlog position up to which the cluster has its events.
    pub own: BinlogCoord,
    /// The server that replaced it and its binlog position right after (file/position mode).
    pub successor: String,
    pub successor_pos: Option<BinlogCoord>,
    /// The cluster epoch right after the replacement.
    pub epoch_after: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejoinOutcome {
    Refused,
    Rejoined,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejoinReport {
    pub kind: String,
    pub outcome: RejoinOutcome,
    pub server: String,
    pub master: String,
    pub divergence: Option<Divergence>,
    /// Transaction events after the divergence point (first 200).
    pub errant: Vec<BinlogEvent>,
    pub forced: bool,
    pub follows_by: Option<FollowBy>,
    pub reasons: Vec<String>,
}

impl RejoinReport {
    pub fn render_text(&self) -> String {
        let mut out = match self.outcome {
            RejoinOutcome::Refused => {
                format!("rejoin of {} refused; nothing was changed:\n", self.server)
            }
            RejoinOutcome::Rejoined => format!(
                "{} replicates from {} (read_only){}\n",
                self.server,
                self.master,
                if self.forced && !self.errant.is_empty() {
                    "; its errant transactions were kept (--force): it diverges"
                } else {
                    ""
                }
            ),
        };
        for r in &self.reasons {
            out.push_str(&format!("  - {r}\n"));
        }
        if let Some(d) = &self.divergence {
            out.push_str(&format!(
                "cluster has its binlog up to {} (operation {})\n",
                d.own, d.operation_id
            ));
        }
        if !self.errant.is_empty() {
            out.push_str(&format!(
                "{} errant event(s) the cluster never received:\n",
                self.errant.len()
            ));
            for e in &self.errant {
                out.push_str(&format!(
                    "  {}:{} {} {}\n",
                    e.file, e.pos, e.event_type, e.info
                ));
            }
        }
        out
    }
}

/// Events that only describe the file (headers, rotation, checkpoints) are never errant.
pub fn errant_events(events: &[BinlogEvent]) -> Vec<BinlogEvent> {
    const BOOKKEEPING: &[&str] = &[
        "Format_desc",
        "Gtid_list",
        "Binlog_checkpoint",
        "Rotate",
        "Stop",
        "Start_encryption",
        "Previous_gtids",
        "Heartbeat",
    ];
    events
        .iter()
        .filter(|e| {
            !BOOKKEEPING
                .iter()
                .any(|b| e.event_type.eq_ignore_ascii_case(b))
        })
        .cloned()
        .collect()
}

/// Where the last event of a saved binlog tail ends in the master's own binlog: headers are
/// walked (`log_pos` is the end offset of each event in its file), rotations switch the file.
pub fn tail_end(chunks: &[BinlogTailChunk], from: &BinlogCoord) -> Option<BinlogCoord> {
    let mut sorted: Vec<&BinlogTailChunk> = chunks.iter().collect();
    sorted.sort_by_key(|c| c.seq);
    let data: Vec<u8> = sorted.iter().flat_map(|c| c.data.iter().copied()).collect();
    let mut at = if data.starts_with(b"\xfebin") { 4 } else { 0 };
    let mut file = from.file.clone();
    let mut end = None;
    while at + 19 <= data.len() {
        let u32_at = |o: usize| -> u64 {
            u64::from(u32::from_le_bytes([
                data[o],
                data[o + 1],
                data[o + 2],
                data[o + 3],
            ]))
        };
        let kind = data[at + 4];
        let size = usize::try_from(u32_at(at + 9)).ok()?;
        let log_pos = u32_at(at + 13);
        if size < 19 || at + size > data.len() {
            break;
        }
        const ROTATE: u8 = 4;
        const FORMAT_DESCRIPTION: u8 = 15;
        if kind == ROTATE {
            if let Some(name) = rotate_name(&data[at + 19 + 8..at + size]) {
                file = name;
            }
        } else if kind != FORMAT_DESCRIPTION && log_pos > 0 {
            end = Some(BinlogCoord::new(file.clone(), log_pos));
        }
        at += size;
    }
    end
}

/// A rotate event's file name, with or without a trailing CRC32.
fn rotate_name(body: &[u8]) -> Option<String> {
    let valid = |b: &[u8]| {
        !b.is_empty()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    };
    let numbered = |b: &[u8]| {
        b.rsplit(|c| *c == b'.')
            .next()
            .is_some_and(|n| n.len() == 6 && n.iter().all(u8::is_ascii_digit))
    };
    let without_crc = body.len().checked_sub(4).map(|n| &body[..n]);
    [without_crc, Some(body)]
        .into_iter()
        .flatten()
        .find(|b| valid(b) && numbered(b))
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

/// The divergence point of `server` from the last successful operation that replaced it.
pub fn divergence(c: &ClusterRecord, server: &str) -> Result<Divergence, String> {
    let f = c
        .failovers
        .iter()
        .rev()
        .find(|f| {
            f.dead_master == server
                && matches!(f.finished, Some((FailoverOutcome::Succeeded, _)))
                && !matches!(f.operation, Some(Operation::Rejoin { .. }))
        })
        .ok_or_else(|| {
            format!("no successful failover or switchover in the journal replaced {server}")
        })?;
    let epoch_after = f.epoch + 1;
    if let Some(Operation::Switchover { new_master, .. }) = &f.operation {
        #[derive(Deserialize)]
        struct Positions {
            orig: BinlogCoord,
            new: Option<BinlogCoord>,
        }
        let p: Positions = result_of(f, "sw.catch-up")
            .and_then(|j| serde_json::from_str(&j).ok())
            .ok_or("the switchover journal lacks the captured positions")?;
        return Ok(Divergence {
            operation_id: f.id,
            own: p.orig,
            successor: new_master.clone(),
            successor_pos: p.new,
            epoch_after,
        });
    }
    let plan: FailoverPlan = result_of(f, "plan")
        .and_then(|j| serde_json::from_str(&j).ok())
        .ok_or("the failover journal lacks its plan")?;
    let base_read = plan
        .recoveries
        .iter()
        .find(|r| r.server == plan.base)
        .map(|r| r.read.clone())
        .ok_or("the plan has no recovery for its base replica")?;
    let own = match &plan.save_tail_from {
        Some(from) if !f.tail.is_empty() => tail_end(&f.tail, from).unwrap_or(base_read),
        _ => base_read,
    };
    let successor_pos = plan.steps.iter().find_map(|s| match &s.action {
        Action::CaptureNewMasterPosition { .. } => {
            let out: Option<StepOutput> =
                serde_json::from_str(&result_of(f, &format!("step.{}", s.id))?).ok()?;
            match out {
                Some(StepOutput::Position(p)) => Some(p),
                _ => None,
            }
        }
        _ => None,
    });
    Ok(Divergence {
        operation_id: f.id,
        own,
        successor: plan.new_master.name.clone(),
        successor_pos,
        epoch_after,
    })
}

/// The binlog files to read for errant events (oldest first) and the offset to start each
/// at, or why errant transactions cannot be ruled out.
pub fn files_to_read(logs: &[BinaryLog], own: &BinlogCoord) -> Result<Vec<(String, u64)>, String> {
    let Some(at) = logs.iter().find(|l| l.name == own.file) else {
        return Err(format!(
            "its binlog {} is gone (purged?): errant transactions cannot be ruled out",
            own.file
        ));
    };
    if at.size < own.pos {
        return Err(format!(
            "its binlog {} ends at {}, before {own}: it lost events the cluster has",
            own.file, at.size
        ));
    }
    let first = BinlogCoord::new(own.file.clone(), 0);
    Ok(logs
        .iter()
        .filter(|l| BinlogCoord::new(l.name.clone(), 0) >= first)
        .map(|l| {
            let from = if l.name == own.file { own.pos } else { 4 };
            (l.name.clone(), from)
        })
        .collect())
}

/// Why the host cannot follow `master` by `by` from divergence `d` (cluster at `epoch`),
/// if it cannot.
pub fn follow_refusal(
    d: &Divergence,
    by: FollowBy,
    master_is_mariadb: bool,
    host: &str,
    master: &str,
    epoch: u64,
) -> Option<String> {
    if !master_is_mariadb && by == FollowBy::Gtid {
        return Some("GTID rejoin is implemented for MariaDB only".into());
    }
    if by == FollowBy::Gtid {
        return None;
    }
    if d.successor != master || epoch != d.epoch_after {
        return Some(format!(
            "in file/position mode a rejoin starts at the position operation {} captured on \
             {}, but the master changed since (now {master}, epoch {epoch}): repoint {host} by hand",
            d.operation_id, d.successor
        ));
    }
    if d.successor_pos.is_none() {
        return Some(format!(
            "operation {} captured no position on {}",
            d.operation_id, d.successor
        ));
    }
    None
}

/// What the check decided, journaled as the result of `rejoin.check` so a successor leader
/// resumes from it instead of checking again a host that may already replicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checked {
    pub divergence: Divergence,
    pub follows_by: FollowBy,
    pub errant: Vec<BinlogEvent>,
}

/// The refusals of a rejoin given what the check found (`Err`: why it could not check).
pub fn refusals(checked: &Result<Checked, String>, force: bool, host: &str) -> Vec<String> {
    match checked {
        Err(e) => vec![e.clone()],
        Ok(c) if !c.errant.is_empty() && !force => vec![format!(
            "{host} has {} event(s) after the point the cluster took over; rejoining would \
             keep them on {host} only (rerun with --force to accept that, or rebuild {host})",
            c.errant.len()
        )],
        Ok(_) => Vec::new(),
    }
}

#[cfg(test)]
#[path = "rejoin_tests.rs"]
mod tests;
