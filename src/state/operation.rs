//! Applying operator operations (switchover, manual failover, rejoin): who may start one,
//! and when a promotion inside one is still allowed. Deterministic like the rest of apply.
use super::command::{CommandResult, Operation, ROLLBACK_STEP};
use super::model::{ManagerState, rejected};

impl ManagerState {
    pub(super) fn operation_started(
        &mut self,
        at: u64,
        by: Option<u64>,
        cluster: &str,
        server: &str,
        epoch: u64,
        operation: &Operation,
    ) -> CommandResult {
        let Some(c) = self.clusters.get_mut(cluster) else {
            return rejected(format!("no cluster named {cluster:?}"));
        };
        if epoch != c.epoch {
            return rejected(format!(
                "stale epoch {epoch}: cluster {cluster} is at epoch {} (the master changed; retry)",
                c.epoch
            ));
        }
        if let Some(f) = c.failovers.iter().find(|f| f.finished.is_none()) {
            return rejected(format!(
                "{} {} of {cluster} is still running",
                f.kind(),
                f.id
            ));
        }
        let spec_of = |name: &str| c.spec.servers.iter().find(|s| s.name == name);
        if spec_of(server).is_none() {
            return rejected(format!("cluster {cluster} has no server {server:?}"));
        }
        let is_master = c.master.as_deref() == Some(server);
        let master = c.master.as_deref().unwrap_or("(unknown)");
        let target = match operation {
            Operation::Switchover { new_master, .. } => Some(new_master),
            Operation::ManualFailover { new_master, .. } => new_master.as_ref(),
            Operation::Rejoin { .. } => None,
        };
        match operation {
            Operation::Rejoin { .. } if is_master => {
                return rejected(format!("{server} is the current master of {cluster}"));
            }
            Operation::Rejoin { .. } if c.master.is_none() => {
                return rejected(format!("cluster {cluster} has no known master to rejoin"));
            }
            Operation::Switchover { .. } | Operation::ManualFailover { .. } if !is_master => {
                return rejected(format!(
                    "{server} is not the current master of {cluster} (the master is {master})"
                ));
            }
            _ => {}
        }
        if let Some(target) = target {
            let Some(t) = spec_of(target) else {
                return rejected(format!("cluster {cluster} has no server {target:?}"));
            };
            if target == server {
                return rejected(format!("{target} is already the master"));
            }
            if t.no_master {
                return rejected(format!("{target} is no_master: it is never promoted"));
            }
        }
        self.next_failover_id += 1;
        let id = self.next_failover_id;
        let Some(c) = self.clusters.get_mut(cluster) else {
            return rejected(format!("no cluster named {cluster:?}"));
        };
        c.open_record(id, server, epoch, (at, by), Some(operation.clone()), None);
        let what = match operation {
            Operation::Switchover { new_master, .. } => {
                format!("switchover {id} requested: {server} → {new_master}")
            }
            Operation::ManualFailover { new_master, .. } => format!(
                "manual failover {id} requested: master {server} declared dead{}",
                new_master
                    .as_ref()
                    .map(|n| format!(", new master {n}"))
                    .unwrap_or_default()
            ),
            Operation::Rejoin { .. } => format!("rejoin {id} of {server} requested"),
        };
        self.audit(at, by, Some(cluster), what);
        CommandResult::Ok {
            id: Some(id),
            message: format!("{} {id} started", operation.kind()),
        }
    }

    /// A promotion inside operation `id` is allowed while it runs and has not begun to roll
    /// back.
    pub(super) fn operation_may_promote(&mut self, cluster: &str, id: u64) -> Result<(), String> {
        let f = self.running_failover(cluster, id)?;
        if f.operation.is_none() {
            return Err(format!("{id} is an automatic failover, not an operation"));
        }
        if f.steps.iter().any(|s| s.step == ROLLBACK_STEP) {
            return Err(format!("{} {id} is rolling back", f.kind()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::command::{
        Command, FailoverOutcome, Request, RunOwner, StepPhase, SwitchLimits,
    };
    use super::*;

    const SERVERS: &str = r#"
[[server]]
name = "db1"
host = "127.0.0.1"
[[server]]
name = "db2"
host = "127.0.0.2"
[[server]]
name = "db3"
host = "127.0.0.3"
no_master = true
"#;

    fn state() -> ManagerState {
        let mut s = ManagerState::default();
        let spec = super::super::cluster_file::test_spec(SERVERS);
        s.apply(&req(Command::RegisterCluster {
            spec: Box::new(spec),
        }));
        s.apply(&req(Command::SetInitialMaster {
            cluster: "app1".into(),
            server: "db1".into(),
        }));
        s
    }

    fn req(command: Command) -> Request {
        Request::as_owner(command, OWNER, 1000)
    }

    const OWNER: RunOwner = RunOwner {
        manager: 1,
        term: 1,
    };

    /// Starts an operation the way the CLI does, then takes it on as the leader does.
    fn owned(s: &mut ManagerState, command: Command) -> u64 {
        let id = started_id(s.apply(&Request::new(command, Some(2), 1000)));
        let resumed = Command::RunResumed {
            cluster: "app1".into(),
            failover_id: id,
        };
        started_id(s.apply(&req(resumed)));
        id
    }

    fn switch(to: &str) -> Command {
        Command::OperationStarted {
            cluster: "app1".into(),
            server: "db1".into(),
            epoch: 0,
            operation: Operation::Switchover {
                new_master: to.into(),
                orig_master_is_new_slave: true,
                limits: SwitchLimits::default(),
            },
        }
    }

    fn started_id(r: CommandResult) -> u64 {
        match r {
            CommandResult::Ok { id: Some(id), .. } => id,
            other => panic!("not started: {other:?}"),
        }
    }

    #[test]
    fn a_switchover_needs_the_current_master_and_a_promotable_target() {
        let mut s = state();
        for bad in ["db1", "db3", "nope"] {
            assert!(
                matches!(s.apply(&req(switch(bad))), CommandResult::Rejected { .. }),
                "{bad}"
            );
        }
        let mut from_replica = switch("db1");
        if let Command::OperationStarted { server, .. } = &mut from_replica {
            *server = "db2".into();
        }
        assert!(matches!(
            s.apply(&req(from_replica)),
            CommandResult::Rejected { .. }
        ));
        started_id(s.apply(&req(switch("db2"))));
        assert!(
            matches!(s.apply(&req(switch("db2"))), CommandResult::Rejected { .. }),
            "one operation at a time"
        );
    }

    #[test]
    fn a_promotion_after_the_rollback_began_is_refused() {
        let mut s = state();
        let id = owned(&mut s, switch("db2"));
        s.apply(&req(Command::FailoverStep {
            cluster: "app1".into(),
            failover_id: id,
            step: ROLLBACK_STEP.into(),
            phase: StepPhase::Intent,
            detail: String::new(),
        }));
        let promote = Command::OperationPromote {
            cluster: "app1".into(),
            failover_id: id,
            server: "db2".into(),
            expected_epoch: 0,
        };
        assert!(matches!(
            s.apply(&req(promote)),
            CommandResult::Rejected { .. }
        ));
        assert_eq!(s.clusters["app1"].master.as_deref(), Some("db1"));
    }

    #[test]
    fn a_finished_switchover_promoted_once_and_arms_no_anti_flapping_guard() {
        let mut s = state();
        let id = owned(&mut s, switch("db2"));
        let promote = Command::OperationPromote {
            cluster: "app1".into(),
            failover_id: id,
            server: "db2".into(),
            expected_epoch: 0,
        };
        assert!(matches!(
            s.apply(&req(promote.clone())),
            CommandResult::Ok { id: Some(1), .. }
        ));
        assert!(matches!(
            s.apply(&req(promote)),
            CommandResult::Rejected { .. }
        ));
        s.apply(&req(Command::FailoverFinished {
            cluster: "app1".into(),
            failover_id: id,
            outcome: FailoverOutcome::Succeeded,
            detail: String::new(),
        }));
        let c = &s.clusters["app1"];
        assert_eq!(c.master.as_deref(), Some("db2"));
        assert!(c.last_failover.is_none());
        assert_eq!(c.failovers[0].kind(), "switchover");
    }

    #[test]
    fn a_rejoin_is_for_a_server_that_is_not_the_master() {
        let mut s = state();
        let rejoin = |server: &str| Command::OperationStarted {
            cluster: "app1".into(),
            server: server.into(),
            epoch: 0,
            operation: Operation::Rejoin { force: false },
        };
        assert!(matches!(
            s.apply(&req(rejoin("db1"))),
            CommandResult::Rejected { .. }
        ));
        started_id(s.apply(&req(rejoin("db2"))));
    }
}
