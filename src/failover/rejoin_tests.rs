use super::*;

fn ev(pos: u64, t: &str, info: &str) -> BinlogEvent {
    BinlogEvent {
        file: "binlog.000003".into(),
        pos,
        event_type: t.into(),
        info: info.into(),
    }
}

#[test]
fn only_transaction_events_are_errant() {
    let events = vec![
        ev(4, "Format_desc", "Server ver: 10.11"),
        ev(256, "Gtid_list", "[0-1-41]"),
        ev(285, "Binlog_checkpoint", "binlog.000003"),
        ev(329, "Gtid", "BEGIN GTID 0-1-42"),
        ev(371, "Query", "insert into t values (1)"),
        ev(470, "Xid", "COMMIT /* xid=9 */"),
        ev(501, "Rotate", "binlog.000004;pos=4"),
    ];
    let errant = errant_events(&events);
    assert_eq!(
        errant.iter().map(|e| e.pos).collect::<Vec<_>>(),
        [329, 371, 470]
    );
    assert!(errant_events(&events[..3]).is_empty());
}

/// A v4 event header (19 bytes) plus `body`.
fn event(kind: u8, log_pos: u32, body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(19 + body.len()).expect("small");
    let mut e = vec![0, 0, 0, 0, kind, 1, 0, 0, 0];
    e.extend(size.to_le_bytes());
    e.extend(log_pos.to_le_bytes());
    e.extend([0, 0]);
    e.extend(body);
    e
}

#[test]
fn the_tail_end_is_the_last_events_log_pos_in_the_file_after_rotations() {
    let from = BinlogCoord::new("binlog.000003", 1000);
    let mut data = b"\xfebin".to_vec();
    data.extend(event(15, 256, &[0; 40]));
    data.extend(event(2, 1200, &[0; 30]));
    data.extend(event(16, 1231, &[0; 8]));
    let chunk = |seq, data: &[u8]| BinlogTailChunk {
        seq,
        data: data.to_vec(),
    };
    let end = tail_end(&[chunk(0, &data)], &from).expect("an end");
    assert_eq!(end, BinlogCoord::new("binlog.000003", 1231));

    let mut rotate_body = 4u64.to_le_bytes().to_vec();
    rotate_body.extend(b"binlog.000004");
    rotate_body.extend([0xde, 0xad, 0xbe, 0xef]);
    data.extend(event(4, 0, &rotate_body));
    data.extend(event(2, 400, &[0; 10]));
    // Split across chunks, delivered out of order.
    let (a, b) = data.split_at(50);
    let end = tail_end(&[chunk(1, b), chunk(0, a)], &from).expect("an end");
    assert_eq!(end, BinlogCoord::new("binlog.000004", 400));
}

#[test]
fn a_server_never_replaced_has_no_divergence_point() {
    let spec = crate::state::cluster_file::ClusterSpec::parse(
        "name = \"app1\"\n[users]\nadmin_user = \"a\"\nadmin_password_env = \"A\"\n\
         repl_user = \"r\"\nrepl_password_env = \"R\"\n\
         [[server]]\nname = \"db1\"\nhost = \"127.0.0.1\"\n",
    )
    .expect("spec");
    let c = ClusterRecord {
        spec,
        master: Some("db1".into()),
        epoch: 0,
        paused: false,
        verdicts: Default::default(),
        failovers: Default::default(),
        last_failover: None,
        registered_at_ms: 0,
    };
    assert!(divergence(&c, "db1").is_err());
}

fn log(name: &str, size: u64) -> BinaryLog {
    BinaryLog {
        name: name.into(),
        size,
    }
}

#[test]
fn errant_events_are_read_from_the_divergence_point_on_and_a_lost_point_is_refused() {
    let own = BinlogCoord::new("binlog.000002", 400);
    let logs = [
        log("binlog.000001", 9000),
        log("binlog.000002", 800),
        log("binlog.000003", 300),
    ];
    assert_eq!(
        files_to_read(&logs, &own).expect("readable"),
        [
            ("binlog.000002".to_string(), 400),
            ("binlog.000003".to_string(), 4)
        ]
    );
    let purged = files_to_read(&logs[2..], &own).expect_err("purged");
    assert!(purged.contains("is gone"), "{purged}");
    let short = files_to_read(&[log("binlog.000002", 300)], &own).expect_err("short");
    assert!(short.contains("lost events"), "{short}");
}

#[test]
fn a_file_position_rejoin_needs_the_same_master_and_epoch_and_a_captured_position() {
    let d = Divergence {
        operation_id: 7,
        own: BinlogCoord::new("binlog.000002", 400),
        successor: "db2".into(),
        successor_pos: Some(BinlogCoord::new("binlog.000009", 4)),
        epoch_after: 3,
    };
    let pos = FollowBy::Position;
    assert_eq!(follow_refusal(&d, pos, true, "db1", "db2", 3), None);
    let moved = follow_refusal(&d, pos, true, "db1", "db3", 4).expect("refused");
    assert!(moved.contains("repoint db1 by hand"), "{moved}");
    let none = Divergence {
        successor_pos: None,
        ..d.clone()
    };
    assert!(follow_refusal(&none, pos, true, "db1", "db2", 3).is_some());
    // By GTID the start is the host's own position: a later promotion does not matter.
    assert_eq!(
        follow_refusal(&d, FollowBy::Gtid, true, "db1", "db3", 4),
        None
    );
    assert!(follow_refusal(&d, FollowBy::Gtid, false, "db1", "db2", 3).is_some());
}
