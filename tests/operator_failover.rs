//! `raftmha failover` (MHA's --master_state=dead): refused while the master answers, then a
//! manual failover of a SIGKILLed master with automatic failover paused, the engine choosing
//! the new master; `--force` on a live master fences it first. IP ranges 127.0.203.0/24 and
//! 127.0.206.0/24, directories under /tmp/rmha-switch/.
mod failover_support;
mod operator_switch_support;

use failover_support::{assert_all_acked_on, replicates_from};
use operator_switch_support::*;
use raftmha::manager::testbed::Testbed;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn manual_failover_of_a_killed_master_and_refusal_while_it_answers() {
    let (tb, writer) = testbed_with_writer("manual_failover", 203, false).await;

    let o = cli(
        &tb,
        &[
            "failover",
            "--cluster",
            "nope",
            "--dead-master",
            "node1",
            "--yes",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = cli(
        &tb,
        &[
            "failover",
            "--cluster",
            "app1",
            "--dead-master",
            "node2",
            "--yes",
        ],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "node2 is not the master: {}",
        text(&o)
    );
    let o = cli(
        &tb,
        &[
            "failover",
            "--cluster",
            "app1",
            "--dead-master",
            "node1",
            "--yes",
        ],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "node1 still answers: {}",
        text(&o)
    );
    assert!(text(&o).contains("still answers"), "{}", text(&o));
    assert_eq!(
        tb.cluster().await.and_then(|c| c.master).as_deref(),
        Some("node1")
    );

    expect_exit(&tb, 0, &["pause", "--cluster", "app1"]).await;
    tb.sandbox.kill_node(1).await.expect("SIGKILL the master");
    let o = cli(
        &tb,
        &[
            "failover",
            "--cluster",
            "app1",
            "--dead-master",
            "node1",
            "--yes",
            "--json",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let v = json(&o);
    assert_eq!(v["kind"], "manual_failover", "{v}");
    writer.wait(50).await;
    let acked = writer.stop().await;
    let c = tb.cluster().await.expect("state");
    let master = c.master.clone().expect("a master");
    assert_ne!(master, "node1");
    let m = Testbed::index_of(&master).expect("nodeK");
    let other = if m == 2 { 3 } else { 2 };
    assert_all_acked_on(&tb, m, &[other], &acked).await;
    assert!(replicates_from(&tb, other, m).await);
    assert!(
        c.paused,
        "still paused: the manual failover does not resume"
    );
    down(tb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forced_manual_failover_of_a_live_master_fences_it_first() {
    let (tb, writer) = testbed_with_writer("manual_failover_force", 206, true).await;
    let o = expect_exit(
        &tb,
        0,
        &[
            "failover",
            "--cluster",
            "app1",
            "--dead-master",
            "node1",
            "--new-master",
            "node2",
            "--force",
            "--yes",
        ],
    )
    .await;
    assert!(text(&o).contains("node2"), "{}", text(&o));
    writer.wait(50).await;
    let acked = writer.stop().await;
    assert!(read_only(&tb, 1).await, "the live old master was fenced");
    assert_all_acked_on(&tb, 2, &[3], &acked).await;
    assert!(replicates_from(&tb, 3, 2).await);
    let c = tb.cluster().await.expect("state");
    assert_eq!((c.master.as_deref(), c.epoch), (Some("node2"), 1));
    down(tb).await;
}
