//! The runner's ownership and resume rules over the in-memory fakes: a failover (automatic,
//! or manual: an operator's `--master_state=dead`) whose owner loses its leadership before,
//! during or after any step does nothing more and journals nothing more; the new leader
//! resumes it to the same end, re-running only the step that was in flight.
use std::sync::{Arc, Mutex};

use super::*;
use crate::failover::engine::run_failover;
use crate::failover::fakes::{A, B, Done, FakeEffects, MemJournal, Shared, quiet};
use crate::failover::operation::run_manual_failover;
use crate::failover::plan::tests::seed_004;
use crate::state::cluster_file::test_spec;
use crate::state::{FailoverOutcome, ManagerState, Operation};

const SERVERS: &str = r#"
[[server]]
name = "mha01"
host = "192.168.0.101"
[[server]]
name = "mha02"
host = "192.168.0.102"
candidate_master = true
[[server]]
name = "mha03"
host = "192.168.0.103"
"#;

fn registered() -> ManagerState {
    let mut s = ManagerState::default();
    let plain = |c| Request::new(c, Some(1), 1);
    let spec = test_spec(SERVERS);
    s.apply(&plain(Command::RegisterCluster {
        spec: Box::new(spec),
    }));
    s.apply(&plain(Command::SetInitialMaster {
        cluster: "app1".into(),
        server: "mha01".into(),
    }));
    s
}

/// Which kind of failover a test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Automatic,
    Manual,
}

struct World {
    shared: Arc<Shared>,
    done: Arc<Mutex<Vec<Done>>>,
    kind: Kind,
}

impl World {
    fn new() -> Self {
        Self::of(Kind::Automatic)
    }

    /// A registered cluster; for a manual failover, the operator's request opened.
    fn of(kind: Kind) -> Self {
        let mut state = registered();
        if kind == Kind::Manual {
            let reply = state.apply(&Request::new(
                Command::OperationStarted {
                    cluster: "app1".into(),
                    server: "mha01".into(),
                    epoch: 0,
                    operation: Operation::ManualFailover {
                        new_master: None,
                        force: false,
                    },
                },
                Some(1),
                1,
            ));
            assert!(matches!(reply, CommandResult::Ok { .. }), "{reply:?}");
        }
        World {
            shared: Shared::new(state, A),
            done: Arc::new(Mutex::new(Vec::new())),
            kind,
        }
    }

    fn effects(&self) -> FakeEffects {
        FakeEffects::new(seed_004(), self.done.clone())
    }

    async fn run_as(&self, id: u64, effects: &FakeEffects) -> anyhow::Result<()> {
        let journal = MemJournal {
            shared: self.shared.clone(),
            id,
        };
        match self.kind {
            Kind::Automatic => {
                run_failover(&journal, effects, "app1", &quiet()).await?;
            }
            Kind::Manual => {
                // As the supervisor does: the record as this manager reads it, then resume.
                let record = self.record();
                let run = Runner::resume(&journal, "app1", record.id, &quiet()).await?;
                run_manual_failover(&run, &record, effects).await?;
            }
        }
        Ok(())
    }

    fn record(&self) -> FailoverRecord {
        self.shared.state().clusters["app1"].failovers[0].clone()
    }

    fn done(&self) -> Vec<Done> {
        self.done.lock().expect("lock").clone()
    }

    /// Journal entries of the run so far: `(step, phase)`.
    fn entries(&self) -> Vec<(String, StepPhase)> {
        self.record()
            .steps
            .iter()
            .map(|s| (s.step.clone(), s.phase))
            .collect()
    }
}

/// An undisturbed run: its journal entries and effects, in order.
async fn undisturbed(kind: Kind) -> (Vec<(String, StepPhase)>, Vec<Done>) {
    let w = World::of(kind);
    w.run_as(1, &w.effects()).await.expect("runs");
    let f = w.record();
    assert!(matches!(f.finished, Some((FailoverOutcome::Succeeded, _))));
    (w.entries(), w.done())
}

/// After the deposed run stopped: nothing after `cut` journal entries, no finish; then the
/// new leader resumes it to success, re-running at most `in_flight`.
async fn check_resume(w: &World, cut: usize, effects_before: usize, in_flight: Option<&str>) {
    let (all_entries, all_effects) = undisturbed(w.kind).await;
    assert_eq!(
        w.entries(),
        all_entries[..cut],
        "the deposed owner journaled nothing after losing its leadership"
    );
    assert!(w.record().finished.is_none());
    assert_eq!(
        w.done().len(),
        effects_before,
        "the deposed owner acted no more"
    );
    w.shared.elect(Some(B));
    w.run_as(2, &w.effects())
        .await
        .expect("the new leader resumes");
    if w.kind == Kind::Manual {
        let preflights = w
            .entries()
            .iter()
            .filter(|(s, _)| s == "manual.preflight")
            .count();
        assert_eq!(preflights, 1, "the operator's preflight is journaled once");
    }
    let f = w.record();
    assert_eq!(f.owner, Some(B));
    assert!(
        matches!(f.finished, Some((FailoverOutcome::Succeeded, _))),
        "{f:?}"
    );
    let c = &w.shared.state().clusters["app1"];
    assert_eq!(c.master.as_deref(), Some("mha02"));
    assert_eq!(c.epoch, 1, "promoted exactly once");
    let done = w.done();
    let by_a: Vec<&str> = done
        .iter()
        .filter(|d| d.term == A.term)
        .map(|d| d.action.as_str())
        .collect();
    let by_b: Vec<&str> = done
        .iter()
        .filter(|d| d.term == B.term)
        .map(|d| d.action.as_str())
        .collect();
    for action in &by_b {
        if by_a.contains(action) {
            assert_eq!(
                Some(*action),
                in_flight,
                "only the step in flight at the deposition runs twice"
            );
        }
    }
    let mut union: Vec<&str> = by_a.iter().chain(&by_b).copied().collect();
    union.sort();
    union.dedup();
    let mut expected: Vec<&str> = all_effects.iter().map(|d| d.action.as_str()).collect();
    expected.sort();
    assert_eq!(union, expected, "no step skipped");
}

#[tokio::test]
async fn losing_leadership_after_any_journal_entry_stops_the_run_and_the_successor_finishes_it() {
    for kind in [Kind::Automatic, Kind::Manual] {
        after_any_journal_entry(kind).await;
    }
}

async fn after_any_journal_entry(kind: Kind) {
    let (entries, effects) = undisturbed(kind).await;
    assert!(entries.len() > 10, "{entries:?}");
    for (cut, (step, phase)) in entries.iter().enumerate() {
        let w = World::of(kind);
        let (step, phase) = (step.clone(), *phase);
        let mut seen = 0;
        let target = entries[..=cut]
            .iter()
            .filter(|(s, p)| *s == step && *p == phase)
            .count();
        w.shared.depose_when(
            move |req| {
                if let Command::FailoverStep {
                    step: s, phase: p, ..
                } = &req.command
                    && *s == step
                    && *p == phase
                {
                    seen += 1;
                    return seen == target;
                }
                false
            },
            None,
        );
        let e = w.run_as(1, &w.effects()).await.expect_err("deposed");
        assert!(is_deposed(&e), "entry {cut}: {e:#}");
        // Effects performed before the cut: those of steps whose intent came before it.
        let before = w.done().len();
        assert!(before <= effects.len());
        check_resume(&w, cut + 1, before, None).await;
    }
}

#[tokio::test]
async fn losing_leadership_during_any_effect_journals_nothing_more_and_only_that_step_reruns() {
    for kind in [Kind::Automatic, Kind::Manual] {
        during_any_effect(kind).await;
    }
}

async fn during_any_effect(kind: Kind) {
    let (_, effects) = undisturbed(kind).await;
    for (k, effect) in effects.iter().enumerate() {
        let w = World::of(kind);
        let shared = w.shared.clone();
        let count = Arc::new(Mutex::new(0usize));
        let mut fx = w.effects();
        fx.after_effect = Box::new(move |_| {
            let mut n = count.lock().expect("lock");
            *n += 1;
            if *n == k + 1 {
                shared.elect(None);
            }
        });
        let e = w.run_as(1, &fx).await.expect_err("deposed");
        assert!(is_deposed(&e), "effect {k} ({}): {e:#}", effect.action);
        let cut = w.entries().len();
        check_resume(&w, cut, k + 1, Some(effect.action.as_str())).await;
    }
}

#[tokio::test]
async fn a_deposed_leader_that_wakes_up_after_the_takeover_cannot_finish_or_step() {
    let w = World::new();
    // A is deposed after fencing; B resumes and finishes; A's late proposals are refused.
    w.shared.depose_when(
        |req| matches!(&req.command, Command::FailoverStep { step, .. } if step == "plan"),
        Some(B),
    );
    assert!(is_deposed(
        &w.run_as(1, &w.effects()).await.expect_err("deposed")
    ));
    w.run_as(2, &w.effects()).await.expect("B finishes");
    let late = Request::as_owner(
        Command::FailoverStep {
            cluster: "app1".into(),
            failover_id: 1,
            step: "late".into(),
            phase: StepPhase::Result,
            detail: String::new(),
        },
        A,
        5,
    );
    let journal = MemJournal::new(&w.shared, 1);
    assert!(journal.propose(late).await.is_err(), "A no longer leads");
    assert!(w.entries().iter().all(|(s, _)| s != "late"));
}

#[tokio::test]
async fn a_manual_failover_refused_by_its_preflight_changes_nothing() {
    let w = World::of(Kind::Manual);
    let mut fx = w.effects();
    fx.manual_refusals = vec!["mha01 still answers".into()];
    w.run_as(1, &fx).await.expect("refused, not failed");
    let f = w.record();
    assert!(
        matches!(f.finished, Some((FailoverOutcome::Aborted, _))),
        "{f:?}"
    );
    assert!(w.done().is_empty());
    assert_eq!(w.shared.state().clusters["app1"].epoch, 0);
}
