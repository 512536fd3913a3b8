//! `raftmha demo`: the README's main job. Brings up 3 MariaDB nodes, 3 node agents, 3
//! managers and HAProxy on loopback, registers the cluster, runs a writer through HAProxy's
//! write address (which never changes), SIGKILLs the master, shows the
//! failover as the managers journal it (phase by phase, timed from the kill), verifies every
//! acknowledged write is on the new master and the remaining replica, prints MHA's Failover
//! Report and tears everything down (`--keep` keeps the databases).
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use mysql_async::prelude::Queryable;

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{CliError, CliResult};
use crate::api::server::now_ms;
use crate::failover::{FailoverPlan, FailoverReport, Phase};
use crate::manager::haproxy::{ProxyWriter, acks_by_old_after_new, acks_per_server};
use crate::manager::testbed::{CLUSTER, Testbed, TestbedOptions};
use crate::sandbox::{Sandbox, render_status_table};
use crate::state::{ClusterRecord, FailoverOutcome, StepPhase};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Working directory (wiped and recreated if it holds a stopped demo sandbox).
    #[arg(long, default_value = "/tmp/raftmha-demo")]
    pub dir: PathBuf,
    /// Address of the first MariaDB node.
    #[arg(long, default_value = "127.0.100.10")]
    pub base_ip: Ipv4Addr,
    /// Writes acknowledged before the master is killed.
    #[arg(long, default_value_t = 200)]
    pub rows: u32,
    /// Use GTID replication.
    #[arg(long)]
    pub gtid: bool,
    /// Keep the databases running at the end (stop them with `raftmha sandbox down --dir DIR/db`).
    #[arg(long)]
    pub keep: bool,
}

pub async fn run(args: DemoArgs) -> CliResult {
    if args.rows == 0 {
        return Err(CliError::usage(anyhow::anyhow!(
            "--rows must be at least 1"
        )));
    }
    let [a, b, subnet, _] = args.base_ip.octets();
    if (a, b) != (127, 0) {
        return Err(CliError::usage(anyhow::anyhow!(
            "--base-ip must be a 127.0.X.Y address (the demo uses all of 127.0.X.0/24)"
        )));
    }
    prepare_dir(&args.dir)?;
    let bin = std::env::current_exe().context("locating the raftmha binary")?;

    let t0 = Instant::now();
    step(
        t0,
        &format!(
            "starting 3 MariaDB 10.11 nodes on 127.0.{subnet}.10-12 (node1 master), 3 node agents \
             (routing checks on :8008), 3 managers on 127.0.{subnet}.1-3 and HAProxy on \
             127.0.{subnet}.20; registering cluster {CLUSTER}"
        ),
    );
    let opts = TestbedOptions {
        gtid: args.gtid,
        haproxy: true,
        ..TestbedOptions::default()
    };
    let tb = Arc::new(Testbed::up(&bin, &args.dir, subnet, &opts).await?);
    println!("{}", render_status_table(&tb.sandbox.status().await));
    step(t0, "the managers agree node1 is the master and monitor it");
    let write_addr = tb.write_addr();
    step(
        t0,
        &format!(
            "HAProxy routes {write_addr} to whichever agent answers GET /master (node1 now), \
             {} to those answering GET /replica",
            tb.read_addr()
        ),
    );

    tb.create_app_table("demo", "writes").await?;
    let server_ids = [
        tb.server_id(1).await?,
        tb.server_id(2).await?,
        tb.server_id(3).await?,
    ];
    let node_of = |id: u32| server_ids.iter().position(|s| *s == id).map(|i| i + 1);
    step(
        t0,
        &format!(
            "a writer inserts rows, one transaction each, always through {write_addr} \
             (an application account; each row records the server that committed it)"
        ),
    );
    let writer = ProxyWriter::start(Testbed::app_opts(&write_addr)?, "demo.writes");
    writer
        .wait_more(args.rows as usize, Duration::from_secs(60))
        .await?;

    step(
        t0,
        &format!(
            "{} writes acknowledged through {write_addr}, all by node1; SIGKILL node1 (the master)",
            writer.count()
        ),
    );
    let kill_ms = now_ms();
    let killed_at = Instant::now();
    tb.sandbox.kill_node(1).await?;
    let record = follow_failover(&tb, kill_ms).await?;
    let master = record.master.clone().context("no master recorded")?;
    let new_master = Testbed::index_of(&master).context("unexpected server name")?;
    writer.wait_more(20, Duration::from_secs(60)).await?;
    let first = writer
        .first_ack_by(server_ids[new_master - 1], killed_at)
        .context("no write acknowledged by the new master")?;
    step(
        t0,
        &format!(
            "the writer's address is still {write_addr}; its writes now land on {master} \
             (kill → failover finished: {:.2} s, kill → first write acknowledged through \
             HAProxy: {:.2} s)",
            record
                .failovers
                .back()
                .and_then(|f| f.finished.as_ref())
                .map_or(0.0, |(_, at)| at.saturating_sub(kill_ms) as f64 / 1000.0),
            first.at.duration_since(killed_at).as_secs_f64()
        ),
    );
    let acks = writer.stop().await;
    let stray = acks_by_old_after_new(&acks, server_ids[0]);
    if !stray.is_empty() {
        return Err(anyhow::anyhow!(
            "node1 acknowledged {} writes through HAProxy after the new master did",
            stray.len()
        )
        .into());
    }
    let per_node: Vec<String> = acks_per_server(&acks)
        .into_iter()
        .map(|(id, n)| format!("{n} by node{}", node_of(id).unwrap_or(0)))
        .collect();
    println!("  acknowledged through HAProxy: {}", per_node.join(", "));
    let acked: BTreeSet<u64> = acks.iter().map(|a| a.id).collect();

    let new_master = Testbed::index_of(&master).context("unexpected server name")?;
    let other = if new_master == 2 { 3 } else { 2 };
    step(
        t0,
        &format!(
            "checking all {} acknowledged writes on node{new_master} and node{other}",
            acked.len()
        ),
    );
    let on_master = ids(&tb, new_master).await?;
    let mut on_other = ids(&tb, other).await?;
    for _ in 0..250 {
        if on_other == on_master {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        on_other = ids(&tb, other).await?;
    }
    let missing: Vec<_> = acked.difference(&on_master).collect();
    if !missing.is_empty() {
        return Err(
            anyhow::anyhow!("acknowledged writes missing on the new master: {missing:?}").into(),
        );
    }
    if on_other != on_master {
        return Err(anyhow::anyhow!("node{other} did not converge with the new master").into());
    }
    println!(
        "  node{new_master}: {} rows, node{other}: {} rows, every acknowledged write present",
        on_master.len(),
        on_other.len()
    );
    println!("{}", render_status_table(&tb.sandbox.status().await));
    if let Some(report) = record
        .failovers
        .back()
        .and_then(|f| f.report.as_deref())
        .and_then(|json| serde_json::from_str::<FailoverReport>(json).ok())
    {
        println!("{}", report.render_text());
    }

    let Ok(tb) = Arc::try_unwrap(tb) else {
        return Err(anyhow::anyhow!("the writer still holds the testbed").into());
    };
    if args.keep {
        tb.sandbox.disarm();
        println!(
            "databases kept in {}/db (managers and agents stopped); stop them with `raftmha sandbox down --dir {}/db`",
            args.dir.display(),
            args.dir.display()
        );
    } else {
        step(t0, "tearing down");
        tb.down().await?;
    }
    Ok(())
}

async fn ids(tb: &Testbed, node: usize) -> anyhow::Result<BTreeSet<u64>> {
    let mut c = tb.sandbox.conn(node).await?;
    let v: Vec<u64> = c.query("SELECT id FROM demo.writes").await?;
    c.disconnect().await.ok();
    Ok(v.into_iter().collect())
}

/// Prints every journal entry of the failover as it is committed, with its time since the
/// kill, until the failover finishes.
async fn follow_failover(tb: &Testbed, kill_ms: u64) -> anyhow::Result<ClusterRecord> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut shown = 0;
    let mut started = false;
    let mut plan: Option<FailoverPlan> = None;
    let mut phase: Option<Phase> = None;
    loop {
        if let Some(c) = tb.cluster().await
            && let Some(f) = c.failovers.back()
        {
            let at = |ms: u64| ms.saturating_sub(kill_ms) as f64 / 1000.0;
            if !started {
                started = true;
                println!(
                    "  +{:.3}s  a quorum of managers sees {} dead: failover {} started",
                    at(f.started_at_ms),
                    f.dead_master,
                    f.id
                );
            }
            for s in f.steps.iter().skip(shown) {
                if s.step == "plan"
                    && let Ok(p) = serde_json::from_str::<FailoverPlan>(&s.detail)
                {
                    plan = Some(p);
                    continue;
                }
                if s.phase != StepPhase::Intent {
                    continue;
                }
                let step_phase = match s.step.strip_prefix("step.") {
                    None => Some(Phase::Fence),
                    Some(id) => plan.as_ref().and_then(|p| {
                        let id: u32 = id.parse().ok()?;
                        p.steps.iter().find(|st| st.id == id).map(|st| st.phase)
                    }),
                };
                if step_phase.is_some() && step_phase != phase {
                    phase = step_phase;
                    if let Some(ph) = phase {
                        println!("  {ph}");
                    }
                }
                println!("    +{:.3}s  {}", at(s.at_ms), s.detail);
            }
            shown = f.steps.len();
            if let Some((outcome, fin)) = &f.finished {
                println!("  +{:.3}s  failover finished: {outcome:?}", at(*fin));
                if *outcome != FailoverOutcome::Succeeded {
                    anyhow::bail!("the failover did not succeed");
                }
                return Ok(c);
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!("no failover finished within a minute");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn step(t0: Instant, what: &str) {
    println!("[{:>6.2}s] {what}", t0.elapsed().as_secs_f64());
}

/// A previous demo's stopped sandbox is removed; anything else in the directory is refused.
fn prepare_dir(dir: &std::path::Path) -> Result<(), CliError> {
    if !dir.exists() {
        return Ok(());
    }
    // Earlier versions kept the demo's sandbox in DIR itself, this one in DIR/db.
    let old = Sandbox::open(&dir.join("db")).or_else(|_| Sandbox::open(dir));
    match old {
        Ok(old) if !old.running_nodes().is_empty() => Err(CliError::usage(anyhow::anyhow!(
            "a demo is already running in {}; stop it with `raftmha sandbox down --dir {}/db`",
            dir.display(),
            dir.display()
        ))),
        Ok(_) => std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot remove the old demo in {}", dir.display()))
            .map_err(Into::into),
        Err(_)
            if dir
                .read_dir()
                .map(|mut d| d.next().is_none())
                .unwrap_or(false) =>
        {
            Ok(())
        }
        Err(_) => Err(CliError::usage(anyhow::anyhow!(
            "{} exists and is not a demo sandbox; pass another --dir",
            dir.display()
        ))),
    }
}
