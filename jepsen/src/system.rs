//! The full system of a run: one `raftmha-node serve` agent per database host and three
//! `raftmha manager` processes, each in its own cgroup (so partitions can single it out), the
//! managed cluster registered through the admin API.
//!
//! Layout: database K listens on `base_ip + K-1`, its agent on the same address port 7600,
//! managers on `127.0.<third octet of base_ip + 1>.{1,2,3}:7100`. Every process writes its log
//! into the run folder (`agents/nodeK.log`, `managers/manager-N.log`); passwords and the tokens
//! live in files there too, never on a command line.
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use raftmha::api::client::AdminClient;
use raftmha::chaos::{NetFaults, process_in_group};
use raftmha::manager::local::LocalManagers;
use raftmha::sandbox::Sandbox;
use raftmha::state::cluster_file::ClusterSpec;
use raftmha::state::{ClusterRecord, Command as StateCommand, CommandResult, ManagerState};

/// Name of the managed cluster in every run.
pub const CLUSTER: &str = "jepsen";
pub const AGENT_PORT: u16 = 7600;
/// The agents' routing checks (`/master`, `/replica`) for HAProxy.
pub const ROUTE_PORT: u16 = 8008;
const AGENT_TOKEN: &str = "jepsen-agent-token-0123456789abcdef";

/// The agents of a run; each is SIGKILLed when this drops.
pub struct Agents {
    procs: Vec<(String, Child)>,
}

impl Agents {
    /// The process id of node `name`'s agent (to pause it with the host).
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.procs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.id())
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        for (_, child) in &mut self.procs {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Everything beyond the databases.
pub struct System {
    pub managers: LocalManagers,
    pub agents: Agents,
}

/// A binary that ships next to `raftmha-jepsen` (same cargo target directory).
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate raftmha-jepsen itself")?;
    let dir = exe
        .parent()
        .context("raftmha-jepsen has no parent directory")?;
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build it first (`cargo build -p {}`)",
            path.display(),
            if name == "raftmha" {
                "raftmha"
            } else {
                "raftmha-node"
            }
        );
    }
    Ok(path)
}

/// The managers' third address octet for a run whose databases start at `base_ip`.
pub fn manager_subnet(base_ip: Ipv4Addr) -> Result<u8> {
    let o = base_ip.octets();
    o[2].checked_add(1)
        .context("--base-ip third octet must be below 255 (managers use the next one)")
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Starts one agent per database node, each in cgroup `agentK`.
pub fn start_agents(sb: &Sandbox, faults: &NetFaults, dir: &Path) -> Result<Agents> {
    let bin = sibling_binary("raftmha-node")?;
    let root = dir.join("agents");
    std::fs::create_dir_all(&root)?;
    let token = root.join("token");
    write_secret(&token, AGENT_TOKEN)?;
    let password = root.join("admin.password");
    write_secret(&password, &sb.credentials().admin_password)?;
    let mut agents = Agents { procs: Vec::new() };
    for node in sb.nodes() {
        let work = root.join(format!("{}-work", node.name));
        std::fs::create_dir_all(&work)?;
        let config = format!(
            "listen = \"{ip}:{AGENT_PORT}\"\nhttp_listen = \"{ip}:{ROUTE_PORT}\"\nbinlog_dir = {datadir:?}\nrelay_dir = {datadir:?}\n\
             workdir = {work:?}\ntoken_file = {token:?}\nmysqld_pid_file = {pid:?}\n\
             allow_stop_mysqld = true\n\n[db]\nhost = \"{ip}\"\nport = {port}\nuser = {user:?}\n\
             password_file = {password:?}\n",
            ip = node.ip,
            datadir = node.datadir,
            pid = node.pid_file,
            port = node.port,
            user = sb.credentials().admin_user,
        );
        let config_path = root.join(format!("{}.toml", node.name));
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(root.join(format!("{}.log", node.name)))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        process_in_group(&mut cmd, &faults.group(&format!("agent{}", node.index))?)?;
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        agents.procs.push((node.name.clone(), child));
    }
    Ok(agents)
}

/// The `[settings]` of chaos runs (the scenarios' fault timings were chosen against a 500 ms
/// × 3 check; the product's default is 250 ms × 3, which the benchmarks use).
pub const CHAOS_SETTINGS: &str = "ping_type = \"select\"\nping_interval_ms = 500\nping_failures = 3\nlast_failover_minute = 480\n";

/// The cluster file the harness registers: servers named like the sandbox nodes, with
/// `settings` (TOML lines of the `[settings]` table; empty for the product's defaults).
pub fn cluster_toml(sb: &Sandbox, dir: &Path, settings: &str) -> Result<String> {
    cluster_toml_named(sb, dir, CLUSTER, settings)
}

/// [`cluster_toml`] for a cluster named `name`.
pub fn cluster_toml_named(sb: &Sandbox, dir: &Path, name: &str, settings: &str) -> Result<String> {
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    let c = sb.credentials();
    let admin = secrets.join("admin.password");
    let repl = secrets.join("repl.password");
    // Written by `start_agents`; without it the managers cannot use any agent (no binlog
    // tail saved, no relay-log diff: a file/position failover with lagging replicas fails).
    let token = dir.join("agents").join("token");
    write_secret(&admin, &c.admin_password)?;
    write_secret(&repl, &c.repl_password)?;
    let mut text = format!(
        "name = \"{name}\"\n\n[users]\nadmin_user = {:?}\nadmin_password_file = {admin:?}\n\
         repl_user = {:?}\nrepl_password_file = {repl:?}\nagent_token_file = {token:?}\n\n\
         [settings]\n{settings}",
        c.admin_user, c.repl_user
    );
    for node in sb.nodes() {
        text.push_str(&format!(
            "\n[[server]]\nname = \"{}\"\nhost = \"{}\"\nport = {}\nagent = \"{}:{AGENT_PORT}\"\n\
             candidate_master = true\npriority = {}\n",
            node.name, node.ip, node.port, node.ip, node.index
        ));
    }
    Ok(text)
}

/// Creates the workload's table on the master, waits for the replicas to have it, and
/// returns every database as the observer and the final reads reach it.
pub async fn prepare_databases(sb: &Sandbox) -> Result<Vec<crate::observe::DbEndpoint>> {
    use crate::observe::{APP_USER, PROBE_TABLE};
    use mysql_async::prelude::Queryable;
    use rand::Rng;
    // The application account of the workload and the write probe: no admin privileges, so
    // read_only applies to it (admin accounts bypass read_only on MariaDB, and a fenced old
    // master would still take their writes). Created on the master, replicated everywhere.
    let password: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    let mut m = sb.conn(1).await?;
    m.query_drop(crate::workload::SCHEMA).await?;
    m.query_drop(crate::workload::TABLE).await?;
    m.query_drop(PROBE_TABLE).await?;
    // Alphanumeric, so quoting it inline is safe; mysql_async errors never quote statements.
    m.query_drop(format!(
        "CREATE USER IF NOT EXISTS {APP_USER}@'127.%' IDENTIFIED BY '{password}'"
    ))
    .await
    .context("creating the write-probe account")?;
    m.query_drop(format!(
        "GRANT SELECT, INSERT, UPDATE ON jepsen.* TO {APP_USER}@'127.%'"
    ))
    .await?;
    m.disconnect().await?;
    sb.wait_replicas_caught_up(Duration::from_secs(30)).await?;
    sb.nodes()
        .iter()
        .map(|n| {
            let opts = sb.admin_opts(n.index)?;
            let app = mysql_async::OptsBuilder::from_opts(opts.clone())
                .user(Some(APP_USER))
                .pass(Some(password.clone()));
            Ok(crate::observe::DbEndpoint {
                name: n.name.clone(),
                node: n.addr(),
                opts,
                app: Some(app.into()),
            })
        })
        .collect()
}

/// Starts the managers (cgroups `managerN`), waits for a leader, registers the cluster (with
/// `settings`, see [`cluster_toml`]) and makes sure the replicated state names `node1` as
/// master.
pub async fn start(
    sb: &Sandbox,
    faults: &NetFaults,
    dir: &Path,
    base_ip: Ipv4Addr,
    settings: &str,
) -> Result<System> {
    start_configured(sb, faults, dir, base_ip, settings, |_| {}).await
}

/// [`start`], with the managers' configs adjusted by `configure` before they start.
pub async fn start_configured(
    sb: &Sandbox,
    faults: &NetFaults,
    dir: &Path,
    base_ip: Ipv4Addr,
    settings: &str,
    configure: impl FnOnce(&mut LocalManagers),
) -> Result<System> {
    let agents = start_agents(sb, faults, dir)?;
    for node in sb.nodes() {
        wait_agent(&format!("{}:{AGENT_PORT}", node.ip)).await?;
    }
    let bin = sibling_binary("raftmha")?;
    let mut managers = LocalManagers::new(&bin, &dir.join("managers"), manager_subnet(base_ip)?, 3);
    managers.cgroup_parent = Some(faults.cgroup_dir().to_path_buf());
    configure(&mut managers);
    for id in managers.voters().to_vec() {
        managers.write_config(id);
    }
    managers.start_all();
    let leader = wait_leader(&managers, &[1, 2, 3], Duration::from_secs(30)).await?;

    let text = cluster_toml(sb, dir, settings)?;
    std::fs::write(dir.join("cluster.toml"), &text)?;
    let spec = ClusterSpec::parse(&text).map_err(|e| anyhow::anyhow!("cluster.toml: {e}"))?;
    let client = managers.client(leader).forwarding();
    write(
        &client,
        StateCommand::RegisterCluster {
            spec: Box::new(spec),
        },
    )
    .await?;
    // The engine may discover the master by itself; if it has not within a moment, the
    // operator's bootstrap step names it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (state, _) = client
        .read_state()
        .await
        .map_err(|e| anyhow::anyhow!("reading the state: {e}"))?;
    let known = state.clusters.get(CLUSTER).and_then(|c| c.master.clone());
    if known.is_none() {
        write(
            &client,
            StateCommand::SetInitialMaster {
                cluster: CLUSTER.into(),
                server: sb.node(1)?.name.clone(),
            },
        )
        .await?;
    }
    Ok(System { managers, agents })
}

/// Waits until the agent at `addr` answers an authenticated Health call.
pub async fn wait_agent(addr: &str) -> Result<()> {
    use raftmha_node::agent::client::AgentClient;
    let endpoint = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer =
            match AgentClient::connect(&endpoint, AGENT_TOKEN, Duration::from_secs(2)).await {
                Ok(c) => c.health().await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
        match answer {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => bail!("agent {addr} does not answer: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

pub async fn write(client: &AdminClient, command: StateCommand) -> Result<()> {
    let (result, _) = client
        .write(&command)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", command.kind()))?;
    if let CommandResult::Rejected { reason } = result {
        bail!("{} rejected: {reason}", command.kind());
    }
    Ok(())
}

/// The leader every manager in `ids` agrees on, or an error after `timeout`.
pub async fn wait_leader(m: &LocalManagers, ids: &[u64], timeout: Duration) -> Result<u64> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(l) = m.agreed_leader(ids).await {
            return Ok(l);
        }
        if Instant::now() > deadline {
            bail!("managers {ids:?} agreed on no leader within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Cluster `name`'s record as the first manager to answer reports it (`Some(None)`: no such
/// cluster); a linearizable read of that cluster only, asked of all managers at once.
pub async fn read_cluster(clients: &[AdminClient], name: &str) -> Option<Option<ClusterRecord>> {
    if clients.is_empty() {
        return None;
    }
    let asks = clients.iter().map(|c| Box::pin(c.read_cluster(name)));
    futures::future::select_ok(asks)
        .await
        .ok()
        .map(|((c, _), _)| c)
}

/// The replicated state as the first manager to answer reports it (a linearizable read; all
/// managers are asked at once so a dead or partitioned one costs no extra time).
pub async fn read_state(clients: &[AdminClient]) -> Option<ManagerState> {
    if clients.is_empty() {
        return None;
    }
    let asks = clients.iter().map(|c| Box::pin(c.read_state()));
    futures::future::select_ok(asks)
        .await
        .ok()
        .map(|((s, _), _)| s)
}
