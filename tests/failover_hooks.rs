//! MHA's hook scripts run by a real failover, each a real shell script that appends its name
//! and arguments to a file: `master_ip_failover_script --command=stopssh|stop` and
//! `--command=start`, `shutdown_script` (exit 10: "mysqld killed, host kept up", the failover
//! goes on) and `report_script`, with MHA's argument names and never a password; a failing
//! `--command=stop` aborts the failover (MHA: anything but 0 or 10), a failing
//! `report_script` does not (MHA ignores its result).
//! IP ranges 127.0.224.0/24, 127.0.226.0/24, 127.0.227.0/24; directories under /tmp/rmha-bench/.
mod failover_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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

/// A testbed whose cluster runs the given hooks (`(setting, script)` pairs).
async fn testbed_with_hooks(name: &str, subnet: u8, hooks: &[(&str, &Path)]) -> Testbed {
    let settings: Vec<String> = hooks
        .iter()
        .map(|(key, path)| format!("{key} = {:?}", path.display().to_string()))
        .collect();
    let opts = TestbedOptions {
        settings: settings.join("\n"),
        ..TestbedOptions::default()
    };
    let dir = Path::new("/tmp/rmha-bench").join(name);
    let tb = Testbed::up(Path::new(BIN), &dir, subnet, &opts)
        .await
        .expect("testbed up");
    create_w_table(&tb).await;
    tb
}

fn scripts_dir(name: &str) -> PathBuf {
    let dir = Path::new("/tmp/rmha-bench").join(format!("{name}-scripts"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scripts dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hooks_get_mha_arguments_and_shutdown_exit_10_lets_the_failover_go_on() {
    let hooks = scripts_dir("hooks");
    let log = hooks.join("calls.log");
    let mip = hook(&hooks, "master_ip_failover", &log, 0);
    let shutdown = hook(&hooks, "shutdown", &log, 10);
    let report = hook(&hooks, "report", &log, 0);
    let tb = testbed_with_hooks(
        "hooks",
        224,
        &[
            ("master_ip_failover_script", &mip),
            ("shutdown_script", &shutdown),
            ("report_script", &report),
        ],
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_master_ip_failover_stop_aborts_the_failover() {
    let hooks = scripts_dir("hooks_stop_fails");
    let log = hooks.join("calls.log");
    let mip = hook(&hooks, "master_ip_failover", &log, 1);
    let tb = testbed_with_hooks(
        "hooks_stop_fails",
        226,
        &[("master_ip_failover_script", &mip)],
    )
    .await;
    tb.sandbox.kill_node(1).await.expect("kill node1");
    let (c, f) = wait_finished(&tb).await;
    assert_eq!(
        f.finished.as_ref().map(|(o, _)| o.clone()),
        Some(raftmha::state::FailoverOutcome::Failed),
        "{:#?}",
        f.steps
    );
    assert_eq!(c.master.as_deref(), Some("node1"), "nobody promoted");
    let text = std::fs::read_to_string(&log).expect("the hook ran");
    assert!(!text.contains("--command=start"), "{text}");
    tb.down().await.expect("down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_report_script_does_not_fail_the_failover() {
    let hooks = scripts_dir("hooks_report_fails");
    let log = hooks.join("calls.log");
    let report = hook(&hooks, "report", &log, 1);
    let tb = testbed_with_hooks("hooks_report_fails", 227, &[("report_script", &report)]).await;
    tb.sandbox.kill_node(1).await.expect("kill node1");
    let new_master = wait_failover(&tb).await;
    assert_ne!(new_master, "node1");
    let text = std::fs::read_to_string(&log).expect("the hook ran");
    assert_eq!(
        calls(
            &text.lines().map(str::to_string).collect::<Vec<_>>(),
            "report"
        )
        .len(),
        1
    );
    tb.down().await.expect("down");
}
