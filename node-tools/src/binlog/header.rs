//! The 19-byte v4 common event header, event type codes and header flags.

/// Length of the v4 common header.
pub const HEADER_LEN: usize = 19;
/// Length of the CRC32 trailer when checksums are on.
pub const CRC_LEN: usize = 4;
/// `\xfebin`: the first four bytes of every binlog and relay log.
pub const MAGIC: [u8; 4] = [0xfe, 0x62, 0x69, 0x6e];
/// MHA refuses events over 1 GiB; so does the server (`max_allowed_packet` ≤ 1 GiB).
pub const MAX_EVENT_SIZE: u32 = 1 << 30;

/// Event type codes we act on (MySQL 0..42, MariaDB 160..172).
pub mod types {
    pub const START_V3: u8 = 1;
    pub const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub const ROTATE: u8 = 4;
    pub const INTVAR: u8 = 5;
    pub const RAND: u8 = 13;
    pub const USER_VAR: u8 = 14;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const TABLE_MAP: u8 = 19;
    pub const INCIDENT: u8 = 26;
    pub const HEARTBEAT: u8 = 27;
    pub const MYSQL_GTID: u8 = 33;
    pub const ANONYMOUS_GTID: u8 = 34;
    pub const PREVIOUS_GTIDS: u8 = 35;
    pub const XA_PREPARE: u8 = 38;
    pub const TRANSACTION_PAYLOAD: u8 = 40;
    pub const GTID_TAGGED: u8 = 42;
    pub const ANNOTATE_ROWS: u8 = 160;
    pub const BINLOG_CHECKPOINT: u8 = 161;
    pub const MARIADB_GTID: u8 = 162;
    pub const GTID_LIST: u8 = 163;
    pub const START_ENCRYPTION: u8 = 164;
    pub const QUERY_COMPRESSED: u8 = 165;
    pub const PARTIAL_ROW_DATA: u8 = 172;
}

/// Header flag bits.
pub mod flags {
    pub const BINLOG_IN_USE: u16 = 0x0001;
    pub const ARTIFICIAL: u16 = 0x0020;
    pub const RELAY_LOG: u16 = 0x0040;
}

/// Human name of an event type (as `mariadb-binlog` and MySQL source call it).
pub fn type_name(t: u8) -> &'static str {
    match t {
        0 => "UNKNOWN",
        1 => "START_V3",
        2 => "QUERY",
        3 => "STOP",
        4 => "ROTATE",
        5 => "INTVAR",
        6 => "LOAD",
        7 => "SLAVE",
        8 => "CREATE_FILE",
        9 => "APPEND_BLOCK",
        10 => "EXEC_LOAD",
        11 => "DELETE_FILE",
        12 => "NEW_LOAD",
        13 => "RAND",
        14 => "USER_VAR",
        15 => "FORMAT_DESCRIPTION",
        16 => "XID",
        17 => "BEGIN_LOAD_QUERY",
        18 => "EXECUTE_LOAD_QUERY",
        19 => "TABLE_MAP",
        20 => "PRE_GA_WRITE_ROWS",
        21 => "PRE_GA_UPDATE_ROWS",
        22 => "PRE_GA_DELETE_ROWS",
        23 => "WRITE_ROWS_V1",
        24 => "UPDATE_ROWS_V1",
        25 => "DELETE_ROWS_V1",
        26 => "INCIDENT",
        27 => "HEARTBEAT",
        28 => "IGNORABLE",
        29 => "ROWS_QUERY",
        30 => "WRITE_ROWS_V2",
        31 => "UPDATE_ROWS_V2",
        32 => "DELETE_ROWS_V2",
        33 => "GTID",
        34 => "ANONYMOUS_GTID",
        35 => "PREVIOUS_GTIDS",
        36 => "TRANSACTION_CONTEXT",
        37 => "VIEW_CHANGE",
        38 => "XA_PREPARE",
        39 => "PARTIAL_UPDATE_ROWS",
        40 => "TRANSACTION_PAYLOAD",
        41 => "HEARTBEAT_V2",
        42 => "GTID_TAGGED_LOG",
        160 => "ANNOTATE_ROWS",
        161 => "BINLOG_CHECKPOINT",
        162 => "MARIADB_GTID",
        163 => "GTID_LIST",
        164 => "START_ENCRYPTION",
        165 => "QUERY_COMPRESSED",
        166 => "WRITE_ROWS_COMPRESSED_V1",
        167 => "UPDATE_ROWS_COMPRESSED_V1",
        168 => "DELETE_ROWS_COMPRESSED_V1",
        169 => "WRITE_ROWS_COMPRESSED",
        170 => "UPDATE_ROWS_COMPRESSED",
        171 => "DELETE_ROWS_COMPRESSED",
        172 => "PARTIAL_ROW_DATA",
        _ => "UNRECOGNIZED",
    }
}

/// The common header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub timestamp: u32,
    pub type_code: u8,
    pub server_id: u32,
    pub event_size: u32,
    /// `end_log_pos`: where the next event starts in the *originating* binlog; 0 for artificial events.
    pub log_pos: u32,
    pub flags: u16,
}

impl Header {
    /// Decodes the first 19 bytes of `b`; `None` if `b` is shorter.
    pub fn parse(b: &[u8]) -> Option<Header> {
        let b: &[u8; HEADER_LEN] = b.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            timestamp: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            type_code: b[4],
            server_id: u32::from_le_bytes([b[5], b[6], b[7], b[8]]),
            event_size: u32::from_le_bytes([b[9], b[10], b[11], b[12]]),
            log_pos: u32::from_le_bytes([b[13], b[14], b[15], b[16]]),
            flags: u16::from_le_bytes([b[17], b[18]]),
        })
    }

    /// Encodes the header (used when synthesising events in tests and in the diff writer).
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.timestamp.to_le_bytes());
        b[4] = self.type_code;
        b[5..9].copy_from_slice(&self.server_id.to_le_bytes());
        b[9..13].copy_from_slice(&self.event_size.to_le_bytes());
        b[13..17].copy_from_slice(&self.log_pos.to_le_bytes());
        b[17..19].copy_from_slice(&self.flags.to_le_bytes());
        b
    }

    pub fn is_artificial(&self) -> bool {
        self.flags & flags::ARTIFICIAL != 0
    }

    pub fn type_name(&self) -> &'static str {
        type_name(self.type_code)
    }
}

/// Reads a little-endian integer of `N` bytes at `at`; `None` past the end.
pub(crate) fn le_uint<const N: usize>(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(N)?)?;
    let mut v = 0u64;
    for (i, byte) in s.iter().enumerate() {
        v |= u64::from(*byte) << (8 * i);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = Header {
            timestamp: 1,
            type_code: types::XID,
            server_id: 7,
            event_size: 31,
            log_pos: 1234,
            flags: flags::ARTIFICIAL,
        };
        assert_eq!(Header::parse(&h.to_bytes()), Some(h));
        assert_eq!(Header::parse(&[0u8; 18]), None);
    }
}
