//! E6 (a second master failure within MHA's anti-flapping window waits for `raftmha cluster
//! ack`) and E8 (`no_master` is never promoted, `candidate_master` is preferred).
//! IP ranges 127.0.141.0/24 and 127.0.142.0/24, directories under /tmp/rmha-engine/.
mod failover_support;

use std::time::Duration;

use failover_support::*;
use raftmha::manager::testbed::TestbedOptions;
use raftmha::state::{Command, CommandResult};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e6_a_second_failure_in_the_window_waits_for_ack() {
    let tb = testbed("e6_ack", 141, &TestbedOptions::default()).await;
    create_w_table(&tb).await;
    tb.sandbox.kill_node(1).await.expect("kill node1");
    let first = wait_failover(&tb).await;
    let first_idx = raftmha::manager::testbed::Testbed::index_of(&first).expect("nodeK");

    tb.sandbox
        .kill_node(first_idx)
        .await
        .expect("kill the new master");
    // The managers see it dead, but the guard holds: no second failover starts.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let c = tb.cluster().await.expect("state");
    assert_eq!(c.failovers.len(), 1, "no second failover without an ack");
    assert_eq!(c.master.as_deref(), Some(first.as_str()));
    assert!(
        c.verdicts[&first]
            .values()
            .filter(|v| v.verdict == raftmha::state::Verdict::Dead)
            .count()
            >= 2,
        "a quorum did see {first} dead"
    );

    let (ack, _) = tb
        .managers
        .client(2)
        .write(&Command::AckFailover {
            cluster: "app1".into(),
        })
        .await
        .expect("ack");
    assert!(matches!(ack, CommandResult::Ok { .. }), "{ack:?}");
    let c = tb
        .wait_for("the second failover", Duration::from_secs(60), |c| {
            c.failovers.len() == 2 && c.failovers.back().is_some_and(|f| f.finished.is_some())
        })
        .await
        .expect("second failover");
    let last = c.master.expect("master");
    assert_ne!(last, first);
    assert_ne!(last, "node1");
    let idx = raftmha::manager::testbed::Testbed::index_of(&last).expect("nodeK");
    let have = ids(&tb, idx).await;
    assert_eq!(have, [1, 2, 3].into_iter().collect());
    sql(&tb, idx, "INSERT INTO test.w VALUES (4)").await;
    tb.down().await.expect("down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e8_no_master_is_never_promoted_and_candidate_master_is_preferred() {
    let opts = TestbedOptions {
        server_extra: [
            String::new(),
            "no_master = true".into(),
            "candidate_master = true".into(),
        ],
        ..TestbedOptions::default()
    };
    let tb = testbed("e8_policy", 142, &opts).await;
    create_w_table(&tb).await;
    tb.sandbox.kill_node(1).await.expect("kill node1");
    let master = wait_failover(&tb).await;
    assert_eq!(
        master, "node3",
        "node2 is no_master, node3 is the candidate"
    );
    assert!(
        replicates_from(&tb, 2, 3).await,
        "node2 replicates from node3"
    );
    tb.down().await.expect("down");
}

/// Part of E5: a failed-over master that comes back into reach is fenced by the leader
/// (read_only=ON), even if it restarts writable. (The cut-off-by-iptables half is not here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e5_a_failed_over_master_that_comes_back_is_made_read_only() {
    let tb = testbed("e5_comeback", 144, &TestbedOptions::default()).await;
    create_w_table(&tb).await;
    tb.sandbox.kill_node(1).await.expect("kill node1");
    wait_failover(&tb).await;
    tb.sandbox.start_node(1).await.expect("restart node1");
    sql(&tb, 1, "SET GLOBAL read_only = OFF").await;
    let mut fenced = false;
    for _ in 0..300 {
        // The fence kills client sessions, ours included when it lands between our connect
        // and our query: a closed connection is a reason to look again, not a failure.
        let Ok(mut c) = tb.sandbox.conn(1).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let ro: Option<i64> = match mysql_async::prelude::Queryable::query_first(
            &mut c,
            "SELECT @@read_only",
        )
        .await
        {
            Ok(ro) => ro,
            Err(e) => {
                eprintln!("read_only: {e} (looking again)");
                None
            }
        };
        let _ = c.disconnect().await;
        if ro == Some(1) {
            fenced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fenced, "the returned old master was not made read-only");
    tb.down().await.expect("down");
}
