use super::*;

/// The app1.cnf of seed 003 (an MHA 0.55 tutorial).
pub(crate) const SEED_003: &str = include_str!("../../config/mha/seed-003-app1.cnf");

fn opts() -> ImportOptions {
    ImportOptions {
        name: "app1".into(),
        secrets_dir: "/etc/raftmha".into(),
        agent_port: None,
    }
}

fn app(text: &str) -> Source<'_> {
    Source {
        file: "app1.cnf",
        text,
    }
}

fn line_error(text: &str) -> (usize, String) {
    match import(app(text), None, &opts()) {
        Err(MhaError::Line { line, message, .. }) => (line, message),
        other => panic!("expected a line error, got {other:?}"),
    }
}

#[test]
fn the_seed_tutorial_config_imports() {
    let out = import(app(SEED_003), None, &opts()).expect("imports");
    let spec = &out.spec;
    assert_eq!(spec.name, "app1");
    assert_eq!(spec.users.admin_user, "root");
    assert_eq!(spec.users.repl_user, "repl");
    assert_eq!(
        spec.users.admin_password_file.as_deref(),
        Some("/etc/raftmha/app1.admin.password")
    );
    assert_eq!(out.admin_password, "123456");
    assert_eq!(spec.settings.ping_interval_ms, 1000);
    assert_eq!(
        spec.settings.master_ip_online_change_script.as_deref(),
        Some("/usr/local/bin/master_ip_online_change")
    );
    assert_eq!(spec.settings.shutdown_script, None, "\"\" means unset");
    let names: Vec<_> = spec.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["server1", "server2", "server3"]);
    assert!(spec.servers[1].candidate_master);
    assert_eq!(spec.servers[2].host, "10.10.10.70");
    assert_eq!(spec.servers[2].priority, 3);
    for dropped in [
        "ssh_user",
        "check_repl_delay",
        "master_binlog_dir",
        "manager_log",
    ] {
        assert!(
            out.warnings.iter().any(|w| w.contains(dropped)),
            "no warning for {dropped}: {:?}",
            out.warnings
        );
    }
    // The TOML written for `cluster add` carries no password.
    let toml_text = toml::to_string(spec).expect("serializes");
    assert!(!toml_text.contains("123456"), "{toml_text}");
    assert_eq!(ClusterSpec::parse(&toml_text).expect("round trip"), *spec);
}

#[test]
fn the_seed_with_its_inline_comments_is_refused_at_the_first_one() {
    let raw = "[server default]\nmanager_workdir=/var/log/masterha/app1 //设置manager的工作目录\n";
    let (line, message) = line_error(raw);
    assert_eq!(line, 2);
    assert!(message.contains("inline comments"), "{message}");
}

#[test]
fn global_defaults_merge_under_the_app_file() {
    let global =
        "[server default]\nuser=mha\npassword=g\nrepl_user=repl\nping_interval=5\nssh_port=2222\n";
    let app_text = "[server default]\nuser=app\n[server2]\nhostname=h2\nport=3307\n[server10]\nhostname=h10\nno_master=1\n[server1]\nhostname=h1\nip=10.0.0.1\n";
    let out = import(
        app(app_text),
        Some(Source {
            file: "masterha_default.cnf",
            text: global,
        }),
        &opts(),
    )
    .expect("imports");
    assert_eq!(out.spec.users.admin_user, "app", "the app file wins");
    assert_eq!(out.admin_password, "g", "the global file fills the gaps");
    assert_eq!(out.spec.settings.ping_interval_ms, 5000);
    let order: Vec<_> = out.spec.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(order, ["server1", "server2", "server10"], "numeric order");
    assert_eq!(
        out.spec.servers[0].host, "10.0.0.1",
        "ip wins over hostname"
    );
    assert_eq!(out.spec.servers[1].port, 3307);
    assert!(out.spec.servers[2].no_master);
    assert!(out.warnings.iter().any(|w| w.contains("ssh_port")));
}

#[test]
fn mha_defaults_apply_when_unset() {
    let out = import(
        app("[server default]\nrepl_user=r\n[server_a]\nhostname=a\n[server_b]\nhostname=b\n"),
        None,
        &opts(),
    )
    .expect("imports");
    assert_eq!(out.spec.users.admin_user, "root");
    assert_eq!(out.spec.settings.ping_interval_ms, 3000);
    assert_eq!(out.spec.servers[0].port, 3306);
    assert_eq!(out.admin_password, "");
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains("`password` not set"))
    );
}

#[test]
fn unknown_parameters_and_blocks_are_refused_naming_the_line() {
    let (line, message) =
        line_error("[server default]\nrepl_user=r\n[server1]\nhostname=a\nfavourite_colour=blue\n");
    assert_eq!(line, 5);
    assert!(message.contains("favourite_colour"), "{message}");
    let (line, message) = line_error("[server default]\nrepl_user=r\n[mysql1]\nhostname=a\n");
    assert_eq!(line, 3);
    assert!(message.contains("[mysql1]"), "{message}");
}

#[test]
fn bad_values_are_refused_naming_the_line() {
    let base = "[server default]\nrepl_user=r\n[server1]\nhostname=a\n";
    for (extra, key) in [
        ("candidate_master=yes\n", "candidate_master"),
        ("port=99999\n", "port"),
        ("ping_interval=0\n", "ping_interval"),
        ("ping_type=ICMP\n", "ping_type"),
    ] {
        let (line, message) = line_error(&format!("{base}{extra}"));
        assert_eq!(line, 5, "{extra}");
        assert!(message.contains(key), "{message}");
    }
}

#[test]
fn per_server_differences_in_cluster_wide_values_are_refused() {
    let (line, message) = line_error(
        "[server default]\nrepl_user=r\n[server1]\nhostname=a\nuser=x\n[server2]\nhostname=b\nuser=y\n",
    );
    assert_eq!(line, 8);
    assert!(message.contains("one value per cluster"), "{message}");
}

#[test]
fn missing_repl_user_and_hostname_are_explained() {
    let err = import(app("[server1]\nhostname=a\n"), None, &opts()).expect_err("no repl_user");
    assert!(err.to_string().contains("repl_user"), "{err}");
    let err = import(
        app("[server default]\nrepl_user=r\n[server1]\nport=1\n"),
        None,
        &opts(),
    )
    .expect_err("no hostname");
    assert!(err.to_string().contains("hostname"), "{err}");
}

#[test]
fn agent_port_fills_agents_for_ip_hosts() {
    let o = ImportOptions {
        agent_port: Some(7600),
        ..opts()
    };
    let out = import(
        app("[server default]\nrepl_user=r\n[server1]\nhostname=10.0.0.1\n[server2]\nhostname=db2\n"),
        None,
        &o,
    )
    .expect("imports");
    assert_eq!(out.spec.servers[0].agent.as_deref(), Some("10.0.0.1:7600"));
    assert_eq!(out.spec.servers[1].agent, None);
    assert!(out.warnings.iter().any(|w| w.contains("db2")));
}
