//! Planner scenarios in GTID mode: MariaDB positions and MySQL 8.4 interval sets.
use super::tests::*;
use super::*;
use crate::db::{Flavor, GtidSet, GtidState, MariaGtidPos, MySqlGtidSet, ServerVersion};
use crate::failover::input::{ReplicaSnapshot, ReplicaState, ServerPolicy};

// ---- GTID mode (MariaDB) ----

fn gtid_replica(n: u8, executed: &str, policy: ServerPolicy) -> ReplicaSnapshot {
    let pos = MariaGtidPos::parse(executed).expect("gtid parses");
    let mut st = status(coord(900), coord(900));
    st.using_gtid = Some("Slave_Pos".into());
    st.gtid_io_pos = Some(pos.clone());
    let mut f = facts(u32::from(n), st);
    f.gtid = Some(GtidState {
        executed: GtidSet::MariaDb(pos.clone()),
        slave_pos: Some(pos),
        binlog_pos: None,
    });
    snapshot(n, policy, f)
}

#[test]
fn gtid_mode_brings_only_the_new_master_level_then_repoints_by_gtid() {
    let p = plan(&input(vec![
        gtid_replica(2, "0-1-10", CANDIDATE),
        gtid_replica(3, "0-1-12", PLAIN),
    ]));
    assert_eq!(p.mode, Mode::Gtid);
    assert_eq!(p.new_master.name, "mha02");
    assert_eq!(p.base.name, "mha03");
    assert_eq!(
        p.recoveries[0].needs,
        vec![
            Need::GtidCatchUp {
                donor: "mha03".into(),
                until: GtidSet::MariaDb(MariaGtidPos::parse("0-1-12").expect("ok"))
            },
            Need::MasterTail
        ]
    );
    assert!(
        p.recoveries[1].needs.is_empty(),
        "others catch up from the new master"
    );
    assert!(actions(&p).iter().any(|a| matches!(
        a,
        Action::Repoint {
            by: RepointBy::Gtid,
            ..
        }
    )));
    assert!(
        !actions(&p)
            .iter()
            .any(|a| matches!(a, Action::GenerateRelayDiff { .. }))
    );
    assert!(
        p.save_tail_from.is_some(),
        "GTID mode saves the tail too (MHA #80/#81)"
    );
}

#[test]
fn gtid_catch_up_needs_a_donor_with_log_slave_updates_else_relay_diff() {
    let mut i = input(vec![
        gtid_replica(2, "0-1-10", CANDIDATE),
        gtid_replica(3, "0-1-12", PLAIN),
    ]);
    if let ReplicaState::Reachable(f) = &mut i.replicas[1].state {
        f.variables.log_slave_updates = false;
        if let Some(st) = f.status.as_mut() {
            st.read = coord(1200);
            st.exec = coord(1200);
        }
    }
    let p = plan(&i);
    assert!(
        matches!(p.recoveries[0].needs[0], Need::RelayDiff { ref donor, .. } if donor == "mha03")
    );
}

#[test]
fn errant_gtids_veto_the_candidate_and_do_not_make_it_latest() {
    // mha02 wrote a local transaction (server_id 2) nobody else has.
    let i = input(vec![
        gtid_replica(2, "0-2-13", CANDIDATE),
        gtid_replica(3, "0-1-12", PLAIN),
    ]);
    let p = plan(&i);
    assert_eq!(p.new_master.name, "mha03");
    assert_eq!(p.errant.len(), 1);
    assert_eq!(p.errant[0].0.name, "mha02");
    assert!(matches!(p.rejected[0].1[0], Rejection::ErrantGtids(_)));
    assert_eq!(p.latest[0].name, "mha03");
}

#[test]
fn a_local_write_racing_the_masters_same_seq_is_errant() {
    // MariaDB without gtid_strict_mode: mha02's local write took seq 13, as did the master's
    // last transaction that only mha03 received.
    let p = plan(&input(vec![
        gtid_replica(2, "0-2-13", CANDIDATE),
        gtid_replica(3, "0-1-13", PLAIN),
    ]));
    assert_eq!(p.new_master.name, "mha03");
    assert_eq!(p.errant[0].0.name, "mha02");
}

#[test]
fn diverged_replicas_abort() {
    let i = input(vec![
        gtid_replica(2, "0-1-10,1-1-5", PLAIN),
        gtid_replica(3, "0-1-12", PLAIN),
    ]);
    assert!(matches!(
        plan_failover(&i),
        Err(PlanError::DivergedReplicas { .. })
    ));
}

#[test]
fn mixed_gtid_and_positional_replicas_fall_back_to_file_position() {
    let p = plan(&input(vec![
        gtid_replica(2, "0-1-10", PLAIN),
        replica(3, 900, PLAIN),
    ]));
    assert_eq!(p.mode, Mode::FilePosition);
}

// ---- GTID mode (MySQL 8.4) ----

const UUID_MASTER: &str = "11111111-1111-1111-1111-111111111111";
const UUID_R2: &str = "22222222-2222-2222-2222-222222222222";

fn mysql_replica(n: u8, executed: &str, policy: ServerPolicy) -> ReplicaSnapshot {
    let set = MySqlGtidSet::parse(executed).expect("gtid parses");
    let mut st = status(coord(900), coord(900));
    st.using_gtid = None;
    st.auto_position = true;
    st.source_uuid = Some(UUID_MASTER.into());
    st.retrieved_gtid_set = Some(set.clone());
    st.executed_gtid_set = Some(set.clone());
    let mut f = facts(u32::from(n), st);
    f.version = ServerVersion::new(Flavor::MySql, 8, 4, 0);
    f.gtid = Some(GtidState {
        executed: GtidSet::MySql(set),
        slave_pos: None,
        binlog_pos: None,
    });
    snapshot(n, policy, f)
}

#[test]
fn mysql_errant_transactions_are_found_by_source_uuid() {
    let mut i = input(vec![
        mysql_replica(2, &format!("{UUID_MASTER}:1-100,{UUID_R2}:1-2"), CANDIDATE),
        mysql_replica(3, &format!("{UUID_MASTER}:1-100"), PLAIN),
    ]);
    i.dead_master.server_uuid = Some(UUID_MASTER.into());
    let p = plan(&i);
    assert_eq!(p.mode, Mode::Gtid);
    assert_eq!(p.new_master.name, "mha03");
    assert_eq!(p.errant.len(), 1);
    assert_eq!(p.errant[0].1.to_string(), format!("{UUID_R2}:1-2"));
    // The master's own GTIDs that only one replica received are not errant: it is latest.
    let mut i = input(vec![
        mysql_replica(2, &format!("{UUID_MASTER}:1-105"), PLAIN),
        mysql_replica(3, &format!("{UUID_MASTER}:1-100"), CANDIDATE),
    ]);
    i.dead_master.server_uuid = Some(UUID_MASTER.into());
    let p = plan(&i);
    assert!(p.errant.is_empty());
    assert_eq!(p.latest[0].name, "mha02");
    assert_eq!(p.new_master.name, "mha03");
    assert!(
        matches!(p.recoveries[0].needs[0], Need::GtidCatchUp { ref donor, .. } if donor == "mha02")
    );
}
