//! Server flavor and version, parsed from `VERSION()` (plus `@@version_comment` when known)
//! or from the handshake, and the feature questions the dialect layer asks of them.
//!
//! Version strings seen in the wild: `10.11.19-MariaDB-0+deb12u1-log` (Debian: six numbers),
//! `5.5.5-10.11.6-MariaDB` (the handshake of MariaDB 10.x, which pretends to be 5.5.5),
//! `11.4.2-MariaDB`, `8.0.36-28` (Percona Server), `8.4.0`, `5.7.44-log`, `8.0.36-0ubuntu0.22.04.1`.
//! Only the first three numbers of the real version matter; everything after is a vendor tail.
use std::fmt;

use serde::{Deserialize, Serialize};

/// Which server family: it decides the SQL dialect and the GTID format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Flavor {
    MariaDb,
    /// Oracle MySQL and its compatible builds (Percona Server, distro builds).
    MySql,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerVersion {
    pub flavor: Flavor,
    pub major: u16,
    pub minor: u16,
    pub patch: u16,
    /// Percona Server (seen in `@@version_comment` or the version string).
    pub percona: bool,
    /// The string as the server reported it, for logs and reports.
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse server version {0:?}: expected it to start with MAJOR.MINOR")]
pub struct VersionParseError(pub String);

/// The handshake prefix MariaDB 10.x+ sends so that old clients accept it.
const MARIADB_HANDSHAKE_PREFIX: &str = "5.5.5-";

impl ServerVersion {
    /// Parses `VERSION()` (or the handshake string). `comment` is `@@version_comment` when
    /// known; it is how Percona Server and some MariaDB builds say who they are.
    pub fn parse(version: &str, comment: Option<&str>) -> Result<Self, VersionParseError> {
        let trimmed = version.trim();
        let lower = trimmed.to_ascii_lowercase();
        let comment_lower = comment.unwrap_or("").to_ascii_lowercase();
        let mariadb = lower.contains("mariadb") || comment_lower.contains("mariadb");
        let percona = lower.contains("percona") || comment_lower.contains("percona");
        let body = match trimmed.strip_prefix(MARIADB_HANDSHAKE_PREFIX) {
            Some(rest) if mariadb && rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
            _ => trimmed,
        };
        let numbers = leading_numbers(body);
        let (major, minor) = match (numbers.first(), numbers.get(1)) {
            (Some(&major), Some(&minor)) => (major, minor),
            _ => return Err(VersionParseError(version.to_string())),
        };
        Ok(ServerVersion {
            flavor: if mariadb {
                Flavor::MariaDb
            } else {
                Flavor::MySql
            },
            major,
            minor,
            patch: numbers.get(2).copied().unwrap_or(0),
            percona: percona && !mariadb,
            raw: trimmed.to_string(),
        })
    }

    /// A version for tests and for servers we have not asked yet.
    pub fn new(flavor: Flavor, major: u16, minor: u16, patch: u16) -> Self {
        let raw = match flavor {
            Flavor::MariaDb => format!("{major}.{minor}.{patch}-MariaDB"),
            Flavor::MySql => format!("{major}.{minor}.{patch}"),
        };
        ServerVersion {
            flavor,
            major,
            minor,
            patch,
            percona: false,
            raw,
        }
    }

    pub fn is_mariadb(&self) -> bool {
        self.flavor == Flavor::MariaDb
    }

    fn mysql_at_least(&self, major: u16, minor: u16, patch: u16) -> bool {
        self.flavor == Flavor::MySql && self.at_least(major, minor, patch)
    }

    pub fn at_least(&self, major: u16, minor: u16, patch: u16) -> bool {
        (self.major, self.minor, self.patch) >= (major, minor, patch)
    }

    /// MHA's "major version" (`5.6`, `10.11`) used to refuse promoting a newer-major replica
    /// over older ones (replication must stay downgrade-safe).
    pub fn major_minor(&self) -> (u16, u16) {
        (self.major, self.minor)
    }

    /// MySQL 8.0.22 added `SHOW REPLICA STATUS` / `START REPLICA` and 8.4 removed the SLAVE
    /// forms. MariaDB keeps the SLAVE forms in every version, so we use them there.
    pub fn uses_replica_keyword(&self) -> bool {
        self.mysql_at_least(8, 0, 22)
    }

    /// `CHANGE REPLICATION SOURCE TO` (MySQL 8.0.23+) instead of `CHANGE MASTER TO`.
    pub fn uses_change_replication_source(&self) -> bool {
        self.mysql_at_least(8, 0, 23)
    }

    /// `SHOW BINARY LOG STATUS` (MySQL 8.2+; `SHOW MASTER STATUS` is gone in 8.4).
    pub fn uses_show_binary_log_status(&self) -> bool {
        self.mysql_at_least(8, 2, 0)
    }

    /// `SOURCE_POS_WAIT` (MySQL 8.0.26+) instead of `MASTER_POS_WAIT`.
    pub fn uses_source_pos_wait(&self) -> bool {
        self.mysql_at_least(8, 0, 26)
    }

    /// MySQL 5.7.8+ has `super_read_only`; MariaDB has none (MHA 0.58 dies asking for it).
    pub fn has_super_read_only(&self) -> bool {
        self.mysql_at_least(5, 7, 8)
    }

    /// MariaDB 10.0+ and MySQL 5.6+ have GTIDs (in different formats).
    pub fn has_gtid(&self) -> bool {
        match self.flavor {
            Flavor::MariaDb => self.at_least(10, 0, 2),
            Flavor::MySql => self.at_least(5, 6, 5),
        }
    }

    /// The semi-sync variable names on this server.
    pub fn semi_sync_names(&self) -> SemiSyncNames {
        if self.mysql_at_least(8, 0, 26) {
            SemiSyncNames {
                source_enabled: "rpl_semi_sync_source_enabled",
                replica_enabled: "rpl_semi_sync_replica_enabled",
                source_status: "Rpl_semi_sync_source_status",
                source_timeout: "rpl_semi_sync_source_timeout",
            }
        } else {
            // MySQL before 8.0.26 (plugins) and MariaDB (built in since 10.3.3).
            SemiSyncNames {
                source_enabled: "rpl_semi_sync_master_enabled",
                replica_enabled: "rpl_semi_sync_slave_enabled",
                source_status: "Rpl_semi_sync_master_status",
                source_timeout: "rpl_semi_sync_master_timeout",
            }
        }
    }

    /// `log_replica_updates` is the MySQL 8.0.26+ name of `log_slave_updates`.
    pub fn log_replica_updates_name(&self) -> &'static str {
        if self.mysql_at_least(8, 0, 26) {
            "log_replica_updates"
        } else {
            "log_slave_updates"
        }
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemiSyncNames {
    pub source_enabled: &'static str,
    pub replica_enabled: &'static str,
    /// A status variable (`SHOW GLOBAL STATUS`), not a system variable.
    pub source_status: &'static str,
    pub source_timeout: &'static str,
}

/// The dot-separated numbers at the start of `s`, stopping at the first other character.
fn leading_numbers(s: &str) -> Vec<u16> {
    let mut numbers = Vec::new();
    for part in s.split('.') {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        let Ok(n) = digits.parse::<u16>() else { break };
        numbers.push(n);
        if digits.len() != part.len() || numbers.len() == 3 {
            break;
        }
    }
    numbers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ServerVersion {
        match ServerVersion::parse(s, None) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn debian_mariadb_string_with_six_numbers() {
        let v = parse("10.11.19-MariaDB-0+deb12u1-log");
        assert_eq!(
            (v.flavor, v.major, v.minor, v.patch),
            (Flavor::MariaDb, 10, 11, 19)
        );
        assert!(!v.has_super_read_only());
        assert!(!v.uses_replica_keyword());
    }

    #[test]
    fn mariadb_handshake_prefix_is_stripped() {
        let v = parse("5.5.5-10.11.6-MariaDB-log");
        assert_eq!(
            (v.flavor, v.major, v.minor, v.patch),
            (Flavor::MariaDb, 10, 11, 6)
        );
        let v = parse("11.4.2-MariaDB");
        assert_eq!((v.major, v.minor, v.patch), (11, 4, 2));
    }

    #[test]
    fn mysql_and_percona_strings() {
        let v = parse("5.7.44-log");
        assert_eq!(
            (v.flavor, v.major, v.minor, v.patch),
            (Flavor::MySql, 5, 7, 44)
        );
        assert!(v.has_super_read_only() && !v.uses_replica_keyword());
        let v = ServerVersion::parse("8.0.36-28", Some("Percona Server (GPL), Release 28"))
            .expect("percona parses");
        assert!(v.percona && v.flavor == Flavor::MySql);
        assert_eq!((v.major, v.minor, v.patch), (8, 0, 36));
        let v = parse("8.0.36-0ubuntu0.22.04.1");
        assert_eq!((v.major, v.minor, v.patch), (8, 0, 36));
    }

    #[test]
    fn mariadb_named_only_in_the_comment() {
        let v = ServerVersion::parse("10.6.12", Some("mariadb.org binary distribution"))
            .expect("parses");
        assert_eq!(v.flavor, Flavor::MariaDb);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in ["", "MariaDB", "x.y.z", "10", "-1.2.3"] {
            assert!(
                ServerVersion::parse(bad, None).is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn feature_questions_follow_the_mysql_release_notes() {
        let v8022 = parse("8.0.22");
        assert!(v8022.uses_replica_keyword() && !v8022.uses_change_replication_source());
        let v8026 = parse("8.0.26");
        assert!(v8026.uses_source_pos_wait());
        assert_eq!(
            v8026.semi_sync_names().source_enabled,
            "rpl_semi_sync_source_enabled"
        );
        assert_eq!(v8026.log_replica_updates_name(), "log_replica_updates");
        let v84 = parse("8.4.0");
        assert!(v84.uses_show_binary_log_status() && v84.uses_change_replication_source());
        let v80 = parse("8.0.36");
        assert!(!v80.uses_show_binary_log_status());
        let maria = parse("10.11.6-MariaDB");
        assert_eq!(
            maria.semi_sync_names().source_enabled,
            "rpl_semi_sync_master_enabled"
        );
        assert!(!maria.uses_source_pos_wait() && maria.has_gtid());
    }
}
