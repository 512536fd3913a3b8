//! Corrupt-on-purpose variants of the real MariaDB files in tests/corpus: each must be refused
//! with the file and the offset of the bad event, never a panic, a hang or a silent success.
//! Also the format rules of the FORMAT_DESCRIPTION event (its own checksum, the declared
//! common-header length) and pre-v4 files.

mod corpus_support;

use std::path::{Path, PathBuf};

use corpus_support::{ours, walk};
use raftmha_node::binlog::header::types;
use raftmha_node::binlog::{ErrorKind, WalkError};

fn real(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/mariadb")
        .join(name);
    std::fs::read(p).unwrap()
}

/// (offset, type, size) of every event of a well-formed file.
fn events(b: &[u8]) -> Vec<(usize, u8, usize)> {
    let mut out = Vec::new();
    let mut at = 4;
    while at + 19 <= b.len() {
        let size = u32::from_le_bytes(b[at + 9..at + 13].try_into().unwrap()) as usize;
        out.push((at, b[at + 4], size));
        at += size;
    }
    out
}

fn first_of(b: &[u8], t: u8) -> (usize, usize) {
    events(b)
        .into_iter()
        .find(|e| e.1 == t)
        .map(|(o, _, s)| (o, s))
        .unwrap()
}

fn write(dir: &Path, name: &str, b: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, b).unwrap();
    p
}

/// Reads `b` as a file; the error it must give, checked to name the file and `offset`.
fn refused(dir: &Path, name: &str, b: &[u8], offset: u64) -> WalkError {
    let p = write(dir, name, b);
    let e = ours(&p).expect_err(name);
    assert_eq!(e.offset, offset, "{name}: {e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("{}: offset {offset}: ", p.display())),
        "{text}"
    );
    e
}

#[test]
fn damaged_events_are_refused_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["mariadb-crc32.000001", "mariadb-nocrc.000001"] {
        let good = real(name);
        let (q, _) = first_of(&good, types::QUERY);
        // The file cut inside an event.
        let e = refused(dir.path(), "cut", &good[..q + 30], q as u64);
        assert!(e.is_truncation());
        // An event size below the header, and one past the end of the file.
        let mut b = good.clone();
        b[q + 9..q + 13].copy_from_slice(&5u32.to_le_bytes());
        refused(dir.path(), "small", &b, q as u64);
        let mut b = good.clone();
        b[q + 9..q + 13].copy_from_slice(&(good.len() as u32).to_le_bytes());
        assert!(refused(dir.path(), "big", &b, q as u64).is_truncation());
        // A database length and a status-variables length larger than the event.
        let mut b = good.clone();
        b[q + 19 + 8] = 200;
        let e = refused(dir.path(), "db_len", &b, q as u64);
        if name.contains("nocrc") {
            assert!(matches!(e.kind, ErrorKind::Content { .. }), "{e}");
            assert!(e.to_string().contains("bad QUERY event"), "{e}");
        } else {
            assert!(matches!(e.kind, ErrorKind::Checksum { .. }), "{e}");
        }
        let mut b = good.clone();
        b[q + 19 + 11..q + 19 + 13].copy_from_slice(&0xfff0u16.to_le_bytes());
        refused(dir.path(), "status_len", &b, q as u64);
    }
}

#[test]
fn any_single_flipped_byte_is_refused_or_harmless_never_a_panic() {
    // With checksums, every flipped byte after the magic is an error at its event's offset
    // (header fields that change the event's extent are caught before the CRC).
    let dir = tempfile::tempdir().unwrap();
    let good = real("mariadb-crc32.000001");
    let evs = events(&good);
    let p = dir.path().join("flip");
    for i in 4..good.len() {
        let mut b = good.clone();
        b[i] ^= 0x5a;
        std::fs::write(&p, &b).unwrap();
        let e = walk(&p).expect_err(&format!("flip at {i}"));
        let (start, ..) = *evs.iter().rev().find(|(o, ..)| *o <= i).unwrap();
        assert!(
            e.offset == start as u64 || e.offset > start as u64 && e.offset <= good.len() as u64,
            "flip at {i} (event at {start}): {e}"
        );
        assert!(e.to_string().starts_with(&p.display().to_string()));
    }
    // Without checksums, a flip must give an error with an offset, or a well-formed stream.
    let good = real("mariadb-nocrc.000001");
    for i in 4..good.len() {
        let mut b = good.clone();
        b[i] ^= 0xa5;
        std::fs::write(&p, &b).unwrap();
        if let Err(e) = walk(&p) {
            assert!(e.offset <= good.len() as u64, "flip at {i}: {e}");
        }
        // The decoders (GTIDs, query texts, groups) must not panic on what the walker hands out.
        let _ = ours(&p);
    }
}

#[test]
fn incident_with_an_unknown_number_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = real("mariadb-nocrc.000001");
    let (x, size) = first_of(&good, types::XID);
    // Turn an XID (8-byte body) into an INCIDENT: number, message length 0, padding.
    for (number, ok) in [(1u16, true), (0, false), (2, false), (999, false)] {
        let mut b = good.clone();
        b[x + 4] = types::INCIDENT;
        b[x + 19..x + 21].copy_from_slice(&number.to_le_bytes());
        b[x + 21] = (size - 19 - 3) as u8;
        let p = write(dir.path(), "incident", &b);
        match ours(&p) {
            Ok(_) => assert!(ok, "incident number {number} accepted"),
            Err(e) => {
                assert!(!ok, "incident number {number} refused: {e}");
                assert_eq!(e.offset, x as u64);
                assert!(
                    e.to_string()
                        .contains(&format!("unknown incident number {number}"))
                );
            }
        }
    }
}

#[test]
fn fde_checksum_is_verified_only_when_the_fde_announces_one() {
    let dir = tempfile::tempdir().unwrap();
    // alg OFF: the 4 trailer bytes are there, and servers do not check them.
    let mut b = real("mariadb-nocrc.000001");
    let (_, fde_size) = first_of(&b, types::FORMAT_DESCRIPTION);
    assert_eq!(b[4 + fde_size - 5], 0, "alg OFF");
    b[4 + fde_size - 1] ^= 0xff;
    let p = write(dir.path(), "off", &b);
    assert!(ours(&p).is_ok());
    // alg CRC32: a wrong FDE checksum is an error at offset 4.
    let mut b = real("mariadb-crc32.000001");
    b[4 + fde_size - 1] ^= 0xff;
    let e = refused(dir.path(), "crc", &b, 4);
    assert!(matches!(e.kind, ErrorKind::Checksum { .. }), "{e}");
    // An unknown algorithm byte.
    let mut b = real("mariadb-nocrc.000001");
    b[4 + fde_size - 5] = 7;
    let e = refused(dir.path(), "alg", &b, 4);
    assert!(
        e.to_string().contains("unknown checksum algorithm 7"),
        "{e}"
    );
}

/// Rewrites a checksum-free file so that every event after the FDE has a `header_len`-byte
/// common header (the extra bytes filled with 0xee).
fn with_header_len(good: &[u8], header_len: u8) -> Vec<u8> {
    let extra = usize::from(header_len) - 19;
    let evs = events(good);
    let mut out = good[..4].to_vec();
    for (i, (at, _, size)) in evs.into_iter().enumerate() {
        let ev = &good[at..at + size];
        if i == 0 {
            let mut fde = ev.to_vec();
            fde[19 + 56] = header_len;
            out.extend_from_slice(&fde);
            continue;
        }
        let mut head = ev[..19].to_vec();
        head[9..13].copy_from_slice(&((size + extra) as u32).to_le_bytes());
        out.extend_from_slice(&head);
        out.extend(std::iter::repeat_n(0xee, extra));
        out.extend_from_slice(&ev[19..]);
    }
    out
}

#[test]
fn the_declared_common_header_length_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let good = real("mariadb-nocrc.000001");
    let base = ours(&write(dir.path(), "base", &good)).unwrap();
    let longer = ours(&write(dir.path(), "longer", &with_header_len(&good, 23))).unwrap();
    let strip = |v: &[corpus_support::Ours]| -> Vec<(u8, Option<String>, Option<String>)> {
        v.iter()
            .map(|e| (e.type_code, e.gtid.clone(), e.query.clone()))
            .collect()
    };
    assert_eq!(strip(&base), strip(&longer));
    assert!(longer.iter().any(|e| e.query.as_deref() == Some("COMMIT")));
    // A header shorter than v4's 19 bytes is refused at the FDE.
    let mut b = good.clone();
    b[4 + 19 + 56] = 13;
    let e = refused(dir.path(), "short", &b, 4);
    assert!(e.to_string().contains("common header length 13"), "{e}");
}

#[test]
fn pre_v4_files_are_reported_as_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    // A MySQL 4.x file: START_EVENT_V3 (type 1) first, binlog version 3, 19-byte header.
    let mut start = vec![0u8; 19];
    start[4] = types::START_V3;
    start[9..13].copy_from_slice(&75u32.to_le_bytes());
    start.extend_from_slice(&3u16.to_le_bytes());
    let mut ver = [0u8; 50];
    ver[..10].copy_from_slice(b"4.1.22-log");
    start.extend_from_slice(&ver);
    start.extend_from_slice(&[0; 4]);
    let mut b = vec![0xfe, b'b', b'i', b'n'];
    b.extend_from_slice(&start);
    let e = refused(dir.path(), "v3", &b, 4);
    assert!(
        e.to_string()
            .ends_with("binlog format v1/v3 (MySQL < 5.0) is not supported"),
        "{e}"
    );
    // A v1 (MySQL 3.23) file: 13-byte headers, the type still at byte 4.
    let mut b = vec![0xfe, b'b', b'i', b'n'];
    b.extend_from_slice(&start[..13]);
    refused(dir.path(), "v1", &b, 4);
    // MySQL's encrypted binlogs have their own magic.
    let mut b = vec![0xfd, b'b', b'i', b'n', 1];
    b.extend_from_slice(&[0; 507]);
    let e = refused(dir.path(), "mysql-encrypted", &b, 0);
    assert!(e.is_encrypted(), "{e}");
    assert!(e.to_string().contains("binlog_encryption=ON"), "{e}");
}
