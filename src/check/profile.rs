//! `check-repl`'s safety profile: how fast a silent master (frozen or cut-off host) is
//! confirmed and what a failover promises about acknowledged writes, from the servers'
//! `slave_net_timeout`, heartbeat periods and semi-sync settings against the cluster file's
//! lease and heartbeat settings. Plain logic over [`Observed`].
use std::time::Duration;

use super::{Finding, Level, Observed};
use crate::detect::renew::lease_wait;
use crate::state::cluster_file::Settings;

/// A replica confirms a silent master after this many heartbeat periods (and at least
/// [`SILENCE_FLOOR_MS`]); the same numbers as [`crate::detect::QuorumConfig`]'s defaults.
const SILENT_PERIODS: u64 = 3;
const SILENCE_FLOOR_MS: u64 = 500;

/// Which guarantees a failover gives, by the servers' settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Semi-sync AFTER_SYNC on the master and every promotable replica, its timeout above
    /// the lease bound, the lease on.
    SemiSyncSafe,
    /// Anything else: asynchronous in effect.
    Async,
}

fn finding(check: &'static str, server: Option<&str>, level: Level, detail: String) -> Finding {
    Finding {
        check,
        server: server.map(str::to_string),
        level,
        detail,
    }
}

fn silence_ms(period_ms: u64) -> u64 {
    (period_ms * SILENT_PERIODS).max(SILENCE_FLOOR_MS)
}

/// Every profile finding. `master` names the current master.
pub fn check_profile(servers: &[Observed], master: Option<&str>, s: &Settings) -> Vec<Finding> {
    let live: Vec<&Observed> = servers.iter().filter(|o| o.error.is_none()).collect();
    let Some(m) = master.and_then(|n| live.iter().find(|o| o.name == n).copied()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let managed = s.heartbeat_period_ms > 0;
    // slave_net_timeout: how long an IO thread waits on a silent master before giving up.
    let timeouts: Vec<String> = live
        .iter()
        .filter_map(|o| Some(format!("{}={}", o.name, o.var("slave_net_timeout")?)))
        .collect();
    let longest: Option<u64> = live
        .iter()
        .filter_map(|o| o.var("slave_net_timeout")?.parse().ok())
        .max();
    let detail = format!("{} s ({})", longest.unwrap_or(0), timeouts.join(", "));
    out.push(if managed {
        finding(
            "slave_net_timeout",
            None,
            Level::Ok,
            format!(
                "{detail}; not on the failover path: the leader keeps a {} ms heartbeat on the \
                 replicas, which confirm a silent master after {} ms",
                s.heartbeat_period_ms,
                silence_ms(s.heartbeat_period_ms)
            ),
        )
    } else {
        finding(
            "slave_net_timeout",
            None,
            if longest.unwrap_or(0) > 10 {
                Level::Warn
            } else {
                Level::Ok
            },
            format!(
                "{detail}; settings.heartbeat_period_ms = 0: unless the replicas' own heartbeat \
                 is short, a frozen or cut-off master is confirmed only when their IO threads \
                 give up, after slave_net_timeout"
            ),
        )
    });
    for r in live.iter().filter(|o| o.name != m.name) {
        let Some(status) = &r.replica else { continue };
        let (level, detail) = match (status.heartbeat_period_ms, managed) {
            (None, _) => (
                Level::Warn,
                "not shown by this server: only its IO thread giving up (slave_net_timeout) \
                 confirms a silent master"
                    .to_string(),
            ),
            (Some(p), true) if p.abs_diff(s.heartbeat_period_ms) <= 1 => (
                Level::Ok,
                format!(
                    "{p} ms (kept by the leader): silence confirmed after {} ms",
                    silence_ms(p)
                ),
            ),
            (Some(p), true) => (
                Level::Ok,
                format!(
                    "{p} ms: the leader sets {} ms while the master is healthy",
                    s.heartbeat_period_ms
                ),
            ),
            (Some(0), false) => (
                Level::Warn,
                "0 (off): only the IO thread giving up confirms a silent master".to_string(),
            ),
            (Some(p), false) => (
                Level::Ok,
                format!(
                    "{p} ms (left as is): silence confirmed after {} ms",
                    silence_ms(p)
                ),
            ),
        };
        out.push(finding("heartbeat period", Some(&r.name), level, detail));
    }
    let (profile, detail) = profile(&live, m, s);
    out.push(finding(
        "safety profile",
        None,
        if profile == Profile::SemiSyncSafe {
            Level::Ok
        } else {
            Level::Warn
        },
        detail,
    ));
    out
}

/// The profile and what it guarantees, in words.
pub fn profile(live: &[&Observed], m: &Observed, s: &Settings) -> (Profile, String) {
    let ttl = Duration::from_millis(s.lease_ttl_ms);
    let bound_ms = u64::try_from(lease_wait(ttl).as_millis()).unwrap_or(u64::MAX);
    let mut gaps = Vec::new();
    if s.lease_ttl_ms == 0 {
        gaps.push("the lease is off (lease_ttl_ms = 0)".to_string());
    }
    if m.on("rpl_semi_sync_master_enabled") != Some(true) {
        gaps.push(format!("{}: rpl_semi_sync_master_enabled is OFF", m.name));
    }
    let wait_point = m.var("rpl_semi_sync_master_wait_point").unwrap_or("");
    if !wait_point.eq_ignore_ascii_case("AFTER_SYNC") {
        gaps.push(format!(
            "{}: rpl_semi_sync_master_wait_point is {wait_point:?}, not AFTER_SYNC",
            m.name
        ));
    }
    let timeout_ms: Option<u64> = m
        .var("rpl_semi_sync_master_timeout")
        .and_then(|v| v.parse().ok());
    match timeout_ms {
        Some(t) if t > bound_ms => {}
        other => gaps.push(format!(
            "{}: rpl_semi_sync_master_timeout = {} ms is not above the lease bound ({bound_ms} \
             ms)",
            m.name,
            other.map_or("?".into(), |t| t.to_string())
        )),
    }
    for r in live.iter().filter(|o| o.name != m.name && o.can_be_master) {
        if r.on("rpl_semi_sync_slave_enabled") != Some(true) {
            gaps.push(format!("{}: rpl_semi_sync_slave_enabled is OFF", r.name));
        }
        if r.on("rpl_semi_sync_master_enabled") != Some(true) {
            gaps.push(format!(
                "{}: rpl_semi_sync_master_enabled is OFF (after its promotion writes go async)",
                r.name
            ));
        }
    }
    if gaps.is_empty() {
        let t = timeout_ms.unwrap_or(0);
        return (
            Profile::SemiSyncSafe,
            format!(
                "semi-sync (AFTER_SYNC, timeout {t} ms > lease bound {bound_ms} ms): every write \
                 the master acknowledged is on a replica first, so a failover loses none; an old \
                 master cut off or frozen cannot acknowledge a new write before its lease lapsed \
                 and its agent fenced it. Not covered: a commit already waiting for its \
                 acknowledgement when the host froze, if the freeze outlasts {t} ms (MariaDB then \
                 falls back to async at resume)"
            ),
        );
    }
    (
        Profile::Async,
        format!(
            "asynchronous in effect ({}): writes the master acknowledged but no replica received \
             are lost at failover (up to the replication lag); a cut-off old master keeps taking \
             writes until its lease lapses ({bound_ms} ms after the managers' last renewal), and \
             a frozen one that resumes may acknowledge queued writes for a few ms before its \
             agent fences it",
            gaps.join("; ")
        ),
    )
}

#[cfg(test)]
#[path = "profile_tests.rs"]
mod tests;
