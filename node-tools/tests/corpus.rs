//! The regression corpus (tests/corpus/README.md): real binlogs read by our engine and by
//! `mariadb-binlog`, which must agree on event boundaries, types, GTIDs and query texts.

mod corpus_support;

use std::path::{Path, PathBuf};

use corpus_support::{compare, ours, theirs};
use raftmha_node::binlog::Walker;
use raftmha_node::binlog::header::types;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn mariadb(name: &str) -> PathBuf {
    corpus().join("mariadb").join(name)
}

#[test]
fn mariadb_files_read_as_mariadb_binlog_reads_them() {
    for name in [
        "mariadb-crc32.000001",
        "mariadb-nocrc.000001",
        "mariadb-compressed.000001",
    ] {
        let p = mariadb(name);
        let ours = ours(&p).unwrap_or_else(|e| panic!("{e}"));
        let theirs = theirs(&p).unwrap_or_else(|| panic!("mariadb-binlog cannot read {name}"));
        assert!(compare(&p, &ours, &theirs) > 40, "{name}: too few events");
        let gtids: Vec<String> = ours.iter().filter_map(|e| e.gtid.clone()).collect();
        let want: Vec<String> = (1..=15).map(|i| format!("0-16-{i}")).collect();
        assert_eq!(gtids, want, "{name}");
        assert_eq!(ours.last().map(|e| e.type_code), Some(types::ROTATE));
    }
}

#[test]
fn encrypted_mariadb_binlog_is_refused_at_the_encryption_event() {
    let p = mariadb("mariadb-encrypted.000001");
    for verify in [true, false] {
        let mut w = Walker::open(&p).unwrap().verify_crc(verify);
        let first = w.next_event().unwrap().unwrap();
        assert_eq!(first.header.type_code, types::FORMAT_DESCRIPTION);
        let e = w.next_event().unwrap_err();
        assert!(e.is_encrypted(), "{e}");
        assert_eq!(e.offset, 256);
        let text = e.to_string();
        assert!(text.starts_with(&p.display().to_string()), "{text}");
        assert!(
            text.ends_with("binlog is encrypted (encrypt_binlog=ON): cannot read past offset 256"),
            "{text}"
        );
    }
    // mariadb-binlog, without the server's key, cannot read it either.
    assert!(theirs(&p).is_none());
}

/// One line of `external.tsv`: a file from another project's test data, what it must give.
struct External {
    name: String,
    size: u64,
    crc32: u32,
    expect: String,
}

fn externals() -> Vec<External> {
    let text = std::fs::read_to_string(corpus().join("external.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            External {
                name: f[0].into(),
                size: f[1].parse().unwrap(),
                crc32: u32::from_str_radix(f[2], 16).unwrap(),
                expect: f[3].into(),
            }
        })
        .collect()
}

/// Checks one external file against its expectation line and, when `mariadb-binlog` reads it
/// whole, against `mariadb-binlog` too.
fn check_external(path: &Path, x: &External) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        (bytes.len() as u64, crc32fast::hash(&bytes)),
        (x.size, x.crc32),
        "{}: not the file the expectations were written for",
        x.name
    );
    let got = ours(path);
    let mut words = x.expect.split(' ');
    match words.next() {
        Some("ok") => {
            let events = got.unwrap_or_else(|e| panic!("{e}"));
            let n: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(events.len(), n, "{}: event count", x.name);
            if let Some(list) = words.next().and_then(|w| w.strip_prefix("gtids=")) {
                let gtids: Vec<String> = events.iter().filter_map(|e| e.gtid.clone()).collect();
                assert_eq!(gtids.join(","), list, "{}: GTIDs", x.name);
            }
            if let Some(theirs) = theirs(path) {
                compare(path, &events, &theirs);
            }
        }
        Some("err") => {
            let offset: u64 = words.next().unwrap().parse().unwrap();
            let text: Vec<&str> = words.collect();
            let e = got.expect_err("the file must be refused");
            assert_eq!(e.offset, offset, "{}: {e}", x.name);
            assert!(e.to_string().contains(&text.join(" ")), "{}: {e}", x.name);
            assert!(e.to_string().contains(&path.display().to_string()));
        }
        other => panic!("bad expectation {other:?}"),
    }
}

/// The files from other projects are not in this repository (see the README): they are read
/// from `$RAFTMHA_BINLOG_CORPUS` when it is set, and the test says it was skipped otherwise.
#[test]
fn external_corpus_matches_its_expectations() {
    let Some(dir) = std::env::var_os("RAFTMHA_BINLOG_CORPUS") else {
        eprintln!("RAFTMHA_BINLOG_CORPUS is not set: external corpus skipped");
        return;
    };
    let list = externals();
    assert!(list.len() > 30);
    for x in &list {
        check_external(&Path::new(&dir).join(&x.name), x);
    }
}
