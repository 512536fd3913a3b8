//! The typed client managers use to call a node agent.

use std::path::Path;
use std::time::Duration;

use tonic::Status;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::proto::node_agent_client::NodeAgentClient;
use crate::proto::*;

pub use super::tokens::FencingToken;

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct AddToken {
    value: MetadataValue<tonic::metadata::Ascii>,
}

impl tonic::service::Interceptor for AddToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        req.metadata_mut()
            .insert("authorization", self.value.clone());
        Ok(req)
    }
}

/// What a streamed file download produced.
#[derive(Debug, Clone)]
pub struct Download {
    pub bytes: u64,
    pub no_events: bool,
    pub report_json: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("agent call failed: {0}")]
    Status(#[from] Status),
    #[error("cannot connect to the agent: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("invalid token: {0}")]
    Token(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("transfer corrupted: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

impl ClientError {
    /// True when the agent could not read a binlog or relay log because it is encrypted
    /// (MariaDB `encrypt_binlog`, MySQL `binlog_encryption`): not corruption, and no retry
    /// will help; the caller falls back to what needs no file reading.
    pub fn binlog_encrypted(&self) -> bool {
        match self {
            ClientError::Status(s) => s
                .metadata()
                .get(super::service::BINLOG_ENCRYPTED_KEY)
                .is_some(),
            _ => false,
        }
    }
}

#[derive(Clone)]
pub struct AgentClient {
    inner: NodeAgentClient<InterceptedService<Channel, AddToken>>,
    timeout: Duration,
    /// Sent with every call (see [`super::tokens`]): the agent refuses mutating calls with a
    /// token lower than the highest it has seen.
    fencing: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl AgentClient {
    /// Connects to `http://host:port` with the shared token; every call gets `timeout`.
    pub async fn connect(
        endpoint: &str,
        token: &str,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        Self::connect_with_tls(endpoint, token, timeout, None).await
    }

    /// As [`AgentClient::connect`], over TLS when `tls` is given (the scheme becomes https).
    pub async fn connect_with_tls(
        endpoint: &str,
        token: &str,
        timeout: Duration,
        tls: Option<&crate::tls::ClientTls>,
    ) -> Result<Self, ClientError> {
        let value: MetadataValue<_> = format!("Bearer {token}")
            .parse()
            .map_err(|_| ClientError::Token("not valid header text".into()))?;
        let mut ep = Endpoint::from_shared(crate::tls::endpoint_url(endpoint, tls.is_some()))?;
        if let Some(tls) = tls {
            ep = ep.tls_config(tls.load()?)?;
        }
        let channel = ep
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .connect()
            .await?;
        let inner = NodeAgentClient::with_interceptor(channel, AddToken { value })
            .max_decoding_message_size(8 << 20);
        Ok(AgentClient {
            inner,
            timeout,
            fencing: None,
        })
    }

    fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(self.timeout);
        if let Some(token) = &self.fencing {
            r.metadata_mut()
                .insert(super::tokens::HEADER, token.clone());
        }
        r
    }

    /// This client acting under `token`: the agent refuses its mutating calls once it has
    /// seen a higher one for the cluster.
    pub fn fenced(mut self, token: &FencingToken) -> Result<Self, ClientError> {
        let value = token
            .encode()
            .parse()
            .map_err(|_| ClientError::Token("the fencing token is not valid header text".into()))?;
        self.fencing = Some(value);
        Ok(self)
    }

    pub async fn health(&self) -> Result<HealthReply, ClientError> {
        Ok(self
            .inner
            .clone()
            .health(self.req(HealthRequest {}))
            .await?
            .into_inner())
    }

    /// Saves the binlog tail from `start_file:start_pos` into the local file `out`.
    pub async fn save_binary_logs(
        &self,
        start_file: &str,
        start_pos: u64,
        from_relay_dir: bool,
        out: &Path,
    ) -> Result<Download, ClientError> {
        let stream = self
            .inner
            .clone()
            .save_binary_logs(self.req(SaveBinaryLogsRequest {
                start_file: start_file.into(),
                start_pos,
                from_relay_dir,
            }))
            .await?
            .into_inner();
        receive_file(stream, out).await
    }

    pub async fn find_relay_position(
        &self,
        req: RelayPositionRequest,
    ) -> Result<FindRelayPositionReply, ClientError> {
        Ok(self
            .inner
            .clone()
            .find_relay_position(self.req(req))
            .await?
            .into_inner())
    }

    pub async fn generate_diff(
        &self,
        req: RelayPositionRequest,
        out: &Path,
    ) -> Result<Download, ClientError> {
        let stream = self
            .inner
            .clone()
            .generate_diff(self.req(req))
            .await?
            .into_inner();
        receive_file(stream, out).await
    }

    /// Uploads `files` in order and applies them on the agent's server.
    pub async fn apply_diff(&self, files: &[&Path]) -> Result<ApplyDiffReply, ClientError> {
        // Build the upload lazily from files, chunk by chunk, through a channel.
        let (tx, rx) = tokio::sync::mpsc::channel::<ApplyDiffChunk>(4);
        let paths: Vec<std::path::PathBuf> = files.iter().map(|p| p.to_path_buf()).collect();
        let producer = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            for path in paths {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "diff.binlog".into());
                let mut f = tokio::fs::File::open(&path).await?;
                if tx
                    .send(ApplyDiffChunk {
                        file_name: name,
                        ..Default::default()
                    })
                    .await
                    .is_err()
                {
                    return Ok(());
                }
                let mut offset = 0u64;
                let mut buf = vec![0u8; super::service::CHUNK];
                loop {
                    let n = f.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    let chunk = ApplyDiffChunk {
                        offset,
                        data: buf[..n].to_vec(),
                        crc32: crc32fast::hash(&buf[..n]),
                        ..Default::default()
                    };
                    if tx.send(chunk).await.is_err() {
                        return Ok(());
                    }
                    offset += n as u64;
                }
            }
            let _ = tx
                .send(ApplyDiffChunk {
                    apply: true,
                    ..Default::default()
                })
                .await;
            Ok::<(), std::io::Error>(())
        });
        let reply = self
            .inner
            .clone()
            .apply_diff(self.req(tokio_stream::wrappers::ReceiverStream::new(rx)))
            .await;
        let produced = producer
            .await
            .map_err(|e| ClientError::Corrupt(e.to_string()))?;
        produced?;
        Ok(reply?.into_inner())
    }

    pub async fn purge_relay_logs(
        &self,
        disable_relay_log_purge: bool,
    ) -> Result<PurgeRelayLogsReply, ClientError> {
        Ok(self
            .inner
            .clone()
            .purge_relay_logs(self.req(PurgeRelayLogsRequest {
                disable_relay_log_purge,
            }))
            .await?
            .into_inner())
    }

    pub async fn stop_mysqld(&self, kill: bool) -> Result<StopMysqldReply, ClientError> {
        Ok(self
            .inner
            .clone()
            .stop_mysqld(self.req(StopMysqldRequest { kill }))
            .await?
            .into_inner())
    }
}

impl AgentClient {
    /// One lease renewal; the caller bounds it with its own (short) timeout.
    pub async fn renew_lease(&self, req: RenewLeaseRequest) -> Result<LeaseReply, ClientError> {
        Ok(self
            .inner
            .clone()
            .renew_lease(self.req(req))
            .await?
            .into_inner())
    }

    /// Fences the host's mysqld for `cluster` at `epoch` (the leader during a failover).
    pub async fn fence(&self, cluster: &str, epoch: u64) -> Result<FenceReply, ClientError> {
        Ok(self
            .inner
            .clone()
            .fence(self.req(FenceRequest {
                cluster: cluster.into(),
                epoch,
            }))
            .await?
            .into_inner())
    }

    /// Lifts a recorded fence (refused unless a majority renews for `epoch`).
    /// Tells a non-master host's agent which server is the recorded master (routing).
    pub async fn note_master(
        &self,
        req: NoteMasterRequest,
    ) -> Result<NoteMasterReply, ClientError> {
        Ok(self
            .inner
            .clone()
            .note_master(self.req(req))
            .await?
            .into_inner())
    }

    pub async fn unfence(&self, cluster: &str, epoch: u64) -> Result<FenceReply, ClientError> {
        Ok(self
            .inner
            .clone()
            .unfence(self.req(UnfenceRequest {
                cluster: cluster.into(),
                epoch,
            }))
            .await?
            .into_inner())
    }
}

/// Writes a chunk stream to `out`, checking each chunk's CRC, offsets and the totals.
async fn receive_file(
    mut stream: tonic::Streaming<FileChunk>,
    out: &Path,
) -> Result<Download, ClientError> {
    use tokio::io::AsyncWriteExt;
    let mut f = tokio::fs::File::create(out).await?;
    let mut offset = 0u64;
    let mut total = crc32fast::Hasher::new();
    while let Some(chunk) = stream.message().await? {
        if chunk.last {
            let crc = total.finalize();
            if chunk.total_size != offset || chunk.total_crc32 != crc {
                return Err(ClientError::Corrupt(format!(
                    "got {offset} bytes crc {crc:08x}, agent sent {} bytes crc {:08x}",
                    chunk.total_size, chunk.total_crc32
                )));
            }
            f.flush().await?;
            f.sync_data().await?;
            return Ok(Download {
                bytes: offset,
                no_events: chunk.no_events,
                report_json: chunk.report_json,
            });
        }
        if chunk.offset != offset || crc32fast::hash(&chunk.data) != chunk.crc32 {
            return Err(ClientError::Corrupt(format!(
                "bad chunk at offset {}",
                chunk.offset
            )));
        }
        total.update(&chunk.data);
        f.write_all(&chunk.data).await?;
        offset += chunk.data.len() as u64;
    }
    Err(ClientError::Corrupt(
        "stream ended without its final message".into(),
    ))
}
