//! Prometheus `/metrics` and load-balancer health endpoints, served by every manager on
//! `[http] listen` (manager.toml), with the web view (`crate::view`) on the same listener.
//! The server is `raftmha_node::http` (hyper, GET/HEAD only, bounded request size and time);
//! every endpoint here is a pure function of local state (unit-tested).
//!
//! Endpoints:
//! - `/health/live`: 200 while the process serves requests.
//! - `/health/ready`: 200 when this manager is a member of an initialized cluster with a
//!   known leader; 503 with the reason otherwise.
//! - `/health/leader`: 200 only on the Raft leader (point a VIP / load balancer at it).
//! - `/metrics`: Raft and per-cluster gauges from the local (not linearizable) state, plus
//!   the engine's timings recorded through [`EngineMetrics`].
//!
//! Metric names filled through [`EngineMetrics`] (by `crate::manager::metrics`):
//! - `raftmha_check_duration_seconds{cluster,server}` (summary: `_sum`, `_count`): one
//!   health check of the monitored master, on every manager (its monitor's pings, timed).
//! - `raftmha_failover_phase_duration_seconds{cluster,phase}` (summary): one phase of a
//!   finished failover on the manager that ran it, from the journal's Raft times
//!   (`crate::failover::timing`): `fence`, `plan`, `master_recovery`, `replica_recovery`,
//!   `cleanup`, and `total` (started → finished; its `_count` counts the failovers this
//!   manager finished).
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
pub use raftmha_node::http::{Get, Reply as Response};

use crate::raft::handle::{NodeView, RaftHandle};
use crate::state::{FailoverOutcome, ManagerState, Verdict};

/// (metric name, rendered labels) -> (sum of seconds, count).
type Series = BTreeMap<(&'static str, String), (f64, u64)>;

/// Timings the engine records and `/metrics` exposes as Prometheus summaries.
#[derive(Debug, Default)]
pub struct EngineMetrics {
    series: Mutex<Series>,
}

impl EngineMetrics {
    /// One server health check took `seconds`.
    pub fn observe_check(&self, cluster: &str, server: &str, seconds: f64) {
        let labels = format!("cluster=\"{}\",server=\"{}\"", esc(cluster), esc(server));
        self.observe("raftmha_check_duration_seconds", labels, seconds);
    }

    /// One failover phase took `seconds`.
    pub fn observe_phase(&self, cluster: &str, phase: &str, seconds: f64) {
        let labels = format!("cluster=\"{}\",phase=\"{}\"", esc(cluster), esc(phase));
        self.observe("raftmha_failover_phase_duration_seconds", labels, seconds);
    }

    fn observe(&self, name: &'static str, labels: String, seconds: f64) {
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let entry = series.entry((name, labels)).or_insert((0.0, 0));
        entry.0 += seconds;
        entry.1 += 1;
    }

    fn render(&self, out: &mut String) {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = "";
        for ((name, labels), (sum, count)) in series.iter() {
            if *name != last {
                let _ = writeln!(out, "# TYPE {name} summary");
                last = name;
            }
            let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
        }
    }
}

/// Extra GET routes served on the same listener (the web view): `None` falls through to
/// the built-in endpoints.
pub type ExtraRoutes = Arc<dyn Fn(&Get) -> Option<Response> + Send + Sync>;

/// Binds `addr` (so a bad address fails the manager's start-up) and serves in the background
/// (`raftmha_node::http`: hyper, GET and HEAD only, one request per connection).
pub async fn start(
    addr: Option<SocketAddr>,
    raft: RaftHandle,
    engine: Arc<EngineMetrics>,
    extra: Option<ExtraRoutes>,
) -> anyhow::Result<()> {
    let Some(addr) = addr else {
        return Ok(());
    };
    let handler: raftmha_node::http::Handler = Arc::new(move |get: &Get| {
        if let Some(r) = extra.as_ref().and_then(|f| f(get)) {
            return r;
        }
        route(&get.path, &raft.view(), || {
            let (_, state) = raft.local_state();
            let mut text = metrics(&raft.view(), &state);
            engine.render(&mut text);
            text
        })
    });
    raftmha_node::http::start(addr, handler)
        .await
        .with_context(|| format!("`http.listen`: cannot listen on {addr}"))?;
    tracing::info!(%addr, "serving /metrics, /health/* and the web view");
    Ok(())
}

/// What each path answers, given this manager's Raft view (`metrics` runs only for
/// `/metrics`: it copies the state).
pub fn route(path: &str, view: &NodeView, metrics: impl FnOnce() -> String) -> Response {
    match path {
        "/health/live" => Response::text(200, "live"),
        "/health/ready" => {
            let member = view.members.iter().any(|(id, _, _)| *id == view.id);
            match (view.initialized, member, view.leader) {
                (false, _, _) => Response::text(503, "not ready: cluster not initialized"),
                (true, false, _) => Response::text(503, "not ready: not a member of the cluster"),
                (true, true, None) => Response::text(503, "not ready: no leader known"),
                (true, true, Some(l)) => {
                    Response::text(200, format!("ready: leader is manager {l}"))
                }
            }
        }
        "/health/leader" => match (view.role, view.leader) {
            ("leader", _) => Response::text(200, format!("leader: manager {}", view.id)),
            (_, Some(l)) => Response::text(503, format!("not the leader: manager {l} is")),
            (_, None) => Response::text(503, "not the leader: no leader known"),
        },
        "/metrics" => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: metrics(),
        },
        _ => Response::text(
            404,
            "not found: /, /metrics, /health/live, /health/ready, /health/leader",
        ),
    }
}

/// Label values may not contain `\`, `"` or newlines unescaped.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text for this manager's Raft view and its copy of the replicated state.
pub fn metrics(view: &NodeView, state: &ManagerState) -> String {
    let mut o = String::new();
    let mut gauge = |name: &str, help: &str, rows: &[(String, u64)]| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, v) in rows {
            if labels.is_empty() {
                let _ = writeln!(o, "{name} {v}");
            } else {
                let _ = writeln!(o, "{name}{{{labels}}} {v}");
            }
        }
    };
    let one = |v: u64| vec![(String::new(), v)];
    gauge(
        "raftmha_manager_id",
        "This manager's node id.",
        &one(view.id),
    );
    let roles = ["leader", "follower", "candidate", "learner", "shutdown"];
    let role_rows: Vec<_> = roles
        .iter()
        .map(|r| (format!("role=\"{r}\""), u64::from(view.role == *r)))
        .collect();
    gauge(
        "raftmha_raft_role",
        "1 for this manager's current Raft role.",
        &role_rows,
    );
    let scalars = [
        ("raftmha_raft_term", "Current Raft term.", view.term),
        (
            "raftmha_raft_leader_id",
            "The leader this manager knows (0: none).",
            view.leader.unwrap_or(0),
        ),
        (
            "raftmha_raft_last_log_index",
            "Last log index stored here.",
            view.last_log_index.unwrap_or(0),
        ),
        (
            "raftmha_raft_commit_index",
            "Highest log index known committed here.",
            view.committed_index.unwrap_or(0),
        ),
        (
            "raftmha_raft_applied_index",
            "Highest log index applied to the state machine here.",
            view.applied_index.unwrap_or(0),
        ),
        (
            "raftmha_raft_log_appended_bytes",
            "Bytes of encoded log entries this manager appended to its log store since it started.",
            crate::raft::log_store::appended_bytes(),
        ),
    ];
    for (name, help, value) in scalars {
        gauge(name, help, &one(value));
    }
    let voters = view.members.iter().filter(|m| m.2).count() as u64;
    gauge(
        "raftmha_raft_members",
        "Manager cluster members by kind.",
        &[
            ("kind=\"voter\"".into(), voters),
            (
                "kind=\"learner\"".into(),
                view.members.len() as u64 - voters,
            ),
        ],
    );
    gauge(
        "raftmha_clusters",
        "Managed database clusters registered.",
        &one(state.clusters.len() as u64),
    );

    let mut paused = Vec::new();
    let mut epoch = Vec::new();
    let mut master = Vec::new();
    let mut running = Vec::new();
    let mut blocked = Vec::new();
    let mut failovers = Vec::new();
    let mut verdicts = Vec::new();
    for (name, c) in &state.clusters {
        let cl = format!("cluster=\"{}\"", esc(name));
        paused.push((cl.clone(), u64::from(c.paused)));
        epoch.push((cl.clone(), c.epoch));
        for s in &c.spec.servers {
            let is_master = c.master.as_deref() == Some(s.name.as_str());
            master.push((
                format!("{cl},server=\"{}\"", esc(&s.name)),
                u64::from(is_master),
            ));
        }
        let in_flight = c.failovers.iter().filter(|f| f.finished.is_none()).count();
        running.push((cl.clone(), in_flight as u64));
        let unacked = c.last_failover.as_ref().is_some_and(|l| !l.acknowledged);
        blocked.push((cl.clone(), u64::from(unacked)));
        for (outcome, label) in [
            (FailoverOutcome::Succeeded, "succeeded"),
            (FailoverOutcome::Failed, "failed"),
            (FailoverOutcome::Aborted, "aborted"),
        ] {
            let n = c
                .failovers
                .iter()
                .filter(|f| f.finished.as_ref().is_some_and(|(o, _)| *o == outcome))
                .count();
            failovers.push((format!("{cl},outcome=\"{label}\""), n as u64));
        }
        for (server, by_manager) in &c.verdicts {
            for (manager, v) in by_manager {
                for (verdict, label) in [
                    (Verdict::Alive, "alive"),
                    (Verdict::Suspect, "suspect"),
                    (Verdict::Dead, "dead"),
                ] {
                    verdicts.push((
                        format!(
                            "{cl},server=\"{}\",manager=\"{manager}\",verdict=\"{label}\"",
                            esc(server)
                        ),
                        u64::from(v.verdict == verdict),
                    ));
                }
            }
        }
    }
    gauge(
        "raftmha_cluster_paused",
        "1 while automatic failover is paused.",
        &paused,
    );
    gauge(
        "raftmha_cluster_epoch",
        "Promotions so far (fencing epoch).",
        &epoch,
    );
    gauge(
        "raftmha_cluster_master",
        "1 for the current master.",
        &master,
    );
    gauge(
        "raftmha_cluster_failover_running",
        "Failovers started and not finished.",
        &running,
    );
    gauge(
        "raftmha_cluster_failover_unacknowledged",
        "1 while the last failover is not acknowledged (anti-flapping block).",
        &blocked,
    );
    gauge(
        "raftmha_cluster_failovers_recorded",
        "Finished failovers in the (bounded) history, by outcome.",
        &failovers,
    );
    gauge(
        "raftmha_server_verdict",
        "Each manager's latest liveness verdict per server (1 for the current one).",
        &verdicts,
    );
    o
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
