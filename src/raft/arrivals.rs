//! When this manager applied each manager's latest liveness verdict, on its own wall clock.
//!
//! Local knowledge, never replicated: the deciding manager uses it to bound when another
//! manager stopped renewing the master's lease without trusting that manager's clock (see
//! `detect::lease_bound`): a verdict was observed before it was applied here, so its failure
//! streak began at least `streak` before that. A replay after a restart applies old verdicts
//! again, later: the bound only gets more conservative.
use std::collections::BTreeMap;

pub use crate::state::VerdictKey;

/// `(cluster, server, manager)` → `(window_end_ms, applied_at_ms)` of the newest verdict.
#[derive(Debug, Default, Clone)]
pub struct VerdictArrivals(BTreeMap<(String, String, u64), (u64, u64)>);

impl VerdictArrivals {
    /// Records that `manager`'s verdict about `server` ending at `window_end_ms` was applied
    /// at `applied_at_ms`. A verdict seen again (a replay) keeps its first time.
    pub fn note(&mut self, v: VerdictKey<'_>, applied_at_ms: u64) {
        let key = (v.cluster.to_string(), v.server.to_string(), v.manager);
        match self.0.get(&key) {
            Some((end, _)) if *end == v.window_end_ms => {}
            _ => {
                self.0.insert(key, (v.window_end_ms, applied_at_ms));
            }
        }
    }

    /// When the verdict of `manager` about `server` ending at `window_end_ms` was applied
    /// here, if that is still its newest.
    pub fn seen_at(&self, v: VerdictKey<'_>) -> Option<u64> {
        let key = (v.cluster.to_string(), v.server.to_string(), v.manager);
        self.0
            .get(&key)
            .filter(|(end, _)| *end == v.window_end_ms)
            .map(|(_, at)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cluster: &str, manager: u64, window_end_ms: u64) -> VerdictKey<'_> {
        VerdictKey {
            cluster,
            server: "m",
            manager,
            window_end_ms,
        }
    }

    #[test]
    fn keeps_the_first_application_of_the_newest_verdict() {
        let mut a = VerdictArrivals::default();
        a.note(key("c", 1, 100), 150);
        a.note(key("c", 1, 100), 900);
        assert_eq!(a.seen_at(key("c", 1, 100)), Some(150));
        a.note(key("c", 1, 200), 260);
        assert_eq!(a.seen_at(key("c", 1, 100)), None, "superseded");
        assert_eq!(a.seen_at(key("c", 1, 200)), Some(260));
        assert_eq!(a.seen_at(key("c", 2, 200)), None);
        assert_eq!(a.seen_at(key("other", 1, 200)), None);
    }
}
