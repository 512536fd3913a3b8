//! `raftmha import-mha` end to end: the MHA configs of the seeds and of the research notes
//! (config/mha/) are converted by the real binary, the passwords land in 0600 files and never in
//! the TOML, and the result is registered with `cluster add` in a real 3-manager cluster.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use raftmha::manager::local::{LocalManagers, stderr, stdout};
use raftmha::mha::import::{ImportOptions, Source, import};
use raftmha::state::cluster_file::ClusterSpec;

const BIN: &str = env!("CARGO_BIN_EXE_raftmha");
const APP1: &str = include_str!("../config/mha/app1.cnf");
const GLOBAL: &str = include_str!("../config/mha/masterha_default.cnf");
const CONVERTED: &str = include_str!("../config/mha/app1.toml");

/// Seed 003's app1.cnf.
const SEED_003: &str = include_str!("../config/mha/seed-003-app1.cnf");

fn dir(name: &str) -> PathBuf {
    let d = Path::new("/tmp/rmha-operator").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("test dir");
    d
}

fn import_mha(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("import-mha")
        .args(args)
        .output()
        .expect("run import-mha")
}

/// Managers must only ever see loopback addresses in tests: move the example hosts into this
/// test's range.
fn to_loopback(text: &str) -> String {
    text.replace("192.168.0.", "127.0.150.")
        .replace("10.10.10.", "127.0.151.")
}

fn mode(path: &str) -> u32 {
    std::fs::metadata(path)
        .expect("secret file")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_checked_in_conversion_is_what_the_importer_produces() {
    let out = import(
        Source {
            file: "app1.cnf",
            text: APP1,
        },
        Some(Source {
            file: "masterha_default.cnf",
            text: GLOBAL,
        }),
        &ImportOptions {
            name: "app1".into(),
            secrets_dir: "/etc/raftmha".into(),
            agent_port: Some(7600),
        },
    )
    .expect("imports");
    assert_eq!(
        out.spec,
        ClusterSpec::parse(CONVERTED).expect("config/mha/app1.toml")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_configs_register_in_a_real_manager_cluster() {
    let mut h = LocalManagers::new(Path::new(BIN), &dir("operator_import"), 150, 3);
    let work = dir("operator_import_files");
    let app = work.join("app1.cnf");
    let global = work.join("masterha_default.cnf");
    let seed = work.join("seed3.cnf");
    std::fs::write(&app, to_loopback(APP1)).expect("write");
    std::fs::write(&global, to_loopback(GLOBAL)).expect("write");
    std::fs::write(&seed, to_loopback(SEED_003)).expect("write");
    let out1 = work.join("app1.toml");
    let out2 = work.join("seed3.toml");

    let o = import_mha(&[
        app.to_str().expect("utf8"),
        "--global",
        global.to_str().expect("utf8"),
        "--agent-port",
        "7600",
        "-o",
        out1.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("`secondary_check_script` not imported"),
        "{}",
        stderr(&o)
    );
    let text = std::fs::read_to_string(&out1).expect("output");
    assert!(
        !text.contains("mha-admin-secret") && !text.contains("repl-secret"),
        "{text}"
    );
    let spec = ClusterSpec::parse(&text).expect("valid cluster file");
    let admin_file = spec.users.admin_password_file.clone().expect("admin file");
    assert_eq!(
        std::fs::read_to_string(&admin_file).expect("read"),
        "mha-admin-secret"
    );
    assert_eq!(mode(&admin_file), 0o600);
    let repl_file = spec.users.repl_password_file.clone().expect("repl file");
    assert_eq!(mode(&repl_file), 0o600);

    let o = import_mha(&[
        seed.to_str().expect("utf8"),
        "-o",
        out2.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    h.start_all();
    h.wait_leader(&[1, 2, 3]).await;
    for file in [&out1, &out2] {
        let o = h.cli(
            &[1, 2, 3],
            &["cluster", "add", "--file", file.to_str().expect("utf8")],
        );
        assert!(
            o.status.success(),
            "cluster add {}: {}",
            file.display(),
            stderr(&o)
        );
    }
    let (state, _) = h.client(2).read_state().await.expect("read");
    let app1 = &state.clusters["app1"].spec;
    assert_eq!(app1.servers.len(), 3);
    assert_eq!(app1.servers[2].agent.as_deref(), Some("127.0.150.13:7600"));
    let seed3 = &state.clusters["seed3"].spec;
    assert!(seed3.servers[1].candidate_master);
    let listed = stdout(&h.cli(&[1, 2, 3], &["cluster", "list"]));
    assert!(
        listed.contains("app1") && listed.contains("seed3"),
        "{listed}"
    );
}

#[test]
fn unconvertible_files_fail_with_exit_2_and_write_nothing() {
    let work = dir("operator_import_bad");
    let bad = work.join("bad.cnf");
    std::fs::write(
        &bad,
        "[server default]\nrepl_user=r\n[server1]\nhostname=127.0.152.1\nwat=1\n",
    )
    .expect("write");
    let out = work.join("bad.toml");
    let o = import_mha(&[
        bad.to_str().expect("utf8"),
        "-o",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("line 5") && stderr(&o).contains("wat"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    assert!(!work.join("bad.admin.password").exists());

    let o = import_mha(&[work.join("missing.cnf").to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
}
