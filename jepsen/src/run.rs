//! One run of one scenario with one seed: set up, record, inject faults, heal, read, check.
//!
//! Everything a run produced stays in its folder: `test.json` (scenario, seed, the command that
//! reproduces it), `history.jsonl`, `results.json`, and `db/nodeK/` with every mariadbd's
//! error log and binlogs.
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use raftmha::api::client::AdminClient;
use raftmha::chaos::NetFaults;
use raftmha::sandbox::{Sandbox, SandboxGuard, SandboxSpec};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use crate::checker::{self, Report, Verdict};
use crate::history::{Event, RunConfig};
use crate::managers::{self, ManagerDirectory};
use crate::nemesis::{Nemesis, signal};
use crate::observe::{self, DbEndpoint};
use crate::recorder::Recorder;
use crate::scenario::Scenario;

/// How long after healing the run waits for a write to be acknowledged again.
const WRITABLE_AFTER_HEAL: Duration = Duration::from_secs(20);
use crate::workload::{self, MasterDirectory};

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

/// How long healing waits for a failover or operation still in flight to end (longer than
/// one step's 30 s limit, so a step that hangs ends first).
const RUN_SETTLES: Duration = Duration::from_secs(45);

/// The replicated state once no run is in flight (or as it is after [`RUN_SETTLES`]).
async fn settled_state(clients: &[AdminClient]) -> Option<raftmha::state::ManagerState> {
    let deadline = tokio::time::Instant::now() + RUN_SETTLES;
    loop {
        let state = crate::system::read_state(clients).await;
        let running = state.as_ref().is_some_and(|s| {
            s.clusters
                .values()
                .any(|c| c.failovers.iter().any(|f| f.finished.is_none()))
        });
        if !running || tokio::time::Instant::now() > deadline {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn reproduce_command(scenario: &str, opts: &RunOptions) -> String {
    format!(
        "raftmha-jepsen run --scenario {scenario} --seed {} --duration {} --base-ip {} --clients {}",
        opts.seed,
        opts.duration.as_secs(),
        opts.base_ip,
        opts.clients
    )
}

pub async fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunOutcome> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Absolute: the agents and managers of the run refuse relative paths in their configs.
    let out_root = std::path::absolute(&opts.out_root)
        .with_context(|| format!("cannot resolve {}", opts.out_root.display()))?;
    let dir = out_root.join(format!("{}-seed{}-{stamp}", scenario.name, opts.seed));
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
    let dbs: Vec<DbEndpoint> = crate::system::prepare_databases(&sb).await?;
    let (rec, writer) = Recorder::start(&dir.join("history.jsonl"))?;
    let mut system = crate::system::start(
        &sb,
        &faults,
        &dir,
        opts.base_ip,
        crate::system::CHAOS_SETTINGS,
    )
    .await
    .context("starting agents and managers")?;
    rec.record(Event::Config(RunConfig {
        scenario: scenario.name.into(),
        seed: opts.seed,
        required_faults: scenario
            .faults
            .iter()
            .map(|f| f.name().to_string())
            .collect(),
        // Without a failover every acknowledged write must be on the master; failover
        // scenarios run semi-sync AFTER_SYNC, which covers every acknowledged write too.
        acked_writes_covered: scenario.acked_writes_covered(),
        anti_flap_window_ns: 480 * 60 * 1_000_000_000,
        expect_no_failover: scenario.expects_no_failover(),
        expect_failover: scenario.expects_failover,
        semi_sync: scenario.semi_sync,
        managers: true,
    }));

    let stop = Arc::new(AtomicBool::new(false));
    let ids = [1u64, 2, 3];
    let observed: Vec<(u64, AdminClient)> = ids
        .iter()
        .map(|id| {
            (
                *id,
                system
                    .managers
                    .client_with_timeout(*id, Duration::from_millis(400)),
            )
        })
        .collect();
    let clients: Vec<AdminClient> = observed.iter().map(|(_, c)| c.clone()).collect();
    let dir_stop = Arc::new(AtomicBool::new(false));
    let (master, directory_task) = ManagerDirectory::start(
        clients.clone(),
        dbs.clone(),
        Duration::from_millis(100),
        dir_stop.clone(),
    );
    let master = Arc::new(master);
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
        clients.clone(),
        Duration::from_millis(200),
        stop.clone(),
        rec.clone(),
    )));
    tasks.push(tokio::spawn(managers::observer(
        observed.clone(),
        Duration::from_millis(200),
        stop.clone(),
        rec.clone(),
    )));

    let mut rng = StdRng::seed_from_u64(opts.seed);
    let nemesis_log = crate::nemesis::NemesisLog::new(rec.clone());
    let mut nemesis = Nemesis {
        sb: &sb,
        faults: &faults,
        system: &mut system,
        clients: clients.clone(),
        rec: &nemesis_log,
        lag_replicas_first: scenario.lagging,
        seed: opts.seed,
    };
    let nemesis_result = nemesis.run(scenario, &mut rng, opts.duration).await;

    // Heal whatever is still installed, let replication recover, then stop the workload.
    let _ = faults.heal();
    for node in sb.nodes() {
        if let Ok(Some(pid)) = sb.pid(node.index) {
            signal(pid, libc::SIGCONT);
        }
    }
    for id in ids {
        match system.managers.pid(id) {
            Some(pid) => signal(pid as i32, libc::SIGCONT),
            None => system.managers.start(id),
        }
    }
    let healed = crate::system::wait_leader(&system.managers, &ids, Duration::from_secs(30)).await;
    // A run still in flight decides which dead database it replaces: let it end first
    // (bounded), so an old master is never restarted under a failover that is replacing it.
    let state = settled_state(&clients).await;
    // A dead database that a failover replaced stays down: MHA never re-adds a dead master by
    // itself (the operator does, as a replica), and restarting it writable would plant a
    // second master the harness itself created.
    // Replaced: the dead master of a successful failover (by the journal, not the epoch: a
    // master the managers discovered starts at epoch 0). Any other dead node is restarted,
    // e.g. a new master killed inside the anti-flapping window.
    let replaced: Vec<String> = state
        .and_then(|s| {
            s.clusters.get(crate::system::CLUSTER).map(|c| {
                c.failovers
                    .iter()
                    .filter(|f| {
                        matches!(
                            f.finished,
                            Some((raftmha::state::FailoverOutcome::Succeeded, _))
                        )
                    })
                    .map(|f| f.dead_master.clone())
                    .filter(|m| c.master.as_ref() != Some(m))
                    .collect()
            })
        })
        .unwrap_or_default();
    for node in sb.nodes() {
        if let Ok(Some(_)) = sb.pid(node.index) {
            continue;
        } else if replaced.contains(&node.name) {
            eprintln!("{} stays down: a failover replaced it", node.name);
        } else {
            let _ = sb.start_node(node.index).await;
        }
    }
    rec.record(Event::Healed);
    // The checker wants a write acknowledged after healing (a master left fenced, or no master
    // at all, is an outage the run must report); give the managers time to unfence/promote.
    let acks_at_heal = rec.acks();
    let deadline = tokio::time::Instant::now() + WRITABLE_AFTER_HEAL;
    while rec.acks() == acks_at_heal && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    dir_stop.store(true, Ordering::Relaxed);
    let _ = directory_task.await;
    let caught_up = sb.wait_replicas_caught_up(Duration::from_secs(60)).await;
    let final_master = master.current().await.map(|t| t.node);
    for db in &dbs {
        // A failed-over old master that came back replicates from nobody and is not part of
        // the topology until it is rejoined (`raftmha rejoin`): it is read, but not held to
        // convergence. A replica left pointing anywhere else is still compared (and fails).
        let source = observe::observe(db).await.source;
        let role = if Some(&db.node) == final_master.as_ref() {
            "master"
        } else if final_master.is_some() && source.is_none() {
            "detached"
        } else {
            "replica"
        };
        if let Err(e) = observe::final_read(db, role, &rec).await {
            eprintln!("final read of {} failed: {e:#}", db.node);
        }
    }
    managers::final_read(&observed, &rec).await;
    // The journal as the managers agree on it: who wrote each run's entries, how runs ended.
    if let Some(state) = crate::system::read_state(&clients).await {
        let addr = |name: &str| observe::address(&dbs, name);
        rec.record(crate::journal::journal_event(
            &state,
            crate::system::CLUSTER,
            &addr,
        ));
    }
    // Every recorder must be gone before the writer can finish.
    drop(nemesis_log);
    drop(rec);
    let records = writer.await.context("history writer crashed")??;
    let mut report = checker::check(&records);
    if let Err(e) = nemesis_result.and(healed.map(|_| ())).and(caught_up) {
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
