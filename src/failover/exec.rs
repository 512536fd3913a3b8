//! Executing one planned [`Action`] against real servers and node agents. Every action is
//! idempotent: it checks its effect (read_only, replication source, executed position)
//! before acting, so a successor leader may run it again after an intent without a result.
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use raftmha_node::proto::RelayPositionRequest;
use tokio::time::timeout;

use super::effects::{Effects, StepContext, StepOutput};
use super::env::Env;
use super::hooks::{HookExit, run_hook};
use super::input::{
    DeadMaster, FailoverInput, FailoverPolicy, ReplicaState, ServerRef, server_ref,
};
use super::observe::observe_replicas;
use super::plan::Action;
use super::repoint::change_source;
use super::runner::{Journal, Runner};
use crate::db::{DbServer, MysqlServer, WaitOutcome};
use crate::state::{ClusterRecord, Command, FailoverRecord};

impl Effects for Env {
    async fn observe(
        &self,
        cluster: &ClusterRecord,
        failover: &FailoverRecord,
        policy: &FailoverPolicy,
    ) -> anyhow::Result<FailoverInput> {
        let dead = &failover.dead_master;
        let spec = &cluster.spec;
        let dead_spec = spec
            .servers
            .iter()
            .find(|s| &s.name == dead)
            .context("the dead master is not in the cluster spec")?;
        let replicas: Vec<(&MysqlServer, ServerRef, _)> = spec
            .servers
            .iter()
            .filter(|s| &s.name != dead)
            .filter_map(|s| {
                let server = self.server(&s.name)?;
                Some((server, ServerRef::new(&s.name, &s.host, s.port), s.into()))
            })
            .collect();
        let (host_reachable, replicas) = futures::join!(
            self.agent_alive(dead),
            observe_replicas(&replicas, self.probe_timeout)
        );
        let server_id = replicas.iter().find_map(|r| match &r.state {
            ReplicaState::Reachable(f) => f.status.as_ref().and_then(|s| s.source_server_id),
            _ => None,
        });
        Ok(FailoverInput {
            cluster: spec.name.clone(),
            dead_master: DeadMaster {
                server: ServerRef::new(&dead_spec.name, &dead_spec.host, dead_spec.port),
                server_id,
                server_uuid: None,
                host_reachable,
            },
            replicas,
            policy: policy.clone(),
        })
    }

    async fn execute<J: Journal>(
        &self,
        run: &Runner<'_, J>,
        ctx: &StepContext<'_>,
        action: &Action,
    ) -> anyhow::Result<Option<StepOutput>> {
        execute(self, run, ctx, action).await
    }

    async fn apply_diff_and_tail(
        &self,
        ctx: &StepContext<'_>,
        donor: &str,
        target: &str,
    ) -> anyhow::Result<Option<StepOutput>> {
        apply_diff_and_tail(self, ctx, donor, target).await
    }
}

/// Runs one action against real servers, agents and scripts.
async fn execute<J: Journal>(
    env: &Env,
    run: &Runner<'_, J>,
    ctx: &StepContext<'_>,
    action: &Action,
) -> anyhow::Result<Option<StepOutput>> {
    let limit = env.step_timeout;
    let (cluster, failover, captured) = (ctx.cluster, ctx.failover, ctx.captured);
    match action {
        Action::FenceOldMaster { master } => {
            super::fence::fence_old_master(env, ctx, &master.name).await
        }
        Action::MasterIpFailoverStop {
            master,
            host_reachable,
        } => {
            let cmd = if *host_reachable { "stopssh" } else { "stop" };
            let args = vec![
                format!("--command={cmd}"),
                format!("--ssh_user=root"),
                format!("--orig_master_host={}", master.host),
                format!("--orig_master_ip={}", master.host),
                format!("--orig_master_port={}", master.port),
            ];
            script(env.scripts.master_ip_failover.as_deref(), &args, limit).await
        }
        Action::ShutdownScript {
            master,
            host_reachable,
        } => {
            let cmd = if *host_reachable { "stopssh" } else { "stop" };
            let args = vec![
                format!("--command={cmd}"),
                format!("--host={}", master.host),
                format!("--ip={}", master.host),
                format!("--port={}", master.port),
            ];
            script(env.scripts.shutdown.as_deref(), &args, limit).await
        }
        Action::StopIoThread { replica } => {
            let s = env.db(replica)?;
            let replaced = timeout(limit, crate::db::replica_stop::stop_io_thread_promptly(s))
                .await
                .context("STOP SLAVE IO_THREAD timed out")??;
            Ok(replaced.map(|was| {
                StepOutput::Note(format!(
                    "rpl_semi_sync_slave_kill_conn_timeout lowered from {was} to {} s first, \
                     so the stop does not wait on a silent master",
                    crate::db::replica_stop::PROMPT_KILL_CONN_TIMEOUT_SECS
                ))
            }))
        }
        Action::SaveMasterTail { master, from } => {
            let agent = env.agent(&master.name, &ctx.token, limit).await?;
            let out = env
                .work_dir
                .join(format!("fo{}-tail-{}.binlog", failover.id, master.name));
            let dl = match agent
                .save_binary_logs(&from.file, from.pos, false, &out)
                .await
            {
                Ok(dl) => dl,
                // Not corruption: recovery goes on from what the replicas received.
                Err(e) if e.binlog_encrypted() => {
                    return Ok(Some(StepOutput::Skipped(encrypted_tail_note(&e))));
                }
                Err(e) => {
                    return Err(
                        anyhow::Error::new(e).context("saving the dead master's binlog tail")
                    );
                }
            };
            if dl.no_events {
                return Ok(Some(StepOutput::Skipped(
                    "no events after the latest replica".into(),
                )));
            }
            let data = tokio::fs::read(&out).await?;
            save_chunks(run, None, &data).await?;
            Ok(Some(StepOutput::Note(format!(
                "{} bytes saved",
                data.len()
            ))))
        }
        Action::WaitRelayLogApplied { server, read } => {
            let s = env.db(server)?;
            let d = s.dialect().await?;
            if let Some(st) = s.replica_status().await?
                && !st.sql_running
                && st.last_sql_errno == 0
            {
                s.execute(&d.start_sql_thread()).await?;
            }
            let (wait, kind) = d.wait_for_position(read, limit);
            match s.wait(&wait, kind, limit).await? {
                WaitOutcome::Reached => Ok(None),
                other => bail!("{server} did not apply its relay log up to {read}: {other:?}"),
            }
        }
        Action::GenerateRelayDiff {
            donor,
            target,
            from,
            to,
        } => {
            let agent = env.agent(donor, &ctx.token, limit).await?;
            let out = diff_path(&env.work_dir, failover.id, donor, target);
            let req = RelayPositionRequest {
                target_mlf: from.file.clone(),
                target_rmlp: from.pos,
                latest_mlf: to.file.clone(),
                latest_rmlp: to.pos,
            };
            agent.generate_diff(req, &out).await?;
            let data = tokio::fs::read(&out).await?;
            save_chunks(run, Some(diff_name(donor, target)), &data).await?;
            Ok(Some(StepOutput::Note(format!("{} bytes", data.len()))))
        }
        Action::ApplyRelayDiff { donor, target } => {
            // From the journal, not a local file: a successor leader has it too.
            let Some(chunks) = failover.diffs.get(&diff_name(donor, target)) else {
                bail!("the relay-log diff {donor} → {target} is not in the journal");
            };
            let path = diff_path(&env.work_dir, failover.id, donor, target);
            tokio::fs::write(&path, assemble(chunks)).await?;
            apply_files(env, ctx, target, &[path]).await
        }
        Action::ApplyMasterTail { target } => {
            if failover.tail.is_empty() {
                return Ok(Some(StepOutput::Skipped("no saved tail".into())));
            }
            let data = assemble(&failover.tail);
            let path = env
                .work_dir
                .join(format!("fo{}-tail-for-{target}.binlog", failover.id));
            tokio::fs::write(&path, &data).await?;
            apply_files(env, ctx, target, &[path]).await
        }
        Action::GtidCatchUp {
            target,
            donor,
            until,
        } => {
            let s = env.db(target)?;
            let d = s.dialect().await?;
            let donor_spec = server_ref(cluster, donor)?;
            let source = change_source(
                d.version.flavor,
                &donor_spec,
                &env.account,
                super::plan::RepointBy::Gtid,
                None,
            )?;
            s.execute(&d.stop_replica()).await?;
            s.execute(&d.change_source(&source)).await?;
            s.execute(&d.start_replica()).await?;
            let (wait, kind) = d
                .wait_for_gtids(until, limit)
                .context("GTID flavor mismatch")?;
            let reached = s.wait(&wait, kind, limit).await?;
            s.execute(&d.stop_replica()).await?;
            match reached {
                WaitOutcome::Reached => Ok(None),
                other => bail!("{target} did not catch up from {donor}: {other:?}"),
            }
        }
        Action::CaptureNewMasterPosition { new_master } => {
            let s = env.db(new_master)?;
            let st = s
                .master_status()
                .await?
                .with_context(|| format!("{new_master} has binary logging off"))?;
            Ok(Some(StepOutput::Position(st.coord)))
        }
        Action::EnableWrites { new_master } => {
            let (c, dead) = (&cluster.spec.name, &failover.dead_master);
            let seen_at = |manager, window_end_ms| {
                run.journal.verdict_seen_at(crate::state::VerdictKey {
                    cluster: c,
                    server: dead,
                    manager,
                    window_end_ms,
                })
            };
            let fenced = super::fence::await_old_master_fenced(env, ctx, seen_at).await?;
            if fenced.is_some() {
                // The gate may have slept: still the owner before the one write that counts?
                run.confirm().await?;
            }
            let s = env.db(new_master)?;
            let d = s.dialect().await?;
            s.execute(&d.set_read_only(false)).await?;
            Ok(fenced.map(StepOutput::Note))
        }
        Action::MasterIpFailoverStart { new_master } => {
            let nm = server_ref(cluster, new_master)?;
            // MHA names hosts, not server names, in every hook argument.
            let dead = server_ref(cluster, &failover.dead_master)?;
            let args = vec![
                "--command=start".to_string(),
                "--ssh_user=root".to_string(),
                format!("--orig_master_host={}", dead.host),
                format!("--orig_master_ip={}", dead.host),
                format!("--orig_master_port={}", dead.port),
                format!("--new_master_host={}", nm.host),
                format!("--new_master_ip={}", nm.host),
                format!("--new_master_port={}", nm.port),
            ];
            script(env.scripts.master_ip_failover.as_deref(), &args, limit).await
        }
        Action::Repoint {
            replica,
            new_master,
            by,
        } => {
            let nm = server_ref(cluster, new_master)?;
            Ok(match env.repoint(replica, &nm, *by, captured).await? {
                None => Some(StepOutput::Skipped("already replicating".into())),
                Some(_) => None,
            })
        }
        Action::ResetReplicaOnNewMaster { new_master } => {
            let s = env.db(new_master)?;
            let d = s.dialect().await?;
            s.execute(&d.stop_replica()).await?;
            s.execute(&d.reset_replica_all()).await?;
            Ok(None)
        }
        Action::CompleteFailover { new_master } => {
            record_promotion(run, ctx, new_master).await?;
            Ok(None)
        }
        Action::ReportScript => {
            let dead = server_ref(cluster, &failover.dead_master)?;
            let mut args = vec![format!("--orig_master_host={}", dead.host)];
            // The step runs after the promotion was recorded: the record names the new master.
            if let Some(nm) = cluster
                .master
                .as_deref()
                .filter(|m| *m != failover.dead_master)
            {
                args.push(format!(
                    "--new_master_host={}",
                    server_ref(cluster, nm)?.host
                ));
            }
            args.push("--subject=raftmha failover".to_string());
            args.push("--body=failover finished".to_string());
            // MHA logs a failing report_script and carries on: the failover is already done.
            match script(env.scripts.report.as_deref(), &args, limit).await {
                Err(e) => Ok(Some(StepOutput::Note(format!(
                    "report_script failed (ignored, as MHA does): {e:#}"
                )))),
                done => done,
            }
        }
    }
}

/// `CompleteFailover`: the promotion entry, proposed by the run's owner. Refused only when
/// the cluster does not already name `new_master` (an earlier owner may have recorded it).
pub(crate) async fn record_promotion<J: Journal>(
    run: &Runner<'_, J>,
    ctx: &StepContext<'_>,
    new_master: &str,
) -> anyhow::Result<()> {
    let reply = run
        .propose(Command::PromoteMaster {
            cluster: ctx.cluster.spec.name.clone(),
            server: new_master.to_string(),
            expected_epoch: ctx.failover.epoch,
            failover_id: Some(ctx.failover.id),
        })
        .await?;
    match reply {
        crate::state::CommandResult::Rejected { reason }
            if ctx.cluster.master.as_deref() != Some(new_master) =>
        {
            bail!("promotion refused: {reason}")
        }
        _ => Ok(()),
    }
}

/// Why no tail was saved when the dead master's binlogs are encrypted (the report prints it
/// after "No binlog events saved from the dead master:").
fn encrypted_tail_note(e: &raftmha_node::agent::client::ClientError) -> String {
    let detail = match e {
        raftmha_node::agent::client::ClientError::Status(s) => s.message().to_string(),
        other => other.to_string(),
    };
    format!(
        "its binlogs are encrypted, so no file tail was read ({detail}); recovery used only \
         what the replicas had received, and events no replica received may be lost"
    )
}

fn diff_name(donor: &str, target: &str) -> String {
    format!("{donor}->{target}")
}

/// Chunks in sequence order, concatenated.
fn assemble(chunks: &[crate::state::BinlogTailChunk]) -> Vec<u8> {
    let mut sorted: Vec<_> = chunks.iter().collect();
    sorted.sort_by_key(|c| c.seq);
    sorted.iter().flat_map(|c| c.data.iter().copied()).collect()
}

/// Stores `data` in the Raft log in ≤ 60 KiB chunks, as the run's owner: the dead master's
/// tail (`diff: None`) or a named relay-log diff.
async fn save_chunks<J: Journal>(
    run: &Runner<'_, J>,
    diff: Option<String>,
    data: &[u8],
) -> anyhow::Result<()> {
    for (seq, chunk) in data.chunks(60 * 1024).enumerate() {
        let (cluster, failover_id, seq, data) = (
            run.cluster.clone(),
            run.id,
            u32::try_from(seq)?,
            chunk.to_vec(),
        );
        let cmd = match &diff {
            None => Command::BinlogTailChunk {
                cluster,
                failover_id,
                seq,
                data,
            },
            Some(name) => Command::RelayDiffChunk {
                cluster,
                failover_id,
                name: name.clone(),
                seq,
                data,
            },
        };
        if let crate::state::CommandResult::Rejected { reason } = run.propose(cmd).await? {
            bail!("the journal refused a chunk: {reason}");
        }
    }
    Ok(())
}

fn diff_path(dir: &Path, id: u64, donor: &str, target: &str) -> PathBuf {
    dir.join(format!("fo{id}-diff-{donor}-to-{target}.binlog"))
}

/// `ApplyRelayDiff` and the `ApplyMasterTail` that follows it on the same target in one
/// agent call (one client process instead of two: the pieces must be applied in this order
/// anyway, and the agent skips groups already applied, so a retry is safe).
async fn apply_diff_and_tail(
    env: &Env,
    ctx: &StepContext<'_>,
    donor: &str,
    target: &str,
) -> anyhow::Result<Option<StepOutput>> {
    let failover = ctx.failover;
    let Some(chunks) = failover.diffs.get(&diff_name(donor, target)) else {
        bail!("the relay-log diff {donor} → {target} is not in the journal");
    };
    let diff = diff_path(&env.work_dir, failover.id, donor, target);
    tokio::fs::write(&diff, assemble(chunks)).await?;
    let mut files = vec![diff];
    if !failover.tail.is_empty() {
        let tail = env
            .work_dir
            .join(format!("fo{}-tail-for-{target}.binlog", failover.id));
        tokio::fs::write(&tail, assemble(&failover.tail)).await?;
        files.push(tail);
    }
    apply_files(env, ctx, target, &files).await
}

async fn apply_files(
    env: &Env,
    ctx: &StepContext<'_>,
    target: &str,
    files: &[PathBuf],
) -> anyhow::Result<Option<StepOutput>> {
    // The agent applies with the replica threads stopped (the SQL thread would race it);
    // everything received was already applied by WaitRelayLogApplied.
    let s = env.db(target)?;
    let d = s.dialect().await?;
    s.execute(&d.stop_replica()).await?;
    let agent = env.agent(target, &ctx.token, env.step_timeout).await?;
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let reply = agent.apply_diff(&paths).await?;
    if !reply.incomplete.is_empty() {
        bail!(
            "{target}: incomplete transactions in the diff: {:?}",
            reply.incomplete
        );
    }
    Ok(Some(StepOutput::Note(format!(
        "{} applied, {} already present",
        reply.groups_applied, reply.groups_skipped
    ))))
}

/// Runs an MHA hook step: skipped when not configured.
async fn script(
    path: Option<&str>,
    args: &[String],
    limit: Duration,
) -> anyhow::Result<Option<StepOutput>> {
    let Some(path) = path else {
        return Ok(Some(StepOutput::Skipped("not configured".into())));
    };
    Ok(match run_hook(path, args, limit).await? {
        HookExit::Done => None,
        HookExit::Proceed => Some(StepOutput::Note("exit 10".into())),
    })
}
