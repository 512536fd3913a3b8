//! The three MHA node tools with MHA's flag names (`--start_file=...`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;

use super::{CliError, CliResult, print_json, resolve_password};
use crate::binlog::relay::{Found, MasterCoord, Method};
use crate::tools::apply::{ApplyRequest, apply};
use crate::tools::db::DbTarget;
use crate::tools::diff::{RelaySource, find, generate};
use crate::tools::purge::{PurgeRequest, purge as purge_tool};
use crate::tools::save::{SaveOutcome, SaveRequest, save as save_tool, test as save_test};

/// Options MHA passes that we accept and ignore (they select Perl-era behaviour).
#[derive(Debug, Args, Default)]
pub struct Ignored {
    #[arg(long = "handle_raw_binlog", hide = true)]
    pub handle_raw_binlog: Option<String>,
    #[arg(long = "disable_log_bin", hide = true)]
    pub disable_log_bin: Option<String>,
    #[arg(long = "manager_version", hide = true)]
    pub manager_version: Option<String>,
    #[arg(long = "client_libdir", hide = true)]
    pub client_libdir: Option<String>,
    #[arg(long = "oldest_version", hide = true)]
    pub oldest_version: Option<String>,
    #[arg(long = "skip_filter", hide = true)]
    pub skip_filter: Option<String>,
    #[arg(long = "target_version", hide = true)]
    pub target_version: Option<String>,
    #[arg(long = "timestamp", hide = true)]
    pub timestamp: Option<String>,
    #[arg(long = "debug", hide = true, num_args = 0..=1, default_missing_value = "1")]
    pub debug: Option<String>,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// `save` or `test`.
    #[arg(long, default_value = "save")]
    pub command: String,
    #[arg(long = "start_file")]
    pub start_file: Option<String>,
    /// For `--command=test`: the binlog base name (`binlog`), checked with its first file.
    #[arg(long = "binlog_prefix")]
    pub binlog_prefix: Option<String>,
    #[arg(long = "start_pos", default_value_t = 4)]
    pub start_pos: u64,
    /// Comma-separated directories; the first holding the start file wins.
    #[arg(long = "binlog_dir", default_value = "/var/lib/mysql")]
    pub binlog_dir: String,
    #[arg(long = "output_file")]
    pub output_file: Option<PathBuf>,
    /// Skip CRC32 verification (faster; the apply step verifies anyway).
    #[arg(long = "no_verify")]
    pub no_verify: bool,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub ignored: Ignored,
}

pub async fn save(a: SaveArgs) -> CliResult {
    let dirs: Vec<PathBuf> = a
        .binlog_dir
        .split(',')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    match a.command.as_str() {
        "test" => {
            let start = match (&a.start_file, &a.binlog_prefix) {
                (Some(f), _) => f.clone(),
                (None, Some(prefix)) => first_file_with_prefix(&dirs, prefix)?,
                (None, None) => {
                    return Err(CliError::usage(anyhow!(
                        "--start_file or --binlog_prefix is required"
                    )));
                }
            };
            let out_dir = a
                .output_file
                .as_ref()
                .and_then(|p| p.parent().map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("/var/tmp"));
            save_test(&dirs, &start, &out_dir)?;
            println!(
                "Binlog found at {}, up to {start}",
                dirs.first()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default()
            );
            Ok(())
        }
        "save" => {
            let start_file = a
                .start_file
                .ok_or_else(|| CliError::usage(anyhow!("--start_file is required")))?;
            let output = a
                .output_file
                .ok_or_else(|| CliError::usage(anyhow!("--output_file is required")))?;
            let req = SaveRequest {
                binlog_dirs: dirs,
                start_file,
                start_pos: a.start_pos,
                output,
                verify_crc: !a.no_verify,
            };
            let outcome = tokio::task::spawn_blocking(move || save_tool(&req))
                .await
                .map_err(|e| CliError::from(anyhow!("save task failed: {e}")))??;
            if a.json {
                print_json(&outcome)?;
            }
            match outcome {
                SaveOutcome::Saved(r) => {
                    for t in &r.truncated {
                        eprintln!("warning: {t}");
                    }
                    if !a.json {
                        println!(
                            "Saved {} bytes ({} events) to the output file.",
                            r.bytes_written, r.events_copied
                        );
                    }
                    Ok(())
                }
                SaveOutcome::NoEvents(_) => {
                    Err(CliError::with_code(10, anyhow!("Event not exists.")))
                }
            }
        }
        other => Err(CliError::usage(anyhow!(
            "unknown --command={other} (save|test)"
        ))),
    }
}

fn first_file_with_prefix(dirs: &[PathBuf], prefix: &str) -> Result<String, CliError> {
    for d in dirs {
        if let Ok(files) = crate::binlog::relay::list_numbered(d, prefix)
            && let Some(f) = files
                .first()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
        {
            return Ok(f.to_string());
        }
    }
    Err(CliError::from(anyhow!(
        "no {prefix}.NNNNNN file in {dirs:?}"
    )))
}

/// Connection flags shared by apply and purge (MHA names plus safe password sources).
#[derive(Debug, Args)]
pub struct ConnArgs {
    #[arg(long = "slave_user", alias = "user", default_value = "root")]
    pub user: String,
    /// Discouraged (visible in `ps`); prefer --password-file or RAFTMHA_DB_PASSWORD.
    #[arg(long = "slave_pass", alias = "password")]
    pub password: Option<String>,
    #[arg(long = "password-file", alias = "password_file")]
    pub password_file: Option<PathBuf>,
    #[arg(long = "slave_host", alias = "host")]
    pub host: Option<String>,
    #[arg(long = "slave_ip")]
    pub ip: Option<String>,
    #[arg(long = "slave_port", alias = "port", default_value_t = 3306)]
    pub port: u16,
    #[arg(long)]
    pub socket: Option<PathBuf>,
}

impl ConnArgs {
    fn target(self) -> Result<DbTarget, CliError> {
        let password = resolve_password(self.password, self.password_file.as_ref())?;
        Ok(DbTarget {
            host: self.ip.or(self.host).unwrap_or_else(|| "127.0.0.1".into()),
            port: self.port,
            socket: self.socket,
            user: self.user,
            password,
        })
    }
}

#[derive(Debug, Args)]
pub struct ApplyDiffArgs {
    /// `find`, `generate` (= `generate_and_send` without the scp), `apply` or `test`.
    #[arg(long)]
    pub command: String,
    #[arg(long = "relay_log_info")]
    pub relay_log_info: Option<PathBuf>,
    #[arg(long = "relay_dir")]
    pub relay_dir: Option<PathBuf>,
    #[arg(long = "current_relay_log")]
    pub current_relay_log: Option<String>,
    #[arg(long = "relay_log_index")]
    pub relay_log_index: Option<PathBuf>,
    #[arg(long = "target_mlf")]
    pub target_mlf: Option<String>,
    #[arg(long = "target_rmlp")]
    pub target_rmlp: Option<u64>,
    #[arg(long = "latest_mlf")]
    pub latest_mlf: Option<String>,
    #[arg(long = "latest_rmlp")]
    pub latest_rmlp: Option<u64>,
    #[arg(long = "diff_file_readtolatest")]
    pub diff_file: Option<PathBuf>,
    /// Comma-separated diff files, applied as one stream in this order.
    #[arg(long = "apply_files")]
    pub apply_files: Option<String>,
    #[arg(long, default_value = "/var/tmp")]
    pub workdir: PathBuf,
    #[arg(long = "client_bindir")]
    pub client_bindir: Option<PathBuf>,
    #[arg(long = "no_verify")]
    pub no_verify: bool,
    /// Keep the applied stream and the client log.
    #[arg(long = "keep_files")]
    pub keep_files: bool,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long = "server_id", hide = true)]
    pub server_id: Option<String>,
    #[command(flatten)]
    pub ignored: Ignored,
}

impl ApplyDiffArgs {
    fn relay_source(&self) -> Result<RelaySource, CliError> {
        if let Some(i) = &self.relay_log_index {
            return Ok(RelaySource::Index(i.clone()));
        }
        if let (Some(dir), Some(cur)) = (&self.relay_dir, &self.current_relay_log) {
            return Ok(RelaySource::DirAndCurrent {
                dir: dir.clone(),
                current: cur.clone(),
            });
        }
        if let Some(info) = &self.relay_log_info {
            return Ok(RelaySource::Info(info.clone()));
        }
        Err(CliError::usage(anyhow!(
            "give --relay_log_info, or --relay_dir with --current_relay_log, or --relay_log_index"
        )))
    }

    fn coords(&self) -> Result<(MasterCoord, Option<MasterCoord>), CliError> {
        let target = match (&self.target_mlf, self.target_rmlp) {
            (Some(f), Some(p)) => MasterCoord {
                file: f.clone(),
                pos: p,
            },
            _ => {
                return Err(CliError::usage(anyhow!(
                    "--target_mlf and --target_rmlp are required"
                )));
            }
        };
        let latest = match (&self.latest_mlf, self.latest_rmlp) {
            (Some(f), Some(p)) => Some(MasterCoord {
                file: f.clone(),
                pos: p,
            }),
            _ => None,
        };
        Ok((target, latest))
    }
}

fn describe_method(m: &Method) -> String {
    match m {
        Method::Fast => "fast position search (verified)".into(),
        Method::FullScan {
            fast_rejected: Some(why),
        } => format!("full scan (fast search rejected: {why})"),
        Method::FullScan {
            fast_rejected: None,
        } => "full scan".into(),
    }
}

pub async fn apply_diff(a: ApplyDiffArgs) -> CliResult {
    match a.command.as_str() {
        "test" => {
            let files = a.relay_source()?.files()?;
            let last = files
                .last()
                .ok_or_else(|| CliError::from(anyhow!("no relay logs")))?;
            crate::binlog::Walker::open(last).map_err(anyhow::Error::from)?;
            println!(
                "Relay logs found: {} files, current {}",
                files.len(),
                last.display()
            );
            Ok(())
        }
        "find" => {
            let files = a.relay_source()?.files()?;
            let (target, latest) = a.coords()?;
            let r = tokio::task::spawn_blocking(move || find(&files, &target, latest.as_ref()))
                .await
                .map_err(|e| CliError::from(anyhow!("find task failed: {e}")))??;
            if a.json {
                return print_json(&r);
            }
            match &r.found {
                Found::At { path, offset, .. } => {
                    println!(
                        "Relay log found at {}:{offset} ({})",
                        path.display(),
                        describe_method(&r.method)
                    )
                }
                Found::TargetHasAll => println!("Target has received all relay logs."),
            }
            Ok(())
        }
        "generate" | "generate_and_send" => {
            let files = a.relay_source()?.files()?;
            let (target, latest) = a.coords()?;
            let out = a
                .diff_file
                .clone()
                .ok_or_else(|| CliError::usage(anyhow!("--diff_file_readtolatest is required")))?;
            let verify = !a.no_verify;
            let g = tokio::task::spawn_blocking(move || {
                generate(&files, &target, latest.as_ref(), &out, verify)
            })
            .await
            .map_err(|e| CliError::from(anyhow!("generate task failed: {e}")))??;
            if a.json {
                return print_json(&g);
            }
            match (&g.find.found, &g.report) {
                (Found::At { path, offset, .. }, Some(r)) => {
                    for t in &r.truncated {
                        eprintln!("warning: {t}");
                    }
                    println!(
                        "Generated diff from {}:{offset} ({}): {} bytes, {} events.",
                        path.display(),
                        describe_method(&g.find.method),
                        r.bytes_written,
                        r.events_copied
                    );
                }
                _ => println!("Target has received all relay logs."),
            }
            Ok(())
        }
        "apply" => {
            let files: Vec<PathBuf> = a
                .apply_files
                .as_deref()
                .ok_or_else(|| CliError::usage(anyhow!("--apply_files is required")))?
                .split(',')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect();
            let req = ApplyRequest {
                files,
                target: a.conn.target()?,
                workdir: a.workdir,
                client_bindir: a.client_bindir,
                verify_crc: !a.no_verify,
                keep_files: a.keep_files,
            };
            let r = apply(&req).await?;
            if a.json {
                return print_json(&r);
            }
            for w in r.stream.incomplete.iter().chain(&r.stream.gaps) {
                eprintln!("warning: {w}");
            }
            println!(
                "Applied {} transactions ({} already executed, skipped); gtid_slave_pos {} -> {}",
                r.stream.groups_applied,
                r.stream.groups_skipped,
                r.gtid_slave_pos_before,
                r.gtid_slave_pos_after
            );
            Ok(())
        }
        other => Err(CliError::usage(anyhow!(
            "unknown --command={other} (test|find|generate|apply)"
        ))),
    }
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long, default_value = "/var/tmp")]
    pub workdir: PathBuf,
    #[arg(long = "disable_relay_log_purge")]
    pub disable_relay_log_purge: bool,
    /// Hard-link old relay logs into the workdir first (default on; `--use_hardlink=0` to disable).
    #[arg(long = "use_hardlink", default_value = "1")]
    pub use_hardlink: String,
    #[arg(long = "relay_log_info", hide = true)]
    pub relay_log_info: Option<PathBuf>,
    #[arg(long = "defaults_file", hide = true)]
    pub defaults_file: Option<PathBuf>,
    /// Seconds to wait for the SQL thread to delete the old files.
    #[arg(long, default_value_t = 3)]
    pub wait: u64,
    #[arg(long)]
    pub json: bool,
}

pub async fn purge(a: PurgeArgs) -> CliResult {
    let req = PurgeRequest {
        target: a.conn.target()?,
        workdir: a.workdir,
        disable_relay_log_purge: a.disable_relay_log_purge,
        use_hardlink: a.use_hardlink != "0",
        wait: Duration::from_secs(a.wait),
    };
    let r = purge_tool(&req).await?;
    if a.json {
        return print_json(&r);
    }
    if r.skipped_purge_on {
        println!("relay_log_purge=1 is set; nothing to do (use --disable_relay_log_purge).");
    } else {
        println!(
            "Purged {} relay log files ({} bytes freed via hard links).",
            r.purged.len(),
            r.bytes_freed
        );
    }
    Ok(())
}
