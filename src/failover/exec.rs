//! Executing one planned [`Action`] against real servers and node agents. Every action is
//! idempotent: it checks its effect (read_only, replication source, executed position)
//! before acting, so a successor leader may run it again after an intent without a result.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use raftmha_node::agent::client::AgentClient;
use raftmha_node::proto::RelayPositionRequest;
use serde::{Deserialize, Serialize};
use tokio::time::timeout;

use super::engine::Journal;
use super::plan::Action;
use super::repoint::{ReplicationAccount, change_source};
use crate::db::{BinlogCoord, DbServer, Dialect, MysqlServer, WaitOutcome};
use crate::state::{ClusterRecord, Command, FailoverRecord};

/// What a step produced that later steps (or a successor leader) need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepOutput {
    Position(BinlogCoord),
    Skipped(String),
    Note(String),
}

/// Everything the engine reaches: one connection pool per server, agents, the account
/// replicas use, a scratch directory and the bounds on every wait.
pub struct Env {
    pub servers: BTreeMap<String, MysqlServer>,
    /// `server name -> (agent endpoint, token)`.
    pub agents: BTreeMap<String, (String, String)>,
    pub account: ReplicationAccount,
    pub work_dir: PathBuf,
    pub probe_timeout: Duration,
    pub step_timeout: Duration,
    /// Scripts run with MHA's arguments.
    pub scripts: Scripts,
}

#[derive(Debug, Clone, Default)]
pub struct Scripts {
    pub master_ip_failover: Option<String>,
    pub shutdown: Option<String>,
    pub report: Option<String>,
}

impl Env {
    pub fn server(&self, name: &str) -> Option<&MysqlServer> {
        self.servers.get(name)
    }

    fn db(&self, name: &str) -> anyhow::Result<&MysqlServer> {
        self.server(name)
            .with_context(|| format!("no connection settings for {name}"))
    }

    async fn agent(&self, name: &str) -> anyhow::Result<AgentClient> {
        let (endpoint, token) = self
            .agents
            .get(name)
            .with_context(|| format!("{name} has no agent configured"))?;
        AgentClient::connect(&format!("http://{endpoint}"), token, self.step_timeout)
            .await
            .with_context(|| format!("agent of {name} at {endpoint}"))
    }

    /// Whether `name`'s host agent answers (its binlogs can be saved).
    pub async fn agent_alive(&self, name: &str) -> bool {
        let Some((endpoint, token)) = self.agents.get(name) else {
            return false;
        };
        let Ok(c) =
            AgentClient::connect(&format!("http://{endpoint}"), token, self.probe_timeout).await
        else {
            return false;
        };
        c.health().await.is_ok()
    }
}

async fn dialect(s: &MysqlServer) -> anyhow::Result<Dialect> {
    Ok(Dialect::new(s.version().await?))
}

/// Runs one action; `captured` is the new master's position once captured.
pub async fn execute<J: Journal>(
    env: &Env,
    cluster: &ClusterRecord,
    failover: &FailoverRecord,
    action: &Action,
    captured: Option<&BinlogCoord>,
    journal: &J,
) -> anyhow::Result<Option<StepOutput>> {
    let limit = env.step_timeout;
    match action {
        Action::FenceOldMaster { master } => {
            super::fence::fence_old_master(env, cluster, failover, &master.name).await
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
            let d = dialect(s).await?;
            timeout(limit, s.execute(&d.stop_io_thread()))
                .await
                .context("STOP SLAVE IO_THREAD timed out")??;
            Ok(None)
        }
        Action::SaveMasterTail { master, from } => {
            let agent = env.agent(&master.name).await?;
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
            save_chunks(journal, cluster, failover, None, &data).await?;
            Ok(Some(StepOutput::Note(format!(
                "{} bytes saved",
                data.len()
            ))))
        }
        Action::WaitRelayLogApplied { server, read } => {
            let s = env.db(server)?;
            let d = dialect(s).await?;
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
            let agent = env.agent(donor).await?;
            let out = diff_path(&env.work_dir, failover.id, donor, target);
            let req = RelayPositionRequest {
                target_mlf: from.file.clone(),
                target_rmlp: from.pos,
                latest_mlf: to.file.clone(),
                latest_rmlp: to.pos,
            };
            agent.generate_diff(req, &out).await?;
            let data = tokio::fs::read(&out).await?;
            save_chunks(
                journal,
                cluster,
                failover,
                Some(diff_name(donor, target)),
                &data,
            )
            .await?;
            Ok(Some(StepOutput::Note(format!("{} bytes", data.len()))))
        }
        Action::ApplyRelayDiff { donor, target } => {
            // From the journal, not a local file: a successor leader has it too.
            let Some(chunks) = failover.diffs.get(&diff_name(donor, target)) else {
                bail!("the relay-log diff {donor} → {target} is not in the journal");
            };
            let path = diff_path(&env.work_dir, failover.id, donor, target);
            tokio::fs::write(&path, assemble(chunks)).await?;
            apply_on(env, target, &path).await
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
            apply_on(env, target, &path).await
        }
        Action::GtidCatchUp {
            target,
            donor,
            until,
        } => {
            let s = env.db(target)?;
            let d = dialect(s).await?;
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
            let s = env.db(new_master)?;
            let d = dialect(s).await?;
            s.execute(&d.set_read_only(false)).await?;
            Ok(None)
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
            let s = env.db(replica)?;
            let d = dialect(s).await?;
            let nm = server_ref(cluster, new_master)?;
            if let Some(st) = s.replica_status().await?
                && st.replicates_from(&nm.host, nm.port)
                && st.sql_running
            {
                return Ok(Some(StepOutput::Skipped("already replicating".into())));
            }
            let source = change_source(d.version.flavor, &nm, &env.account, *by, captured)?;
            s.execute(&d.stop_replica()).await?;
            s.execute(&d.change_source(&source)).await?;
            s.execute(&d.start_replica()).await?;
            Ok(None)
        }
        Action::ResetReplicaOnNewMaster { new_master } => {
            let s = env.db(new_master)?;
            let d = dialect(s).await?;
            s.execute(&d.stop_replica()).await?;
            s.execute(&d.reset_replica_all()).await?;
            Ok(None)
        }
        Action::CompleteFailover { new_master } => {
            let reply = journal
                .propose(Command::PromoteMaster {
                    cluster: cluster.spec.name.clone(),
                    server: new_master.clone(),
                    expected_epoch: failover.epoch,
                })
                .await?;
            match reply {
                crate::state::CommandResult::Rejected { reason }
                    if cluster.master.as_deref() != Some(new_master.as_str()) =>
                {
                    bail!("promotion refused: {reason}")
                }
                _ => Ok(None),
            }
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

fn server_ref(cluster: &ClusterRecord, name: &str) -> anyhow::Result<super::input::ServerRef> {
    let s = cluster
        .spec
        .servers
        .iter()
        .find(|s| s.name == name)
        .with_context(|| format!("no server {name}"))?;
    Ok(super::input::ServerRef::new(&s.name, &s.host, s.port))
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

/// Stores `data` in the Raft log in ≤ 60 KiB chunks: the dead master's tail (`diff: None`)
/// or a named relay-log diff.
async fn save_chunks<J: Journal>(
    journal: &J,
    cluster: &ClusterRecord,
    failover: &FailoverRecord,
    diff: Option<String>,
    data: &[u8],
) -> anyhow::Result<()> {
    for (seq, chunk) in data.chunks(60 * 1024).enumerate() {
        let (cluster, failover_id, seq, data) = (
            cluster.spec.name.clone(),
            failover.id,
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
        if let crate::state::CommandResult::Rejected { reason } = journal.propose(cmd).await? {
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
pub async fn apply_diff_and_tail(
    env: &Env,
    failover: &FailoverRecord,
    donor: &str,
    target: &str,
) -> anyhow::Result<Option<StepOutput>> {
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
    apply_files(env, target, &files).await
}

async fn apply_on(env: &Env, target: &str, path: &Path) -> anyhow::Result<Option<StepOutput>> {
    apply_files(env, target, &[path.to_path_buf()]).await
}

async fn apply_files(
    env: &Env,
    target: &str,
    files: &[PathBuf],
) -> anyhow::Result<Option<StepOutput>> {
    // The agent applies with the replica threads stopped (the SQL thread would race it);
    // everything received was already applied by WaitRelayLogApplied.
    let s = env.db(target)?;
    let d = dialect(s).await?;
    s.execute(&d.stop_replica()).await?;
    let agent = env.agent(target).await?;
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

/// Runs an MHA hook with its arguments; MHA treats exit 0 as success (and 10 from
/// `shutdown_script` as "mysqld killed, host kept up").
async fn script(
    path: Option<&str>,
    args: &[String],
    limit: Duration,
) -> anyhow::Result<Option<StepOutput>> {
    let Some(path) = path else {
        return Ok(Some(StepOutput::Skipped("not configured".into())));
    };
    let child = tokio::process::Command::new(path)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = timeout(limit, child)
        .await
        .with_context(|| format!("{path} did not finish within {limit:?}"))?
        .with_context(|| format!("running {path}"))?;
    match out.status.code() {
        Some(0) => Ok(None),
        Some(10) => Ok(Some(StepOutput::Note("exit 10".into()))),
        other => bail!("{path} failed with {other:?}"),
    }
}
