//! The seed scenario on real MariaDB (file/position replication): replica B's IO thread stops
//! first, C's later, the master writes more, then the master is killed. Diffs from C's relay logs
//! for B plus the master's saved binlog tail bring B and C to exactly the master's data; applying
//! the same diffs again changes nothing; and `gtid_slave_pos` is right for a later GTID switch.
mod node_support;

use std::time::Duration;

use node_support::*;
use raftmha::sandbox::{Sandbox, SandboxGuard};
use raftmha_node::binlog::Walker;
use raftmha_node::binlog::header::types;
use raftmha_node::binlog::relay::{Found, MasterCoord, Method, find_position, full_scan};
use raftmha_node::tools::apply::{ApplyRequest, apply};
use raftmha_node::tools::diff::generate;
use raftmha_node::tools::save::{SaveOutcome, SaveRequest, save};

#[tokio::test]
async fn diffs_and_saved_tail_bring_every_replica_to_the_dead_masters_data() {
    let sb = SandboxGuard(Sandbox::up(spec("seed", "127.0.31.10")).await.unwrap());
    let work = workdir("seed");
    create_table(&sb).await;
    write_batch(&sb, 1, 50).await;
    sb.wait_replicas_caught_up(Duration::from_secs(60))
        .await
        .unwrap();

    sql(&sb, 2, "STOP SLAVE IO_THREAD").await; // B stops first
    write_batch(&sb, 1000, 40).await;
    sql(&sb, 1, "FLUSH BINARY LOGS").await; // the diff spans a master rotation
    write_batch(&sb, 2000, 40).await;
    wait_io_read(&sb, 3, 1).await;
    sql(&sb, 3, "STOP SLAVE IO_THREAD").await; // C later
    write_batch(&sb, 3000, 30).await; // only the master has these
    let master_sum = checksum(&sb, 1, "app.t").await;
    let master_gtid = query_string(&sb, 1, "SELECT @@gtid_binlog_pos").await;
    sb.kill_node(1).await.unwrap();

    let b_read = read_coord(&sb, 2).await;
    let c_read = read_coord(&sb, 3).await;
    assert_ne!(b_read, c_read);
    for node in [2, 3] {
        wait_sql_caught_up(&sb, node).await;
        sql(&sb, node, "STOP SLAVE").await;
    }

    // On C (latest): the diff for B.
    let diff = work.join("relay_from_read_to_latest_b.binlog");
    let g = generate(&relay_files(&sb, 3), &b_read, Some(&c_read), &diff, true).unwrap();
    assert!(matches!(g.find.found, Found::At { .. }), "{g:?}");
    let report = g.report.unwrap();
    assert!(
        report.data_events > 0 && report.truncated.is_empty(),
        "{report:?}"
    );

    // A target in the latest master file: the size shortcut is verified and used, and agrees
    // with the full scan.
    let master_dir0 = sb.node(1).unwrap().datadir.join(&c_read.file);
    let mut w = Walker::open(&master_dir0).unwrap();
    let mut xids = Vec::new();
    while let Some(ev) = w.next_event().unwrap() {
        if ev.header.type_code == types::XID && u64::from(ev.header.log_pos) < c_read.pos {
            xids.push(u64::from(ev.header.log_pos));
        }
    }
    let mid = MasterCoord {
        file: c_read.file.clone(),
        pos: xids[xids.len() / 2],
    };
    let fast = find_position(&relay_files(&sb, 3), &mid, Some(&c_read)).unwrap();
    assert_eq!(fast.method, Method::Fast, "{fast:?}");
    assert_eq!(fast.found, full_scan(&relay_files(&sb, 3), &mid).unwrap());

    // On the dead master's disk: the tail after C's read position.
    let tail = work.join("saved_master_binlog.binlog");
    let master_dir = sb.node(1).unwrap().datadir.clone();
    let out = save(&SaveRequest {
        binlog_dirs: vec![master_dir.clone()],
        start_file: c_read.file.clone(),
        start_pos: c_read.pos,
        output: tail.clone(),
        verify_crc: true,
    })
    .unwrap();
    assert!(matches!(out, SaveOutcome::Saved(_)), "{out:?}");

    let req = |node: usize, files: Vec<std::path::PathBuf>| ApplyRequest {
        files,
        target: db_target(&sb, node),
        workdir: work.clone(),
        client_bindir: None,
        verify_crc: true,
        keep_files: false,
    };
    let b = apply(&req(2, vec![diff.clone(), tail.clone()]))
        .await
        .unwrap();
    let c = apply(&req(3, vec![tail.clone()])).await.unwrap();
    assert!(
        b.stream.groups_applied > c.stream.groups_applied,
        "{b:?} {c:?}"
    );
    assert!(b.stream.incomplete.is_empty(), "{b:?}");
    for node in [2, 3] {
        assert_eq!(checksum(&sb, node, "app.t").await, master_sum, "node{node}");
        assert_eq!(
            query_string(&sb, node, "SELECT @@gtid_slave_pos").await,
            master_gtid
        );
    }

    // Applying the same diffs again changes nothing.
    let again = apply(&req(2, vec![diff.clone(), tail.clone()]))
        .await
        .unwrap();
    assert_eq!(again.stream.groups_applied, 0, "{again:?}");
    assert_eq!(
        again.stream.groups_skipped,
        b.stream.groups_applied + b.stream.groups_skipped
    );
    assert_eq!(checksum(&sb, 2, "app.t").await, master_sum);
    let binlog_pos = query_string(&sb, 2, "SELECT @@gtid_binlog_pos").await;
    assert_eq!(
        binlog_pos, master_gtid,
        "a re-apply must not write new transactions"
    );

    // gtid_slave_pos is right: B can follow C with MASTER_USE_GTID=slave_pos without re-fetching.
    let c_node = sb.node(3).unwrap();
    let creds = sb.credentials();
    sql(&sb, 3, "SET GLOBAL read_only = 0").await;
    sql(
        &sb,
        2,
        &format!(
            "CHANGE MASTER TO MASTER_HOST='{}', MASTER_PORT={}, MASTER_USER='{}', MASTER_PASSWORD='{}', MASTER_USE_GTID=slave_pos",
            c_node.ip, c_node.port, creds.repl_user, creds.repl_password
        ),
    )
    .await;
    sql(&sb, 2, "START SLAVE").await;
    sql(
        &sb,
        3,
        "INSERT INTO app.t VALUES (999999, 'after failover', 7)",
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = slave_status(&sb, 2).await;
        assert!(col(&s, "Last_SQL_Error").is_empty(), "{s:?}");
        if checksum(&sb, 2, "app.t").await == checksum(&sb, 3, "app.t").await {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B did not follow C: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sb.down().await.unwrap();
}
