//! A rejoin over in-memory fakes: refused with errant transactions (nothing changed),
//! accepted with `--force`, and resumed by a successor after its owner lost the leadership
//! after any journal entry or inside any effect: same end, the host repointed once.
use std::sync::{Arc, Mutex};

use super::*;
use crate::db::binlogs::BinaryLog;
use crate::db::{BinlogCoord, ReplicaStatus};
use crate::failover::fakes::{A, B, MemJournal, SERVERS, Shared, quiet};
use crate::failover::input::ServerRef;
use crate::failover::rejoin::Divergence;
use crate::failover::runner::is_deposed;
use crate::failover::switchover::tests::replica_of;
use crate::failover::switchover_effects::Positions;
use crate::state::cluster_file::test_spec;
use crate::state::{Command, CommandResult, ManagerState, Request, SwitchLimits};

/// The old master db1 as the fake sees it.
#[derive(Default)]
struct Host {
    read_only: bool,
    /// The address it replicates from.
    source: Option<String>,
    effects: Vec<String>,
}

struct FakeRejoin {
    host: Arc<Mutex<Host>>,
    /// db1's binlog events after the switchover's final position (400).
    events: Vec<BinlogEvent>,
    gtid: bool,
    after_effect: Box<dyn Fn(usize) + Send + Sync>,
}

impl FakeRejoin {
    fn act(&self, what: String, change: impl FnOnce(&mut Host)) {
        let n = {
            let mut h = self.host.lock().expect("lock");
            change(&mut h);
            h.effects.push(what);
            h.effects.len()
        };
        (self.after_effect)(n);
    }
}

impl RejoinEffects for FakeRejoin {
    async fn host_replication(&self, _host: &str) -> anyhow::Result<Option<ReplicaStatus>> {
        let h = self.host.lock().expect("lock");
        Ok(h.source.as_deref().map(|s| replica_of(s, "0", "0")))
    }

    async fn binary_logs(&self, _host: &str) -> anyhow::Result<Vec<BinaryLog>> {
        Ok(vec![BinaryLog {
            name: "binlog.000001".into(),
            size: 10_000,
        }])
    }

    async fn binlog_events(
        &self,
        _host: &str,
        file: &str,
        from: u64,
    ) -> anyhow::Result<Vec<BinlogEvent>> {
        let mut all = vec![ev(from, "Format_desc")];
        all.extend(
            self.events
                .iter()
                .filter(|e| e.file == file && e.pos >= from)
                .cloned(),
        );
        Ok(all)
    }

    async fn others_use_gtid(&self, _c: &ClusterRecord, _host: &str, _master: &str) -> bool {
        self.gtid
    }

    async fn is_mariadb(&self, _server: &str) -> anyhow::Result<bool> {
        Ok(true)
    }

    async fn fence(&self, host: &str) -> anyhow::Result<usize> {
        self.act(format!("fence {host}"), |h| h.read_only = true);
        Ok(0)
    }

    async fn follow(
        &self,
        host: &str,
        master: &ServerRef,
        by: FollowBy,
        d: &Divergence,
    ) -> anyhow::Result<Option<String>> {
        if self.host.lock().expect("lock").source.as_deref() == Some(master.host.as_str()) {
            return Ok(None);
        }
        let from = match by {
            FollowBy::Gtid => format!("gtid of {}", d.own),
            FollowBy::Position => format!("{:?}", d.successor_pos),
        };
        self.act(format!("{host} follows {} from {from}", master.name), |h| {
            h.source = Some(master.host.clone())
        });
        Ok(Some("ok".into()))
    }

    async fn wait_replicating(&self, host: &str) -> anyhow::Result<()> {
        match self.host.lock().expect("lock").source {
            Some(_) => Ok(()),
            None => anyhow::bail!("{host} does not replicate"),
        }
    }
}

fn ev(pos: u64, kind: &str) -> BinlogEvent {
    BinlogEvent {
        file: "binlog.000001".into(),
        pos,
        event_type: kind.into(),
        info: String::new(),
    }
}

struct World {
    shared: Arc<Shared>,
    host: Arc<Mutex<Host>>,
    id: u64,
    /// The requests applied before the shared log began.
    setup: Vec<Request>,
}

fn started_id(reply: CommandResult) -> u64 {
    match reply {
        CommandResult::Ok { id: Some(id), .. } => id,
        other => panic!("not started: {other:?}"),
    }
}

impl World {
    /// db1 was switched out for db2 (final position binlog.000001:400), then an operator
    /// asked to rejoin it.
    async fn new(force: bool) -> Self {
        let mut s = ManagerState::default();
        let mut setup = Vec::new();
        let mut plain = |c| {
            let req = Request::new(c, Some(1), 1);
            setup.push(req.clone());
            s.apply(&req)
        };
        plain(Command::RegisterCluster {
            spec: Box::new(test_spec(SERVERS)),
        });
        plain(Command::SetInitialMaster {
            cluster: "app1".into(),
            server: "db1".into(),
        });
        let switch = started_id(plain(Command::OperationStarted {
            cluster: "app1".into(),
            server: "db1".into(),
            epoch: 0,
            operation: Operation::Switchover {
                new_master: "db2".into(),
                orig_master_is_new_slave: false,
                limits: SwitchLimits::default(),
            },
        }));
        let shared = Shared::new(s, A);
        let journal = MemJournal {
            shared: shared.clone(),
            id: 1,
        };
        let run = Runner::resume(&journal, "app1", switch, &quiet())
            .await
            .expect("owns the switchover");
        let positions = Positions {
            orig: BinlogCoord::new("binlog.000001", 400),
            new: Some(BinlogCoord::new("binlog.000002", 900)),
            sessions_killed: 0,
        };
        let detail = serde_json::to_string(&positions).expect("json");
        run.journal_step("sw.catch-up", StepPhase::Result, detail)
            .await
            .expect("journaled");
        run.propose(Command::OperationPromote {
            cluster: "app1".into(),
            failover_id: switch,
            server: "db2".into(),
            expected_epoch: 0,
        })
        .await
        .expect("promoted");
        run.finish(FailoverOutcome::Succeeded, "{}".into())
            .await
            .expect("finished");
        let reply = journal
            .propose(Request::new(
                Command::OperationStarted {
                    cluster: "app1".into(),
                    server: "db1".into(),
                    epoch: 1,
                    operation: Operation::Rejoin { force },
                },
                Some(1),
                1,
            ))
            .await
            .expect("proposed");
        World {
            shared,
            host: Arc::new(Mutex::new(Host::default())),
            id: started_id(reply),
            setup,
        }
    }

    fn fake(&self, gtid: bool, events: Vec<BinlogEvent>) -> FakeRejoin {
        FakeRejoin {
            host: self.host.clone(),
            events,
            gtid,
            after_effect: Box::new(|_| {}),
        }
    }

    async fn run_as(&self, manager: u64, fx: &FakeRejoin) -> anyhow::Result<RejoinReport> {
        let journal = MemJournal::new(&self.shared, manager);
        let runner = Runner::resume(&journal, "app1", self.id, &quiet()).await?;
        run_rejoin(&runner, fx).await
    }

    fn record(&self) -> crate::state::FailoverRecord {
        let state = self.shared.state();
        let c = &state.clusters["app1"];
        c.failovers
            .iter()
            .find(|f| f.id == self.id)
            .cloned()
            .expect("the rejoin record")
    }

    fn entries(&self) -> usize {
        self.record().steps.len()
    }

    fn effects(&self) -> Vec<String> {
        self.host.lock().expect("lock").effects.clone()
    }

    /// The successor's end: finished as rejoined, db1 read-only replicating from db2, and
    /// repointed exactly once.
    fn check_end(&self, report: &RejoinReport) {
        assert_eq!(report.outcome, RejoinOutcome::Rejoined, "{report:?}");
        let f = self.record();
        assert_eq!(f.owner, Some(B));
        assert!(matches!(f.finished, Some((FailoverOutcome::Succeeded, _))));
        let h = self.host.lock().expect("lock");
        assert!(h.read_only);
        assert_eq!(h.source.as_deref(), Some("10.0.0.2"));
        let follows = h.effects.iter().filter(|e| e.contains("follows")).count();
        assert_eq!(follows, 1, "{:?}", h.effects);
    }
}

#[tokio::test]
async fn an_undisturbed_rejoin_fences_then_follows_the_new_master_from_its_captured_position() {
    let w = World::new(false).await;
    let report = w.run_as(1, &w.fake(false, vec![])).await.expect("rejoins");
    assert_eq!(report.outcome, RejoinOutcome::Rejoined);
    assert_eq!(report.follows_by, Some(FollowBy::Position));
    assert_eq!(
        w.effects(),
        [
            "fence db1",
            "db1 follows db2 from Some(BinlogCoord { file: \"binlog.000002\", pos: 900 })"
        ]
    );
    let d = report.divergence.expect("divergence");
    assert_eq!(d.own, BinlogCoord::new("binlog.000001", 400));
}

#[tokio::test]
async fn a_host_with_errant_transactions_is_refused_unless_forced_and_nothing_changes() {
    let errant = vec![ev(500, "Gtid"), ev(540, "Query"), ev(600, "Xid")];
    let w = World::new(false).await;
    let report = w
        .run_as(1, &w.fake(true, errant.clone()))
        .await
        .expect("refuses");
    assert_eq!(report.outcome, RejoinOutcome::Refused);
    assert_eq!(report.errant.len(), 3);
    assert!(w.effects().is_empty());
    assert!(matches!(
        w.record().finished,
        Some((FailoverOutcome::Aborted, _))
    ));

    let w = World::new(true).await;
    let report = w.run_as(1, &w.fake(true, errant)).await.expect("rejoins");
    assert_eq!(report.outcome, RejoinOutcome::Rejoined);
    assert_eq!(report.errant.len(), 3);
    assert_eq!(report.follows_by, Some(FollowBy::Gtid));
    assert!(
        report
            .render_text()
            .contains("errant transactions were kept")
    );
}

#[tokio::test]
async fn a_host_already_replicating_from_the_master_is_refused() {
    let w = World::new(false).await;
    w.host.lock().expect("lock").source = Some("10.0.0.2".into());
    let report = w.run_as(1, &w.fake(false, vec![])).await.expect("refuses");
    assert_eq!(report.outcome, RejoinOutcome::Refused);
    assert!(
        report.reasons[0].contains("already replicates"),
        "{report:?}"
    );
}

async fn undisturbed_entries(gtid: bool) -> usize {
    let w = World::new(false).await;
    w.run_as(1, &w.fake(gtid, vec![])).await.expect("rejoins");
    w.entries()
}

#[tokio::test]
async fn a_rejoin_owner_deposed_after_any_journal_entry_stops_and_the_successor_finishes() {
    for gtid in [false, true] {
        let entries = undisturbed_entries(gtid).await;
        // check, fence intent and result, follow intent and result (RunResumed is no step).
        assert_eq!(entries, 5);
        for cut in 1..=entries {
            let w = World::new(false).await;
            let seen = Arc::new(Mutex::new(0usize));
            w.shared.depose_when(
                move |req| {
                    let Command::FailoverStep { step, .. } = &req.command else {
                        return false;
                    };
                    if !step.starts_with("rejoin.") {
                        return false;
                    }
                    let mut n = seen.lock().expect("lock");
                    *n += 1;
                    *n == cut
                },
                None,
            );
            let e = w
                .run_as(1, &w.fake(gtid, vec![]))
                .await
                .expect_err("deposed");
            assert!(is_deposed(&e), "cut {cut}: {e:#}");
            assert_eq!(w.entries(), cut, "cut {cut}: nothing journaled after it");
            assert!(w.record().finished.is_none());
            w.shared.elect(Some(B));
            let report = w
                .run_as(2, &w.fake(gtid, vec![]))
                .await
                .expect("the successor finishes");
            w.check_end(&report);
        }
    }
}

#[tokio::test]
async fn a_rejoin_owner_deposed_inside_any_effect_acts_no_more_and_the_successor_finishes() {
    for k in 1..=2 {
        let w = World::new(false).await;
        let shared = w.shared.clone();
        let mut fx = w.fake(false, vec![]);
        fx.after_effect = Box::new(move |n| {
            if n == k {
                shared.elect(None);
            }
        });
        let e = w.run_as(1, &fx).await.expect_err("deposed");
        assert!(is_deposed(&e), "effect {k}: {e:#}");
        assert_eq!(w.effects().len(), k, "effect {k}: no effect after it");
        w.shared.elect(Some(B));
        let report = w
            .run_as(2, &w.fake(false, vec![]))
            .await
            .expect("the successor finishes");
        w.check_end(&report);
    }
}

/// `RAFTMHA_WRITE_LOG_FIXTURE=1 cargo test --lib writes_the_stored_log_fixture` writes the
/// log of a switchover and a forced rejoin with errant events (one request per line) to
/// `src/failover/testdata/`, for `stored_log_tests`. Written once per log format: a fixture
/// must stay what an earlier binary wrote.
#[tokio::test]
async fn writes_the_stored_log_fixture() {
    let w = World::new(true).await;
    let errant = vec![ev(500, "Gtid"), ev(540, "Query"), ev(600, "Xid")];
    w.run_as(1, &w.fake(true, errant)).await.expect("rejoins");
    let lines: Vec<String> = w
        .setup
        .iter()
        .chain(&w.shared.log())
        .map(|r| serde_json::to_string(r).expect("json"))
        .collect();
    assert!(lines.len() > 10);
    if std::env::var_os("RAFTMHA_WRITE_LOG_FIXTURE").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/failover/testdata/log_v2.jsonl"
        );
        std::fs::write(path, lines.join("\n") + "\n").expect("written");
    }
}
