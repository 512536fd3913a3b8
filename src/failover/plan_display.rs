//! How phases and actions read in logs, the journal and reports (MHA's wording).
use super::{Action, Phase, RepointBy};

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Fence => "Phase 2: Dead Master Shutdown",
            Phase::MasterRecovery => "Phase 3: Master Recovery",
            Phase::ReplicaRecovery => "Phase 4: Slaves Recovery",
            Phase::Cleanup => "Phase 5: New master cleanup",
        })
    }
}

impl std::fmt::Display for Action {
    /// One line for the live progress output and logs (never holds a secret).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::FenceOldMaster { master } => {
                write!(f, "fence {master}: read_only, kill client sessions")
            }
            Action::MasterIpFailoverStop {
                master,
                host_reachable,
            } => {
                let cmd = if *host_reachable { "stopssh" } else { "stop" };
                write!(f, "master_ip_failover_script --command={cmd} for {master}")
            }
            Action::ShutdownScript {
                master,
                host_reachable,
            } => {
                let cmd = if *host_reachable { "stopssh" } else { "stop" };
                write!(f, "shutdown_script --command={cmd} for {master}")
            }
            Action::StopIoThread { replica } => write!(f, "{replica}: stop IO thread"),
            Action::SaveMasterTail { master, from } => {
                write!(f, "save {master}'s binlog from {from}")
            }
            Action::WaitRelayLogApplied { server, read } => {
                write!(f, "{server}: apply relay logs up to {read}")
            }
            Action::GenerateRelayDiff {
                donor,
                target,
                from,
                to,
            } => {
                write!(f, "{donor}: relay-log diff {from} → {to} for {target}")
            }
            Action::ApplyRelayDiff { donor, target } => {
                write!(f, "{target}: apply relay-log diff from {donor}")
            }
            Action::GtidCatchUp {
                target,
                donor,
                until,
            } => write!(f, "{target}: catch up from {donor} to {until}"),
            Action::ApplyMasterTail { target } => {
                write!(f, "{target}: apply the dead master's saved binlog")
            }
            Action::CaptureNewMasterPosition { new_master } => {
                write!(f, "{new_master}: read binlog position")
            }
            Action::EnableWrites { new_master } => write!(f, "{new_master}: read_only=OFF"),
            Action::MasterIpFailoverStart { new_master } => {
                write!(
                    f,
                    "master_ip_failover_script --command=start for {new_master}"
                )
            }
            Action::Repoint {
                replica,
                new_master,
                by,
            } => {
                let how = match by {
                    RepointBy::CapturedPosition => "at the captured position",
                    RepointBy::Gtid => "by GTID",
                };
                write!(f, "{replica}: replicate from {new_master} {how}")
            }
            Action::ResetReplicaOnNewMaster { new_master } => {
                write!(f, "{new_master}: RESET SLAVE ALL")
            }
            Action::CompleteFailover { new_master } => {
                write!(f, "record {new_master} as master, bump the epoch")
            }
            Action::ReportScript => f.write_str("report_script"),
        }
    }
}
