//! The example configs shipped in config/ stay valid: the production managers, the agent's
//! node.toml and the managed cluster all parse with the real parsers.
use std::path::Path;

use raftmha::manager::ManagerConfig;
use raftmha::state::cluster_file::ClusterSpec;
use raftmha_node::agent::config::AgentConfig;

#[test]
fn the_production_manager_configs_parse() {
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for n in 1..=3 {
        let text = std::fs::read_to_string(config_dir.join(format!("production/manager-{n}.toml")))
            .expect("read");
        // The token lives in /etc on a real host; use the repo's example token here.
        let text = text.replace("/etc/raftmha/manager.token", "manager.token");
        let cfg = ManagerConfig::parse(&text, &config_dir).expect("valid manager config");
        assert_eq!(cfg.node_id, n);
        assert_eq!(cfg.initial_voters.len(), 3);
        assert_eq!(
            cfg.http_listen.map(|a| a.to_string()),
            Some(format!("10.0.0.{n}:9100"))
        );
    }
}

#[test]
fn the_agent_and_cluster_examples_parse() {
    let agent: AgentConfig =
        toml::from_str(include_str!("../config/production/node.toml")).expect("node.toml");
    agent.validate().expect("valid agent config");
    assert!(agent.allow_stop_mysqld);
    let spec = ClusterSpec::parse(include_str!("../config/production/app1.toml")).expect("app1");
    assert_eq!(spec.servers[0].agent.as_deref(), Some("192.168.0.11:7600"));
}
