//! `raftmha-jepsen bench election --runs N`: Raft leader re-election time after SIGKILL of
//! the leader of a real 3-manager cluster, and committed commands per second through the
//! admin API.
//!
//! Per run: wait until all three managers agree on a leader and are caught up, SIGKILL the
//! leader, then poll the two survivors every 2 ms. `elected` is the time until a survivor
//! reports itself leader of a newer term; `writable` is the time until a command proposed
//! through a survivor commits. The killed manager is restarted before the next run.
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use raftmha::manager::local::{LocalManagers, wait_for};
use raftmha::state::Command;
use serde::Serialize;

use super::percentile;

#[derive(Debug, Clone, clap::Args)]
pub struct ElectionArgs {
    /// Number of leader kills (at least 20 for a meaningful p99).
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// The `raftmha` binary (default: next to this one).
    #[arg(long)]
    pub raftmha: Option<PathBuf>,
    /// Managers listen on 127.0.<subnet>.{1,2,3}:7100.
    #[arg(long, default_value_t = 60)]
    pub subnet: u8,
    /// Working directory (wiped first).
    #[arg(long, default_value = "/tmp/rmha-raft/bench-election")]
    pub dir: PathBuf,
    /// Seconds of each throughput measurement.
    #[arg(long, default_value_t = 5)]
    pub throughput_secs: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    pub fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        Summary {
            p50_ms: percentile(&samples, 50.0),
            p90_ms: percentile(&samples, 90.0),
            p99_ms: percentile(&samples, 99.0),
            max_ms: samples.last().copied().unwrap_or(f64::NAN),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Throughput {
    pub via: &'static str,
    pub concurrency: usize,
    pub commands: u64,
    pub per_second: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub runs: usize,
    pub timing: &'static str,
    pub elected: Summary,
    pub writable: Summary,
    pub elected_ms: Vec<f64>,
    pub writable_ms: Vec<f64>,
    pub throughput: Vec<Throughput>,
}

fn default_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot locate this executable")?;
    let bin = me.with_file_name("raftmha");
    if !bin.exists() {
        bail!(
            "{} not found: build it (cargo build -p raftmha) or pass --raftmha",
            bin.display()
        );
    }
    Ok(bin)
}

pub async fn run(args: ElectionArgs) -> anyhow::Result<Report> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let bin = match &args.raftmha {
        Some(b) => b.clone(),
        None => default_binary()?,
    };
    let mut m = LocalManagers::new(&bin, &args.dir, args.subnet, 3);
    m.start_all();
    let all = [1u64, 2, 3];
    let mut elected = Vec::new();
    let mut writable = Vec::new();
    for run in 0..args.runs {
        let (leader, term) = settled(&m).await;
        let survivors: Vec<u64> = all.into_iter().filter(|id| *id != leader).collect();
        let start = Instant::now();
        m.kill(leader);
        let (e, w) = measure(&m, &survivors, term, start).await;
        eprintln!(
            "run {:>3}: killed leader {leader} (term {term}): elected after {e:.1} ms, writable after {w:.1} ms",
            run + 1
        );
        elected.push(e);
        writable.push(w);
        m.start(leader);
    }
    let (leader, _) = settled(&m).await;
    let follower = all.into_iter().find(|id| *id != leader).unwrap_or(1);
    let secs = Duration::from_secs(args.throughput_secs.max(1));
    let mut throughput = Vec::new();
    for (via, id) in [("leader", leader), ("follower (forwarded)", follower)] {
        for concurrency in [1, 16] {
            throughput.push(measure_throughput(&m, id, via, concurrency, secs).await);
        }
    }
    Ok(Report {
        runs: args.runs,
        timing: "heartbeat 50 ms, election timeout 250-400 ms",
        elected: Summary::of(elected.clone()),
        writable: Summary::of(writable.clone()),
        elected_ms: elected,
        writable_ms: writable,
        throughput,
    })
}

/// Waits until all three managers agree on a leader, have applied the same index, and the
/// leader has held its term for a moment (so the lease is fully established).
async fn settled(m: &LocalManagers) -> (u64, u64) {
    let ids = [1u64, 2, 3];
    wait_for("a settled cluster", Duration::from_secs(60), || async {
        let leader = m.agreed_leader(&ids).await?;
        // A committed write proves the leader works and brings everyone level.
        m.client(leader).write(&Command::Noop).await.ok()?;
        let mut applied = Vec::new();
        let mut term = 0;
        for id in ids {
            let s = m.status(id).await?;
            applied.push(s.applied_index);
            term = term.max(s.term);
        }
        applied
            .windows(2)
            .all(|w| w[0] == w[1])
            .then_some((leader, term))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_for("a settled cluster", Duration::from_secs(60), || async {
        let leader = m.agreed_leader(&ids).await?;
        Some((leader, m.status(leader).await?.term))
    })
    .await
}

async fn measure(
    m: &LocalManagers,
    survivors: &[u64],
    old_term: u64,
    start: Instant,
) -> (f64, f64) {
    let poll = Duration::from_millis(2);
    let clients: Vec<_> = survivors
        .iter()
        .map(|id| m.client_with_timeout(*id, Duration::from_millis(200)))
        .collect();
    let mut elected = None;
    loop {
        for c in &clients {
            if elected.is_none()
                && let Ok(s) = c.status().await
                && s.role == "leader"
                && s.term > old_term
            {
                elected = Some(start.elapsed());
            }
        }
        if let Some(e) = elected {
            // Writable: a proposal through a survivor commits.
            let writer = m.client_with_timeout(survivors[0], Duration::from_secs(5));
            loop {
                if writer.write(&Command::Noop).await.is_ok() {
                    let w = start.elapsed();
                    return (ms(e), ms(w));
                }
                tokio::time::sleep(poll).await;
            }
        }
        tokio::time::sleep(poll).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn measure_throughput(
    m: &LocalManagers,
    id: u64,
    via: &'static str,
    concurrency: usize,
    secs: Duration,
) -> Throughput {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + secs;
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = m.client(id);
            let done = done.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    if client.write(&Command::Noop).await.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let commands = done.load(Ordering::Relaxed);
    Throughput {
        via,
        concurrency,
        commands,
        per_second: commands as f64 / start.elapsed().as_secs_f64(),
    }
}

pub fn render(r: &Report) -> String {
    let mut out = format!(
        "leader re-election after SIGKILL of the leader, {} runs ({})\n",
        r.runs, r.timing
    );
    for (name, s) in [("elected ", &r.elected), ("writable", &r.writable)] {
        out.push_str(&format!(
            "  {name}: p50 {:.0} ms  p90 {:.0} ms  p99 {:.0} ms  max {:.0} ms\n",
            s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
        ));
    }
    out.push_str("committed commands per second through the admin API:\n");
    for t in &r.throughput {
        out.push_str(&format!(
            "  via {:<22} concurrency {:>2}: {:>8.0}/s ({} commands)\n",
            t.via, t.concurrency, t.per_second, t.commands
        ));
    }
    out
}

/// Used by `main`: runs the benchmark and prints the report.
pub async fn main(args: ElectionArgs) -> anyhow::Result<()> {
    let json = args.json;
    let report = run(args).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}
