use super::*;
use crate::db::gtid::{MariaGtidPos, MySqlGtidSet};

fn dialect(version: &str) -> Dialect {
    Dialect::new(ServerVersion::parse(version, None).expect("version parses"))
}

fn maria() -> Dialect {
    dialect("10.11.19-MariaDB-0+deb12u1-log")
}

fn change(position: SourcePosition) -> ChangeSource {
    ChangeSource {
        host: "127.0.80.2".into(),
        port: 3306,
        user: "repl".into(),
        password: Secret::new("s3cr'et\\x"),
        position,
        connect_retry_secs: Some(1),
        heartbeat_period: Some(Duration::from_millis(500)),
    }
}

#[test]
fn quote_escapes_what_could_break_out_of_a_literal() {
    assert_eq!(quote("plain"), "'plain'");
    assert_eq!(quote("a'b"), "'a\\'b'");
    assert_eq!(
        quote("a\\'; DROP TABLE t; --"),
        "'a\\\\\\'; DROP TABLE t; --'"
    );
    assert_eq!(quote("nul\0nl\ncr\r\u{1a}\""), "'nul\\0nl\\ncr\\r\\Z\\\"'");
}

#[test]
fn heartbeat_period_alone_per_version() {
    let period = Duration::from_millis(500);
    assert_eq!(
        dialect("10.11.6-MariaDB")
            .set_heartbeat_period(period)
            .sql(),
        "CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD=0.500"
    );
    assert_eq!(
        dialect("8.4.0").set_heartbeat_period(period).sql(),
        "CHANGE REPLICATION SOURCE TO SOURCE_HEARTBEAT_PERIOD=0.500"
    );
}

#[test]
fn replica_statements_per_version() {
    for (v, status, stop_io, reset) in [
        (
            "10.11.6-MariaDB",
            "SHOW ALL SLAVES STATUS",
            "STOP SLAVE IO_THREAD",
            "RESET SLAVE ALL",
        ),
        (
            "11.4.2-MariaDB",
            "SHOW ALL SLAVES STATUS",
            "STOP SLAVE IO_THREAD",
            "RESET SLAVE ALL",
        ),
        (
            "5.7.44-log",
            "SHOW SLAVE STATUS",
            "STOP SLAVE IO_THREAD",
            "RESET SLAVE ALL",
        ),
        (
            "8.0.36",
            "SHOW REPLICA STATUS",
            "STOP REPLICA IO_THREAD",
            "RESET REPLICA ALL",
        ),
        (
            "8.4.0",
            "SHOW REPLICA STATUS",
            "STOP REPLICA IO_THREAD",
            "RESET REPLICA ALL",
        ),
    ] {
        let d = dialect(v);
        assert_eq!(d.show_replica_status().sql(), status, "{v}");
        assert_eq!(d.stop_io_thread().sql(), stop_io, "{v}");
        assert_eq!(d.reset_replica_all().sql(), reset, "{v}");
    }
    assert_eq!(
        dialect("8.4.0").show_master_status().sql(),
        "SHOW BINARY LOG STATUS"
    );
    assert_eq!(
        dialect("8.0.36").show_master_status().sql(),
        "SHOW MASTER STATUS"
    );
    assert_eq!(maria().show_master_status().sql(), "SHOW MASTER STATUS");
    assert_eq!(dialect("8.4.0").start_replica().sql(), "START REPLICA");
    assert_eq!(maria().stop_replica().sql(), "STOP SLAVE");
}

#[test]
fn read_only_uses_super_read_only_only_where_it_exists() {
    assert_eq!(
        maria().set_read_only(true).sql(),
        "SET GLOBAL read_only = ON"
    );
    assert_eq!(
        dialect("5.7.44").set_read_only(true).sql(),
        "SET GLOBAL super_read_only = ON"
    );
    assert_eq!(
        dialect("8.4.0").set_read_only(false).sql(),
        "SET GLOBAL read_only = OFF"
    );
    assert_eq!(
        maria().set_read_only(false).sql(),
        "SET GLOBAL read_only = OFF"
    );
}

#[test]
fn change_master_by_file_position_on_mariadb_masks_the_password() {
    let s = maria().change_source(&change(SourcePosition::File(BinlogCoord::new(
        "binlog.000003",
        1234,
    ))));
    assert_eq!(
        s.sql(),
        "CHANGE MASTER TO MASTER_HOST='127.0.80.2', MASTER_PORT=3306, MASTER_USER='repl', \
         MASTER_PASSWORD='s3cr\\'et\\\\x', MASTER_LOG_FILE='binlog.000003', MASTER_LOG_POS=1234, \
         MASTER_USE_GTID=no, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=0.500"
    );
    let shown = format!("{s} {s:?}");
    assert!(!shown.contains("s3cr"), "password leaked: {shown}");
    assert!(shown.contains("MASTER_PASSWORD='***'"));
}

#[test]
fn change_source_on_mysql_84_and_gtid_modes() {
    let s = dialect("8.4.0").change_source(&change(SourcePosition::MySqlAutoPosition));
    assert!(
        s.sql()
            .starts_with("CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.80.2'")
    );
    assert!(s.sql().contains("SOURCE_AUTO_POSITION=1"));
    assert!(!s.sql().contains("MASTER_"));
    let s = dialect("8.0.22").change_source(&change(SourcePosition::File(BinlogCoord::new(
        "b.000001", 4,
    ))));
    assert!(s.sql().starts_with("CHANGE MASTER TO") && s.sql().contains("MASTER_AUTO_POSITION=0"));
    let s = maria().change_source(&change(SourcePosition::MariaDbSlavePos));
    assert!(s.sql().contains("MASTER_USE_GTID=slave_pos") && !s.sql().contains("LOG_POS"));
    let s = maria().change_source(&change(SourcePosition::MariaDbCurrentPos));
    assert!(s.sql().contains("MASTER_USE_GTID=current_pos"));
}

#[test]
fn waits_always_have_a_timeout_and_never_zero() {
    let coord = BinlogCoord::new("binlog.000002", 77);
    let (s, kind) = maria().wait_for_position(&coord, Duration::from_millis(300));
    assert_eq!(
        s.sql(),
        "SELECT MASTER_POS_WAIT('binlog.000002', 77, 1) AS result"
    );
    assert_eq!(kind, WaitKind::Position);
    let (s, _) = dialect("8.0.26").wait_for_position(&coord, Duration::from_secs(5));
    assert_eq!(
        s.sql(),
        "SELECT SOURCE_POS_WAIT('binlog.000002', 77, 5) AS result"
    );
    let (s, _) = dialect("5.7.44").wait_for_position(&coord, Duration::ZERO);
    assert!(
        s.sql().ends_with(", 1) AS result"),
        "0 would mean forever: {s}"
    );

    let pos = GtidSet::MariaDb(MariaGtidPos::parse("0-1-10").expect("parses"));
    let (s, kind) = maria()
        .wait_for_gtids(&pos, Duration::from_millis(1500))
        .expect("flavor matches");
    assert_eq!(
        s.sql(),
        "SELECT MASTER_GTID_WAIT('0-1-10', 1.500) AS result"
    );
    assert_eq!(kind, WaitKind::MariaDbGtid);
    let set = GtidSet::MySql(
        MySqlGtidSet::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5").expect("parses"),
    );
    let (s, kind) = dialect("8.4.0")
        .wait_for_gtids(&set, Duration::from_millis(2500))
        .expect("flavor matches");
    assert_eq!(
        s.sql(),
        "SELECT WAIT_FOR_EXECUTED_GTID_SET('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5', 3) AS result"
    );
    assert_eq!(kind, WaitKind::MySqlGtid);
    assert!(
        maria()
            .wait_for_gtids(&set, Duration::from_secs(1))
            .is_none()
    );
}

#[test]
fn wait_results_are_interpreted_per_function() {
    assert_eq!(WaitKind::Position.interpret(Some(3)), WaitOutcome::Reached);
    assert_eq!(WaitKind::Position.interpret(Some(0)), WaitOutcome::Reached);
    assert_eq!(
        WaitKind::Position.interpret(Some(-1)),
        WaitOutcome::TimedOut
    );
    assert_eq!(
        WaitKind::Position.interpret(None),
        WaitOutcome::NotReplicating
    );
    assert_eq!(
        WaitKind::MariaDbGtid.interpret(Some(-1)),
        WaitOutcome::TimedOut
    );
    assert_eq!(
        WaitKind::MySqlGtid.interpret(Some(1)),
        WaitOutcome::TimedOut
    );
    assert_eq!(WaitKind::MySqlGtid.interpret(Some(0)), WaitOutcome::Reached);
}

#[test]
fn other_builders() {
    assert_eq!(maria().kill_connection(42).sql(), "KILL CONNECTION 42");
    let pos = GtidSet::MariaDb(MariaGtidPos::parse("0-2-99").expect("parses"));
    assert_eq!(
        maria()
            .set_gtid_slave_pos(&pos)
            .map(|s| s.sql().to_string()),
        Some("SET GLOBAL gtid_slave_pos = '0-2-99'".into())
    );
    assert!(dialect("8.0.36").set_gtid_slave_pos(&pos).is_none());
    assert!(maria().show_variables().sql().contains("'super_read_only'"));
    assert!(maria().gtid_state_query().sql().contains("gtid_slave_pos"));
    assert!(
        dialect("8.0.36")
            .gtid_state_query()
            .sql()
            .contains("gtid_executed")
    );
    assert_eq!(
        maria().set_relay_log_purge(false).sql(),
        "SET GLOBAL relay_log_purge = 0"
    );
}
