//! Runs a rejoin ([`super::rejoin`] decides) over [`RejoinEffects`], through the one step
//! runner: `rejoin.check` (journaled result: the divergence, how the host will follow, its
//! errant events), `rejoin.fence`, `rejoin.follow`, then the bounded wait for replication and
//! the finish. A successor leader resumes from the journal: a journaled check is not made
//! again (the host may already replicate), journaled steps are not repeated.
use anyhow::{Context, bail};

use super::input::server_ref;
use super::rejoin::{
    BinlogEvent, Checked, RejoinOutcome, RejoinReport, divergence, errant_events, files_to_read,
    follow_refusal, refusals,
};
use super::rejoin_effects::RejoinEffects;
use super::runner::{Journal, Runner};
use super::switchover::FollowBy;
use crate::state::{ClusterRecord, FailoverOutcome, Operation, StepPhase};

/// Runs the rejoin `runner` owns (the record names the host in `dead_master`).
pub async fn run_rejoin<J: Journal, E: RejoinEffects>(
    run: &Runner<'_, J>,
    fx: &E,
) -> anyhow::Result<RejoinReport> {
    let id = run.id;
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
    let journaled = run
        .done_get("rejoin.check")
        .and_then(|d| serde_json::from_str::<Checked>(&d).ok());
    let checked = match journaled {
        Some(checked) => checked,
        None => {
            run.confirm().await?;
            let checked = check(fx, &c, &host, &master)
                .await
                .map_err(|e| format!("{e:#}"));
            report.reasons = refusals(&checked, force, &host);
            if let Ok(ch) = &checked {
                report.divergence = Some(ch.divergence.clone());
                report.errant = ch.errant.clone();
                report.follows_by = Some(ch.follows_by);
            }
            match checked {
                Ok(ch) if report.reasons.is_empty() => {
                    run.journal_step(
                        "rejoin.check",
                        StepPhase::Result,
                        serde_json::to_string(&ch)?,
                    )
                    .await?;
                    ch
                }
                _ => {
                    // Printed once journaled: a deposed owner's finish is refused, and it
                    // prints nothing.
                    run.finish(FailoverOutcome::Aborted, serde_json::to_string(&report)?)
                        .await?;
                    run.say(&report.render_text());
                    return Ok(report);
                }
            }
        }
    };
    report.divergence = Some(checked.divergence.clone());
    report.errant = checked.errant.clone();
    report.follows_by = Some(checked.follows_by);
    run.once(
        "rejoin.fence",
        &format!("{host}: read_only=ON, kill client sessions"),
        || async { Ok(format!("{} sessions killed", fx.fence(&host).await?)) },
    )
    .await?;
    let master_ref = server_ref(&c, &master)?;
    run.once(
        "rejoin.follow",
        &format!("{host}: replicate from {master}"),
        || async {
            let done = fx
                .follow(&host, &master_ref, checked.follows_by, &checked.divergence)
                .await?;
            anyhow::Ok(done.unwrap_or_else(|| "already replicating".into()))
        },
    )
    .await?;
    fx.wait_replicating(&host).await?;
    report.outcome = RejoinOutcome::Rejoined;
    // Printed once journaled: a deposed owner's finish is refused, and it prints nothing.
    run.finish(FailoverOutcome::Succeeded, serde_json::to_string(&report)?)
        .await?;
    run.say(&report.render_text());
    Ok(report)
}

/// The divergence point, the errant events and how the host will follow the master.
async fn check<E: RejoinEffects>(
    fx: &E,
    c: &ClusterRecord,
    host: &str,
    master: &str,
) -> anyhow::Result<Checked> {
    let d = divergence(c, host).map_err(|e| anyhow::anyhow!(e))?;
    let status = fx.host_replication(host).await?;
    let m_ref = server_ref(c, master)?;
    if let Some(st) = status
        && st.replicates_from(&m_ref.host, m_ref.port)
        && st.sql_running
    {
        bail!("{host} already replicates from {master}");
    }
    let errant = errant_after(fx, host, &d.own).await?;
    // GTID when the master's other replicas use it (MariaDB always logs GTIDs).
    let by = if fx.others_use_gtid(c, host, master).await {
        FollowBy::Gtid
    } else {
        FollowBy::Position
    };
    let mariadb = fx.is_mariadb(master).await?;
    if let Some(why) = follow_refusal(&d, by, mariadb, host, master, c.epoch) {
        bail!(why);
    }
    Ok(Checked {
        divergence: d,
        follows_by: by,
        errant,
    })
}

/// The host's transaction events after `own` (at most 200), or why they cannot be read.
async fn errant_after<E: RejoinEffects>(
    fx: &E,
    host: &str,
    own: &crate::db::BinlogCoord,
) -> anyhow::Result<Vec<BinlogEvent>> {
    let logs = fx.binary_logs(host).await?;
    let files = files_to_read(&logs, own).map_err(|e| anyhow::anyhow!(e))?;
    let mut out = Vec::new();
    for (file, from) in files {
        out.extend(errant_events(&fx.binlog_events(host, &file, from).await?));
        if out.len() >= 200 {
            out.truncate(200);
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "rejoin_run_tests.rs"]
mod tests;
