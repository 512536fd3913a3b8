//! Detection end to end against real MariaDB: three monitor loops (standing in for three
//! managers' monitors) check a sandbox master with the default settings; before
//! the master dies the quorum rule refuses, after SIGKILL every monitor reports `Dead`, the
//! replicas confirm (their IO threads lost the master) and the rule decides "dead".
//! IP range 127.0.81.0/24, directory /tmp/rmha-fo/detect_monitor.
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use raftmha::db::{ConnectSettings, MysqlServer, PingType};
use raftmha::detect::{
    Clock, Decision, ManagerVerdict, MonitorConfig, Refusal, SystemClock, Verdict, VerdictReport,
    decide, probe_replicas, run_monitor,
};
use raftmha::sandbox::{Sandbox, SandboxGuard, SandboxSpec};
use tokio::sync::{mpsc, watch};

fn server(sb: &Sandbox, index: usize, cfg: &MonitorConfig) -> MysqlServer {
    let opts = sb.admin_opts(index).expect("node exists");
    MysqlServer::new(ConnectSettings::from_opts(
        &opts,
        cfg.check_timeout(),
        cfg.check_timeout(),
    ))
}

/// Waits for the next report of `rx` with the given verdict, at most `limit`.
async fn until_verdict(
    rx: &mut mpsc::Receiver<VerdictReport>,
    verdict: Verdict,
    limit: Duration,
) -> VerdictReport {
    tokio::time::timeout(limit, async {
        loop {
            let r = rx.recv().await.expect("monitor still running");
            if r.verdict == verdict {
                return r;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {verdict:?} report within {limit:?}"))
}

#[tokio::test]
async fn three_monitors_and_the_replicas_agree_a_killed_master_is_dead() {
    let dir = PathBuf::from("/tmp/rmha-fo/detect_monitor");
    let _ = std::fs::remove_dir_all(&dir);
    let mut spec = SandboxSpec::new(dir, 3, "127.0.81.10".parse().expect("ip"));
    spec.timeout = Duration::from_secs(90);
    let sb = SandboxGuard(Sandbox::up(spec).await.expect("sandbox up"));
    let master = sb.node(1).expect("node1").clone();

    // Three monitors, one per ping type, as three managers might be configured.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut receivers = Vec::new();
    let mut tasks = Vec::new();
    for (manager, ping_type) in [
        (1u64, PingType::Select),
        (2, PingType::Connect),
        (3, PingType::Insert),
    ] {
        let cfg = MonitorConfig {
            ping_type,
            ..MonitorConfig::default()
        };
        let srv = server(&sb, 1, &cfg);
        let (tx, rx) = mpsc::channel(64);
        let stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            run_monitor(&srv, &cfg, &SystemClock, tx, stop).await
        }));
        receivers.push((manager, rx));
    }
    let voters: BTreeSet<u64> = [1, 2, 3].into();
    let cfg = MonitorConfig::default();
    let (r2, r3) = (server(&sb, 2, &cfg), server(&sb, 3, &cfg));
    let replicas = [("node2".to_string(), &r2), ("node3".to_string(), &r3)];
    let master_ip = master.ip.to_string();

    // Alive: every monitor says so and the rule refuses.
    let mut latest = Vec::new();
    for (manager, rx) in &mut receivers {
        let report = until_verdict(rx, Verdict::Alive, Duration::from_secs(10)).await;
        latest.push(ManagerVerdict {
            manager: *manager,
            master_epoch: 1,
            report,
        });
    }
    let evidence = probe_replicas(&replicas, &master_ip, master.port, Duration::from_secs(2)).await;
    let now = SystemClock.now();
    let d = decide(&Default::default(), &voters, 1, &latest, now, &evidence);
    assert!(
        matches!(d, Decision::NotDead(Refusal::NoQuorum { .. })),
        "{d:?}"
    );

    // SIGKILL: every monitor turns Dead (via Suspect), the replicas stop receiving.
    let killed_at = std::time::Instant::now();
    sb.kill_node(1).await.expect("kill master");
    let mut latest = Vec::new();
    for (manager, rx) in &mut receivers {
        let report = until_verdict(rx, Verdict::Dead, Duration::from_secs(10)).await;
        assert!(report.consecutive_failures >= 3, "{report:?}");
        assert!(report.failing_since.is_some());
        latest.push(ManagerVerdict {
            manager: *manager,
            master_epoch: 1,
            report,
        });
    }
    let mut evidence = Vec::new();
    for _ in 0..100 {
        // Keep the verdicts fresh with the monitors' re-affirmations.
        for (i, (_, rx)) in receivers.iter_mut().enumerate() {
            while let Ok(report) = rx.try_recv() {
                latest[i].report = report;
            }
        }
        evidence = probe_replicas(&replicas, &master_ip, master.port, Duration::from_secs(2)).await;
        let now = SystemClock.now();
        if let Decision::MasterDead {
            supporters,
            confirming_replicas,
        } = decide(&Default::default(), &voters, 1, &latest, now, &evidence)
        {
            // A measurement for the notes, not an assertion: tests never assert wall-clock times.
            eprintln!("kill -9 -> quorum decision: {:?}", killed_at.elapsed());
            assert_eq!(supporters, vec![1, 2, 3]);
            assert_eq!(
                confirming_replicas,
                vec!["node2".to_string(), "node3".to_string()]
            );
            // The same verdicts about another epoch (another master) decide nothing.
            let d = decide(&Default::default(), &voters, 2, &latest, now, &evidence);
            assert!(matches!(d, Decision::NotDead(_)), "{d:?}");
            // One manager alone is a minority.
            let d = decide(
                &Default::default(),
                &voters,
                1,
                &latest[..1],
                now,
                &evidence,
            );
            assert!(
                matches!(d, Decision::NotDead(Refusal::NoQuorum { .. })),
                "{d:?}"
            );
            stop_tx.send(true).expect("monitors listening");
            for t in tasks {
                t.await.expect("monitor task").expect("valid config");
            }
            sb.down().await.expect("down");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the replicas never confirmed: {evidence:?}");
}
