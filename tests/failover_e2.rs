//! E2, the seed scenario in file/position mode through the managers and agents: the
//! candidate's IO thread stopped first, the other replica's later, the master wrote more,
//! then died by SIGKILL. The candidate gets the other replica's relay-log diff and the dead
//! master's saved tail; both survivors end with every transaction (equal checksums).
//! IP range 127.0.132.0/24, directories under /tmp/rmha-engine/.
mod failover_support;

use failover_support::*;
use raftmha::manager::testbed::TestbedOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e2_seed_scenario_relay_diff_and_saved_tail() {
    let opts = TestbedOptions {
        server_extra: [
            String::new(),
            "candidate_master = true".into(),
            String::new(),
        ],
        ..TestbedOptions::default()
    };
    let tb = testbed("e2_seed", 132, &opts).await;
    let before = seed_scenario(&tb).await;
    tb.sandbox.kill_node(1).await.expect("SIGKILL the master");

    let master = wait_failover(&tb).await;
    assert_eq!(master, "node2", "the candidate master is promoted");
    assert_seed_recovered(&tb, before).await;
    tb.down().await.expect("down");
}
