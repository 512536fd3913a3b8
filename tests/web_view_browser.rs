//! The managers' web view in a real browser: three real MariaDB servers, agents and manager
//! processes serving `[http]`, and Debian's headless Chromium loading the page (its own
//! JavaScript fetching `/ui/state.json`). The DOM shows the master and its replicas; after
//! the master is SIGKILLed it shows the new master and the failover's journaled timeline;
//! with 30 clusters registered every one is on the page. Screenshots go to
//! `target/web-view*.png`. IP range 127.0.238.0/24, directories under /tmp/rmha-engine/.
mod failover_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use failover_support::*;
use raftmha::manager::testbed::TestbedOptions;
use raftmha::state::cluster_file::ClusterSpec;
use raftmha::state::{Command, CommandResult};

const HTTP_PORT: u16 = 7180;

/// Headless Chromium with the flags known to work in CI containers and a fresh profile.
async fn chromium(profile: &Path, extra: &[String], url: &str) -> String {
    let _ = std::fs::remove_dir_all(profile);
    let mut cmd = tokio::process::Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1400,1000",
        // Lets the page's own fetch and render run before the DOM is taken.
        "--virtual-time-budget=4000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url)
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("chromium finished within a minute")
        .expect("chromium runs (install it: bash .ci/setup)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn dom(profile: &Path, url: &str) -> String {
    chromium(profile, &["--dump-dom".to_string()], url).await
}

async fn screenshot(profile: &Path, url: &str, name: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join(name);
    let _ = std::fs::remove_file(&target);
    chromium(
        profile,
        &[format!("--screenshot={}", target.display())],
        url,
    )
    .await;
    assert!(target.exists(), "no screenshot at {}", target.display());
    target
}

/// Loads the page until `pred` holds on its DOM (bounded); returns that DOM.
async fn dom_until(profile: &Path, url: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = dom(profile, url).await;
        if pred(&d) {
            return d;
        }
        if Instant::now() > deadline {
            let body = d.split("<body").nth(1).unwrap_or(&d);
            panic!(
                "the page never showed {what}: {} data-cluster attributes; page body:\n{}",
                d.matches("data-cluster=\"").count(),
                &body[..body.len().min(3000)]
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `<section>` of cluster `name` in the DOM.
fn section<'a>(dom: &'a str, name: &str) -> &'a str {
    let start = dom
        .find(&format!("data-cluster=\"{name}\""))
        .unwrap_or_else(|| panic!("no section for {name}"));
    let rest = &dom[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_web_view_shows_the_topology_and_a_failover_in_a_real_browser() {
    let opts = TestbedOptions {
        http_port: Some(HTTP_PORT),
        ..TestbedOptions::default()
    };
    let tb = testbed("web_view", 238, &opts).await;
    let profile = tb.dir.join("chromium-profile");
    // Manager 2 (a follower, most likely): every manager serves the view.
    let url = format!("http://{}:{HTTP_PORT}/", tb.managers.ip(2));

    let before = dom_until(
        &profile,
        &url,
        "node1 as master with probed replicas",
        |d| {
            d.contains("data-master=\"node1\"")
                && d.contains("data-server=\"node1\" data-role=\"master\"")
                && d.contains("data-server=\"node2\" data-role=\"replica\"")
                && d.contains("data-server=\"node3\" data-role=\"replica\"")
                && d.contains("127.0.238.10:3306")
        },
    )
    .await;
    assert!(before.contains("data-member=\"3\""), "Raft members shown");
    assert!(before.contains("★"), "the Raft leader is marked");
    screenshot(&profile, &url, "web-view-before.png").await;

    tb.sandbox.kill_node(1).await.expect("kill node1");
    let killed = Instant::now();
    let after = dom_until(&profile, &url, "the new master and the failover", |d| {
        let s = section(d, "app1");
        !s.contains("data-master=\"node1\"")
            && s.contains("data-server=\"node1\" data-role=\"replica\"")
            && s.contains("data-kind=\"failover\"")
            && s.contains("data-outcome=\"succeeded\"")
    })
    .await;
    let shown_in = killed.elapsed();
    let master = wait_failover(&tb).await;
    let s = section(&after, "app1");
    assert!(
        s.contains(&format!("data-master=\"{master}\"")),
        "the page shows {master} as master: {s}"
    );
    for step in ["fence", "step.", "plan"] {
        assert!(s.contains(step), "the timeline lists {step} steps: {s}");
    }
    assert!(s.contains(" ms</span>"), "steps carry durations: {s}");
    assert!(
        s.contains("v-dead"),
        "the managers' dead verdicts on node1 are shown: {s}"
    );
    println!("kill → the browser shows the new master: {shown_in:?}");
    let shot = screenshot(&profile, &url, "web-view.png").await;
    println!("screenshot: {}", shot.display());

    // 29 more clusters (their servers do not exist): the page lists all 30.
    for i in 2..=30 {
        let spec = ClusterSpec::parse(&format!(
            "name = \"shop{i:02}\"\n[users]\nadmin_user = \"a\"\nadmin_password_env = \
             \"RAFTMHA_TEST_UNSET\"\nrepl_user = \"r\"\nrepl_password_env = \"RAFTMHA_TEST_UNSET\"\n\
             [[server]]\nname = \"db1\"\nhost = \"127.0.238.{}\"\n\
             [[server]]\nname = \"db2\"\nhost = \"127.0.238.{}\"\n",
            100 + i,
            150 + i
        ))
        .expect("spec");
        let (reply, _) = tb
            .managers
            .client(1)
            .write(&Command::RegisterCluster {
                spec: Box::new(spec),
            })
            .await
            .expect("register");
        assert!(
            !matches!(reply, CommandResult::Rejected { .. }),
            "{reply:?}"
        );
    }
    let many = dom_until(&profile, &url, "30 clusters", |d| {
        // (the page's own script holds the template `data-cluster="${...}"` too)
        d.matches("data-cluster=\"shop").count() == 29 && d.contains("data-cluster=\"app1\"")
    })
    .await;
    assert!(section(&many, "shop30").contains("data-server=\"db2\""));
    screenshot(&profile, &url, "web-view-30-clusters.png").await;
    let _ = std::fs::remove_dir_all(&profile);
    tb.down().await.expect("down");
}
