//! `raftmha-jepsen bench failover --runs N` and `bench leader-crash --runs N`: the failover
//! path end to end on real processes (3 semi-sync GTID databases, agents, 3 managers), with
//! the product's default detection settings unless `--ping-interval-ms` says otherwise.
//!
//! Per run: one writer client follows the master through the managers' replicated state (as a
//! client library would) and inserts every 5 ms; the master fails at t0 (`--fault`: its
//! mariadbd SIGKILLed, its host frozen — mysqld and agent SIGSTOPped — or its address cut off
//! by iptables; for `leader-crash`, the manager leader is killed too, as soon as the failover
//! is in the state). The databases run with MariaDB's defaults (`slave_net_timeout` = 60)
//! unless `--db-option` says otherwise. From t0:
//! - `detection`: the `FailoverStarted` entry (its own Raft time; same host, same clock);
//! - `promoted`: the result of the plan's `read_only=OFF` step (journal time), see
//!   [`crate::journal`];
//! - `writable`: the writer's first acknowledged insert on another node (the harness's clock);
//! - `replicas`: every surviving replica's IO thread runs against the new master (polled);
//! - `completed`: the failover's finishing entry;
//! - lost acknowledged writes: acknowledged, absent on the new master afterwards.
//!
//! A run without a complete failover within `--timeout` is an error that says so.
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use super::failover_setup::{settings_toml, start_databases};
use anyhow::{Context, Result, bail};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use raftmha::chaos::NetFaults;
use raftmha::manager::local::LocalManagers;
use raftmha::sandbox::Sandbox;
use raftmha::state::{FailoverOutcome, FailoverRecord};
use serde::Serialize;

use super::election::Summary;
use crate::history::{Event, FailoverPhase, Record};
use crate::managers::ManagerDirectory;
use crate::observe::DbEndpoint;
use crate::recorder::Recorder;
use crate::system::{self, CLUSTER};
use crate::workload;

#[derive(Debug, Clone, clap::Args)]
pub struct FailoverArgs {
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// First database address (managers use the next /24).
    #[arg(long, default_value = "127.0.180.10")]
    pub base_ip: Ipv4Addr,
    /// Where each run's folder goes.
    #[arg(long, default_value = "target/jepsen-runs/bench")]
    pub out: PathBuf,
    /// Seconds to wait for the failover before the run fails.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Master check interval; the product's default (250 ms, 3 failed checks) when absent.
    #[arg(long)]
    pub ping_interval_ms: Option<u64>,
    /// DESIGN's second case: file/position replication without semi-sync, node2's IO thread
    /// stopped 300 ms and node3's 150 ms before the kill while the writer goes on, so the new
    /// master needs a relay-log diff and the dead master's saved binlog tail.
    #[arg(long)]
    pub lagging: bool,
    /// Also run HAProxy (routed by the agents' `/master` checks) and a writer that only knows
    /// its address: measures kill → first write acknowledged by the new master through it.
    #[arg(long)]
    pub via_haproxy: bool,
    /// How the master fails: `kill` (SIGKILL of mysqld: the kernel resets its connections),
    /// `host-freeze` (SIGSTOP of mysqld and its host's agent: connections stay open, nothing
    /// answers), `host-cut` (iptables DROP of every packet to or from the master's address).
    #[arg(long, value_enum, default_value_t = Fault::Kill)]
    pub fault: Fault,
    /// The cluster file's `lease_ttl_ms`; the product's default (2000) when absent.
    #[arg(long)]
    pub lease_ttl_ms: Option<u64>,
    /// Extra `[mariadbd]` options for every database, e.g. `slave-net-timeout=4` (MariaDB's
    /// defaults otherwise: `slave_net_timeout` = 60).
    #[arg(long = "db-option")]
    pub db_options: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    Kill,
    HostFreeze,
    HostCut,
}

impl Fault {
    fn describe(self) -> &'static str {
        match self {
            Fault::Kill => "SIGKILL of the master's mysqld",
            Fault::HostFreeze => "SIGSTOP of the master's mysqld and agent",
            Fault::HostCut => "iptables DROP of all traffic to/from the master's address",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Failover,
    LeaderCrash,
}

#[derive(Debug, Serialize)]
pub struct Sample {
    pub detection_ms: f64,
    pub promoted_ms: f64,
    pub writable_ms: f64,
    pub replicas_ms: f64,
    pub completed_ms: f64,
    /// leader-crash: when the manager leader was killed (ms after t0).
    pub leader_killed_ms: Option<f64>,
    /// leader-crash: the kill came before the failover's finishing entry (the failover
    /// can be over before the harness sees it start: then the run measures no crash).
    pub killed_mid_failover: Option<bool>,
    pub new_master: String,
    pub lost_acked_writes: u64,
    pub acked_writes: u64,
    /// `--via-haproxy`: the HAProxy writer's first write acknowledged by the new master.
    pub via_haproxy_ms: Option<f64>,
    /// `--via-haproxy`: writes the old master acknowledged through HAProxy after the new
    /// master took one (must be 0).
    pub old_master_acks_after_new: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub bench: &'static str,
    pub runs: usize,
    pub fault: &'static str,
    pub setup: &'static str,
    pub settings: String,
    pub detection: Summary,
    pub promoted: Summary,
    pub writable: Summary,
    pub replicas: Summary,
    pub completed: Summary,
    pub via_haproxy: Option<Summary>,
    pub lost_acked_writes_total: u64,
    pub samples: Vec<Sample>,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

async fn query_ids(db: &DbEndpoint) -> Result<Vec<u64>> {
    let mut c = Conn::new(db.opts.clone()).await?;
    let ids: Vec<u64> = c.query("SELECT id FROM jepsen.writes").await?;
    c.disconnect().await?;
    Ok(ids)
}

/// True when `db`'s replication IO thread runs against `source_ip`.
async fn replicates_from(db: &DbEndpoint, source_ip: &str) -> bool {
    let probe = async {
        let mut c = Conn::new(db.opts.clone()).await.ok()?;
        let row: Option<Row> = c.query_first("SHOW SLAVE STATUS").await.ok()?;
        let row = row?;
        let get = |name: &str| -> Option<String> {
            let i = row
                .columns_ref()
                .iter()
                .position(|c| c.name_str() == name)?;
            row.get_opt::<String, _>(i)?.ok()
        };
        Some(get("Master_Host")? == source_ip && get("Slave_IO_Running")? == "Yes")
    };
    tokio::time::timeout(Duration::from_millis(500), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

fn signal(pid: Option<u32>, sig: i32) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) on a pid this run started; no memory is involved.
        unsafe { libc::kill(pid, sig) };
    }
}

async fn one_run(kind: Kind, args: &FailoverArgs, n: usize) -> Result<Sample> {
    // Absolute: the agents and managers of the run refuse relative paths in their configs.
    let dir = std::path::absolute(&args.out)?.join(format!("{kind:?}-{n}").to_lowercase());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let faults = NetFaults::new(&format!("jb{}", std::process::id()))?;
    let sb = start_databases(args, &dir, args.base_ip, &faults).await?;
    let dbs: Vec<DbEndpoint> = crate::system::prepare_databases(&sb).await?;
    let mut sys = system::start(&sb, &faults, &dir, args.base_ip, &settings_toml(args)).await?;
    let target = Target {
        sb: &sb,
        dbs: &dbs,
        faults: &faults,
        dir: &dir,
        cluster: CLUSTER,
        agents: &sys.agents,
    };
    let sample = measure(kind, args, target, &mut sys.managers).await?;
    sb.down().await?;
    Ok(sample)
}

/// One failover to measure: a real cluster of 3 MariaDB (`sb`, master = node 1) that the
/// managers watch under the name `cluster`, with its agents in `agents`.
pub struct Target<'a> {
    pub sb: &'a Sandbox,
    pub dbs: &'a [DbEndpoint],
    pub faults: &'a NetFaults,
    pub dir: &'a std::path::Path,
    pub cluster: &'a str,
    pub agents: &'a system::Agents,
}

/// Fails the master of `t` as `args.fault` says and measures the failover (see the module
/// text); leaves the managers running and the old master down.
pub async fn measure(
    kind: Kind,
    args: &FailoverArgs,
    t: Target<'_>,
    managers: &mut LocalManagers,
) -> Result<Sample> {
    let Target {
        sb,
        dbs,
        faults,
        dir,
        cluster,
        agents,
    } = t;
    let clients: Vec<_> = [1u64, 2, 3]
        .iter()
        .map(|id| managers.client_with_timeout(*id, Duration::from_millis(300)))
        .collect();
    let (rec, writer) = Recorder::start(&dir.join("history.jsonl"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (directory, dtask) = ManagerDirectory::start(
        clients.clone(),
        dbs.to_vec(),
        cluster,
        Duration::from_millis(50),
        stop.clone(),
    );
    let directory = Arc::new(directory);
    let next_id = Arc::new(AtomicU64::new(1));
    let wtask = tokio::spawn(workload::client(
        1,
        directory.clone(),
        next_id,
        stop.clone(),
        Duration::from_millis(5),
        rec.clone(),
    ));
    let via = match args.via_haproxy {
        true => Some(super::via_haproxy::ViaHaproxy::start(sb, dir, args.base_ip).await?),
        false => None,
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    if args.lagging {
        for (node, pause) in [(2, 150), (3, 150)] {
            let mut c = sb.conn(node).await?;
            c.query_drop("STOP SLAVE IO_THREAD").await?;
            c.disconnect().await?;
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    let killed_node = dbs[0].node.clone();
    // The master's epoch before the kill (0 or 1: discovered or named by the harness).
    // A loaded machine (hundreds of watched clusters) can miss one 300 ms read: try for 5 s.
    let mut epoch0 = None;
    for _ in 0..25 {
        epoch0 = system::read_cluster(&clients, cluster)
            .await
            .flatten()
            .map(|c| c.epoch);
        if epoch0.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let epoch0 = epoch0.context("no manager answered before the kill (5 s)")?;
    let t0_ns = rec.now_ns();
    let t0_wall = wall_ms();
    let t0 = Instant::now();
    let frozen: Vec<Option<u32>> = match args.fault {
        Fault::Kill => {
            sb.kill_node(1).await?;
            Vec::new()
        }
        Fault::HostFreeze => {
            let db = sb.pid(1)?.and_then(|p| u32::try_from(p).ok());
            let agent = agents.pid(&sb.node(1)?.name);
            for pid in [db, agent] {
                signal(pid, libc::SIGSTOP);
            }
            vec![db, agent]
        }
        Fault::HostCut => {
            faults.isolate(sb.node(1)?.ip)?;
            Vec::new()
        }
    };
    let since_t0 = |at_ms: u64| at_ms.saturating_sub(t0_wall) as f64;
    let deadline = t0 + Duration::from_secs(args.timeout);
    let (mut replicas, mut leader_killed_ms, mut writer_on_new) = (None, None, false);
    let mut leader_killed_wall = 0u64;
    let mut last: Option<FailoverRecord> = None;
    let (new_master, failover) = loop {
        if Instant::now() > deadline {
            bail!(
                "no complete failover within {} s (journal so far: {:?})",
                args.timeout,
                last.as_ref().map(crate::journal::phases)
            );
        }
        let record = system::read_cluster(&clients, cluster).await.flatten();
        let record = record.as_ref();
        let failover = record.and_then(|c| c.failovers.back().cloned());
        if let Some(f) = &failover {
            if let Some((outcome, _)) = &f.finished
                && *outcome != FailoverOutcome::Succeeded
            {
                bail!(
                    "the failover ended {outcome:?}: {}",
                    f.report.as_deref().unwrap_or("no report")
                );
            }
            if kind == Kind::LeaderCrash
                && leader_killed_ms.is_none()
                && f.finished.is_none()
                && let Some(l) = managers.agreed_leader(&[1, 2, 3]).await
            {
                managers.kill(l);
                leader_killed_ms = Some(ms(t0));
                leader_killed_wall = wall_ms();
            }
        }
        last = failover.clone();
        let new_master = record
            .filter(|c| c.epoch > epoch0)
            .and_then(|c| c.master.clone())
            .and_then(|m| dbs.iter().find(|d| d.name == m).cloned());
        if let Some(nm) = &new_master {
            let ip = nm.node.split(':').next().unwrap_or_default().to_string();
            if replicas.is_none() {
                let mut all = true;
                for d in dbs[1..].iter().filter(|d| d.name != nm.name) {
                    all &= replicates_from(d, &ip).await;
                }
                if all {
                    replicas = Some(ms(t0));
                }
            }
            if !writer_on_new {
                writer_on_new = wrote_in_new_epoch(nm, epoch0).await;
            }
        }
        let via_done = |nm: &DbEndpoint| {
            via.as_ref()
                .is_none_or(|v| v.first_ack(&nm.name, t0).is_some())
        };
        if let (Some(nm), Some(f), Some(_), true) =
            (&new_master, &failover, replicas, writer_on_new)
            && f.finished.is_some()
            && via_done(nm)
        {
            break (nm.clone(), f.clone());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The writer's acknowledgement follows its commit: give it a moment to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = wtask.await;
    let _ = dtask.await;
    drop(rec);
    drop(directory);
    let records = writer.await.context("history writer crashed")??;
    let acked: Vec<u64> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Ok { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    let writable = first_ack_elsewhere(&records, &killed_node, t0_ns);
    let via_haproxy_ms = via
        .as_ref()
        .and_then(|v| v.first_ack(&new_master.name, t0))
        .map(|at| at.duration_since(t0).as_secs_f64() * 1000.0);
    let old_master_acks_after_new = match via {
        Some(v) => Some(v.finish(&dbs[0].name).await),
        None => None,
    };
    let present = query_ids(&new_master).await?;
    // Resume the old master's host before tearing down (it is fenced by now).
    for pid in frozen {
        signal(pid, libc::SIGCONT);
    }
    faults.heal()?;
    let lost = acked.iter().filter(|id| !present.contains(id)).count() as u64;
    for id in [1u64, 2, 3] {
        if !managers.is_running(id) {
            managers.start(id);
        }
    }
    let at = |p| crate::journal::reached_at(&failover, p).map_or(f64::NAN, since_t0);
    Ok(Sample {
        detection_ms: since_t0(failover.started_at_ms),
        promoted_ms: at(FailoverPhase::Promoted),
        writable_ms: writable.unwrap_or(f64::NAN),
        replicas_ms: replicas.unwrap_or(f64::NAN),
        completed_ms: at(FailoverPhase::Completed),
        leader_killed_ms,
        killed_mid_failover: leader_killed_ms.map(|_| {
            failover
                .finished
                .as_ref()
                .is_some_and(|(_, at)| leader_killed_wall < *at)
        }),
        new_master: new_master.name,
        lost_acked_writes: lost,
        acked_writes: acked.len() as u64,
        via_haproxy_ms,
        old_master_acks_after_new,
    })
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// True once the writer committed on `db` as the master of an epoch after `epoch0` (its
/// inserts carry the epoch it believed in).
async fn wrote_in_new_epoch(db: &DbEndpoint, epoch0: u64) -> bool {
    let probe = async {
        let mut c = Conn::new(db.opts.clone()).await.ok()?;
        let n: Option<u64> = c
            .exec_first(
                "SELECT COUNT(*) FROM jepsen.writes WHERE epoch > ? AND process = 1",
                (epoch0,),
            )
            .await
            .ok()?;
        let _ = c.disconnect().await;
        n
    };
    tokio::time::timeout(Duration::from_millis(500), probe)
        .await
        .ok()
        .flatten()
        .is_some_and(|n| n > 0)
}

/// Milliseconds from `t0_ns` to the first acknowledged write on a node other than `killed`.
fn first_ack_elsewhere(records: &[Record], killed: &str, t0_ns: u64) -> Option<f64> {
    records.iter().find_map(|r| match &r.event {
        Event::Ok { node, .. } if node != killed && r.time_ns >= t0_ns => {
            Some((r.time_ns - t0_ns) as f64 / 1e6)
        }
        _ => None,
    })
}

pub async fn main(kind: Kind, args: FailoverArgs) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let mut samples = Vec::new();
    for n in 1..=args.runs {
        let s = one_run(kind, &args, n)
            .await
            .with_context(|| format!("run {n}"))?;
        eprintln!(
            "run {n:>3}: detection {:.0} ms, promoted {:.0} ms, writable {:.0} ms, replicas {:.0} ms, completed {:.0} ms{}, new master {}, lost {} of {} acknowledged",
            s.detection_ms,
            s.promoted_ms,
            s.writable_ms,
            s.replicas_ms,
            s.completed_ms,
            match (s.leader_killed_ms, s.killed_mid_failover) {
                (Some(l), Some(true)) =>
                    format!(" (manager leader killed at {l:.0} ms, mid-failover)"),
                (Some(l), _) =>
                    format!(" (manager leader killed at {l:.0} ms, after the failover ended)"),
                (None, _) => String::new(),
            },
            s.new_master,
            s.lost_acked_writes,
            s.acked_writes
        );
        if let (Some(v), Some(stray)) = (s.via_haproxy_ms, s.old_master_acks_after_new) {
            eprintln!(
                "         through HAProxy: first write on the new master {v:.0} ms, \
                 old master's writes after it: {stray}"
            );
        }
        samples.push(s);
    }
    let col = |f: fn(&Sample) -> f64| Summary::of(samples.iter().map(f).collect());
    let report = Report {
        bench: if kind == Kind::Failover {
            "failover"
        } else {
            "leader-crash"
        },
        runs: samples.len(),
        fault: args.fault.describe(),
        setup: if args.lagging {
            "file/position, no semi-sync, replicas' IO threads stopped 300 ms and 150 ms before the kill (relay-log diff + saved tail)"
        } else {
            "GTID, semi-sync AFTER_SYNC, replicas level"
        },
        settings: format!(
            "ping_interval_ms = {}, ping_failures = 3, lease_ttl_ms = {}, MariaDB options: {}",
            args.ping_interval_ms.unwrap_or(250),
            args.lease_ttl_ms.unwrap_or(2000),
            if args.db_options.is_empty() {
                "defaults (slave_net_timeout = 60)".to_string()
            } else {
                args.db_options.join(" ")
            }
        ),
        detection: col(|s| s.detection_ms),
        promoted: col(|s| s.promoted_ms),
        writable: col(|s| s.writable_ms),
        replicas: col(|s| s.replicas_ms),
        completed: col(|s| s.completed_ms),
        via_haproxy: args
            .via_haproxy
            .then(|| col(|s| s.via_haproxy_ms.unwrap_or(f64::NAN))),
        lost_acked_writes_total: samples.iter().map(|s| s.lost_acked_writes).sum(),
        samples,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} ({} runs, fault: {}; 3 MariaDB: {}; 3 managers; {})",
            report.bench, report.runs, report.fault, report.setup, report.settings
        );
        println!(
            "{:<34} {:>8} {:>8} {:>8} {:>8}",
            "ms from the fault", "p50", "p90", "p99", "max"
        );
        for (name, s) in [
            ("detection (failover started)", &report.detection),
            ("promoted (read_only=OFF journaled)", &report.promoted),
            ("writer's first ack on new master", &report.writable),
            ("every replica replicates from it", &report.replicas),
            ("failover completed (journal)", &report.completed),
        ] {
            println!(
                "{name:<34} {:>8.0} {:>8.0} {:>8.0} {:>8.0}",
                s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
            );
        }
        if let Some(s) = &report.via_haproxy {
            println!(
                "{:<34} {:>8.0} {:>8.0} {:>8.0} {:>8.0}",
                "first ack through HAProxy", s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
            );
            let stray: u64 = report
                .samples
                .iter()
                .filter_map(|s| s.old_master_acks_after_new)
                .sum();
            println!("old master's acks through HAProxy after the new master's: {stray}");
        }
        if kind == Kind::LeaderCrash {
            let mid = report
                .samples
                .iter()
                .filter(|s| s.killed_mid_failover == Some(true))
                .count();
            println!(
                "manager leader killed before the failover finished: {mid} of {} runs",
                report.runs
            );
        }
        println!(
            "lost acknowledged writes: {} (of {} acknowledged)",
            report.lost_acked_writes_total,
            report.samples.iter().map(|s| s.acked_writes).sum::<u64>()
        );
    }
    Ok(())
}
