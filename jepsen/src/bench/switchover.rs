//! `raftmha-jepsen bench switchover --runs N`: planned switchovers on real processes (the
//! root crate's testbed: 3 MariaDB servers, their agents, 3 manager processes), rotating the
//! master node1 → node2 → node3 → node1 … with `--orig-master-is-new-slave`.
//!
//! A writer (an application account, bound by read_only) inserts continuously into the
//! recorded master. Per run, from the moment the switchover is requested: `blocked` = the
//! writer's gap between its last acknowledged write on the old master and its first on the new
//! one (the writes-blocked window as a client sees it), `writable` = until the first write on
//! the new master is acknowledged, `replicas` = until every other server replicates from the
//! new master, and the leader's own `read_only=ON`→`OFF` window from the report. Lost writes:
//! acknowledged ids missing on the new master.
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mysql_async::prelude::Queryable;
use raftmha::manager::testbed::{CLUSTER, Testbed, TestbedOptions};
use raftmha::state::{Command, CommandResult, Operation, SwitchLimits};
use serde::Serialize;

use super::election::Summary;
use crate::system::sibling_binary;

#[derive(Debug, Clone, clap::Args)]
pub struct SwitchoverArgs {
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Databases on .10-.12 and managers on .1-.3 of this address's /24.
    #[arg(long, default_value = "127.0.210.10")]
    pub base_ip: Ipv4Addr,
    #[arg(long, default_value = "/tmp/rmha-switch/bench")]
    pub out: PathBuf,
    #[arg(long)]
    pub gtid: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct Sample {
    pub from: String,
    pub to: String,
    pub blocked_ms: f64,
    pub writable_ms: f64,
    pub replicas_ms: f64,
    pub leader_blocked_ms: Option<u64>,
    pub lost_acked_writes: u64,
    /// The leader's phase timings (where a slow window went).
    pub phases: Vec<raftmha::failover::switchover::PhaseTiming>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub bench: &'static str,
    pub runs: usize,
    pub blocked: Summary,
    pub writable: Summary,
    pub replicas: Summary,
    pub leader_blocked: Summary,
    pub acked_writes: u64,
    pub lost_acked_writes_total: u64,
    pub samples: Vec<Sample>,
}

const APP_PASSWORD: &str = "bench-app-password";

/// Every acknowledged write: id, node, when.
type Acks = Arc<Mutex<Vec<(u64, usize, Instant)>>>;

fn spawn_writer(tb: Arc<Testbed>, acks: Acks, stop: Arc<std::sync::atomic::AtomicBool>) {
    tokio::spawn(async move {
        let mut next = 1u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Some(i) = tb
                .cluster()
                .await
                .and_then(|c| c.master)
                .and_then(|m| Testbed::index_of(&m))
            else {
                continue;
            };
            let Ok(admin) = tb.sandbox.admin_opts(i) else {
                return;
            };
            let opts = mysql_async::OptsBuilder::from_opts(admin)
                .user(Some("app"))
                .pass(Some(APP_PASSWORD));
            let Ok(Ok(mut c)) =
                tokio::time::timeout(Duration::from_secs(1), mysql_async::Conn::new(opts)).await
            else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let q = format!("INSERT INTO bench.w (id) VALUES ({next})");
                let r = tokio::time::timeout(Duration::from_secs(2), c.query_drop(q)).await;
                next += 1;
                match r {
                    Ok(Ok(())) => acks.lock().unwrap_or_else(|p| p.into_inner()).push((
                        next - 1,
                        i,
                        Instant::now(),
                    )),
                    _ => break,
                }
            }
        }
    });
}

async fn sql(tb: &Testbed, node: usize, q: &str) -> Result<()> {
    let mut c = tb.sandbox.conn(node).await?;
    c.query_drop(q).await.with_context(|| q.to_string())?;
    c.disconnect().await?;
    Ok(())
}

async fn ids(tb: &Testbed, node: usize) -> Result<BTreeSet<u64>> {
    let mut c = tb.sandbox.conn(node).await?;
    let v: Vec<u64> = c.query("SELECT id FROM bench.w").await?;
    c.disconnect().await?;
    Ok(v.into_iter().collect())
}

async fn follows(tb: &Testbed, replica: usize, master: usize) -> bool {
    let Ok(m) = tb.sandbox.node(master) else {
        return false;
    };
    let Ok(mut c) = tb.sandbox.conn(replica).await else {
        return false;
    };
    let row: Option<mysql_async::Row> = c.query_first("SHOW SLAVE STATUS").await.ok().flatten();
    let _ = c.disconnect().await;
    let Some(row) = row else { return false };
    let host: Option<String> = row.get("Master_Host");
    let io: Option<String> = row.get("Slave_IO_Running");
    host.as_deref() == Some(&m.ip.to_string()) && io.as_deref() == Some("Yes")
}

async fn one_run(tb: &Arc<Testbed>, acks: &Acks, from: usize, to: usize) -> Result<Sample> {
    let c = tb.cluster().await.context("no manager answers")?;
    let started = Instant::now();
    let (reply, _) = tb
        .managers
        .client(1)
        .write(&Command::OperationStarted {
            cluster: CLUSTER.into(),
            server: format!("node{from}"),
            epoch: c.epoch,
            operation: Operation::Switchover {
                new_master: format!("node{to}"),
                orig_master_is_new_slave: true,
                limits: SwitchLimits::default(),
            },
        })
        .await?;
    let CommandResult::Ok { id: Some(id), .. } = reply else {
        bail!("switchover not started: {reply}");
    };
    let record = tb
        .wait_for("the switchover to finish", Duration::from_secs(60), |c| {
            c.failovers
                .iter()
                .any(|f| f.id == id && f.finished.is_some())
        })
        .await?;
    let f = record
        .failovers
        .iter()
        .find(|f| f.id == id)
        .context("record")?;
    let report: raftmha::failover::switchover::SwitchReport =
        serde_json::from_str(f.report.as_deref().unwrap_or("")).context("switchover report")?;
    if report.outcome != raftmha::failover::switchover::SwitchOutcome::Switched {
        bail!("switchover {id} did not switch: {}", report.render_text());
    }
    let others: Vec<usize> = (1..=3).filter(|n| *n != to).collect();
    loop {
        let mut all = true;
        for o in &others {
            all &= follows(tb, *o, to).await;
        }
        if all {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("replicas did not follow node{to}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let replicas_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Wait for the writer's first acknowledgement on the new master.
    let first_new = loop {
        let found = acks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(_, n, t)| *n == to && *t > started)
            .map(|(_, _, t)| *t);
        if let Some(t) = found {
            break t;
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("no write acknowledged on node{to}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let last_old = acks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(_, n, _)| *n == from)
        .map(|(_, _, t)| *t)
        .max()
        .unwrap_or(started);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let on_new = ids(tb, to).await?;
    let acked: Vec<u64> = acks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(_, _, t)| *t < first_new)
        .map(|(id, _, _)| *id)
        .collect();
    let lost = acked.iter().filter(|id| !on_new.contains(id)).count() as u64;
    Ok(Sample {
        from: format!("node{from}"),
        to: format!("node{to}"),
        blocked_ms: first_new.duration_since(last_old).as_secs_f64() * 1000.0,
        writable_ms: first_new.duration_since(started).as_secs_f64() * 1000.0,
        replicas_ms,
        leader_blocked_ms: report.writes_blocked_ms,
        lost_acked_writes: lost,
        phases: report.phases,
    })
}

pub async fn main(args: SwitchoverArgs) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs must be 1 or more");
    }
    let [127, 0, subnet, _] = args.base_ip.octets() else {
        bail!("--base-ip must be a 127.0.x.y address");
    };
    let bin = sibling_binary("raftmha")?;
    let dir = std::path::absolute(&args.out).context("--out")?;
    let opts = TestbedOptions {
        gtid: args.gtid,
        ..TestbedOptions::default()
    };
    let tb = Arc::new(Testbed::up(&bin, &dir, subnet, &opts).await?);
    let result = bench(&tb, &args).await;
    if let Ok(tb) = Arc::try_unwrap(tb) {
        tb.down().await?;
    }
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("bench switchover: {} runs", report.runs);
        println!(
            "{:<34} {:>8} {:>8} {:>8} {:>8}",
            "", "p50", "p90", "p99", "max"
        );
        for (name, s) in [
            ("writes blocked (client, ms)", &report.blocked),
            ("writes blocked (leader, ms)", &report.leader_blocked),
            ("new master writable (ms)", &report.writable),
            ("all replicas follow (ms)", &report.replicas),
        ] {
            println!(
                "{name:<34} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
                s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
            );
        }
        println!(
            "acknowledged writes {}, lost {}",
            report.acked_writes, report.lost_acked_writes_total
        );
    }
    Ok(())
}

async fn bench(tb: &Arc<Testbed>, args: &SwitchoverArgs) -> Result<Report> {
    sql(tb, 1, "CREATE DATABASE bench").await?;
    sql(tb, 1, "CREATE TABLE bench.w (id BIGINT PRIMARY KEY)").await?;
    sql(
        tb,
        1,
        &format!("CREATE USER app@'127.%' IDENTIFIED BY '{APP_PASSWORD}'"),
    )
    .await?;
    sql(tb, 1, "GRANT SELECT, INSERT ON bench.* TO app@'127.%'").await?;
    tb.sandbox
        .wait_replicas_caught_up(Duration::from_secs(30))
        .await?;
    let acks: Acks = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    spawn_writer(tb.clone(), acks.clone(), stop.clone());
    let mut samples = Vec::new();
    let mut from = 1;
    for run in 0..args.runs {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let to = from % 3 + 1;
        let s = one_run(tb, &acks, from, to)
            .await
            .with_context(|| format!("run {}", run + 1))?;
        if !args.json {
            let phases: Vec<String> = s
                .phases
                .iter()
                .map(|p| format!("{} {}", p.phase, p.ms))
                .collect();
            eprintln!(
                "run {:>2}: {} → {}: blocked {:.1} ms (leader {:?} ms), writable {:.1} ms, replicas {:.1} ms, lost {} [{}]",
                run + 1,
                s.from,
                s.to,
                s.blocked_ms,
                s.leader_blocked_ms,
                s.writable_ms,
                s.replicas_ms,
                s.lost_acked_writes,
                phases.join(", ")
            );
        }
        samples.push(s);
        from = to;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = acks.lock().unwrap_or_else(|p| p.into_inner()).len() as u64;
    let pick = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<_>>();
    Ok(Report {
        bench: "switchover",
        runs: samples.len(),
        blocked: Summary::of(pick(|s| s.blocked_ms)),
        writable: Summary::of(pick(|s| s.writable_ms)),
        replicas: Summary::of(pick(|s| s.replicas_ms)),
        leader_blocked: Summary::of(pick(|s| s.leader_blocked_ms.unwrap_or(0) as f64)),
        acked_writes: acked,
        lost_acked_writes_total: samples.iter().map(|s| s.lost_acked_writes).sum(),
        samples,
    })
}
