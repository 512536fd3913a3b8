//! `raftmha-jepsen bench scale --clusters N [--real R] [--simulated S]`: what it costs three
//! managers to watch N clusters of 3 servers, and the failover of one real cluster while all
//! the others are watched.
//!
//! Layout: the first real cluster (`jepsen`, the failover bench's) at `--base-ip`, its
//! agents, and the 3 managers (`127.0.<base+1>.{1,2,3}`, `/metrics` on port 7180); the other
//! real clusters (`real-I`, 3 real `mariadbd` each with real `raftmha-node` agents) at
//! `127.2.I.10-12`; the **simulated** clusters (`sim-I`) in one `raftmha-jepsen
//! sim-servers` process (see [`crate::sim`]): server K at `127.3.K/200.(K%200+10):3306`,
//! its in-process agent on port 7600 of the same address. Every cluster is registered with
//! the product's default settings and its master named (node 1).
//!
//! Then, after `--settle` seconds, over a `--window` of steady state: each manager's CPU
//! (user+sys from `/proc/<pid>/stat`) and RSS, the leader's Raft log entries/s and bytes/s
//! (`raftmha_raft_last_log_index`, `raftmha_raft_log_appended_bytes`), the snapshot size
//! (the state as a snapshot encodes it, and the newest snapshot file), the admin API's
//! `status` and full state read (the cluster list) latencies; then `--failovers` real
//! clusters lose their master one after the other (SIGKILL), each measured by the failover
//! bench's own code ([`super::failover::measure`]).
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use raftmha::api::client::AdminClient;
use raftmha::chaos::NetFaults;
use raftmha::sandbox::SandboxGuard;
use raftmha::state::Command as StateCommand;
use raftmha::state::cluster_file::ClusterSpec;

use super::election::Summary;
use super::failover::{FailoverArgs, Fault, Kind, Target, measure, settings_toml};
use super::scale_probe::{cpu_seconds, load_average, metric, newest_snapshot_bytes, rss_mib};
use super::scale_report::{ManagerCost, Report, print_report};
use crate::observe::DbEndpoint;
use crate::sim::{SimServer, SimSpec};
use crate::system::{self, AGENT_PORT, Agents, CLUSTER};

#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    /// Clusters of 3 servers to watch in all (real + simulated).
    #[arg(long)]
    pub clusters: usize,
    /// Of those, simulated ones (the rest are real MariaDB clusters; at least 1 is real).
    #[arg(long, default_value_t = 0)]
    pub simulated: usize,
    /// Servers per cluster (3: the failover bench's layout).
    #[arg(long, default_value_t = 3)]
    pub servers_per_cluster: usize,
    /// Seconds after the last registration before measuring.
    #[arg(long, default_value_t = 15)]
    pub settle: u64,
    /// Seconds of steady state measured.
    #[arg(long, default_value_t = 30)]
    pub window: u64,
    /// Real clusters whose master is killed (one after the other), at most the real ones.
    #[arg(long, default_value_t = 1)]
    pub failovers: usize,
    /// Address of the first real cluster (managers use the next /24).
    #[arg(long, default_value = "127.0.244.10")]
    pub base_ip: Ipv4Addr,
    #[arg(long, default_value = "target/jepsen-runs/scale")]
    pub out: PathBuf,
    #[arg(long)]
    pub json: bool,
}

/// A real cluster besides the first: its databases and agents.
struct RealCluster {
    name: String,
    sb: SandboxGuard,
    agents: Agents,
    dir: PathBuf,
    dbs: Option<Vec<DbEndpoint>>,
}

fn failover_args(args: &ScaleArgs) -> FailoverArgs {
    FailoverArgs {
        runs: 1,
        base_ip: args.base_ip,
        out: args.out.clone(),
        timeout: 60,
        ping_interval_ms: None,
        lagging: false,
        via_haproxy: false,
        fault: Fault::Kill,
        lease_ttl_ms: None,
        db_options: Vec::new(),
        json: false,
    }
}

fn sim_ip(k: usize) -> String {
    format!("127.3.{}.{}", k / 200, k % 200 + 10)
}

/// The cluster file of simulated cluster `i` (servers `i*per .. (i+1)*per`).
fn sim_cluster_toml(dir: &Path, i: usize, per: usize) -> String {
    let secrets = dir.join("secrets");
    let token = dir.join("agents").join("token");
    let mut text = format!(
        "name = \"sim-{i}\"\n\n[users]\nadmin_user = \"sim\"\nadmin_password_file = {:?}\n\
         repl_user = \"repl\"\nrepl_password_file = {:?}\nagent_token_file = {token:?}\n\n[settings]\n",
        secrets.join("admin.password"),
        secrets.join("repl.password"),
    );
    for j in 0..per {
        let ip = sim_ip(i * per + j);
        text.push_str(&format!(
            "\n[[server]]\nname = \"s{j}\"\nhost = \"{ip}\"\nport = 3306\nagent = \"{ip}:{AGENT_PORT}\"\n\
             candidate_master = true\npriority = {}\n",
            j + 1
        ));
    }
    text
}

/// Starts the simulated servers' process; killed on drop.
struct Simulator(Child);

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_simulator(dir: &Path, clusters: usize, per: usize) -> Result<Simulator> {
    let servers = (0..clusters * per)
        .map(|k| {
            let master = k - k % per;
            SimServer {
                ip: sim_ip(k),
                port: 3306,
                server_id: u32::try_from(k % per + 1).unwrap_or(1),
                source: (k != master).then(|| (sim_ip(master), 3306)),
                agent_port: Some(AGENT_PORT),
            }
        })
        .collect();
    let spec = SimSpec {
        servers,
        agent_token_file: dir.join("agents").join("token"),
        work_dir: dir.join("sim"),
        heartbeat_period_s: 0.25,
    };
    std::fs::create_dir_all(&spec.work_dir)?;
    let path = dir.join("sim-servers.json");
    std::fs::write(&path, serde_json::to_vec(&spec)?)?;
    let log = std::fs::File::create(dir.join("sim-servers.log"))?;
    let child = Command::new(std::env::current_exe()?)
        .arg("sim-servers")
        .arg("--spec")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting the simulated servers")?;
    Ok(Simulator(child))
}

/// Proposes `command`, retrying through elections (the managers are measured under load);
/// a rejection saying the work is already done counts as done.
async fn write_retrying(client: &AdminClient, command: StateCommand) -> Result<()> {
    let mut last = None;
    for _ in 0..20 {
        match system::write(client, command.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if format!("{e:#}").contains("already") => return Ok(()),
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("not written")))
}

async fn register(client: &AdminClient, text: &str, master: &str) -> Result<()> {
    let spec = ClusterSpec::parse(text).map_err(|e| anyhow::anyhow!("cluster file: {e}"))?;
    let name = spec.name.clone();
    write_retrying(
        client,
        StateCommand::RegisterCluster {
            spec: Box::new(spec),
        },
    )
    .await?;
    // The engine may have found the master itself already: "already has a master" is fine.
    write_retrying(
        client,
        StateCommand::SetInitialMaster {
            cluster: name,
            server: master.into(),
        },
    )
    .await
}

async fn start_real(
    i: usize,
    dir: &Path,
    faults: &NetFaults,
    fargs: &FailoverArgs,
) -> Result<RealCluster> {
    let dir = dir.join(format!("real-{i}"));
    std::fs::create_dir_all(&dir)?;
    let ip = Ipv4Addr::new(
        127,
        2,
        u8::try_from(i).context("at most 250 real clusters")?,
        10,
    );
    let sb = super::failover::start_databases(fargs, &dir, ip, faults).await?;
    let agents = system::start_agents(&sb, faults, &dir)?;
    Ok(RealCluster {
        name: format!("real-{i}"),
        sb,
        agents,
        dir,
        dbs: None,
    })
}

fn summary_of(mut samples: Vec<f64>) -> Summary {
    samples.retain(|s| s.is_finite());
    Summary::of(samples)
}

async fn latencies<F, Fut>(n: usize, f: F) -> Summary
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let ok = f().await;
        v.push(if ok {
            t.elapsed().as_secs_f64() * 1000.0
        } else {
            f64::NAN
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    summary_of(v)
}

pub async fn main(args: ScaleArgs) -> Result<()> {
    if args.clusters == 0 || args.simulated >= args.clusters {
        bail!("--clusters must be at least 1 and exceed --simulated (one real cluster at least)");
    }
    if args.servers_per_cluster != 3 {
        bail!("--servers-per-cluster: only 3 is supported (the failover bench's layout)");
    }
    let real = args.clusters - args.simulated;
    if args.failovers > real {
        bail!(
            "--failovers {} exceeds the {real} real clusters",
            args.failovers
        );
    }
    let dir = std::path::absolute(&args.out)?.join(format!("scale-{}", args.clusters));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let faults = NetFaults::new(&format!("js{}", std::process::id()))?;
    let fargs = failover_args(&args);
    let per = args.servers_per_cluster;

    eprintln!("starting the first real cluster and the managers");
    let sb = super::failover::start_databases(&fargs, &dir, args.base_ip, &faults).await?;
    let dbs = system::prepare_databases(&sb).await?;
    let mut sys = system::start_configured(
        &sb,
        &faults,
        &dir,
        args.base_ip,
        &settings_toml(&fargs),
        |m| m.http = true,
    )
    .await?;
    let client = sys.managers.client(1).forwarding();

    let mut reals = Vec::new();
    for i in 1..real {
        eprintln!("starting real cluster {i} of {}", real - 1);
        let r = start_real(i, &dir, &faults, &fargs).await?;
        for node in r.sb.nodes() {
            system::wait_agent(&format!("{}:{AGENT_PORT}", node.ip)).await?;
        }
        let text = system::cluster_toml_named(&r.sb, &r.dir, &r.name, "")?;
        register(&client, &text, &r.sb.node(1)?.name).await?;
        reals.push(r);
    }
    let _sim = match args.simulated {
        0 => None,
        n => {
            eprintln!(
                "starting {n} simulated clusters ({} simulated servers)",
                n * per
            );
            let s = start_simulator(&dir, n, per)?;
            system::wait_agent(&format!("{}:{AGENT_PORT}", sim_ip(n * per - 1))).await?;
            let t = Instant::now();
            for i in 0..n {
                register(&client, &sim_cluster_toml(&dir, i, per), "s0").await?;
            }
            eprintln!("registered in {:.1} s", t.elapsed().as_secs_f64());
            Some(s)
        }
    };
    eprintln!("settling {} s", args.settle);
    tokio::time::sleep(Duration::from_secs(args.settle)).await;

    let pids: Vec<(u64, u32)> = [1u64, 2, 3]
        .iter()
        .filter_map(|id| Some((*id, sys.managers.pid(*id)?)))
        .collect();
    let leader = system::wait_leader(&sys.managers, &[1, 2, 3], Duration::from_secs(10)).await?;
    let metrics_addr = format!(
        "{}:{}",
        sys.managers.ip(leader),
        raftmha::manager::local::HTTP_PORT
    );
    let load_before = load_average();
    let sim_pid = _sim.as_ref().map(|s| s.0.id());
    let cpu0: Vec<Option<f64>> = pids.iter().map(|(_, p)| cpu_seconds(*p)).collect();
    let sim0 = sim_pid.and_then(cpu_seconds);
    let index0 = metric(&metrics_addr, "raftmha_raft_last_log_index").await?;
    let term0 = metric(&metrics_addr, "raftmha_raft_term").await?;
    let bytes0 = metric(&metrics_addr, "raftmha_raft_log_appended_bytes").await?;
    let t0 = Instant::now();
    eprintln!("measuring {} s of steady state", args.window);
    tokio::time::sleep(Duration::from_secs(args.window)).await;
    let index1 = metric(&metrics_addr, "raftmha_raft_last_log_index").await?;
    let bytes1 = metric(&metrics_addr, "raftmha_raft_log_appended_bytes").await?;
    let window = t0.elapsed().as_secs_f64();
    let managers: Vec<ManagerCost> = pids
        .iter()
        .zip(&cpu0)
        .map(|((id, pid), c0)| ManagerCost {
            id: *id,
            role: if *id == leader { "leader" } else { "follower" }.into(),
            cpu_cores: match (c0, cpu_seconds(*pid)) {
                (Some(a), Some(b)) => (b - a) / window,
                _ => f64::NAN,
            },
            rss_mib: rss_mib(*pid).unwrap_or(f64::NAN),
        })
        .collect();
    let simulator_cpu_cores = match (sim0, sim_pid.and_then(cpu_seconds)) {
        (Some(a), Some(b)) => Some((b - a) / window),
        _ => None,
    };
    let load_after = load_average();
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let mariadbd_rss_mib = mean(
        (1..=per)
            .filter_map(|i| sb.pid(i).ok().flatten())
            .filter_map(|p| rss_mib(u32::try_from(p).ok()?))
            .collect(),
    );
    let agent_rss_mib = mean(
        sb.nodes()
            .iter()
            .filter_map(|n| rss_mib(sys.agents.pid(&n.name)?))
            .collect(),
    );

    let term1 = metric(&metrics_addr, "raftmha_raft_term")
        .await
        .unwrap_or(0);
    let mut state = None;
    for _ in 0..10 {
        match client.read_state().await {
            Ok((s, _)) => {
                state = Some(s);
                break;
            }
            // An election may be under way (the managers were measured under load).
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    let state = state.context("no manager answered a state read within 5 s")?;
    let state_bytes = serde_json::to_vec(&state)?.len();
    let clusters_seen_alive_by_all = state
        .clusters
        .values()
        .filter(|c| {
            c.master
                .as_ref()
                .and_then(|m| c.verdicts.get(m))
                .is_some_and(|by| {
                    by.len() == 3
                        && by
                            .values()
                            .all(|v| v.verdict == raftmha::state::Verdict::Alive)
                })
        })
        .count();
    let newest_snapshot_file_bytes = newest_snapshot_bytes(&sys.managers.data_dir(leader));
    let one = sys.managers.client(leader);
    let status = latencies(20, || async { one.status().await.is_ok() }).await;
    let state_read = latencies(20, || async { one.read_state().await.is_ok() }).await;
    // A manager that predates one-cluster reads answers with the whole state: same numbers.
    let cluster_read = latencies(20, || async { one.read_cluster(CLUSTER).await.is_ok() }).await;

    let mut failover_samples = Vec::new();
    for n in 0..args.failovers {
        let (name, sb_ref, dbs_ref, agents, dir_ref): (
            &str,
            &raftmha::sandbox::Sandbox,
            Vec<DbEndpoint>,
            &Agents,
            &Path,
        ) = if n == 0 {
            (CLUSTER, &sb, dbs.clone(), &sys.agents, &dir)
        } else {
            let r = &mut reals[n - 1];
            if r.dbs.is_none() {
                r.dbs = Some(system::prepare_databases(&r.sb).await?);
            }
            (
                &r.name,
                &r.sb,
                r.dbs.clone().unwrap_or_default(),
                &r.agents,
                &r.dir,
            )
        };
        eprintln!(
            "failover {} of {}: killing the master of {name}",
            n + 1,
            args.failovers
        );
        let target = Target {
            sb: sb_ref,
            dbs: &dbs_ref,
            faults: &faults,
            dir: dir_ref,
            cluster: name,
            agents,
        };
        let s = measure(Kind::Failover, &fargs, target, &mut sys.managers)
            .await
            .with_context(|| format!("failover of {name}"))?;
        eprintln!(
            "  writable after {:.0} ms (detection {:.0} ms)",
            s.writable_ms, s.detection_ms
        );
        failover_samples.push(s);
    }
    let failover_writable = summary_of(failover_samples.iter().map(|s| s.writable_ms).collect());
    let report = Report {
        bench: "scale",
        clusters: args.clusters,
        real_clusters: real,
        simulated_clusters: args.simulated,
        watched_servers: args.clusters * per,
        clusters_seen_alive_by_all,
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        simulated_note: "simulated clusters: MySQL-protocol stand-ins (no data) with in-process raftmha-node agents, one process; failovers run on real MariaDB clusters only",
        window_s: window,
        load_average_before: load_before,
        load_average_after: load_after,
        managers,
        simulator_cpu_cores,
        mariadbd_rss_mib,
        agent_rss_mib,
        elections_in_window: term1.saturating_sub(term0),
        raft_entries_per_s: index1.saturating_sub(index0) as f64 / window,
        raft_bytes_per_s: bytes1.saturating_sub(bytes0) as f64 / window,
        state_bytes,
        newest_snapshot_file_bytes,
        status,
        state_read,
        cluster_read,
        failover_writable,
        failover_samples,
    };
    for r in reals {
        drop(r.agents);
        r.sb.down().await?;
    }
    drop(sys);
    sb.down().await?;
    print_report(&report, args.json)
}
