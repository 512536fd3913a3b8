//! FORMAT_DESCRIPTION_EVENT: server flavour and version, and the checksum rule it sets.
//!
//! The checksum algorithm in force for an event is the one announced by the most recent FDE
//! in the stream, whichever server wrote it (a relay log switches when the master's FDE is
//! copied in). The FDE of a checksum-aware server (MySQL ≥ 5.6.1, MariaDB ≥ 5.3) always ends
//! with `alg(1) + crc(4)`, even when `alg` is OFF.

use super::header::{HEADER_LEN, Header};

/// Which server family wrote a stream; decides how GTIDs and groups are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Flavour {
    MariaDb,
    MySql,
}

/// Checksum algorithm byte values (`enum_binlog_checksum_alg`).
pub const ALG_OFF: u8 = 0;
pub const ALG_CRC32: u8 = 1;
/// "Undefined": written by some relay-log FDEs; no checksums follow, as with OFF.
pub const ALG_UNDEF: u8 = 255;

/// Body bytes before the post-header length array: binlog version (2), server version (50),
/// create timestamp (4), common header length (1).
const FIXED_BODY: usize = 57;

/// What a FORMAT_DESCRIPTION_EVENT tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatDescription {
    pub binlog_version: u16,
    pub server_version: String,
    /// Non-zero only in the first binlog after a server start: `mysqlbinlog` then emits ROLLBACK.
    pub create_timestamp: u32,
    pub flavour: Flavour,
    /// True when the server writes `alg + crc` at the end of its FDE.
    pub checksum_aware: bool,
    /// The checksum algorithm byte (`ALG_OFF` for servers that predate checksums).
    pub alg: u8,
    /// Whether events after this FDE carry a CRC32 trailer.
    pub checksum: bool,
    /// Common header length of the events after this FDE (19 for every v4 server so far;
    /// bytes past the 19 we decode are skipped, as the servers do).
    pub header_len: u8,
    /// Post-header length of each event type (`[type - 1]`), as this server declares them.
    pub post_header_len: Vec<u8>,
}

/// Why an FDE could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FdeError {
    #[error("FORMAT_DESCRIPTION event too short ({0} bytes)")]
    TooShort(usize),
    #[error("unsupported binlog version {0} (only v4 is supported)")]
    Version(u16),
    #[error("unknown checksum algorithm {0}")]
    Algorithm(u8),
    #[error("common header length {0} is shorter than the 19 bytes of v4")]
    HeaderLen(u8),
    /// Servers decide from the version whether the FDE ends with a checksum: a version that
    /// does not parse would silently turn checksums off for the whole file.
    #[error("server version {0:?} is not a version number")]
    ServerVersion(String),
}

impl FormatDescription {
    /// Decodes a whole FDE (`event` includes the 19-byte common header and the trailer).
    pub fn parse(event: &[u8]) -> Result<Self, FdeError> {
        const FIXED: usize = HEADER_LEN + FIXED_BODY;
        if event.len() < HEADER_LEN + 2 {
            return Err(FdeError::TooShort(event.len()));
        }
        let body = &event[HEADER_LEN..];
        let binlog_version = u16::from_le_bytes([body[0], body[1]]);
        if binlog_version != 4 {
            return Err(FdeError::Version(binlog_version));
        }
        if event.len() < FIXED {
            return Err(FdeError::TooShort(event.len()));
        }
        let raw_version = &body[2..52];
        let end = raw_version.iter().position(|b| *b == 0).unwrap_or(50);
        let server_version = String::from_utf8_lossy(&raw_version[..end]).into_owned();
        let create_timestamp = u32::from_le_bytes([body[52], body[53], body[54], body[55]]);
        let header_len = body[56];
        if usize::from(header_len) < HEADER_LEN {
            return Err(FdeError::HeaderLen(header_len));
        }
        if parse_version(&server_version).is_none() {
            return Err(FdeError::ServerVersion(server_version));
        }
        let flavour = if server_version.contains("MariaDB") {
            Flavour::MariaDb
        } else {
            Flavour::MySql
        };
        let checksum_aware = version_is_checksum_aware(&server_version, flavour);
        // A checksum-aware server always ends its FDE with `alg(1) + crc(4)`, whatever `alg`
        // says (the 4 bytes are there even when alg is OFF; readers verify them only when it
        // is not).
        let (alg, array_end) = if checksum_aware {
            if event.len() < FIXED + 5 {
                return Err(FdeError::TooShort(event.len()));
            }
            (event[event.len() - 5], event.len() - 5)
        } else {
            (ALG_OFF, event.len())
        };
        let checksum = match alg {
            ALG_OFF | ALG_UNDEF => false,
            ALG_CRC32 => true,
            other => return Err(FdeError::Algorithm(other)),
        };
        Ok(FormatDescription {
            binlog_version,
            server_version,
            create_timestamp,
            flavour,
            checksum_aware,
            alg,
            checksum,
            header_len,
            post_header_len: event[FIXED..array_end].to_vec(),
        })
    }

    /// Whether the FDE's own trailer is to be verified: servers check it only when the FDE
    /// announces an algorithm (MySQL and MariaDB skip it when `alg` is OFF or undefined).
    pub fn own_crc_verified(&self) -> bool {
        self.checksum_aware && self.alg == ALG_CRC32
    }

    /// The declared post-header length of `type_code`, if this server declares one.
    pub fn post_header(&self, type_code: u8) -> Option<usize> {
        let i = usize::from(type_code).checked_sub(1)?;
        self.post_header_len.get(i).map(|n| usize::from(*n))
    }
}

/// The leading `major.minor.patch` of a version string; Debian's
/// `10.11.19-MariaDB-0+deb12u1-log` has more numbers after the dash, which we ignore.
pub fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let head = v
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    let mut it = head.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

fn version_is_checksum_aware(v: &str, flavour: Flavour) -> bool {
    // MariaDB 10+ started at 10.0 (after 5.5); the 5.x MariaDB releases ≥ 5.3 are aware too.
    let min = match flavour {
        Flavour::MariaDb => (5, 3, 0),
        Flavour::MySql => (5, 6, 1),
    };
    parse_version(v).is_some_and(|got| got >= min)
}

/// CRC32 of an event as the server computes it: over header+body, with the FDE's IN_USE bit
/// cleared (the server computes the FDE's CRC before setting that bit).
pub fn event_crc(event_without_crc: &[u8], header: &Header) -> u32 {
    if header.type_code == super::header::types::FORMAT_DESCRIPTION
        && header.flags & super::header::flags::BINLOG_IN_USE != 0
        && event_without_crc.len() >= HEADER_LEN
    {
        let mut h = crc32fast::Hasher::new();
        let mut head = [0u8; HEADER_LEN];
        head.copy_from_slice(&event_without_crc[..HEADER_LEN]);
        head[17] &= !(super::header::flags::BINLOG_IN_USE as u8);
        h.update(&head);
        h.update(&event_without_crc[HEADER_LEN..]);
        h.finalize()
    } else {
        crc32fast::hash(event_without_crc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian_version_strings() {
        assert_eq!(
            parse_version("10.11.19-MariaDB-0+deb12u1-log"),
            Some((10, 11, 19))
        );
        assert_eq!(parse_version("8.0.36"), Some((8, 0, 36)));
        assert_eq!(parse_version("5.6"), Some((5, 6, 0)));
        assert_eq!(parse_version("garbage"), None);
    }
}
