//! Faults aimed at a run in flight (a failover or a switchover), each timed on the run's
//! journal as the managers' admin API shows it (linearizable reads): pause the manager that
//! owns the run mid-way and resume it as soon as a new owner took the run over, or kill the
//! new master right after its promotion is journaled.
use std::time::{Duration, Instant};

use anyhow::Result;
use mysql_async::prelude::Queryable;
use raftmha::api::client::AdminClient;
use raftmha::state::{
    ClusterRecord, Command, CommandResult, FailoverRecord, Operation, RunOwner, StepPhase,
    SwitchLimits,
};

use crate::history::{NemesisAction, NemesisOutcome};
use crate::nemesis::{Nemesis, record, signal};
use crate::scenario::Fault;
use crate::system::CLUSTER;

/// How often the journal is read while a fault waits for its moment.
const POLL: Duration = Duration::from_millis(10);
/// How long a paused owner waits for a successor to take its run over.
const TAKEOVER_WITHIN: Duration = Duration::from_secs(30);
/// How long a fault waits for its run to reach its moment: detection plus a failover of a
/// debug build on a loaded machine (seen: 8 s and more), whatever the hold drawn.
const MOMENT_WITHIN: Duration = Duration::from_secs(40);

/// How far a run must have gone before its owner is paused (drawn per run from the seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A step with effects has its result (a fencing step; the switchover's blocking step).
    FirstEffect,
    /// The plan is journaled and the run is past its first effects.
    Planned,
    /// The new master was made writable (failover) or recorded (switchover).
    Promoted,
}

impl Stage {
    /// The stage for a run of `seed`: seeds 1, 2, 3 (`matrix --full`) cover every stage. A
    /// GTID failover has little left after its new master is writable (one repoint per
    /// replica): too short a moment to aim at.
    pub fn for_seed(seed: u64, short_tail: bool) -> Stage {
        let stages: &[Stage] = if short_tail {
            &[Stage::FirstEffect, Stage::Planned]
        } else {
            &[Stage::FirstEffect, Stage::Planned, Stage::Promoted]
        };
        stages[(seed.saturating_sub(1) % stages.len() as u64) as usize]
    }

    fn reached(self, c: &ClusterRecord, f: &FailoverRecord) -> bool {
        let results = |pred: &dyn Fn(&str) -> bool| {
            f.steps
                .iter()
                .filter(|s| s.phase == StepPhase::Result && pred(&s.step))
                .count()
        };
        let switch = matches!(f.operation, Some(Operation::Switchover { .. }));
        match (self, switch) {
            (Stage::FirstEffect, false) => results(&|s| s.starts_with("fence.")) > 0,
            (Stage::FirstEffect, true) => f.steps.iter().any(|s| s.step == "sw.catch-up"),
            (Stage::Planned, false) => {
                results(&|s| s == "plan") > 0 && results(&|s| s.starts_with("step.")) > 0
            }
            (Stage::Planned, true) => results(&|s| s == "sw.catch-up") > 0,
            (Stage::Promoted, false) => raftmha::failover::timing::promoted_at(f).is_some(),
            (Stage::Promoted, true) => c.epoch > f.epoch,
        }
    }
}

/// The newest record of the cluster with an id above `after`.
fn run_after(c: &ClusterRecord, after: u64) -> Option<&FailoverRecord> {
    c.failovers
        .iter()
        .filter(|f| f.id > after)
        .max_by_key(|f| f.id)
}

fn describe(f: &FailoverRecord) -> String {
    let results = f
        .steps
        .iter()
        .filter(|s| s.phase == StepPhase::Result)
        .count();
    let last = f.steps.last().map_or("none", |s| s.step.as_str());
    format!(
        "{} {} after {results} journal results (last entry: {last})",
        f.kind(),
        f.id
    )
}

/// Waits until the journal shows run `id` owned by someone else than `owner`. The paused
/// owner is left out, and reads overlap (a new one every [`POLL`], each bounded): while the
/// managers elect a new leader a read may hang, and the takeover must be seen at once, not
/// after the new owner finished the run.
async fn watch_takeover(
    live: Vec<AdminClient>,
    id: u64,
    owner: RunOwner,
    within: Duration,
) -> Result<FailoverRecord, String> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<FailoverRecord>();
    let deadline = tokio::time::Instant::now() + within;
    let mut ticker = tokio::time::interval(POLL);
    let mut n = 0usize;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if tokio::time::Instant::now() > deadline {
                    return Err(format!("no takeover of run {id} within {within:?}"));
                }
                let client = live[n % live.len().max(1)].clone();
                n += 1;
                let tx = tx.clone();
                tokio::spawn(async move {
                    let Ok((mut state, _)) = client.read_state().await else {
                        return;
                    };
                    let run = state
                        .clusters
                        .remove(CLUSTER)
                        .and_then(|c| c.failovers.into_iter().find(|f| f.id == id));
                    if let Some(f) = run {
                        let _ = tx.send(f);
                    }
                });
            }
            Some(f) = rx.recv() => {
                if f.owner.is_some_and(|o| o != owner) {
                    return Ok(f);
                }
            }
        }
    }
}

impl Nemesis<'_> {
    /// SIGSTOP the master's mysqld and agent together (a frozen host), resumed 200 ms after
    /// the failover completes, or after `hold` at the latest.
    pub(crate) async fn freeze_host(
        &self,
        fault: Fault,
        index: usize,
        hold: Duration,
    ) -> Result<()> {
        let node = self.sb.node(index)?;
        // The address too: the checker matches the frozen host's observations by it.
        let name = format!("{} ({}:{})", node.name, node.ip, node.port);
        let agent_pid = self.system.agents.pid(&node.name);
        let (Some(db), Some(agent)) = (self.sb.pid(index)?, agent_pid) else {
            record(
                self.rec,
                fault,
                NemesisAction::Start,
                NemesisOutcome::Skipped,
                format!("{name} or its agent is not running"),
            );
            return Ok(());
        };
        let agent = i32::try_from(agent)?;
        signal(db, libc::SIGSTOP);
        signal(agent, libc::SIGSTOP);
        record(
            self.rec,
            fault,
            NemesisAction::Start,
            NemesisOutcome::Installed,
            format!("SIGSTOP {name} (pid {db}) and its agent (pid {agent})"),
        );
        // Resume right after the promotion is recorded (the moment the issue is about), and
        // never later than `hold`, below rpl_semi_sync_master_timeout: a commit already waiting
        // when the host froze must not outlive that timeout (see check-repl's profile).
        let until = tokio::time::Instant::now() + hold;
        let before = self.cluster().await.map(|c| c.epoch);
        while tokio::time::Instant::now() < until {
            let epoch = self.cluster().await.map(|c| c.epoch);
            if before.is_some() && epoch > before {
                tokio::time::sleep(Duration::from_millis(200)).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        signal(db, libc::SIGCONT);
        signal(agent, libc::SIGCONT);
        record(
            self.rec,
            fault,
            NemesisAction::Stop,
            NemesisOutcome::Installed,
            format!("SIGCONT {name} and its agent"),
        );
        Ok(())
    }

    pub(crate) async fn cluster(&self) -> Option<ClusterRecord> {
        crate::system::read_state(&self.clients)
            .await?
            .clusters
            .remove(CLUSTER)
    }

    /// Stops the replicas' IO threads 300 and 150 ms before the master dies while writes go
    /// on (as `bench failover --lagging` does), so a file/position failover needs relay-log
    /// diffs and the dead master's saved tail.
    async fn lag_replicas(&self, others: &[usize]) {
        for node in others {
            if let Ok(mut c) = self.sb.conn(*node).await {
                let _ = c.query_drop("STOP SLAVE IO_THREAD").await;
                let _ = c.disconnect().await;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Starts a run: kills the master (a failover), or asks for a switchover of `master` to
    /// `target` as `raftmha switch` does. Returns the last record id before it, or why not.
    async fn start_run(
        &mut self,
        fault: Fault,
        master: usize,
        target: usize,
        others: &[usize],
    ) -> Result<(u64, String), String> {
        let c = self.cluster().await.ok_or("no manager answered")?;
        let last = c.failovers.iter().map(|f| f.id).max().unwrap_or(0);
        let name = self
            .sb
            .node(master)
            .map_err(|e| e.to_string())?
            .name
            .clone();
        if fault == Fault::PauseLeaderMidSwitchover {
            let new_master = self
                .sb
                .node(target)
                .map_err(|e| e.to_string())?
                .name
                .clone();
            let leader = self.leader().await.ok_or("no agreed manager leader")?;
            let client = self.system.managers.client(leader).forwarding();
            let cmd = Command::OperationStarted {
                cluster: CLUSTER.into(),
                server: name.clone(),
                epoch: c.epoch,
                operation: Operation::Switchover {
                    new_master: new_master.clone(),
                    orig_master_is_new_slave: true,
                    limits: SwitchLimits::default(),
                },
            };
            return match client.write(&cmd).await {
                Ok((CommandResult::Ok { .. }, _)) => {
                    Ok((last, format!("switchover {name} -> {new_master} asked")))
                }
                Ok((other, _)) => Err(format!("switchover refused: {other}")),
                Err(e) => Err(format!("switchover not asked: {e}")),
            };
        }
        if self.lag_replicas_first {
            self.lag_replicas(others).await;
        }
        self.sb
            .kill_node(master)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let lag = if self.lag_replicas_first {
            " (replicas' IO threads stopped 300/150 ms before)"
        } else {
            ""
        };
        Ok((last, format!("SIGKILL {name}{lag}")))
    }

    /// Waits (up to `within`) until the run after record `after` satisfies `ready`; `Err` with
    /// why not (it finished first, or never started).
    async fn wait_run(
        &self,
        after: u64,
        within: Duration,
        ready: impl Fn(&ClusterRecord, &FailoverRecord) -> bool,
    ) -> Result<(ClusterRecord, FailoverRecord), String> {
        let deadline = Instant::now() + within;
        let mut seen: Option<String> = None;
        while Instant::now() < deadline {
            if let Some(c) = self.cluster().await
                && let Some(f) = run_after(&c, after)
            {
                if ready(&c, f) {
                    let f = f.clone();
                    return Ok((c, f));
                }
                if f.finished.is_some() {
                    return Err(format!("{} ended before its moment", describe(f)));
                }
                seen = Some(describe(f));
            }
            tokio::time::sleep(POLL).await;
        }
        Err(match seen {
            Some(s) => format!("{s}: its moment did not come within {within:?}"),
            None => format!("no run started within {within:?}"),
        })
    }

    fn skipped(&self, fault: Fault, detail: String) {
        record(
            self.rec,
            fault,
            NemesisAction::Start,
            NemesisOutcome::Skipped,
            detail,
        );
    }

    /// Starts a run ([`Self::start_run`]) and waits for its moment (`ready`); a run that
    /// does not start, or ends first, records the fault as skipped and gives `None`.
    async fn run_to_moment(
        &mut self,
        fault: Fault,
        (master, target, others): (usize, usize, &[usize]),
        hold: Duration,
        ready: impl Fn(&ClusterRecord, &FailoverRecord) -> bool,
    ) -> Option<(String, ClusterRecord, FailoverRecord)> {
        let (after, started) = match self.start_run(fault, master, target, others).await {
            Ok(s) => s,
            Err(why) => {
                self.skipped(fault, why);
                return None;
            }
        };
        match self.wait_run(after, hold.max(MOMENT_WITHIN), ready).await {
            Ok((c, f)) => Some((started, c, f)),
            Err(why) => {
                self.skipped(fault, format!("{started}; {why}"));
                None
            }
        }
    }

    /// Pause the owner of a failover (or switchover) mid-way; SIGCONT it as soon as the
    /// journal shows a new owner took the run over.
    pub(crate) async fn pause_owner_mid_run(
        &mut self,
        fault: Fault,
        master: usize,
        others: &[usize],
        pick: usize,
        hold: Duration,
    ) -> Result<()> {
        let gtid_failover = fault == Fault::PauseLeaderMidFailover && !self.lag_replicas_first;
        let stage = Stage::for_seed(self.seed, gtid_failover);
        let target = others[pick % others.len().max(1)];
        let ready = |c: &ClusterRecord, f: &FailoverRecord| {
            f.finished.is_none() && f.owner.is_some() && stage.reached(c, f)
        };
        let moment = self
            .run_to_moment(fault, (master, target, others), hold, ready)
            .await;
        let Some((started, _, f)) = moment else {
            return Ok(());
        };
        let Some(owner) = f.owner else {
            return Ok(());
        };
        let Some(pid) = self.system.managers.pid(owner.manager) else {
            let detail = format!("{started}; manager{} (owner) is not running", owner.manager);
            self.skipped(fault, detail);
            return Ok(());
        };
        signal(pid as i32, libc::SIGSTOP);
        let paused_at = Instant::now();
        record(
            self.rec,
            fault,
            NemesisAction::Start,
            NemesisOutcome::Installed,
            format!(
                "{started}; SIGSTOP manager{} ({owner}, owner of {}) at {stage:?}",
                owner.manager,
                describe(&f)
            ),
        );
        let id = f.id;
        let live: Vec<AdminClient> = [1u64, 2, 3]
            .into_iter()
            .filter(|m| *m != owner.manager)
            .map(|m| {
                self.system
                    .managers
                    .client_with_timeout(m, Duration::from_millis(300))
            })
            .collect();
        let outcome = watch_takeover(live, id, owner, TAKEOVER_WITHIN).await;
        signal(pid as i32, libc::SIGCONT);
        let waited = paused_at.elapsed().as_millis();
        let (how, detail) = match outcome {
            Ok(g) => (
                NemesisOutcome::Installed,
                format!(
                    "SIGCONT manager{} {waited} ms after the pause: {} took {} {id} over ({})",
                    owner.manager,
                    g.owner.map_or("?".into(), |o| o.to_string()),
                    g.kind(),
                    if g.finished.is_some() {
                        "already finished"
                    } else {
                        "still running"
                    }
                ),
            ),
            Err(why) => (
                NemesisOutcome::Indeterminate,
                format!(
                    "SIGCONT manager{} after {waited} ms without a takeover: {why}",
                    owner.manager
                ),
            ),
        };
        record(self.rec, fault, NemesisAction::Stop, how, detail);
        Ok(())
    }

    /// Kill the master; SIGKILL the new master as soon as the journal records its promotion
    /// while the failover still runs (its remaining replica steps). It stays down until
    /// healing restarts it.
    pub(crate) async fn kill_new_master_in_cleanup(
        &mut self,
        master: usize,
        others: &[usize],
        hold: Duration,
    ) -> Result<()> {
        let fault = Fault::KillNewMasterInCleanup;
        let promoted = |c: &ClusterRecord, f: &FailoverRecord| {
            f.finished.is_none() && c.epoch > f.epoch && c.master.is_some()
        };
        let moment = self
            .run_to_moment(fault, (master, others[0], others), hold, promoted)
            .await;
        let Some((started, c, f)) = moment else {
            return Ok(());
        };
        let new_master = c.master.clone().unwrap_or_default();
        let Some(node) = self.sb.nodes().iter().find(|n| n.name == new_master) else {
            return Ok(());
        };
        let index = node.index;
        match self.sb.kill_node(index).await {
            Ok(()) => record(
                self.rec,
                fault,
                NemesisAction::Start,
                NemesisOutcome::Installed,
                format!(
                    "{started}; SIGKILL {new_master}, recorded master at epoch {}, during {}",
                    c.epoch,
                    describe(&f)
                ),
            ),
            Err(e) => record(
                self.rec,
                fault,
                NemesisAction::Start,
                NemesisOutcome::Skipped,
                format!("{started}; SIGKILL {new_master}: {e:#}"),
            ),
        }
        Ok(())
    }
}
