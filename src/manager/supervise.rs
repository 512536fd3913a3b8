//! Detection and failover wired into the daemon: the reconciler's runtime.
//!
//! Every manager runs one monitor per registered cluster's current master and commits each
//! verdict report to the Raft log (forwarded to the leader when it is not the leader). The
//! leader re-evaluates on every applied entry (and at least every 100 ms, because verdicts
//! go stale with time): [`super::duties::analyze`] decides each cluster's duty from the
//! replicated state (resume a run, discover the master, confirm a dead master with its
//! replicas, fail over, or hold back and say why), and this file performs it as a
//! leader-scoped task ([`LeaderTasks`]: aborted when the leadership is lost, awaited on
//! shutdown), like the sweep that keeps failed-over masters read-only.
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use raftmha_node::agent::client::FencingToken;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::duties::{
    Duty, analyze, failover_decision, monitor_config, returned_masters, still_returned,
};
use super::leader_tasks::LeaderTasks;
use super::lease::Leases;
use super::raft_journal::{Proposer, RaftJournal};
use super::resolve::{admin_credentials, build_env};
use crate::api::auth::AuthToken;
use crate::api::server::now_ms;
use crate::db::{ConnectSettings, DbServer, MysqlServer};
use crate::detect::{
    ReplicaEvidence, SystemClock, Verdict, VerdictReport, probe_replicas, run_monitor_renewing,
};
use crate::failover::engine::run_failover;
use crate::failover::operation::run_operation;
use crate::failover::runner::{Progress, is_deposed};
use crate::raft::handle::RaftHandle;
use crate::state::cluster_file::ClusterSpec;
use crate::state::{ClusterRecord, Command, CommandResult, FailoverRecord};

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
    let old = returned_masters(c);
    if old.is_empty() {
        return;
    }
    // `c` may be older than the last applied entry: ask the applied state again right before
    // fencing, so a server a switchover just promoted is never made read-only.
    let still_old = |name: &str| {
        now.local_state()
            .1
            .clusters
            .get(&c.spec.name)
            .is_some_and(|c| still_returned(c, name))
    };
    let Ok(env) = build_env(&c.spec, work_dir) else {
        return;
    };
    for name in &old {
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

impl Supervisor {
    /// This manager's way into the log (forwarding plain requests when it does not lead).
    pub fn proposer(&self) -> Proposer {
        Proposer {
            handle: self.handle.clone(),
            id: self.id,
            token: self.token.clone(),
            local_ip: self.local_ip,
        }
    }

    async fn propose(&self, command: Command) -> anyhow::Result<CommandResult> {
        self.proposer().propose(command).await
    }

    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let (reports_tx, mut reports_rx) =
            mpsc::channel::<(String, String, u64, VerdictReport)>(256);
        let reporter = self.clone();
        // Every manager's own tasks (monitors, their forwarders, the reporter): ended and
        // awaited when the supervisor stops.
        let mut background = JoinSet::new();
        background.spawn(async move {
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
        let holds = Arc::new(Holds::default());
        let leases = Leases::default();
        let heartbeats = super::heartbeat::HeartbeatKeeper::default();
        let mut last_unfence: BTreeMap<String, tokio::time::Instant> = BTreeMap::new();
        let mut last_fence_sweep = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                break;
            }
            while background.try_join_next().is_some() {}
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
                let started = self.start_monitor(
                    &c.spec,
                    master,
                    c.epoch,
                    reports_tx.clone(),
                    &leases,
                    &mut background,
                );
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
                let (voters, now) = (self.voters(), now_ms());
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
                    let duty = analyze(c, &voters, now);
                    // Duties performed by a task note their own hold.
                    let held = matches!(
                        duty,
                        Duty::ConfirmWithReplicas { .. } | Duty::DiscoverMaster
                    );
                    let why = self.perform(name, c, duty, &mut tasks, &holds);
                    if !held {
                        holds.note(name, why);
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
        background.abort_all();
        while background.join_next().await.is_some() {}
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

    /// The Raft voters (the managers whose verdicts count).
    fn voters(&self) -> BTreeSet<u64> {
        self.handle
            .view()
            .members
            .iter()
            .filter(|(_, _, voter)| *voter)
            .map(|(id, _, _)| *id)
            .collect()
    }

    /// Performs `duty` for cluster `name` (see [`analyze`]) as a leader-scoped task of the
    /// cluster; returns why no failover starts, if it is held back.
    fn perform(
        &self,
        name: &str,
        c: &ClusterRecord,
        duty: Duty,
        tasks: &mut LeaderTasks,
        holds: &Arc<Holds>,
    ) -> Option<String> {
        match duty {
            Duty::Idle => None,
            Duty::Hold(why) => Some(why),
            // An automatic failover to resume, or an operator's operation to run or resume.
            Duty::Run(f) => {
                self.spawn_failover(name, &c.spec, Some(*f), tasks);
                None
            }
            Duty::FailOver { master, supporters } => {
                tracing::warn!(cluster = %name, ?supporters, "master {master} is dead by quorum");
                self.spawn_failover(name, &c.spec, None, tasks);
                None
            }
            Duty::DiscoverMaster => {
                let (sup, spec, holds) = (self.clone(), c.spec.clone(), holds.clone());
                tasks.spawn_for(name, async move {
                    let why = sup.discover_master(&spec).await.err();
                    holds.note(
                        &spec.name,
                        why.map(|e| format!("master not known yet: {e:#}")),
                    );
                });
                None
            }
            Duty::ConfirmWithReplicas { master } => {
                let (sup, c, holds) = (self.clone(), c.clone(), holds.clone());
                let voters = self.voters();
                tasks.spawn_for(name, async move {
                    let name = c.spec.name.clone();
                    let evidence = match sup.replica_evidence(&c, &master).await {
                        Ok(e) => e,
                        Err(why) => return holds.note(&name, Some(why)),
                    };
                    match failover_decision(&c, &voters, now_ms(), &evidence) {
                        Err(why) => holds.note(&name, Some(why)),
                        Ok(supporters) => {
                            holds.note(&name, None);
                            tracing::warn!(cluster = %name, ?supporters, "master {master} is dead by quorum");
                            // Within this task: the cluster stays busy until the run ends.
                            sup.failover_task(&name, &c.spec, None).await;
                        }
                    }
                });
                None
            }
        }
    }

    /// What the replicas of `master` say about it (their stream, and the leader's record of
    /// it between evaluations).
    async fn replica_evidence(
        &self,
        c: &ClusterRecord,
        master: &str,
    ) -> Result<Vec<ReplicaEvidence>, String> {
        let Ok(env) = build_env(&c.spec, &self.work_dir) else {
            return Err("cannot build connection settings".into());
        };
        let Some(m) = c.spec.servers.iter().find(|s| s.name == master) else {
            return Err("master not in spec".into());
        };
        let replicas: Vec<(String, &MysqlServer)> = env
            .servers
            .iter()
            .filter(|(n, _)| *n != master)
            .map(|(n, s)| (n.clone(), s))
            .collect();
        let monitor = monitor_config(&c.spec);
        let mut evidence =
            probe_replicas(&replicas, &m.host, m.port, monitor.check_timeout()).await;
        self.replica_watch.note(&c.spec.name, &mut evidence);
        Ok(evidence)
    }

    fn spawn_failover(
        &self,
        name: &str,
        spec: &ClusterSpec,
        running: Option<FailoverRecord>,
        tasks: &mut LeaderTasks,
    ) {
        let (sup, spec, cluster) = (self.clone(), spec.clone(), name.to_string());
        tasks.spawn_for(name, async move {
            sup.failover_task(&cluster, &spec, running).await
        });
    }

    /// Runs (or resumes) `running`, or starts the failover of the cluster's master.
    async fn failover_task(
        &self,
        cluster: &str,
        spec: &ClusterSpec,
        running: Option<FailoverRecord>,
    ) {
        let env = match build_env(spec, &self.work_dir) {
            Ok(env) => env,
            Err(e) => {
                tracing::error!(cluster = %cluster, "cannot fail over: {e:#}");
                return;
            }
        };
        let journal = RaftJournal::new(self.proposer());
        let progress: Progress = Arc::new(|line: &str| tracing::info!("{line}"));
        if let Some(record) = running {
            match run_operation(&journal, &env, cluster, &record, &progress).await {
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
        match run_failover(&journal, &env, cluster, &progress).await {
            Ok(report) => tracing::info!("\n{}", report.render_text()),
            Err(e) if is_deposed(&e) => {
                tracing::warn!(cluster = %cluster, "failover stopped: {e:#}")
            }
            Err(e) => tracing::error!(cluster = %cluster, "failover failed: {e:#}"),
        }
        if let Some(f) = self
            .handle
            .local_state()
            .1
            .clusters
            .get(cluster)
            .and_then(|c| c.failovers.back())
            .filter(|f| f.finished.is_some())
        {
            super::metrics::record_failover(&self.metrics, cluster, f);
        }
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
        background: &mut JoinSet<()>,
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
        background.spawn(async move {
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
        background.spawn(async move {
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

/// Why each cluster's failover is held back, logged once per change.
#[derive(Default)]
pub struct Holds(std::sync::Mutex<BTreeMap<String, String>>);

impl Holds {
    pub fn note(&self, cluster: &str, why: Option<String>) {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match why {
            Some(why) if held.get(cluster) != Some(&why) => {
                tracing::info!(cluster = %cluster, "no failover: {why}");
                held.insert(cluster.to_string(), why);
            }
            Some(_) => {}
            None => {
                held.remove(cluster);
            }
        }
    }
}

fn to_state_verdict(v: Verdict) -> crate::state::Verdict {
    match v {
        Verdict::Alive => crate::state::Verdict::Alive,
        Verdict::Suspect => crate::state::Verdict::Suspect,
        Verdict::Dead => crate::state::Verdict::Dead,
    }
}
