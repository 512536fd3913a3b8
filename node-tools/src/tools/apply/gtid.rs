//! MariaDB GTID positions (`@@gtid_slave_pos`, `@@gtid_binlog_pos`): one GTID per domain.

use std::collections::BTreeMap;

use crate::binlog::events::MariaGtid;

/// The last GTID per replication domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GtidPos(pub BTreeMap<u32, MariaGtid>);

impl GtidPos {
    /// Parses `0-1-10,1-2-5` (empty string = empty position).
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let g: MariaGtid = part.parse()?;
            if map.insert(g.domain, g).is_some() {
                return Err(format!(
                    "GTID position {s:?} names domain {} twice",
                    g.domain
                ));
            }
        }
        Ok(GtidPos(map))
    }

    /// Keeps, per domain, the GTID with the higher sequence number.
    pub fn raise(&mut self, g: MariaGtid) {
        match self.0.get(&g.domain) {
            Some(have) if have.seq >= g.seq => {}
            _ => {
                self.0.insert(g.domain, g);
            }
        }
    }

    pub fn merged(&self, other: &GtidPos) -> GtidPos {
        let mut out = self.clone();
        for g in other.0.values() {
            out.raise(*g);
        }
        out
    }

    /// Whether the group `g` is already covered (its sequence number is not above ours).
    pub fn covers(&self, g: &MariaGtid) -> bool {
        self.0.get(&g.domain).is_some_and(|have| have.seq >= g.seq)
    }
}

impl std::fmt::Display for GtidPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.values().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_merge_and_cover() {
        let a = GtidPos::parse("0-1-10,1-2-5").unwrap();
        let b = GtidPos::parse("0-3-12").unwrap();
        let m = a.merged(&b);
        assert_eq!(m.to_string(), "0-3-12,1-2-5");
        assert!(m.covers(&"0-1-12".parse().unwrap()));
        assert!(!m.covers(&"0-1-13".parse().unwrap()));
        assert!(!m.covers(&"2-1-1".parse().unwrap()));
        assert_eq!(GtidPos::parse("").unwrap(), GtidPos::default());
        assert!(GtidPos::parse("0-1-1,0-1-2").is_err());
    }
}
