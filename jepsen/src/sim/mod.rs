//! **Simulated database servers** for `bench scale`: one process (`raftmha-jepsen
//! sim-servers --spec FILE`) that holds many servers, each a MySQL-protocol listener on its
//! own loopback address ([`protocol`], answers from [`answers`]) plus, on the same address, a
//! real node agent (`raftmha_node::agent::serve`, the library the `raftmha-node serve`
//! binary runs, in-process) that takes the managers' lease renewals and master notes.
//! They hold no data and never fail; the benchmark names them as simulated in its output and
//! fails over only real MariaDB clusters.
pub mod answers;
pub mod protocol;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};

use answers::{SimState, VERSION, answer};
use protocol::{Answer, answer_packets, handshake, ok_packet, read_packet, write_packets};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimServer {
    pub ip: String,
    pub port: u16,
    pub server_id: u32,
    /// The master a replica replicates from (`host`, `port`); `None` for a master.
    pub source: Option<(String, u16)>,
    /// The in-process agent's port on `ip`; `None`: no agent.
    pub agent_port: Option<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimSpec {
    pub servers: Vec<SimServer>,
    /// The agents' token file (the managers read the same one through the cluster files).
    pub agent_token_file: PathBuf,
    /// Scratch folders of the agents (one each).
    pub work_dir: PathBuf,
    /// Replicas' `Slave_heartbeat_period` until a `CHANGE MASTER` sets another.
    pub heartbeat_period_s: f64,
}

static CONNECTIONS: AtomicU32 = AtomicU32::new(1);

async fn serve_connection(
    mut stream: TcpStream,
    state: Arc<Mutex<SimState>>,
    started: Instant,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let id = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
    let scramble: [u8; 20] = std::array::from_fn(|i| b'a' + ((id as usize + i * 7) % 26) as u8);
    write_packets(&mut stream, 0, &[handshake(VERSION, id, &scramble)]).await?;
    // Any credentials are accepted: a simulated server has nothing to protect.
    let Some((seq, _auth)) = read_packet(&mut stream).await? else {
        return Ok(());
    };
    write_packets(&mut stream, seq.wrapping_add(1), &[ok_packet()]).await?;
    while let Some((_, payload)) = read_packet(&mut stream).await? {
        let Some((&command, body)) = payload.split_first() else {
            continue;
        };
        let reply = match command {
            0x01 => return Ok(()), // COM_QUIT
            0x03 => {
                let sql = String::from_utf8_lossy(body);
                let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                answer(&mut s, &sql, id, started.elapsed().as_secs_f64())
            }
            0x0e | 0x02 | 0x1f => Answer::Ok, // PING, INIT_DB, RESET_CONNECTION
            _ => Answer::Error {
                code: 1047,
                message: "unknown command (simulated server)".into(),
            },
        };
        write_packets(&mut stream, 1, &answer_packets(&reply)).await?;
    }
    Ok(())
}

/// Serves one simulated server; returns the address it listens on.
pub async fn serve_mysql(
    server: SimServer,
    started: Instant,
    heartbeat_period_s: f64,
) -> Result<std::net::SocketAddr> {
    let addr = format!("{}:{}", server.ip, server.port);
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("simulated server cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let state = Arc::new(Mutex::new(SimState {
        server_id: server.server_id,
        read_only: server.source.is_some(),
        source: server.source.clone(),
        heartbeat_period_s,
    }));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_connection(stream, state.clone(), started));
        }
    });
    Ok(bound)
}

fn agent_config(spec: &SimSpec, server: &SimServer, port: u16) -> Result<PathBuf> {
    let work = spec
        .work_dir
        .join(format!("agent-{}-{}", server.ip, server.port));
    std::fs::create_dir_all(&work)?;
    let text = format!(
        "listen = \"{ip}:{port}\"\nbinlog_dir = {work:?}\nrelay_dir = {work:?}\nworkdir = {work:?}\n\
         token_file = {token:?}\n",
        ip = server.ip,
        token = spec.agent_token_file,
    );
    let path = work.join("agent.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Starts every server of `spec` and serves until the process is stopped.
pub async fn run(spec_path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(spec_path)
        .with_context(|| format!("cannot read {}", spec_path.display()))?;
    let spec: SimSpec = serde_json::from_str(&text).context("simulated servers' spec")?;
    let started = Instant::now();
    let mut agents = 0;
    for server in &spec.servers {
        serve_mysql(server.clone(), started, spec.heartbeat_period_s).await?;
        if let Some(port) = server.agent_port {
            let path = agent_config(&spec, server, port)?;
            let cfg = raftmha_node::agent::AgentConfig::load(&path)
                .map_err(|e| anyhow::anyhow!("simulated agent config: {e}"))?;
            tokio::spawn(async move {
                if let Err(e) = raftmha_node::agent::serve(cfg, std::future::pending()).await {
                    eprintln!("simulated server's agent stopped: {e:#}");
                }
            });
            agents += 1;
        }
    }
    eprintln!(
        "{} simulated servers and {agents} in-process agents serving",
        spec.servers.len()
    );
    std::future::pending::<()>().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftmha::db::{ConnectSettings, DbServer, MysqlServer, PingType};

    /// The managers' own client code (mysql_async underneath) against a simulated replica.
    #[tokio::test]
    async fn the_managers_client_reads_a_simulated_replica() {
        let server = SimServer {
            ip: "127.0.0.1".into(),
            port: 0,
            server_id: 2,
            source: Some(("127.3.0.10".into(), 3306)),
            agent_port: None,
        };
        let addr = serve_mysql(server, Instant::now(), 0.25)
            .await
            .expect("listens");
        let db = MysqlServer::new(ConnectSettings {
            host: addr.ip().to_string(),
            port: addr.port(),
            user: "sim".into(),
            password: raftmha::db::Secret::new("x"),
            connect_timeout: std::time::Duration::from_secs(2),
            read_timeout: std::time::Duration::from_secs(2),
        });
        assert_eq!(
            db.ping(PingType::Select).await,
            raftmha::db::PingOutcome::Alive
        );
        let version = db.version().await.expect("version");
        assert!(version.to_string().contains("10.11"), "{version}");
        let vars = db.variables().await.expect("variables");
        assert!(vars.read_only);
        let status = db
            .replica_status()
            .await
            .expect("status")
            .expect("a replica");
        assert!(status.replicates_from("127.3.0.10", 3306));
    }
}
