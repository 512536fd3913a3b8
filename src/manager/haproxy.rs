//! HAProxy in front of a managed cluster: clients connect to one write address and one read
//! address that never change, and HAProxy routes by the agents' checks (`GET /master`,
//! `GET /replica?lag=N`, `raftmha_node::agent::route`). [`render`] writes the configuration
//! (`config/haproxy/haproxy.cfg` is its output for the example deployment, checked by a unit
//! test); [`LocalHaproxy`] runs Debian's `haproxy` for the demo and the tests, and
//! [`ProxyWriter`] writes through it, remembering which server acknowledged each write.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use mysql_async::prelude::Queryable;

/// One database host as HAProxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub name: String,
    /// MySQL `host:port`.
    pub sql: String,
    /// The agent's routing-check port (`http_listen` in node.toml) on the same host.
    pub check_port: u16,
}

/// What [`render`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Where applications send writes (routed to the one server answering `/master`).
    pub write_bind: String,
    /// Where applications send reads (spread over the servers answering `/replica`).
    pub read_bind: String,
    pub servers: Vec<Backend>,
    /// `?lag=` of the replica check, in seconds.
    pub max_lag_secs: u64,
}

/// The HAProxy configuration for `l`. Checks every 250 ms; one failed check marks a server
/// down and `on-marked-down shutdown-sessions` cuts its open sessions, so a client of a
/// deposed master reconnects through HAProxy and lands on the new one.
pub fn render(l: &Layout) -> String {
    let mut o = String::new();
    let servers = |o: &mut String| {
        for s in &l.servers {
            let _ = writeln!(
                o,
                "    server {} {} check port {}",
                s.name, s.sql, s.check_port
            );
        }
    };
    let _ = write!(
        o,
        "global\n    maxconn 4096\n\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 8h\n    \
         timeout server 8h\n    timeout check 1s\n    \
         default-server inter 250ms downinter 250ms fastinter 250ms rise 1 fall 1 \
         on-marked-down shutdown-sessions\n\n\
         frontend mysql_write\n    bind {}\n    default_backend mysql_master\n\n\
         backend mysql_master\n    option httpchk GET /master\n    \
         http-check expect status 200\n",
        l.write_bind
    );
    servers(&mut o);
    let _ = write!(
        o,
        "\nfrontend mysql_read\n    bind {}\n    default_backend mysql_replicas\n\n\
         backend mysql_replicas\n    balance leastconn\n    \
         option httpchk GET /replica?lag={}\n    http-check expect status 200\n",
        l.read_bind, l.max_lag_secs
    );
    servers(&mut o);
    o
}

/// Debian's `haproxy` running in the foreground on a rendered configuration; killed when
/// dropped.
pub struct LocalHaproxy {
    child: Child,
    pub config: PathBuf,
}

impl LocalHaproxy {
    /// Writes `DIR/haproxy.cfg` and starts `haproxy -db -f` on it; fails when the binary is
    /// missing (`.ci/setup` installs it) or the configuration is refused.
    pub fn start(dir: &Path, layout: &Layout) -> anyhow::Result<Self> {
        let config = dir.join("haproxy.cfg");
        std::fs::write(&config, render(layout))
            .with_context(|| format!("writing {}", config.display()))?;
        let bin = ["/usr/sbin/haproxy", "haproxy"]
            .into_iter()
            .find(|b| !b.starts_with('/') || Path::new(b).exists())
            .unwrap_or("haproxy");
        let check = Command::new(bin)
            .args(["-c", "-q", "-f"])
            .arg(&config)
            .output()
            .context("running haproxy (install Debian's haproxy: bash .ci/setup)")?;
        if !check.status.success() {
            anyhow::bail!(
                "haproxy refuses {}: {}",
                config.display(),
                String::from_utf8_lossy(&check.stderr).trim()
            );
        }
        let log = std::fs::File::create(dir.join("haproxy.log"))?;
        let child = Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting haproxy")?;
        Ok(LocalHaproxy { child, config })
    }
}

impl Drop for LocalHaproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One write acknowledged through HAProxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub id: u64,
    /// `@@server_id` of the server that committed it (stored in the row itself).
    pub server_id: u32,
    pub at: Instant,
    /// Wall clock, to compare with journal times.
    pub at_ms: u64,
}

/// Inserts ids 1, 2, … one transaction each through one fixed address (HAProxy's write
/// frontend), as an application account bound by `read_only`; reconnects on any error. The
/// row records `@@server_id`, so every acknowledgement names the server that took it.
pub struct ProxyWriter {
    acks: Arc<Mutex<Vec<Ack>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl ProxyWriter {
    /// `table` has columns `id BIGINT PRIMARY KEY, server INT`.
    pub fn start(opts: mysql_async::Opts, table: &str) -> ProxyWriter {
        let acks = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s, table) = (acks.clone(), stop.clone(), table.to_string());
        let task = tokio::spawn(async move {
            let mut next = 1u64;
            while !s.load(Ordering::Relaxed) {
                let conn = tokio::time::timeout(
                    Duration::from_secs(1),
                    mysql_async::Conn::new(opts.clone()),
                )
                .await;
                let Ok(Ok(mut c)) = conn else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                while !s.load(Ordering::Relaxed) {
                    let q =
                        format!("INSERT INTO {table} (id, server) VALUES ({next}, @@server_id)");
                    let done = tokio::time::timeout(Duration::from_secs(2), c.query_drop(q)).await;
                    if !matches!(done, Ok(Ok(()))) {
                        // Unknown outcome: never reuse the id (it may have committed).
                        next += 1;
                        break;
                    }
                    let server: Option<u32> = c
                        .exec_first(format!("SELECT server FROM {table} WHERE id = ?"), (next,))
                        .await
                        .ok()
                        .flatten();
                    if let Some(server_id) = server {
                        a.lock().unwrap_or_else(|p| p.into_inner()).push(Ack {
                            id: next,
                            server_id,
                            at: Instant::now(),
                            at_ms: crate::api::server::now_ms(),
                        });
                    }
                    next += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        ProxyWriter { acks, stop, task }
    }

    pub fn acks(&self) -> Vec<Ack> {
        self.acks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn count(&self) -> usize {
        self.acks.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Waits until `n` more writes are acknowledged (bounded by `within`).
    pub async fn wait_more(&self, n: usize, within: Duration) -> anyhow::Result<()> {
        let target = self.count() + n;
        let deadline = Instant::now() + within;
        while self.count() < target {
            if Instant::now() > deadline {
                anyhow::bail!("the writer through HAProxy did not reach {target} writes");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// The first write acknowledged by `server_id` at or after `since`.
    pub fn first_ack_by(&self, server_id: u32, since: Instant) -> Option<Ack> {
        self.acks()
            .into_iter()
            .find(|a| a.server_id == server_id && a.at >= since)
    }

    pub async fn stop(self) -> Vec<Ack> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.acks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The application account HAProxy's writers use: bound by `read_only` (no SUPER, no
/// READ ONLY ADMIN), allowed to write `DB.*` only.
#[derive(Clone)]
pub struct AppAccount {
    pub user: String,
    pub password: String,
}

impl AppAccount {
    /// Connection options for this account over TCP to `addr` (`host:port`).
    pub fn opts(&self, addr: &str) -> anyhow::Result<mysql_async::Opts> {
        let (host, port) = addr.rsplit_once(':').context("address without port")?;
        Ok(mysql_async::OptsBuilder::default()
            .ip_or_hostname(host.to_string())
            .tcp_port(port.parse()?)
            .user(Some(self.user.clone()))
            .pass(Some(self.password.clone()))
            .prefer_socket(false)
            .into())
    }

    /// Creates `DB.TABLE (id BIGINT PRIMARY KEY, server INT)` and this account on the master
    /// behind `conn` (replication carries both to the replicas).
    pub async fn create_table(
        &self,
        conn: &mut mysql_async::Conn,
        db: &str,
        table: &str,
    ) -> anyhow::Result<()> {
        for q in [
            format!("CREATE DATABASE IF NOT EXISTS {db}"),
            format!("CREATE TABLE {db}.{table} (id BIGINT PRIMARY KEY, server INT NOT NULL)"),
            format!(
                "CREATE USER IF NOT EXISTS {}@'127.%' IDENTIFIED BY '{}'",
                self.user, self.password
            ),
            format!("GRANT SELECT, INSERT ON {db}.* TO {}@'127.%'", self.user),
        ] {
            conn.query_drop(q).await?;
        }
        Ok(())
    }
}

/// Waits until a connection made with `through` (HAProxy's write frontend) lands on the server
/// whose `@@server_id` is `want`.
pub async fn wait_routed(
    through: mysql_async::Opts,
    want: u32,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let got = async {
            let mut c = mysql_async::Conn::new(through.clone()).await?;
            let id: Option<u32> = c.query_first("SELECT @@server_id").await?;
            c.disconnect().await.ok();
            anyhow::Ok(id)
        };
        if let Ok(Ok(Some(id))) = tokio::time::timeout(Duration::from_secs(1), got).await
            && id == want
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("HAProxy's write frontend does not route to server_id {want}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Acknowledgements by `old` after the first one by any other server: writes the deposed
/// master took through HAProxy after a new master did (must be empty).
pub fn acks_by_old_after_new(acks: &[Ack], old: u32) -> Vec<Ack> {
    let Some(first_new) = acks.iter().position(|a| a.server_id != old) else {
        return Vec::new();
    };
    acks[first_new..]
        .iter()
        .filter(|a| a.server_id == old)
        .copied()
        .collect()
}

/// How many acknowledgements each server gave.
pub fn acks_per_server(acks: &[Ack]) -> BTreeMap<u32, usize> {
    let mut m = BTreeMap::new();
    for a in acks {
        *m.entry(a.server_id).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Layout {
        Layout {
            write_bind: "10.0.0.100:3306".into(),
            read_bind: "10.0.0.100:3307".into(),
            servers: (1..=3)
                .map(|i| Backend {
                    name: format!("db{i}"),
                    sql: format!("10.0.0.1{i}:3306"),
                    check_port: 8008,
                })
                .collect(),
            max_lag_secs: 10,
        }
    }

    #[test]
    fn the_shipped_example_config_is_what_render_writes() {
        let shipped = include_str!("../../config/haproxy/haproxy.cfg");
        let body: String = shipped
            .lines()
            .skip_while(|l| l.starts_with('#') || l.is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(body, render(&example()));
    }

    #[test]
    fn writes_go_by_master_checks_and_reads_by_replica_checks() {
        let cfg = render(&example());
        assert!(cfg.contains("option httpchk GET /master"));
        assert!(cfg.contains("option httpchk GET /replica?lag=10"));
        assert!(cfg.contains("on-marked-down shutdown-sessions"));
        assert_eq!(
            cfg.matches("server db2 10.0.0.12:3306 check port 8008")
                .count(),
            2
        );
    }

    #[test]
    fn an_ack_by_the_old_master_after_the_new_one_is_reported() {
        let now = Instant::now();
        let ack = |id, server_id| Ack {
            id,
            server_id,
            at: now,
            at_ms: 0,
        };
        let clean = [ack(1, 1), ack(2, 1), ack(3, 2), ack(4, 2)];
        assert!(acks_by_old_after_new(&clean, 1).is_empty());
        let split = [ack(1, 1), ack(2, 2), ack(3, 1)];
        assert_eq!(acks_by_old_after_new(&split, 1), [ack(3, 1)]);
        assert_eq!(acks_per_server(&split).get(&1), Some(&2));
    }
}
