//! A switchover whose owner loses its leadership after any journal entry or inside any effect
//! does nothing more and journals nothing more; the successor rolls it forward (promotion
//! committed) or back (not committed), and at the end exactly one server is writable: the
//! master the state records. Over in-memory fakes.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::*;
use crate::db::BinlogCoord;
use crate::failover::fakes::{A, B, MemJournal, SERVERS, Shared, quiet};
use crate::failover::input::ServerRef;
use crate::failover::runner::{Runner, is_deposed};
use crate::failover::switchover::ServerFacts;
use crate::failover::switchover::tests::{master, replica};
use crate::failover::switchover_effects::Timed;
use crate::state::cluster_file::test_spec;
use crate::state::{ManagerState, Request, SwitchLimits};

/// The servers as the fake sees them: which are writable, and every effect performed.
#[derive(Default)]
struct Servers {
    writable: BTreeMap<String, bool>,
    effects: Vec<String>,
}

struct FakeSwitch {
    servers: Arc<Mutex<Servers>>,
    after_effect: Box<dyn Fn(usize) + Send + Sync>,
}

impl FakeSwitch {
    fn act(&self, what: String, writable: Option<(&str, bool)>) {
        let n = {
            let mut s = self.servers.lock().expect("lock");
            if let Some((server, on)) = writable {
                s.writable.insert(server.to_string(), on);
            }
            s.effects.push(what);
            s.effects.len()
        };
        (self.after_effect)(n);
    }
}

fn coord() -> BinlogCoord {
    BinlogCoord::new("binlog.000001", 400)
}

impl SwitchEffects for FakeSwitch {
    async fn facts(&self, _c: &ClusterRecord) -> Vec<ServerFacts> {
        vec![master(), replica("db2", "0"), replica("db3", "0")]
    }

    async fn online_change_script(
        &self,
        _c: &ClusterRecord,
        _command: &str,
        _orig: &ServerRef,
        _new: &ServerRef,
        _orig_master_is_new_slave: bool,
    ) -> anyhow::Result<String> {
        Ok("not configured".into())
    }

    async fn pre_sync(&self, _plan: &SwitchPlan) {}

    async fn block_and_capture(
        &self,
        plan: &SwitchPlan,
        _timed: Timed<'_>,
    ) -> anyhow::Result<Positions> {
        self.act(
            format!("block {}", plan.orig.name),
            Some((&plan.orig.name, false)),
        );
        Ok(Positions {
            orig: coord(),
            new: Some(coord()),
            sessions_killed: 0,
        })
    }

    async fn enable_writes(&self, new: &ServerRef) -> anyhow::Result<()> {
        self.act(format!("writable {}", new.name), Some((&new.name, true)));
        Ok(())
    }

    async fn follow_new_master(
        &self,
        replica: &ServerRef,
        plan: &SwitchPlan,
        _positions: &Positions,
    ) -> anyhow::Result<String> {
        self.act(format!("{} follows {}", replica.name, plan.new.name), None);
        Ok("ok".into())
    }

    async fn old_master_follows(
        &self,
        plan: &SwitchPlan,
        _positions: &Positions,
    ) -> anyhow::Result<String> {
        let orig = plan.orig.name.as_str();
        self.act(
            format!("{orig} follows {}", plan.new.name),
            Some((orig, false)),
        );
        Ok("ok".into())
    }

    async fn forget_source(&self, new: &ServerRef) -> anyhow::Result<()> {
        self.act(format!("{} forgets its source", new.name), None);
        Ok(())
    }

    async fn undo(&self, orig: &str, _new: &str) -> anyhow::Result<()> {
        self.act(format!("undo: {orig} writable"), Some((orig, true)));
        Ok(())
    }
}

struct World {
    shared: Arc<Shared>,
    servers: Arc<Mutex<Servers>>,
    id: u64,
}

impl World {
    fn new() -> Self {
        let mut s = ManagerState::default();
        let plain = |c| Request::new(c, Some(1), 1);
        s.apply(&plain(Command::RegisterCluster {
            spec: Box::new(test_spec(SERVERS)),
        }));
        s.apply(&plain(Command::SetInitialMaster {
            cluster: "app1".into(),
            server: "db1".into(),
        }));
        // The operator's request, through any manager.
        let started = s.apply(&plain(Command::OperationStarted {
            cluster: "app1".into(),
            server: "db1".into(),
            epoch: 0,
            operation: Operation::Switchover {
                new_master: "db2".into(),
                orig_master_is_new_slave: true,
                limits: SwitchLimits::default(),
            },
        }));
        let Some(id) = (match started {
            CommandResult::Ok { id, .. } => id,
            _ => None,
        }) else {
            panic!("not started: {started:?}");
        };
        let servers = Servers {
            writable: [("db1", true), ("db2", false), ("db3", false)]
                .into_iter()
                .map(|(n, w)| (n.to_string(), w))
                .collect(),
            effects: Vec::new(),
        };
        World {
            shared: Shared::new(s, A),
            servers: Arc::new(Mutex::new(servers)),
            id,
        }
    }

    fn fake(&self) -> FakeSwitch {
        FakeSwitch {
            servers: self.servers.clone(),
            after_effect: Box::new(|_| {}),
        }
    }

    async fn run_as(&self, manager: u64, fx: &FakeSwitch) -> anyhow::Result<SwitchReport> {
        let journal = MemJournal::new(&self.shared, manager);
        let runner = Runner::resume(&journal, "app1", self.id, &quiet()).await?;
        run_switchover(&runner, fx).await
    }

    fn effects(&self) -> usize {
        self.servers.lock().expect("lock").effects.len()
    }

    fn entries(&self) -> usize {
        self.shared.state().clusters["app1"].failovers[0]
            .steps
            .len()
    }

    /// After the successor finished: one writable server, the recorded master; one
    /// promotion at most; the record finished.
    fn check_end(&self, report: &SwitchReport) {
        let state = self.shared.state();
        let c = &state.clusters["app1"];
        let f = &c.failovers[0];
        assert_eq!(f.owner, Some(B));
        assert!(f.finished.is_some());
        let writable: Vec<String> = self
            .servers
            .lock()
            .expect("lock")
            .writable
            .iter()
            .filter(|(_, w)| **w)
            .map(|(n, _)| n.clone())
            .collect();
        assert_eq!(
            writable,
            [c.master.clone().expect("a master")],
            "{report:?}"
        );
        match report.outcome {
            SwitchOutcome::Switched => assert_eq!((c.master.as_deref(), c.epoch), (Some("db2"), 1)),
            SwitchOutcome::RolledBack => {
                assert_eq!((c.master.as_deref(), c.epoch), (Some("db1"), 0))
            }
            ref other => panic!("unexpected outcome {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_undisturbed_switchover_leaves_only_the_new_master_writable() {
    let w = World::new();
    let report = w.run_as(1, &w.fake()).await.expect("switches");
    assert_eq!(report.outcome, SwitchOutcome::Switched);
    let c = &w.shared.state().clusters["app1"];
    assert_eq!((c.master.as_deref(), c.epoch), (Some("db2"), 1));
    let writable = w.servers.lock().expect("lock").writable.clone();
    assert_eq!(writable.values().filter(|w| **w).count(), 1);
    assert!(writable["db2"]);
}

async fn undisturbed_counts() -> (usize, usize) {
    let w = World::new();
    w.run_as(1, &w.fake()).await.expect("switches");
    (w.entries(), w.effects())
}

#[tokio::test]
async fn a_switchover_owner_deposed_after_any_journal_entry_stops_and_the_successor_decides() {
    let (entries, _) = undisturbed_counts().await;
    assert!(entries >= 5, "{entries}");
    // Every entry but the finish (after it there is nothing left to stop).
    for cut in 1..entries {
        let w = World::new();
        let seen = Arc::new(Mutex::new(0usize));
        let counter = seen.clone();
        let servers = w.servers.clone();
        let effects_at_cut = Arc::new(Mutex::new(None));
        let at_cut = effects_at_cut.clone();
        w.shared.depose_when(
            move |req| {
                if !matches!(req.command, Command::FailoverStep { .. }) {
                    return false;
                }
                let mut n = counter.lock().expect("lock");
                *n += 1;
                if *n == cut {
                    *at_cut.lock().expect("lock") =
                        Some(servers.lock().expect("lock").effects.len());
                    return true;
                }
                false
            },
            None,
        );
        let e = w.run_as(1, &w.fake()).await.expect_err("deposed");
        assert!(is_deposed(&e), "cut {cut}: {e:#}");
        assert_eq!(w.entries(), cut, "nothing journaled after the cut");
        let at_cut = effects_at_cut
            .lock()
            .expect("lock")
            .expect("the cut happened");
        assert_eq!(w.effects(), at_cut, "cut {cut}: no effect after the cut");
        w.shared.elect(Some(B));
        let report = w
            .run_as(2, &w.fake())
            .await
            .expect("the successor finishes");
        w.check_end(&report);
    }
}

#[tokio::test]
async fn a_switchover_owner_deposed_inside_any_effect_acts_no_more() {
    let (_, effects) = undisturbed_counts().await;
    for k in 1..=effects {
        let w = World::new();
        let shared = w.shared.clone();
        let mut fx = w.fake();
        fx.after_effect = Box::new(move |n| {
            if n == k {
                shared.elect(None);
            }
        });
        let result = w.run_as(1, &fx).await;
        match result {
            Err(e) => assert!(is_deposed(&e), "effect {k}: {e:#}"),
            Ok(r) => panic!("effect {k}: finished although deposed: {r:?}"),
        }
        assert_eq!(w.effects(), k, "effect {k}: no effect after it");
        w.shared.elect(Some(B));
        let report = w
            .run_as(2, &w.fake())
            .await
            .expect("the successor finishes");
        w.check_end(&report);
    }
}
