//! `raftmha demo`: the README's main job. Brings up a local MariaDB sandbox, writes through
//! the master, proves every acknowledged write reached every replica, and tears it down.
//!
//! The Failover issue extends this into the full demo (agents, three managers, SIGKILL of the
//! master, the failover phase by phase); the command and its flags stay the same.
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use mysql_async::prelude::Queryable;

use super::{CliError, CliResult};
use crate::sandbox::{Sandbox, SandboxGuard, SandboxSpec, render_status_table};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Working directory (wiped and recreated if it holds a stopped demo sandbox).
    #[arg(long, default_value = "/tmp/raftmha-demo")]
    pub dir: PathBuf,
    /// Address of the first MariaDB node.
    #[arg(long, default_value = "127.0.100.10")]
    pub base_ip: Ipv4Addr,
    /// Rows the demo writer inserts.
    #[arg(long, default_value_t = 200)]
    pub rows: u32,
    /// Use GTID replication.
    #[arg(long)]
    pub gtid: bool,
    /// Leave the sandbox running at the end (stop it with `raftmha sandbox down --dir DIR`).
    #[arg(long)]
    pub keep: bool,
}

pub async fn run(args: DemoArgs) -> CliResult {
    if args.rows == 0 {
        return Err(CliError::usage(anyhow::anyhow!(
            "--rows must be at least 1"
        )));
    }
    prepare_dir(&args.dir)?;
    let mut spec = SandboxSpec::new(&args.dir, 3, args.base_ip);
    spec.gtid = args.gtid;
    spec.validate().map_err(CliError::usage)?;

    let t0 = Instant::now();
    step(
        t0,
        "starting 3 MariaDB 10.11 nodes on loopback (node1 master, node2 and node3 replicas)",
    );
    let sb = SandboxGuard(Sandbox::up(spec).await.context("starting the sandbox")?);
    println!("{}", render_status_table(&sb.status().await));

    step(
        t0,
        &format!(
            "writing {} rows on the master, one transaction each",
            args.rows
        ),
    );
    let mut m = sb.conn(1).await?;
    m.query_drop("CREATE DATABASE IF NOT EXISTS demo").await?;
    m.query_drop("CREATE TABLE IF NOT EXISTS demo.writes (id INT PRIMARY KEY, at TIMESTAMP(6) DEFAULT NOW(6))")
        .await?;
    m.query_drop("TRUNCATE demo.writes").await?;
    for id in 1..=args.rows {
        m.exec_drop("INSERT INTO demo.writes (id) VALUES (?)", (id,))
            .await?;
    }
    m.disconnect().await.ok();

    step(t0, "waiting for both replicas to apply everything");
    sb.wait_replicas_caught_up(Duration::from_secs(30)).await?;
    for node in 1..=3 {
        let mut c = sb.conn(node).await?;
        let (count, checksum): (u64, Option<u64>) = c
            .query_first("SELECT COUNT(*), SUM(CRC32(id)) FROM demo.writes")
            .await?
            .unwrap_or((0, None));
        c.disconnect().await.ok();
        println!(
            "  node{node}: {count} rows, checksum {}",
            checksum.unwrap_or(0)
        );
        if count != u64::from(args.rows) {
            return Err(anyhow::anyhow!(
                "node{node} has {count} of {} acknowledged rows",
                args.rows
            )
            .into());
        }
    }
    println!("{}", render_status_table(&sb.status().await));
    step(t0, "every acknowledged write is on every replica");

    if args.keep {
        sb.disarm();
        println!(
            "sandbox kept in {}; stop it with `raftmha sandbox down --dir {}`",
            args.dir.display(),
            args.dir.display()
        );
    } else {
        step(t0, "tearing down");
        sb.down().await?;
    }
    Ok(())
}

fn step(t0: Instant, what: &str) {
    println!("[{:>6.2}s] {what}", t0.elapsed().as_secs_f64());
}

/// A previous demo's stopped sandbox is removed; anything else in the directory is refused.
fn prepare_dir(dir: &std::path::Path) -> Result<(), CliError> {
    if !dir.exists() {
        return Ok(());
    }
    match Sandbox::open(dir) {
        Ok(old) if !old.running_nodes().is_empty() => Err(CliError::usage(anyhow::anyhow!(
            "a demo is already running in {}; stop it with `raftmha sandbox down --dir {}`",
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
