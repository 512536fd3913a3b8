//! Who may write a run's journal (failovers and operator operations alike).
//!
//! A run has one owner: the manager that journaled its start ([`Command::FailoverStarted`])
//! or its takeover ([`Command::RunResumed`]), in the Raft term it led then. The state machine
//! accepts the run's later entries (steps, chunks, the promotion, the finish) only from that
//! owner, and only when they were appended to the log under the owner's own term: a manager
//! that was paused or cut off and resumes still proposes, but its proposals reach the new
//! leader and are appended under the new term, so they are refused, whoever owns the run by
//! then. Only requests of [`OWNERSHIP_VERSION`] or later follow these rules; older log
//! entries replay as they were applied.
//!
//! [`Command::FailoverStarted`]: super::Command::FailoverStarted
//! [`Command::RunResumed`]: super::Command::RunResumed
//! [`OWNERSHIP_VERSION`]: super::OWNERSHIP_VERSION
use super::command::{CommandResult, LogLeader, Request, acting_owner};
use super::model::{FailoverRecord, ManagerState, rejected};

impl ManagerState {
    /// Run `id` of `cluster`, unfinished, if `req` may write its journal.
    pub(super) fn owned_run(
        &mut self,
        req: &Request,
        log: Option<LogLeader>,
        cluster: &str,
        id: u64,
    ) -> Result<&mut FailoverRecord, String> {
        let enforce = req.enforces_ownership();
        let acting = if enforce {
            Some(acting_owner(req, log)?)
        } else {
            None
        };
        let f = self.running_failover(cluster, id)?;
        let Some(acting) = acting else {
            return Ok(f);
        };
        match f.owner {
            Some(owner) if owner == acting => Ok(f),
            Some(owner) => Err(format!(
                "{acting} does not own {} {id}: {owner} does",
                f.kind()
            )),
            None => Err(format!(
                "{} {id} has no owner yet: the leader must resume it first",
                f.kind()
            )),
        }
    }

    /// [`super::Command::RunResumed`]: the proposing leader takes run `id` over.
    pub(super) fn run_resumed(
        &mut self,
        req: &Request,
        log: Option<LogLeader>,
        cluster: &str,
        id: u64,
    ) -> CommandResult {
        let acting = match acting_owner(req, log) {
            Ok(o) => o,
            Err(reason) => return rejected(reason),
        };
        let f = match self.running_failover(cluster, id) {
            Ok(f) => f,
            Err(reason) => return rejected(reason),
        };
        match f.owner {
            Some(owner) if owner == acting => {
                return CommandResult::Ok {
                    id: Some(id),
                    message: format!("{acting} already owns {id}"),
                };
            }
            Some(owner) if owner.term >= acting.term => {
                return rejected(format!(
                    "{acting} cannot take {} {id} over from {owner}: not a newer term",
                    f.kind()
                ));
            }
            _ => {}
        }
        let previous = f.owner.replace(acting);
        let kind = f.kind();
        let event = match previous {
            Some(p) => format!("{kind} {id} resumed by {acting}, taking over from {p}"),
            None => format!("{kind} {id} taken on by {acting}"),
        };
        self.audit(req.at_ms, req.by, Some(cluster), event);
        CommandResult::Ok {
            id: Some(id),
            message: format!("{acting} owns {id}"),
        }
    }
}

#[cfg(test)]
#[path = "ownership_tests.rs"]
mod tests;
