//! Real `raftmha manager` processes on 127.0.X.Y for integration tests, benchmarks and
//! demos: configs, data dirs, start / SIGKILL / SIGTERM, and polling helpers. Every process
//! is killed when the [`LocalManagers`] drops, even if the caller panics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::admin_proto::NodeStatus;
use crate::api::auth::AuthToken;
use crate::api::client::AdminClient;

const TOKEN: &str = "local-managers-token";
pub const PORT: u16 = 7100;
pub const HTTP_PORT: u16 = 7180;

pub struct LocalManagers {
    pub dir: PathBuf,
    bin: PathBuf,
    subnet: u8,
    voters: Vec<u64>,
    /// Appended to every config written after it is set (e.g. a `[raft]` section).
    pub extra_config: String,
    /// Serve `/metrics` (and the web view) on `<ip>:HTTP_PORT` (configs written after it is set).
    pub http: bool,
    /// When set, manager `id` starts in the cgroup `<dir>/manager<id>` (created on start), so
    /// `crate::chaos::NetFaults` can partition it by sender.
    pub cgroup_parent: Option<PathBuf>,
    procs: BTreeMap<u64, Child>,
}

impl LocalManagers {
    /// A fresh `dir` (wiped first) and configs for managers `1..=voters` listening on
    /// `127.0.<subnet>.<id>:7100`, run from the `raftmha` binary at `bin`.
    pub fn new(bin: &Path, dir: &Path, subnet: u8, voters: u64) -> Self {
        let dir = dir.to_path_buf();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create test dir");
        std::fs::write(dir.join("token"), TOKEN).expect("write token");
        let h = LocalManagers {
            dir,
            bin: bin.to_path_buf(),
            subnet,
            voters: (1..=voters).collect(),
            extra_config: String::new(),
            http: false,
            cgroup_parent: None,
            procs: BTreeMap::new(),
        };
        for id in 1..=voters {
            h.write_config(id);
        }
        h
    }

    pub fn ip(&self, id: u64) -> String {
        format!("127.0.{}.{id}", self.subnet)
    }

    pub fn addr(&self, id: u64) -> String {
        format!("{}:{PORT}", self.ip(id))
    }

    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.join(format!("data-{id}"))
    }

    pub fn config_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("manager-{id}.toml"))
    }

    /// Writes manager `id`'s config (the initial voters are always the first managers).
    pub fn write_config(&self, id: u64) {
        let mut text = format!(
            "node_id = {id}\nlisten = \"{}\"\ndata_dir = \"data-{id}\"\nauth_token_file = \"token\"\n",
            self.addr(id)
        );
        for v in &self.voters {
            text.push_str(&format!(
                "[[initial_voters]]\nid = {v}\naddr = \"{}\"\n",
                self.addr(*v)
            ));
        }
        text.push_str(
            "[timing]\nheartbeat_ms = 50\nelection_timeout_min_ms = 250\nelection_timeout_max_ms = 400\n",
        );
        text.push_str(&self.extra_config);
        if self.http {
            text.push_str(&format!(
                "\n[http]\nlisten = \"{}:{HTTP_PORT}\"\n",
                self.ip(id)
            ));
        }
        std::fs::write(self.config_path(id), text).expect("write config");
    }

    /// The OS pid of manager `id`, while this harness runs it.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.procs.get(&id).map(Child::id)
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.procs.contains_key(&id)
    }

    pub fn start(&mut self, id: u64) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("manager-{id}.log")))
            .expect("log file");
        let mut cmd = Command::new(&self.bin);
        cmd.args(["manager", "--log-format", "json", "--config"])
            .arg(self.config_path(id))
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(parent) = &self.cgroup_parent {
            let group = parent.join(format!("manager{id}"));
            std::fs::create_dir_all(&group).expect("create manager cgroup");
            crate::chaos::process_in_group(&mut cmd, &group).expect("cgroup path");
        }
        let child = cmd.spawn().expect("spawn manager");
        self.procs.insert(id, child);
    }

    /// The ids of the configured voters.
    pub fn voters(&self) -> &[u64] {
        &self.voters
    }

    pub fn start_all(&mut self) {
        for id in self.voters.clone() {
            self.start(id);
        }
    }

    /// SIGKILL, like a crash.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.procs.remove(&id) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a graceful exit.
    pub fn stop(&mut self, id: u64) {
        if let Some(mut child) = self.procs.remove(&id) {
            // SAFETY: kill(2) on a pid we spawned and have not reaped yet.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let _ = child.wait();
        }
    }

    /// Waits for a process that is expected to exit on its own (e.g. a refusal).
    pub fn wait_exit(&mut self, id: u64, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.procs.get_mut(&id)?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.procs.remove(&id);
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.join(format!("manager-{id}.log"))).unwrap_or_default()
    }

    pub fn client(&self, id: u64) -> AdminClient {
        let token = AuthToken::from_text(TOKEN).expect("token");
        AdminClient::new(&self.addr(id), token, Duration::from_secs(6)).expect("client")
    }

    /// A client with a custom deadline (e.g. short polls in benchmarks).
    pub fn client_with_timeout(&self, id: u64, timeout: Duration) -> AdminClient {
        let token = AuthToken::from_text(TOKEN).expect("token");
        AdminClient::new(&self.addr(id), token, timeout).expect("client")
    }

    pub fn managers_env(&self, ids: &[u64]) -> String {
        ids.iter()
            .map(|id| self.addr(*id))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Runs the CLI against the given managers.
    pub fn cli(&self, ids: &[u64], args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .env("RAFTMHA_MANAGERS", self.managers_env(ids))
            .env("RAFTMHA_TOKEN_FILE", self.dir.join("token"))
            .output()
            .expect("run cli")
    }

    pub async fn status(&self, id: u64) -> Option<NodeStatus> {
        self.client(id).status().await.ok()
    }

    /// The leader that every answering manager among `ids` agrees on, confirmed by the
    /// leader itself.
    pub async fn agreed_leader(&self, ids: &[u64]) -> Option<u64> {
        let mut leader = None;
        for id in ids {
            let s = self.status(*id).await?;
            let l = s.leader?;
            if leader.is_some_and(|x| x != l) {
                return None;
            }
            leader = Some(l);
        }
        let l = leader?;
        let s = self.status(l).await?;
        (s.role == "leader").then_some(l)
    }

    pub async fn wait_leader(&self, ids: &[u64]) -> u64 {
        let ids = ids.to_vec();
        wait_for("an agreed leader", Duration::from_secs(30), || {
            let ids = ids.clone();
            async move { self.agreed_leader(&ids).await }
        })
        .await
    }
}

impl Drop for LocalManagers {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.procs) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `f` every 50 ms until it returns `Some`, panicking after `timeout` (a bound on a
/// hang, not a speed assertion).
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
