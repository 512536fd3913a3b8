use super::*;
use crate::state::cluster_file::ClusterSpec;
use crate::state::{ClusterRecord, LivenessVerdict};

fn view() -> NodeView {
    NodeView {
        id: 2,
        role: "follower",
        term: 7,
        leader: Some(1),
        last_log_index: Some(10),
        applied_index: Some(10),
        committed_index: Some(10),
        members: vec![
            (1, "10.0.0.1:7100".into(), true),
            (2, "10.0.0.2:7100".into(), true),
            (3, "10.0.0.3:7100".into(), true),
        ],
        initialized: true,
    }
}

fn state() -> ManagerState {
    let spec = ClusterSpec::parse(
        "name = \"app1\"\n[users]\nadmin_user = \"a\"\nadmin_password_env = \"P\"\n\
         repl_user = \"r\"\nrepl_password_env = \"R\"\n\
         [[server]]\nname = \"db1\"\nhost = \"10.0.0.11\"\n\
         [[server]]\nname = \"db2\"\nhost = \"10.0.0.12\"\n",
    )
    .expect("spec");
    let mut verdicts = BTreeMap::new();
    verdicts.insert(
        "db1".to_string(),
        [(
            1u64,
            LivenessVerdict {
                verdict: Verdict::Dead,
                window_start_ms: 0,
                window_end_ms: 0,
                recorded_at_ms: 0,
                master_epoch: 1,
            },
        )]
        .into_iter()
        .collect(),
    );
    let mut s = ManagerState::default();
    s.clusters.insert(
        "app1".into(),
        ClusterRecord {
            spec,
            master: Some("db2".into()),
            epoch: 2,
            paused: false,
            verdicts,
            failovers: Default::default(),
            last_failover: None,
            registered_at_ms: 0,
        },
    );
    s
}

#[test]
fn the_page_shows_topology_verdicts_probes_and_raft_members() {
    let mut probes = BTreeMap::new();
    probes.insert(
        ("app1".to_string(), "db1".to_string()),
        ServerProbe {
            error: Some("connection refused".into()),
            fence: Some("not_running (leader, epoch 1)".into()),
            ..ServerProbe::default()
        },
    );
    let p = page(&view(), &state(), &probes, 42);
    assert_eq!((p.manager.id, p.manager.leader), (2, Some(1)));
    assert_eq!(p.members.iter().filter(|m| m.leader).count(), 1);
    let c = &p.clusters[0];
    assert_eq!(c.master.as_deref(), Some("db2"));
    let roles: Vec<_> = c
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s.role))
        .collect();
    assert_eq!(roles, [("db1", "replica"), ("db2", "master")]);
    assert_eq!(c.servers[0].verdicts.get(&1), Some(&"dead"));
    assert!(
        c.servers[0]
            .probe
            .as_ref()
            .is_some_and(|p| p.error.is_some())
    );
    assert!(c.servers[1].probe.is_none(), "db2 not probed yet");
    let json = serde_json::to_string(&p).expect("json");
    assert!(json.contains("\"addr\":\"10.0.0.12:3306\""), "{json}");
}

#[test]
fn long_details_are_cut() {
    let mut s = "x".repeat(DETAIL_CHARS + 50);
    cut(&mut s);
    assert_eq!(s.chars().count(), DETAIL_CHARS + 1);
    let mut short = "short".to_string();
    cut(&mut short);
    assert_eq!(short, "short");
}

#[test]
fn steps_read_as_their_intent_then_a_meaningful_result() {
    use crate::state::FailoverStepRecord;
    let rec = |step: &str, phase, detail: &str, at_ms| FailoverStepRecord {
        step: step.into(),
        phase,
        detail: detail.into(),
        at_ms,
        by: None,
        term: None,
    };
    let record = FailoverRecord {
        id: 1,
        dead_master: "db1".into(),
        epoch: 1,
        started_at_ms: 0,
        started_by: None,
        steps: vec![
            rec("step.1", StepPhase::Intent, "db2: read_only=OFF", 10),
            rec("step.1", StepPhase::Result, "null", 12),
            rec("step.2", StepPhase::Intent, "db3: replicate from db2", 20),
            rec("step.2", StepPhase::Result, "failed: timeout", 25),
        ],
        tail: Vec::new(),
        diffs: Default::default(),
        finished: None,
        report: None,
        operation: None,
        owner: None,
    };
    let view = |step: &str, started_at_ms, detail: &str| StepView {
        step: step.into(),
        started_at_ms,
        duration_ms: Some(2),
        detail: detail.into(),
    };
    let mut quiet = view("step.1", 10, "null");
    describe(&record, &mut quiet);
    assert_eq!(quiet.detail, "db2: read_only=OFF");
    let mut failed = view("step.2", 20, "failed: timeout");
    describe(&record, &mut failed);
    assert_eq!(failed.detail, "db3: replicate from db2 → failed: timeout");
}
