//! A frozen master host that resumes after the promotion: what may it still acknowledge?
//!
//! The replication profile decides (README, *Safety profiles*; `check-repl` names it):
//! - semi-sync AFTER_SYNC with `rpl_semi_sync_master_timeout` above the lease bound: nothing
//!   that is not on the new master. A resumed commit waits for a replica's acknowledgement that
//!   never comes (the replicas replicate from the new master), and its agent fences it first.
//!   One exception is harmless and allowed: a replica acknowledged the commit just before the
//!   freeze (the acknowledgement sat in the frozen master's socket buffer), so the resumed
//!   master returns OK at once; that write is on a replica, hence on the new master.
//! - asynchronous: statements its clients had queued, for the moment between its resume and
//!   its agent's fence (measured 12–42 ms); allowed up to [`RESUME_WINDOW_NS`] after the
//!   resume, reported, and `no_acknowledged_write_lost` counts them as loss within the
//!   replication contract.
use std::collections::{BTreeMap, BTreeSet};

use super::{CheckResult, Verdict};
use crate::history::{Event, NemesisAction, NemesisOutcome, Record, RunConfig};
use crate::scenario::Fault;

/// How long after its resume an old master may still answer as it did before the freeze
/// (read_only=OFF; with asynchronous replication, commits): the agent's lease check (100 ms)
/// and its whole fence (1 s: under semi-sync, `read_only=ON` waits behind the commit blocked
/// on an acknowledgement and the agent escalates to SIGKILL), with room for a loaded machine.
pub const RESUME_WINDOW_NS: u64 = 1_500_000_000;

const NAME: &str = "frozen_master_quiet_after_promotion";

/// When a frozen host's answers reflect the moment it resumed: statements (observation
/// rounds included) sent while it was frozen are answered on its resume, before its agent
/// fences it. Matched by the address the nemesis names in its record.
pub struct FreezeWindows(Vec<(String, u64, u64)>);

impl FreezeWindows {
    pub fn of(history: &[Record]) -> Self {
        let freeze = Fault::FreezeMasterHost.name();
        let mut windows = Vec::new();
        let mut open: Option<(String, u64)> = None;
        for r in history {
            let Event::Nemesis {
                fault,
                action,
                outcome: NemesisOutcome::Installed,
                detail,
            } = &r.event
            else {
                continue;
            };
            if fault != freeze {
                continue;
            }
            match action {
                NemesisAction::Start => open = Some((detail.clone(), r.time_ns)),
                NemesisAction::Stop => {
                    if let Some((detail, from)) = open.take() {
                        windows.push((detail, from, r.time_ns + RESUME_WINDOW_NS));
                    }
                }
            }
        }
        if let Some((detail, from)) = open {
            windows.push((detail, from, u64::MAX));
        }
        FreezeWindows(windows)
    }

    /// Whether `node`'s answer in a round that ran from `started_ns` to `ended_ns` may be
    /// one it gave on resuming.
    pub fn covers(&self, node: &str, (started_ns, ended_ns): (u64, u64)) -> bool {
        self.0.iter().any(|(detail, from, to)| {
            detail.contains(node) && started_ns <= *to && ended_ns >= *from
        })
    }
}

/// Whether an observation of `node` in a round (start, end) (`took_write`: a non-admin write succeeded,
/// else read_only=OFF only) is what the replication profile allows a resumed frozen master.
pub fn allowed_on_resume(
    windows: &FreezeWindows,
    cfg: &RunConfig,
    node: &str,
    round: (u64, u64),
    took_write: bool,
) -> bool {
    windows.covers(node, round) && !(took_write && cfg.semi_sync)
}

pub fn frozen_master_quiet_after_promotion(history: &[Record], cfg: &RunConfig) -> CheckResult {
    let freeze = Fault::FreezeMasterHost.name();
    let resumes: Vec<u64> = history
        .iter()
        .filter_map(|r| match &r.event {
            Event::Nemesis {
                fault,
                action: NemesisAction::Stop,
                outcome: NemesisOutcome::Installed,
                ..
            } if fault == freeze => Some(r.time_ns),
            _ => None,
        })
        .collect();
    if resumes.is_empty() {
        return CheckResult {
            name: NAME,
            verdict: Verdict::Valid,
            details: vec!["no frozen master host resumed in this run".into()],
        };
    }
    // When each epoch's master first acknowledged a write: a newer epoch serving means the
    // older master's promotion-time is over.
    let mut first_ok: BTreeMap<u64, u64> = BTreeMap::new();
    for r in history {
        if let Event::Ok { epoch, .. } = &r.event {
            first_ok.entry(*epoch).or_insert(r.time_ns);
        }
    }
    let on_final_master: BTreeSet<u64> = history
        .iter()
        .find_map(|r| match &r.event {
            Event::FinalRead { role, ids, .. } if role == "master" => Some(ids),
            _ => None,
        })
        .map(|ids| ids.iter().copied().collect())
        .unwrap_or_default();
    let (mut tolerated, mut violations) = (Vec::new(), Vec::new());
    for r in history {
        let Event::Ok {
            id, node, epoch, ..
        } = &r.event
        else {
            continue;
        };
        let Some(served) = first_ok.range(epoch + 1..).map(|(_, t)| *t).min() else {
            continue;
        };
        if r.time_ns <= served {
            continue;
        }
        let since_resume = resumes
            .iter()
            .filter(|t| **t <= r.time_ns)
            .map(|t| r.time_ns - t)
            .min();
        let what = format!(
            "write {id} acknowledged by {node} (epoch {epoch}) {} ms after a newer epoch served{}",
            (r.time_ns - served) / 1_000_000,
            since_resume.map_or(String::new(), |d| format!(
                ", {} ms after the host resumed",
                d / 1_000_000
            ))
        );
        let within_window = since_resume.is_some_and(|d| d <= RESUME_WINDOW_NS);
        let durable = on_final_master.contains(id);
        match (cfg.semi_sync, within_window, durable) {
            (true, true, true) => tolerated.push(format!("{what}; on the new master")),
            (false, true, _) => tolerated.push(what),
            _ => violations.push(what),
        }
    }
    let profile = if cfg.semi_sync {
        "semi-sync AFTER_SYNC: nothing after the promotion"
    } else {
        "asynchronous: queued statements right after the resume"
    };
    let mut details = vec![format!(
        "{} resume(s); profile {profile}; {} tolerated acknowledgements",
        resumes.len(),
        tolerated.len()
    )];
    details.extend(tolerated.iter().take(10).cloned());
    let verdict = if violations.is_empty() {
        Verdict::Valid
    } else {
        details.extend(violations);
        Verdict::Invalid
    };
    CheckResult {
        name: NAME,
        verdict,
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ms: u64, event: Event) -> Record {
        Record {
            time_ns: ms * 1_000_000,
            event,
        }
    }

    fn ok(ms: u64, id: u64, node: &str, epoch: u64) -> Record {
        rec(
            ms,
            Event::Ok {
                process: 1,
                id,
                node: node.into(),
                epoch,
            },
        )
    }

    fn resume(ms: u64) -> Record {
        rec(
            ms,
            Event::Nemesis {
                fault: Fault::FreezeMasterHost.name().into(),
                action: NemesisAction::Stop,
                outcome: NemesisOutcome::Installed,
                detail: "SIGCONT".into(),
            },
        )
    }

    fn history(late_old_ack_ms: u64) -> Vec<Record> {
        vec![
            ok(100, 1, "node1", 0),
            ok(4_000, 2, "node2", 1),
            resume(4_800),
            ok(late_old_ack_ms, 3, "node1", 0),
        ]
    }

    fn config(semi_sync: bool) -> RunConfig {
        RunConfig {
            semi_sync,
            ..Default::default()
        }
    }

    #[test]
    fn async_tolerates_the_moment_after_the_resume_only() {
        let ok = frozen_master_quiet_after_promotion(&history(4_830), &config(false));
        assert_eq!(ok.verdict, Verdict::Valid, "{:?}", ok.details);
        assert!(ok.details[0].contains("1 tolerated"), "{:?}", ok.details);
        let late = frozen_master_quiet_after_promotion(&history(6_900), &config(false));
        assert_eq!(late.verdict, Verdict::Invalid, "{:?}", late.details);
    }

    fn final_master(ids: &[u64]) -> Record {
        rec(
            9_000,
            Event::FinalRead {
                node: "node2".into(),
                role: "master".into(),
                ids: ids.to_vec(),
                checksum: None,
            },
        )
    }

    #[test]
    fn semi_sync_tolerates_nothing_after_the_promotion_unless_a_replica_had_it() {
        let r = frozen_master_quiet_after_promotion(&history(4_830), &config(true));
        assert_eq!(r.verdict, Verdict::Invalid, "{:?}", r.details);
        let mut durable = history(4_830);
        durable.push(final_master(&[1, 2, 3]));
        let r = frozen_master_quiet_after_promotion(&durable, &config(true));
        assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.details);
        let mut late = history(6_900);
        late.push(final_master(&[1, 2, 3]));
        let r = frozen_master_quiet_after_promotion(&late, &config(true));
        assert_eq!(r.verdict, Verdict::Invalid, "{:?}", r.details);
        let before: Vec<Record> = history(4_830).into_iter().take(3).collect();
        let r = frozen_master_quiet_after_promotion(&before, &config(true));
        assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.details);
    }

    #[test]
    fn a_resumed_hosts_answers_are_matched_by_address_and_time() {
        let freeze = rec(
            1_000,
            Event::Nemesis {
                fault: Fault::FreezeMasterHost.name().into(),
                action: NemesisAction::Start,
                outcome: NemesisOutcome::Installed,
                detail: "SIGSTOP node1 (127.0.0.10:3306) (pid 1) and its agent (pid 2)".into(),
            },
        );
        let w = FreezeWindows::of(&[freeze, resume(4_800)]);
        let ms = |t: u64| t * 1_000_000;
        let at = |t: u64| (ms(t), ms(t));
        assert!(w.covers("127.0.0.10:3306", at(4_000)));
        assert!(w.covers("127.0.0.10:3306", at(5_200)));
        assert!(!w.covers("127.0.0.10:3306", at(6_400)), "past the window");
        assert!(!w.covers("127.0.0.10:3306", at(900)), "before the freeze");
        assert!(!w.covers("127.0.0.11:3306", at(4_000)), "another host");
        // Started while frozen, ended late (a probe write blocked on semi-sync): covered.
        assert!(w.covers("127.0.0.10:3306", (ms(4_700), ms(7_000))));
        let (semi, asynchronous) = (config(true), config(false));
        let node = "127.0.0.10:3306";
        assert!(allowed_on_resume(&w, &semi, node, at(4_900), false));
        assert!(!allowed_on_resume(&w, &semi, node, at(4_900), true));
        assert!(allowed_on_resume(&w, &asynchronous, node, at(4_900), true));
    }

    #[test]
    fn runs_without_a_freeze_are_not_judged() {
        let h = vec![ok(100, 1, "node1", 0), ok(5_000, 2, "node1", 0)];
        let r = frozen_master_quiet_after_promotion(&h, &config(true));
        assert_eq!(r.verdict, Verdict::Valid);
    }
}
