//! `raftmha check-repl` against a real 3-node MariaDB sandbox (GTID): a clean sandbox is
//! healthy; then one sandbox takes a plant of each kind and every one is reported.
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use raftmha::manager::local::LocalManagers;
use raftmha::sandbox::{Sandbox, SandboxGuard, SandboxSpec};

const BIN: &str = env!("CARGO_BIN_EXE_raftmha");

fn check_repl(file: &Path) -> (Output, serde_json::Value) {
    let o = Command::new(BIN)
        .args(["check-repl", "--json", "--file"])
        .arg(file)
        .output()
        .expect("run check-repl");
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("json ({e}): {}", String::from_utf8_lossy(&o.stderr)));
    (o, v)
}

/// The worst level reported by `check` for `server` (`*` for cluster-wide).
fn level(v: &serde_json::Value, check: &str, server: Option<&str>) -> String {
    let mut worst = String::new();
    for f in v["findings"].as_array().expect("findings") {
        if f["check"] == check && f["server"].as_str() == server {
            let l = f["level"].as_str().unwrap_or("").to_string();
            let rank = |l: &str| ["OK", "WARN", "FAIL"].iter().position(|x| *x == l);
            if rank(&l) > rank(&worst) {
                worst = l;
            }
        }
    }
    worst
}

async fn exec(sb: &Sandbox, node: usize, sqls: &[&str]) {
    let mut c = sb.conn(node).await.expect("conn");
    for sql in sqls {
        c.query_drop(*sql)
            .await
            .unwrap_or_else(|e| panic!("node{node} {sql}: {e}"));
    }
    c.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_misconfigurations_are_each_reported() {
    let dir = Path::new("/tmp/rmha-operator/operator_check_repl");
    let _ = std::fs::remove_dir_all(dir);
    let mut spec = SandboxSpec::new(dir.join("sb"), 3, "127.0.155.10".parse().expect("ip"));
    spec.gtid = true;
    spec.timeout = Duration::from_secs(90);
    let sb = SandboxGuard(Sandbox::up(spec).await.expect("sandbox up"));
    let creds = sb.credentials().clone();
    let pw = dir.join("admin.password");
    std::fs::write(&pw, &creds.admin_password).expect("write password");
    let mut file = format!(
        "name = \"sb\"\n[users]\nadmin_user = \"{}\"\nadmin_password_file = \"{}\"\nrepl_user = \"{}\"\nrepl_password_env = \"UNUSED_HERE\"\n",
        creds.admin_user,
        pw.display(),
        creds.repl_user
    );
    for n in sb.nodes() {
        file.push_str(&format!(
            "[[server]]\nname = \"{}\"\nhost = \"{}\"\nport = {}\n",
            n.name, n.ip, n.port
        ));
    }
    let cluster_file = dir.join("sb.toml");
    std::fs::write(&cluster_file, file).expect("write cluster file");

    let (o, v) = check_repl(&cluster_file);
    assert_eq!(o.status.code(), Some(0), "{v:#}");
    assert_eq!(v["verdict"], "MySQL Replication Health is OK.");
    assert_eq!(v["master"], "node1");

    // The same cluster registered in real managers: `--cluster` reads it from them.
    let mut managers = LocalManagers::new(Path::new(BIN), &dir.join("managers"), 158, 3);
    managers.start_all();
    managers.wait_leader(&[1, 2, 3]).await;
    let add = managers.cli(
        &[1, 2, 3],
        &[
            "cluster",
            "add",
            "--file",
            cluster_file.to_str().expect("utf8"),
        ],
    );
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let o = managers.cli(&[1, 2, 3], &["check-repl", "--cluster", "sb"]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{table}");
    assert!(table.contains("MySQL Replication Health is OK."), "{table}");
    let o = managers.cli(&[1, 2, 3], &["check-repl", "--cluster", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    drop(managers);

    // An admin account without SUPER and REPLICATION SLAVE, a replication user that does
    // not exist, and semi-sync on the master only.
    exec(
        &sb,
        1,
        &[
            "CREATE USER weak@'127.%' IDENTIFIED BY 'weak-pw'",
            "GRANT PROCESS, RELOAD, BINLOG MONITOR, SLAVE MONITOR ON *.* TO weak@'127.%'",
            "GRANT SELECT ON mysql.* TO weak@'127.%'",
            "SET GLOBAL rpl_semi_sync_master_enabled = ON",
        ],
    )
    .await;
    sb.wait_replicas_caught_up(Duration::from_secs(30))
        .await
        .expect("caught up");
    let weak_pw = dir.join("weak.password");
    std::fs::write(&weak_pw, "weak-pw").expect("write");
    let weak_file = dir.join("weak.toml");
    let weak_text = std::fs::read_to_string(&cluster_file)
        .expect("read")
        .replace(
            &format!("admin_user = \"{}\"", creds.admin_user),
            "admin_user = \"weak\"",
        )
        .replace(&pw.display().to_string(), &weak_pw.display().to_string())
        .replace(
            &format!("repl_user = \"{}\"", creds.repl_user),
            "repl_user = \"nobody\"",
        );
    std::fs::write(&weak_file, weak_text).expect("write");
    let (o, v) = check_repl(&weak_file);
    assert_eq!(o.status.code(), Some(1), "{v:#}");
    assert_eq!(
        level(&v, "admin privileges", Some("node2")),
        "FAIL",
        "{v:#}"
    );
    assert_eq!(
        level(&v, "replication user", Some("node1")),
        "FAIL",
        "{v:#}"
    );
    assert_eq!(level(&v, "semi-sync", None), "WARN", "{v:#}");
    assert_eq!(level(&v, "replicating", Some("node2")), "OK", "{v:#}");
    exec(&sb, 1, &["SET GLOBAL rpl_semi_sync_master_enabled = OFF"]).await;

    // Plants: node2 stops replicating and gets a filter and a different binlog_format;
    // node3 takes writes (errant GTID), purges relay logs, is not durable, and clones
    // node1's server_id.
    let master_id = sb.nodes()[0].server_id.to_string();
    exec(
        &sb,
        2,
        &[
            "STOP SLAVE",
            "SET GLOBAL replicate_do_db = 'app'",
            "SET GLOBAL binlog_format = 'STATEMENT'",
        ],
    )
    .await;
    exec(
        &sb,
        3,
        &[
            "SET GLOBAL read_only = OFF",
            "CREATE DATABASE errant_on_node3",
            "SET GLOBAL relay_log_purge = ON",
            "SET GLOBAL sync_binlog = 0",
            "SET GLOBAL innodb_flush_log_at_trx_commit = 2",
            &format!("SET GLOBAL server_id = {master_id}"),
        ],
    )
    .await;

    let (o, v) = check_repl(&cluster_file);
    assert_eq!(o.status.code(), Some(1), "{v:#}");
    assert_eq!(v["verdict"], "MySQL Replication Health is NOT OK!");
    let want = [
        ("replicating", Some("node2"), "FAIL"),
        ("replication filters", None, "FAIL"),
        ("binlog_format", None, "FAIL"),
        ("errant transactions", None, "FAIL"),
        ("server_id unique", None, "FAIL"),
        ("read_only", Some("node3"), "WARN"),
        ("relay_log_purge", Some("node3"), "WARN"),
        ("durability", Some("node3"), "WARN"),
        ("replicating", Some("node3"), "OK"),
        ("admin privileges", Some("node1"), "OK"),
        ("replication user", Some("node1"), "OK"),
    ];
    for (check, server, expected) in want {
        assert_eq!(
            level(&v, check, server),
            expected,
            "{check} {server:?}: {v:#}"
        );
    }

    // An unreachable server is a FAIL too, and the table form carries MHA's verdict line.
    sb.kill_node(3).await.expect("kill node3");
    let o = Command::new(BIN)
        .args(["check-repl", "--file"])
        .arg(&cluster_file)
        .output()
        .expect("run");
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        table.contains("reachable") && table.contains("node3"),
        "{table}"
    );
    assert!(
        table.contains("MySQL Replication Health is NOT OK!"),
        "{table}"
    );
    assert!(
        !table.contains(&creds.admin_password),
        "no secret in the output"
    );
}
