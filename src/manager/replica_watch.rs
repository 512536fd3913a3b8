//! The leader's memory of the replicas' replication streams, per cluster, between quorum
//! evaluations (the evaluations themselves stay plain: [`crate::detect::note_silence`]).
use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::time::Instant;

use crate::detect::{Millis, ReplicaEvidence, SilenceTracker, note_silence};

/// Samples further apart than this start the silence count again (the leader samples every
/// re-evaluation, about every 100 ms, while a majority calls the master dead).
const MAX_SAMPLE_GAP: Millis = 1000;

pub struct ReplicaWatch {
    base: Instant,
    trackers: Mutex<BTreeMap<String, SilenceTracker>>,
}

impl Default for ReplicaWatch {
    fn default() -> Self {
        ReplicaWatch {
            base: Instant::now(),
            trackers: Mutex::default(),
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
}
