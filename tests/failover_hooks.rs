//! MHA's hook scripts run by a real failover, each a real shell script that appends its name
//! and arguments to a file: `master_ip_failover_script --command=stopssh|stop` and
//! `--command=start`, `shutdown_script` (exit 10: "mysqld killed, host kept up", the failover
//! goes on) and `report_script`, with MHA's argument names and never a password.
//! IP range 127.0.224.0/24, directories under /tmp/rmha-bench/.
mod failover_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use failover_support::*;
use raftmha::manager::testbed::{Testbed, TestbedOptions};

/// A script that records `<name> <args…>` as one line of `log` and exits with `code`.
fn hook(dir: &Path, name: &str, log: &Path, code: i32) -> PathBuf {
    let path = dir.join(format!("{name}.sh"));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"{name} $*\" >> '{}'\nexit {code}\n",
            log.display()
        ),
    )
    .expect("write hook");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Lines of `log` whose hook is `name`.
fn calls<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter(|l| l.split(' ').next() == Some(name))
        .map(String::as_str)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hooks_get_mha_arguments_and_shutdown_exit_10_lets_the_failover_go_on() {
    let hooks = Path::new("/tmp/rmha-bench/hooks-scripts");
    let _ = std::fs::remove_dir_all(hooks);
    std::fs::create_dir_all(hooks).expect("hooks dir");
    let log = hooks.join("calls.log");
    let mip = hook(hooks, "master_ip_failover", &log, 0);
    let shutdown = hook(hooks, "shutdown", &log, 10);
    let report = hook(hooks, "report", &log, 0);
    let opts = TestbedOptions {
        settings: format!(
            "master_ip_failover_script = {:?}\nshutdown_script = {:?}\nreport_script = {:?}",
            mip.display().to_string(),
            shutdown.display().to_string(),
            report.display().to_string()
        ),
        ..TestbedOptions::default()
    };
    let tb = Testbed::up(
        Path::new(BIN),
        Path::new("/tmp/rmha-bench/hooks"),
        224,
        &opts,
    )
    .await
    .expect("testbed up");
    sql(&tb, 1, "CREATE DATABASE test").await;
    sql(&tb, 1, "CREATE TABLE test.w (id BIGINT PRIMARY KEY)").await;
    tb.sandbox
        .wait_replicas_caught_up(Duration::from_secs(30))
        .await
        .expect("caught up");
    tb.sandbox.kill_node(1).await.expect("kill node1");
    let new_master = wait_failover(&tb).await;

    let text = std::fs::read_to_string(&log).expect("the hooks ran");
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let (m, nm) = (
        tb.sandbox.node(1).expect("node1").clone(),
        tb.sandbox
            .node(Testbed::index_of(&new_master).expect("nodeK"))
            .expect("new master")
            .clone(),
    );
    let orig = format!(
        "--orig_master_host={ip} --orig_master_ip={ip} --orig_master_port={}",
        m.port,
        ip = m.ip
    );
    // The master's host (its agent) is up, mysqld is dead: MHA's `stopssh`.
    let mip_calls = calls(&lines, "master_ip_failover");
    assert_eq!(
        mip_calls,
        vec![
            format!("master_ip_failover --command=stopssh --ssh_user=root {orig}"),
            format!(
                "master_ip_failover --command=start --ssh_user=root {orig} --new_master_host={ip} --new_master_ip={ip} --new_master_port={}",
                nm.port,
                ip = nm.ip
            ),
        ],
        "{text}"
    );
    assert_eq!(
        calls(&lines, "shutdown"),
        vec![format!(
            "shutdown --command=stopssh --host={ip} --ip={ip} --port={}",
            m.port,
            ip = m.ip
        )],
        "{text}"
    );
    let report_calls = calls(&lines, "report");
    assert_eq!(report_calls.len(), 1, "{text}");
    assert!(
        report_calls[0].starts_with(&format!(
            "report --orig_master_host={} --new_master_host={} --subject=",
            m.ip, nm.ip
        )),
        "{text}"
    );
    // In MHA's order: stop before start, start before the report.
    let pos = |needle: &str| lines.iter().position(|l| l.contains(needle));
    assert!(pos("--command=stopssh") < pos("--command=start"), "{text}");
    assert!(pos("--command=start") < pos("report "), "{text}");
    let creds = tb.sandbox.credentials();
    for secret in [&creds.admin_password, &creds.repl_password] {
        assert!(
            !text.contains(secret.as_str()),
            "a password in hook arguments"
        );
    }
    tb.down().await.expect("down");
}
