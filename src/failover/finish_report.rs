//! The report a finished run leaves in its record, typed: decoded by what the run is (its
//! operation kind), never by trying one shape after another. The journal keeps the report as
//! the JSON text it always held, so logs written by earlier versions read the same.
use serde::{Deserialize, Serialize};

use super::rejoin::RejoinReport;
use super::report::FailoverReport;
use super::switchover::SwitchReport;
use crate::state::{FailoverRecord, Operation};

/// The finishing detail of an operation refused before it changed anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub kind: String,
    pub outcome: String,
    pub reasons: Vec<String>,
}

impl Refusal {
    pub fn new(kind: &str, reasons: Vec<String>) -> Self {
        Refusal {
            kind: kind.into(),
            outcome: "refused".into(),
            reasons,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FinishReport {
    Switchover(SwitchReport),
    Rejoin(RejoinReport),
    /// An operation refused before it changed anything (a manual failover's preflight).
    Refused(Refusal),
    /// An automatic or manual failover's report (MHA's "Failover Report").
    Failover(Box<FailoverReport>),
    /// Not a report: the error a failed run finished with, or a shape this binary cannot
    /// read.
    Text(String),
}

impl FinishReport {
    /// The report of `f`, once it finished with one.
    pub fn of(f: &FailoverRecord) -> Option<Self> {
        let text = f.report.as_deref()?;
        Some(Self::decode(f.operation.as_ref(), text))
    }

    /// `text` as the report of a run of kind `operation` (`None`: an automatic failover).
    pub fn decode(operation: Option<&Operation>, text: &str) -> Self {
        let typed = match operation {
            Some(Operation::Switchover { .. }) => serde_json::from_str(text)
                .ok()
                .map(FinishReport::Switchover),
            Some(Operation::Rejoin { .. }) => {
                serde_json::from_str(text).ok().map(FinishReport::Rejoin)
            }
            Some(Operation::ManualFailover { .. }) => serde_json::from_str::<Refusal>(text)
                .ok()
                .filter(|r| r.outcome == "refused")
                .map(FinishReport::Refused)
                .or_else(|| failover(text)),
            None => failover(text),
        };
        typed.unwrap_or_else(|| FinishReport::Text(text.to_string()))
    }
}

fn failover(text: &str) -> Option<FinishReport> {
    serde_json::from_str(text)
        .ok()
        .map(|r| FinishReport::Failover(Box::new(r)))
}
