//! What the run learns from the managers: the master a production client would write to
//! ([`ManagerDirectory`]), manager observation rounds and failover phases from the replicated
//! state ([`observer`]), and the final read of every manager's state.
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use raftmha::api::client::AdminClient;
use raftmha::state::{ClusterRecord, ManagerState};

use crate::history::{Event, FailoverPhase, ManagerObservation};
use crate::observe::DbEndpoint;
use crate::recorder::Recorder;
use crate::system::CLUSTER;
use crate::workload::{MasterDirectory, Target};

/// The managers' admin API as a client library would use it: the cluster's master and epoch
/// from the replicated state (linearizable reads), refreshed in the background, so a client
/// follows a failover without knowing which database is master.
#[derive(Clone)]
pub struct ManagerDirectory {
    current: Arc<RwLock<Option<Target>>>,
}

impl ManagerDirectory {
    /// Starts the refresher; it stops when `stop` is set.
    pub fn start(
        clients: Vec<AdminClient>,
        dbs: Vec<DbEndpoint>,
        cluster: &str,
        every: Duration,
        stop: Arc<AtomicBool>,
    ) -> (ManagerDirectory, tokio::task::JoinHandle<()>) {
        let dir = ManagerDirectory {
            current: Arc::new(RwLock::new(None)),
        };
        let shared = dir.current.clone();
        let cluster = cluster.to_string();
        let task = tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(record) = crate::system::read_cluster(&clients, &cluster).await {
                    let target = record.as_ref().and_then(|c| target_of(c, &dbs));
                    // Keep the last known master while no manager answers: that is what a
                    // client library does, and fencing must make it harmless.
                    if let (Some(t), Ok(mut cur)) = (target, shared.write()) {
                        *cur = Some(t);
                    }
                }
                tokio::time::sleep(every).await;
            }
        });
        (dir, task)
    }
}

fn target_of(c: &ClusterRecord, dbs: &[DbEndpoint]) -> Option<Target> {
    let master = c.master.as_deref()?;
    let db = dbs.iter().find(|d| d.name == master)?;
    Some(Target {
        node: db.node.clone(),
        // As an application would: an account that read_only applies to.
        opts: db.app.clone().unwrap_or_else(|| db.opts.clone()),
        epoch: c.epoch,
    })
}

impl MasterDirectory for ManagerDirectory {
    async fn current(&self) -> Option<Target> {
        self.current.read().ok().and_then(|c| c.clone())
    }
}

/// One manager's role, term and leader; unreachable is an observation.
async fn observe_manager(id: u64, client: &AdminClient) -> ManagerObservation {
    match client.status().await {
        Ok(s) => ManagerObservation {
            manager: id,
            reachable: true,
            role: Some(s.role.clone()),
            term: Some(s.term),
            leader: s.leader,
            master: None,
            epoch: None,
        },
        Err(_) => unreachable_manager(id),
    }
}

fn unreachable_manager(id: u64) -> ManagerObservation {
    ManagerObservation {
        manager: id,
        reachable: false,
        role: None,
        term: None,
        leader: None,
        master: None,
        epoch: None,
    }
}

/// Failover phases already recorded, so each appears once in the history.
#[derive(Default)]
struct SeenPhases(BTreeSet<(u64, &'static str)>);

impl SeenPhases {
    fn emit(&mut self, c: &ClusterRecord, rec: &Recorder) {
        for f in &c.failovers {
            for p in crate::journal::phases(f) {
                if self.0.insert((f.id, phase_name(p.phase))) {
                    rec.record(Event::Failover {
                        cluster: c.spec.name.clone(),
                        failover_id: f.id.to_string(),
                        epoch: f.epoch,
                        phase: p.phase,
                        detail: p.detail,
                    });
                }
            }
        }
    }
}

fn phase_name(p: FailoverPhase) -> &'static str {
    match p {
        FailoverPhase::Started => "started",
        FailoverPhase::Fenced => "fenced",
        FailoverPhase::Promoted => "promoted",
        FailoverPhase::Completed => "completed",
        FailoverPhase::Aborted => "aborted",
    }
}

/// Records a `ManagerRound` every `every` (role, term, leader per manager, the master and
/// epoch of the replicated state) and every failover phase as it appears.
pub async fn observer(
    clients: Vec<(u64, AdminClient)>,
    every: Duration,
    stop: Arc<AtomicBool>,
    rec: Recorder,
) {
    let mut round = 0;
    let mut seen = SeenPhases::default();
    // A paused or partitioned manager must not stretch the rounds: each probe gets most of
    // one period, and rounds start on a fixed ticker.
    let budget = every * 3 / 4;
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let only: Vec<AdminClient> = clients.iter().map(|(_, c)| c.clone()).collect();
    while !stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        round += 1;
        let probes = clients.iter().map(|(id, c)| async move {
            tokio::time::timeout(budget, observe_manager(*id, c))
                .await
                .unwrap_or_else(|_| unreachable_manager(*id))
        });
        let (mut managers, state) = tokio::join!(
            futures::future::join_all(probes),
            tokio::time::timeout(budget, crate::system::read_state(&only))
        );
        if let Ok(Some(state)) = state
            && let Some(c) = state.clusters.get(CLUSTER)
        {
            for m in managers.iter_mut().filter(|m| m.reachable) {
                m.master = c.master.clone();
                m.epoch = Some(c.epoch);
            }
            seen.emit(c, &rec);
        }
        rec.record(Event::ManagerRound { round, managers });
    }
}

/// After healing: every manager's own view of the cluster (read through that manager only).
pub async fn final_read(clients: &[(u64, AdminClient)], rec: &Recorder) {
    for (id, c) in clients {
        let state: Option<ManagerState> = c.read_state().await.ok().map(|(s, _)| s);
        let (cluster, master, epoch, applied) = match &state {
            Some(s) => {
                let c = s.clusters.get(CLUSTER);
                (
                    c.map(|c| c.spec.name.clone()),
                    c.and_then(|c| c.master.clone()),
                    c.map(|c| c.epoch),
                    Some(s.applied_commands),
                )
            }
            None => (None, None, None, None),
        };
        rec.record(Event::ManagerFinal {
            manager: *id,
            reachable: state.is_some(),
            cluster,
            master,
            epoch,
            applied_commands: applied,
        });
    }
}
