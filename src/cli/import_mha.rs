//! `raftmha import-mha app1.cnf [--global masterha_default.cnf] [-o app1.toml]`: converts an
//! MHA configuration into a cluster file for `raftmha cluster add --file`.
//!
//! Passwords found in the MHA files are written to mode-0600 files next to the output (the
//! cluster file only names them), and stderr says so. Warnings (parameters with no
//! equivalent) go to stderr; the exit code is 2 for a file that cannot be converted.
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::{CliError, CliResult};
use crate::mha::import::{ImportOptions, Source, import};

#[derive(Debug, Args)]
pub struct ImportMhaArgs {
    /// The MHA application config (e.g. /etc/masterha/app1.cnf).
    pub conf: PathBuf,
    /// MHA's global defaults file (only its [server default] is read, as MHA does).
    #[arg(long)]
    pub global: Option<PathBuf>,
    /// Where to write the cluster TOML (stdout when absent; password files then go to the
    /// current directory).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Cluster name (default: the config file's stem, like MHA's app name).
    #[arg(long)]
    pub name: Option<String>,
    /// Set `agent = "<ip>:<port>"` for every server given by IP address.
    #[arg(long)]
    pub agent_port: Option<u16>,
}

pub async fn run(args: ImportMhaArgs) -> CliResult {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .with_context(|| format!("cannot read {}", p.display()))
            .map_err(CliError::usage)
    };
    let app_text = read(&args.conf)?;
    let global_text = args.global.as_deref().map(read).transpose()?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => args
            .conf
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
            .ok_or_else(|| CliError::usage(anyhow::anyhow!("cannot derive a name: pass --name")))?,
    };
    let out_dir = match args.output.as_deref().and_then(Path::parent) {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let secrets_dir = std::fs::canonicalize(&out_dir)
        .with_context(|| format!("output directory {}", out_dir.display()))
        .map_err(CliError::usage)?;
    let app_file = args.conf.display().to_string();
    let global_file = args.global.as_ref().map(|g| g.display().to_string());
    let imported = import(
        Source {
            file: &app_file,
            text: &app_text,
        },
        match (&global_file, &global_text) {
            (Some(file), Some(text)) => Some(Source { file, text }),
            _ => None,
        },
        &ImportOptions {
            name,
            secrets_dir,
            agent_port: args.agent_port,
        },
    )
    .map_err(CliError::usage)?;

    for w in &imported.warnings {
        eprintln!("warning: {w}");
    }
    for (path, secret) in [
        (imported.admin_password_path(), &imported.admin_password),
        (imported.repl_password_path(), &imported.repl_password),
    ] {
        if let Some(path) = path {
            write_secret(Path::new(path), secret)?;
            eprintln!("wrote a password to {path} (mode 0600); the cluster file only names it");
        }
    }
    let mut text = format!(
        "# Converted by `raftmha import-mha` from {app_file}{}.\n# Register with: raftmha cluster add --file <this file>\n",
        global_file
            .as_deref()
            .map(|g| format!(" and {g}"))
            .unwrap_or_default()
    );
    text.push_str(&toml::to_string(&imported.spec).context("encoding the cluster file")?);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    match &args.output {
        Some(path) => {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// Creates (or replaces) `path` with mode 0600 before any byte of the secret is written.
fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    // An existing file keeps its old mode on open: tighten it explicitly.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot chmod {}", path.display()))?;
    file.write_all(secret.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
