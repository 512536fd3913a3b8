//! `bench failover --via-haproxy`: HAProxy in front of the run's databases, routed by the
//! agents' `/master` checks, and a second writer that only knows HAProxy's write address (an
//! application account; each row records `@@server_id`). It measures the time from the kill to
//! the first write the new master acknowledged *through HAProxy*, and counts writes the old
//! master acknowledged through HAProxy after the new one took one (must be 0).
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mysql_async::prelude::Queryable;
use raftmha::manager::haproxy::{
    AppAccount, Backend, Layout, LocalHaproxy, ProxyWriter, acks_by_old_after_new, wait_routed,
};
use raftmha::sandbox::Sandbox;

use crate::system::ROUTE_PORT;

pub struct ViaHaproxy {
    _proxy: LocalHaproxy,
    writer: ProxyWriter,
    /// server name -> `@@server_id`
    ids: Vec<(String, u32)>,
}

impl ViaHaproxy {
    /// HAProxy on `base_ip`'s /24 at .20 (writes :3306, reads :3307), the table and account,
    /// and the writer, started once HAProxy routes to node1.
    pub async fn start(sb: &Sandbox, dir: &Path, base_ip: Ipv4Addr) -> Result<Self> {
        let [a, b, c, _] = base_ip.octets();
        let front = Ipv4Addr::new(a, b, c, 20);
        let mut ids = Vec::new();
        let mut servers = Vec::new();
        for n in sb.nodes() {
            let mut conn = sb.conn(n.index).await?;
            let id: Option<u32> = conn.query_first("SELECT @@server_id").await?;
            conn.disconnect().await?;
            ids.push((n.name.clone(), id.context("no server_id")?));
            servers.push(Backend {
                name: n.name.clone(),
                sql: n.addr(),
                check_port: ROUTE_PORT,
            });
        }
        let app = AppAccount {
            user: "app".into(),
            password: "jepsen-app-password".into(),
        };
        let mut m = sb.conn(1).await?;
        app.create_table(&mut m, "jepsen", "via_haproxy").await?;
        m.disconnect().await?;
        sb.wait_replicas_caught_up(Duration::from_secs(30)).await?;
        let layout = Layout {
            write_bind: format!("{front}:3306"),
            read_bind: format!("{front}:3307"),
            servers,
            max_lag_secs: 10,
        };
        let proxy = LocalHaproxy::start(dir, &layout)?;
        let through = app.opts(&layout.write_bind)?;
        wait_routed(through.clone(), ids[0].1, Duration::from_secs(30)).await?;
        let writer = ProxyWriter::start(through, "jepsen.via_haproxy");
        Ok(ViaHaproxy {
            _proxy: proxy,
            writer,
            ids,
        })
    }

    fn id_of(&self, name: &str) -> Option<u32> {
        self.ids.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }

    /// When `server` first acknowledged a write through HAProxy at or after `since`.
    pub fn first_ack(&self, server: &str, since: Instant) -> Option<Instant> {
        let id = self.id_of(server)?;
        self.writer.first_ack_by(id, since).map(|a| a.at)
    }

    /// Stops the writer; returns how many writes `old` acknowledged through HAProxy after
    /// another server had acknowledged one.
    pub async fn finish(self, old: &str) -> u64 {
        let old = self.id_of(old).unwrap_or(0);
        let acks = self.writer.stop().await;
        acks_by_old_after_new(&acks, old).len() as u64
    }
}
