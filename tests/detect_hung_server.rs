//! A "hung mysqld": a real TCP listener that accepts connections and never says a word (as a
//! stopped or wedged server whose kernel still completes handshakes). Every check must end
//! by its own timeout, inside the interval, and the monitor loop must turn `Dead` without a
//! check ever blocking the loop. IP 127.0.84.1, no database needed.
use std::time::Duration;

use raftmha::db::{
    ConnectSettings, DbServer, FailureKind, MysqlServer, PingOutcome, PingType, Secret,
};
use raftmha::detect::{MonitorConfig, SystemClock, Verdict, run_monitor};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

async fn silent_listener() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.84.1:0")
        .await
        .expect("bind on loopback");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // keep it open, say nothing
        }
    });
    (addr, task)
}

#[tokio::test]
async fn checks_against_a_silent_server_time_out_and_the_monitor_turns_dead() {
    let (addr, listener) = silent_listener().await;
    let cfg = MonitorConfig::default();
    let server = MysqlServer::new(ConnectSettings {
        host: addr.ip().to_string(),
        port: addr.port(),
        user: "monitor".into(),
        password: Secret::new("unused"),
        connect_timeout: cfg.check_timeout(),
        read_timeout: cfg.check_timeout(),
    });
    for kind in [PingType::Select, PingType::Connect, PingType::Insert] {
        assert_eq!(
            server.ping(kind).await,
            PingOutcome::Failed(FailureKind::Timeout),
            "{kind:?}"
        );
    }

    let (tx, mut rx) = mpsc::channel(16);
    let (stop_tx, stop_rx) = watch::channel(false);
    let monitor =
        tokio::spawn(async move { run_monitor(&server, &cfg, &SystemClock, tx, stop_rx).await });
    let mut verdicts = Vec::new();
    let dead = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(report) = rx.recv().await {
            verdicts.push(report.verdict);
            if report.verdict == Verdict::Dead {
                return report;
            }
        }
        panic!("monitor stopped early");
    })
    .await
    .expect("dead within 10 s");
    assert_eq!(verdicts, vec![Verdict::Suspect, Verdict::Dead]);
    assert_eq!(dead.last_failure, Some(FailureKind::Timeout));
    stop_tx.send(true).expect("monitor listening");
    monitor.await.expect("monitor task").expect("valid config");
    listener.abort();
}
