//! The admin gRPC service every manager serves. Writes, current reads and membership
//! changes run on the Raft leader: a follower forwards them once, transparently.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tonic::{Request, Response, Status};

use super::auth::AuthToken;
use super::client::{AdminClient, FORWARDED_HEADER};
use crate::admin_proto::admin_service_server::AdminService;
use crate::admin_proto::{
    AddMemberRequest, InitReply, InitRequest, Member, MemberReply, NodeStatus, OperationReply,
    ReadOperationRequest, ReadRequest, RemoveMemberRequest, StateReply, StatusRequest, WriteReply,
    WriteRequest,
};
use crate::raft::NodeId;
use crate::raft::handle::{NotDone, RaftHandle};
use crate::state::{Command, Request as StateRequest};

pub struct AdminServer {
    pub raft: RaftHandle,
    pub id: NodeId,
    pub addr: String,
    pub token: AuthToken,
    pub initial_voters: Vec<(NodeId, String)>,
    /// Deadline for proposals and reads: a leader cut off from its quorum fails them
    /// instead of hanging.
    pub op_timeout: Duration,
    /// This manager's own IP, the source of its forwarded and bootstrap calls.
    pub local_ip: Option<std::net::IpAddr>,
    /// Clients to other managers, reused across requests (one HTTP/2 channel per peer).
    pub peers: PeerClients,
}

#[derive(Default)]
pub struct PeerClients(std::sync::Mutex<std::collections::HashMap<String, AdminClient>>);

impl PeerClients {
    fn get(
        &self,
        addr: &str,
        make: impl FnOnce() -> Result<AdminClient, String>,
    ) -> Result<AdminClient, String> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(addr) {
            return Ok(c.clone());
        }
        let c = make()?;
        map.insert(addr.to_string(), c.clone());
        Ok(c)
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Status> {
    serde_json::to_vec(value).map_err(|e| Status::internal(e.to_string()))
}

impl AdminServer {
    fn admit<T>(&self, req: &Request<T>) -> Result<bool, Status> {
        self.token.check(req)?;
        Ok(req.metadata().get(FORWARDED_HEADER).is_some())
    }

    /// Turns "not done here" into a client for the leader, or the final error.
    fn leader_client(&self, forwarded: bool, why: NotDone) -> Result<AdminClient, Status> {
        let leader = match why {
            NotDone::Failed(reason) => return Err(Status::failed_precondition(reason)),
            NotDone::NotLeader(leader) => leader,
        };
        if forwarded {
            return Err(Status::unavailable(
                "leadership moved while forwarding; retry",
            ));
        }
        let Some((leader_id, addr)) = leader else {
            return Err(Status::unavailable(
                "no leader right now (election in progress or no quorum); retry",
            ));
        };
        if leader_id == self.id {
            return Err(Status::unavailable(
                "this manager is stepping up or down; retry",
            ));
        }
        let addr = addr
            .or_else(|| self.raft.member_addr(leader_id))
            .ok_or_else(|| {
                Status::unavailable(format!("leader {leader_id} has no known address"))
            })?;
        self.peer(&addr)
            .map(AdminClient::forwarding)
            .map_err(Status::internal)
    }

    fn peer(&self, addr: &str) -> Result<AdminClient, String> {
        self.peers.get(addr, || {
            AdminClient::new_from(addr, self.token.clone(), self.op_timeout, self.local_ip)
        })
    }

    /// Membership changes are not proposals openraft routes for us: check leadership first.
    fn local_leadership(&self) -> Result<(), NotDone> {
        let view = self.raft.view();
        if view.leader == Some(self.id) {
            Ok(())
        } else {
            Err(NotDone::NotLeader(view.leader.map(|l| (l, None))))
        }
    }

    async fn within<T>(&self, what: &str, f: impl Future<Output = T>) -> Result<T, Status> {
        tokio::time::timeout(self.op_timeout, f).await.map_err(|_| {
            Status::deadline_exceeded(format!(
                "{what} did not complete within {:?} (no quorum reachable from manager {}?)",
                self.op_timeout, self.id
            ))
        })
    }

    /// Bootstraps the cluster with the configured voters. Safe against two independent
    /// clusters: every initial voter must answer and be uninitialized, and every manager
    /// proposes the same list (openraft accepts identical initialisation on several nodes).
    pub async fn initialize_cluster(&self) -> Result<String, Status> {
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(Status::unavailable)?;
        if initialized {
            return Err(Status::already_exists(
                "this manager already belongs to an initialized cluster",
            ));
        }
        if !self.initial_voters.iter().any(|(id, _)| *id == self.id) {
            return Err(Status::failed_precondition(format!(
                "manager {} is not in its initial_voters; initialize from a voter",
                self.id
            )));
        }
        for (id, addr) in &self.initial_voters {
            if *id == self.id {
                continue;
            }
            let peer = self.peer(addr).map_err(Status::internal)?;
            let status = peer.status().await.map_err(|e| {
                Status::unavailable(format!(
                    "initial voter {id} at {addr} does not answer ({}); all initial voters must be up to initialize",
                    e.message()
                ))
            })?;
            if status.id != *id {
                return Err(Status::failed_precondition(format!(
                    "{addr} answers as manager {}, but initial_voters says {id}",
                    status.id
                )));
            }
            if status.initialized {
                return Err(Status::failed_precondition(format!(
                    "manager {id} already belongs to an initialized cluster; add this manager with `raftmha members add` instead"
                )));
            }
        }
        self.raft
            .initialize(&self.initial_voters)
            .await
            .map_err(|e| Status::failed_precondition(format!("cannot initialize: {e}")))?;
        Ok(format!(
            "initialized a cluster of {} voters",
            self.initial_voters.len()
        ))
    }
}

#[tonic::async_trait]
impl AdminService for AdminServer {
    async fn status(&self, req: Request<StatusRequest>) -> Result<Response<NodeStatus>, Status> {
        self.admit(&req)?;
        let v = self.raft.view();
        Ok(Response::new(NodeStatus {
            id: self.id,
            addr: self.addr.clone(),
            role: v.role.to_string(),
            term: v.term,
            leader: v.leader,
            last_log_index: v.last_log_index,
            applied_index: v.applied_index,
            members: v
                .members
                .into_iter()
                .map(|(id, addr, voter)| Member { id, addr, voter })
                .collect(),
            initialized: v.initialized,
            committed_index: v.committed_index,
        }))
    }

    async fn write(&self, req: Request<WriteRequest>) -> Result<Response<WriteReply>, Status> {
        let forwarded = self.admit(&req)?;
        let body = req.into_inner();
        let proposal = if body.request_json.is_empty() {
            let command: Command = serde_json::from_slice(&body.command_json)
                .map_err(|e| Status::invalid_argument(format!("not a command: {e}")))?;
            StateRequest::new(command, Some(self.id), now_ms())
        } else {
            serde_json::from_slice::<StateRequest>(&body.request_json)
                .map_err(|e| Status::invalid_argument(format!("not a request: {e}")))?
        };
        if proposal.command == Command::Unknown {
            return Err(Status::invalid_argument("unknown command kind"));
        }
        admissible(&proposal, !body.request_json.is_empty())?;
        match self
            .within("the write", self.raft.write(proposal.clone()))
            .await?
        {
            Ok((result, log_index)) => Ok(Response::new(WriteReply {
                result_json: json(&result)?,
                log_index,
                leader: self.id,
            })),
            Err(why) => {
                let client = self.leader_client(forwarded, why)?;
                let (result, log_index) = client.write_request(&proposal).await?;
                Ok(Response::new(WriteReply {
                    result_json: json(&result)?,
                    log_index,
                    leader: 0,
                }))
            }
        }
    }

    async fn read_state(&self, req: Request<ReadRequest>) -> Result<Response<StateReply>, Status> {
        let forwarded = self.admit(&req)?;
        let cluster = req.into_inner().cluster;
        let (state, applied_index) = match self
            .within("the linearizable read", self.raft.read())
            .await?
        {
            Ok(read) => read,
            Err(why) => {
                let client = self.leader_client(forwarded, why)?;
                let (state, index) = client.read_state_of(&cluster).await?;
                (std::sync::Arc::new(state), index)
            }
        };
        // One cluster's read costs that cluster's size, not the whole state's.
        let state_json = match cluster.as_str() {
            "" => json(&*state)?,
            name => json(&state.only_cluster(name))?,
        };
        Ok(Response::new(StateReply {
            state_json,
            applied_index,
        }))
    }

    async fn read_operation(
        &self,
        req: Request<ReadOperationRequest>,
    ) -> Result<Response<OperationReply>, Status> {
        let forwarded = self.admit(&req)?;
        let body = req.into_inner();
        let record = match self
            .within("the linearizable read", self.raft.read())
            .await?
        {
            Ok((state, _)) => state
                .clusters
                .get(&body.cluster)
                .and_then(|c| c.failovers.iter().find(|f| f.id == body.id))
                .cloned()
                .map(|mut f| {
                    // Binlog chunks can weigh megabytes; followers of an operation need none.
                    f.tail.clear();
                    f.diffs.clear();
                    f
                }),
            Err(why) => {
                let client = self.leader_client(forwarded, why)?;
                client.read_operation(&body.cluster, body.id).await?
            }
        };
        Ok(Response::new(OperationReply {
            found: record.is_some(),
            record_json: match &record {
                Some(f) => json(f)?,
                None => Vec::new(),
            },
        }))
    }

    async fn initialize(&self, req: Request<InitRequest>) -> Result<Response<InitReply>, Status> {
        self.admit(&req)?;
        let message = self.initialize_cluster().await?;
        Ok(Response::new(InitReply { message }))
    }

    async fn add_member(
        &self,
        req: Request<AddMemberRequest>,
    ) -> Result<Response<MemberReply>, Status> {
        let forwarded = self.admit(&req)?;
        let body = req.into_inner();
        if body.id == 0 {
            return Err(Status::invalid_argument("member id must be 1 or more"));
        }
        if body.addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(Status::invalid_argument(format!(
                "{:?} is not an IP:port address",
                body.addr
            )));
        }
        let done = match self.local_leadership() {
            Ok(()) => {
                self.within(
                    "adding the member",
                    self.raft.add_voter(body.id, &body.addr),
                )
                .await?
            }
            Err(why) => Err(why),
        };
        let log_index = match done {
            Ok(index) => index,
            Err(why) => {
                let message = self
                    .leader_client(forwarded, why)?
                    .add_member(body.id, &body.addr)
                    .await?;
                return Ok(Response::new(MemberReply {
                    message,
                    log_index: 0,
                }));
            }
        };
        Ok(Response::new(MemberReply {
            message: format!("manager {} at {} is a voter", body.id, body.addr),
            log_index,
        }))
    }

    async fn remove_member(
        &self,
        req: Request<RemoveMemberRequest>,
    ) -> Result<Response<MemberReply>, Status> {
        let forwarded = self.admit(&req)?;
        let id = req.into_inner().id;
        let done = match self.local_leadership() {
            Ok(()) => {
                self.within("removing the member", self.raft.remove_member(id))
                    .await?
            }
            Err(why) => Err(why),
        };
        match done {
            Ok(log_index) => Ok(Response::new(MemberReply {
                message: format!("manager {id} removed"),
                log_index,
            })),
            Err(why) => {
                let message = self
                    .leader_client(forwarded, why)?
                    .remove_member(id)
                    .await?;
                Ok(Response::new(MemberReply {
                    message,
                    log_index: 0,
                }))
            }
        }
    }
}

/// What the admin API's `Write` accepts: an operator's requests; and, forwarded whole by a
/// manager, those plus verdict reports. Never a request acting for a run (it names a term)
/// nor a run's journal entry: only the leader proposes those, to its own log.
fn admissible(req: &StateRequest, forwarded_whole: bool) -> Result<(), Status> {
    let verdict = matches!(req.command, Command::ReportLiveness { .. });
    if req.term.is_some() || !(req.command.is_operator_request() || (forwarded_whole && verdict)) {
        return Err(Status::permission_denied(format!(
            "{} is not an operator request: the admin API does not accept it",
            req.command.kind()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{RunOwner, StepPhase};

    #[test]
    fn the_api_takes_operator_requests_and_forwarded_verdicts_never_run_entries() {
        let op = StateRequest::new(
            Command::AckFailover {
                cluster: "app1".into(),
            },
            Some(1),
            1,
        );
        assert!(admissible(&op, false).is_ok());
        let verdict = StateRequest::new(
            Command::ReportLiveness {
                cluster: "app1".into(),
                server: "db1".into(),
                manager: 2,
                verdict: crate::state::Verdict::Dead,
                window_start_ms: 1,
                window_end_ms: 2,
                master_epoch: 0,
            },
            Some(2),
            1,
        );
        assert!(admissible(&verdict, true).is_ok());
        assert!(
            admissible(&verdict, false).is_err(),
            "operators do not vote"
        );
        let promote = Command::PromoteMaster {
            cluster: "app1".into(),
            server: "db2".into(),
            expected_epoch: 0,
            failover_id: Some(1),
        };
        let step = Command::FailoverStep {
            cluster: "app1".into(),
            failover_id: 1,
            step: "x".into(),
            phase: StepPhase::Result,
            detail: String::new(),
        };
        let leader = RunOwner {
            manager: 1,
            term: 4,
        };
        for forged in [promote, step] {
            for whole in [false, true] {
                assert!(admissible(&StateRequest::new(forged.clone(), Some(1), 1), whole).is_err());
                let as_leader = StateRequest::as_owner(forged.clone(), leader, 1);
                assert!(admissible(&as_leader, whole).is_err());
            }
        }
    }
}
