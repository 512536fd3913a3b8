//! One run of one scenario with one seed: set up, record, inject faults, heal, read, check.
//!
//! Everything a run produced stays in its folder: `test.json` (scenario, seed, the command that
//! reproduces it), `history.jsonl`, `results.json`, and `db/nodeK/` with every mariadbd's
//! error log and binlogs.
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mysql_async::prelude::Queryable;
use raftmha::chaos::NetFaults;
use raftmha::sandbox::{Sandbox, SandboxGuard, SandboxSpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::checker::{self, Report, Verdict};
use crate::history::{Event, NemesisAction, NemesisOutcome, RunConfig};
use crate::observe::{self, DbEndpoint};
use crate::recorder::Recorder;
use crate::scenario::{Fault, Scenario};
use crate::workload::{self, FixedMaster, Target};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub seed: u64,
    pub duration: Duration,
    pub out_root: PathBuf,
    pub base_ip: Ipv4Addr,
    pub clients: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub scenario: String,
    pub seed: u64,
    pub dir: PathBuf,
    pub verdict: Verdict,
    pub report: Report,
    pub reproduce: String,
}

pub fn reproduce_command(scenario: &str, opts: &RunOptions) -> String {
    format!(
        "raftmha-jepsen run --scenario {scenario} --seed {} --duration {} --base-ip {}",
        opts.seed,
        opts.duration.as_secs(),
        opts.base_ip
    )
}

pub async fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunOutcome> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dir = opts
        .out_root
        .join(format!("{}-seed{}-{stamp}", scenario.name, opts.seed));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let reproduce = reproduce_command(scenario.name, opts);
    let test = serde_json::json!({
        "scenario": scenario.name, "about": scenario.about, "seed": opts.seed,
        "duration_s": opts.duration.as_secs(), "base_ip": opts.base_ip, "reproduce": reproduce,
    });
    std::fs::write(dir.join("test.json"), serde_json::to_string_pretty(&test)?)?;

    let faults = NetFaults::new(&format!("j{}", std::process::id()))?;
    let mut spec = SandboxSpec::new(dir.join("db"), 3, opts.base_ip);
    spec.gtid = scenario.gtid;
    spec.semi_sync = scenario.semi_sync;
    spec.cgroup_parent = Some(faults.cgroup_dir().to_path_buf());
    let sb = SandboxGuard(Sandbox::up(spec).await.context("starting the databases")?);
    let mut m = sb.conn(1).await?;
    m.query_drop(workload::SCHEMA).await?;
    m.query_drop(workload::TABLE).await?;
    m.disconnect().await?;
    sb.wait_replicas_caught_up(Duration::from_secs(30)).await?;

    let dbs: Vec<DbEndpoint> = sb
        .nodes()
        .iter()
        .map(|n| {
            Ok(DbEndpoint {
                node: n.addr(),
                opts: sb.admin_opts(n.index)?,
            })
        })
        .collect::<Result<_>>()?;
    let (rec, writer) = Recorder::start(&dir.join("history.jsonl"))?;
    rec.record(Event::Config(RunConfig {
        scenario: scenario.name.into(),
        seed: opts.seed,
        required_faults: scenario
            .faults
            .iter()
            .map(|f| f.name().to_string())
            .collect(),
        // No failover happens in these scenarios: every acknowledged write must be on the master.
        acked_writes_covered: true,
        anti_flap_window_ns: 0,
    }));

    let stop = Arc::new(AtomicBool::new(false));
    let master = Arc::new(FixedMaster(Target {
        node: dbs[0].node.clone(),
        opts: dbs[0].opts.clone(),
        epoch: 1,
    }));
    let next_id = Arc::new(AtomicU64::new(1));
    let mut tasks = Vec::new();
    for process in 1..=opts.clients {
        tasks.push(tokio::spawn(workload::client(
            process,
            master.clone(),
            next_id.clone(),
            stop.clone(),
            Duration::from_millis(5),
            rec.clone(),
        )));
    }
    tasks.push(tokio::spawn(observe::observer(
        dbs.clone(),
        Duration::from_millis(200),
        stop.clone(),
        rec.clone(),
    )));

    let mut rng = StdRng::seed_from_u64(opts.seed);
    let nemesis_result = nemesis(scenario, &sb, &faults, &mut rng, opts.duration, &rec).await;

    // Heal whatever is still installed, let replication recover, then stop the workload.
    let _ = faults.heal();
    for node in sb.nodes() {
        if let Ok(Some(pid)) = sb.pid(node.index) {
            signal(pid, libc::SIGCONT);
        } else {
            let _ = sb.start_node(node.index).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let caught_up = sb.wait_replicas_caught_up(Duration::from_secs(60)).await;
    for (i, db) in dbs.iter().enumerate() {
        let role = if i == 0 { "master" } else { "replica" };
        if let Err(e) = observe::final_read(db, role, &rec).await {
            eprintln!("final read of {} failed: {e:#}", db.node);
        }
    }
    drop(rec);
    let records = writer.await.context("history writer crashed")??;
    let mut report = checker::check(&records);
    if let Err(e) = nemesis_result.and(caught_up) {
        report.checks.push(checker::CheckResult {
            name: "harness",
            verdict: Verdict::Unknown,
            details: vec![format!("{e:#}")],
        });
        report.verdict = report.verdict.max(Verdict::Unknown);
    }
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    sb.down().await?;
    Ok(RunOutcome {
        scenario: scenario.name.into(),
        seed: opts.seed,
        dir,
        verdict: report.verdict,
        report,
        reproduce,
    })
}

/// Injects the scenario's faults one at a time until `duration` has passed.
async fn nemesis(
    scenario: &Scenario,
    sb: &Sandbox,
    faults: &NetFaults,
    rng: &mut StdRng,
    duration: Duration,
    rec: &Recorder,
) -> Result<()> {
    let start = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await; // warm-up: writes flow first
    if scenario.faults.is_empty() {
        tokio::time::sleep(duration.saturating_sub(start.elapsed())).await;
        return Ok(());
    }
    // Every fault kind once first (coverage), then random ones.
    let order = scenario.faults;
    let mut step = 0;
    while start.elapsed() < duration || step < order.len() {
        let fault = if step < order.len() {
            order[step]
        } else {
            scenario.faults[rng.random_range(0..scenario.faults.len())]
        };
        step += 1;
        let replica = rng.random_range(2..=sb.nodes().len());
        let hold = fault.hold(rng);
        inject(fault, replica, hold, sb, faults, rec).await?;
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1200))).await;
    }
    Ok(())
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a pid the sandbox reports as its own live mariadbd.
    unsafe {
        libc::kill(pid, sig);
    }
}

async fn inject(
    fault: Fault,
    replica: usize,
    hold: Duration,
    sb: &Sandbox,
    faults: &NetFaults,
    rec: &Recorder,
) -> Result<()> {
    let node = sb
        .node(if fault == Fault::PauseMasterBriefly {
            1
        } else {
            replica
        })?
        .clone();
    let started = |outcome, detail: String| {
        rec.record(Event::Nemesis {
            fault: fault.name().into(),
            action: NemesisAction::Start,
            outcome,
            detail,
        })
    };
    let stopped = |outcome, detail: String| {
        rec.record(Event::Nemesis {
            fault: fault.name().into(),
            action: NemesisAction::Stop,
            outcome,
            detail,
        })
    };
    match fault {
        Fault::KillReplica => {
            match sb.kill_node(node.index).await {
                Ok(()) => started(NemesisOutcome::Installed, format!("SIGKILL {}", node.name)),
                Err(e) => started(NemesisOutcome::Skipped, format!("{e:#}")),
            }
            tokio::time::sleep(hold).await;
            match sb.start_node(node.index).await {
                Ok(()) => stopped(
                    NemesisOutcome::Installed,
                    format!("restarted {}", node.name),
                ),
                Err(e) => stopped(NemesisOutcome::Indeterminate, format!("{e:#}")),
            }
        }
        Fault::PauseReplica | Fault::PauseMasterBriefly => {
            let Some(pid) = sb.pid(node.index)? else {
                started(
                    NemesisOutcome::Skipped,
                    format!("{} is not running", node.name),
                );
                return Ok(());
            };
            signal(pid, libc::SIGSTOP);
            started(
                NemesisOutcome::Installed,
                format!("SIGSTOP {} (pid {pid})", node.name),
            );
            tokio::time::sleep(hold).await;
            signal(pid, libc::SIGCONT);
            stopped(NemesisOutcome::Installed, format!("SIGCONT {}", node.name));
        }
        Fault::PartitionReplicaFromMaster => {
            let master = sb.node(1)?;
            match faults.cut(&node.name, master.ip) {
                Ok(()) => started(
                    NemesisOutcome::Installed,
                    format!("{} -x-> {}", node.name, master.addr()),
                ),
                Err(e) => started(NemesisOutcome::Skipped, format!("{e:#}")),
            }
            tokio::time::sleep(hold).await;
            match faults.heal() {
                Ok(()) => stopped(NemesisOutcome::Installed, "healed".into()),
                Err(e) => stopped(NemesisOutcome::Indeterminate, format!("{e:#}")),
            }
        }
    }
    Ok(())
}
