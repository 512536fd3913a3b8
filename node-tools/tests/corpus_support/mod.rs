//! Reading the corpus two ways: with our engine, and through `mariadb-binlog`'s text output.
// Shared by several test crates, each of which uses only part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use raftmha_node::binlog::events::query_text;
use raftmha_node::binlog::header::types;
use raftmha_node::binlog::{WalkError, Walker};
use raftmha_node::tools::dump::dump;

/// One event as our engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ours {
    pub offset: u64,
    pub type_code: u8,
    pub gtid: Option<String>,
    /// Query text of plain QUERY events.
    pub query: Option<String>,
}

/// Every event of `path`, or the engine's error.
pub fn ours(path: &Path) -> Result<Vec<Ours>, WalkError> {
    let mut events = Vec::new();
    dump(&[path.to_path_buf()], true, |l| {
        let own_gtid = matches!(
            l.type_code,
            types::MARIADB_GTID | types::MYSQL_GTID | types::ANONYMOUS_GTID | types::GTID_TAGGED
        );
        events.push(Ours {
            offset: l.offset,
            type_code: l.type_code,
            gtid: if own_gtid { l.gtid.clone() } else { None },
            query: None,
        });
    })?;
    let mut w = Walker::open(path)?;
    let mut i = 0;
    while let Some(ev) = w.next_event()? {
        if ev.header.type_code == types::QUERY {
            let text = query_text(ev.body()).unwrap_or_default();
            events[i].query = Some(String::from_utf8_lossy(text).into_owned());
        }
        i += 1;
    }
    Ok(events)
}

/// Walks `path` with CRC checks, decoding nothing: the number of events, or the error.
pub fn walk(path: &Path) -> Result<u64, WalkError> {
    let mut w = Walker::open(path)?;
    while w.next_event()?.is_some() {}
    Ok(w.events_read())
}

/// One event as `mariadb-binlog --base64-output=never -vv` prints it.
#[derive(Debug, Clone)]
pub struct Theirs {
    pub offset: u64,
    /// The event's label (text after the header line's tab), e.g. `Query\tthread_id=4…`.
    pub label: String,
    /// Everything printed for the event after its header line.
    pub text: String,
}

/// Runs `mariadb-binlog`; `None` when it could not read the whole file (exit status ≠ 0).
pub fn theirs(path: &Path) -> Option<Vec<Theirs>> {
    let out = Command::new("mariadb-binlog")
        .args(["--no-defaults", "--base64-output=never", "-vv"])
        .arg(path)
        .output()
        .expect("mariadb-binlog runs (installed by .ci/setup)");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut events: Vec<Theirs> = Vec::new();
    // Header lines go to the "# at" lines in order: for ANNOTATE_ROWS + TABLE_MAP it prints
    // two "# at" lines, then both header lines.
    let mut labelled = 0;
    for line in text.lines() {
        if let Some(at) = line.strip_prefix("# at ") {
            events.push(Theirs {
                offset: at.trim().parse().expect("offset after '# at'"),
                label: String::new(),
                text: String::new(),
            });
            continue;
        }
        if line.starts_with('#') && line.contains(" end_log_pos ") && labelled < events.len() {
            let label = line.split_once('\t').map(|(_, l)| l.to_string());
            events[labelled].label = label.unwrap_or_default();
            labelled += 1;
        } else if let Some(ev) = events.last_mut() {
            ev.text.push_str(line);
            ev.text.push('\n');
        }
    }
    Some(events)
}

/// The type codes a `mariadb-binlog` label stands for; empty when we do not know the label.
pub fn label_types(t: &Theirs) -> Vec<u8> {
    if let Some(rest) = t.text.split("# Ignorable event type ").nth(1) {
        let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return n.parse().into_iter().collect();
    }
    let word = t.label.split([' ', '\t']).next().unwrap_or("");
    match word {
        "Start:" => vec![15],
        "Query" => vec![2],
        "Query_compressed" => vec![165],
        "Stop" => vec![3],
        "Rotate" => vec![4],
        "Intvar" => vec![5],
        "Rand" => vec![13],
        "User_var" => vec![14],
        "Xid" => vec![16],
        "Table_map:" => vec![19],
        "Write_rows:" => vec![23, 30],
        "Update_rows:" => vec![24, 31],
        "Delete_rows:" => vec![25, 32],
        "Incident:" => vec![26],
        "XID" => vec![38],
        "Annotate_rows:" => vec![160],
        "Binlog" => vec![161],
        "GTID" => vec![162],
        "Gtid" => vec![163],
        "Write_compressed_rows:" => vec![166, 169],
        "Update_compressed_rows:" => vec![167, 170],
        "Delete_compressed_rows:" => vec![168, 171],
        _ => vec![],
    }
}

/// Compares our reading of `path` with `mariadb-binlog`'s: the same event boundaries, the same
/// types where its label names one, the same MariaDB GTIDs, and each QUERY's text printed as
/// its statement. Returns how many events were compared.
pub fn compare(path: &Path, ours: &[Ours], theirs: &[Theirs]) -> usize {
    let name = path.display();
    let a: Vec<u64> = ours.iter().map(|e| e.offset).collect();
    let b: Vec<u64> = theirs.iter().map(|e| e.offset).collect();
    assert_eq!(a, b, "{name}: event boundaries differ from mariadb-binlog");
    for (o, t) in ours.iter().zip(theirs) {
        let want = label_types(t);
        assert!(
            want.is_empty() || want.contains(&o.type_code),
            "{name} at {}: type {} but mariadb-binlog says {:?}",
            o.offset,
            o.type_code,
            t.label
        );
        if o.type_code == types::MARIADB_GTID {
            let gtid = o.gtid.as_deref().expect("a MariaDB GTID decodes");
            let printed = t.label.strip_prefix("GTID ").unwrap_or("");
            assert_eq!(
                printed.split_whitespace().next(),
                Some(gtid),
                "{name} at {}: GTID",
                o.offset
            );
        }
        if let Some(q) = &o.query {
            // mariadb-binlog prints the statement on its own, then the `/*!*/;` delimiter.
            let stmt = format!("{}\n/*!*/;", q.trim_end_matches(['\0', '\n']));
            let plain = t.text.contains(&stmt);
            assert!(
                plain || t.text.contains(q.trim()),
                "{name} at {}: query {q:?} not printed by mariadb-binlog:\n{}",
                o.offset,
                t.text
            );
        }
    }
    ours.len()
}
