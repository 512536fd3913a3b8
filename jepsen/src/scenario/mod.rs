//! The named scenarios: which faults a run injects and what it must have installed to count.
//!
//! Scenarios that need the manager cluster and node agents join this list when those land in
//! the harness; until then every scenario here runs the databases and the workload only.
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;

/// A fault the nemesis can inject into a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL a replica, restart it after the hold time.
    KillReplica,
    /// SIGSTOP a replica, SIGCONT after the hold time.
    PauseReplica,
    /// Drop everything a replica sends to the master (its IO thread loses the master).
    PartitionReplicaFromMaster,
    /// SIGSTOP the master briefly (shorter than any detection window: no failover wanted).
    PauseMasterBriefly,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::KillReplica => "kill-replica",
            Fault::PauseReplica => "pause-replica",
            Fault::PartitionReplicaFromMaster => "partition-replica-from-master",
            Fault::PauseMasterBriefly => "pause-master-briefly",
        }
    }

    /// How long the fault stays installed, drawn from the run's seeded generator.
    pub fn hold(self, rng: &mut StdRng) -> Duration {
        match self {
            Fault::PauseMasterBriefly => Duration::from_millis(rng.random_range(100..400)),
            _ => Duration::from_millis(rng.random_range(500..2000)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    /// Faults drawn from at every nemesis step; each must install at least once.
    pub faults: &'static [Fault],
    pub gtid: bool,
    pub semi_sync: bool,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "baseline",
        about: "no faults: the databases and the workload alone (the baseline every other run is read against)",
        faults: &[],
        gtid: false,
        semi_sync: false,
    },
    Scenario {
        name: "replica-kill",
        about: "SIGKILL a random replica and restart it, repeatedly (GTID: see below)",
        faults: &[Fault::KillReplica],
        // A MariaDB replica in file/position mode is not crash-safe: relay-log.info is written
        // after the commit, so a SIGKILL between the two re-applies a transaction on restart
        // (this harness found it: duplicate key 1062). GTID mode keeps the position in
        // mysql.gtid_slave_pos inside the same transaction.
        gtid: true,
        semi_sync: false,
    },
    Scenario {
        name: "replica-pause",
        about: "SIGSTOP/SIGCONT a random replica, repeatedly",
        faults: &[Fault::PauseReplica],
        gtid: true,
        semi_sync: false,
    },
    Scenario {
        name: "replica-partition",
        about: "iptables: a random replica loses the master, then heals",
        faults: &[Fault::PartitionReplicaFromMaster],
        gtid: true,
        semi_sync: false,
    },
    Scenario {
        name: "semi-sync-replica-faults",
        about: "semi-sync AFTER_SYNC while replicas are killed, paused and partitioned",
        faults: &[
            Fault::KillReplica,
            Fault::PauseReplica,
            Fault::PartitionReplicaFromMaster,
        ],
        gtid: true,
        semi_sync: true,
    },
    Scenario {
        name: "master-pause-brief",
        about: "SIGSTOP the master for less than a detection window: writes stall, nothing is lost",
        faults: &[Fault::PauseMasterBriefly],
        gtid: false,
        semi_sync: false,
    },
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// The fixed seeds `matrix --quick` runs (bounded time in CI); `--full` uses more.
pub const QUICK_SEEDS: &[u64] = &[1];
pub const FULL_SEEDS: &[u64] = &[1, 2, 3, 4, 5];
