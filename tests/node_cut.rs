//! A saved tail cut inside a transaction (at an event boundary, and inside an event) is reported
//! and never half-applied; the complete tail applied afterwards finishes the job.
mod node_support;

use std::time::Duration;

use node_support::*;
use raftmha::sandbox::{Sandbox, SandboxGuard};
use raftmha_node::binlog::Walker;
use raftmha_node::binlog::header::types;
use raftmha_node::tools::apply::{ApplyRequest, apply};
use raftmha_node::tools::save::{SaveRequest, save};

#[tokio::test]
async fn a_cut_transaction_is_reported_and_not_applied() {
    let sb = SandboxGuard(Sandbox::up(spec("cut", "127.0.33.10")).await.unwrap());
    let work = workdir("cut");
    create_table(&sb).await;
    write_batch(&sb, 1, 10).await;
    sb.wait_replicas_caught_up(Duration::from_secs(60))
        .await
        .unwrap();
    wait_sql_caught_up(&sb, 2).await;
    sql(&sb, 2, "STOP SLAVE").await;
    let from = read_coord(&sb, 2).await;
    // Small transactions, then a last multi-row transaction (ids 300000..300500 and an update).
    write_batch(&sb, 200_000, 5).await;
    let master_sum = checksum(&sb, 1, "app.t").await;

    let tail = work.join("tail.binlog");
    save(&SaveRequest {
        binlog_dirs: vec![sb.node(1).unwrap().datadir.clone()],
        start_file: from.file.clone(),
        start_pos: from.pos,
        output: tail.clone(),
        verify_crc: true,
    })
    .unwrap();
    // Find the last transaction: its GTID, a rows event inside it, and its XID.
    let (mut last_gtid, mut last_rows, mut last_xid) = (0, 0, 0);
    let mut w = Walker::open(&tail).unwrap();
    while let Some(ev) = w.next_event().unwrap() {
        match ev.header.type_code {
            types::MARIADB_GTID => last_gtid = ev.offset,
            types::XID => last_xid = ev.offset,
            23..=25 if ev.offset > last_gtid => last_rows = ev.offset,
            _ => {}
        }
    }
    assert!(last_gtid < last_rows && last_rows < last_xid);
    let bytes = std::fs::read(&tail).unwrap();
    let at_boundary = work.join("tail_cut_at_xid.binlog");
    std::fs::write(&at_boundary, &bytes[..last_xid as usize]).unwrap();
    let mid_event = work.join("tail_cut_mid_event.binlog");
    std::fs::write(&mid_event, &bytes[..last_rows as usize + 30]).unwrap();

    let req = |file| ApplyRequest {
        files: vec![file],
        target: db_target(&sb, 2),
        workdir: work.clone(),
        client_bindir: None,
        verify_crc: true,
        keep_files: false,
    };
    let big_rows = "SELECT COUNT(*) FROM app.t WHERE id >= 300000";
    let r = apply(&req(at_boundary)).await.unwrap();
    assert_eq!(r.stream.incomplete.len(), 1, "{r:?}");
    assert!(r.stream.groups_applied >= 5, "{r:?}");
    assert_eq!(
        query_string(&sb, 2, big_rows).await,
        "0",
        "half a transaction was applied"
    );

    let r = apply(&req(mid_event)).await.unwrap();
    assert_eq!(r.stream.groups_applied, 0, "{r:?}");
    assert!(!r.stream.incomplete.is_empty(), "{r:?}");
    assert_eq!(query_string(&sb, 2, big_rows).await, "0");

    let r = apply(&req(tail)).await.unwrap();
    assert_eq!(r.stream.groups_applied, 1, "{r:?}");
    assert_eq!(checksum(&sb, 2, "app.t").await, master_sum);
    sb.down().await.unwrap();
}
