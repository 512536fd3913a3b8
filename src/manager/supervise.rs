//! Detection and failover wired into the daemon.
//!
//! Every manager runs one monitor per registered cluster's current master and commits each
//! verdict report to the Raft log (forwarded to the leader when it is not the leader). The
//! leader re-evaluates on every applied entry (and at least every 100 ms, because verdicts
//! go stale with time): a majority of fresh `Dead` verdicts plus the replicas' confirmation
//! start the journaled failover; an unfinished failover in the journal is resumed.
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, watch};

use super::leader_tasks::LeaderTasks;
use super::lease::Leases;
use super::resolve::{admin_credentials, build_env};
use crate::api::auth::AuthToken;
use crate::api::client::AdminClient;
use crate::api::server::now_ms;
use raftmha_node::agent::client::FencingToken;

use crate::db::{ConnectSettings, DbServer, MysqlServer, PingType};
use crate::detect::{
    Decision, ManagerVerdict, MonitorConfig, QuorumConfig, SystemClock, Verdict, VerdictReport,
    decide, probe_replicas, run_monitor_renewing,
};
use crate::failover::engine::run_failover;
use crate::failover::operation::run_operation;
use crate::failover::runner::{Deposed, Journal, Progress, is_deposed};
use crate::raft::handle::{NotDone, RaftHandle};
use crate::state::cluster_file::{self, ClusterSpec};
use crate::state::{ClusterRecord, Command, CommandResult, Request, RunOwner};

/// How often the leader re-evaluates even when nothing is applied (verdict freshness).
const REEVALUATE: Duration = Duration::from_millis(100);
/// How often the leader checks that failed-over masters that came back stay read-only.
const FENCE_SWEEP: Duration = Duration::from_secs(1);

/// A master that was failed over and answers again (it was only cut off, or was restarted)
/// must not take writes: set `read_only=ON` and kill its client sessions.
async fn fence_returned_masters(
    c: &ClusterRecord,
    work_dir: &std::path::Path,
    now: &RaftHandle,
    term: u64,
) {
    // A running switchover may be making one of them the master right now.
    if c.failovers.iter().any(|f| f.finished.is_none()) {
        return;
    }
    // `c` may be older than the last applied entry: ask the applied state again right before
    // fencing, so a server a switchover just promoted is never made read-only.
    let still_old = |name: &str| {
        now.local_state()
            .1
            .clusters
            .get(&c.spec.name)
            .is_some_and(|c| {
                c.master.as_deref() != Some(name)
                    && c.failovers.iter().all(|f| f.finished.is_some())
            })
    };
    let old: BTreeSet<&str> = c
        .failovers
        .iter()
        .filter(|f| {
            matches!(
                f.finished,
                Some((crate::state::FailoverOutcome::Succeeded, _))
            )
        })
        .map(|f| f.dead_master.as_str())
        .filter(|m| c.master.as_deref() != Some(*m))
        .collect();
    if old.is_empty() {
        return;
    }
    let Ok(env) = build_env(&c.spec, work_dir) else {
        return;
    };
    for name in old {
        let Some(s) = env.servers.get(name) else {
            continue;
        };
        let fence = async {
            let vars = s.variables().await?;
            if vars.read_only || !still_old(name) {
                return anyhow::Ok(false);
            }
            // SQL cannot carry a fencing token: confirm the leadership right before it.
            now.confirm_leader(term)
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            s.stop_client_writes().await?;
            anyhow::Ok(true)
        };
        if let Ok(Ok(true)) = tokio::time::timeout(env.probe_timeout, fence).await {
            tracing::warn!(
                cluster = %c.spec.name,
                "{name}, failed over earlier, is reachable and was writable: fenced (read_only=ON, client sessions killed)"
            );
        }
    }
}

#[derive(Clone)]
pub struct Supervisor {
    pub handle: RaftHandle,
    pub id: u64,
    pub token: AuthToken,
    pub local_ip: Option<std::net::IpAddr>,
    pub work_dir: PathBuf,
    /// Check and failover-phase timings for `/metrics`.
    pub metrics: Arc<crate::api::http::EngineMetrics>,
    /// The replicas' streams between quorum evaluations (silence of a frozen master).
    pub replica_watch: Arc<super::replica_watch::ReplicaWatch>,
}

/// The Raft log as the runs' journal, and this manager's leadership.
#[derive(Clone)]
pub struct RaftJournal {
    sup: Supervisor,
}

impl Journal for RaftJournal {
    async fn propose(&self, req: Request) -> anyhow::Result<CommandResult> {
        if req.term.is_none() {
            return self.sup.propose_request(req).await;
        }
        // Acting for a run: only the leader may, so never forwarded.
        match self.sup.handle.write(req).await {
            Ok((result, _)) => Ok(result),
            Err(e) => anyhow::bail!("not proposed: {}", not_done(&e)),
        }
    }

    async fn cluster(&self, name: &str) -> anyhow::Result<Option<ClusterRecord>> {
        let (state, _) = self
            .sup
            .handle
            .read()
            .await
            .map_err(|e| anyhow::anyhow!("linearizable read failed: {}", not_done(&e)))?;
        Ok(state.clusters.get(name).cloned())
    }

    fn local_cluster(&self, name: &str) -> Option<ClusterRecord> {
        self.sup.handle.local_state().1.clusters.get(name).cloned()
    }

    fn verdict_seen_at(&self, v: crate::state::VerdictKey<'_>) -> Option<u64> {
        self.sup.handle.verdict_seen_at(v)
    }

    fn leadership(&self) -> Option<RunOwner> {
        let (manager, term) = self.sup.handle.leadership()?;
        Some(RunOwner { manager, term })
    }

    async fn confirm(&self, owner: RunOwner) -> Result<(), Deposed> {
        if owner.manager != self.sup.id {
            return Err(Deposed(format!("{owner} is not this manager")));
        }
        self.sup
            .handle
            .confirm_leader(owner.term)
            .await
            .map_err(Deposed)
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

fn not_done(e: &NotDone) -> String {
    match e {
        NotDone::NotLeader(l) => format!("not the leader (leader: {l:?})"),
        NotDone::Failed(m) => m.clone(),
    }
}

impl Supervisor {
    async fn propose(&self, command: Command) -> anyhow::Result<CommandResult> {
        self.propose_request(Request::new(command, Some(self.id), now_ms()))
            .await
    }

    /// Proposes `req`; on a follower it is forwarded whole to the leader, so the log names
    /// this manager (not the leader) as its proposer.
    async fn propose_request(&self, req: Request) -> anyhow::Result<CommandResult> {
        let kind = req.command.kind();
        match self.handle.write(req.clone()).await {
            Ok((result, _)) => Ok(result),
            Err(NotDone::NotLeader(Some((_, Some(addr))))) => {
                let client = AdminClient::new_from(
                    &addr,
                    self.token.clone(),
                    Duration::from_secs(5),
                    self.local_ip,
                )
                .map_err(|e| anyhow::anyhow!(e))?
                .forwarding();
                let (result, _) = client.write_request(&req).await?;
                Ok(result)
            }
            Err(e) => anyhow::bail!("cannot propose {kind}: {}", not_done(&e)),
        }
    }

    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let (reports_tx, mut reports_rx) =
            mpsc::channel::<(String, String, u64, VerdictReport)>(256);
        let reporter = self.clone();
        tokio::spawn(async move {
            while let Some((cluster, server, epoch, report)) = reports_rx.recv().await {
                let cmd = Command::ReportLiveness {
                    cluster,
                    server,
                    manager: reporter.id,
                    verdict: to_state_verdict(report.verdict),
                    // A failing window opens at the last check that saw the master alive: the
                    // lease bound (detect::lease_bound) counts from this manager's last renewal.
                    window_start_ms: report
                        .last_alive_at
                        .filter(|_| report.verdict != Verdict::Alive)
                        .or(report.failing_since)
                        .unwrap_or(report.observed_at),
                    window_end_ms: report.observed_at,
                    master_epoch: epoch,
                };
                if let Err(e) = reporter.propose(cmd).await {
                    tracing::warn!("verdict not committed: {e:#}");
                }
            }
        });
        let mut monitors: BTreeMap<String, (String, u64, watch::Sender<bool>)> = BTreeMap::new();
        let mut tasks = LeaderTasks::default();
        let mut refused: BTreeMap<String, String> = BTreeMap::new();
        let leases = Leases::default();
        let heartbeats = super::heartbeat::HeartbeatKeeper::default();
        let mut last_unfence: BTreeMap<String, tokio::time::Instant> = BTreeMap::new();
        let mut last_fence_sweep = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                break;
            }
            let (applied, state) = self.handle.local_state();
            let leading = self.handle.leadership().map(|(_, term)| term);
            let leader = leading.is_some();
            tasks.follow_leadership(leading);
            leases.note_failovers(&state.clusters);
            // Monitors follow the current master of every cluster.
            monitors.retain(|name, (master, epoch, stop_tx)| {
                let keep = state.clusters.get(name).is_some_and(|c| {
                    c.master.as_deref() == Some(master.as_str()) && c.epoch == *epoch
                });
                if !keep {
                    let _ = stop_tx.send(true);
                }
                keep
            });
            for (name, c) in &state.clusters {
                let Some(master) = &c.master else { continue };
                if monitors.contains_key(name) {
                    continue;
                }
                let started =
                    self.start_monitor(&c.spec, master, c.epoch, reports_tx.clone(), &leases);
                match started {
                    Ok(stop_tx) => {
                        monitors.insert(name.clone(), (master.clone(), c.epoch, stop_tx));
                    }
                    Err(e) => tracing::warn!(cluster = %name, "cannot monitor {master}: {e:#}"),
                }
            }
            if let Some(term) = leading
                && last_fence_sweep.elapsed() >= FENCE_SWEEP
                && !tasks.sweep_running()
            {
                last_fence_sweep = tokio::time::Instant::now();
                let clusters: Vec<ClusterRecord> = state.clusters.values().cloned().collect();
                let work_dir = self.work_dir.clone();
                let handle = self.handle.clone();
                tasks.spawn_sweep(async move {
                    for c in clusters {
                        fence_returned_masters(&c, &work_dir, &handle, term).await;
                    }
                });
            }
            if let Some(term) = leading {
                for (name, c) in &state.clusters {
                    self.sample_replicas(name, c);
                    if tasks.busy(name) {
                        continue;
                    }
                    // Serialized with failovers: an unfence runs as this cluster's task, so
                    // no failover starts while it runs, and none is in flight when it starts.
                    let token = FencingToken {
                        cluster: name.clone(),
                        term,
                        epoch: c.epoch,
                    };
                    if let Some(task) = leases.unfence_task(name, c, &mut last_unfence, token) {
                        tasks.spawn_for(name, task);
                        continue;
                    }
                    // The same for keeping the replicas' heartbeat period.
                    let servers = || build_env(&c.spec, &self.work_dir).ok().map(|e| e.servers);
                    if let Some(task) = heartbeats.tick(c, servers) {
                        tasks.spawn_for(name, task);
                        continue;
                    }
                    let why = self.leader_duty(name, c, &mut tasks).await;
                    match why {
                        Some(why) if refused.get(name) != Some(&why) => {
                            tracing::info!(cluster = %name, "no failover: {why}");
                            refused.insert(name.clone(), why);
                        }
                        Some(_) => {}
                        None => {
                            refused.remove(name);
                        }
                    }
                }
            }
            tokio::select! {
                _ = self.handle.changed_since(applied, leader, REEVALUATE) => {}
                _ = stop.changed() => {}
            }
        }
        for (_, (_, _, s)) in monitors {
            let _ = s.send(true);
        }
        tasks.shutdown().await;
    }

    /// Keeps the leader's record of the replicas' streams current (see [`ReplicaWatch`]).
    ///
    /// [`ReplicaWatch`]: super::replica_watch::ReplicaWatch
    fn sample_replicas(&self, name: &str, c: &ClusterRecord) {
        let Some(master) = c.master.as_deref() else {
            return;
        };
        let Some(m) = c.spec.servers.iter().find(|s| s.name == master) else {
            return;
        };
        if !c.spec.settings.replica_confirmation {
            return;
        }
        let names: Vec<&str> = c.spec.servers.iter().map(|s| s.name.as_str()).collect();
        let key = format!("{master}/{}/{names:?}", c.epoch);
        let replicas = || {
            let env = build_env(&c.spec, &self.work_dir).ok()?;
            Some(
                env.servers
                    .into_iter()
                    .filter(|(n, _)| n != master)
                    .collect(),
            )
        };
        self.replica_watch
            .sample(name, key, (m.host.clone(), m.port), replicas);
    }

    /// What the leader does for one cluster; returns why no failover starts, if the master
    /// looks dead to someone but no failover may start.
    async fn leader_duty(
        &self,
        name: &str,
        c: &ClusterRecord,
        tasks: &mut LeaderTasks,
    ) -> Option<String> {
        if let Some(f) = c.failovers.iter().find(|f| f.finished.is_none()) {
            // An automatic failover to resume, or an operator's operation to run or resume.
            self.spawn_failover(name, &c.spec, Some(f.clone()), tasks);
            return None;
        }
        let Some(master) = &c.master else {
            if let Err(e) = self.discover_master(&c.spec).await {
                return Some(format!("master not known yet: {e:#}"));
            }
            return None;
        };
        let verdicts = manager_verdicts(c, master);
        if !verdicts.iter().any(|v| v.report.verdict == Verdict::Dead) {
            return None;
        }
        let voters: BTreeSet<u64> = self
            .handle
            .view()
            .members
            .iter()
            .filter(|(_, _, voter)| *voter)
            .map(|(id, _, _)| *id)
            .collect();
        let monitor = monitor_config(&c.spec);
        let mut quorum = quorum_config(&c.spec, &monitor);
        let now = now_ms();
        // Managers first (cheap, from the log); only then ask the replicas.
        quorum.replica_confirmation = false;
        if let Decision::NotDead(r) = decide(&quorum, &voters, c.epoch, &verdicts, now, &[]) {
            return Some(format!("{r:?}"));
        }
        quorum.replica_confirmation = c.spec.settings.replica_confirmation;
        let evidence = if quorum.replica_confirmation {
            let Ok(env) = build_env(&c.spec, &self.work_dir) else {
                return Some("cannot build connection settings".into());
            };
            let Some(m) = c.spec.servers.iter().find(|s| &s.name == master) else {
                return Some("master not in spec".into());
            };
            let replicas: Vec<(String, &MysqlServer)> = env
                .servers
                .iter()
                .filter(|(n, _)| *n != master)
                .map(|(n, s)| (n.clone(), s))
                .collect();
            let mut evidence =
                probe_replicas(&replicas, &m.host, m.port, monitor.check_timeout()).await;
            self.replica_watch.note(name, &mut evidence);
            evidence
        } else {
            Vec::new()
        };
        match decide(&quorum, &voters, c.epoch, &verdicts, now, &evidence) {
            Decision::NotDead(r) => return Some(format!("{r:?}")),
            Decision::MasterDead { supporters, .. } => {
                if c.paused {
                    return Some("failover is paused".into());
                }
                if let Some(last) = &c.last_failover {
                    let window = c.spec.settings.last_failover_minute * 60_000;
                    if !last.acknowledged && now.saturating_sub(last.finished_at_ms) < window {
                        return Some(format!(
                            "the last failover ({}) finished less than {} minutes ago and is not \
                             acknowledged: run `raftmha ack` (MHA's last_failover_minute)",
                            last.failover_id, c.spec.settings.last_failover_minute
                        ));
                    }
                }
                tracing::warn!(cluster = %name, ?supporters, "master {master} is dead by quorum");
            }
        }
        self.spawn_failover(name, &c.spec, None, tasks);
        None
    }

    fn spawn_failover(
        &self,
        name: &str,
        spec: &ClusterSpec,
        running: Option<crate::state::FailoverRecord>,
        tasks: &mut LeaderTasks,
    ) {
        let env = match build_env(spec, &self.work_dir) {
            Ok(env) => env,
            Err(e) => {
                tracing::error!(cluster = %name, "cannot fail over: {e:#}");
                return;
            }
        };
        let journal = RaftJournal { sup: self.clone() };
        let cluster = name.to_string();
        let progress: Progress = Arc::new(|line: &str| tracing::info!("{line}"));
        let (handle, metrics) = (self.handle.clone(), self.metrics.clone());
        let task = async move {
            if let Some(record) = running {
                match run_operation(&journal, &env, &cluster, &record, &progress).await {
                    Ok(summary) => tracing::info!("\n{summary}"),
                    Err(e) if is_deposed(&e) => {
                        tracing::warn!(cluster = %cluster, "{} {} stopped: {e:#}", record.kind(), record.id)
                    }
                    Err(e) => {
                        tracing::error!(cluster = %cluster, "{} {} failed: {e:#}", record.kind(), record.id)
                    }
                }
                return;
            }
            match run_failover(&journal, &env, &cluster, &progress).await {
                Ok(report) => tracing::info!("\n{}", report.render_text()),
                Err(e) if is_deposed(&e) => {
                    tracing::warn!(cluster = %cluster, "failover stopped: {e:#}")
                }
                Err(e) => tracing::error!(cluster = %cluster, "failover failed: {e:#}"),
            }
            if let Some(f) = handle
                .local_state()
                .1
                .clusters
                .get(&cluster)
                .and_then(|c| c.failovers.back())
                .filter(|f| f.finished.is_some())
            {
                super::metrics::record_failover(&metrics, &cluster, f);
            }
        };
        tasks.spawn_for(name, task);
    }

    /// A newly registered cluster's master: the one reachable server replicating from nobody.
    async fn discover_master(&self, spec: &ClusterSpec) -> anyhow::Result<()> {
        let env = build_env(spec, &self.work_dir)?;
        let mut masters = Vec::new();
        for (name, s) in &env.servers {
            if let Ok(Ok(None)) = tokio::time::timeout(env.probe_timeout, s.replica_status()).await
            {
                masters.push(name.clone());
            }
        }
        let [master] = masters.as_slice() else {
            anyhow::bail!("expected exactly one server that is not a replica, found {masters:?}");
        };
        self.propose(Command::SetInitialMaster {
            cluster: spec.name.clone(),
            server: master.clone(),
        })
        .await?;
        Ok(())
    }

    fn start_monitor(
        &self,
        spec: &ClusterSpec,
        master: &str,
        epoch: u64,
        reports: mpsc::Sender<(String, String, u64, VerdictReport)>,
        leases: &Leases,
    ) -> anyhow::Result<watch::Sender<bool>> {
        let cfg = monitor_config(spec);
        let m = spec
            .servers
            .iter()
            .find(|s| s.name == master)
            .context("master not in the cluster spec")?;
        let (user, password) = admin_credentials(spec)?;
        let server = super::metrics::TimedChecks {
            inner: MysqlServer::new(ConnectSettings {
                host: m.host.clone(),
                port: m.port,
                user,
                password,
                connect_timeout: cfg.check_timeout(),
                read_timeout: cfg.check_timeout(),
            }),
            metrics: self.metrics.clone(),
            cluster: spec.name.clone(),
            server: master.to_string(),
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let (tx, mut rx) = mpsc::channel(16);
        let (cluster, name) = (spec.name.clone(), master.to_string());
        tokio::spawn(async move {
            while let Some(report) = rx.recv().await {
                if reports
                    .send((cluster.clone(), name.clone(), epoch, report))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        let (alive_tx, alive_rx) = watch::channel(None);
        leases.spawn_renewals(&self.handle, self.id, spec, m, epoch, alive_rx);
        tokio::spawn(async move {
            let alive = Some(alive_tx);
            if let Err(e) =
                run_monitor_renewing(&server, &cfg, &SystemClock, tx, stop_rx, alive).await
            {
                tracing::error!("monitor not started: {e}");
            }
        });
        Ok(stop_tx)
    }
}

fn to_state_verdict(v: Verdict) -> crate::state::Verdict {
    match v {
        Verdict::Alive => crate::state::Verdict::Alive,
        Verdict::Suspect => crate::state::Verdict::Suspect,
        Verdict::Dead => crate::state::Verdict::Dead,
    }
}

/// The managers' latest verdicts about `master`, as the quorum rule reads them.
fn manager_verdicts(c: &ClusterRecord, master: &str) -> Vec<ManagerVerdict> {
    crate::failover::lease_lapse::journaled_verdicts(c, master)
}

pub fn monitor_config(spec: &ClusterSpec) -> MonitorConfig {
    let s = &spec.settings;
    let interval = Duration::from_millis(s.ping_interval_ms);
    MonitorConfig {
        ping_type: match s.ping_type {
            cluster_file::PingType::Select => PingType::Select,
            cluster_file::PingType::Connect => PingType::Connect,
            cluster_file::PingType::Insert => PingType::Insert,
        },
        interval,
        suspect_interval: interval.min(Duration::from_millis(100)),
        failures_to_dead: s.ping_failures,
        reaffirm_every: interval.max(Duration::from_millis(1000)),
    }
}

fn quorum_config(spec: &ClusterSpec, monitor: &MonitorConfig) -> QuorumConfig {
    let d = QuorumConfig::default();
    QuorumConfig {
        freshness: d
            .freshness
            .max(monitor.reaffirm_every + monitor.interval * 3),
        replica_confirmation: spec.settings.replica_confirmation,
        ..d
    }
}
