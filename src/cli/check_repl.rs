//! `raftmha check-repl --cluster C | --file app1.toml [--json]`: MHA's `masterha_check_repl`
//! and more. Connects to every server, prints one line per check (OK / WARN / FAIL) and MHA's
//! verdict line. Exit 0 when nothing FAILs, 1 otherwise, 2 for bad arguments.
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{CliError, CliResult};
use crate::api::client::{ManagersArgs, first_answer};
use crate::check::collect::{observe_cluster, resolve_password};
use crate::check::{Finding, Level, Observed, check_all, verdict};
use crate::state::cluster_file::ClusterSpec;

/// Which cluster to check: a registered one (read from the managers) or a file.
#[derive(Debug, Args)]
pub struct ClusterSource {
    /// A registered cluster (its definition is read from the managers).
    #[arg(long, conflicts_with = "file", required_unless_present = "file")]
    pub cluster: Option<String>,
    /// A cluster file, checked before registering it (no managers needed).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Needed only with --cluster (RAFTMHA_MANAGERS / RAFTMHA_TOKEN_FILE).
    #[arg(long, env = "RAFTMHA_MANAGERS", value_delimiter = ',')]
    pub managers: Vec<String>,
    #[arg(long, env = "RAFTMHA_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

impl ClusterSource {
    /// The cluster's spec and, when registered, the master the managers recorded.
    pub async fn load(&self) -> Result<(ClusterSpec, Option<String>), CliError> {
        match (&self.file, &self.cluster) {
            (Some(file), _) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))
                    .map_err(CliError::usage)?;
                let spec = ClusterSpec::parse(&text)
                    .map_err(|e| CliError::usage(anyhow::anyhow!("{}: {e}", file.display())))?;
                Ok((spec, None))
            }
            (None, Some(name)) => {
                let Some(token_file) = self.token_file.clone() else {
                    return Err(CliError::usage(anyhow::anyhow!(
                        "--cluster needs --token-file or RAFTMHA_TOKEN_FILE"
                    )));
                };
                let managers = ManagersArgs {
                    managers: self.managers.clone(),
                    token_file,
                    timeout_ms: 5000,
                    // TLS to the managers is configured through the environment here.
                    tls_ca: std::env::var_os("RAFTMHA_TLS_CA").map(Into::into),
                    tls_cert: std::env::var_os("RAFTMHA_TLS_CERT").map(Into::into),
                    tls_key: std::env::var_os("RAFTMHA_TLS_KEY").map(Into::into),
                };
                let clients = managers.clients().map_err(CliError::usage)?;
                let (state, _) =
                    first_answer(&clients, |c| async move { c.read_state().await }).await?;
                let Some(record) = state.clusters.get(name) else {
                    return Err(anyhow::anyhow!("no cluster named {name:?} is registered").into());
                };
                Ok((record.spec.clone(), record.master.clone()))
            }
            (None, None) => Err(CliError::usage(anyhow::anyhow!("give --cluster or --file"))),
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckReplArgs {
    #[command(flatten)]
    pub source: ClusterSource,
    #[arg(long)]
    pub json: bool,
}

/// The master: the managers' record, else the one reachable server replicating from nobody.
fn find_master(observed: &[Observed], recorded: Option<String>) -> Option<String> {
    recorded.or_else(|| {
        let roots: Vec<&Observed> = observed
            .iter()
            .filter(|o| o.error.is_none() && o.replica.is_none())
            .collect();
        (roots.len() == 1).then(|| roots[0].name.clone())
    })
}

pub async fn run(args: CheckReplArgs) -> CliResult {
    let (spec, recorded_master) = args.source.load().await?;
    let u = &spec.users;
    let password = resolve_password(
        u.admin_password_file.as_deref(),
        u.admin_password_env.as_deref(),
    )
    .map_err(|e| CliError::usage(anyhow::anyhow!("admin password: {e}")))?;
    let observed = observe_cluster(&spec, &password).await;
    let master = find_master(&observed, recorded_master);
    let mut findings = check_all(&observed, master.as_deref());
    findings.extend(crate::check::profile::check_profile(
        &observed,
        master.as_deref(),
        &spec.settings,
    ));
    report(&spec.name, master.as_deref(), &findings, args.json)
}

/// Prints the findings (table or JSON) and MHA's verdict line; exit 1 when anything FAILs.
pub fn report(cluster: &str, master: Option<&str>, findings: &[Finding], json: bool) -> CliResult {
    let (line, code) = verdict(findings);
    if json {
        let out = serde_json::json!({
            "cluster": cluster,
            "master": master,
            "findings": findings,
            "healthy": code == 0,
            "verdict": line,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).context("encoding")?
        );
    } else {
        print!("{}", render(findings));
        println!("\n{line}");
    }
    if code == 0 {
        Ok(())
    } else {
        Err(CliError {
            code,
            error: anyhow::anyhow!("{line}"),
        })
    }
}

fn render(findings: &[Finding]) -> String {
    let mut out = format!("{:<22} {:<10} {:<5} DETAIL\n", "CHECK", "SERVER", "LEVEL");
    for f in findings {
        let level = match f.level {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        out.push_str(&format!(
            "{:<22} {:<10} {:<5} {}\n",
            f.check,
            f.server.as_deref().unwrap_or("*"),
            level,
            f.detail
        ));
    }
    out
}
