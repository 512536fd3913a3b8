//! MHA's hook scripts (`master_ip_failover_script`, `shutdown_script`, `report_script`,
//! `master_ip_online_change_script`), run one way: with their arguments (host names and user
//! names, never a password: a command line is visible to every local user), bounded in time,
//! killed if the run is dropped.
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::time::timeout;

/// How a hook ended, when MHA counts it as success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookExit {
    /// Exit 0.
    Done,
    /// Exit 10: MHA's "failed, but proceed" (`shutdown_script`: mysqld killed, host kept up).
    Proceed,
}

/// Runs `path` with `args`; any exit but 0 and 10 is an error.
pub async fn run_hook(path: &str, args: &[String], limit: Duration) -> anyhow::Result<HookExit> {
    let child = tokio::process::Command::new(path)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = timeout(limit, child)
        .await
        .with_context(|| format!("{path} did not finish within {limit:?}"))?
        .with_context(|| format!("running {path}"))?;
    match out.status.code() {
        Some(0) => Ok(HookExit::Done),
        Some(10) => Ok(HookExit::Proceed),
        other => bail!("{path} failed with {other:?}"),
    }
}
