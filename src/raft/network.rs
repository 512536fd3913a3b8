//! Raft RPC client over tonic. One HTTP/2 channel per peer address, reused by every RPC
//! (openraft asks for a new client per replication stream; channels are cached here),
//! a deadline on every call, and snapshots streamed in 1 MiB chunks.
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::transport::{Channel, Endpoint};

use super::codec::{decode, encode};
use super::{Node, NodeId, Snapshot, SnapshotData, TypeConfig, Vote};
use crate::api::auth::AuthToken;
use crate::proto::raft_service_client::RaftServiceClient;
use crate::proto::{RaftBytes, SnapshotChunk};

/// Metadata key naming the node a request is meant for, so a reused address that now
/// belongs to another manager refuses instead of answering for the wrong node.
pub const TARGET_HEADER: &str = "x-raftmha-target";
const SNAPSHOT_CHUNK: usize = 1024 * 1024;

/// TLS for every channel this process dials (managers and admin clients), set once at
/// start-up: a process talks to one manager cluster, which has one CA.
static CLIENT_TLS: std::sync::OnceLock<tonic::transport::ClientTlsConfig> =
    std::sync::OnceLock::new();

/// Makes every later [`lazy_channel`] use TLS with `cfg`. Only the first call takes effect.
pub fn use_client_tls(cfg: tonic::transport::ClientTlsConfig) {
    let _ = CLIENT_TLS.set(cfg);
}

/// Builds a lazily connecting channel with the settings every manager client uses.
///
/// `local` binds outgoing connections to this manager's own address, so peers (and
/// firewall rules) see the manager's IP rather than the kernel's default source.
pub fn lazy_channel(
    addr: &str,
    connect_timeout: Duration,
    local: Option<IpAddr>,
) -> Result<Channel, String> {
    let tls = CLIENT_TLS.get();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .map_err(|e| format!("bad address {addr:?}: {e}"))?;
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls.clone())
            .map_err(|e| format!("tls for {addr}: {e}"))?;
    }
    let endpoint = endpoint
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(Duration::from_secs(2))
        .keep_alive_while_idle(true)
        .local_address(local);
    Ok(endpoint.connect_lazy())
}

#[derive(Clone)]
pub struct Network {
    token: AuthToken,
    connect_timeout: Duration,
    local: Option<IpAddr>,
    channels: Arc<Mutex<HashMap<String, Result<Channel, String>>>>,
}

impl Network {
    pub fn new(token: AuthToken, connect_timeout: Duration, local: Option<IpAddr>) -> Self {
        Network {
            token,
            connect_timeout,
            local,
            channels: Arc::default(),
        }
    }

    fn channel(&self, addr: &str) -> Result<Channel, String> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels
            .entry(addr.to_string())
            .or_insert_with(|| lazy_channel(addr, self.connect_timeout, self.local))
            .clone()
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Connection {
        Connection {
            target,
            addr: node.addr.clone(),
            channel: self.channel(&node.addr),
            token: self.token.clone(),
        }
    }
}

pub struct Connection {
    target: NodeId,
    addr: String,
    channel: Result<Channel, String>,
    token: AuthToken,
}

enum Rpc {
    Append,
    Vote,
    PreVote,
    TransferLeader,
}

fn unreachable(msg: impl ToString) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::from_string(msg))
}

fn status_error(addr: &str, status: tonic::Status) -> RPCError<TypeConfig> {
    match status.code() {
        // Connection refused/reset and deadline: the peer is down or cut off; back off.
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            unreachable(format!("{addr}: {}", status.message()))
        }
        _ => RPCError::Network(NetworkError::from_string(format!(
            "{addr}: {:?}: {}",
            status.code(),
            status.message()
        ))),
    }
}

impl Connection {
    fn client(&self) -> Result<RaftServiceClient<Channel>, RPCError<TypeConfig>> {
        let channel = self.channel.clone().map_err(unreachable)?;
        Ok(RaftServiceClient::new(channel)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024))
    }

    fn request<T>(&self, body: T, ttl: Duration) -> tonic::Request<T> {
        let mut req = tonic::Request::new(body);
        req.set_timeout(ttl);
        self.token.attach(&mut req);
        if let Ok(v) = self.target.to_string().parse() {
            req.metadata_mut().insert(TARGET_HEADER, v);
        }
        req
    }

    async fn unary<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        rpc: Rpc,
        body: &Req,
        ttl: Duration,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        let data = encode(body).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut client = self.client()?;
        let req = self.request(RaftBytes { data }, ttl);
        let call = async move {
            match rpc {
                Rpc::Append => client.append_entries(req).await,
                Rpc::Vote => client.vote(req).await,
                Rpc::PreVote => client.pre_vote(req).await,
                Rpc::TransferLeader => client.transfer_leader(req).await,
            }
        };
        let reply = match tokio::time::timeout(ttl, call).await {
            Err(_) => {
                return Err(unreachable(format!(
                    "{}: no reply within {ttl:?}",
                    self.addr
                )));
            }
            Ok(Err(status)) => return Err(status_error(&self.addr, status)),
            Ok(Ok(reply)) => reply.into_inner(),
        };
        decode(&reply.data).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

impl RaftNetworkV2<TypeConfig> for Connection {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(Rpc::Append, &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(Rpc::Vote, &rpc, option.hard_ttl()).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(Rpc::PreVote, &rpc, option.hard_ttl()).await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(Rpc::TransferLeader, &req, option.hard_ttl())
            .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let net = |e: std::io::Error| StreamingError::Network(NetworkError::new(&e));
        let meta = encode(&(vote, snapshot.meta)).map_err(net)?;
        let data = snapshot.snapshot.into_inner();
        let mut chunks = vec![SnapshotChunk {
            meta,
            data: Vec::new(),
        }];
        chunks.extend(data.chunks(SNAPSHOT_CHUNK).map(|c| SnapshotChunk {
            meta: Vec::new(),
            data: c.to_vec(),
        }));
        let ttl = option.hard_ttl();
        let mut client = self.client().map_err(|e| match e {
            RPCError::Unreachable(u) => StreamingError::Unreachable(u),
            other => StreamingError::Network(NetworkError::from_string(other)),
        })?;
        let req = self.request(tokio_stream::iter(chunks), ttl);
        let addr = self.addr.clone();
        let send = async move {
            match tokio::time::timeout(ttl, client.snapshot(req)).await {
                Err(_) => Err(StreamingError::Unreachable(Unreachable::from_string(
                    format!("{addr}: snapshot not acknowledged within {ttl:?}"),
                ))),
                Ok(Err(status)) => Err(match status_error(&addr, status) {
                    RPCError::Unreachable(u) => StreamingError::Unreachable(u),
                    other => StreamingError::Network(NetworkError::from_string(other)),
                }),
                Ok(Ok(reply)) => decode(&reply.into_inner().data).map_err(net),
            }
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            result = send => result,
        }
    }
}
