//! MHA Phase 1 and 3.1–3.3 as plain functions: which replicas survive, the latest and oldest
//! among them, errant transactions, and the choice of the new master.
use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::input::{DeadMaster, FailoverInput, ReplicaState, ServerRef, Survivor};
use crate::db::{GtidSet, MariaGtidPos};

/// Why no plan could be made (nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PlanError {
    #[error("server name {0:?} is used twice: steps name servers, so names must be unique")]
    DuplicateServer(String),
    #[error("no alive replica to promote ({} lost)", lost.len())]
    NoAliveReplica { lost: Vec<LostReplica> },
    #[error("replica {server} failed ({reason:?}) and is not ignore_fail (strict mode)")]
    ReplicaFailed {
        server: ServerRef,
        reason: LostReason,
    },
    #[error("replicas {a} and {b} hold GTIDs the other lacks: their data diverged")]
    DivergedReplicas { a: ServerRef, b: ServerRef },
    #[error("the forced new master {0} is not an alive replica of the dead master")]
    ForcedNewMasterNotAlive(String),
    #[error("the forced new master {server} cannot be promoted: {rejections:?}")]
    ForcedNewMasterRejected {
        server: ServerRef,
        rejections: Vec<Rejection>,
    },
    #[error(
        "none of the replicas can be the new master (candidate misconfigured or all too far \
         behind): {rejected:?}"
    )]
    NoCandidate {
        rejected: Vec<(ServerRef, Vec<Rejection>)>,
    },
}

/// A replica that will not be recovered, and why (MHA issue #85: it does not block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostReplica {
    pub server: ServerRef,
    pub reason: LostReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LostReason {
    Unreachable(String),
    NotAReplica,
    /// Replicates from another server than the dead master.
    OtherSource(String),
    /// The SQL thread stopped on an error: it cannot apply anything more.
    SqlThreadError {
        errno: u32,
        error: String,
    },
}

/// How replicas find their place again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Every survivor replicates with GTID (MariaDB `Using_Gtid`, MySQL auto-position).
    Gtid,
    /// Binlog file and position (MHA's non-GTID path, relay-log diffs).
    FilePosition,
}

/// Phase 1: survivors in configuration order, and the lost. Strict mode aborts on a lost
/// replica that is not `ignore_fail`, as MHA does.
pub(crate) fn survivors(
    input: &FailoverInput,
) -> Result<(Vec<Survivor<'_>>, Vec<LostReplica>), PlanError> {
    let (mut alive, mut lost) = (Vec::new(), Vec::new());
    let master = &input.dead_master.server;
    for r in &input.replicas {
        let reason = match &r.state {
            ReplicaState::Unreachable { reason } => LostReason::Unreachable(reason.clone()),
            ReplicaState::Reachable(facts) => match &facts.status {
                None => LostReason::NotAReplica,
                Some(s) if !s.replicates_from(&master.host, master.port) => {
                    LostReason::OtherSource(format!("{}:{}", s.source_host, s.source_port))
                }
                Some(s) if !s.sql_running && s.last_sql_errno != 0 => LostReason::SqlThreadError {
                    errno: s.last_sql_errno,
                    error: s.last_sql_error.clone(),
                },
                Some(status) => {
                    alive.push(Survivor {
                        server: &r.server,
                        policy: r.policy,
                        facts,
                        status,
                        received: None,
                    });
                    continue;
                }
            },
        };
        if input.policy.strict_replicas && !r.policy.ignore_fail {
            return Err(PlanError::ReplicaFailed {
                server: r.server.clone(),
                reason,
            });
        }
        lost.push(LostReplica {
            server: r.server.clone(),
            reason,
        });
    }
    if alive.is_empty() {
        return Err(PlanError::NoAliveReplica { lost });
    }
    Ok((alive, lost))
}

/// GTID mode when every survivor replicates with GTID and reports its GTID state.
pub(crate) fn mode_and_received(survivors: &mut [Survivor<'_>]) -> Mode {
    let all_gtid = survivors
        .iter()
        .all(|s| s.status.uses_gtid() && s.facts.gtid.is_some());
    if !all_gtid {
        return Mode::FilePosition;
    }
    for s in survivors.iter_mut() {
        s.received = received_set(s);
    }
    if survivors.iter().any(|s| s.received.is_none()) {
        Mode::FilePosition
    } else {
        Mode::Gtid
    }
}

fn received_set(s: &Survivor<'_>) -> Option<GtidSet> {
    let executed = &s.facts.gtid.as_ref()?.executed;
    let extra = match executed {
        GtidSet::MySql(_) => {
            let r = s.status.retrieved_gtid_set.clone().unwrap_or_default();
            GtidSet::MySql(r)
        }
        GtidSet::MariaDb(_) => GtidSet::MariaDb(s.status.gtid_io_pos.clone().unwrap_or_default()),
    };
    executed.union(&extra).ok()
}

/// GTIDs a survivor holds that neither the dead master wrote nor any other survivor received.
pub(crate) fn errant(
    master: &DeadMaster,
    s: &Survivor<'_>,
    all: &[Survivor<'_>],
) -> Option<GtidSet> {
    let executed = &s.facts.gtid.as_ref()?.executed;
    let others = all
        .iter()
        .filter(|o| o.name() != s.name())
        .filter_map(|o| o.received.clone());
    match executed {
        GtidSet::MySql(mine) => {
            let mut rest = mine.clone();
            for o in others {
                if let GtidSet::MySql(o) = o {
                    rest = rest.difference(&o);
                }
            }
            let master_uuid = master.server_uuid.as_deref().map(str::to_ascii_lowercase);
            let errant = rest.filter_sources(|src| {
                master_uuid
                    .as_deref()
                    .is_none_or(|m| src.split(':').next() != Some(m))
            });
            (!errant.is_empty()).then_some(GtidSet::MySql(errant))
        }
        GtidSet::MariaDb(mine) => {
            let mut union = MariaGtidPos::default();
            for o in others {
                if let GtidSet::MariaDb(o) = o {
                    union = union.union(&o);
                }
            }
            let errant: Vec<_> = mine
                .difference(&union)
                .into_iter()
                .filter(|gap| Some(gap.last.server_id) != master.server_id)
                .map(|gap| gap.last)
                .collect();
            (!errant.is_empty()).then(|| GtidSet::MariaDb(MariaGtidPos::from_gtids(errant)))
        }
    }
}

/// Latest survivors (received the most) and oldest, both in configuration order.
/// File/position: by `(Master_Log_File, Read_Master_Log_Pos)`. GTID: by received set, and
/// every survivor's set must be contained in the latest one's, otherwise they diverged.
pub(crate) fn latest_and_oldest(
    mode: Mode,
    survivors: &[Survivor<'_>],
    excluded: &[String],
) -> Result<(Vec<usize>, Vec<usize>), PlanError> {
    let considered: Vec<usize> = (0..survivors.len())
        .filter(|&i| !excluded.iter().any(|e| e == survivors[i].name()))
        .collect();
    let considered = if considered.is_empty() {
        (0..survivors.len()).collect()
    } else {
        considered
    };
    let cmp = |a: usize, b: usize| -> Result<Ordering, PlanError> {
        let (sa, sb) = (&survivors[a], &survivors[b]);
        match (mode, &sa.received, &sb.received) {
            (Mode::Gtid, Some(ra), Some(rb)) => match ra.partial_cmp_sets(rb) {
                Ok(Some(o)) => Ok(o.then_with(|| sa.read().cmp(sb.read()))),
                _ => Err(PlanError::DivergedReplicas {
                    a: sa.server.clone(),
                    b: sb.server.clone(),
                }),
            },
            _ => Ok(sa.read().cmp(sb.read())),
        }
    };
    let (mut max, mut min) = (considered[0], considered[0]);
    for &i in &considered[1..] {
        if cmp(i, max)? == Ordering::Greater {
            max = i;
        }
        if cmp(i, min)? == Ordering::Less {
            min = i;
        }
    }
    let mut latest = Vec::new();
    let mut oldest = Vec::new();
    for &i in &considered {
        if cmp(i, max)? == Ordering::Equal {
            latest.push(i);
        }
        if cmp(i, min)? == Ordering::Equal {
            oldest.push(i);
        }
    }
    Ok((latest, oldest))
}

/// Why a survivor cannot be the new master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rejection {
    NoMaster,
    LogBinOff,
    /// MHA never promotes a newer major version over older replicas (downgrade safety).
    NewerMajorVersion {
        version: String,
        oldest: String,
    },
    /// The SQL thread is too far behind what the latest replica received.
    TooFarBehind {
        behind: String,
    },
    ErrantGtids(String),
}

/// Why this server became the new master (MHA's search order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectionReason {
    Forced,
    /// No candidates configured and nobody is bad: the first latest replica.
    Latest,
    LatestCandidate,
    Candidate,
    LatestNotCandidate,
    AnyReplica,
}

pub(crate) fn rejections(
    input: &FailoverInput,
    s: &Survivor<'_>,
    all: &[Survivor<'_>],
    latest: &Survivor<'_>,
    errant: Option<&GtidSet>,
) -> Vec<Rejection> {
    let mut out = Vec::new();
    if s.policy.no_master {
        out.push(Rejection::NoMaster);
    }
    if !s.facts.variables.log_bin {
        out.push(Rejection::LogBinOff);
    }
    let oldest_major = all.iter().map(|o| o.facts.version.major_minor()).min();
    if let Some(oldest) = oldest_major.filter(|&o| s.facts.version.major_minor() > o) {
        out.push(Rejection::NewerMajorVersion {
            version: s.facts.version.raw.clone(),
            oldest: format!("{}.{}", oldest.0, oldest.1),
        });
    }
    if input.policy.check_repl_delay
        && let Some(behind) = too_far_behind(s, latest, input.policy.max_exec_gap_bytes)
    {
        out.push(Rejection::TooFarBehind { behind });
    }
    if let (true, Some(e)) = (input.policy.errant_gtid_veto, errant) {
        out.push(Rejection::ErrantGtids(e.to_string()));
    }
    out
}

/// The SQL thread's gap to the latest received position, when it exceeds `limit`. Unlike
/// MHA (issue #143) a replica on the previous binlog file is not rejected outright: the gap
/// is at least the latest position in the newer file, and only a gap known to exceed the
/// limit rejects.
fn too_far_behind(s: &Survivor<'_>, latest: &Survivor<'_>, limit: u64) -> Option<String> {
    let (exec, read) = (&s.status.exec, latest.read());
    let known_gap = match read.files_ahead_of(exec) {
        Some(0) => read.pos.saturating_sub(exec.pos),
        Some(n) if n > 0 => read.pos,
        _ => 0,
    };
    (known_gap > limit).then(|| format!("executed {exec}, latest received {read}"))
}

/// MHA's `select_new_master` order. `candidates` are survivor indexes; returns the index.
pub(crate) fn choose(
    input: &FailoverInput,
    survivors: &[Survivor<'_>],
    latest: &[usize],
    rejected: &[Vec<Rejection>],
) -> Result<(usize, SelectionReason), PlanError> {
    let ok = |i: &usize| rejected[*i].is_empty();
    let candidate = |i: &usize| survivors[*i].policy.candidate_master;
    if let Some(forced) = &input.policy.forced_new_master {
        return match survivors.iter().position(|s| &s.server.name == forced) {
            Some(i) if ok(&i) => Ok((i, SelectionReason::Forced)),
            Some(i) => Err(PlanError::ForcedNewMasterRejected {
                server: survivors[i].server.clone(),
                rejections: rejected[i].clone(),
            }),
            None => Err(PlanError::ForcedNewMasterNotAlive(forced.clone())),
        };
    }
    let all: Vec<usize> = (0..survivors.len()).collect();
    let latest_priority = input.policy.latest_priority;
    if latest_priority && !all.iter().any(candidate) && all.iter().all(ok) {
        return Ok((latest[0], SelectionReason::Latest));
    }
    if latest_priority && let Some(&i) = latest.iter().find(|i| candidate(i) && ok(i)) {
        return Ok((i, SelectionReason::LatestCandidate));
    }
    if let Some(&i) = all.iter().find(|i| candidate(i) && ok(i)) {
        return Ok((i, SelectionReason::Candidate));
    }
    if latest_priority && let Some(&i) = latest.iter().find(|i| ok(i)) {
        return Ok((i, SelectionReason::LatestNotCandidate));
    }
    if let Some(&i) = all.iter().find(|i| ok(i)) {
        return Ok((i, SelectionReason::AnyReplica));
    }
    Err(PlanError::NoCandidate {
        rejected: survivors
            .iter()
            .zip(rejected)
            .map(|(s, r)| (s.server.clone(), r.clone()))
            .collect(),
    })
}
