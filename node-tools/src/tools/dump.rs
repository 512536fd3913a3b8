//! `raftmha-node dump FILE…`: one line per event — offset, type, server_id, size, end_log_pos,
//! flags, the group's GTID and the event's transaction role — or one JSON object per event.

use std::path::{Path, PathBuf};

use crate::binlog::WalkError;
use crate::binlog::events::{
    MariaGtidEvent, Rotate, mysql_gtid_of, parse_gtid_list, query_db, query_text,
};
use crate::binlog::fde::FormatDescription;
use crate::binlog::group::GroupTracker;
use crate::binlog::header::types;
use crate::binlog::reader::{Event, Walker};

#[derive(Debug, Clone, serde::Serialize)]
pub struct DumpLine {
    pub file: PathBuf,
    pub offset: u64,
    #[serde(rename = "type")]
    pub type_name: &'static str,
    pub type_code: u8,
    pub server_id: u32,
    pub size: u32,
    pub end_log_pos: u32,
    pub flags: u16,
    pub gtid: Option<String>,
    pub role: &'static str,
    pub info: String,
}

impl DumpLine {
    pub fn text(&self) -> String {
        format!(
            "{:>10} {:<26} sid={:<5} size={:<7} elp={:<10} flags=0x{:04x} {:<9} {:<14} {}",
            self.offset,
            self.type_name,
            self.server_id,
            self.size,
            self.end_log_pos,
            self.flags,
            self.role,
            self.gtid.as_deref().unwrap_or("-"),
            self.info
        )
    }
}

fn info(ev: &Event<'_>) -> String {
    let body = ev.body();
    match ev.header.type_code {
        types::FORMAT_DESCRIPTION => FormatDescription::parse(ev.bytes).map_or_else(
            |e| format!("<{e}>"),
            |f| {
                format!(
                    "server='{}' created={} checksum={}",
                    f.server_version,
                    f.create_timestamp,
                    if f.checksum { "CRC32" } else { "OFF" }
                )
            },
        ),
        types::ROTATE => Rotate::parse(body).map_or_else(String::new, |r| {
            format!("next='{}' pos={}", r.next_file, r.position)
        }),
        types::GTID_LIST => parse_gtid_list(body).map_or_else(String::new, |l| {
            let v: Vec<String> = l.iter().map(ToString::to_string).collect();
            format!("[{}]", v.join(","))
        }),
        types::MARIADB_GTID => MariaGtidEvent::parse(body)
            .map_or_else(String::new, |g| format!("flags2=0x{:02x}", g.flags2)),
        types::QUERY => {
            let db = query_db(body)
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let q = query_text(body).unwrap_or(&[]);
            let q = String::from_utf8_lossy(&q[..q.len().min(80)]).replace('\n', " ");
            format!("db='{db}' query='{q}'")
        }
        types::XID => body
            .get(..8)
            .map(|b| format!("xid={}", u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Walks `files` as one stream and calls `emit` per event. Returns the number of events.
pub fn dump(
    files: &[PathBuf],
    verify_crc: bool,
    mut emit: impl FnMut(&DumpLine),
) -> Result<u64, WalkError> {
    let mut tracker = GroupTracker::new();
    let mut n = 0;
    for path in files {
        let mut w = Walker::open(path)?.verify_crc(verify_crc);
        while let Some(ev) = w.next_event()? {
            let role = tracker.observe(&ev);
            let gtid = match ev.header.type_code {
                types::MARIADB_GTID => MariaGtidEvent::parse(ev.body())
                    .map(|g| g.gtid(ev.header.server_id).to_string()),
                types::MYSQL_GTID | types::ANONYMOUS_GTID | types::GTID_TAGGED => {
                    mysql_gtid_of(ev.header.type_code, ev.body())
                }
                _ if tracker.in_group() || matches!(role, crate::binlog::group::Role::End) => {
                    tracker.current().map(ToString::to_string)
                }
                _ => None,
            };
            emit(&DumpLine {
                file: path_of(path),
                offset: ev.offset,
                type_name: ev.header.type_name(),
                type_code: ev.header.type_code,
                server_id: ev.header.server_id,
                size: ev.header.event_size,
                end_log_pos: ev.header.log_pos,
                flags: ev.header.flags,
                gtid,
                role: role.as_str(),
                info: info(&ev),
            });
            n += 1;
        }
    }
    Ok(n)
}

fn path_of(p: &Path) -> PathBuf {
    p.to_path_buf()
}
