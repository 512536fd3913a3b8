use super::*;

fn row(pairs: &[(&str, Option<&str>)]) -> RowMap {
    RowMap::from_pairs(pairs.iter().map(|&(k, v)| (k, v)))
}

/// A MariaDB 10.11 `SHOW SLAVE STATUS` row (subset of its 60-odd columns) with the IO thread
/// retrying a dead master.
fn mariadb_slave_status() -> RowMap {
    row(&[
        (
            "Slave_IO_State",
            Some("Reconnecting after a failed master event read"),
        ),
        ("Master_Host", Some("127.0.31.10")),
        ("Master_User", Some("repl")),
        ("Master_Port", Some("3306")),
        ("Master_Log_File", Some("binlog.000002")),
        ("Read_Master_Log_Pos", Some("1234")),
        ("Relay_Log_File", Some("relay.000004")),
        ("Relay_Log_Pos", Some("555")),
        ("Relay_Master_Log_File", Some("binlog.000002")),
        ("Slave_IO_Running", Some("Connecting")),
        ("Slave_SQL_Running", Some("Yes")),
        ("Last_IO_Errno", Some("2003")),
        (
            "Last_IO_Error",
            Some("error reconnecting to master 'repl@127.0.31.10:3306'"),
        ),
        ("Last_SQL_Errno", Some("0")),
        ("Last_SQL_Error", Some("")),
        ("Exec_Master_Log_Pos", Some("1000")),
        ("Seconds_Behind_Master", None),
        ("Master_Server_Id", Some("1")),
        ("Using_Gtid", Some("Slave_Pos")),
        ("Gtid_IO_Pos", Some("0-1-42")),
        ("SQL_Delay", Some("0")),
        (
            "Slave_SQL_Running_State",
            Some("Slave has read all relay log; waiting for more updates"),
        ),
    ])
}

/// A MySQL 8.4 `SHOW REPLICA STATUS` row (new column names, multi-line GTID set).
fn mysql84_replica_status() -> RowMap {
    row(&[
        ("Source_Host", Some("db1")),
        ("Source_User", Some("repl")),
        ("Source_Port", Some("3307")),
        ("Source_Log_File", Some("mysql-bin.000010")),
        ("Read_Source_Log_Pos", Some("999")),
        ("Relay_Log_File", Some("relay.000002")),
        ("Relay_Log_Pos", Some("400")),
        ("Relay_Source_Log_File", Some("mysql-bin.000009")),
        ("Replica_IO_Running", Some("Yes")),
        ("Replica_SQL_Running", Some("No")),
        ("Last_IO_Errno", Some("0")),
        ("Last_SQL_Errno", Some("1062")),
        ("Last_SQL_Error", Some("Duplicate entry")),
        ("Exec_Source_Log_Pos", Some("77")),
        ("Seconds_Behind_Source", Some("12")),
        ("Source_Server_Id", Some("7")),
        ("Source_UUID", Some("3e11fa47-71ca-11e1-9e33-c80aa9429562")),
        (
            "Retrieved_Gtid_Set",
            Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-20"),
        ),
        (
            "Executed_Gtid_Set",
            Some(
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-18,\n4a5b6c7d-0000-11e1-9e33-c80aa9429562:1",
            ),
        ),
        ("Auto_Position", Some("1")),
    ])
}

#[test]
fn mariadb_slave_status_is_parsed_by_column_name() {
    let s = ReplicaStatus::parse(&mariadb_slave_status()).expect("parses");
    assert_eq!(s.read, BinlogCoord::new("binlog.000002", 1234));
    assert_eq!(s.exec, BinlogCoord::new("binlog.000002", 1000));
    assert_eq!(s.io_thread, IoThread::Connecting);
    assert!(s.sql_running && !s.is_receiving() && s.uses_gtid() && !s.relay_fully_applied());
    assert_eq!(s.seconds_behind, None);
    assert_eq!(s.last_io_errno, 2003);
    assert_eq!(
        s.gtid_io_pos.as_ref().map(|p| p.to_string()),
        Some("0-1-42".into())
    );
    assert!(s.replicates_from("127.0.31.10", 3306));
}

/// `SHOW ALL SLAVES STATUS` on MariaDB 10.11 adds the heartbeat columns (observed on
/// 10.11: `Slave_received_heartbeats: 3`, `Slave_heartbeat_period: 0.500`).
#[test]
fn mariadb_all_slaves_status_carries_the_heartbeat_counters() {
    let plain = ReplicaStatus::parse(&mariadb_slave_status()).expect("parses");
    assert_eq!(
        (plain.received_heartbeats, plain.heartbeat_period_ms),
        (None, None)
    );
    let mut pairs: Vec<(String, Option<String>)> = mariadb_slave_status().0.into_iter().collect();
    pairs.push(("Connection_name".into(), Some(String::new())));
    pairs.push(("Slave_received_heartbeats".into(), Some("3".into())));
    pairs.push(("Slave_heartbeat_period".into(), Some("0.500".into())));
    let s = ReplicaStatus::parse(&RowMap::from_pairs(pairs.clone())).expect("parses");
    assert_eq!(
        (s.received_heartbeats, s.heartbeat_period_ms),
        (Some(3), Some(500))
    );
    let last = pairs.len() - 1;
    for bad in ["-1", "x", "NaN"] {
        pairs[last].1 = Some(bad.into());
        assert!(
            matches!(
                ReplicaStatus::parse(&RowMap::from_pairs(pairs.clone())),
                Err(StatusError::BadValue { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn mysql84_replica_status_uses_the_new_column_names() {
    let s = ReplicaStatus::parse(&mysql84_replica_status()).expect("parses");
    assert_eq!(s.source_port, 3307);
    assert_eq!(s.read, BinlogCoord::new("mysql-bin.000010", 999));
    assert_eq!(s.exec, BinlogCoord::new("mysql-bin.000009", 77));
    assert!(s.is_receiving() && !s.sql_running && s.auto_position);
    assert_eq!(s.last_sql_errno, 1062);
    assert_eq!(s.executed_gtid_set.map(|g| g.count()), Some(19));
    assert_eq!(s.seconds_behind, Some(12));
}

#[test]
fn bad_numbers_are_errors_not_panics() {
    let mut r = mariadb_slave_status();
    r = RowMap::from_pairs(r.0.into_iter().map(|(k, v)| {
        if k == "read_master_log_pos" {
            (k, Some("12x".into()))
        } else {
            (k, v)
        }
    }));
    assert!(matches!(
        ReplicaStatus::parse(&r),
        Err(StatusError::BadValue { .. })
    ));
}

#[test]
fn binlog_coordinates_compare_numerically_past_six_digits() {
    let a = BinlogCoord::new("binlog.999999", 500);
    let b = BinlogCoord::new("binlog.1000000", 4);
    assert!(b > a, "string comparison would say otherwise");
    assert_eq!(b.files_ahead_of(&a), Some(1));
    assert!(BinlogCoord::new("binlog.000002", 10) < BinlogCoord::new("binlog.000002", 11));
    assert_eq!(BinlogCoord::new("x.000001", 4).files_ahead_of(&a), None);
}

#[test]
fn variables_absent_on_a_flavor_stay_absent() {
    let maria = row(&[
        ("server_id", Some("2")),
        ("version", Some("10.11.19-MariaDB-0+deb12u1-log")),
        ("read_only", Some("ON")),
        ("log_bin", Some("ON")),
        ("log_slave_updates", Some("ON")),
        ("binlog_format", Some("ROW")),
        ("relay_log_purge", Some("OFF")),
        ("gtid_strict_mode", Some("OFF")),
    ]);
    let v = ServerVariables::parse(&maria).expect("parses");
    assert_eq!(v.super_read_only, None);
    assert!(v.read_only && v.log_bin && v.log_slave_updates && !v.is_writable());
    assert_eq!(v.relay_log_purge, Some(false));

    let mysql = row(&[
        ("server_id", Some("3")),
        ("read_only", Some("OFF")),
        ("super_read_only", Some("ON")),
        ("log_replica_updates", Some("OFF")),
        ("log_slave_updates", Some("ON")),
        ("gtid_mode", Some("ON")),
    ]);
    let v = ServerVariables::parse(&mysql).expect("parses");
    assert!(!v.is_writable() && !v.log_slave_updates);
    assert!(
        ServerVariables::parse(&row(&[("read_only", Some("ON"))])).is_err(),
        "server_id required"
    );
    assert!(
        ServerVariables::parse(&row(&[
            ("server_id", Some("1")),
            ("read_only", Some("maybe"))
        ]))
        .is_err()
    );
}

#[test]
fn gtid_state_per_flavor() {
    let m = GtidState::parse(
        Flavor::MariaDb,
        &row(&[
            ("gtid_current_pos", Some("0-1-10")),
            ("gtid_slave_pos", Some("0-1-10")),
            ("gtid_binlog_pos", Some("")),
        ]),
    )
    .expect("parses");
    assert_eq!(m.executed.to_string(), "0-1-10");
    assert!(m.binlog_pos.is_some_and(|p| p.is_empty()));
    let y = GtidState::parse(Flavor::MySql, &row(&[("gtid_executed", Some(""))])).expect("parses");
    assert!(y.executed.is_empty());
}

#[test]
fn fencing_kill_spares_replication_and_ourselves() {
    let p = |id, user: &str, command: &str| ProcessInfo {
        id,
        user: user.into(),
        host: "h".into(),
        command: command.into(),
    };
    assert!(p(10, "app", "Query").is_killable_client(99));
    assert!(p(11, "app", "Sleep").is_killable_client(99));
    assert!(!p(99, "admin", "Query").is_killable_client(99));
    assert!(!p(12, "repl", "Binlog Dump").is_killable_client(99));
    assert!(!p(13, "repl", "Binlog Dump GTID").is_killable_client(99));
    assert!(!p(14, "system user", "Connect").is_killable_client(99));
    assert!(!p(15, "event_scheduler", "Daemon").is_killable_client(99));
}

#[test]
fn mysql57_slave_status_with_old_names_and_gtid_sets() {
    let r = row(&[
        ("Master_Host", Some("10.0.0.1")),
        ("Master_Port", Some("3306")),
        ("Master_Log_File", Some("mysql-bin.000003")),
        ("Read_Master_Log_Pos", Some("154")),
        ("Relay_Master_Log_File", Some("mysql-bin.000003")),
        ("Exec_Master_Log_Pos", Some("154")),
        ("Slave_IO_Running", Some("No")),
        ("Slave_SQL_Running", Some("Yes")),
        ("Last_IO_Errno", Some("2003")),
        ("Master_UUID", Some("3E11FA47-71CA-11E1-9E33-C80AA9429562")),
        ("Retrieved_Gtid_Set", Some("")),
        (
            "Executed_Gtid_Set",
            Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"),
        ),
        ("Auto_Position", Some("0")),
    ]);
    let s = ReplicaStatus::parse(&r).expect("parses");
    assert_eq!(s.io_thread, IoThread::No);
    assert!(!s.uses_gtid() && s.relay_fully_applied());
    assert!(
        s.retrieved_gtid_set
            .as_ref()
            .is_some_and(MySqlGtidSet::is_empty)
    );
    assert_eq!(s.executed_gtid_set.map(|g| g.count()), Some(5));
}

#[test]
fn master_status_rows_of_both_flavors() {
    let maria = row(&[
        ("File", Some("binlog.000002")),
        ("Position", Some("1234")),
        ("Binlog_Do_DB", Some("")),
        ("Binlog_Ignore_DB", Some("")),
    ]);
    let m = MasterStatus::parse(&maria).expect("parses");
    assert_eq!(m.coord, BinlogCoord::new("binlog.000002", 1234));
    assert_eq!(m.executed_gtid_set, None);
    let mysql = row(&[
        ("File", Some("mysql-bin.000010")),
        ("Position", Some("999")),
        (
            "Executed_Gtid_Set",
            Some(
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-20,\n4a5b6c7d-0000-11e1-9e33-c80aa9429562:1-3",
            ),
        ),
    ]);
    let m = MasterStatus::parse(&mysql).expect("parses");
    assert_eq!(m.executed_gtid_set.map(|g| g.count()), Some(23));
    assert!(
        MasterStatus::parse(&row(&[("File", Some("b.000001"))])).is_err(),
        "Position is required"
    );
}
