//! Command line: `raftmha-node <subcommand>`, or MHA's tool names through argv[0]
//! (`save_binary_logs`, `apply_diff_relay_logs`, `purge_relay_logs` as symlinks), accepting
//! MHA's `--flag=value` options and exit codes so existing runbooks keep working.
//!
//! Exit codes: 0 success; 1 failure; 2 bad arguments; `save_binary_logs` 10 = no events.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod mha;
pub mod ops;

#[derive(Debug, Parser)]
#[command(name = "raftmha-node", version, about = "raftmha node tools and agent")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// MHA save_binary_logs: a binlog tail from file:pos into one file.
    #[command(name = "save-binary-logs")]
    SaveBinaryLogs(mha::SaveArgs),
    /// MHA apply_diff_relay_logs: find / generate / apply relay-log diffs.
    #[command(name = "apply-diff-relay-logs")]
    ApplyDiffRelayLogs(mha::ApplyDiffArgs),
    /// MHA purge_relay_logs: safe relay-log purge (cron).
    #[command(name = "purge-relay-logs")]
    PurgeRelayLogs(mha::PurgeArgs),
    /// Print one line (or JSON object) per event of binlog / relay-log files.
    Dump(ops::DumpArgs),
    /// Run the node agent (gRPC).
    Serve(ops::ServeArgs),
    /// Measure scan, search, diff generation and save on real files.
    Bench(ops::BenchArgs),
}

/// An error with its exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub error: anyhow::Error,
}

impl CliError {
    pub fn usage(e: impl Into<anyhow::Error>) -> Self {
        CliError {
            code: 2,
            error: e.into(),
        }
    }
    pub fn with_code(code: u8, e: impl Into<anyhow::Error>) -> Self {
        CliError {
            code,
            error: e.into(),
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        CliError { code: 1, error }
    }
}

impl From<crate::tools::ToolError> for CliError {
    fn from(e: crate::tools::ToolError) -> Self {
        CliError {
            code: 1,
            error: e.into(),
        }
    }
}

pub type CliResult = Result<(), CliError>;

/// Maps MHA's tool names (argv[0]) to our subcommands.
pub fn rewrite_args(args: Vec<OsString>) -> Vec<OsString> {
    let Some(argv0) = args.first() else {
        return args;
    };
    let name = Path::new(argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let sub = match name {
        "save_binary_logs" => "save-binary-logs",
        "apply_diff_relay_logs" => "apply-diff-relay-logs",
        "purge_relay_logs" => "purge-relay-logs",
        _ => return args,
    };
    let mut out = vec![OsString::from("raftmha-node"), OsString::from(sub)];
    out.extend(args.into_iter().skip(1));
    out
}

pub fn main_with_args(args: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(rewrite_args(args)) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAFTMHA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::SaveBinaryLogs(a) => mha::save(a).await,
            Command::ApplyDiffRelayLogs(a) => mha::apply_diff(a).await,
            Command::PurgeRelayLogs(a) => mha::purge(a).await,
            Command::Dump(a) => ops::dump(a),
            Command::Serve(a) => ops::serve(a).await,
            Command::Bench(a) => ops::bench(a),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError { code, error }) => {
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}

/// The database password: `--password-file`, else `$RAFTMHA_DB_PASSWORD`, else `$MYSQL_PWD`,
/// else a password given on the command line (MHA compatibility; visible in `ps`, so warned).
pub fn resolve_password(
    cli_value: Option<String>,
    file: Option<&PathBuf>,
) -> Result<String, CliError> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| CliError::usage(anyhow::anyhow!("password file {}: {e}", f.display())))?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_string());
    }
    for var in ["RAFTMHA_DB_PASSWORD", "MYSQL_PWD"] {
        if let Ok(v) = std::env::var(var) {
            return Ok(v);
        }
    }
    if let Some(v) = cli_value {
        eprintln!(
            "warning: a password on the command line is visible to other users; use --password-file or RAFTMHA_DB_PASSWORD"
        );
        return Ok(v);
    }
    Ok(String::new())
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> CliResult {
    let s =
        serde_json::to_string_pretty(value).map_err(|e| CliError::from(anyhow::Error::from(e)))?;
    println!("{s}");
    Ok(())
}
