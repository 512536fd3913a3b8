//! The option file of one sandbox node.
//!
//! Every node gets the same replication-relevant settings, whatever its starting role, because
//! any node may be promoted later: binary log on, `log_slave_updates` (so a promoted replica's
//! binlog holds what it received), `relay_log_purge=OFF` (MHA needs old relay logs to build
//! diffs), crash-safe flushing, and `read_only=ON` so a node that restarts never takes writes
//! until something decides it is the master (`up` switches node 1 to read_only=OFF at runtime).
use std::fmt::Write;

use super::{NodeInfo, SandboxSpec};

pub fn render(spec: &SandboxSpec, node: &NodeInfo, as_root: bool) -> String {
    let mut s = String::new();
    let datadir = node.datadir.display();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    line("# Written by `raftmha sandbox up`. mariadbd runs with --defaults-file=this file.".into());
    line("[mariadbd]".into());
    if as_root {
        // mariadbd refuses to run as root unless told to; the sandbox never switches users.
        line("user=root".into());
    }
    line(format!("datadir={datadir}"));
    line(format!("socket={}", node.socket.display()));
    line(format!("pid-file={}", node.pid_file.display()));
    line(format!("log-error={}", node.error_log.display()));
    // A private tmpdir: parallel instances sharing /tmp collide on temporary table files.
    line(format!("tmpdir={}", node.dir.join("tmp").display()));
    line(format!("bind-address={}", node.ip));
    line(format!("port={}", node.port));
    line(format!("server-id={}", node.server_id));
    line(format!("report-host={}", node.ip));
    line(format!("report-port={}", node.port));
    line("skip-name-resolve".into());
    line(format!("log-bin={datadir}/binlog"));
    line(format!("log-bin-index={datadir}/binlog.index"));
    line(format!("relay-log={datadir}/relay"));
    line(format!("relay-log-index={datadir}/relay.index"));
    line(format!("relay-log-info-file={datadir}/relay-log.info"));
    line("log-slave-updates=ON".into());
    line("relay-log-purge=OFF".into());
    line("binlog-format=ROW".into());
    line("sync-binlog=1".into());
    line("innodb-flush-log-at-trx-commit=1".into());
    line("read-only=ON".into());
    // Small and quick to start: these are test instances on a 2-core machine.
    line("innodb-buffer-pool-size=32M".into());
    line("innodb-log-file-size=16M".into());
    line("performance-schema=OFF".into());
    line("max-connections=200".into());
    line("character-set-server=utf8mb4".into());
    // slave_net_timeout stays at MariaDB's default (60 s), as in production: the managers keep
    // a short MASTER_HEARTBEAT_PERIOD on the replicas and read a silent master from their
    // stream (settings.heartbeat_period_ms), not from their IO threads giving up.
    if spec.gtid {
        line("gtid-strict-mode=ON".into());
    }
    if spec.semi_sync {
        line("rpl-semi-sync-master-enabled=ON".into());
        line("rpl-semi-sync-slave-enabled=ON".into());
        line("rpl-semi-sync-master-wait-point=AFTER_SYNC".into());
        line("rpl-semi-sync-master-timeout=5000".into());
    }
    for extra in &spec.extra_cnf {
        line(extra.trim().to_string());
    }
    // The client tools read the same file when pointed at it; the socket makes them local.
    let _ = writeln!(s, "[client]\nsocket={}", node.socket.display());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cnf_has_the_replication_settings_every_node_needs() {
        let mut spec = SandboxSpec::new("/tmp/sb", 2, "127.0.7.10".parse().unwrap());
        spec.semi_sync = true;
        spec.extra_cnf = vec!["log_bin_compress=ON".into()];
        let node = &spec.node_infos()[1];
        let text = render(&spec, node, true);
        for needle in [
            "user=root",
            "bind-address=127.0.7.11",
            "datadir=/tmp/sb/node2/data",
            "log-bin=/tmp/sb/node2/data/binlog",
            "log-slave-updates=ON",
            "relay-log-purge=OFF",
            "binlog-format=ROW",
            "sync-binlog=1",
            "innodb-flush-log-at-trx-commit=1",
            "performance-schema=OFF",
            "read-only=ON",
            "rpl-semi-sync-master-wait-point=AFTER_SYNC",
            "log_bin_compress=ON",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        assert!(!render(&spec, node, false).contains("user=root"));
    }
}
