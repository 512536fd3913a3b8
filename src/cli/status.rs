//! `raftmha status [--json]`: every manager's view (id, address, role, term, leader, last
//! log index, applied index, reachable) and every registered cluster. Exits 1 with a clear
//! message when no quorum of managers answers.
use std::collections::BTreeMap;

use clap::Args;
use serde::Serialize;

use super::{CliError, CliResult};
use crate::admin_proto::NodeStatus;
use crate::api::client::{AdminClient, ManagersArgs, first_answer};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub managers: ManagersArgs,
}

#[derive(Debug, Serialize)]
struct ManagerRow {
    id: Option<u64>,
    addr: String,
    role: String,
    voter: bool,
    term: Option<u64>,
    leader: Option<u64>,
    last_log_index: Option<u64>,
    applied_index: Option<u64>,
    reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ClusterRow {
    name: String,
    servers: Vec<String>,
    master: Option<String>,
    epoch: u64,
    paused: bool,
}

#[derive(Debug, Serialize)]
struct StatusReport {
    leader: Option<u64>,
    quorum: bool,
    managers: Vec<ManagerRow>,
    clusters: Vec<ClusterRow>,
}

async fn ask(client: AdminClient) -> (String, Result<NodeStatus, String>) {
    let addr = client.addr().to_string();
    let answer = client.status().await.map_err(|s| s.message().to_string());
    (addr, answer)
}

pub async fn run(args: StatusArgs) -> CliResult {
    let clients = args.managers.clients().map_err(CliError::usage)?;
    let template = clients[0].clone();
    let mut answers: BTreeMap<String, Result<NodeStatus, String>> =
        futures::future::join_all(clients.iter().cloned().map(ask))
            .await
            .into_iter()
            .collect();
    // Members the given managers know about but the caller did not list.
    let known: Vec<(u64, String)> = answers
        .values()
        .filter_map(|a| a.as_ref().ok())
        .flat_map(|s| s.members.iter().map(|m| (m.id, m.addr.clone())))
        .collect();
    let extra: Vec<AdminClient> = known
        .iter()
        .filter(|(_, addr)| !answers.contains_key(addr))
        .filter_map(|(_, addr)| template.with_addr(addr).ok())
        .collect();
    for (addr, answer) in futures::future::join_all(extra.into_iter().map(ask)).await {
        answers.insert(addr, answer);
    }
    // The most advanced answering view decides membership.
    let best = answers
        .values()
        .filter_map(|a| a.as_ref().ok())
        .max_by_key(|s| (s.term, s.last_log_index))
        .cloned();
    let voters: BTreeMap<String, u64> = best
        .iter()
        .flat_map(|s| s.members.iter())
        .filter(|m| m.voter)
        .map(|m| (m.addr.clone(), m.id))
        .collect();
    let managers: Vec<ManagerRow> = answers
        .iter()
        .map(|(addr, answer)| match answer {
            Ok(s) => ManagerRow {
                id: Some(s.id),
                addr: addr.clone(),
                role: s.role.clone(),
                voter: voters.contains_key(addr),
                term: Some(s.term),
                leader: s.leader,
                last_log_index: s.last_log_index,
                applied_index: s.applied_index,
                reachable: true,
                error: None,
            },
            Err(e) => ManagerRow {
                id: voters.get(addr).copied(),
                addr: addr.clone(),
                role: "unreachable".into(),
                voter: voters.contains_key(addr),
                term: None,
                leader: None,
                last_log_index: None,
                applied_index: None,
                reachable: false,
                error: Some(e.clone()),
            },
        })
        .collect();
    let leader = managers
        .iter()
        .find(|m| m.role == "leader" && m.reachable)
        .and_then(|m| m.id);
    let reachable_voters = managers.iter().filter(|m| m.voter && m.reachable).count();
    let mut quorum = leader.is_some() && !voters.is_empty() && reachable_voters * 2 > voters.len();
    let mut clusters = Vec::new();
    let mut read_error = None;
    if quorum {
        match first_answer(&clients, |c| async move { c.read_state().await }).await {
            Ok((state, _)) => {
                clusters = state
                    .clusters
                    .values()
                    .map(|c| ClusterRow {
                        name: c.spec.name.clone(),
                        servers: c.spec.servers.iter().map(|s| s.name.clone()).collect(),
                        master: c.master.clone(),
                        epoch: c.epoch,
                        paused: c.paused,
                    })
                    .collect();
            }
            Err(e) => {
                quorum = false;
                read_error = Some(e.to_string());
            }
        }
    }
    let report = StatusReport {
        leader,
        quorum,
        managers,
        clusters,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?
        );
    } else {
        print_table(&report);
    }
    if !report.quorum {
        let why = read_error.unwrap_or_else(|| {
            if voters.is_empty() {
                return "none of the given managers answers".to_string();
            }
            format!(
                "{reachable_voters} of {} voters answer, leader {}",
                voters.len(),
                leader.map_or("unknown".to_string(), |l| l.to_string())
            )
        });
        return Err(anyhow::anyhow!("no quorum of managers answers: {why}").into());
    }
    Ok(())
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn print_table(r: &StatusReport) {
    println!(
        "{:<4} {:<22} {:<12} {:<6} {:<6} {:<8} {:<8} REACHABLE",
        "ID", "ADDR", "ROLE", "TERM", "LEADER", "LAST_LOG", "APPLIED"
    );
    for m in &r.managers {
        println!(
            "{:<4} {:<22} {:<12} {:<6} {:<6} {:<8} {:<8} {}",
            opt(m.id),
            m.addr,
            m.role,
            opt(m.term),
            opt(m.leader),
            opt(m.last_log_index),
            opt(m.applied_index),
            if m.reachable {
                "yes".to_string()
            } else {
                format!("no ({})", m.error.as_deref().unwrap_or("?"))
            }
        );
    }
    println!();
    if r.clusters.is_empty() {
        println!("no managed clusters registered");
    }
    for c in &r.clusters {
        println!(
            "cluster {}: servers {} master {} epoch {}{}",
            c.name,
            c.servers.join(","),
            c.master.as_deref().unwrap_or("-"),
            c.epoch,
            if c.paused { " (failover paused)" } else { "" }
        );
    }
}
