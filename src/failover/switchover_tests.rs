use super::*;
use crate::db::status::RowMap;

fn vars(read_only: bool) -> ServerVariables {
    let ro = if read_only { "ON" } else { "OFF" };
    ServerVariables::parse(&RowMap::from_pairs([
        ("server_id", Some("1")),
        ("read_only", Some(ro)),
        ("log_bin", Some("ON")),
        ("log_slave_updates", Some("ON")),
    ]))
    .expect("variables")
}

pub(crate) fn replica_of(host: &str, lag: &str, sql_errno: &str) -> ReplicaStatus {
    ReplicaStatus::parse(&RowMap::from_pairs([
        ("Master_Host", Some(host)),
        ("Master_Port", Some("3306")),
        ("Slave_IO_Running", Some("Yes")),
        ("Slave_SQL_Running", Some("Yes")),
        ("Master_Log_File", Some("binlog.000001")),
        ("Read_Master_Log_Pos", Some("400")),
        ("Relay_Master_Log_File", Some("binlog.000001")),
        ("Exec_Master_Log_Pos", Some("400")),
        ("Seconds_Behind_Master", Some(lag)),
        ("Last_SQL_Errno", Some(sql_errno)),
        ("Using_Gtid", Some("No")),
    ]))
    .expect("status")
}

fn facts(name: &str, observed: Result<Observed, String>) -> ServerFacts {
    ServerFacts {
        server: ServerRef::new(name, format!("10.0.0.{}", &name[2..]), 3306),
        policy: ServerPolicy::default(),
        observed,
    }
}

pub(crate) fn master() -> ServerFacts {
    facts(
        "db1",
        Ok(Observed {
            variables: vars(false),
            replica: None,
            sessions: vec![],
            writing_transactions: vec![],
        }),
    )
}

pub(crate) fn replica(name: &str, lag: &str) -> ServerFacts {
    facts(
        name,
        Ok(Observed {
            variables: vars(true),
            replica: Some(replica_of("10.0.0.1", lag, "0")),
            sessions: vec![],
            writing_transactions: vec![],
        }),
    )
}

fn session(command: &str, secs: u64, info: &str) -> Session {
    Session {
        id: 7,
        user: "app".into(),
        command: command.into(),
        secs,
        info: info.into(),
    }
}

fn plan(orig: &ServerFacts, to: &str, others: &[ServerFacts]) -> Result<SwitchPlan, Vec<String>> {
    plan_switchover(orig, to, others, SwitchLimits::default(), true)
}

#[test]
fn a_healthy_cluster_switches_and_every_other_replica_follows() {
    let p = plan(
        &master(),
        "db2",
        &[replica("db2", "0"), replica("db3", "1")],
    )
    .expect("no refusal");
    assert_eq!(p.new.name, "db2");
    assert_eq!(
        p.repoint
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["db3"]
    );
    assert_eq!(p.follow_by, FollowBy::Position);
    assert!(p.skipped.is_empty());
}

#[test]
fn a_lagging_or_broken_new_master_is_refused_with_the_reason() {
    let err = plan(
        &master(),
        "db2",
        &[replica("db2", "31"), replica("db3", "0")],
    )
    .expect_err("lag over 30 s");
    assert!(err[0].contains("31 s behind"), "{err:?}");
    let mut broken = replica("db2", "0");
    if let Ok(o) = &mut broken.observed {
        o.replica = Some(replica_of("10.0.0.1", "0", "1062"));
    }
    let err = plan(&master(), "db2", &[broken]).expect_err("SQL error");
    assert!(err[0].contains("1062"), "{err:?}");
}

#[test]
fn the_new_master_must_replicate_from_the_master_and_may_not_be_no_master() {
    let mut elsewhere = replica("db2", "0");
    if let Ok(o) = &mut elsewhere.observed {
        o.replica = Some(replica_of("10.0.0.9", "0", "0"));
    }
    assert!(plan(&master(), "db2", &[elsewhere]).is_err());
    let mut no_master = replica("db2", "0");
    no_master.policy.no_master = true;
    assert!(plan(&master(), "db2", &[no_master]).is_err());
    assert!(plan(&master(), "db9", &[replica("db2", "0")]).is_err());
}

#[test]
fn long_updates_on_the_master_refuse_but_reads_and_idle_sessions_do_not() {
    let mut m = master();
    if let Ok(o) = &mut m.observed {
        o.sessions = vec![
            session("Query", 50, "SELECT SLEEP(100)"),
            session("Sleep", 500, ""),
            session("Binlog Dump", 900, ""),
        ];
    }
    assert!(plan(&m, "db2", &[replica("db2", "0")]).is_ok());
    if let Ok(o) = &mut m.observed {
        o.sessions
            .push(session("Query", 2, "UPDATE t SET a = a + 1"));
    }
    let err = plan(&m, "db2", &[replica("db2", "0")]).expect_err("update running 2 s");
    assert!(err[0].contains("running_updates_limit"), "{err:?}");
    if let Ok(o) = &mut m.observed {
        o.sessions.pop();
        o.writing_transactions = vec![(9, 5)];
    }
    assert!(plan(&m, "db2", &[replica("db2", "0")]).is_err());
}

#[test]
fn a_long_query_on_the_new_master_refuses() {
    let mut nm = replica("db2", "0");
    if let Ok(o) = &mut nm.observed {
        o.sessions = vec![session("Query", 11, "SELECT * FROM big")];
    }
    let err = plan(&master(), "db2", &[nm]).expect_err("11 s query");
    assert!(err[0].contains("running_seconds_limit"), "{err:?}");
}

#[test]
fn unreachable_replicas_refuse_unless_ignore_fail_and_detached_ones_are_left_alone() {
    let down = facts("db3", Err("connection refused".into()));
    assert!(plan(&master(), "db2", &[replica("db2", "0"), down.clone()]).is_err());
    let mut ignorable = down;
    ignorable.policy.ignore_fail = true;
    let detached = facts(
        "db4",
        Ok(Observed {
            variables: vars(true),
            replica: None,
            sessions: vec![],
            writing_transactions: vec![],
        }),
    );
    let p = plan(
        &master(),
        "db2",
        &[replica("db2", "0"), ignorable, detached],
    )
    .expect("left alone");
    assert!(p.repoint.is_empty());
    assert_eq!(p.skipped.len(), 2);
}

#[test]
fn a_read_only_master_is_refused() {
    let mut m = master();
    if let Ok(o) = &mut m.observed {
        o.variables = vars(true);
    }
    assert!(plan(&m, "db2", &[replica("db2", "0")]).is_err());
}
