//! `apply_diff_relay_logs --command=apply`: applies diff files to a server.
//!
//! Choice of path: the stream of complete, not-yet-executed groups built by [`stream`] is piped
//! through `mariadb-binlog` into `mariadb --binary-mode`, as MHA does. The server's own client
//! and binlog printer reproduce every event's session context exactly (sql_mode, charset,
//! timestamps, `gtid_domain_id/server_id/seq_no`), which a native re-implementation would have
//! to re-derive event by event; what MHA's pipeline lacks is added around it:
//! - idempotency: groups whose GTID the target has executed (`@@gtid_slave_pos` and
//!   `@@gtid_binlog_pos`, per domain) are left out of the stream;
//! - no half transactions: only complete groups enter the stream; the rest is reported;
//! - MariaDB's `gtid_slave_pos` is raised to the last GTID of every complete group, so a later
//!   `MASTER_USE_GTID=slave_pos` does not fetch them again;
//! - credentials go through a 0600 option file, never the command line.

pub mod gtid;
pub mod stream;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mysql_async::prelude::Queryable;

use super::ToolError;
use super::db::{ClientCnf, DbTarget, column, query_string, slave_status};
use gtid::GtidPos;
use stream::StreamReport;

/// What to apply where.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    pub files: Vec<PathBuf>,
    pub target: DbTarget,
    pub workdir: PathBuf,
    /// Directory of `mariadb-binlog` and `mariadb` (MHA's `--client_bindir`); PATH otherwise.
    pub client_bindir: Option<PathBuf>,
    pub verify_crc: bool,
    /// Keep the applied stream and the client log after success (they are kept on failure).
    pub keep_files: bool,
}

/// What happened.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApplyReport {
    pub stream: StreamReport,
    pub gtid_slave_pos_before: String,
    pub gtid_slave_pos_after: String,
    pub gtid_binlog_pos_after: Option<String>,
    pub stream_file: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
}

fn find_binary(bindir: Option<&Path>, names: &[&str]) -> Result<PathBuf, ToolError> {
    let dirs: Vec<PathBuf> = match bindir {
        Some(d) => vec![d.to_path_buf()],
        None => std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default(),
    };
    for name in names {
        for d in dirs
            .iter()
            .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")].iter())
        {
            let p = d.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(ToolError::Invalid(format!(
        "none of {names:?} found (set --client_bindir)"
    )))
}

/// Applies `req.files` to `req.target`.
pub async fn apply(req: &ApplyRequest) -> Result<ApplyReport, ToolError> {
    let db = &req.target;
    let mut conn = db.connect().await?;
    let version = query_string(&mut conn, db, "SELECT @@version")
        .await?
        .unwrap_or_default();
    if !version.contains("MariaDB") {
        return Err(ToolError::Invalid(format!(
            "target runs {version}; only MariaDB targets are supported by apply"
        )));
    }
    let status = slave_status(&mut conn, db).await?;
    for thread in ["Slave_IO_Running", "Slave_SQL_Running"] {
        if column(&status, thread) == Some("Yes") {
            return Err(ToolError::Invalid(format!(
                "{}: {thread}=Yes; stop the replica threads before applying diffs",
                db.addr()
            )));
        }
    }
    let parse = |s: Option<String>, what: &str| {
        GtidPos::parse(s.as_deref().unwrap_or("")).map_err(|e| db.db_err(format!("{what}: {e}")))
    };
    let slave_before = parse(
        query_string(&mut conn, db, "SELECT @@global.gtid_slave_pos").await?,
        "gtid_slave_pos",
    )?;
    let binlog_before = parse(
        query_string(&mut conn, db, "SELECT @@global.gtid_binlog_pos").await?,
        "gtid_binlog_pos",
    )?;
    let executed = slave_before.merged(&binlog_before);

    std::fs::create_dir_all(&req.workdir)
        .map_err(ToolError::io(format!("create {}", req.workdir.display())))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let tag = format!("{}_{}", db.host.replace(['/', ':'], "_"), db.port);
    let stream_file = req
        .workdir
        .join(format!("total_binlog_for_{tag}.{stamp}.binlog"));
    let log_file = req
        .workdir
        .join(format!("relay_log_apply_for_{tag}_{stamp}_err.log"));
    let files = req.files.clone();
    let verify = req.verify_crc;
    let sf = stream_file.clone();
    let executed_c = executed.clone();
    let stream =
        tokio::task::spawn_blocking(move || stream::build(&files, &executed_c, &sf, verify))
            .await
            .map_err(|e| ToolError::Apply(format!("stream builder panicked: {e}")))??;

    if stream.groups_applied > 0 {
        let old_packet = query_string(&mut conn, db, "SELECT @@global.max_allowed_packet").await?;
        // Row-event BINLOG statements of big transactions exceed the default packet size.
        conn.query_drop("SET GLOBAL max_allowed_packet = 1073741824")
            .await
            .map_err(|e| db.db_err(e))?;
        let outcome = run_pipeline(req, &stream_file, &log_file).await;
        if let Some(old) = old_packet {
            let _ = conn
                .query_drop(format!(
                    "SET GLOBAL max_allowed_packet = {}",
                    old.parse::<u64>().unwrap_or(16 << 20)
                ))
                .await;
        }
        outcome?;
    }

    let mut binlog_after = None;
    let log_bin = query_string(&mut conn, db, "SELECT @@global.log_bin").await?;
    if log_bin.as_deref() == Some("1") {
        binlog_after = query_string(&mut conn, db, "SELECT @@global.gtid_binlog_pos").await?;
    }
    // Raise gtid_slave_pos to cover every complete group of the diff (applied now or before).
    let wanted = slave_before.merged(&stream.complete);
    if wanted != slave_before {
        conn.exec_drop("SET GLOBAL gtid_slave_pos = ?", (wanted.to_string(),))
            .await
            .map_err(|e| db.db_err(format!("SET GLOBAL gtid_slave_pos: {e}")))?;
    }
    let slave_after = query_string(&mut conn, db, "SELECT @@global.gtid_slave_pos")
        .await?
        .unwrap_or_default();
    let _ = conn.disconnect().await;
    let keep = req.keep_files;
    if !keep {
        let _ = std::fs::remove_file(&stream_file);
        let _ = std::fs::remove_file(&log_file);
    }
    Ok(ApplyReport {
        stream,
        gtid_slave_pos_before: slave_before.to_string(),
        gtid_slave_pos_after: slave_after,
        gtid_binlog_pos_after: binlog_after,
        stream_file: keep.then_some(stream_file),
        log_file: keep.then_some(log_file),
    })
}

/// `mariadb-binlog STREAM | mariadb --defaults-file=<0600 file> --binary-mode`.
async fn run_pipeline(
    req: &ApplyRequest,
    stream_file: &Path,
    log_file: &Path,
) -> Result<(), ToolError> {
    let binlog_bin = find_binary(
        req.client_bindir.as_deref(),
        &["mariadb-binlog", "mysqlbinlog"],
    )?;
    let client_bin = find_binary(req.client_bindir.as_deref(), &["mariadb", "mysql"])?;
    let cnf = ClientCnf::create(&req.workdir, &req.target)?;
    let cnf_path = cnf.path().to_path_buf();
    let stream_file = stream_file.to_path_buf();
    let log_file = log_file.to_path_buf();
    let result = tokio::task::spawn_blocking(move || -> Result<(), ToolError> {
        let log = File::create(&log_file)
            .map_err(ToolError::io(format!("create {}", log_file.display())))?;
        let log2 = log.try_clone().map_err(ToolError::io("dup log"))?;
        let log3 = log.try_clone().map_err(ToolError::io("dup log"))?;
        let mut printer = Command::new(&binlog_bin)
            .arg("--no-defaults")
            .arg(&stream_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(ToolError::io(format!("start {}", binlog_bin.display())))?;
        let Some(pipe) = printer.stdout.take() else {
            return Err(ToolError::Apply(
                "no stdout pipe from the binlog printer".into(),
            ));
        };
        let client = Command::new(&client_bin)
            .arg(format!("--defaults-file={}", cnf_path.display()))
            .arg("--binary-mode")
            .stdin(Stdio::from(pipe))
            .stdout(Stdio::from(log2))
            .stderr(Stdio::from(log3))
            .status();
        let printer_status = printer.wait();
        let client = client.map_err(ToolError::io(format!("run {}", client_bin.display())))?;
        let printer_status =
            printer_status.map_err(ToolError::io("wait for the binlog printer"))?;
        if !client.success() || !printer_status.success() {
            let tail = std::fs::read_to_string(&log_file).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(ToolError::Apply(format!(
                "client exit {client}, printer exit {printer_status}; log {}:\n{}",
                log_file.display(),
                tail.join("\n")
            )));
        }
        Ok(())
    })
    .await
    .map_err(|e| ToolError::Apply(format!("apply task panicked: {e}")))?;
    drop(cnf);
    result
}
