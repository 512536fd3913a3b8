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
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::time::timeout;

use super::effects::StepOutput;
use super::env::Env;
use super::input::server_ref;
use super::plan::{Action, FailoverPlan};
use super::runner::result_of;
use super::runner::{Journal, Runner};
use super::switchover::FollowBy;
use crate::db::sql::quote as quote_sql;
use crate::db::status::RowMap;
use crate::db::{BinlogCoord, DbServer, GtidSet, MariaGtidPos, Statement};
use crate::state::{BinlogTailChunk, ClusterRecord, FailoverOutcome, Operation, StepPhase};

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

/// One row of `SHOW BINLOG EVENTS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogEvent {
    pub file: String,
    pub pos: u64,
    pub event_type: String,
    pub info: String,
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

fn event(row: &RowMap) -> BinlogEvent {
    BinlogEvent {
        file: row.get(&["log_name"]).unwrap_or("").to_string(),
        pos: row.get(&["pos"]).and_then(|p| p.parse().ok()).unwrap_or(0),
        event_type: row.get(&["event_type"]).unwrap_or("").to_string(),
        info: row.get(&["info"]).unwrap_or("").chars().take(120).collect(),
    }
}

/// The host's binlog events after `own` (at most 200), or why they cannot be read.
async fn events_after(
    s: &crate::db::MysqlServer,
    own: &BinlogCoord,
) -> anyhow::Result<Vec<BinlogEvent>> {
    let logs = s.query(&Statement::new("SHOW BINARY LOGS")).await?;
    let files: Vec<(String, u64)> = logs
        .iter()
        .map(|r| {
            (
                r.get(&["log_name"]).unwrap_or("").to_string(),
                r.get(&["file_size"])
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )
        })
        .collect();
    let Some((_, size)) = files.iter().find(|(f, _)| *f == own.file) else {
        bail!(
            "its binlog {} is gone (purged?): errant transactions cannot be ruled out",
            own.file
        );
    };
    if *size < own.pos {
        bail!(
            "its binlog {} ends at {size}, before {own}: it lost events the cluster has",
            own.file
        );
    }
    let mut out = Vec::new();
    for (file, _) in files
        .iter()
        .filter(|(f, _)| BinlogCoord::new(f.clone(), 0) >= BinlogCoord::new(own.file.clone(), 0))
    {
        let from = if *file == own.file { own.pos } else { 4 };
        let rows = s
            .query(&Statement::new(format!(
                "SHOW BINLOG EVENTS IN {} FROM {from} LIMIT 1000",
                quote_sql(file)
            )))
            .await?;
        out.extend(errant_events(&rows.iter().map(event).collect::<Vec<_>>()));
        if out.len() >= 200 {
            out.truncate(200);
            break;
        }
    }
    Ok(out)
}

/// Runs the rejoin `runner` owns (the record names the host in `dead_master`).
pub async fn run_rejoin<J: Journal>(
    runner: &Runner<'_, J>,
    env: &Env,
) -> anyhow::Result<RejoinReport> {
    let run = runner;
    let id = runner.id;
    let (c, f) = run.record().await?;
    let Some(Operation::Rejoin { force }) = f.operation else {
        bail!("operation {id} is not a rejoin");
    };
    let host = f.dead_master.clone();
    let master = c.master.clone().context("the cluster has no master")?;
    let mut report = RejoinReport {
        kind: "rejoin".into(),
        outcome: RejoinOutcome::Refused,
        server: host.clone(),
        master: master.clone(),
        divergence: None,
        errant: Vec::new(),
        forced: force,
        follows_by: None,
        reasons: Vec::new(),
    };
    run.say(&format!("rejoin {id}: {host} as a replica of {master}"));
    match check(env, &c, &host, &master).await {
        Ok((d, errant, by)) => {
            report.divergence = Some(d);
            report.errant = errant;
            report.follows_by = Some(by);
        }
        Err(e) => report.reasons.push(format!("{e:#}")),
    }
    if !report.errant.is_empty() && !force {
        report.reasons.push(format!(
            "{host} has {} event(s) after the point the cluster took over; rejoining would \
             keep them on {host} only (rerun with --force to accept that, or rebuild {host})",
            report.errant.len()
        ));
    }
    if !report.reasons.is_empty() {
        // Printed once journaled: a deposed owner's finish is refused, and it prints nothing.
        run.finish(FailoverOutcome::Aborted, serde_json::to_string(&report)?)
            .await?;
        run.say(&report.render_text());
        return Ok(report);
    }
    run.journal_step(
        "rejoin.check",
        StepPhase::Result,
        serde_json::to_string(&report.divergence)?,
    )
    .await?;
    let s = env.server(&host).context("no connection settings")?;
    run.step(
        "rejoin.fence",
        &format!("{host}: read_only=ON, kill client sessions"),
        async {
            let killed = s.stop_client_writes().await?;
            anyhow::Ok(format!("{} sessions killed", killed.len()))
        },
    )
    .await?;
    let (by, d) = (
        report.follows_by.unwrap_or(FollowBy::Position),
        report.divergence.clone().context("checked above")?,
    );
    let master_ref = server_ref(&c, &master)?;
    run.step(
        "rejoin.follow",
        &format!("{host}: replicate from {master}"),
        async {
            let dl = s.dialect().await?;
            if by == FollowBy::Gtid {
                let rows = s
                    .query(&Statement::new(format!(
                        "SELECT BINLOG_GTID_POS({}, {}) AS pos",
                        quote_sql(&d.own.file),
                        d.own.pos
                    )))
                    .await?;
                let pos = rows
                    .first()
                    .and_then(|r| r.get(&["pos"]))
                    .context("BINLOG_GTID_POS returned nothing")?;
                let pos = MariaGtidPos::parse(pos)?;
                s.execute(&dl.stop_replica()).await?;
                if let Some(set) = dl.set_gtid_slave_pos(&GtidSet::MariaDb(pos)) {
                    s.execute(&set).await?;
                }
            }
            let done = env
                .repoint(&host, &master_ref, by.into(), d.successor_pos.as_ref())
                .await?;
            anyhow::Ok(done.unwrap_or_else(|| "already replicating".into()))
        },
    )
    .await?;
    // Bounded: the IO thread connects within a retry or two.
    let connected = async {
        for _ in 0..50 {
            if let Some(st) = s.replica_status().await?
                && st.is_receiving()
                && st.sql_running
            {
                return anyhow::Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        bail!("replication did not start within 5 s")
    };
    timeout(env.step_timeout, connected)
        .await
        .context("replication status")??;
    report.outcome = RejoinOutcome::Rejoined;
    // Printed once journaled: a deposed owner's finish is refused, and it prints nothing.
    run.finish(FailoverOutcome::Succeeded, serde_json::to_string(&report)?)
        .await?;
    run.say(&report.render_text());
    Ok(report)
}

/// The divergence point, the errant events and how the host will follow the master.
async fn check(
    env: &Env,
    c: &ClusterRecord,
    host: &str,
    master: &str,
) -> anyhow::Result<(Divergence, Vec<BinlogEvent>, FollowBy)> {
    let d = divergence(c, host).map_err(|e| anyhow::anyhow!(e))?;
    let s = env.server(host).context("no connection settings")?;
    let m = env.server(master).context("no connection settings")?;
    let limit = env.step_timeout;
    timeout(limit, s.variables())
        .await
        .with_context(|| format!("{host} does not answer"))??;
    let m_ref = server_ref(c, master)?;
    if let Some(st) = s.replica_status().await?
        && st.replicates_from(&m_ref.host, m_ref.port)
        && st.sql_running
    {
        bail!("{host} already replicates from {master}");
    }
    let errant = timeout(limit, events_after(s, &d.own))
        .await
        .context("reading its binlog events timed out")??;
    // GTID when the master's other replicas use it (MariaDB always logs GTIDs).
    let mut by = FollowBy::Position;
    for other in c
        .spec
        .servers
        .iter()
        .filter(|x| x.name != host && x.name != master)
    {
        if let Some(o) = env.server(&other.name)
            && let Ok(Ok(Some(st))) = timeout(env.probe_timeout, o.replica_status()).await
            && st.uses_gtid()
        {
            by = FollowBy::Gtid;
        }
    }
    let version = m.version().await?;
    if !version.is_mariadb() && by == FollowBy::Gtid {
        bail!("GTID rejoin is implemented for MariaDB only");
    }
    if by == FollowBy::Position {
        if d.successor != master || c.epoch != d.epoch_after {
            bail!(
                "in file/position mode a rejoin starts at the position operation {} captured on \
                 {}, but the master changed since (now {master}, epoch {}): repoint {host} by hand",
                d.operation_id,
                d.successor,
                c.epoch
            );
        }
        if d.successor_pos.is_none() {
            bail!(
                "operation {} captured no position on {}",
                d.operation_id,
                d.successor
            );
        }
    }
    Ok((d, errant, by))
}

#[cfg(test)]
#[path = "rejoin_tests.rs"]
mod tests;
