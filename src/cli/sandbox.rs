//! `raftmha sandbox up|down|status`.
use clap::Subcommand;

use super::CliResult;

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Placeholder until the sandbox lands.
    Status,
}

pub async fn run(_cmd: SandboxCommand) -> CliResult {
    Ok(())
}
