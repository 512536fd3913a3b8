//! Decides from a recorded history whether a run was valid, invalid or unknown.
//!
//! Each property is a plain function over the records (no I/O), so planted histories test it.
//! Failed-or-timed-out writes are unknown, never absent; a run whose required faults never
//! installed is unknown, never valid.
mod freeze;
mod managers;
mod properties;
mod runs;

use serde::Serialize;

use crate::history::Record;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Valid,
    Unknown,
    Invalid,
}

impl Verdict {
    /// Exit code of `raftmha-jepsen check` / `run`: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Unknown => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub verdict: Verdict,
    /// What was found: the violations, or why the check could not decide, or counts.
    pub details: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    pub fn render(&self) -> String {
        let mut out = format!("verdict: {:?}\n", self.verdict).to_lowercase();
        for c in &self.checks {
            out.push_str(&format!("  {:<28} {:?}\n", c.name, c.verdict).to_lowercase());
            for d in &c.details {
                out.push_str(&format!("      {d}\n"));
            }
        }
        out
    }
}

/// Runs every property; the overall verdict is the worst of them (invalid > unknown > valid).
pub fn check(history: &[Record]) -> Report {
    let default_config = crate::history::RunConfig::default();
    let cfg = history
        .iter()
        .find_map(|r| match &r.event {
            crate::history::Event::Config(c) => Some(c),
            _ => None,
        })
        .unwrap_or(&default_config);
    let checks = vec![
        properties::required_faults_installed(history),
        properties::one_leader_per_term(history),
        properties::one_writable_master(history),
        properties::old_master_fenced_before_new_serves(history),
        properties::no_acknowledged_write_lost(history),
        properties::nodes_converge(history),
        properties::no_flapping(history),
        managers::no_false_failover(history, cfg),
        managers::writable_after_heal(history, cfg),
        managers::failover_happened(history, cfg),
        managers::manager_state_intact(history, cfg),
        runs::no_entry_from_deposed_owner(history, cfg),
        runs::writable_is_recorded_master(history, cfg),
        runs::failed_run_left_no_replica_behind(history),
        freeze::frozen_master_quiet_after_promotion(history, cfg),
    ];
    let verdict = checks
        .iter()
        .map(|c| c.verdict)
        .max()
        .unwrap_or(Verdict::Unknown);
    Report { verdict, checks }
}
