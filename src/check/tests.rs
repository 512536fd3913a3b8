use super::*;
use crate::db::status::RowMap;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn healthy(name: &str, id: &str) -> Observed {
    Observed {
        name: name.into(),
        addr: format!("127.0.0.{id}:3306"),
        can_be_master: true,
        vars: vars(&[
            ("server_id", id),
            ("log_bin", "ON"),
            ("log_slave_updates", "ON"),
            ("relay_log_purge", "OFF"),
            ("read_only", "ON"),
            ("binlog_format", "ROW"),
            ("sync_binlog", "1"),
            ("innodb_flush_log_at_trx_commit", "1"),
        ]),
        admin_grants: vec!["GRANT ALL PRIVILEGES ON *.* TO `raftmha`@`127.%`".into()],
        repl_user_can_replicate: Some(true),
        ..Observed::default()
    }
}

fn replica_of(master_ip: &str, io: &str, sql: &str) -> ReplicaStatus {
    let row = RowMap::from_pairs(
        [
            ("Master_Host", master_ip.to_string()),
            ("Master_Port", "3306".into()),
            ("Master_User", "repl".into()),
            ("Master_Log_File", "b.000001".into()),
            ("Read_Master_Log_Pos", "4".into()),
            ("Relay_Master_Log_File", "b.000001".into()),
            ("Exec_Master_Log_Pos", "4".into()),
            ("Relay_Log_File", "r.000001".into()),
            ("Relay_Log_Pos", "4".into()),
            ("Slave_IO_Running", io.into()),
            ("Slave_SQL_Running", sql.into()),
            ("Last_IO_Errno", "0".into()),
            ("Last_IO_Error", String::new()),
            ("Last_SQL_Errno", "0".into()),
            ("Last_SQL_Error", String::new()),
            ("SQL_Delay", "0".into()),
        ]
        .map(|(k, v): (&str, String)| (k, Some(v))),
    );
    ReplicaStatus::parse(&row).expect("replica row")
}

fn cluster() -> Vec<Observed> {
    let mut m = healthy("db1", "1");
    m.vars.insert("read_only".into(), "OFF".into());
    let mut r2 = healthy("db2", "2");
    r2.replica = Some(replica_of("127.0.0.1", "Yes", "Yes"));
    let mut r3 = healthy("db3", "3");
    r3.replica = Some(replica_of("127.0.0.1", "Yes", "Yes"));
    vec![m, r2, r3]
}

fn level_of(f: &[Finding], check: &str, server: Option<&str>) -> Level {
    f.iter()
        .filter(|x| x.check == check && x.server.as_deref() == server)
        .map(|x| x.level)
        .max()
        .unwrap_or_else(|| panic!("no {check} finding for {server:?}: {f:#?}"))
}

#[test]
fn a_healthy_cluster_is_ok() {
    let f = check_all(&cluster(), Some("db1"));
    assert!(f.iter().all(|x| x.level == Level::Ok), "{f:#?}");
    assert_eq!(verdict(&f), ("MySQL Replication Health is OK.", 0));
}

#[test]
fn each_planted_problem_is_reported() {
    type Plant = fn(&mut Vec<Observed>);
    let cases: &[(&str, Option<&str>, Level, Plant)] = &[
        ("server_id unique", None, Level::Fail, |c| {
            c[2].vars.insert("server_id".into(), "1".into());
        }),
        ("log_bin", Some("db2"), Level::Fail, |c| {
            c[1].vars.insert("log_bin".into(), "OFF".into());
        }),
        ("log_slave_updates", Some("db2"), Level::Warn, |c| {
            c[1].vars.insert("log_slave_updates".into(), "OFF".into());
        }),
        ("relay_log_purge", Some("db3"), Level::Warn, |c| {
            c[2].vars.insert("relay_log_purge".into(), "ON".into());
        }),
        ("read_only", Some("db3"), Level::Warn, |c| {
            c[2].vars.insert("read_only".into(), "OFF".into());
        }),
        ("binlog_format", None, Level::Fail, |c| {
            c[2].vars.insert("binlog_format".into(), "STATEMENT".into());
        }),
        ("replication filters", None, Level::Fail, |c| {
            c[1].vars.insert("replicate_do_db".into(), "app".into());
        }),
        ("replication filters", None, Level::Fail, |c| {
            c[0].binlog_filters = Some(("app".into(), String::new()));
        }),
        ("durability", Some("db1"), Level::Warn, |c| {
            c[0].vars.insert("sync_binlog".into(), "0".into());
        }),
        ("durability", Some("db2"), Level::Warn, |c| {
            c[1].vars
                .insert("innodb_flush_log_at_trx_commit".into(), "2".into());
        }),
        ("admin privileges", Some("db1"), Level::Fail, |c| {
            c[0].admin_grants = vec!["GRANT PROCESS, RELOAD ON *.* TO `x`@`%`".into()];
        }),
        ("replication user", Some("db2"), Level::Fail, |c| {
            c[1].repl_user_can_replicate = None;
        }),
        ("replicating", Some("db3"), Level::Fail, |c| {
            c[2].replica = Some(replica_of("127.0.0.1", "No", "Yes"));
        }),
        ("replicating", Some("db3"), Level::Fail, |c| {
            c[2].replica = Some(replica_of("127.0.0.9", "Yes", "Yes"));
        }),
        ("reachable", Some("db2"), Level::Fail, |c| {
            c[1].error = Some("refused".into());
        }),
        ("semi-sync", None, Level::Warn, |c| {
            c[0].vars
                .insert("rpl_semi_sync_master_enabled".into(), "ON".into());
        }),
    ];
    for (check, server, level, plant) in cases {
        let mut c = cluster();
        plant(&mut c);
        let f = check_all(&c, Some("db1"));
        assert_eq!(
            level_of(&f, check, *server),
            *level,
            "{check} {server:?}: {f:#?}"
        );
        assert_eq!(verdict(&f).1, u8::from(*level == Level::Fail), "{check}");
    }
}

#[test]
fn errant_gtids_on_a_replica_fail() {
    use crate::db::{GtidSet, MariaGtidPos};
    let mut c = cluster();
    let pos = |t: &str| Some(GtidSet::MariaDb(MariaGtidPos::parse(t).expect("gtid")));
    c[0].gtid = pos("0-1-10");
    c[1].gtid = pos("0-1-8");
    c[2].gtid = pos("0-3-11");
    let f = check_all(&c, Some("db1"));
    assert_eq!(level_of(&f, "errant transactions", None), Level::Fail);
    let errant = f
        .iter()
        .find(|x| x.check == "errant transactions")
        .expect("finding");
    assert!(
        errant.detail.contains("db3") && !errant.detail.contains("db2"),
        "{}",
        errant.detail
    );
}

#[test]
fn no_master_means_a_topology_failure() {
    let f = check_all(&cluster(), None);
    assert_eq!(level_of(&f, "topology", None), Level::Fail);
}

#[test]
fn gtids_on_a_replica_of_a_master_without_any_are_errant() {
    use crate::db::{GtidSet, MariaGtidPos};
    let mut c = cluster();
    c[2].gtid = Some(GtidSet::MariaDb(
        MariaGtidPos::parse("0-3-1").expect("gtid"),
    ));
    let f = check_all(&c, Some("db1"));
    assert_eq!(level_of(&f, "errant transactions", None), Level::Fail);
}
