//! `bench scale`'s report: the numbers of one run, printed as a table or JSON.
use anyhow::Result;
use serde::Serialize;

use super::election::Summary;
use super::failover::Sample;

#[derive(Debug, Serialize)]
pub struct ManagerCost {
    pub id: u64,
    pub role: String,
    pub cpu_cores: f64,
    pub rss_mib: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub bench: &'static str,
    pub clusters: usize,
    pub real_clusters: usize,
    pub simulated_clusters: usize,
    pub watched_servers: usize,
    /// Clusters whose master every manager calls alive in the replicated state (at the end
    /// of the window): proof that they are watched.
    pub clusters_seen_alive_by_all: usize,
    /// `release` or `debug` (the binaries next to this one).
    pub build: &'static str,
    pub simulated_note: &'static str,
    pub window_s: f64,
    pub load_average_before: String,
    pub load_average_after: String,
    pub managers: Vec<ManagerCost>,
    /// CPU of the simulated servers' process and of all real agents and mariadbd (cores).
    pub simulator_cpu_cores: Option<f64>,
    /// Mean RSS of the first real cluster's `mariadbd` processes and of its agents (MiB).
    pub mariadbd_rss_mib: f64,
    pub agent_rss_mib: f64,
    /// Raft terms that began during the window (elections: 0 at a healthy steady state).
    pub elections_in_window: u64,
    pub raft_entries_per_s: f64,
    pub raft_bytes_per_s: f64,
    /// The replicated state encoded as a snapshot encodes it.
    pub state_bytes: usize,
    pub newest_snapshot_file_bytes: Option<u64>,
    pub status: Summary,
    pub state_read: Summary,
    pub cluster_read: Summary,
    pub failover_writable: Summary,
    pub failover_samples: Vec<Sample>,
}

pub fn print_report(r: &Report, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!(
        "scale: {} clusters × 3 = {} watched servers ({} real MariaDB clusters, {} SIMULATED clusters), 3 managers, {} build, default settings",
        r.clusters, r.watched_servers, r.real_clusters, r.simulated_clusters, r.build
    );
    println!(
        "  clusters whose master all 3 managers call alive: {} of {}",
        r.clusters_seen_alive_by_all, r.clusters
    );
    if r.simulated_clusters > 0 {
        println!("  {}", r.simulated_note);
    }
    println!(
        "  steady-state window {:.0} s; load average before {} / after {} (2 cores)",
        r.window_s, r.load_average_before, r.load_average_after
    );
    for m in &r.managers {
        println!(
            "  manager {} ({:<8}) CPU {:>6.1} % of a core   RSS {:>6.1} MiB",
            m.id,
            m.role,
            m.cpu_cores * 100.0,
            m.rss_mib
        );
    }
    println!(
        "  real mariadbd RSS {:.0} MiB each (buffer pool 32M, performance_schema off); real agent RSS {:.1} MiB",
        r.mariadbd_rss_mib, r.agent_rss_mib
    );
    if let Some(c) = r.simulator_cpu_cores {
        println!(
            "  simulated servers' process CPU {:.1} % of a core",
            c * 100.0
        );
    }
    println!(
        "  Raft log: {:.1} entries/s, {:.0} bytes/s (leader's appends); elections in the window: {}",
        r.raft_entries_per_s, r.raft_bytes_per_s, r.elections_in_window
    );
    println!(
        "  state as a snapshot: {:.1} KiB; newest snapshot file: {}",
        r.state_bytes as f64 / 1024.0,
        r.newest_snapshot_file_bytes
            .map_or("none yet".into(), |b| format!(
                "{:.1} KiB",
                b as f64 / 1024.0
            ))
    );
    println!(
        "  admin status p50 {:.1} ms p99 {:.1} ms; full state read (cluster list) p50 {:.1} ms p99 {:.1} ms",
        r.status.p50_ms, r.status.p99_ms, r.state_read.p50_ms, r.state_read.p99_ms
    );
    println!(
        "  one cluster's read p50 {:.1} ms p99 {:.1} ms",
        r.cluster_read.p50_ms, r.cluster_read.p99_ms
    );
    println!(
        "  E1 failover (SIGKILL of a real master → first write acknowledged by the new master), {} runs: p50 {:.0} ms, max {:.0} ms",
        r.failover_samples.len(),
        r.failover_writable.p50_ms,
        r.failover_writable.max_ms
    );
    Ok(())
}
