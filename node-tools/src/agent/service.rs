//! The NodeAgent RPCs.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::config::AgentConfig;
use super::fence::{is_live_mysqld, proc_state, read_pid};
use super::keeper::Keeper;
use super::paths;
use super::route::Recorded;
use super::routing::Routes;
use super::tokens::{FencingToken, HEADER, TokenBook};
use crate::binlog::relay::{Found, MasterCoord, Method, list_numbered};
use crate::proto::node_agent_server::NodeAgent;
use crate::proto::*;
use crate::tools::ToolError;
use crate::tools::apply::{ApplyRequest, apply};
use crate::tools::db::DbTarget;
use crate::tools::purge::{PurgeRequest, purge};

/// Size of streamed file chunks.
pub const CHUNK: usize = 1 << 20;

type ChunkStream = Pin<Box<dyn Stream<Item = Result<FileChunk, Status>> + Send>>;

pub struct Agent {
    cfg: Arc<AgentConfig>,
    db: Option<(DbTarget, Option<PathBuf>)>,
    seq: AtomicU64,
    keeper: Arc<Keeper>,
    tokens: TokenBook,
    routes: Arc<Routes>,
}

impl Agent {
    pub fn new(cfg: AgentConfig) -> anyhow::Result<Self> {
        let db = cfg.db_target()?;
        std::fs::create_dir_all(&cfg.workdir)?;
        let keeper = Arc::new(Keeper::new(&cfg, db.as_ref().map(|(t, _)| t.clone())));
        let tokens = TokenBook::open(&cfg.workdir)?;
        Ok(Agent {
            cfg: Arc::new(cfg),
            db,
            seq: AtomicU64::new(0),
            keeper,
            tokens,
            routes: Arc::default(),
        })
    }

    /// The fencing token a call carries, if any.
    fn token_of<T>(req: &Request<T>) -> Result<Option<FencingToken>, Status> {
        let Some(value) = req.metadata().get(HEADER) else {
            return Ok(None);
        };
        let text = value
            .to_str()
            .map_err(|_| Status::invalid_argument("the fencing token is not text"))?;
        FencingToken::parse(text)
            .map(Some)
            .map_err(Status::invalid_argument)
    }

    /// Admits a mutating call by its fencing token (see [`super::tokens`]).
    fn admit<T>(&self, req: &Request<T>, what: &str) -> Result<(), Status> {
        let Some(token) = Self::token_of(req)? else {
            return Ok(());
        };
        self.tokens.admit(&token).map_err(|e| {
            tracing::warn!("{what} refused: {e}");
            Status::failed_precondition(format!("{what} refused: {e}"))
        })
    }

    /// What the routing checks know (see [`super::routing`]).
    pub fn routes(&self) -> Arc<Routes> {
        self.routes.clone()
    }

    /// The local server's account, for the routing refresher.
    pub fn db_target(&self) -> Option<DbTarget> {
        self.db.as_ref().map(|(t, _)| t.clone())
    }

    /// The lease keeper, whose check loop [`super::serve`] runs.
    pub fn keeper(&self) -> Arc<Keeper> {
        self.keeper.clone()
    }

    fn scratch(&self, what: &str) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        self.cfg
            .workdir
            .join(format!("{what}-{}-{n}", std::process::id()))
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.call_timeout_secs)
    }

    fn db(&self) -> Result<&(DbTarget, Option<PathBuf>), Status> {
        self.db
            .as_ref()
            .ok_or_else(|| Status::failed_precondition("no [db] section in the agent config"))
    }

    /// Runs blocking file work under the call deadline.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
    ) -> Result<T, Status> {
        let task = tokio::task::spawn_blocking(f);
        match tokio::time::timeout(self.timeout(), task).await {
            Err(_) => Err(Status::deadline_exceeded("the call's deadline passed")),
            Ok(Err(e)) => Err(Status::internal(format!("task failed: {e}"))),
            Ok(Ok(r)) => r.map_err(tool_status),
        }
    }

    fn relay_files(&self) -> Result<Vec<PathBuf>, Status> {
        let files = list_numbered(&self.cfg.relay_dir, &self.cfg.relay_base)
            .map_err(|e| Status::failed_precondition(format!("relay dir: {e}")))?;
        if files.is_empty() {
            return Err(Status::not_found("no relay logs"));
        }
        Ok(files)
    }
}

/// gRPC metadata key set on a status whose cause is an encrypted binlog or relay log, so
/// that a manager can tell it from corruption and fall back to what needs no file reading.
pub const BINLOG_ENCRYPTED_KEY: &str = "x-raftmha-binlog-encrypted";

fn tool_status(e: ToolError) -> Status {
    if e.is_encrypted() {
        let mut md = tonic::metadata::MetadataMap::new();
        md.insert(
            BINLOG_ENCRYPTED_KEY,
            tonic::metadata::MetadataValue::from_static("1"),
        );
        return Status::with_metadata(tonic::Code::FailedPrecondition, e.to_string(), md);
    }
    match &e {
        ToolError::Invalid(_) => Status::failed_precondition(e.to_string()),
        ToolError::Find(crate::binlog::relay::FindError::NotFound(_)) => {
            Status::not_found(e.to_string())
        }
        ToolError::Walk(_) | ToolError::Find(_) => Status::data_loss(e.to_string()),
        ToolError::Db { .. } => Status::unavailable(e.to_string()),
        ToolError::Io { .. } | ToolError::Apply(_) => Status::internal(e.to_string()),
    }
}

fn coords(r: &RelayPositionRequest) -> Result<(MasterCoord, Option<MasterCoord>), Status> {
    if r.target_mlf.is_empty() {
        return Err(Status::invalid_argument("target_mlf is required"));
    }
    let target = MasterCoord {
        file: r.target_mlf.clone(),
        pos: r.target_rmlp,
    };
    let latest = (!r.latest_mlf.is_empty()).then(|| MasterCoord {
        file: r.latest_mlf.clone(),
        pos: r.latest_rmlp,
    });
    Ok((target, latest))
}

/// Streams `path` in checksummed chunks, then a final message with totals; deletes the file.
fn stream_file(path: PathBuf, no_events: bool, report_json: String) -> ChunkStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<FileChunk, Status>>(4);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let send = |m| tx.blocking_send(m).is_ok();
        let result = (|| -> std::io::Result<bool> {
            let mut f = std::fs::File::open(&path)?;
            let mut total = crc32fast::Hasher::new();
            let mut offset = 0u64;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let mut n = 0;
                while n < CHUNK {
                    let got = f.read(&mut buf[n..])?;
                    if got == 0 {
                        break;
                    }
                    n += got;
                }
                if n == 0 {
                    break;
                }
                total.update(&buf[..n]);
                let chunk = FileChunk {
                    offset,
                    data: buf[..n].to_vec(),
                    crc32: crc32fast::hash(&buf[..n]),
                    ..Default::default()
                };
                if !send(Ok(chunk)) {
                    return Ok(false);
                }
                offset += n as u64;
            }
            Ok(send(Ok(FileChunk {
                offset,
                last: true,
                total_size: offset,
                total_crc32: total.finalize(),
                no_events,
                report_json,
                ..Default::default()
            })))
        })();
        if let Err(e) = result {
            let _ = send(Err(Status::internal(format!(
                "reading {}: {e}",
                path.display()
            ))));
        }
        let _ = std::fs::remove_file(&path);
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl NodeAgent for Agent {
    type SaveBinaryLogsStream = ChunkStream;
    type GenerateDiffStream = ChunkStream;

    async fn health(&self, _req: Request<HealthRequest>) -> Result<Response<HealthReply>, Status> {
        let pid = read_pid(self.cfg.mysqld_pid_file.as_deref());
        let state = pid.and_then(proc_state);
        let running = pid.is_some_and(is_live_mysqld);
        let readable = |d: &Path| std::fs::read_dir(d).is_ok();
        let newest = list_numbered(&self.cfg.binlog_dir, &self.cfg.binlog_base)
            .ok()
            .and_then(|v| v.last().cloned());
        let server_version = newest
            .as_ref()
            .and_then(|p| {
                let mut w = crate::binlog::Walker::open(p).ok()?;
                w.next_event().ok()??;
                w.format().map(|f| f.server_version.clone())
            })
            .unwrap_or_default();
        Ok(Response::new(HealthReply {
            agent_version: env!("CARGO_PKG_VERSION").into(),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            mysqld_running: running,
            mysqld_pid: pid.unwrap_or(0),
            mysqld_state: state.unwrap_or_else(|| "absent".into()),
            binlog_dir_readable: readable(&self.cfg.binlog_dir),
            relay_dir_readable: readable(&self.cfg.relay_dir),
            server_version,
            newest_binlog: newest
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default(),
            fence: Some(self.keeper.fence_state()),
        }))
    }

    async fn renew_lease(
        &self,
        req: Request<RenewLeaseRequest>,
    ) -> Result<Response<LeaseReply>, Status> {
        if let Some(token) = Self::token_of(&req)? {
            self.tokens
                .check(&token)
                .map_err(|e| Status::failed_precondition(format!("renewal refused: {e}")))?;
        }
        let r = req.get_ref();
        let reply = self.keeper.renew(r);
        // Only the recorded master's lease is renewed: an accepted renewal names this host.
        if reply.accepted && !r.master.is_empty() {
            self.routes.note(Recorded {
                cluster: r.cluster.clone(),
                epoch: r.epoch,
                master: r.master.clone(),
                master_addr: r.master_addr.clone(),
                is_me: true,
                at: tokio::time::Instant::now(),
            });
        }
        Ok(Response::new(reply))
    }

    async fn note_master(
        &self,
        req: Request<NoteMasterRequest>,
    ) -> Result<Response<NoteMasterReply>, Status> {
        let r = req.into_inner();
        if r.cluster.is_empty() || r.master.is_empty() {
            return Err(Status::invalid_argument("cluster and master are required"));
        }
        let accepted = self.routes.note(Recorded {
            cluster: r.cluster,
            epoch: r.epoch,
            master: r.master,
            master_addr: r.master_addr,
            is_me: false,
            at: tokio::time::Instant::now(),
        });
        let epoch = self.routes.recorded().map_or(0, |c| c.epoch);
        Ok(Response::new(NoteMasterReply { accepted, epoch }))
    }

    async fn fence(&self, req: Request<FenceRequest>) -> Result<Response<FenceReply>, Status> {
        self.admit(&req, "Fence")?;
        let r = req.into_inner();
        Ok(Response::new(self.keeper.fence(&r.cluster, r.epoch).await))
    }

    async fn unfence(&self, req: Request<UnfenceRequest>) -> Result<Response<FenceReply>, Status> {
        self.admit(&req, "Unfence")?;
        let r = req.into_inner();
        Ok(Response::new(
            self.keeper.unfence(&r.cluster, r.epoch).await?,
        ))
    }

    async fn save_binary_logs(
        &self,
        req: Request<SaveBinaryLogsRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let r = req.into_inner();
        let dir = if r.from_relay_dir {
            self.cfg.relay_dir.clone()
        } else {
            self.cfg.binlog_dir.clone()
        };
        paths::resolve(&dir, &r.start_file)?;
        let out = self.scratch("save");
        let verify = self.cfg.verify_crc;
        let out2 = out.clone();
        let outcome = self
            .blocking(move || {
                crate::tools::save::save(&crate::tools::save::SaveRequest {
                    binlog_dirs: vec![dir],
                    start_file: r.start_file,
                    start_pos: r.start_pos,
                    output: out2,
                    verify_crc: verify,
                })
            })
            .await?;
        let (no_events, report) = match &outcome {
            crate::tools::save::SaveOutcome::Saved(r) => (false, r),
            crate::tools::save::SaveOutcome::NoEvents(r) => (true, r),
        };
        let json = serde_json::to_string(report).unwrap_or_default();
        Ok(Response::new(stream_file(out, no_events, json)))
    }

    async fn find_relay_position(
        &self,
        req: Request<RelayPositionRequest>,
    ) -> Result<Response<FindRelayPositionReply>, Status> {
        let (target, latest) = coords(req.get_ref())?;
        let files = self.relay_files()?;
        let r = self
            .blocking(move || crate::tools::diff::find(&files, &target, latest.as_ref()))
            .await?;
        let method = match &r.method {
            Method::Fast => "fast".to_string(),
            Method::FullScan { fast_rejected } => format!(
                "full_scan{}",
                fast_rejected
                    .as_ref()
                    .map(|w| format!(" (fast rejected: {w})"))
                    .unwrap_or_default()
            ),
        };
        Ok(Response::new(match r.found {
            Found::TargetHasAll => FindRelayPositionReply {
                target_has_all: true,
                method,
                ..Default::default()
            },
            Found::At { path, offset, .. } => FindRelayPositionReply {
                target_has_all: false,
                relay_file: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                offset,
                method,
            },
        }))
    }

    async fn generate_diff(
        &self,
        req: Request<RelayPositionRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let (target, latest) = coords(req.get_ref())?;
        let files = self.relay_files()?;
        let out = self.scratch("diff");
        let out2 = out.clone();
        let verify = self.cfg.verify_crc;
        let g = self
            .blocking(move || {
                crate::tools::diff::generate(&files, &target, latest.as_ref(), &out2, verify)
            })
            .await?;
        let json = serde_json::to_string(&g).unwrap_or_default();
        if g.report.is_none() {
            // Target has everything: an empty stream with no_events.
            std::fs::write(&out, b"").map_err(|e| Status::internal(format!("workdir: {e}")))?;
        }
        let no_events = g.report.as_ref().is_none_or(|r| r.data_events == 0);
        Ok(Response::new(stream_file(out, no_events, json)))
    }

    async fn apply_diff(
        &self,
        req: Request<Streaming<ApplyDiffChunk>>,
    ) -> Result<Response<ApplyDiffReply>, Status> {
        self.admit(&req, "ApplyDiff")?;
        let (db, bindir) = self.db()?.clone();
        let dir = self.scratch("upload");
        std::fs::create_dir_all(&dir).map_err(|e| Status::internal(format!("workdir: {e}")))?;
        let result = self
            .receive_and_apply(req.into_inner(), &dir, db, bindir)
            .await;
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    async fn purge_relay_logs(
        &self,
        req: Request<PurgeRelayLogsRequest>,
    ) -> Result<Response<PurgeRelayLogsReply>, Status> {
        self.admit(&req, "PurgeRelayLogs")?;
        let (db, _) = self.db()?.clone();
        let r = PurgeRequest {
            target: db,
            workdir: self.cfg.workdir.clone(),
            disable_relay_log_purge: req.get_ref().disable_relay_log_purge,
            use_hardlink: true,
            wait: Duration::from_secs(3),
        };
        let rep = tokio::time::timeout(self.timeout(), purge(&r))
            .await
            .map_err(|_| Status::deadline_exceeded("purge took too long"))?
            .map_err(tool_status)?;
        Ok(Response::new(PurgeRelayLogsReply {
            purged_files: rep.purged.len() as u32,
            bytes_freed: rep.bytes_freed,
            skipped_purge_on: rep.skipped_purge_on,
        }))
    }

    async fn stop_mysqld(
        &self,
        req: Request<StopMysqldRequest>,
    ) -> Result<Response<StopMysqldReply>, Status> {
        if !self.cfg.allow_stop_mysqld {
            return Err(Status::permission_denied(
                "StopMysqld is disabled (allow_stop_mysqld = false)",
            ));
        }
        self.admit(&req, "StopMysqld")?;
        let Some(pid) = read_pid(self.cfg.mysqld_pid_file.as_deref()) else {
            return Ok(Response::new(StopMysqldReply::default()));
        };
        if !is_live_mysqld(pid) {
            return Ok(Response::new(StopMysqldReply {
                pid,
                ..Default::default()
            }));
        }
        let sig = if req.get_ref().kill {
            libc::SIGKILL
        } else {
            libc::SIGTERM
        };
        // SAFETY: plain syscall; the pid was just checked to be a mysqld.
        unsafe { libc::kill(pid, sig) };
        let deadline = tokio::time::Instant::now() + self.timeout().min(Duration::from_secs(120));
        while tokio::time::Instant::now() < deadline {
            if !is_live_mysqld(pid) {
                return Ok(Response::new(StopMysqldReply {
                    pid,
                    was_running: true,
                    stopped: true,
                }));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Response::new(StopMysqldReply {
            pid,
            was_running: true,
            stopped: false,
        }))
    }
}

impl Agent {
    async fn receive_and_apply(
        &self,
        mut stream: Streaming<ApplyDiffChunk>,
        dir: &Path,
        db: DbTarget,
        client_bindir: Option<PathBuf>,
    ) -> Result<Response<ApplyDiffReply>, Status> {
        use std::io::Write;
        let mut files: Vec<PathBuf> = Vec::new();
        let mut current: Option<(std::fs::File, u64)> = None;
        let mut total = 0u64;
        let mut apply_now = false;
        while let Some(msg) = stream.message().await? {
            if !msg.file_name.is_empty() {
                let name = paths::upload_name(&msg.file_name)?;
                let path = dir.join(format!("{:03}-{name}", files.len()));
                let f = std::fs::File::create(&path)
                    .map_err(|e| Status::internal(format!("workdir: {e}")))?;
                files.push(path);
                current = Some((f, 0));
            }
            if !msg.data.is_empty() {
                let Some((f, expected)) = current.as_mut() else {
                    return Err(Status::invalid_argument("data before any file_name"));
                };
                if msg.offset != *expected {
                    return Err(Status::invalid_argument(format!(
                        "chunk at offset {} but {} expected",
                        msg.offset, expected
                    )));
                }
                if crc32fast::hash(&msg.data) != msg.crc32 {
                    return Err(Status::data_loss(format!(
                        "chunk at offset {} has a bad CRC",
                        msg.offset
                    )));
                }
                total += msg.data.len() as u64;
                if total > self.cfg.max_upload_bytes {
                    return Err(Status::resource_exhausted(format!(
                        "upload exceeds max_upload_bytes ({})",
                        self.cfg.max_upload_bytes
                    )));
                }
                f.write_all(&msg.data)
                    .map_err(|e| Status::internal(format!("workdir: {e}")))?;
                *expected += msg.data.len() as u64;
            }
            if msg.apply {
                apply_now = true;
                break;
            }
        }
        if !apply_now {
            return Err(Status::cancelled(
                "upload ended without apply = true; nothing applied",
            ));
        }
        drop(current);
        let req = ApplyRequest {
            files,
            target: db,
            workdir: self.cfg.workdir.clone(),
            client_bindir,
            verify_crc: true,
            keep_files: false,
        };
        let r = tokio::time::timeout(self.timeout(), apply(&req))
            .await
            .map_err(|_| Status::deadline_exceeded("apply took too long"))?
            .map_err(tool_status)?;
        Ok(Response::new(ApplyDiffReply {
            groups_applied: r.stream.groups_applied,
            groups_skipped: r.stream.groups_skipped,
            gtid_slave_pos: r.gtid_slave_pos_after.clone(),
            incomplete: r.stream.incomplete.clone(),
            report_json: serde_json::to_string(&r).unwrap_or_default(),
        }))
    }
}
