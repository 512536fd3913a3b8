//! `raftmha-jepsen bench failover --runs N` and `bench leader-crash --runs N`: the failover
//! path end to end on real processes (3 semi-sync GTID databases, agents, 3 managers).
//!
//! Per run: clients write through the managers' directory; the master's mariadbd is SIGKILLed
//! at t0 (for `leader-crash`, the manager leader too, as soon as the failover has started).
//! Measured from t0: `detection` (a failover appears in the replicated state), `writable`
//! (a write on the new master commits), `replicas` (every surviving replica's IO thread runs
//! against the new master), and lost acknowledged writes (acknowledged, absent on the new
//! master after catch-up). A run without a failover within `--timeout` is an error that says
//! so: these benchmarks need the failover engine.
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use raftmha::chaos::NetFaults;
use raftmha::sandbox::{Sandbox, SandboxGuard, SandboxSpec};
use serde::Serialize;

use super::election::Summary;
use crate::history::Event;
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
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Failover,
    LeaderCrash,
}

#[derive(Debug, Serialize)]
pub struct Sample {
    pub detection_ms: f64,
    pub writable_ms: f64,
    pub replicas_ms: f64,
    pub lost_acked_writes: u64,
    pub acked_writes: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub bench: &'static str,
    pub runs: usize,
    pub detection: Summary,
    pub writable: Summary,
    pub replicas: Summary,
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

async fn one_run(kind: Kind, args: &FailoverArgs, n: usize) -> Result<Sample> {
    // Absolute: the agents and managers of the run refuse relative paths in their configs.
    let dir = std::path::absolute(&args.out)?.join(format!("{kind:?}-{n}").to_lowercase());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let faults = NetFaults::new(&format!("jb{}", std::process::id()))?;
    let mut spec = SandboxSpec::new(dir.join("db"), 3, args.base_ip);
    spec.gtid = true;
    spec.semi_sync = true;
    spec.cgroup_parent = Some(faults.cgroup_dir().to_path_buf());
    let sb = SandboxGuard(Sandbox::up(spec).await.context("starting the databases")?);
    let mut m = sb.conn(1).await?;
    m.query_drop(workload::SCHEMA).await?;
    m.query_drop(workload::TABLE).await?;
    m.disconnect().await?;
    sb.wait_replicas_caught_up(Duration::from_secs(30)).await?;
    let mut sys = system::start(&sb, &faults, &dir, args.base_ip).await?;
    let dbs: Vec<DbEndpoint> = sb
        .nodes()
        .iter()
        .map(|n| {
            Ok(DbEndpoint {
                name: n.name.clone(),
                node: n.addr(),
                opts: sb.admin_opts(n.index)?,
            })
        })
        .collect::<Result<_>>()?;
    let clients: Vec<_> = [1u64, 2, 3]
        .iter()
        .map(|id| {
            sys.managers
                .client_with_timeout(*id, Duration::from_millis(300))
        })
        .collect();
    let (rec, writer) = Recorder::start(&dir.join("history.jsonl"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (directory, dtask) = ManagerDirectory::start(
        clients.clone(),
        dbs.clone(),
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
    tokio::time::sleep(Duration::from_secs(2)).await;

    let t0 = Instant::now();
    sb.kill_node(1).await?;
    let deadline = t0 + Duration::from_secs(args.timeout);
    let (mut detection, mut writable, mut replicas) = (None, None, None);
    let mut leader_killed = kind == Kind::Failover;
    let mut probe_id = 1u64 << 40;
    while replicas.is_none() || writable.is_none() {
        if Instant::now() > deadline {
            bail!(
                "no complete failover within {} s (detected: {detection:?}); the failover engine must be part of this build",
                args.timeout
            );
        }
        let state = system::read_state(&clients).await;
        let cluster = state.as_ref().and_then(|s| s.clusters.get(CLUSTER));
        if detection.is_none() && cluster.is_some_and(|c| !c.failovers.is_empty()) {
            detection = Some(ms(t0));
        }
        if !leader_killed
            && detection.is_some()
            && let Some(l) = sys.managers.agreed_leader(&[1, 2, 3]).await
        {
            sys.managers.kill(l);
            leader_killed = true;
        }
        let new_master = cluster
            .filter(|c| c.epoch > 1)
            .and_then(|c| c.master.clone())
            .and_then(|m| dbs.iter().find(|d| d.name == m).cloned());
        if let Some(nm) = new_master {
            if writable.is_none() {
                probe_id += 1;
                let ok = async {
                    let mut c = Conn::new(nm.opts.clone()).await.ok()?;
                    c.exec_drop(
                        "INSERT INTO jepsen.writes (id, process, epoch) VALUES (?, 0, 0)",
                        (probe_id,),
                    )
                    .await
                    .ok()
                };
                if tokio::time::timeout(Duration::from_millis(500), ok)
                    .await
                    .ok()
                    .flatten()
                    .is_some()
                {
                    writable = Some(ms(t0));
                }
            }
            let ip = nm.node.split(':').next().unwrap_or_default().to_string();
            let others: Vec<&DbEndpoint> = dbs[1..].iter().filter(|d| d.name != nm.name).collect();
            let mut all = true;
            for d in others {
                all &= replicates_from(d, &ip).await;
            }
            if all && replicas.is_none() {
                replicas = Some(ms(t0));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = wtask.await;
    let _ = dtask.await;
    drop(rec);
    let records = writer.await.context("history writer crashed")??;
    let acked: Vec<u64> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Ok { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    let new_master = directory_master(&directory, &dbs).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let present = query_ids(&new_master).await?;
    let lost = acked.iter().filter(|id| !present.contains(id)).count() as u64;
    for id in [1u64, 2, 3] {
        if !sys.managers.is_running(id) {
            sys.managers.start(id);
        }
    }
    sb.down().await?;
    Ok(Sample {
        detection_ms: detection.unwrap_or(f64::NAN),
        writable_ms: writable.unwrap_or(f64::NAN),
        replicas_ms: replicas.unwrap_or(f64::NAN),
        lost_acked_writes: lost,
        acked_writes: acked.len() as u64,
    })
}

async fn directory_master(d: &ManagerDirectory, dbs: &[DbEndpoint]) -> Result<DbEndpoint> {
    use crate::workload::MasterDirectory;
    let t = d.current().await.context("the managers named no master")?;
    dbs.iter()
        .find(|db| db.node == t.node)
        .cloned()
        .context("the master is not one of the run's databases")
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
            "run {n:>3}: detection {:.0} ms, writable {:.0} ms, replicas {:.0} ms, lost {} of {} acknowledged",
            s.detection_ms, s.writable_ms, s.replicas_ms, s.lost_acked_writes, s.acked_writes
        );
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
        detection: col(|s| s.detection_ms),
        writable: col(|s| s.writable_ms),
        replicas: col(|s| s.replicas_ms),
        lost_acked_writes_total: samples.iter().map(|s| s.lost_acked_writes).sum(),
        samples,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} ({} runs, semi-sync AFTER_SYNC, GTID)",
            report.bench, report.runs
        );
        println!(
            "{:<28} {:>8} {:>8} {:>8} {:>8}",
            "ms from SIGKILL", "p50", "p90", "p99", "max"
        );
        for (name, s) in [
            ("detection", &report.detection),
            ("new master accepts writes", &report.writable),
            ("every replica repointed", &report.replicas),
        ] {
            println!(
                "{name:<28} {:>8.0} {:>8.0} {:>8.0} {:>8.0}",
                s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
            );
        }
        println!(
            "lost acknowledged writes: {}",
            report.lost_acked_writes_total
        );
    }
    Ok(())
}
