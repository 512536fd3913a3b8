//! How long each replica has heard nothing from its master, as plain logic over samples.
//!
//! A frozen or cut-off master host sends no TCP reset: the replicas' IO threads stay
//! "connected" until `slave_net_timeout` (60 s by default) runs out. What does stop at once is
//! the stream: a live master sends either events (the received position moves) or, when idle,
//! a heartbeat every `MASTER_HEARTBEAT_PERIOD` (the heartbeat counter moves). The deciding
//! manager samples both on every probe; a replica whose position and counter stayed the same
//! for more than a few of its own heartbeat periods confirms the master silent, and one whose
//! stream moved refutes it (see [`super::quorum::decide`]).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::monitor::Millis;
use crate::db::{BinlogCoord, ReplicaStatus};

/// What a replica has received from its master so far: any change means the master spoke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiveProgress {
    /// `Master_Log_File:Read_Master_Log_Pos`.
    pub read: BinlogCoord,
    /// MariaDB `Gtid_IO_Pos`, as printed.
    pub gtid_io_pos: Option<String>,
    /// `Slave_received_heartbeats`.
    pub heartbeats: u64,
}

impl ReceiveProgress {
    /// `None` when the server does not expose a heartbeat counter (MySQL's `SHOW REPLICA
    /// STATUS`, MariaDB's plain `SHOW SLAVE STATUS`): such a replica can only confirm
    /// through its IO thread giving up.
    pub fn of(status: &ReplicaStatus) -> Option<ReceiveProgress> {
        Some(ReceiveProgress {
            read: status.read.clone(),
            gtid_io_pos: status.gtid_io_pos.as_ref().map(ToString::to_string),
            heartbeats: status.received_heartbeats?,
        })
    }
}

#[derive(Debug, Clone)]
struct Seen {
    progress: ReceiveProgress,
    /// When this progress was first sampled (it has not changed since).
    unchanged_since: Millis,
    last_sample: Millis,
}

/// The deciding manager's memory of the replicas' progress, keyed by replica name. Times are
/// the deciding manager's monotonic milliseconds.
#[derive(Debug, Clone, Default)]
pub struct SilenceTracker {
    seen: BTreeMap<String, Seen>,
}

impl SilenceTracker {
    /// Records a sample of `replica` taken at `at` and returns for how long its progress has
    /// not changed, as far as the samples show. Samples further apart than `max_gap` start the
    /// count again: nothing is known about what happened between them (the counter may have
    /// been reset by a `CHANGE MASTER` and climbed back, the replica may have restarted).
    pub fn observe(
        &mut self,
        replica: &str,
        progress: ReceiveProgress,
        at: Millis,
        max_gap: Millis,
    ) -> Millis {
        match self.seen.get_mut(replica) {
            Some(s)
                if s.progress == progress
                    && at >= s.last_sample
                    && at - s.last_sample <= max_gap =>
            {
                s.last_sample = at;
                at - s.unchanged_since
            }
            _ => {
                let seen = Seen {
                    progress,
                    unchanged_since: at,
                    last_sample: at,
                };
                self.seen.insert(replica.to_string(), seen);
                0
            }
        }
    }

    /// Forgets a replica (it could not be asked, or no longer replicates from the master).
    pub fn forget(&mut self, replica: &str) {
        self.seen.remove(replica);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(pos: u64, heartbeats: u64) -> ReceiveProgress {
        ReceiveProgress {
            read: BinlogCoord::new("binlog.000001", pos),
            gtid_io_pos: Some(format!("0-1-{pos}")),
            heartbeats,
        }
    }

    const GAP: Millis = 1000;

    #[test]
    fn silence_counts_from_the_first_sample_without_change() {
        let mut t = SilenceTracker::default();
        assert_eq!(t.observe("db2", progress(100, 5), 10_000, GAP), 0);
        assert_eq!(t.observe("db2", progress(100, 5), 10_400, GAP), 400);
        assert_eq!(t.observe("db2", progress(100, 5), 10_900, GAP), 900);
        assert_eq!(t.observe("db2", progress(100, 5), 11_700, GAP), 1700);
    }

    #[test]
    fn a_heartbeat_or_an_event_restarts_the_count() {
        let mut t = SilenceTracker::default();
        t.observe("db2", progress(100, 5), 10_000, GAP);
        assert_eq!(t.observe("db2", progress(100, 5), 10_800, GAP), 800);
        // An idle master's heartbeat.
        assert_eq!(t.observe("db2", progress(100, 6), 11_000, GAP), 0);
        assert_eq!(t.observe("db2", progress(100, 6), 11_600, GAP), 600);
        // A busy master sends events and no heartbeats.
        assert_eq!(t.observe("db2", progress(180, 6), 12_000, GAP), 0);
    }

    #[test]
    fn samples_too_far_apart_prove_nothing() {
        let mut t = SilenceTracker::default();
        t.observe("db2", progress(100, 5), 10_000, GAP);
        assert_eq!(t.observe("db2", progress(100, 5), 10_900, GAP), 900);
        assert_eq!(t.observe("db2", progress(100, 5), 12_000, GAP), 0);
        assert_eq!(t.observe("db2", progress(100, 5), 12_500, GAP), 500);
        // A clock that went backwards, too.
        assert_eq!(t.observe("db2", progress(100, 5), 12_400, GAP), 0);
    }

    #[test]
    fn replicas_are_tracked_apart_and_can_be_forgotten() {
        let mut t = SilenceTracker::default();
        t.observe("db2", progress(100, 5), 10_000, GAP);
        t.observe("db3", progress(100, 9), 10_500, GAP);
        assert_eq!(t.observe("db2", progress(100, 5), 11_000, GAP), 1000);
        assert_eq!(t.observe("db3", progress(100, 9), 11_000, GAP), 500);
        t.forget("db2");
        assert_eq!(t.observe("db2", progress(100, 5), 11_200, GAP), 0);
    }

    #[test]
    fn no_heartbeat_counter_no_progress() {
        let row = crate::db::status::RowMap::from_pairs([
            ("Master_Host", Some("db1")),
            ("Master_Log_File", Some("b.000001")),
            ("Read_Master_Log_Pos", Some("4")),
            ("Slave_IO_Running", Some("Yes")),
        ]);
        let status = ReplicaStatus::parse(&row).expect("row");
        assert_eq!(ReceiveProgress::of(&status), None);
    }
}
