//! A whole managed deployment on loopback for the demo, integration tests and benchmarks:
//! a MariaDB sandbox (node1 master), one node agent per database host (in this process,
//! real gRPC on the node's own address), three real `raftmha manager` processes, and the
//! cluster registered with them. Everything lives in one /24: managers on `.1`–`.3`,
//! databases and their agents on `.10`–`.12`.
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use mysql_async::prelude::Queryable;
use raftmha_node::agent::AgentConfig;
use raftmha_node::agent::config::DbConfig;
use tokio::sync::oneshot;

use super::haproxy::{AppAccount, Backend, Layout, LocalHaproxy, wait_routed};
use super::local::LocalManagers;
use crate::sandbox::{Sandbox, SandboxGuard, SandboxSpec};
use crate::state::cluster_file::ClusterSpec;
use crate::state::{ClusterRecord, Command, CommandResult};

pub const AGENT_PORT: u16 = 7600;
/// The agents' routing checks (`/master`, `/replica`), Patroni's port.
pub const ROUTE_PORT: u16 = 8008;
pub const CLUSTER: &str = "app1";

/// The application account of the HAProxy writer (test-only credentials).
fn app_account() -> AppAccount {
    AppAccount {
        user: "app".into(),
        password: "testbed-app-password".into(),
    }
}

pub struct Testbed {
    pub sandbox: SandboxGuard,
    pub managers: LocalManagers,
    pub dir: PathBuf,
    /// HAProxy in front of the databases (`TestbedOptions::haproxy`).
    pub haproxy: Option<LocalHaproxy>,
    subnet: u8,
    agents: Vec<oneshot::Sender<()>>,
}

/// Options beyond the defaults (extra `[settings]` lines, per-server flags).
#[derive(Debug, Clone, Default)]
pub struct TestbedOptions {
    pub gtid: bool,
    /// Appended to the cluster file's `[settings]` table.
    pub settings: String,
    /// Extra lines per server (index 0 = node1).
    pub server_extra: [String; 3],
    /// The agents may SIGKILL their mysqld (fencing a paused or hung master).
    pub allow_stop_mysqld: bool,
    /// Start node K in cgroup `<parent>/nodeK` and manager K in `<parent>/managerK`, so
    /// `crate::chaos::NetFaults` can cut them off by sender.
    pub cgroup_parent: Option<PathBuf>,
    /// Serve `/metrics` and `/health/*` on `127.0.<subnet>.<manager id>:<port>`.
    pub http_port: Option<u16>,
    /// Run HAProxy with writes on `127.0.<subnet>.20:3306`, reads on `:3307`, routed by the
    /// agents' checks ([`Testbed::write_addr`]).
    pub haproxy: bool,
}

impl Testbed {
    /// `subnet` selects 127.0.<subnet>.0/24; `bin` is the `raftmha` binary for managers.
    pub async fn up(
        bin: &Path,
        dir: &Path,
        subnet: u8,
        opts: &TestbedOptions,
    ) -> anyhow::Result<Self> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut spec = SandboxSpec::new(dir.join("db"), 3, Ipv4Addr::new(127, 0, subnet, 10));
        spec.gtid = opts.gtid;
        spec.cgroup_parent = opts.cgroup_parent.clone();
        spec.timeout = Duration::from_secs(90);
        let sandbox = SandboxGuard(Sandbox::up(spec).await.context("starting the sandbox")?);
        let creds = sandbox.credentials().clone();
        let secrets = dir.join("secrets");
        std::fs::create_dir_all(&secrets)?;
        let write_secret = |name: &str, value: &str| -> anyhow::Result<PathBuf> {
            let p = secrets.join(name);
            std::fs::write(&p, value)?;
            Ok(p)
        };
        let admin_pw = write_secret("admin.password", &creds.admin_password)?;
        let repl_pw = write_secret("repl.password", &creds.repl_password)?;
        let token = write_secret("agent.token", "testbed-agent-token-0123456789")?;

        let mut agents = Vec::new();
        let mut cluster_file = format!(
            "name = \"{CLUSTER}\"\n[users]\nadmin_user = \"{}\"\nadmin_password_file = \"{}\"\n\
             repl_user = \"{}\"\nrepl_password_file = \"{}\"\nagent_token_file = \"{}\"\n\
             [settings]\n{}\n",
            creds.admin_user,
            admin_pw.display(),
            creds.repl_user,
            repl_pw.display(),
            token.display(),
            opts.settings
        );
        for i in 1..=3 {
            let node = sandbox.node(i)?.clone();
            let listen = format!("{}:{AGENT_PORT}", node.ip);
            let cfg = AgentConfig {
                listen: listen.parse()?,
                binlog_dir: node.datadir.clone(),
                binlog_base: "binlog".into(),
                relay_dir: node.datadir.clone(),
                relay_base: "relay".into(),
                workdir: dir.join(format!("agent{i}")),
                token_file: Some(token.clone()),
                token_env: None,
                max_request_bytes: 4 << 20,
                max_upload_bytes: 1 << 30,
                call_timeout_secs: 120,
                mysqld_pid_file: Some(node.pid_file.clone()),
                allow_stop_mysqld: opts.allow_stop_mysqld,
                verify_crc: true,
                db: Some(DbConfig {
                    host: node.ip.to_string(),
                    port: node.port,
                    socket: None,
                    user: creds.admin_user.clone(),
                    password_file: Some(admin_pw.clone()),
                    password_env: None,
                    client_bindir: None,
                }),
                http_listen: Some(format!("{}:{ROUTE_PORT}", node.ip).parse()?),
                tls: None,
            };
            cfg.validate()
                .map_err(|e| anyhow::anyhow!("agent config: {e}"))?;
            let (tx, rx) = oneshot::channel::<()>();
            tokio::spawn(raftmha_node::agent::serve(cfg, async {
                let _ = rx.await;
            }));
            agents.push(tx);
            cluster_file.push_str(&format!(
                "[[server]]\nname = \"{}\"\nhost = \"{}\"\nport = {}\nagent = \"{listen}\"\n{}\n",
                node.name,
                node.ip,
                node.port,
                opts.server_extra[i - 1]
            ));
        }
        let spec = ClusterSpec::parse(&cluster_file)?;
        let mut managers = LocalManagers::new(bin, &dir.join("managers"), subnet, 3);
        managers.cgroup_parent = opts.cgroup_parent.clone();
        if let Some(port) = opts.http_port {
            for id in 1..=3 {
                managers.extra_config =
                    format!("[http]\nlisten = \"{}:{port}\"\n", managers.ip(id));
                managers.write_config(id);
            }
            managers.extra_config.clear();
        }
        managers.start_all();
        managers.wait_leader(&[1, 2, 3]).await;
        let (reply, _) = managers
            .client(1)
            .write(&Command::RegisterCluster {
                spec: Box::new(spec),
            })
            .await?;
        if let CommandResult::Rejected { reason } = reply {
            anyhow::bail!("registering the cluster: {reason}");
        }
        let mut tb = Testbed {
            sandbox,
            managers,
            dir: dir.to_path_buf(),
            haproxy: None,
            subnet,
            agents,
        };
        tb.wait_for(
            "the managers to find node1 as master",
            Duration::from_secs(30),
            |c| c.master.as_deref() == Some("node1"),
        )
        .await?;
        if opts.haproxy {
            let layout = tb.haproxy_layout()?;
            tb.haproxy = Some(LocalHaproxy::start(dir, &layout)?);
            tb.wait_routed(1, Duration::from_secs(30)).await?;
        }
        Ok(tb)
    }

    /// The replicated cluster record, read through any answering manager.
    pub async fn cluster(&self) -> Option<ClusterRecord> {
        for id in 1..=3 {
            if !self.managers.is_running(id) {
                continue;
            }
            if let Ok((state, _)) = self
                .managers
                .client_with_timeout(id, Duration::from_secs(2))
                .read_state()
                .await
            {
                return state.clusters.get(CLUSTER).cloned();
            }
        }
        None
    }

    /// Polls the replicated record every 20 ms until `pred` holds (bounded by `timeout`).
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&ClusterRecord) -> bool,
    ) -> anyhow::Result<ClusterRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(c) = self.cluster().await
                && pred(&c)
            {
                return Ok(c);
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("timed out waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// HAProxy's write frontend (see [`TestbedOptions::haproxy`]).
    pub fn write_addr(&self) -> String {
        format!("127.0.{}.20:3306", self.subnet)
    }

    /// HAProxy's read frontend.
    pub fn read_addr(&self) -> String {
        format!("127.0.{}.20:3307", self.subnet)
    }

    fn haproxy_layout(&self) -> anyhow::Result<Layout> {
        let servers = (1..=3)
            .map(|i| {
                let n = self.sandbox.node(i)?;
                Ok(Backend {
                    name: n.name.clone(),
                    sql: n.addr(),
                    check_port: ROUTE_PORT,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Layout {
            write_bind: self.write_addr(),
            read_bind: self.read_addr(),
            servers,
            max_lag_secs: 10,
        })
    }

    /// `@@server_id` of node `i`, asked directly.
    pub async fn server_id(&self, i: usize) -> anyhow::Result<u32> {
        let mut c = self.sandbox.conn(i).await?;
        let id: Option<u32> = c.query_first("SELECT @@server_id").await?;
        c.disconnect().await.ok();
        id.context("no server_id")
    }

    /// The application account the HAProxy writer uses (bound by read_only), over TCP to
    /// `addr`. Created by [`Testbed::create_app_table`].
    pub fn app_opts(addr: &str) -> anyhow::Result<mysql_async::Opts> {
        app_account().opts(addr)
    }

    /// `DB.TABLE (id BIGINT PRIMARY KEY, server INT)` on node1 (the first master) and the
    /// application account allowed to write it, replicated everywhere.
    pub async fn create_app_table(&self, db: &str, table: &str) -> anyhow::Result<()> {
        let mut m = self.sandbox.conn(1).await?;
        app_account().create_table(&mut m, db, table).await?;
        m.disconnect().await.ok();
        self.sandbox
            .wait_replicas_caught_up(Duration::from_secs(30))
            .await?;
        Ok(())
    }

    /// Waits until a connection through HAProxy's write frontend lands on node `i`.
    pub async fn wait_routed(&self, i: usize, within: Duration) -> anyhow::Result<()> {
        let want = self.server_id(i).await?;
        let through = mysql_async::OptsBuilder::from_opts(self.sandbox.admin_opts(i)?)
            .ip_or_hostname(format!("127.0.{}.20", self.subnet))
            .tcp_port(3306);
        wait_routed(through.into(), want, within).await
    }

    /// The sandbox index (1-based) of a server name `nodeK`.
    pub fn index_of(name: &str) -> Option<usize> {
        name.strip_prefix("node")?.parse().ok()
    }

    pub async fn down(mut self) -> anyhow::Result<()> {
        self.haproxy = None;
        for a in self.agents.drain(..) {
            let _ = a.send(());
        }
        for id in 1..=3 {
            self.managers.stop(id);
        }
        self.sandbox.down().await
    }
}

/// Inserts ids 1, 2, ... one transaction each into the master the managers record; an id
/// counts as acknowledged when its COMMIT returned OK. Stops when `stop` is set.
pub struct Writer {
    pub acked: Arc<Mutex<BTreeSet<u64>>>,
    /// When each node (sandbox index) first acknowledged a write of this writer.
    pub first_ack: Arc<Mutex<std::collections::BTreeMap<usize, std::time::Instant>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    /// Writes into `table` (which has an `id BIGINT PRIMARY KEY` column).
    pub fn start(tb: Arc<Testbed>, table: &str) -> Writer {
        let table = table.to_string();
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let first_ack = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
        let (a, s, f) = (acked.clone(), stop.clone(), first_ack.clone());
        let task = tokio::spawn(async move {
            let mut next = 1u64;
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let Some(master) = tb.cluster().await.and_then(|c| c.master) else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let Some(i) = Testbed::index_of(&master) else {
                    return;
                };
                let conn = tokio::time::timeout(Duration::from_secs(1), tb.sandbox.conn(i)).await;
                let Ok(Ok(mut c)) = conn else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                while !s.load(std::sync::atomic::Ordering::Relaxed) {
                    let q = format!("INSERT INTO {table} (id) VALUES ({next})");
                    match tokio::time::timeout(Duration::from_secs(2), c.query_drop(q)).await {
                        Ok(Ok(())) => {
                            a.lock().unwrap_or_else(|p| p.into_inner()).insert(next);
                            f.lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .entry(i)
                                .or_insert_with(std::time::Instant::now);
                            next += 1;
                        }
                        // Unknown outcome: never reuse the id (it may have committed).
                        _ => {
                            next += 1;
                            break;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        Writer {
            acked,
            first_ack,
            stop,
            task,
        }
    }

    pub fn count(&self) -> usize {
        self.acked.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub async fn stop(self) -> BTreeSet<u64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.task.await;
        self.acked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
