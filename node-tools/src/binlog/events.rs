//! Decoders for the few event bodies the node tools need. `body` is the event without its
//! 19-byte header and without its CRC trailer. Every decoder returns `None` on short input.

use std::fmt;

use super::header::le_uint;

/// A MariaDB GTID `domain-server-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct MariaGtid {
    pub domain: u32,
    pub server_id: u32,
    pub seq: u64,
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server_id, self.seq)
    }
}

impl std::str::FromStr for MariaGtid {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut it = s.trim().split('-');
        let mut next = |what: &str| {
            it.next()
                .ok_or_else(|| format!("GTID {s:?}: missing {what}"))
                .and_then(|p| {
                    p.parse::<u64>()
                        .map_err(|e| format!("GTID {s:?}: {what}: {e}"))
                })
        };
        let domain = u32::try_from(next("domain")?).map_err(|e| e.to_string())?;
        let server_id = u32::try_from(next("server_id")?).map_err(|e| e.to_string())?;
        let seq = next("seq_no")?;
        Ok(MariaGtid {
            domain,
            server_id,
            seq,
        })
    }
}

/// MariaDB GTID_EVENT flags2 bits.
pub mod gtid_flags {
    pub const STANDALONE: u8 = 1;
    pub const PREPARED_XA: u8 = 64;
    pub const COMPLETED_XA: u8 = 128;
}

/// MariaDB GTID_EVENT (162): starts an event group. The server id comes from the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MariaGtidEvent {
    pub seq: u64,
    pub domain: u32,
    pub flags2: u8,
}

impl MariaGtidEvent {
    pub fn parse(body: &[u8]) -> Option<Self> {
        Some(MariaGtidEvent {
            seq: le_uint::<8>(body, 0)?,
            domain: le_uint::<4>(body, 8)? as u32,
            flags2: *body.get(12)?,
        })
    }

    pub fn gtid(&self, server_id: u32) -> MariaGtid {
        MariaGtid {
            domain: self.domain,
            server_id,
            seq: self.seq,
        }
    }

    /// A standalone group (DDL, non-transactional statement) has no terminating COMMIT/XID.
    pub fn standalone(&self) -> bool {
        self.flags2 & gtid_flags::STANDALONE != 0
    }
}

/// MariaDB GTID_LIST (163): the binlog state at the start of a file, or an artificial jump.
pub fn parse_gtid_list(body: &[u8]) -> Option<Vec<MariaGtid>> {
    let count = (le_uint::<4>(body, 0)? as u32 & 0x0fff_ffff) as usize;
    // Each entry is 16 bytes; refuse counts the body cannot hold before allocating.
    if count > body.len().saturating_sub(4) / 16 {
        return None;
    }
    (0..count)
        .map(|i| {
            let at = 4 + 16 * i;
            Some(MariaGtid {
                domain: le_uint::<4>(body, at)? as u32,
                server_id: le_uint::<4>(body, at + 4)? as u32,
                seq: le_uint::<8>(body, at + 8)?,
            })
        })
        .collect()
}

/// ROTATE (4): the position and name of the next binlog file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotate {
    pub position: u64,
    pub next_file: String,
}

impl Rotate {
    pub fn parse(body: &[u8]) -> Option<Self> {
        Some(Rotate {
            position: le_uint::<8>(body, 0)?,
            next_file: String::from_utf8_lossy(body.get(8..)?).into_owned(),
        })
    }
}

/// The query text of a QUERY (2) event, if present in `body` (it may be a prefix of a huge
/// event; callers only compare short texts like `COMMIT`).
pub fn query_text(body: &[u8]) -> Option<&[u8]> {
    let db_len = *body.get(8)? as usize;
    let status_len = le_uint::<2>(body, 11)? as usize;
    let start = 13usize.checked_add(status_len)?.checked_add(db_len)? + 1;
    body.get(start..)
}

/// The database of a QUERY event (for `dump`).
pub fn query_db(body: &[u8]) -> Option<&[u8]> {
    let db_len = *body.get(8)? as usize;
    let status_len = le_uint::<2>(body, 11)? as usize;
    let start = 13usize.checked_add(status_len)?;
    body.get(start..start.checked_add(db_len)?)
}

/// MySQL GTID_LOG / ANONYMOUS_GTID (33/34): `uuid:gno` text form.
pub fn mysql_gtid(body: &[u8]) -> Option<String> {
    let sid: [u8; 16] = body.get(1..17)?.try_into().ok()?;
    let gno = le_uint::<8>(body, 17)?;
    Some(format!("{}:{gno}", super::tagged::uuid_text(&sid)))
}

/// The GTID of any MySQL GTID event: `uuid:gno` (33, 34) or `uuid:tag:gno` (42, MySQL 8.4+).
pub fn mysql_gtid_of(type_code: u8, body: &[u8]) -> Option<String> {
    match type_code {
        super::header::types::GTID_TAGGED => super::tagged::parse(body).ok().map(|g| g.to_string()),
        _ => mysql_gtid(body),
    }
}

/// Case-insensitive check that `text` is exactly `word` (ignoring surrounding whitespace).
pub fn query_is(text: &[u8], word: &str) -> bool {
    text.trim_ascii().eq_ignore_ascii_case(word.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_text_round_trips() {
        let g: MariaGtid = "0-1-42".parse().unwrap();
        assert_eq!(g.to_string(), "0-1-42");
        assert!("0-1".parse::<MariaGtid>().is_err());
        assert!("a-b-c".parse::<MariaGtid>().is_err());
    }

    #[test]
    fn gtid_list_refuses_impossible_counts() {
        let mut body = vec![0xff, 0xff, 0xff, 0x0f];
        body.extend_from_slice(&[0u8; 16]);
        assert_eq!(parse_gtid_list(&body), None);
        let mut one = vec![1, 0, 0, 0];
        one.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            parse_gtid_list(&one),
            Some(vec![MariaGtid {
                domain: 0,
                server_id: 1,
                seq: 9
            }])
        );
    }
}
