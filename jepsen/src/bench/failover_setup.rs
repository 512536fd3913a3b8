//! Setting up a failover bench run: its databases and the cluster file's settings.
use std::net::Ipv4Addr;

use anyhow::{Context, Result};
use raftmha::chaos::NetFaults;
use raftmha::sandbox::{Sandbox, SandboxGuard, SandboxSpec};

use super::failover::FailoverArgs;

pub fn settings_toml(args: &FailoverArgs) -> String {
    let mut s = args
        .ping_interval_ms
        .map(|ms| format!("ping_interval_ms = {ms}\n"))
        .unwrap_or_default();
    if let Some(ms) = args.lease_ttl_ms {
        s.push_str(&format!("lease_ttl_ms = {ms}\n"));
    }
    s
}

/// The sandbox of a failover bench run: its databases, started as `args` says.
pub async fn start_databases(
    args: &FailoverArgs,
    dir: &std::path::Path,
    base_ip: Ipv4Addr,
    faults: &NetFaults,
) -> Result<SandboxGuard> {
    let mut spec = SandboxSpec::new(dir.join("db"), 3, base_ip);
    spec.gtid = !args.lagging;
    spec.semi_sync = !args.lagging;
    spec.cgroup_parent = Some(faults.cgroup_dir().to_path_buf());
    spec.extra_cnf = args.db_options.clone();
    Ok(SandboxGuard(
        Sandbox::up(spec).await.context("starting the databases")?,
    ))
}
