//! The binlog engine on constructed files: walker, CRC rules, groups, relay mapping, the
//! verified fast search, concatenation and the apply stream.
use std::path::{Path, PathBuf};

use raftmha_node::binlog::concat::{OutFile, concat_from};
use raftmha_node::binlog::group::{GroupTracker, Role};
use raftmha_node::binlog::header::{flags, types};
use raftmha_node::binlog::relay::{Found, MasterCoord, Method, find_position};
use raftmha_node::binlog::synth::SynthBinlog;
use raftmha_node::binlog::{ErrorKind, Walker};
use raftmha_node::tools::apply::gtid::GtidPos;
use raftmha_node::tools::apply::stream;

fn write(dir: &Path, name: &str, b: &SynthBinlog) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, &b.bytes).unwrap();
    p
}

fn walk_all(p: &Path) -> Result<Vec<(u64, u8)>, raftmha_node::binlog::WalkError> {
    let mut w = Walker::open(p)?;
    let mut v = Vec::new();
    while let Some(ev) = w.next_event()? {
        v.push((ev.offset, ev.header.type_code));
    }
    Ok(v)
}

#[test]
fn walks_and_verifies_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = SynthBinlog::new(1, true);
    b.gtid(0, 1, true).query("d", "CREATE TABLE t (id INT)");
    b.trx(0, 2, 100).trx(0, 3, 5000);
    let p = write(dir.path(), "binlog.000001", &b);
    let evs = walk_all(&p).unwrap();
    assert_eq!(evs.len(), 1 + 2 + 4 + 4);
    assert_eq!(evs[0], (4, types::FORMAT_DESCRIPTION));
}

#[test]
fn corrupt_byte_is_reported_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = SynthBinlog::new(1, true);
    b.trx(0, 1, 100);
    let fde_size = u32::from_le_bytes(b.bytes[13..17].try_into().unwrap()) as u64;
    let row_byte = b.bytes.len() - 60;
    b.bytes[row_byte] ^= 0xff;
    let p = write(dir.path(), "binlog.000001", &b);
    let err = walk_all(&p).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Checksum { .. }), "{err}");
    assert!(err.offset > 4 + fde_size);
    assert!(err.to_string().contains("binlog.000001"), "{err}");
}

#[test]
fn truncation_is_distinguished_from_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = SynthBinlog::new(1, true);
    b.trx(0, 1, 100);
    b.bytes.truncate(b.bytes.len() - 10);
    let p = write(dir.path(), "binlog.000001", &b);
    let err = walk_all(&p).unwrap_err();
    assert!(err.is_truncation(), "{err}");
}

#[test]
fn in_use_flag_is_excluded_from_the_fde_crc() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = SynthBinlog::new(1, true);
    b.trx(0, 1, 10);
    b.bytes[4 + 17] |= flags::BINLOG_IN_USE as u8; // set after the CRC, like the server
    let p = write(dir.path(), "binlog.000001", &b);
    walk_all(&p).unwrap();
}

#[test]
fn checksum_rule_follows_the_latest_fde() {
    let dir = tempfile::tempdir().unwrap();
    // Relay FDE with CRC, then a master FDE announcing OFF: later events have no trailer.
    let mut b = SynthBinlog::new(2, true);
    b.fde(1, 0, false);
    b.server_id = 1;
    b.trx(0, 1, 50);
    let p = write(dir.path(), "relay.000001", &b);
    let evs = walk_all(&p).unwrap();
    assert_eq!(evs.len(), 2 + 4);
}

#[test]
fn bad_magic_and_garbage_first_event_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x");
    std::fs::write(&p, b"hello world, not a binlog").unwrap();
    assert!(matches!(
        Walker::open(&p).err().unwrap().kind,
        ErrorKind::BadMagic
    ));
    let mut b = SynthBinlog::new(1, true);
    b.bytes.truncate(4);
    b.xid(1);
    let p = write(dir.path(), "binlog.000009", &b);
    assert!(matches!(
        walk_all(&p).unwrap_err().kind,
        ErrorKind::FirstNotFde(_)
    ));
}

#[test]
fn group_tracker_knows_transaction_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = SynthBinlog::new(1, true);
    b.gtid(0, 1, true).query("d", "CREATE TABLE t (id INT)");
    b.trx(0, 2, 10);
    b.gtid(0, 3, false)
        .query("d", "BEGIN")
        .query("d", "INSERT INTO m VALUES (1)")
        .query("d", "COMMIT");
    b.rows(10); // orphan: no group open
    let p = write(dir.path(), "binlog.000001", &b);
    let mut w = Walker::open(&p).unwrap();
    let mut t = GroupTracker::new();
    let mut roles = Vec::new();
    while let Some(ev) = w.next_event().unwrap() {
        roles.push(t.observe(&ev));
    }
    use Role::*;
    assert_eq!(
        roles,
        vec![
            Outside, Begin, End, Begin, Inside, Inside, End, Begin, Inside, Inside, End, Orphan,
            Orphan
        ]
    );
}

/// Two relay files as a replica writes them: the second after a FLUSH RELAY LOGS (no rotate,
/// a master FDE copy), ending with the replica's STOP event.
fn relay_pair(dir: &Path) -> (Vec<PathBuf>, Vec<u32>) {
    let mut r1 = SynthBinlog::relay(2, 1, "binlog.000007", 4);
    let mut ends = Vec::new();
    for seq in 1..=3 {
        r1.trx(0, seq, 40);
        ends.push(r1.log_pos.unwrap());
    }
    r1.rotate(2, flags::RELAY_LOG, 4, "relay.000002");
    let mut r2 = SynthBinlog::new(2, true);
    r2.bytes.truncate(4);
    r2.fde(2, flags::RELAY_LOG, true);
    r2.zero_elp().fde(1, flags::ARTIFICIAL, true);
    r2.server_id = 1;
    r2.log_pos = r1.log_pos;
    for seq in 4..=6 {
        r2.trx(0, seq, 40);
        ends.push(r2.log_pos.unwrap());
    }
    r2.stop(2);
    (
        vec![
            write(dir, "relay.000001", &r1),
            write(dir, "relay.000002", &r2),
        ],
        ends,
    )
}

#[test]
fn full_scan_maps_master_positions_across_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let (files, ends) = relay_pair(dir.path());
    let coord = |pos| MasterCoord {
        file: "binlog.000007".into(),
        pos: u64::from(pos),
    };
    // Target read up to the end of trx 4 (in the second file, whose master file is inherited).
    let r = find_position(&files, &coord(ends[3]), None).unwrap();
    let Found::At { index, offset, .. } = r.found else {
        panic!("{r:?}")
    };
    assert_eq!(index, 1);
    let mut w = Walker::open(&files[1]).unwrap().verify_crc(false);
    w.skip_to(offset).unwrap();
    let ev = w.next_event().unwrap().unwrap();
    assert_eq!(ev.header.type_code, types::MARIADB_GTID);
    // The end of trx 3 is the end of file 1 (only the relay's own ROTATE follows).
    let r = find_position(&files, &coord(ends[2]), None).unwrap();
    assert!(matches!(
        r.found,
        Found::At { index: 0, .. } | Found::At { index: 1, .. }
    ));
    // Everything read: only the replica's STOP follows.
    let r = find_position(&files, &coord(ends[5]), None).unwrap();
    assert_eq!(r.found, Found::TargetHasAll);
    // Unknown position.
    assert!(find_position(&files, &coord(ends[5] + 1), None).is_err());
}

#[test]
fn fast_search_is_verified_and_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut r1 = SynthBinlog::relay(2, 1, "binlog.000003", 4);
    let mut ends = Vec::new();
    for seq in 1..=5 {
        r1.trx(0, seq, 30);
        ends.push(r1.log_pos.unwrap());
    }
    let files = vec![write(dir.path(), "relay.000001", &r1)];
    let coord = |pos: u32| MasterCoord {
        file: "binlog.000003".into(),
        pos: u64::from(pos),
    };
    let r = find_position(&files, &coord(ends[1]), Some(&coord(ends[4]))).unwrap();
    assert_eq!(r.method, Method::Fast, "{r:?}");
    let fast = r.found;
    let r = find_position(&files, &coord(ends[1]), None).unwrap();
    assert_eq!(r.found, fast);

    // Like a replica without log_slave_updates that leaves ANNOTATE_ROWS out: the master's
    // positions jump by more than the relay's bytes, so the size arithmetic lands wrong.
    let mut r2 = SynthBinlog::relay(2, 1, "binlog.000003", 4);
    let mut ends2 = Vec::new();
    for seq in 1..=5 {
        r2.trx(0, seq, 30);
        r2.log_pos = r2.log_pos.map(|p| p + 64); // a 64-byte event the relay does not hold
        ends2.push(r2.log_pos.unwrap());
    }
    // The XID's end_log_pos is what a replica reports; the skipped bytes sit before the next GTID.
    let ends2: Vec<u32> = ends2.iter().map(|e| e - 64).collect();
    let files2 = vec![write(dir.path(), "relay.000002", &r2)];
    let r = find_position(&files2, &coord(ends2[1]), Some(&coord(ends2[4]))).unwrap();
    assert!(
        matches!(
            r.method,
            Method::FullScan {
                fast_rejected: Some(_)
            }
        ),
        "{r:?}"
    );
    let Found::At { offset, .. } = r.found else {
        panic!()
    };
    let mut w = Walker::open(&files2[0]).unwrap().verify_crc(false);
    w.skip_to(offset).unwrap();
    assert_eq!(
        w.next_event().unwrap().unwrap().header.type_code,
        types::MARIADB_GTID
    );
}

#[test]
fn concat_keeps_one_header_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (files, ends) = relay_pair(dir.path());
    let r = find_position(
        &files,
        &MasterCoord {
            file: "binlog.000007".into(),
            pos: u64::from(ends[0]),
        },
        None,
    )
    .unwrap();
    let Found::At { index, offset, .. } = r.found else {
        panic!()
    };
    let out_path = dir.path().join("diff.binlog");
    let mut out = OutFile::create(&out_path).unwrap();
    let rep = concat_from(&files[index..], offset, &mut out, true).unwrap();
    drop(out);
    assert!(rep.truncated.is_empty());
    let evs = walk_all(&out_path).unwrap();
    let fdes = evs
        .iter()
        .filter(|(_, t)| *t == types::FORMAT_DESCRIPTION)
        .count();
    assert_eq!(
        fdes, 2,
        "relay FDE + master FDE of the first file only: {evs:?}"
    );
    let gtids = evs
        .iter()
        .filter(|(_, t)| *t == types::MARIADB_GTID)
        .count();
    assert_eq!(gtids, 5);
}

#[test]
fn apply_stream_skips_executed_and_refuses_half_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = SynthBinlog::new(1, true);
    a.trx(0, 1, 20).trx(0, 2, 20).gtid(0, 3, false).rows(20); // trx 3 continues in file b
    let mut b = SynthBinlog::new(1, true);
    b.xid(3).trx(0, 4, 20).gtid(0, 5, false).rows(20); // trx 5 never commits
    let files = vec![
        write(dir.path(), "a.binlog", &a),
        write(dir.path(), "b.binlog", &b),
    ];
    let executed = GtidPos::parse("0-1-1").unwrap();
    let out = dir.path().join("stream.binlog");
    let rep = stream::build(&files, &executed, &out, true).unwrap();
    assert_eq!(rep.groups_skipped, 1);
    assert_eq!(rep.groups_applied, 3, "{rep:?}");
    assert_eq!(rep.first_applied.as_deref(), Some("0-1-2"));
    assert_eq!(rep.last_applied.as_deref(), Some("0-1-4"));
    assert_eq!(rep.incomplete.len(), 1, "{rep:?}");
    assert_eq!(rep.complete.to_string(), "0-1-4");
    let evs = walk_all(&out).unwrap();
    let gtids = evs
        .iter()
        .filter(|(_, t)| *t == types::MARIADB_GTID)
        .count();
    let xids = evs.iter().filter(|(_, t)| *t == types::XID).count();
    assert_eq!((gtids, xids), (3, 3), "{evs:?}");

    // Cut inside an event: the partial event and its group are left out.
    let mut c = SynthBinlog::new(1, true);
    c.trx(0, 6, 20).trx(0, 7, 500);
    c.bytes.truncate(c.bytes.len() - 100);
    let files = vec![write(dir.path(), "c.binlog", &c)];
    let rep = stream::build(&files, &GtidPos::default(), &out, true).unwrap();
    assert_eq!(rep.groups_applied, 1);
    assert_eq!(rep.incomplete.len(), 2, "{rep:?}");
    walk_all(&out).unwrap();
}
