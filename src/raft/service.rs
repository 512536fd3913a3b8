//! Raft RPC server: decodes openraft messages and hands them to the local Raft node.
use tonic::{Request, Response, Status, Streaming};

use super::codec::{decode, encode};
use super::network::TARGET_HEADER;
use super::{NodeId, Raft, Snapshot, SnapshotMeta, Vote};
use crate::api::auth::AuthToken;
use crate::proto::raft_service_server::RaftService;
use crate::proto::{RaftBytes, SnapshotChunk};

/// Bounds the memory one incoming snapshot may take.
const MAX_SNAPSHOT_BYTES: usize = 512 * 1024 * 1024;

pub struct RaftServer {
    raft: Raft,
    id: NodeId,
    token: AuthToken,
}

impl RaftServer {
    pub fn new(raft: Raft, id: NodeId, token: AuthToken) -> Self {
        RaftServer { raft, id, token }
    }

    fn admit<T>(&self, req: &Request<T>) -> Result<(), Status> {
        self.token.check(req)?;
        let target = req
            .metadata()
            .get(TARGET_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<NodeId>().ok());
        match target {
            Some(t) if t != self.id => Err(Status::failed_precondition(format!(
                "this address now serves manager {}, not {t}",
                self.id
            ))),
            _ => Ok(()),
        }
    }
}

fn bad_request(e: std::io::Error) -> Status {
    Status::invalid_argument(format!("undecodable Raft message: {e}"))
}

fn reply<T: serde::Serialize>(value: &T) -> Result<Response<RaftBytes>, Status> {
    let data = encode(value).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(RaftBytes { data }))
}

fn stopped(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft node stopped: {e}"))
}

#[tonic::async_trait]
impl RaftService for RaftServer {
    async fn append_entries(&self, req: Request<RaftBytes>) -> Result<Response<RaftBytes>, Status> {
        self.admit(&req)?;
        let rpc = decode(&req.into_inner().data).map_err(bad_request)?;
        let resp = self.raft.append_entries(rpc).await.map_err(stopped)?;
        reply(&resp)
    }

    async fn vote(&self, req: Request<RaftBytes>) -> Result<Response<RaftBytes>, Status> {
        self.admit(&req)?;
        let rpc = decode(&req.into_inner().data).map_err(bad_request)?;
        let resp = self.raft.vote(rpc).await.map_err(stopped)?;
        reply(&resp)
    }

    async fn pre_vote(&self, req: Request<RaftBytes>) -> Result<Response<RaftBytes>, Status> {
        self.admit(&req)?;
        let rpc = decode(&req.into_inner().data).map_err(bad_request)?;
        let resp = self.raft.pre_vote(rpc).await.map_err(stopped)?;
        reply(&resp)
    }

    async fn transfer_leader(
        &self,
        req: Request<RaftBytes>,
    ) -> Result<Response<RaftBytes>, Status> {
        self.admit(&req)?;
        let rpc = decode(&req.into_inner().data).map_err(bad_request)?;
        let resp = self
            .raft
            .handle_transfer_leader(rpc)
            .await
            .map_err(stopped)?;
        reply(&resp)
    }

    async fn snapshot(
        &self,
        req: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftBytes>, Status> {
        self.admit(&req)?;
        let mut stream = req.into_inner();
        let mut head: Option<(Vote, SnapshotMeta)> = None;
        let mut data = Vec::new();
        while let Some(chunk) = stream.message().await? {
            if head.is_none() {
                head = Some(decode(&chunk.meta).map_err(bad_request)?);
            }
            if data.len() + chunk.data.len() > MAX_SNAPSHOT_BYTES {
                return Err(Status::resource_exhausted("snapshot larger than 512 MiB"));
            }
            data.extend_from_slice(&chunk.data);
        }
        let (vote, meta) = head.ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        let snapshot = Snapshot {
            meta,
            snapshot: std::io::Cursor::new(data),
        };
        let resp = self
            .raft
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(stopped)?;
        reply(&resp)
    }
}
