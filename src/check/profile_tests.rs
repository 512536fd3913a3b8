use super::*;
use crate::db::ReplicaStatus;
use crate::db::status::RowMap;

fn server(name: &str, vars: &[(&str, &str)], replica_period: Option<&str>) -> Observed {
    let replica = replica_period.map(|p| {
        let mut pairs = vec![
            ("Master_Host", Some("db1".to_string())),
            ("Slave_IO_Running", Some("Yes".to_string())),
        ];
        if !p.is_empty() {
            pairs.push(("Slave_heartbeat_period", Some(p.to_string())));
        }
        ReplicaStatus::parse(&RowMap::from_pairs(pairs)).expect("row")
    });
    Observed {
        name: name.into(),
        addr: format!("{name}:3306"),
        can_be_master: true,
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        replica,
        ..Observed::default()
    }
}

const SEMI: &[(&str, &str)] = &[
    ("slave_net_timeout", "60"),
    ("rpl_semi_sync_master_enabled", "ON"),
    ("rpl_semi_sync_slave_enabled", "ON"),
    ("rpl_semi_sync_master_wait_point", "AFTER_SYNC"),
    ("rpl_semi_sync_master_timeout", "10000"),
];

fn cluster(vars: &[(&str, &str)], period: &str) -> Vec<Observed> {
    vec![
        server("db1", vars, None),
        server("db2", vars, Some(period)),
        server("db3", vars, Some(period)),
    ]
}

fn find<'a>(f: &'a [Finding], check: &str, server: Option<&str>) -> &'a Finding {
    f.iter()
        .find(|x| x.check == check && x.server.as_deref() == server)
        .unwrap_or_else(|| panic!("no {check} finding for {server:?} in {f:?}"))
}

#[test]
fn semi_sync_after_sync_above_the_lease_bound_is_the_safe_profile() {
    let f = check_profile(&cluster(SEMI, "0.250"), Some("db1"), &Settings::default());
    let p = find(&f, "safety profile", None);
    assert_eq!(p.level, Level::Ok, "{p:?}");
    assert!(
        p.detail
            .starts_with("semi-sync (AFTER_SYNC, timeout 10000 ms > lease bound")
    );
    assert!(p.detail.contains("Not covered"), "{}", p.detail);
    let t = find(&f, "slave_net_timeout", None);
    assert_eq!(t.level, Level::Ok);
    assert!(t.detail.starts_with("60 s"), "{}", t.detail);
    assert_eq!(find(&f, "heartbeat period", Some("db2")).level, Level::Ok);
}

#[test]
fn a_semi_sync_timeout_below_the_lease_bound_is_async_in_effect() {
    let mut vars = SEMI.to_vec();
    vars[4] = ("rpl_semi_sync_master_timeout", "3000");
    let f = check_profile(&cluster(&vars, "0.250"), Some("db1"), &Settings::default());
    let p = find(&f, "safety profile", None);
    assert_eq!(p.level, Level::Warn);
    assert!(
        p.detail
            .contains("rpl_semi_sync_master_timeout = 3000 ms is not above"),
        "{}",
        p.detail
    );
    assert!(
        p.detail.contains("may acknowledge queued writes"),
        "{}",
        p.detail
    );
}

#[test]
fn after_commit_async_and_no_lease_are_named() {
    let mut vars = SEMI.to_vec();
    vars[3] = ("rpl_semi_sync_master_wait_point", "AFTER_COMMIT");
    let settings = Settings {
        lease_ttl_ms: 0,
        ..Settings::default()
    };
    let (profile, detail) = profile(
        &cluster(&vars, "0.250").iter().collect::<Vec<_>>(),
        &server("db1", &vars, None),
        &settings,
    );
    assert_eq!(profile, Profile::Async);
    assert!(
        detail.contains("not AFTER_SYNC") && detail.contains("lease is off"),
        "{detail}"
    );
    let async_vars = [("slave_net_timeout", "60")];
    let f = check_profile(
        &cluster(&async_vars, "0.250"),
        Some("db1"),
        &Settings::default(),
    );
    assert!(
        find(&f, "safety profile", None)
            .detail
            .contains("rpl_semi_sync_master_enabled is OFF")
    );
}

#[test]
fn without_a_managed_heartbeat_a_long_slave_net_timeout_is_a_warning() {
    let settings = Settings {
        heartbeat_period_ms: 0,
        ..Settings::default()
    };
    let f = check_profile(&cluster(SEMI, "30.000"), Some("db1"), &settings);
    assert_eq!(find(&f, "slave_net_timeout", None).level, Level::Warn);
    let hb = find(&f, "heartbeat period", Some("db2"));
    assert!(
        hb.detail.contains("silence confirmed after 90000 ms"),
        "{}",
        hb.detail
    );
    // A replica that does not show its period (MySQL) can only time out.
    let f = check_profile(&cluster(SEMI, ""), Some("db1"), &Settings::default());
    assert_eq!(find(&f, "heartbeat period", Some("db2")).level, Level::Warn);
    // Managed: a replica still at MariaDB's default is fixed by the leader.
    let f = check_profile(&cluster(SEMI, "30.000"), Some("db1"), &Settings::default());
    assert!(
        find(&f, "heartbeat period", Some("db3"))
            .detail
            .contains("the leader sets 250 ms")
    );
}

#[test]
fn no_master_no_profile() {
    assert!(check_profile(&cluster(SEMI, "0.250"), None, &Settings::default()).is_empty());
}
