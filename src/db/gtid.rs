//! Typed GTID sets for both flavors.
//!
//! - MySQL: `uuid:1-5:7-9,uuid2:1-3` interval sets (MySQL 8.3+ may add tags:
//!   `uuid:tag:1-3`). Printed with newlines after the commas; we accept any whitespace.
//! - MariaDB: a GTID *position* `domain-server-seq,...` with one entry per replication
//!   domain: everything up to `seq` in that domain is included. Sequence numbers grow
//!   monotonically inside a domain whichever server wrote them, so containment is a
//!   per-domain comparison.
//!
//! The set algebra (union, difference, containment, partial order) is what the failover
//! needs to find the most advanced replica and errant transactions.
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GtidParseError {
    #[error("bad MySQL GTID set element {0:?}: expected UUID[:TAG]:N[-M][:...]")]
    MySqlElement(String),
    #[error("bad MariaDB GTID {0:?}: expected DOMAIN-SERVER-SEQ")]
    MariaDbElement(String),
    #[error("MariaDB GTID position lists domain {0} twice")]
    DuplicateDomain(u32),
}

/// MySQL: a source (server UUID, plus a tag on 8.3+) and its inclusive intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MySqlGtidSet {
    /// Key: lower-case `uuid` or `uuid:tag`. Intervals sorted, disjoint, non-adjacent.
    sources: BTreeMap<String, Vec<(u64, u64)>>,
}

impl MySqlGtidSet {
    pub fn parse(text: &str) -> Result<Self, GtidParseError> {
        let mut set = MySqlGtidSet::default();
        for element in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || GtidParseError::MySqlElement(element.to_string());
            let mut parts = element.split(':').map(str::trim);
            let uuid = parts.next().ok_or_else(bad)?.to_ascii_lowercase();
            if !is_uuid(&uuid) {
                return Err(bad());
            }
            let mut key = uuid.clone();
            let mut saw_interval = false;
            for part in parts {
                if part.starts_with(|c: char| c.is_ascii_digit()) {
                    let (start, end) = parse_interval(part).ok_or_else(bad)?;
                    set.insert_interval(&key, start, end);
                    saw_interval = true;
                } else if is_tag(part) {
                    key = format!("{uuid}:{}", part.to_ascii_lowercase());
                } else {
                    return Err(bad());
                }
            }
            if !saw_interval {
                return Err(bad());
            }
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Number of transactions in the set (saturating).
    pub fn count(&self) -> u64 {
        self.sources
            .values()
            .flatten()
            .fold(0u64, |acc, (s, e)| acc.saturating_add(e - s + 1))
    }

    /// Sources (`uuid` or `uuid:tag`) present in the set.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    pub fn contains_gtid(&self, source: &str, n: u64) -> bool {
        self.sources
            .get(&source.to_ascii_lowercase())
            .is_some_and(|ivs| ivs.iter().any(|&(s, e)| s <= n && n <= e))
    }

    /// Adds `[start, end]` to `source`, keeping the intervals normalized.
    pub fn insert_interval(&mut self, source: &str, start: u64, end: u64) {
        if start > end {
            return;
        }
        let ivs = self.sources.entry(source.to_ascii_lowercase()).or_default();
        ivs.push((start, end));
        ivs.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ivs.len());
        for &(s, e) in ivs.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *ivs = merged;
    }

    pub fn union(&self, other: &Self) -> Self {
        let mut out = self.clone();
        for (source, ivs) in &other.sources {
            for &(s, e) in ivs {
                out.insert_interval(source, s, e);
            }
        }
        out
    }

    /// `self − other`: what `self` has that `other` lacks (MySQL's `GTID_SUBTRACT`).
    pub fn difference(&self, other: &Self) -> Self {
        let mut out = MySqlGtidSet::default();
        for (source, ivs) in &self.sources {
            let holes = other.sources.get(source).map(Vec::as_slice).unwrap_or(&[]);
            for &(s, e) in ivs {
                // Walk the holes left to right; `cursor` is the first number not yet decided.
                let mut cursor = Some(s);
                for &(hs, he) in holes {
                    let Some(c) = cursor else { break };
                    if he < c || hs > e {
                        continue;
                    }
                    if hs > c {
                        out.insert_interval(source, c, hs - 1);
                    }
                    cursor = he.checked_add(1).filter(|&next| next <= e);
                }
                if let Some(c) = cursor {
                    out.insert_interval(source, c, e);
                }
            }
        }
        out
    }

    /// The part of the set whose source (`uuid` or `uuid:tag`) satisfies `keep`.
    pub fn filter_sources(&self, keep: impl Fn(&str) -> bool) -> Self {
        MySqlGtidSet {
            sources: self
                .sources
                .iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// `self ⊇ other` (MySQL's `GTID_SUBSET(other, self)`).
    pub fn contains(&self, other: &Self) -> bool {
        other.difference(self).is_empty()
    }
}

impl fmt::Display for MySqlGtidSet {
    /// MySQL's own form, on one line: `uuid:1-5:7,uuid2:1-3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (source, ivs) in &self.sources {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(source)?;
            for &(s, e) in ivs {
                if s == e {
                    write!(f, ":{s}")?;
                } else {
                    write!(f, ":{s}-{e}")?;
                }
            }
        }
        Ok(())
    }
}

fn parse_interval(part: &str) -> Option<(u64, u64)> {
    let (start, end) = match part.split_once('-') {
        Some((s, e)) => (s.parse().ok()?, e.parse().ok()?),
        None => {
            let n = part.parse().ok()?;
            (n, n)
        }
    };
    // GTID numbers start at 1; MySQL rejects 0 and reversed intervals.
    (start >= 1 && start <= end).then_some((start, end))
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One MariaDB GTID: `domain-server-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MariaGtid {
    pub domain: u32,
    pub server_id: u32,
    pub seq: u64,
}

/// A MariaDB GTID position (`gtid_slave_pos`, `gtid_binlog_pos`, `Gtid_IO_Pos`, ...):
/// at most one GTID per domain, meaning "everything in this domain up to seq".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MariaGtidPos {
    domains: BTreeMap<u32, MariaGtid>,
}

impl MariaGtidPos {
    pub fn parse(text: &str) -> Result<Self, GtidParseError> {
        let mut pos = MariaGtidPos::default();
        for element in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || GtidParseError::MariaDbElement(element.to_string());
            let mut it = element.split('-');
            let (Some(d), Some(s), Some(q), None) = (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(bad());
            };
            let gtid = MariaGtid {
                domain: d.trim().parse().map_err(|_| bad())?,
                server_id: s.trim().parse().map_err(|_| bad())?,
                seq: q.trim().parse().map_err(|_| bad())?,
            };
            if pos.domains.insert(gtid.domain, gtid).is_some() {
                return Err(GtidParseError::DuplicateDomain(gtid.domain));
            }
        }
        Ok(pos)
    }

    pub fn from_gtids(gtids: impl IntoIterator<Item = MariaGtid>) -> Self {
        let mut pos = MariaGtidPos::default();
        for g in gtids {
            pos.advance(g);
        }
        pos
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    pub fn get(&self, domain: u32) -> Option<MariaGtid> {
        self.domains.get(&domain).copied()
    }

    pub fn gtids(&self) -> impl Iterator<Item = MariaGtid> + '_ {
        self.domains.values().copied()
    }

    /// Moves the domain of `g` forward to `g` (never backwards).
    pub fn advance(&mut self, g: MariaGtid) {
        match self.domains.get(&g.domain) {
            Some(cur) if cur.seq >= g.seq => {}
            _ => {
                self.domains.insert(g.domain, g);
            }
        }
    }

    /// Per-domain maximum.
    pub fn union(&self, other: &Self) -> Self {
        let mut out = self.clone();
        for g in other.gtids() {
            out.advance(g);
        }
        out
    }

    /// The domains where `self` has transactions `other` lacks, each with the last GTID of
    /// `self` and the sequence number `other` stopped at (0 when `other` lacks the domain).
    /// The same sequence number written by different servers is two different transactions
    /// (a replica's local write racing the master's): that counts as a gap of one.
    pub fn difference(&self, other: &Self) -> Vec<MariaGap> {
        self.gtids()
            .filter_map(|g| match other.get(g.domain) {
                None => Some(MariaGap {
                    last: g,
                    other_seq: 0,
                }),
                Some(o) if g.seq > o.seq => Some(MariaGap {
                    last: g,
                    other_seq: o.seq,
                }),
                Some(o) if g.seq == o.seq && g.server_id != o.server_id => Some(MariaGap {
                    last: g,
                    other_seq: g.seq.saturating_sub(1),
                }),
                Some(_) => None,
            })
            .collect()
    }

    /// `self ⊇ other`: every domain of `other` is at or below `self`'s position.
    pub fn contains(&self, other: &Self) -> bool {
        other.difference(self).is_empty()
    }
}

/// What one position has beyond another in one domain: seqs `other_seq+1 ..= last.seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MariaGap {
    pub last: MariaGtid,
    pub other_seq: u64,
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server_id, self.seq)
    }
}

impl fmt::Display for MariaGtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.gtids().map(|g| g.to_string()).collect();
        f.write_str(&parts.join(","))
    }
}

/// Either flavor's GTID state, so callers can compare servers without caring which.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GtidSet {
    MySql(MySqlGtidSet),
    MariaDb(MariaGtidPos),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot compare a MySQL GTID set with a MariaDB GTID position")]
pub struct FlavorMismatch;

impl GtidSet {
    pub fn is_empty(&self) -> bool {
        match self {
            GtidSet::MySql(s) => s.is_empty(),
            GtidSet::MariaDb(p) => p.is_empty(),
        }
    }

    pub fn union(&self, other: &Self) -> Result<Self, FlavorMismatch> {
        match (self, other) {
            (GtidSet::MySql(a), GtidSet::MySql(b)) => Ok(GtidSet::MySql(a.union(b))),
            (GtidSet::MariaDb(a), GtidSet::MariaDb(b)) => Ok(GtidSet::MariaDb(a.union(b))),
            _ => Err(FlavorMismatch),
        }
    }

    pub fn contains(&self, other: &Self) -> Result<bool, FlavorMismatch> {
        match (self, other) {
            (GtidSet::MySql(a), GtidSet::MySql(b)) => Ok(a.contains(b)),
            (GtidSet::MariaDb(a), GtidSet::MariaDb(b)) => Ok(a.contains(b)),
            _ => Err(FlavorMismatch),
        }
    }

    /// The partial order of sets: `None` when each has something the other lacks (diverged).
    pub fn partial_cmp_sets(&self, other: &Self) -> Result<Option<Ordering>, FlavorMismatch> {
        let (ge, le) = (self.contains(other)?, other.contains(self)?);
        Ok(match (ge, le) {
            (true, true) => Some(Ordering::Equal),
            (true, false) => Some(Ordering::Greater),
            (false, true) => Some(Ordering::Less),
            (false, false) => None,
        })
    }
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidSet::MySql(s) => s.fmt(f),
            GtidSet::MariaDb(p) => p.fmt(f),
        }
    }
}

#[cfg(test)]
#[path = "gtid_tests.rs"]
mod tests;
