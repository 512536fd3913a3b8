//! The managers' read-only web view, served on `[http] listen` next to `/metrics`:
//! `GET /` is one self-contained page (`index.html`, embedded; no external asset) that polls
//! `GET /ui/state.json` every second. The JSON is a pure function ([`page`]) of this
//! manager's Raft view, its copy of the replicated state and what [`probe`] last saw of each
//! server (read_only, replication threads, lag, the agent's fence record), probed in the
//! background only while someone looks at the page.
pub mod probe;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::api::http::{ExtraRoutes, Get, Response};
use crate::cli::history::{FailoverView, StepView, history};
use crate::raft::handle::{NodeView, RaftHandle};
use crate::state::{FailoverRecord, ManagerState, StepPhase, Verdict};
use probe::{Probes, ServerProbe};

const INDEX_HTML: &str = include_str!("index.html");
/// Failovers and operations shown per cluster (newest first).
const FAILOVERS_SHOWN: usize = 3;
/// Journaled details (plans are JSON documents) are cut to this many characters.
const DETAIL_CHARS: usize = 240;

#[derive(Debug, Serialize)]
pub struct Page {
    pub manager: ManagerInfo,
    pub members: Vec<Member>,
    pub clusters: Vec<ClusterView>,
    pub generated_at_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct ManagerInfo {
    pub id: u64,
    pub role: &'static str,
    pub term: u64,
    pub leader: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Member {
    pub id: u64,
    pub addr: String,
    pub voter: bool,
    pub leader: bool,
}

#[derive(Debug, Serialize)]
pub struct ClusterView {
    pub name: String,
    pub master: Option<String>,
    pub epoch: u64,
    pub paused: bool,
    pub servers: Vec<ServerView>,
    pub failovers: Vec<FailoverView>,
}

#[derive(Debug, Serialize)]
pub struct ServerView {
    pub name: String,
    pub addr: String,
    /// `master` (the recorded one) or `replica`.
    pub role: &'static str,
    /// Each manager's latest verdict on this server: `alive`, `suspect` or `dead`.
    pub verdicts: BTreeMap<u64, &'static str>,
    /// What this manager last saw of it (absent until the first probe).
    pub probe: Option<ServerProbe>,
}

fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Alive => "alive",
        Verdict::Suspect => "suspect",
        Verdict::Dead => "dead",
    }
}

fn cut(s: &mut String) {
    if let Some((i, _)) = s.char_indices().nth(DETAIL_CHARS) {
        s.truncate(i);
        s.push('…');
    }
}

fn says_nothing(detail: &str) -> bool {
    let d = detail.trim();
    d.is_empty() || d == "null" || d.starts_with('{') || d.starts_with('[')
}

/// A step reads best as what it set out to do (its intent's detail) followed by its result,
/// unless the result is empty or a JSON document (plans, captured positions).
fn describe(record: &FailoverRecord, step: &mut StepView) {
    let Some(intent) = record.steps.iter().find(|s| {
        s.phase == StepPhase::Intent && s.step == step.step && s.at_ms == step.started_at_ms
    }) else {
        return;
    };
    if says_nothing(&intent.detail) || intent.detail == step.detail {
        return;
    }
    step.detail = if says_nothing(&step.detail) {
        intent.detail.clone()
    } else {
        format!("{} → {}", intent.detail, step.detail)
    };
}

/// The page's data, from local state only.
pub fn page(
    view: &NodeView,
    state: &ManagerState,
    probes: &BTreeMap<(String, String), ServerProbe>,
    now_ms: u64,
) -> Page {
    let clusters = state
        .clusters
        .iter()
        .map(|(name, c)| {
            let servers = c
                .spec
                .servers
                .iter()
                .map(|s| ServerView {
                    name: s.name.clone(),
                    addr: format!("{}:{}", s.host, s.port),
                    role: if c.master.as_deref() == Some(s.name.as_str()) {
                        "master"
                    } else {
                        "replica"
                    },
                    verdicts: c
                        .verdicts
                        .get(&s.name)
                        .map(|by| {
                            by.iter()
                                .map(|(m, v)| (*m, verdict_name(&v.verdict)))
                                .collect()
                        })
                        .unwrap_or_default(),
                    probe: probes.get(&(name.clone(), s.name.clone())).cloned(),
                })
                .collect();
            let mut failovers = history(state, name).map_or_else(Vec::new, |h| h.failovers);
            failovers.reverse();
            failovers.truncate(FAILOVERS_SHOWN);
            for f in &mut failovers {
                let record = c.failovers.iter().find(|r| r.id == f.id);
                for s in &mut f.steps {
                    if let Some(r) = record {
                        describe(r, s);
                    }
                    cut(&mut s.detail);
                }
            }
            ClusterView {
                name: name.clone(),
                master: c.master.clone(),
                epoch: c.epoch,
                paused: c.paused,
                servers,
                failovers,
            }
        })
        .collect();
    Page {
        manager: ManagerInfo {
            id: view.id,
            role: view.role,
            term: view.term,
            leader: view.leader,
        },
        members: view
            .members
            .iter()
            .map(|(id, addr, voter)| Member {
                id: *id,
                addr: addr.clone(),
                voter: *voter,
                leader: view.leader == Some(*id),
            })
            .collect(),
        clusters,
        generated_at_ms: now_ms,
    }
}

/// The web view's routes, for [`crate::api::http::start`]; starts the background probe.
pub fn routes(raft: RaftHandle) -> ExtraRoutes {
    let probes = Arc::new(Probes::default());
    tokio::spawn(probe::run(raft.clone(), probes.clone()));
    Arc::new(move |get: &Get| match get.path.as_str() {
        "/" | "/ui" | "/ui/" => Some(Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: INDEX_HTML.to_string(),
        }),
        "/ui/state.json" => {
            probes.viewed();
            let (_, state) = raft.local_state();
            let p = page(
                &raft.view(),
                &state,
                &probes.snapshot(),
                crate::api::server::now_ms(),
            );
            Some(match serde_json::to_string(&p) {
                Ok(body) => Response::json(200, body),
                Err(e) => Response::text(500, format!("rendering the view: {e}")),
            })
        }
        _ => None,
    })
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
