//! A manager whose data dir was lost or damaged refuses to start instead of rejoining with
//! an empty log; bad configs fail with one line naming the key.
mod manager_support;

use std::time::Duration;

use manager_support::{BIN, harness, stderr};
use raftmha::state::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_a_missing_or_damaged_data_dir_refuses_to_start() {
    let mut h = harness("datadir", 55, 3);
    h.start_all();
    let leader = h.wait_leader(&[1, 2, 3]).await;
    h.client(leader).write(&Command::Noop).await.expect("write");
    let victim = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("victim");

    // Wiped entirely: the running cluster still lists it as a member.
    h.kill(victim);
    std::fs::remove_dir_all(h.data_dir(victim)).expect("wipe");
    h.start(victim);
    let exit = h.wait_exit(victim, Duration::from_secs(30)).expect("exits");
    assert!(!exit.success());
    let log = h.log(victim);
    assert!(
        log.contains("refusing to rejoin with an empty log"),
        "{log}"
    );
    assert!(!h.data_dir(victim).exists(), "nothing was created");

    // Log store removed but the marker kept.
    let other = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader && *id != victim)
        .expect("other");
    h.kill(other);
    std::fs::remove_dir_all(h.data_dir(other).join("raft.sled")).expect("remove store");
    h.start(other);
    let exit = h.wait_exit(other, Duration::from_secs(30)).expect("exits");
    assert!(!exit.success());
    assert!(
        h.log(other).contains("log store raft.sled/ is missing"),
        "{}",
        h.log(other)
    );

    // A corrupted marker.
    std::fs::write(h.data_dir(other).join("MANAGER"), b"\x00garbage").expect("corrupt");
    h.start(other);
    let exit = h.wait_exit(other, Duration::from_secs(30)).expect("exits");
    assert!(!exit.success());
    assert!(
        h.log(other).contains("marker is corrupt"),
        "{}",
        h.log(other)
    );
}

fn run_with_config(dir: &std::path::Path, text: &str) -> std::process::Output {
    let path = dir.join("bad.toml");
    std::fs::write(&path, text).expect("write config");
    std::process::Command::new(BIN)
        .args(["manager", "--config"])
        .arg(&path)
        .output()
        .expect("run")
}

#[test]
fn bad_configs_fail_with_one_line_naming_the_key() {
    let dir = std::path::Path::new("/tmp/rmha-raft/bad_configs");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("token"), "t0ken").expect("token");
    let good = "node_id = 1\nlisten = \"127.0.56.1:7100\"\ndata_dir = \"d1\"\nauth_token_file = \"token\"\n\
        [[initial_voters]]\nid = 1\naddr = \"127.0.56.1:7100\"\n\
        [[initial_voters]]\nid = 2\naddr = \"127.0.56.2:7100\"\n\
        [timing]\nheartbeat_ms = 50\nelection_timeout_min_ms = 250\nelection_timeout_max_ms = 400\n";
    let cases = [
        (good.replace("id = 2", "id = 1"), "initial_voters[1].id"),
        (
            good.replace("127.0.56.2:7100", "not-an-address"),
            "initial_voters[1].addr",
        ),
        (
            good.replace("listen = \"127.0.56.1:7100\"", "listen = \"127.0.56.1\""),
            "listen",
        ),
        (
            good.replace(
                "election_timeout_min_ms = 250",
                "election_timeout_min_ms = 20",
            ),
            "timing.election_timeout_min_ms",
        ),
        (
            good.replace("auth_token_file = \"token\"", "auth_token_file = \"nope\""),
            "auth_token_file",
        ),
        (good.replace("node_id = 1", "node_id = 0"), "node_id"),
    ];
    for (text, key) in cases {
        let out = run_with_config(dir, &text);
        assert_eq!(out.status.code(), Some(2), "{key}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
        assert!(!err.contains("t0ken"), "the token never appears: {err}");
    }
    let out = run_with_config(dir, "node_id = [");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
}
