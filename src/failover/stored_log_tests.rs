//! Logs outlive binaries: a log written by an earlier version (`testdata/log_v2.jsonl`,
//! request format 2: a switchover then a forced rejoin with errant events, written by
//! `rejoin_run::tests::writes_the_stored_log_fixture`) still decodes, replays to the same
//! state, and its reports read as typed reports.
use super::finish_report::FinishReport;
use super::rejoin::RejoinOutcome;
use crate::state::{Command, FailoverOutcome, ManagerState, Request};

const LOG_V2: &str = include_str!("testdata/log_v2.jsonl");

#[test]
fn a_log_written_by_request_format_2_decodes_and_replays() {
    let mut state = ManagerState::default();
    for (n, line) in LOG_V2.lines().enumerate() {
        let req: Request = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("entry {n} no longer decodes: {e}: {line}"));
        assert!(
            !matches!(req.command, Command::Unknown),
            "entry {n} decodes as an unknown command: {line}"
        );
        state.apply(&req);
    }
    let c = &state.clusters["app1"];
    assert_eq!((c.master.as_deref(), c.epoch), (Some("db2"), 1));
    let rejoin = c.failovers.back().expect("the rejoin");
    assert!(matches!(
        rejoin.finished,
        Some((FailoverOutcome::Succeeded, _))
    ));
    match FinishReport::of(rejoin) {
        Some(FinishReport::Rejoin(r)) => {
            assert_eq!(r.outcome, RejoinOutcome::Rejoined);
            assert!(r.forced);
            assert_eq!(r.errant.len(), 3);
        }
        other => panic!("the rejoin report reads as {other:?}"),
    }
    assert!(
        rejoin.steps.iter().any(|s| s.step == "rejoin.follow"),
        "{rejoin:?}"
    );
}
