//! Relay logs as real replicas leave them: spanning master binlog rotations, a FLUSH RELAY LOGS
//! (no rotate, a master FDE copy), a replica restart (its own STOP event), and
//! `log_bin_compress=ON` (compressed on the master, stored decompressed in the relay log, so relay
//! offsets no longer line up with master positions).
mod node_support;

use std::time::Duration;

use node_support::*;
use raftmha::sandbox::{Sandbox, SandboxGuard};
use raftmha_node::binlog::Walker;
use raftmha_node::binlog::header::types;
use raftmha_node::binlog::relay::{MasterCoord, find_position, full_scan, list_numbered};
use raftmha_node::tools::apply::{ApplyRequest, apply};
use raftmha_node::tools::diff::generate;

fn count_events(files: &[std::path::PathBuf], pred: impl Fn(u8, u32) -> bool) -> usize {
    let mut n = 0;
    for f in files {
        let mut w = Walker::open(f).unwrap();
        while let Some(ev) = w.next_event().unwrap() {
            if pred(ev.header.type_code, ev.header.server_id) {
                n += 1;
            }
        }
    }
    n
}

#[tokio::test]
async fn diff_over_rotations_flush_restart_and_compression_is_exact() {
    let mut spec = spec("shapes", "127.0.32.10");
    spec.extra_cnf = vec![
        "log_bin_compress=ON".into(),
        "log_bin_compress_min_len=10".into(),
    ];
    let sb = SandboxGuard(Sandbox::up(spec).await.unwrap());
    let work = workdir("shapes");
    create_table(&sb).await;
    write_batch(&sb, 1, 20).await;
    sb.wait_replicas_caught_up(Duration::from_secs(60))
        .await
        .unwrap();

    sql(&sb, 2, "STOP SLAVE IO_THREAD").await;
    let b_read = read_coord(&sb, 2).await;
    write_batch(&sb, 1000, 20).await;
    sql(&sb, 1, "FLUSH BINARY LOGS").await;
    write_batch(&sb, 2000, 20).await;
    wait_io_read(&sb, 3, 1).await;
    sql(&sb, 3, "FLUSH RELAY LOGS").await;
    write_batch(&sb, 3000, 20).await;
    wait_io_read(&sb, 3, 1).await;
    sb.stop_node(3).await.unwrap(); // writes its STOP event into the relay log
    write_batch(&sb, 4000, 20).await;
    sb.start_node(3).await.unwrap();
    if col(&slave_status(&sb, 3).await, "Slave_IO_Running") != "Yes" {
        sql(&sb, 3, "START SLAVE").await;
    }
    sql(&sb, 1, "FLUSH BINARY LOGS").await;
    write_batch(&sb, 5000, 20).await;
    wait_io_read(&sb, 3, 1).await;
    sql(&sb, 3, "STOP SLAVE IO_THREAD").await;
    let c_read = read_coord(&sb, 3).await;
    let master_sum = checksum(&sb, 1, "app.t").await;

    let c_id = sb.node(3).unwrap().server_id;
    let relay = relay_files(&sb, 3);
    assert!(count_events(&relay, |t, sid| t == types::STOP && sid == c_id) >= 1);
    let master_binlogs = list_numbered(&sb.node(1).unwrap().datadir, "binlog").unwrap();
    assert!(
        count_events(&master_binlogs, |t, _| (165..=171).contains(&t)) > 0,
        "the master wrote compressed events"
    );
    assert_eq!(
        count_events(&relay, |t, _| (165..=171).contains(&t)),
        0,
        "relay holds them decompressed"
    );

    // A position in the newest master file: the size shortcut cannot be trusted across
    // decompressed events; whatever the method, the answer must equal the full scan's.
    let mut mid = None;
    let last_master = master_binlogs.last().unwrap();
    let mut w = Walker::open(last_master).unwrap();
    let mut xids = Vec::new();
    while let Some(ev) = w.next_event().unwrap() {
        if ev.header.type_code == types::XID {
            xids.push(u64::from(ev.header.log_pos));
        }
    }
    if let Some(p) = xids.get(xids.len() / 2) {
        mid = Some(MasterCoord {
            file: c_read.file.clone(),
            pos: *p,
        });
    }
    let mid = mid.expect("transactions in the newest master binlog");
    let with_fast = find_position(&relay, &mid, Some(&c_read)).unwrap();
    assert_eq!(
        with_fast.found,
        full_scan(&relay, &mid).unwrap(),
        "{with_fast:?}"
    );

    for node in [2, 3] {
        wait_sql_caught_up(&sb, node).await;
        sql(&sb, node, "STOP SLAVE").await;
    }
    let diff = work.join("diff_for_b.binlog");
    let g = generate(&relay, &b_read, Some(&c_read), &diff, true).unwrap();
    assert!(g.report.as_ref().is_some_and(|r| r.files > 3), "{g:?}");
    let r = apply(&ApplyRequest {
        files: vec![diff],
        target: db_target(&sb, 2),
        workdir: work.clone(),
        client_bindir: None,
        verify_crc: true,
        keep_files: false,
    })
    .await
    .unwrap();
    assert!(
        r.stream.incomplete.is_empty() && r.stream.gaps.is_empty(),
        "{r:?}"
    );
    assert_eq!(checksum(&sb, 2, "app.t").await, master_sum);
    assert_eq!(checksum(&sb, 3, "app.t").await, master_sum);
    sb.down().await.unwrap();
}
