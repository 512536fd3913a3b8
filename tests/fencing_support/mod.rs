//! Shared by the fencing tests: a testbed whose databases and managers run in cgroups of one
//! [`NetFaults`] run (so iptables can cut them off by sender), under /tmp/rmha-fence/<test>/,
//! a writer pinned to one node that remembers when that node last acknowledged a write, and
//! probes of a node's writability and of its agent's fence record.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use raftmha::chaos::NetFaults;
use raftmha::manager::testbed::{AGENT_PORT, Testbed, TestbedOptions};
use raftmha_node::agent::client::AgentClient;
use raftmha_node::proto::FenceState;

pub const BIN: &str = env!("CARGO_BIN_EXE_raftmha");

/// A testbed in 127.0.<subnet>.0/24 with its processes in the cgroups of `faults`.
pub async fn fenced_testbed(
    name: &str,
    subnet: u8,
    allow_stop_mysqld: bool,
) -> (Arc<Testbed>, NetFaults) {
    let faults = NetFaults::new(&format!("fence-{subnet}")).expect("netfaults");
    let opts = TestbedOptions {
        gtid: true,
        allow_stop_mysqld,
        cgroup_parent: Some(faults.cgroup_dir().to_path_buf()),
        ..TestbedOptions::default()
    };
    let dir = Path::new("/tmp/rmha-fence").join(name);
    let tb = Testbed::up(Path::new(BIN), &dir, subnet, &opts)
        .await
        .expect("testbed up");
    let tb = Arc::new(tb);
    let mut c = tb.sandbox.conn(1).await.expect("connect");
    c.query_drop("CREATE DATABASE test").await.expect("db");
    c.query_drop("CREATE TABLE test.w (id BIGINT PRIMARY KEY)")
        .await
        .expect("table");
    c.query_drop("CREATE TABLE test.p (id BIGINT PRIMARY KEY)")
        .await
        .expect("table");
    c.disconnect().await.expect("disconnect");
    (tb, faults)
}

pub async fn down(tb: Arc<Testbed>, faults: NetFaults) {
    faults.heal().expect("heal");
    if let Ok(tb) = Arc::try_unwrap(tb) {
        tb.down().await.expect("down");
    }
    drop(faults);
}

/// Cuts every manager off from node `index`'s address (its mysqld and its agent).
pub fn cut_managers_from(tb: &Testbed, faults: &NetFaults, index: usize, managers: &[u64]) {
    let ip = tb.sandbox.node(index).expect("node").ip;
    for id in managers {
        faults.cut(&format!("manager{id}"), ip).expect("cut");
    }
}

/// Cuts the other database nodes (their replication threads) off from node `index`.
pub fn cut_replicas_from(tb: &Testbed, faults: &NetFaults, index: usize) {
    let ip = tb.sandbox.node(index).expect("node").ip;
    for k in 1..=3 {
        if k != index {
            faults.cut(&format!("node{k}"), ip).expect("cut");
        }
    }
}

/// Writes ids into `test.p` on one fixed node (a client that still reaches the old master),
/// remembering the instant of the last acknowledged write.
pub struct PinnedWriter {
    pub last_ack: Arc<Mutex<Option<Instant>>>,
    pub acked: Arc<Mutex<u64>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl PinnedWriter {
    pub fn start(tb: Arc<Testbed>, node: usize) -> PinnedWriter {
        let last_ack = Arc::new(Mutex::new(None));
        let acked = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, a, s) = (last_ack.clone(), acked.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut next = 1u64;
            while !s.load(Ordering::Relaxed) {
                let conn = tokio::time::timeout(Duration::from_secs(1), tb.sandbox.conn(node));
                let Ok(Ok(mut c)) = conn.await else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                while !s.load(Ordering::Relaxed) {
                    let q = format!("INSERT INTO test.p (id) VALUES ({next})");
                    next += 1;
                    match tokio::time::timeout(Duration::from_secs(1), c.query_drop(q)).await {
                        Ok(Ok(())) => {
                            *l.lock().expect("lock") = Some(Instant::now());
                            *a.lock().expect("lock") += 1;
                        }
                        _ => break,
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        PinnedWriter {
            last_ack,
            acked,
            stop,
            task,
        }
    }

    pub fn last_ack(&self) -> Option<Instant> {
        *self.last_ack.lock().expect("lock")
    }

    pub fn acked(&self) -> u64 {
        *self.acked.lock().expect("lock")
    }

    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
    }
}

/// `@@global.read_only` of node `index` (None: no answer within 2 s).
pub async fn read_only(tb: &Testbed, index: usize) -> Option<bool> {
    let q = async {
        let mut c = tb.sandbox.conn(index).await.ok()?;
        let ro: Option<u8> = c.query_first("SELECT @@global.read_only").await.ok()?;
        let _ = c.disconnect().await;
        ro.map(|v| v == 1)
    };
    tokio::time::timeout(Duration::from_secs(2), q)
        .await
        .ok()
        .flatten()
}

/// Whether one insert into `test.p` on node `index` is acknowledged within 1.5 s.
pub async fn accepts_a_write(tb: &Testbed, index: usize, id: u64) -> bool {
    let q = async {
        let mut c = tb.sandbox.conn(index).await.ok()?;
        c.query_drop(format!("INSERT INTO test.p (id) VALUES ({id})"))
            .await
            .ok()?;
        let _ = c.disconnect().await;
        Some(())
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(1500), q).await,
        Ok(Some(()))
    )
}

/// The fence record node `index`'s agent reports (None: the agent does not answer).
pub async fn agent_fence(tb: &Testbed, index: usize) -> Option<FenceState> {
    let token = std::fs::read_to_string(tb.dir.join("secrets/agent.token")).ok()?;
    let ip = tb.sandbox.node(index).ok()?.ip;
    let url = format!("http://{ip}:{AGENT_PORT}");
    let c = AgentClient::connect(&url, token.trim(), Duration::from_secs(2))
        .await
        .ok()?;
    c.health().await.ok()?.fence
}

/// Polls `f` every 50 ms until it returns true (bounded by `limit`).
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = Instant::now();
    while !f().await {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The journaled result of the last failover's FenceOldMaster step (the fencing plan's
/// first step).
pub async fn fence_step_result(tb: &Testbed) -> String {
    let c = tb.cluster().await.expect("state");
    let f = c.failovers.back().expect("a failover");
    f.steps
        .iter()
        .find(|s| s.step == "fence.0" && s.phase == raftmha::state::StepPhase::Result)
        .map(|s| s.detail.clone())
        .expect("the fence step's result")
}

/// The journaled result of the failover's promotion step (EnableWrites): how the wait for the
/// old master's fence ended.
pub async fn promotion_step_result(tb: &Testbed) -> String {
    let c = tb.cluster().await.expect("state");
    let f = c.failovers.back().expect("a failover");
    let (at, _) = raftmha::failover::timing::promoted_at(f).expect("a promotion");
    f.steps
        .iter()
        .find(|s| s.phase == raftmha::state::StepPhase::Result && s.at_ms == at)
        .map(|s| s.detail.clone())
        .expect("the promotion step's result")
}

/// When node `index` first acknowledged a write of `w`.
pub fn first_ack_on(w: &raftmha::manager::testbed::Writer, index: usize) -> Instant {
    w.first_ack
        .lock()
        .expect("lock")
        .get(&index)
        .copied()
        .unwrap_or_else(|| panic!("node{index} acknowledged no write"))
}
