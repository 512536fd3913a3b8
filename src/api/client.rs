//! Admin API client, used by the CLI and by managers forwarding to the leader.
use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::Channel;
use tonic::{Request, Status};

use super::auth::AuthToken;
use crate::admin_proto::admin_service_client::AdminServiceClient;
use crate::admin_proto::{
    AddMemberRequest, InitRequest, NodeStatus, ReadOperationRequest, ReadRequest,
    RemoveMemberRequest, StatusRequest, WriteRequest,
};
use crate::raft::network::lazy_channel;
use crate::state::{ClusterRecord, Command, CommandResult, FailoverRecord, ManagerState};

/// Marks a request a manager already forwarded once, so it is never forwarded in a loop.
pub const FORWARDED_HEADER: &str = "x-raftmha-forwarded";

#[derive(Clone)]
pub struct AdminClient {
    addr: String,
    inner: AdminServiceClient<Channel>,
    token: AuthToken,
    timeout: Duration,
    local: Option<std::net::IpAddr>,
    forwarded: bool,
}

impl AdminClient {
    pub fn new(addr: &str, token: AuthToken, timeout: Duration) -> Result<Self, String> {
        Self::new_from(addr, token, timeout, None)
    }

    /// A client whose connections leave from `local` (a manager's own address).
    pub fn new_from(
        addr: &str,
        token: AuthToken,
        timeout: Duration,
        local: Option<std::net::IpAddr>,
    ) -> Result<Self, String> {
        let channel = lazy_channel(addr, timeout, local)?;
        Ok(AdminClient {
            addr: addr.to_string(),
            inner: AdminServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024),
            token,
            timeout,
            local,
            forwarded: false,
        })
    }

    /// The same client, marking its requests as forwarded by a manager.
    pub fn forwarding(mut self) -> Self {
        self.forwarded = true;
        self
    }

    /// A client for another address with the same token and deadline.
    pub fn with_addr(&self, addr: &str) -> Result<Self, String> {
        let mut c = AdminClient::new_from(addr, self.token.clone(), self.timeout, self.local)?;
        c.forwarded = self.forwarded;
        Ok(c)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn request<T>(&self, body: T) -> Request<T> {
        let mut req = Request::new(body);
        req.set_timeout(self.timeout);
        self.token.attach(&mut req);
        if self.forwarded {
            req.metadata_mut().insert(
                FORWARDED_HEADER,
                tonic::metadata::MetadataValue::from_static("1"),
            );
        }
        req
    }

    async fn deadline<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, Status> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r.map(tonic::Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "{}: no answer within {:?}",
                self.addr, self.timeout
            ))),
        }
    }

    pub async fn status(&self) -> Result<NodeStatus, Status> {
        let mut c = self.inner.clone();
        self.deadline(c.status(self.request(StatusRequest {})))
            .await
    }

    /// Proposes a command; returns its result and the log index it was committed at.
    pub async fn write(&self, command: &Command) -> Result<(CommandResult, u64), Status> {
        let command_json =
            serde_json::to_vec(command).map_err(|e| Status::internal(e.to_string()))?;
        self.write_body(WriteRequest {
            command_json,
            request_json: Vec::new(),
        })
        .await
    }

    /// Forwards a whole request (a manager's own, or an operator's it received) to the
    /// leader, keeping its proposer and time.
    pub async fn write_request(
        &self,
        request: &crate::state::Request,
    ) -> Result<(CommandResult, u64), Status> {
        let request_json =
            serde_json::to_vec(request).map_err(|e| Status::internal(e.to_string()))?;
        self.write_body(WriteRequest {
            command_json: Vec::new(),
            request_json,
        })
        .await
    }

    async fn write_body(&self, body: WriteRequest) -> Result<(CommandResult, u64), Status> {
        let mut c = self.inner.clone();
        let reply = self.deadline(c.write(self.request(body))).await?;
        let result = serde_json::from_slice(&reply.result_json)
            .map_err(|e| Status::internal(format!("undecodable reply: {e}")))?;
        Ok((result, reply.log_index))
    }

    /// A linearizable read of the replicated state.
    pub async fn read_state(&self) -> Result<(ManagerState, u64), Status> {
        self.read_state_of("").await
    }

    /// A linearizable read of one cluster's record (`None`: no such cluster).
    pub async fn read_cluster(&self, name: &str) -> Result<(Option<ClusterRecord>, u64), Status> {
        if name.is_empty() {
            return Err(Status::invalid_argument("a cluster name is required"));
        }
        let (mut state, index) = self.read_state_of(name).await?;
        Ok((state.clusters.remove(name), index))
    }

    /// The whole state (`cluster` empty), or a state holding only `cluster` (a manager that
    /// predates the filter answers with the whole state).
    pub async fn read_state_of(&self, cluster: &str) -> Result<(ManagerState, u64), Status> {
        let mut c = self.inner.clone();
        let req = ReadRequest {
            cluster: cluster.to_string(),
        };
        let reply = self.deadline(c.read_state(self.request(req))).await?;
        let state = serde_json::from_slice(&reply.state_json)
            .map_err(|e| Status::internal(format!("undecodable state: {e}")))?;
        Ok((state, reply.applied_index))
    }

    /// One failover or operation record (without binlog chunks), read linearizably; falls
    /// back to reading the whole state from a manager that predates this call.
    pub async fn read_operation(
        &self,
        cluster: &str,
        id: u64,
    ) -> Result<Option<FailoverRecord>, Status> {
        let mut c = self.inner.clone();
        let req = ReadOperationRequest {
            cluster: cluster.to_string(),
            id,
        };
        match self.deadline(c.read_operation(self.request(req))).await {
            Ok(reply) if !reply.found => Ok(None),
            Ok(reply) => serde_json::from_slice(&reply.record_json)
                .map(Some)
                .map_err(|e| Status::internal(format!("undecodable record: {e}"))),
            Err(s) if s.code() == tonic::Code::Unimplemented => {
                let (state, _) = self.read_state().await?;
                Ok(state
                    .clusters
                    .get(cluster)
                    .and_then(|c| c.failovers.iter().find(|f| f.id == id))
                    .cloned())
            }
            Err(s) => Err(s),
        }
    }

    pub async fn initialize(&self) -> Result<String, Status> {
        let mut c = self.inner.clone();
        Ok(self
            .deadline(c.initialize(self.request(InitRequest {})))
            .await?
            .message)
    }

    pub async fn add_member(&self, id: u64, addr: &str) -> Result<String, Status> {
        let mut c = self.inner.clone();
        let req = AddMemberRequest {
            id,
            addr: addr.to_string(),
        };
        Ok(self
            .deadline(c.add_member(self.request(req)))
            .await?
            .message)
    }

    pub async fn remove_member(&self, id: u64) -> Result<String, Status> {
        let mut c = self.inner.clone();
        let req = RemoveMemberRequest { id };
        Ok(self
            .deadline(c.remove_member(self.request(req)))
            .await?
            .message)
    }
}

/// How the CLI finds and authenticates to managers.
#[derive(Debug, Clone, clap::Args)]
pub struct ManagersArgs {
    /// Managers to contact, `host:port,...` (any one will do; writes are forwarded).
    #[arg(long, env = "RAFTMHA_MANAGERS", value_delimiter = ',')]
    pub managers: Vec<String>,
    /// File holding the managers' auth token.
    #[arg(long, env = "RAFTMHA_TOKEN_FILE")]
    pub token_file: PathBuf,
    /// Per-request deadline in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// CA certificate of managers that serve TLS (their `[tls] ca_file`).
    #[arg(long, env = "RAFTMHA_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key, for managers with `require_client_cert = true`.
    #[arg(long, env = "RAFTMHA_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, env = "RAFTMHA_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ManagersArgs {
    /// One client per listed manager (never empty).
    pub fn clients(&self) -> anyhow::Result<Vec<AdminClient>> {
        let managers: Vec<&String> = self.managers.iter().filter(|m| !m.is_empty()).collect();
        if managers.is_empty() {
            anyhow::bail!("no managers given: use --managers host:port,... or RAFTMHA_MANAGERS");
        }
        let token = AuthToken::load(&self.token_file)?;
        let timeout = Duration::from_millis(self.timeout_ms.max(1));
        if let Some(ca) = &self.tls_ca {
            let tls = raftmha_node::tls::ClientTls {
                ca_file: ca.clone(),
                cert_file: self.tls_cert.clone(),
                key_file: self.tls_key.clone(),
                domain: None,
            };
            crate::raft::network::use_client_tls(tls.load()?);
        }
        managers
            .into_iter()
            .map(|m| {
                AdminClient::new(m, token.clone(), timeout)
                    .map_err(|e| anyhow::anyhow!("--managers: {e}"))
            })
            .collect()
    }
}

/// Runs `call` against each manager in turn until one succeeds; the error lists every
/// manager's failure.
pub async fn first_answer<T, F, Fut>(clients: &[AdminClient], call: F) -> anyhow::Result<T>
where
    F: Fn(AdminClient) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut failures = Vec::new();
    for client in clients {
        match call(client.clone()).await {
            Ok(v) => return Ok(v),
            // A definitive answer (bad request, rejected) is not retried elsewhere.
            Err(s) if is_definitive(&s) => {
                anyhow::bail!("{}: {}", client.addr(), s.message())
            }
            Err(s) => failures.push(format!("{}: {}", client.addr(), s.message())),
        }
    }
    anyhow::bail!("no manager could answer ({})", failures.join("; "))
}

fn is_definitive(s: &Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::InvalidArgument
            | tonic::Code::AlreadyExists
            | tonic::Code::FailedPrecondition
            | tonic::Code::Unauthenticated
            | tonic::Code::NotFound
    )
}
