//! Partitions between local processes with real sockets, iptables rules and cgroups.
use std::net::Ipv4Addr;
use std::process::Command;

use raftmha::chaos::{NetFaults, process_in_group};

/// Tries a TCP connect to `ip:port` from a bash started in `group` (or in no group).
fn connects(faults: &NetFaults, group: Option<&str>, ip: Ipv4Addr, port: u16) -> bool {
    let mut cmd = Command::new("timeout");
    cmd.args(["1", "bash", "-c", &format!("exec 3<>/dev/tcp/{ip}/{port}")]);
    if let Some(g) = group {
        process_in_group(&mut cmd, &faults.group(g).unwrap()).unwrap();
    }
    cmd.status().unwrap().success()
}

#[test]
fn cut_isolates_one_sender_and_isolate_everyone_and_drop_heals() {
    let ip: Ipv4Addr = "127.0.17.10".parse().unwrap();
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept in the background so connects complete.
    std::thread::spawn(move || for _ in listener.incoming() {});

    let faults = NetFaults::new("test-netfaults").unwrap();
    assert!(connects(&faults, Some("m1"), ip, port));
    assert!(connects(&faults, Some("m2"), ip, port));

    faults.cut("m1", ip).unwrap();
    assert!(
        !connects(&faults, Some("m1"), ip, port),
        "m1 must be cut off"
    );
    assert!(
        connects(&faults, Some("m2"), ip, port),
        "m2 must be unaffected"
    );
    assert!(
        connects(&faults, None, ip, port),
        "processes outside the run must be unaffected"
    );

    faults.isolate(ip).unwrap();
    assert!(!connects(&faults, Some("m2"), ip, port));
    assert!(!connects(&faults, None, ip, port));
    assert_eq!(faults.rules().unwrap(), 3);

    faults.heal().unwrap();
    assert_eq!(faults.rules().unwrap(), 0);
    assert!(connects(&faults, Some("m1"), ip, port));

    faults.isolate(ip).unwrap();
    drop(faults);
    // Dropping removes the chain and its jump: the address is reachable again.
    let out = Command::new("iptables")
        .args(["-w", "-S", "OUTPUT"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("RMHA-test-netfaults"));
    let faults = NetFaults::new("test-netfaults2").unwrap();
    assert!(connects(&faults, None, ip, port));
}

#[test]
fn bad_names_are_refused() {
    assert!(NetFaults::new("has space").is_err());
    assert!(NetFaults::new("").is_err());
    assert!(NetFaults::new("way-too-long-a-name-for-a-chain").is_err());
}
