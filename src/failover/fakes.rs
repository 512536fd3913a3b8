//! In-memory fakes of the journal and of a failover's effects, for unit tests of the runner
//! and the engine's resume logic (the integration tests with real MariaDB stay the outer
//! proof of each effect).
//!
//! [`MemJournal`] is one manager's view of a shared in-memory Raft log: requests are applied
//! by the real state machine, stamped with the current leader as the appending leader, so the
//! ownership rules act exactly as in production. Tests move the leadership (a newer term, on
//! another manager) at chosen points with [`Shared::depose_when`].
use std::sync::{Arc, Mutex};

use anyhow::bail;

use super::effects::{Effects, StepContext, StepOutput};
use super::input::{FailoverInput, FailoverPolicy};
use super::operation::ManualCheck;
use super::plan::Action;
use super::runner::{Deposed, Journal, Runner};
use crate::db::BinlogCoord;
use crate::state::{
    ClusterRecord, CommandResult, FailoverRecord, LogLeader, ManagerState, Request, RunOwner,
};

/// A three-server cluster spec (db1..db3 on 10.0.0.1..3) for operation tests.
pub const SERVERS: &str = r#"
[[server]]
name = "db1"
host = "10.0.0.1"
[[server]]
name = "db2"
host = "10.0.0.2"
[[server]]
name = "db3"
host = "10.0.0.3"
"#;

/// The first owner of a run in tests, and its successor in a newer term.
pub const A: RunOwner = RunOwner {
    manager: 1,
    term: 2,
};
pub const B: RunOwner = RunOwner {
    manager: 2,
    term: 3,
};

type Trigger = Box<dyn FnMut(&Request) -> bool + Send>;

/// The log every fake manager shares, and who leads it.
pub struct Shared {
    state: Mutex<ManagerState>,
    leader: Mutex<Option<RunOwner>>,
    /// Checked after each applied request: when it returns true, `successor` takes over.
    trigger: Mutex<Option<(Trigger, Option<RunOwner>)>>,
    /// Every request applied, in order (the log as a test may store it).
    log: Mutex<Vec<Request>>,
}

impl Shared {
    pub fn new(state: ManagerState, leader: RunOwner) -> Arc<Self> {
        Arc::new(Shared {
            state: Mutex::new(state),
            leader: Mutex::new(Some(leader)),
            trigger: Mutex::new(None),
            log: Mutex::new(Vec::new()),
        })
    }

    pub fn leader(&self) -> Option<RunOwner> {
        *self.leader.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new leader (or none) from now on.
    pub fn elect(&self, leader: Option<RunOwner>) {
        *self.leader.lock().unwrap_or_else(|p| p.into_inner()) = leader;
    }

    /// Once a request for which `when` returns true is applied, `successor` leads.
    pub fn depose_when(
        &self,
        when: impl FnMut(&Request) -> bool + Send + 'static,
        successor: Option<RunOwner>,
    ) {
        *self.trigger.lock().unwrap_or_else(|p| p.into_inner()) = Some((Box::new(when), successor));
    }

    pub fn state(&self) -> ManagerState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every request applied so far.
    pub fn log(&self) -> Vec<Request> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn apply(&self, req: &Request) -> CommandResult {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(req.clone());
        let log = self.leader().map(|l| LogLeader {
            term: l.term,
            node: l.manager,
        });
        let result = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apply_logged(req, log);
        let mut trigger = self.trigger.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((when, successor)) = trigger.as_mut()
            && when(req)
        {
            let successor = *successor;
            *trigger = None;
            self.elect(successor);
        }
        result
    }
}

/// Manager `id`'s view of the shared log.
pub struct MemJournal {
    pub shared: Arc<Shared>,
    pub id: u64,
}

impl MemJournal {
    pub fn new(shared: &Arc<Shared>, id: u64) -> Self {
        MemJournal {
            shared: shared.clone(),
            id,
        }
    }
}

/// Progress lines nobody reads.
pub fn quiet() -> super::runner::Progress {
    Arc::new(|_: &str| {})
}

impl Journal for MemJournal {
    async fn propose(&self, req: Request) -> anyhow::Result<CommandResult> {
        let leads = self.shared.leader().is_some_and(|l| l.manager == self.id);
        if req.term.is_some() && !leads {
            bail!("manager {} is not the leader: not proposed", self.id);
        }
        Ok(self.shared.apply(&req))
    }

    async fn cluster(&self, name: &str) -> anyhow::Result<Option<ClusterRecord>> {
        Ok(self.local_cluster(name))
    }

    fn local_cluster(&self, name: &str) -> Option<ClusterRecord> {
        self.shared.state().clusters.get(name).cloned()
    }

    fn leadership(&self) -> Option<RunOwner> {
        self.shared.leader().filter(|l| l.manager == self.id)
    }

    async fn confirm(&self, owner: RunOwner) -> Result<(), Deposed> {
        match self.shared.leader() {
            Some(l) if l == owner => Ok(()),
            other => Err(Deposed(format!("{owner} deposed; leader now {other:?}"))),
        }
    }

    fn now_ms(&self) -> u64 {
        1_000
    }
}

/// One effect performed, by the run owner of which term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub term: u64,
    pub action: String,
}

/// A failover's effects without servers: observation returns a fixed input, every action
/// succeeds and is recorded (the promotion is journaled as the real one is).
pub struct FakeEffects {
    pub input: FailoverInput,
    pub done: Arc<Mutex<Vec<Done>>>,
    /// Called after each recorded effect (tests depose the leader from here).
    pub after_effect: Box<dyn Fn(&str) + Send + Sync>,
    /// What a manual failover's preflight answers (empty: it may start).
    pub manual_refusals: Vec<String>,
}

impl FakeEffects {
    pub fn new(input: FailoverInput, done: Arc<Mutex<Vec<Done>>>) -> Self {
        FakeEffects {
            input,
            done,
            after_effect: Box::new(|_| {}),
            manual_refusals: Vec::new(),
        }
    }

    fn record(&self, term: u64, action: String) {
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Done {
                term,
                action: action.clone(),
            });
        (self.after_effect)(&action);
    }
}

impl ManualCheck for FakeEffects {
    async fn manual_preflight(
        &self,
        _c: &ClusterRecord,
        _dead: &str,
        _new_master: Option<&str>,
        _force: bool,
    ) -> Vec<String> {
        self.manual_refusals.clone()
    }
}

impl Effects for FakeEffects {
    async fn observe(
        &self,
        _cluster: &ClusterRecord,
        _failover: &FailoverRecord,
        policy: &FailoverPolicy,
    ) -> anyhow::Result<FailoverInput> {
        Ok(FailoverInput {
            policy: policy.clone(),
            ..self.input.clone()
        })
    }

    async fn execute<J: Journal>(
        &self,
        run: &Runner<'_, J>,
        ctx: &StepContext<'_>,
        action: &Action,
    ) -> anyhow::Result<Option<StepOutput>> {
        let output = match action {
            Action::CompleteFailover { new_master } => {
                super::exec::record_promotion(run, ctx, new_master).await?;
                None
            }
            Action::CaptureNewMasterPosition { .. } => Some(StepOutput::Position(
                BinlogCoord::new("mysql-bin.000001", 4),
            )),
            _ => None,
        };
        self.record(run.owner.term, action.to_string());
        Ok(output)
    }

    async fn apply_diff_and_tail(
        &self,
        ctx: &StepContext<'_>,
        donor: &str,
        target: &str,
    ) -> anyhow::Result<Option<StepOutput>> {
        let what = format!("{target}: apply relay-log diff from {donor} and the saved tail");
        self.record(ctx.token.term, what);
        Ok(Some(StepOutput::Note(format!("{donor}->{target} applied"))))
    }
}
