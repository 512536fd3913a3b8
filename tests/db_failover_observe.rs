//! The db layer feeding the failover planner with real MariaDB state: seed 004's scenario
//! (the candidate's IO thread stopped first, the other replica's later, the master wrote more,
//! then died by SIGKILL) observed through `MysqlServer`, in file/position and in GTID mode.
//! Only the plan is checked here; executing it is the engine's job.
//! IP ranges 127.0.82.0/24 and 127.0.83.0/24, directories under /tmp/rmha-fo/.
use std::path::PathBuf;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use raftmha::db::{ConnectSettings, DbServer, Dialect, Flavor, MysqlServer, Secret, WaitOutcome};
use raftmha::failover::{
    Action, DeadMaster, FailoverInput, FailoverPolicy, Mode, Need, ReplicationAccount, RepointBy,
    SelectionReason, ServerPolicy, ServerRef, change_source, observe_replicas, plan_failover,
    plan_fencing,
};
use raftmha::sandbox::{Sandbox, SandboxGuard, SandboxSpec};

fn server(sb: &Sandbox, index: usize) -> MysqlServer {
    let opts = sb.admin_opts(index).expect("node exists");
    MysqlServer::new(ConnectSettings::from_opts(
        &opts,
        Duration::from_secs(1),
        Duration::from_secs(5),
    ))
}

fn server_ref(sb: &Sandbox, index: usize) -> ServerRef {
    let node = sb.node(index).expect("node exists");
    ServerRef::new(node.name.clone(), node.ip.to_string(), node.port)
}

async fn write(sb: &Sandbox, sql: &str) {
    let mut c = sb.conn(1).await.expect("connect master");
    c.query_drop(sql).await.expect("write");
    c.disconnect().await.expect("disconnect");
}

async fn stop_io(s: &MysqlServer) {
    let d = Dialect::new(s.version().await.expect("version"));
    s.execute(&d.stop_io_thread())
        .await
        .expect("stop io thread");
}

/// Runs seed 004 on a fresh sandbox and returns the planner's input after the master died.
async fn seed_004(name: &str, base_ip: &str, gtid: bool) -> (SandboxGuard, FailoverInput) {
    let dir = PathBuf::from("/tmp/rmha-fo").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let mut spec = SandboxSpec::new(dir, 3, base_ip.parse().expect("ip"));
    spec.gtid = gtid;
    spec.timeout = Duration::from_secs(90);
    let sb = SandboxGuard(Sandbox::up(spec).await.expect("sandbox up"));
    let (m, r2, r3) = (server(&sb, 1), server(&sb, 2), server(&sb, 3));

    write(&sb, "CREATE DATABASE test").await;
    write(&sb, "CREATE TABLE test.t1 (a INT PRIMARY KEY)").await;
    write(&sb, "INSERT INTO test.t1 VALUES (1)").await;
    sb.wait_replicas_caught_up(Duration::from_secs(30))
        .await
        .expect("caught up");
    stop_io(&r2).await;
    write(&sb, "INSERT INTO test.t1 VALUES (2)").await;
    let after_2 = m
        .master_status()
        .await
        .expect("status")
        .expect("binlog on")
        .coord;
    let d3 = Dialect::new(r3.version().await.expect("version"));
    let (wait, kind) = d3.wait_for_position(&after_2, Duration::from_secs(10));
    assert_eq!(
        r3.wait(&wait, kind, Duration::from_secs(10))
            .await
            .expect("wait"),
        WaitOutcome::Reached
    );
    stop_io(&r3).await;
    write(&sb, "INSERT INTO test.t1 VALUES (3)").await;
    let master_vars = m.variables().await.expect("master variables");
    sb.kill_node(1).await.expect("kill master");

    let candidate = ServerPolicy {
        candidate_master: true,
        ..ServerPolicy::default()
    };
    let replicas = [
        (&r2, server_ref(&sb, 2), candidate),
        (&r3, server_ref(&sb, 3), ServerPolicy::default()),
    ];
    let observed = observe_replicas(&replicas, Duration::from_secs(5)).await;
    let input = FailoverInput {
        cluster: "app1".into(),
        dead_master: DeadMaster {
            server: server_ref(&sb, 1),
            server_id: Some(master_vars.server_id),
            server_uuid: None,
            // Its host stays up (only mariadbd died): the engine's agent can save the tail.
            host_reachable: true,
        },
        replicas: observed,
        policy: FailoverPolicy::default(),
    };
    (sb, input)
}

#[tokio::test]
async fn seed_004_file_position_plan_from_real_servers() {
    let (sb, input) = seed_004("db_failover_observe_filepos", "127.0.82.10", false).await;
    let fencing = plan_fencing(&input);
    assert_eq!(
        fencing
            .iter()
            .filter(|s| matches!(s.action, Action::StopIoThread { .. }))
            .count(),
        2
    );

    let p = plan_failover(&input).expect("a plan");
    assert_eq!(p.mode, Mode::FilePosition);
    assert_eq!(
        p.latest.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["node3"]
    );
    assert_eq!(
        p.oldest.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["node2"]
    );
    assert_eq!(
        (p.new_master.name.as_str(), p.selection),
        ("node2", SelectionReason::Candidate)
    );
    assert!(p.lost.is_empty(), "{:?}", p.lost);
    let (node2, node3) = (&p.recoveries[0], &p.recoveries[1]);
    assert!(node2.read < node3.read, "node2 stopped receiving first");
    assert_eq!(
        node2.needs,
        vec![
            Need::RelayDiff {
                donor: "node3".into(),
                from: node2.read.clone(),
                to: node3.read.clone()
            },
            Need::MasterTail
        ]
    );
    assert_eq!(node3.needs, vec![Need::MasterTail]);
    assert_eq!(
        p.save_tail_from.as_ref(),
        Some(&node3.read),
        "row 3 is only in the dead master's binlog"
    );
    sb.down().await.expect("down");
}

#[tokio::test]
async fn seed_004_gtid_plan_from_real_servers() {
    let (sb, input) = seed_004("db_failover_observe_gtid", "127.0.83.10", true).await;
    let p = plan_failover(&input).expect("a plan");
    assert_eq!(p.mode, Mode::Gtid);
    assert_eq!(p.latest[0].name, "node3");
    assert_eq!(p.new_master.name, "node2");
    assert!(p.errant.is_empty(), "{:?}", p.errant);
    assert!(
        matches!(p.recoveries[0].needs[0], Need::GtidCatchUp { ref donor, .. } if donor == "node3"),
        "{:?}",
        p.recoveries[0].needs
    );
    assert!(p.steps.iter().any(|s| matches!(
        &s.action,
        Action::Repoint { replica, by: RepointBy::Gtid, .. } if replica == "node3"
    )));

    // Run the plan's database steps that need no agent (the dead master's tail, row 3, is
    // the agent's part) and check the survivors end up identical and replicating.
    let (r2, r3) = (server(&sb, 2), server(&sb, 3));
    let creds = sb.credentials();
    let account = ReplicationAccount {
        user: creds.repl_user.clone(),
        password: Secret::new(creds.repl_password.clone()),
        connect_retry_secs: Some(1),
        heartbeat_period: Some(Duration::from_millis(500)),
    };
    let d2 = Dialect::new(r2.version().await.expect("version"));
    let d3 = Dialect::new(r3.version().await.expect("version"));
    let limit = Duration::from_secs(10);
    for step in &p.steps {
        match &step.action {
            Action::WaitRelayLogApplied { server: name, read } => {
                let (s, d) = if name == "node2" {
                    (&r2, &d2)
                } else {
                    (&r3, &d3)
                };
                let (wait, kind) = d.wait_for_position(read, limit);
                assert_eq!(
                    s.wait(&wait, kind, limit).await.expect("wait"),
                    WaitOutcome::Reached
                );
            }
            Action::GtidCatchUp {
                target,
                donor,
                until,
            } => {
                assert_eq!((target.as_str(), donor.as_str()), ("node2", "node3"));
                let donor_ref = &p.recoveries[1].server;
                let source =
                    change_source(Flavor::MariaDb, donor_ref, &account, RepointBy::Gtid, None)
                        .expect("gtid");
                r2.execute(&d2.stop_replica()).await.expect("stop");
                r2.execute(&d2.change_source(&source))
                    .await
                    .expect("change master to donor");
                r2.execute(&d2.start_replica()).await.expect("start");
                let (wait, kind) = d2.wait_for_gtids(until, limit).expect("flavor");
                assert_eq!(
                    r2.wait(&wait, kind, limit).await.expect("wait"),
                    WaitOutcome::Reached
                );
                r2.execute(&d2.stop_replica()).await.expect("stop");
            }
            Action::CaptureNewMasterPosition { .. } => {
                assert!(r2.master_status().await.expect("status").is_some());
            }
            Action::EnableWrites { .. } => r2
                .execute(&d2.set_read_only(false))
                .await
                .expect("writable"),
            Action::Repoint { replica, by, .. } => {
                assert_eq!(replica, "node3");
                let source = change_source(Flavor::MariaDb, &p.new_master, &account, *by, None)
                    .expect("gtid");
                r3.execute(&d3.stop_replica()).await.expect("stop");
                r3.execute(&d3.change_source(&source))
                    .await
                    .expect("repoint");
                r3.execute(&d3.start_replica()).await.expect("start");
            }
            Action::ResetReplicaOnNewMaster { .. } => {
                r2.execute(&d2.reset_replica_all()).await.expect("reset")
            }
            _ => {}
        }
    }
    let mut c2 = sb.conn(2).await.expect("connect new master");
    c2.query_drop("INSERT INTO test.t1 VALUES (4)")
        .await
        .expect("the new master takes writes");
    let target = r2.gtid_state().await.expect("gtid").executed;
    let (wait, kind) = d3.wait_for_gtids(&target, limit).expect("flavor");
    assert_eq!(
        r3.wait(&wait, kind, limit).await.expect("wait"),
        WaitOutcome::Reached
    );
    for n in [2, 3] {
        let mut c = sb.conn(n).await.expect("connect");
        let v: Vec<i32> = c
            .query("SELECT a FROM test.t1 ORDER BY a")
            .await
            .expect("select");
        assert_eq!(
            v,
            vec![1, 2, 4],
            "node{n}: row 2 came from the donor, row 3 needs the agent"
        );
    }
    let st3 = r3.replica_status().await.expect("status").expect("replica");
    assert!(st3.is_receiving() && st3.replicates_from(&p.new_master.host, p.new_master.port));
    sb.down().await.expect("down");
}
