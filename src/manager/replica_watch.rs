//! The leader's memory of the replicas' replication streams, per cluster, between quorum
//! evaluations (the evaluations themselves stay plain: [`crate::detect::note_silence`]).
//!
//! The leader samples every replica of each master in the background every
//! [`SAMPLE_EVERY`], so when a majority of managers calls the master dead, how long each
//! replica's stream has stood still is already known from before the failure — the replicas
//! confirm a frozen master about three heartbeat periods after it stopped, not three periods
//! after the managers' verdict.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::db::MysqlServer;
use crate::detect::{Millis, ReplicaEvidence, SilenceTracker, note_silence, probe_replicas};

/// Samples further apart than this start the silence count again.
const MAX_SAMPLE_GAP: Millis = 1000;
/// Background sampling period (the quorum evaluations add their own samples).
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Bound on one background sample of all replicas.
const SAMPLE_LIMIT: Duration = Duration::from_millis(400);

pub struct ReplicaWatch {
    base: Instant,
    trackers: Mutex<BTreeMap<String, SilenceTracker>>,
    /// cluster → (servers' identity, connections, last background sample started).
    samplers: Mutex<BTreeMap<String, Sampler>>,
}

struct Sampler {
    key: String,
    replicas: Arc<Vec<(String, MysqlServer)>>,
    last: Option<Instant>,
    running: bool,
}

impl Default for ReplicaWatch {
    fn default() -> Self {
        ReplicaWatch {
            base: Instant::now(),
            trackers: Mutex::default(),
            samplers: Mutex::default(),
        }
    }
}

impl ReplicaWatch {
    /// Records this probe of `cluster`'s replicas and fills in how long each stream stood
    /// still.
    pub fn note(&self, cluster: &str, evidence: &mut [ReplicaEvidence]) {
        let at = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut trackers = self.trackers.lock().unwrap_or_else(|p| p.into_inner());
        let tracker = trackers.entry(cluster.to_string()).or_default();
        note_silence(tracker, evidence, at, MAX_SAMPLE_GAP);
    }

    /// Starts a background sample of `cluster`'s replicas when one is due. `key` identifies
    /// the master and replica set (connections are rebuilt when it changes); `replicas`
    /// builds them.
    pub fn sample(
        self: &Arc<Self>,
        cluster: &str,
        key: String,
        master: (String, u16),
        replicas: impl FnOnce() -> Option<Vec<(String, MysqlServer)>>,
    ) {
        let set = {
            let mut samplers = self.samplers.lock().unwrap_or_else(|p| p.into_inner());
            let current = samplers.get(cluster).filter(|s| s.key == key);
            let due = current
                .is_none_or(|s| !s.running && s.last.is_none_or(|t| t.elapsed() >= SAMPLE_EVERY));
            if !due {
                return;
            }
            let set = match current {
                Some(s) => s.replicas.clone(),
                None => Arc::new(replicas().unwrap_or_default()),
            };
            samplers.insert(
                cluster.to_string(),
                Sampler {
                    key,
                    replicas: set.clone(),
                    last: Some(Instant::now()),
                    running: true,
                },
            );
            set
        };
        let (watch, cluster) = (self.clone(), cluster.to_string());
        tokio::spawn(async move {
            let refs: Vec<(String, &MysqlServer)> =
                set.iter().map(|(n, s)| (n.clone(), s)).collect();
            let mut evidence = probe_replicas(&refs, &master.0, master.1, SAMPLE_LIMIT).await;
            watch.note(&cluster, &mut evidence);
            let mut samplers = watch.samplers.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = samplers.get_mut(&cluster) {
                s.running = false;
            }
        });
    }
}
