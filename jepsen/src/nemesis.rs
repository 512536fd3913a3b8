//! The nemesis: installs one fault, holds it, heals it, and records each step as installed /
//! skipped (with the reason) / indeterminate.
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use raftmha::api::client::AdminClient;
use raftmha::chaos::NetFaults;
use raftmha::sandbox::Sandbox;
use rand::Rng;
use rand::rngs::StdRng;

use crate::history::{Event, FailoverPhase, NemesisAction, NemesisOutcome};
use crate::recorder::Recorder;
use crate::scenario::{Fault, Scenario};
use crate::system::{CLUSTER, System};

pub struct Nemesis<'a> {
    pub sb: &'a Sandbox,
    pub faults: &'a NetFaults,
    pub system: &'a mut System,
    pub clients: Vec<AdminClient>,
    pub rec: &'a NemesisLog,
    /// Stop the replicas' IO threads shortly before the master is killed (file/position
    /// scenarios that need relay-log diffs and the saved tail).
    pub lag_replicas_first: bool,
    /// The run's seed (faults aimed at a run pick their moment by it).
    pub seed: u64,
}

/// The history recorder, remembering which faults installed at least once: a fault whose
/// turn came while it could not install (e.g. "pause the master" while the master is dead
/// and not failed over yet) is tried again, so a run covers every fault it requires.
pub struct NemesisLog {
    rec: Recorder,
    installed: std::sync::Mutex<std::collections::BTreeSet<&'static str>>,
}

impl NemesisLog {
    pub fn new(rec: Recorder) -> Self {
        NemesisLog {
            rec,
            installed: Default::default(),
        }
    }

    fn installed(&self, fault: Fault) -> bool {
        self.installed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(fault.name())
    }
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a pid of a process this run started (mariadbd or a manager).
    unsafe {
        libc::kill(pid, sig);
    }
}

pub(crate) fn record(
    log: &NemesisLog,
    fault: Fault,
    action: NemesisAction,
    outcome: NemesisOutcome,
    detail: String,
) {
    if (action, outcome) == (NemesisAction::Start, NemesisOutcome::Installed) {
        log.installed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(fault.name());
    }
    let rec = &log.rec;
    rec.record(Event::Nemesis {
        fault: fault.name().into(),
        action,
        outcome,
        detail,
    });
}

impl Nemesis<'_> {
    /// Runs the scenario's faults until `duration` has passed: each kind until it installed
    /// once (coverage; bounded to a few extra attempts after `duration`), random ones drawn
    /// from the seeded generator otherwise.
    pub async fn run(
        &mut self,
        scenario: &Scenario,
        rng: &mut StdRng,
        duration: Duration,
    ) -> Result<()> {
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(1000)).await; // warm-up: writes flow first
        if scenario.faults.is_empty() {
            tokio::time::sleep(duration.saturating_sub(start.elapsed())).await;
            return Ok(());
        }
        let max_steps_after_duration = 3 * scenario.faults.len();
        let mut late_steps = 0;
        let mut tried = std::collections::BTreeSet::new();
        loop {
            // A fault aimed at a run happens once: it needs a failover (or switchover) the
            // cluster can have only once inside the anti-flapping window.
            if scenario
                .faults
                .iter()
                .all(|f| f.one_shot() && tried.contains(f.name()))
            {
                tokio::time::sleep(duration.saturating_sub(start.elapsed())).await;
                break;
            }
            let missing = scenario
                .faults
                .iter()
                .copied()
                .filter(|f| !(f.one_shot() && tried.contains(f.name())))
                .find(|f| !self.rec.installed(*f));
            if start.elapsed() >= duration {
                if missing.is_none() || late_steps >= max_steps_after_duration {
                    break;
                }
                late_steps += 1;
            }
            let fault = missing
                .unwrap_or_else(|| scenario.faults[rng.random_range(0..scenario.faults.len())]);
            let hold = fault.hold(rng);
            let pick = rng.random_range(0..1000usize);
            tried.insert(fault.name());
            self.inject(fault, pick, hold).await?;
            tokio::time::sleep(Duration::from_millis(rng.random_range(300..1200))).await;
        }
        Ok(())
    }

    /// The master's node index per the replicated state (node 1 when no manager answers).
    async fn master_index(&self) -> usize {
        let state = crate::system::read_state(&self.clients).await;
        let name = state.and_then(|s| s.clusters.get(CLUSTER).and_then(|c| c.master.clone()));
        self.sb
            .nodes()
            .iter()
            .find(|n| Some(&n.name) == name.as_ref())
            .map_or(1, |n| n.index)
    }

    pub(crate) async fn leader(&self) -> Option<u64> {
        self.system.managers.agreed_leader(&[1, 2, 3]).await
    }

    /// The agreed manager leader for a fault aimed at it; without one the fault is recorded
    /// as skipped.
    async fn leader_for(&self, fault: Fault) -> Option<u64> {
        let leader = self.leader().await;
        if leader.is_none() {
            record(
                self.rec,
                fault,
                NemesisAction::Start,
                NemesisOutcome::Skipped,
                "no agreed manager leader".into(),
            );
        }
        leader
    }

    fn manager_ip(&self, id: u64) -> Result<Ipv4Addr> {
        let ip = self.system.managers.ip(id);
        ip.parse()
            .with_context(|| format!("manager {id} address {ip:?} is not IPv4"))
    }

    /// Drops what manager `a` sends to manager `b`.
    fn cut_one(&self, a: u64, b: u64) -> Result<()> {
        self.faults.cut(&format!("manager{a}"), self.manager_ip(b)?)
    }

    fn cut_both(&self, a: u64, b: u64) -> Result<()> {
        self.cut_one(a, b)?;
        self.cut_one(b, a)
    }

    async fn heal_net(&self, fault: Fault) {
        match self.faults.heal() {
            Ok(()) => record(
                self.rec,
                fault,
                NemesisAction::Stop,
                NemesisOutcome::Installed,
                "healed".into(),
            ),
            Err(e) => record(
                self.rec,
                fault,
                NemesisAction::Stop,
                NemesisOutcome::Indeterminate,
                format!("{e:#}"),
            ),
        }
    }

    /// Installs a partition made of `cuts` (all or nothing), holds it, heals it.
    async fn partition(&self, fault: Fault, hold: Duration, describe: String, cuts: Result<()>) {
        match cuts {
            Ok(()) => record(
                self.rec,
                fault,
                NemesisAction::Start,
                NemesisOutcome::Installed,
                describe,
            ),
            Err(e) => {
                let _ = self.faults.heal();
                record(
                    self.rec,
                    fault,
                    NemesisAction::Start,
                    NemesisOutcome::Skipped,
                    format!("{e:#}"),
                );
                return;
            }
        }
        tokio::time::sleep(hold).await;
        self.heal_net(fault).await;
    }

    async fn inject(&mut self, fault: Fault, pick: usize, hold: Duration) -> Result<()> {
        let rec = self.rec;
        let master = self.master_index().await;
        let others: Vec<usize> = self
            .sb
            .nodes()
            .iter()
            .map(|n| n.index)
            .filter(|i| *i != master)
            .collect();
        let replica = others[pick % others.len().max(1)];
        let master_node = self.sb.node(master)?.clone();
        match fault {
            Fault::KillReplica => self.kill_db(fault, replica, Some(hold)).await?,
            Fault::KillMaster => self.kill_db(fault, master, None).await?,
            Fault::PauseReplica => self.pause_db(fault, replica, hold).await?,
            Fault::PauseMasterBriefly | Fault::PauseMasterLong => {
                self.pause_db(fault, master, hold).await?
            }
            Fault::FreezeMasterHost => self.freeze_host(fault, master, hold).await?,
            Fault::PartitionReplicaFromMaster => {
                let node = self.sb.node(replica)?.name.clone();
                let cuts = self.faults.cut(&node, master_node.ip);
                self.partition(
                    fault,
                    hold,
                    format!("{node} -x-> {}", master_node.addr()),
                    cuts,
                )
                .await;
            }
            Fault::PartitionMasterFromAll => {
                let mut cuts = Ok(());
                for id in 1..=3 {
                    cuts = cuts
                        .and_then(|()| self.faults.cut(&format!("manager{id}"), master_node.ip));
                }
                for r in &others {
                    let name = self.sb.node(*r)?.name.clone();
                    cuts = cuts.and_then(|()| self.faults.cut(&name, master_node.ip));
                }
                let d = format!("managers and replicas -x-> {}", master_node.ip);
                self.partition(fault, hold, d, cuts).await;
            }
            Fault::IsolateMasterFromManagers => {
                let mut cuts = Ok(());
                for id in 1..=3 {
                    cuts = cuts
                        .and_then(|()| self.faults.cut(&format!("manager{id}"), master_node.ip));
                }
                self.partition(
                    fault,
                    hold,
                    format!("managers -x-> {}", master_node.ip),
                    cuts,
                )
                .await;
            }
            Fault::IsolateMasterFromMinority => {
                let id = (pick % 3) as u64 + 1;
                let cuts = self.faults.cut(&format!("manager{id}"), master_node.ip);
                self.partition(
                    fault,
                    hold,
                    format!("manager{id} -x-> {}", master_node.ip),
                    cuts,
                )
                .await;
            }
            Fault::KillManagerLeader
            | Fault::PauseManagerLeader
            | Fault::KillManagerFollower
            | Fault::PauseManagerFollower => {
                let Some(leader) = self.leader_for(fault).await else {
                    return Ok(());
                };
                let target = match fault {
                    Fault::KillManagerLeader | Fault::PauseManagerLeader => leader,
                    _ => [1u64, 2, 3]
                        .into_iter()
                        .filter(|i| *i != leader)
                        .nth(pick % 2)
                        .unwrap_or(1),
                };
                let kill = matches!(fault, Fault::KillManagerLeader | Fault::KillManagerFollower);
                self.fault_manager(fault, target, kill, hold).await;
            }
            Fault::IsolateManagerLeader | Fault::MajoritiesRing | Fault::OneWayLeaderToFollower => {
                let Some(leader) = self.leader_for(fault).await else {
                    return Ok(());
                };
                let followers: Vec<u64> =
                    [1u64, 2, 3].into_iter().filter(|i| *i != leader).collect();
                let f = followers[pick % followers.len()];
                let (cuts, d) = match fault {
                    Fault::IsolateManagerLeader => (
                        followers.iter().try_for_each(|f| self.cut_both(leader, *f)),
                        format!("manager{leader} <-x-> {followers:?}"),
                    ),
                    Fault::MajoritiesRing => (
                        self.cut_both(leader, f),
                        format!("manager{leader} <-x-> manager{f}"),
                    ),
                    _ => (
                        self.cut_one(leader, f),
                        format!("manager{leader} -x-> manager{f}"),
                    ),
                };
                self.partition(fault, hold, d, cuts).await;
            }
            Fault::RestartAllManagers => {
                for id in 1..=3 {
                    self.system.managers.kill(id);
                }
                record(
                    rec,
                    fault,
                    NemesisAction::Start,
                    NemesisOutcome::Installed,
                    "SIGKILL managers 1-3".into(),
                );
                tokio::time::sleep(hold).await;
                self.system.managers.start_all();
                record(
                    rec,
                    fault,
                    NemesisAction::Stop,
                    NemesisOutcome::Installed,
                    "started managers 1-3".into(),
                );
            }
            Fault::KillLeaderMidFailover => self.kill_leader_mid_failover(master, hold).await?,
            Fault::PauseLeaderMidFailover | Fault::PauseLeaderMidSwitchover => {
                self.pause_owner_mid_run(fault, master, &others, pick, hold)
                    .await?
            }
            Fault::KillNewMasterInCleanup => {
                self.kill_new_master_in_cleanup(master, &others, hold)
                    .await?
            }
        }
        Ok(())
    }

    async fn kill_db(
        &self,
        fault: Fault,
        index: usize,
        restart_after: Option<Duration>,
    ) -> Result<()> {
        let name = self.sb.node(index)?.name.clone();
        match self.sb.kill_node(index).await {
            Ok(()) => record(
                self.rec,
                fault,
                NemesisAction::Start,
                NemesisOutcome::Installed,
                format!("SIGKILL {name}"),
            ),
            Err(e) => {
                record(
                    self.rec,
                    fault,
                    NemesisAction::Start,
                    NemesisOutcome::Skipped,
                    format!("{e:#}"),
                );
                return Ok(());
            }
        }
        if let Some(hold) = restart_after {
            tokio::time::sleep(hold).await;
            match self.sb.start_node(index).await {
                Ok(()) => record(
                    self.rec,
                    fault,
                    NemesisAction::Stop,
                    NemesisOutcome::Installed,
                    format!("restarted {name}"),
                ),
                Err(e) => record(
                    self.rec,
                    fault,
                    NemesisAction::Stop,
                    NemesisOutcome::Indeterminate,
                    format!("{e:#}"),
                ),
            }
        }
        Ok(())
    }

    /// SIGSTOP a database and its host's agent together, SIGCONT both after `hold`.
    async fn pause_db(&self, fault: Fault, index: usize, hold: Duration) -> Result<()> {
        let name = self.sb.node(index)?.name.clone();
        let Some(pid) = self.sb.pid(index)? else {
            record(
                self.rec,
                fault,
                NemesisAction::Start,
                NemesisOutcome::Skipped,
                format!("{name} is not running"),
            );
            return Ok(());
        };
        signal(pid, libc::SIGSTOP);
        record(
            self.rec,
            fault,
            NemesisAction::Start,
            NemesisOutcome::Installed,
            format!("SIGSTOP {name} (pid {pid})"),
        );
        tokio::time::sleep(hold).await;
        signal(pid, libc::SIGCONT);
        record(
            self.rec,
            fault,
            NemesisAction::Stop,
            NemesisOutcome::Installed,
            format!("SIGCONT {name}"),
        );
        Ok(())
    }

    async fn fault_manager(&mut self, fault: Fault, id: u64, kill: bool, hold: Duration) {
        let m = &mut self.system.managers;
        if kill {
            m.kill(id);
            record(
                self.rec,
                fault,
                NemesisAction::Start,
                NemesisOutcome::Installed,
                format!("SIGKILL manager{id}"),
            );
            tokio::time::sleep(hold).await;
            m.start(id);
            record(
                self.rec,
                fault,
                NemesisAction::Stop,
                NemesisOutcome::Installed,
                format!("started manager{id}"),
            );
            return;
        }
        let Some(pid) = m.pid(id) else {
            record(
                self.rec,
                fault,
                NemesisAction::Start,
                NemesisOutcome::Skipped,
                format!("manager{id} is not running"),
            );
            return;
        };
        signal(pid as i32, libc::SIGSTOP);
        record(
            self.rec,
            fault,
            NemesisAction::Start,
            NemesisOutcome::Installed,
            format!("SIGSTOP manager{id}"),
        );
        tokio::time::sleep(hold).await;
        signal(pid as i32, libc::SIGCONT);
        record(
            self.rec,
            fault,
            NemesisAction::Stop,
            NemesisOutcome::Installed,
            format!("SIGCONT manager{id}"),
        );
    }

    /// Kills the master, waits (up to the hold) for a failover to start in the replicated
    /// state, then kills the manager leader. Without a failover the fault is skipped: the
    /// leader kill was never "in the middle" of anything.
    async fn kill_leader_mid_failover(&mut self, master: usize, hold: Duration) -> Result<()> {
        let fault = Fault::KillLeaderMidFailover;
        let name = self.sb.node(master)?.name.clone();
        if let Err(e) = self.sb.kill_node(master).await {
            record(
                self.rec,
                fault,
                NemesisAction::Start,
                NemesisOutcome::Skipped,
                format!("{e:#}"),
            );
            return Ok(());
        }
        let deadline = Instant::now() + hold;
        let mut started = false;
        while Instant::now() < deadline && !started {
            if let Some(s) = crate::system::read_state(&self.clients).await {
                started = s
                    .clusters
                    .get(CLUSTER)
                    .is_some_and(|c| c.failovers.iter().any(|f| f.finished.is_none()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let leader = self.leader().await;
        match (started, leader) {
            (true, Some(l)) => {
                self.system.managers.kill(l);
                record(
                    self.rec,
                    fault,
                    NemesisAction::Start,
                    NemesisOutcome::Installed,
                    format!(
                        "SIGKILL {name}, then manager{l} mid-failover ({:?})",
                        FailoverPhase::Started
                    ),
                );
                tokio::time::sleep(hold).await;
                self.system.managers.start(l);
                record(
                    self.rec,
                    fault,
                    NemesisAction::Stop,
                    NemesisOutcome::Installed,
                    format!("started manager{l}"),
                );
            }
            (false, _) => record(
                self.rec,
                fault,
                NemesisAction::Start,
                NemesisOutcome::Skipped,
                format!("SIGKILL {name}, but no failover started within {hold:?}"),
            ),
            (true, None) => record(
                self.rec,
                fault,
                NemesisAction::Start,
                NemesisOutcome::Indeterminate,
                "failover started but no agreed leader to kill".into(),
            ),
        }
        Ok(())
    }
}
