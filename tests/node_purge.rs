//! purge_relay_logs on a real replica: under the failover lock, with hard links, old relay logs
//! go, `relay_log_purge` is back to 0, and replication keeps running.
mod node_support;

use std::time::Duration;

use node_support::*;
use raftmha::sandbox::{Sandbox, SandboxGuard};
use raftmha_node::tools::purge::{PurgeRequest, purge};

#[tokio::test]
async fn purge_removes_old_relay_logs_safely() {
    let mut spec = spec("purge", "127.0.35.10");
    spec.nodes = 2;
    let sb = SandboxGuard(Sandbox::up(spec).await.unwrap());
    let work = workdir("purge");
    create_table(&sb).await;
    for i in 0..4 {
        write_batch(&sb, 1 + i * 1000, 10).await;
        sb.wait_replicas_caught_up(Duration::from_secs(60))
            .await
            .unwrap();
        sql(&sb, 2, "FLUSH RELAY LOGS").await;
    }
    write_batch(&sb, 9000, 10).await;
    sb.wait_replicas_caught_up(Duration::from_secs(60))
        .await
        .unwrap();
    let before = relay_files(&sb, 2);
    assert!(before.len() >= 5, "{before:?}");

    let req = PurgeRequest {
        target: db_target(&sb, 2),
        workdir: work.clone(),
        disable_relay_log_purge: false,
        use_hardlink: true,
        wait: Duration::from_secs(10),
    };
    let r = purge(&req).await.unwrap();
    assert!(!r.skipped_purge_on);
    assert!(r.hardlinked >= 4, "{r:?}");
    assert!(r.purged.len() >= 4, "{r:?}");
    assert!(r.bytes_freed > 0, "{r:?}");
    for f in &r.purged {
        assert!(!f.exists());
    }
    assert_eq!(query_string(&sb, 2, "SELECT @@relay_log_purge").await, "0");
    assert!(relay_files(&sb, 2).len() < before.len());
    let s = slave_status(&sb, 2).await;
    assert_eq!(
        (col(&s, "Slave_IO_Running"), col(&s, "Slave_SQL_Running")),
        ("Yes", "Yes")
    );
    write_batch(&sb, 20000, 5).await;
    sb.wait_replicas_caught_up(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        checksum(&sb, 1, "app.t").await,
        checksum(&sb, 2, "app.t").await
    );
    // Nothing left behind in the work dir.
    let left: Vec<_> = std::fs::read_dir(&work).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");

    // With relay_log_purge=1 the tool does nothing unless told to take over.
    sql(&sb, 2, "SET GLOBAL relay_log_purge = 1").await;
    assert!(purge(&req).await.unwrap().skipped_purge_on);
    sb.down().await.unwrap();
}
