//! A tiny binlog writer that produces MariaDB-shaped files: used by unit tests, the walker's
//! fuzz test, and to exercise corner cases real servers rarely produce on demand.

use super::fde::event_crc;
use super::header::{HEADER_LEN, Header, MAGIC, types};

/// Builds a binlog file in memory.
pub struct SynthBinlog {
    pub bytes: Vec<u8>,
    pub server_id: u32,
    pub checksum: bool,
    /// Master position written into `end_log_pos`; follows the file offset unless overridden.
    pub log_pos: Option<u32>,
    /// When set, the next event gets `end_log_pos = 0` (artificial events) and does not advance.
    pub zero_elp_next: bool,
}

impl SynthBinlog {
    /// Magic + a MariaDB 10.11 FDE.
    pub fn new(server_id: u32, checksum: bool) -> Self {
        let mut s = SynthBinlog {
            bytes: MAGIC.to_vec(),
            server_id,
            checksum,
            log_pos: None,
            zero_elp_next: false,
        };
        s.fde(server_id, 0, checksum);
        s
    }

    /// Appends a FORMAT_DESCRIPTION event (always with alg byte and CRC).
    pub fn fde(&mut self, server_id: u32, event_flags: u16, checksum: bool) -> &mut Self {
        let mut body = Vec::with_capacity(233);
        body.extend_from_slice(&4u16.to_le_bytes());
        let mut ver = [0u8; 50];
        let v = b"10.11.19-MariaDB-log";
        ver[..v.len()].copy_from_slice(v);
        body.extend_from_slice(&ver);
        body.extend_from_slice(&0u32.to_le_bytes());
        body.push(HEADER_LEN as u8);
        body.extend_from_slice(&[0u8; 171]);
        body.push(u8::from(checksum));
        self.checksum = checksum;
        self.raw(
            types::FORMAT_DESCRIPTION,
            server_id,
            event_flags,
            &body,
            true,
        )
    }

    /// Appends an event with `body`; `force_crc` adds a CRC even when checksums are off (FDE).
    pub fn raw(
        &mut self,
        type_code: u8,
        server_id: u32,
        event_flags: u16,
        body: &[u8],
        force_crc: bool,
    ) -> &mut Self {
        let crc = self.checksum || force_crc;
        let size = (HEADER_LEN + body.len() + if crc { 4 } else { 0 }) as u32;
        let end = self.bytes.len() as u32 + size;
        let zero = std::mem::take(&mut self.zero_elp_next);
        let h = Header {
            timestamp: 1_700_000_000,
            type_code,
            server_id,
            event_size: size,
            log_pos: if zero {
                0
            } else {
                self.log_pos.map_or(end, |p| p + size)
            },
            flags: event_flags,
        };
        if let Some(p) = self.log_pos.as_mut()
            && !zero
        {
            *p += size;
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&h.to_bytes());
        self.bytes.extend_from_slice(body);
        if crc {
            let c = event_crc(&self.bytes[start..], &h);
            self.bytes.extend_from_slice(&c.to_le_bytes());
        }
        self
    }

    pub fn gtid(&mut self, domain: u32, seq: u64, standalone: bool) -> &mut Self {
        let mut b = Vec::new();
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(&domain.to_le_bytes());
        b.push(if standalone { 0x29 } else { 0x0c });
        b.extend_from_slice(&[0u8; 6]);
        let sid = self.server_id;
        self.raw(types::MARIADB_GTID, sid, 0x0008, &b, false)
    }

    pub fn query(&mut self, db: &str, sql: &str) -> &mut Self {
        let mut b = Vec::new();
        b.extend_from_slice(&1u32.to_le_bytes()); // thread id
        b.extend_from_slice(&0u32.to_le_bytes()); // exec time
        b.push(db.len() as u8);
        b.extend_from_slice(&0u16.to_le_bytes()); // error code
        b.extend_from_slice(&0u16.to_le_bytes()); // status vars len
        b.extend_from_slice(db.as_bytes());
        b.push(0);
        b.extend_from_slice(sql.as_bytes());
        let sid = self.server_id;
        self.raw(types::QUERY, sid, 0, &b, false)
    }

    /// TABLE_MAP + WRITE_ROWS_V1 with `payload` bytes of row data.
    pub fn rows(&mut self, payload: usize) -> &mut Self {
        let sid = self.server_id;
        let mut tm = vec![1, 0, 0, 0, 0, 0, 1, 0, 1, b'd', 0, 1, b't', 0, 1, 3, 0, 0];
        tm.truncate(18);
        self.raw(types::TABLE_MAP, sid, 0, &tm, false);
        let mut rows = vec![1, 0, 0, 0, 0, 0, 1, 0, 1, 1];
        rows.resize(10 + payload, 0xab);
        self.raw(23, sid, 0, &rows, false)
    }

    pub fn xid(&mut self, xid: u64) -> &mut Self {
        let sid = self.server_id;
        self.raw(types::XID, sid, 0, &xid.to_le_bytes(), false)
    }

    /// A complete InnoDB transaction: GTID, TABLE_MAP + rows, XID.
    pub fn trx(&mut self, domain: u32, seq: u64, payload: usize) -> &mut Self {
        self.gtid(domain, seq, false).rows(payload).xid(seq)
    }

    pub fn rotate(&mut self, server_id: u32, event_flags: u16, pos: u64, next: &str) -> &mut Self {
        let mut b = pos.to_le_bytes().to_vec();
        b.extend_from_slice(next.as_bytes());
        self.raw(types::ROTATE, server_id, event_flags, &b, false)
    }

    /// The next event is artificial: `end_log_pos = 0`.
    pub fn zero_elp(&mut self) -> &mut Self {
        self.zero_elp_next = true;
        self
    }

    /// Starts a relay log as a replica (`relay_id`) writes it after connecting to master
    /// `master_id` at `file:pos`: relay FDE, fake ROTATE, master FDE copy. Following events are
    /// written as the master's, with `end_log_pos` continuing from `pos`.
    pub fn relay(relay_id: u32, master_id: u32, file: &str, pos: u32) -> Self {
        let mut s = SynthBinlog::new(relay_id, true);
        // The relay FDE carries RELAY_LOG: rewrite the flags of the one `new` wrote.
        s.bytes.truncate(4);
        s.fde(relay_id, super::header::flags::RELAY_LOG, true);
        s.zero_elp().rotate(
            master_id,
            super::header::flags::ARTIFICIAL,
            u64::from(pos),
            file,
        );
        s.zero_elp().fde(master_id, 0, true);
        s.server_id = master_id;
        s.log_pos = Some(pos);
        s
    }

    pub fn stop(&mut self, server_id: u32) -> &mut Self {
        self.raw(types::STOP, server_id, 0, &[], false)
    }
}
