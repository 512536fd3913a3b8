//! Content checks of event bodies: what the lengths inside an event declare must fit in the
//! event. Files written before checksums (MySQL < 5.6, MariaDB < 5.3) have nothing else to
//! catch a damaged event, and a decoder that trusted them would read garbage as `db=''`.
//!
//! Rules, from the servers' documented formats:
//! - every event is at least as long as the post-header length its FDE declares for its type;
//! - QUERY (and MariaDB's QUERY_COMPRESSED): post-header, then `status_vars_len` bytes of
//!   status variables, the `db_len`-byte database name, a NUL, the query;
//! - INCIDENT: a known incident number (only 1, LOST_EVENTS, exists) and a message that fits;
//! - USER_VAR: the name fits; XID: an 8-byte id; GTID_LIST: `count` 16-byte entries fit;
//!   MariaDB GTID: seq(8) domain(4) flags(1); MySQL GTID: flags(1) uuid(16) gno(8);
//!   GTID_TAGGED: a well-formed serialized message.

use super::fde::FormatDescription;
use super::header::{le_uint, types};

/// The incident numbers the servers define (`INCIDENT_LOST_EVENTS`).
const INCIDENT_LOST_EVENTS: u64 = 1;

/// Checks one event body. `body` is the body without header and trailer, or its first bytes
/// when the event is larger than the walker's buffer; `body_len` is the full body length.
#[inline]
pub fn check(
    fde: &FormatDescription,
    type_code: u8,
    body: &[u8],
    body_len: u64,
) -> Result<(), String> {
    let whole = body.len() as u64 == body_len;
    if type_code != types::FORMAT_DESCRIPTION
        && let Some(need) = fde.post_header(type_code)
        && body_len < need as u64
    {
        return Err(format!(
            "{body_len}-byte body is shorter than the {need}-byte post-header its \
             FORMAT_DESCRIPTION declares"
        ));
    }
    let need = |n: u64, what: &str| {
        if body_len < n {
            Err(format!(
                "{body_len}-byte body cannot hold {what} ({n} bytes)"
            ))
        } else {
            Ok(())
        }
    };
    match type_code {
        types::QUERY | types::QUERY_COMPRESSED => {
            let post = fde.post_header(type_code).unwrap_or(13).max(13);
            need(post as u64, "the query post-header")?;
            let db_len = body.get(8).map_or(0, |b| u64::from(*b));
            let status_len = le_uint::<2>(body, 11).unwrap_or(0);
            let end = post as u64 + status_len + db_len + 1;
            if end > body_len {
                return Err(format!(
                    "status variables ({status_len} bytes) and database name ({db_len} bytes) \
                     exceed the {body_len}-byte body"
                ));
            }
            if let Some(nul) = body.get(end as usize - 1)
                && *nul != 0
            {
                return Err(format!(
                    "the {db_len}-byte database name is not followed by a NUL"
                ));
            }
        }
        types::INCIDENT => {
            need(2, "the incident number")?;
            let number = le_uint::<2>(body, 0).unwrap_or(0);
            if number != INCIDENT_LOST_EVENTS {
                return Err(format!("unknown incident number {number}"));
            }
            if let Some(len) = body.get(2) {
                need(3 + u64::from(*len), "the incident message")?;
            }
        }
        types::USER_VAR => {
            need(4, "the name length")?;
            let name_len = le_uint::<4>(body, 0).unwrap_or(0);
            need(4 + name_len, "the variable name")?;
        }
        types::XID => need(8, "the transaction id")?,
        types::ROTATE => need(8, "the position")?,
        types::MARIADB_GTID => need(13, "sequence number, domain and flags")?,
        types::MYSQL_GTID | types::ANONYMOUS_GTID => need(25, "flags, uuid and gno")?,
        types::GTID_LIST | types::BINLOG_CHECKPOINT => {
            need(4, "the count")?;
            if type_code == types::GTID_LIST {
                let count = le_uint::<4>(body, 0).unwrap_or(0) & 0x0fff_ffff;
                need(4 + 16 * count, &format!("{count} GTIDs"))?;
            } else {
                let len = le_uint::<4>(body, 0).unwrap_or(0);
                need(4 + len, "the file name")?;
            }
        }
        types::GTID_TAGGED if whole => {
            super::tagged::parse(body)?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::fde::Flavour;

    fn fde() -> FormatDescription {
        let mut post = vec![0u8; 171];
        post[usize::from(types::QUERY) - 1] = 13;
        post[usize::from(types::ROTATE) - 1] = 8;
        post[usize::from(types::INCIDENT) - 1] = 2;
        FormatDescription {
            binlog_version: 4,
            server_version: "10.11.19-MariaDB-log".into(),
            create_timestamp: 0,
            flavour: Flavour::MariaDb,
            checksum_aware: true,
            alg: 1,
            checksum: true,
            header_len: 19,
            post_header_len: post,
        }
    }

    fn query(db_len: u8, status_len: u16, rest: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 8];
        b.push(db_len);
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&status_len.to_le_bytes());
        b.extend_from_slice(rest);
        b
    }

    #[test]
    fn query_lengths_must_fit() {
        let f = fde();
        let ok = query(1, 0, b"d\0COMMIT");
        assert_eq!(check(&f, types::QUERY, &ok, ok.len() as u64), Ok(()));
        let long_db = query(200, 0, b"d\0COMMIT");
        let e = check(&f, types::QUERY, &long_db, long_db.len() as u64).unwrap_err();
        assert!(e.contains("database name (200 bytes)"), "{e}");
        let long_status = query(1, 900, b"d\0COMMIT");
        assert!(check(&f, types::QUERY, &long_status, long_status.len() as u64).is_err());
        let no_nul = query(1, 0, b"dxCOMMIT");
        assert!(check(&f, types::QUERY, &no_nul, no_nul.len() as u64).is_err());
        assert!(check(&f, types::QUERY, &ok[..10], 10).is_err());
    }

    #[test]
    fn incidents_need_a_known_number() {
        let f = fde();
        let lost = [1, 0, 4, b'l', b'o', b's', b't'];
        assert_eq!(check(&f, types::INCIDENT, &lost, 7), Ok(()));
        let unknown = [2, 0, 0];
        let e = check(&f, types::INCIDENT, &unknown, 3).unwrap_err();
        assert!(e.contains("unknown incident number 2"), "{e}");
        let cut = [1, 0, 9, b'x'];
        assert!(check(&f, types::INCIDENT, &cut, 4).is_err());
    }

    #[test]
    fn declared_post_header_lengths_are_minimums() {
        let f = fde();
        assert!(check(&f, types::ROTATE, &[0; 7], 7).is_err());
        assert_eq!(check(&f, types::ROTATE, &[0; 9], 9), Ok(()));
        // A GTID_LIST that claims more entries than it holds.
        let list = [3, 0, 0, 0, 0, 0, 0, 0];
        assert!(check(&f, types::GTID_LIST, &list, 8).is_err());
    }
}
