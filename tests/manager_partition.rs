//! The leader cut off from the other two managers by iptables: the majority elects a new
//! leader, the old one cannot commit anything, and after healing it rejoins as a follower
//! with its uncommitted write discarded. Needs root and iptables.
mod manager_support;

use std::process::Command as Process;
use std::time::Duration;

use manager_support::{harness, wait_for};
use raftmha::state::Command;
use raftmha::state::cluster_file::ClusterSpec;

const APP1: &str = include_str!("../config/app1.toml");
const TAG: &str = "rmha-raft-test-partition";

/// DROP rules between two sets of addresses, removed on drop (even when the test fails).
struct Partition {
    rules: Vec<Vec<String>>,
}

impl Partition {
    fn isolate(ip: &str, from: &[String]) -> Self {
        let mut p = Partition { rules: Vec::new() };
        for other in from {
            for (src, dst) in [(ip, other.as_str()), (other.as_str(), ip)] {
                let rule: Vec<String> = [
                    "INPUT",
                    "-s",
                    src,
                    "-d",
                    dst,
                    "-m",
                    "comment",
                    "--comment",
                    TAG,
                    "-j",
                    "DROP",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                let mut args = vec!["-w".to_string(), "-I".to_string()];
                args.extend(rule.iter().cloned());
                let out = Process::new("iptables")
                    .args(&args)
                    .output()
                    .expect("run iptables");
                assert!(
                    out.status.success(),
                    "iptables {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                p.rules.push(rule);
            }
        }
        p
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        for rule in self.rules.drain(..) {
            let mut args = vec!["-w".to_string(), "-D".to_string()];
            args.extend(rule);
            let _ = Process::new("iptables").args(&args).output();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_is_replaced_cannot_commit_and_rejoins_as_follower() {
    let mut h = harness("partition", 57, 3);
    h.start_all();
    let old = h.wait_leader(&[1, 2, 3]).await;
    h.client(old).write(&Command::Noop).await.expect("write");
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != old).collect();
    let other_ips: Vec<String> = others.iter().map(|id| h.ip(*id)).collect();

    let partition = Partition::isolate(&h.ip(old), &other_ips);
    let new = wait_for(
        "the majority to elect a new leader",
        Duration::from_secs(30),
        || {
            let (h, others) = (&h, &others);
            async move { h.agreed_leader(others).await.filter(|l| *l != old) }
        },
    )
    .await;

    // The old leader cannot commit: its write fails (it is never acknowledged).
    let mut spec = ClusterSpec::parse(APP1).expect("app1.toml");
    spec.name = "written-by-isolated-leader".into();
    let isolated_write = h
        .client(old)
        .write(&Command::RegisterCluster {
            spec: Box::new(spec),
        })
        .await;
    assert!(isolated_write.is_err(), "{isolated_write:?}");
    // The majority keeps committing.
    h.client(new)
        .write(&Command::Noop)
        .await
        .expect("majority write");

    drop(partition);
    let leader = h.wait_leader(&[1, 2, 3]).await;
    assert_ne!(
        leader, old,
        "pre-vote: the healed node does not depose the new leader"
    );
    let (state, index) = h.client(new).read_state().await.expect("read");
    assert!(!state.clusters.contains_key("written-by-isolated-leader"));
    assert_eq!(state.applied_commands, 2);
    wait_for(
        "the old leader to follow and catch up",
        Duration::from_secs(30),
        || {
            let h = &h;
            async move {
                let s = h.status(old).await?;
                (s.role == "follower" && s.leader == Some(leader) && s.applied_index >= Some(index))
                    .then_some(())
            }
        },
    )
    .await;
    // Reads through the old leader are forwarded and see the same state.
    let (via_old, _) = h
        .client(old)
        .read_state()
        .await
        .expect("read via old leader");
    assert_eq!(via_old, state);
}
