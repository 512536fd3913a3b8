//! Local MariaDB sandboxes on loopback: N `mariadbd` processes, each on its own 127.x.y.z
//! address with its own datadir, wired as one master and N-1 replicas.
//!
//! Every integration test, the demo, the chaos suite and the benchmarks stand on this module,
//! so it is strict about two things: it only ever signals processes it started (pid files in
//! its own directory, checked against `/proc/PID/cmdline`), and it never hangs (every wait has
//! a deadline and a failure shows the tail of the node's error log).
//!
//! Layout of a sandbox directory:
//! ```text
//! DIR/sandbox.json        spec, nodes and credentials (mode 0600)
//! DIR/nodeK/my.cnf        the node's only option file (mariadbd runs with --defaults-file)
//! DIR/nodeK/data/         datadir: binlog.NNNNNN, relay.NNNNNN, relay.index, relay-log.info
//! DIR/nodeK/mariadbd.sock DIR/nodeK/mariadbd.pid DIR/nodeK/error.log
//! ```
mod cnf;
mod process;
mod replication;
mod socket;
mod status;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

pub use process::{BINDIR_ENV, Binaries, find_binaries};
pub use status::{NodeStatus, render_status_table};

/// What `Sandbox::up` builds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SandboxSpec {
    pub dir: PathBuf,
    pub nodes: usize,
    pub base_ip: Ipv4Addr,
    /// Every node listens on this port on its own address.
    pub port: u16,
    /// GTID replication (`MASTER_USE_GTID=slave_pos`) instead of file/position.
    pub gtid: bool,
    /// MariaDB's built-in semi-sync replication, AFTER_SYNC.
    pub semi_sync: bool,
    /// Extra `[mariadbd]` lines for every node, e.g. `log_bin_compress=ON`.
    pub extra_cnf: Vec<String>,
    /// How long to wait for each step (install, start, replication) before failing.
    #[serde(with = "duration_secs")]
    pub timeout: Duration,
    /// When set, node K runs in the cgroup `<cgroup_parent>/nodeK`, so the chaos module can
    /// partition it by sender (see `chaos::NetFaults::cgroup_dir`).
    #[serde(default)]
    pub cgroup_parent: Option<PathBuf>,
}

/// Upper bound on nodes: enough for any test, small enough to catch typos.
pub const MAX_NODES: usize = 32;

impl SandboxSpec {
    pub fn new(dir: impl Into<PathBuf>, nodes: usize, base_ip: Ipv4Addr) -> Self {
        SandboxSpec {
            dir: dir.into(),
            nodes,
            base_ip,
            port: 3306,
            gtid: false,
            semi_sync: false,
            extra_cnf: Vec::new(),
            timeout: Duration::from_secs(60),
            cgroup_parent: None,
        }
    }

    /// Checks the spec before anything touches the disk; each error names the offending value.
    pub fn validate(&self) -> Result<()> {
        if self.dir.as_os_str().is_empty() {
            bail!("--dir must not be empty");
        }
        if self.nodes < 1 || self.nodes > MAX_NODES {
            bail!(
                "--nodes must be between 1 and {MAX_NODES}, got {}",
                self.nodes
            );
        }
        if !self.base_ip.is_loopback() {
            bail!(
                "--base-ip must be a loopback address (127.x.y.z), got {}",
                self.base_ip
            );
        }
        let last = u32::from(self.base_ip) + self.nodes as u32 - 1;
        let first_octet = self.base_ip.octets()[3];
        if first_octet == 0 || last & 0xff == 255 || (last >> 8) != (u32::from(self.base_ip) >> 8) {
            bail!(
                "--base-ip {} with {} nodes leaves 127.x.y.1..254: pick a lower last octet",
                self.base_ip,
                self.nodes
            );
        }
        if self.port == 0 {
            bail!("--port must be between 1 and 65535");
        }
        for line in &self.extra_cnf {
            if line.contains('\n') || line.trim().starts_with('[') {
                bail!("extra option {line:?} must be one `key=value` line, not a section");
            }
        }
        Ok(())
    }

    fn node_infos(&self) -> Vec<NodeInfo> {
        (1..=self.nodes)
            .map(|index| {
                let ip = Ipv4Addr::from(u32::from(self.base_ip) + index as u32 - 1);
                let dir = self.dir.join(format!("node{index}"));
                NodeInfo {
                    index,
                    name: format!("node{index}"),
                    ip,
                    port: self.port,
                    // Unique across parallel sandboxes too, which keeps binlogs distinguishable.
                    server_id: server_id_for(ip),
                    datadir: dir.join("data"),
                    socket: socket::socket_path(&dir),
                    pid_file: dir.join("mariadbd.pid"),
                    error_log: dir.join("error.log"),
                    cnf: dir.join("my.cnf"),
                    dir,
                }
            })
            .collect()
    }
}

/// server_id derived from the address: the low 24 bits of the IPv4 address are unique per node.
fn server_id_for(ip: Ipv4Addr) -> u32 {
    u32::from(ip) & 0x00ff_ffff
}

/// One MariaDB instance of the sandbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeInfo {
    /// 1-based; node 1 starts as the master.
    pub index: usize,
    pub name: String,
    pub ip: Ipv4Addr,
    pub port: u16,
    pub server_id: u32,
    pub dir: PathBuf,
    pub datadir: PathBuf,
    pub socket: PathBuf,
    pub pid_file: PathBuf,
    pub error_log: PathBuf,
    pub cnf: PathBuf,
}

impl NodeInfo {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

/// Users the sandbox creates on every node. Random passwords, stored only in `sandbox.json`
/// (mode 0600), never printed.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    pub admin_user: String,
    pub admin_password: String,
    pub repl_user: String,
    pub repl_password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("admin_user", &self.admin_user)
            .field("admin_password", &"<redacted>")
            .field("repl_user", &self.repl_user)
            .field("repl_password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    fn generate() -> Self {
        Credentials {
            admin_user: "raftmha_admin".into(),
            admin_password: random_password(),
            repl_user: "raftmha_repl".into(),
            repl_password: random_password(),
        }
    }
}

fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// What `sandbox.json` holds; versioned so later layouts can still read old sandboxes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    spec: SandboxSpec,
    nodes: Vec<NodeInfo>,
    credentials: Credentials,
}

const MANIFEST: &str = "sandbox.json";
const MANIFEST_VERSION: u32 = 1;

/// A sandbox on disk, running or not.
#[derive(Debug, Clone)]
pub struct Sandbox {
    spec: SandboxSpec,
    nodes: Vec<NodeInfo>,
    credentials: Credentials,
}

impl Sandbox {
    /// Creates (or restarts, if `spec.dir` holds a stopped sandbox of the same shape) the
    /// sandbox and waits until every node is up and every replica replicates.
    ///
    /// On failure every process this call started is stopped again; files stay for inspection.
    pub async fn up(mut spec: SandboxSpec) -> Result<Sandbox> {
        spec.validate()?;
        // mariadbd resolves relative paths against its datadir, not our cwd: store absolute ones.
        if spec.dir.is_relative() {
            spec.dir = std::env::current_dir()
                .context("cannot read the current directory")?
                .join(&spec.dir);
        }
        let binaries = find_binaries()?;
        if spec.dir.join(MANIFEST).exists() {
            let existing = Sandbox::open(&spec.dir)?;
            if let Some(running) = existing.running_nodes().first() {
                bail!(
                    "a sandbox is already running in {} ({} pid {}); run `raftmha sandbox down --dir {}` first",
                    spec.dir.display(),
                    running.0.name,
                    running.1,
                    spec.dir.display()
                );
            }
            if !existing.same_shape(&spec) {
                bail!(
                    "{} holds a stopped sandbox of another shape ({} nodes from {}, gtid={}); \
                     remove the directory or use another --dir",
                    spec.dir.display(),
                    existing.spec.nodes,
                    existing.spec.base_ip,
                    existing.spec.gtid
                );
            }
            existing.start_all(&binaries).await?;
            if let Err(e) = replication::wait_replication_running(&existing).await {
                let _ = existing.down().await;
                return Err(e);
            }
            return Ok(existing);
        }
        if spec.dir.exists()
            && std::fs::read_dir(&spec.dir)
                .with_context(|| format!("cannot read {}", spec.dir.display()))?
                .next()
                .is_some()
        {
            bail!(
                "{} exists, is not empty and holds no sandbox; pick an empty or new --dir",
                spec.dir.display()
            );
        }
        let sandbox = Sandbox {
            nodes: spec.node_infos(),
            spec,
            credentials: Credentials::generate(),
        };
        sandbox.create(&binaries).await?;
        Ok(sandbox)
    }

    /// Opens the sandbox recorded in `dir`, without starting or stopping anything.
    pub fn open(dir: &Path) -> Result<Sandbox> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow!("no sandbox in {} ({} not found)", dir.display(), MANIFEST)
            } else {
                anyhow!("cannot read {}: {e}", path.display())
            }
        })?;
        let manifest: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid sandbox manifest", path.display()))?;
        if manifest.version != MANIFEST_VERSION {
            bail!(
                "{} has layout version {}, this raftmha understands {MANIFEST_VERSION}",
                path.display(),
                manifest.version
            );
        }
        Ok(Sandbox {
            spec: manifest.spec,
            nodes: manifest.nodes,
            credentials: manifest.credentials,
        })
    }

    pub fn spec(&self) -> &SandboxSpec {
        &self.spec
    }

    pub fn dir(&self) -> &Path {
        &self.spec.dir
    }

    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Node by 1-based index.
    pub fn node(&self, index: usize) -> Result<&NodeInfo> {
        self.nodes
            .get(index.wrapping_sub(1))
            .ok_or_else(|| anyhow!("no node {index} in a sandbox of {} nodes", self.nodes.len()))
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Connection options for the admin user over TCP to node `index`.
    pub fn admin_opts(&self, index: usize) -> Result<mysql_async::Opts> {
        let node = self.node(index)?;
        Ok(replication::tcp_opts(
            node,
            &self.credentials.admin_user,
            &self.credentials.admin_password,
        ))
    }

    /// A fresh admin connection to node `index` (bounded by the sandbox timeout).
    pub async fn conn(&self, index: usize) -> Result<mysql_async::Conn> {
        let node = self.node(index)?;
        replication::connect(self.admin_opts(index)?, self.spec.timeout)
            .await
            .with_context(|| format!("cannot connect to {} ({})", node.name, node.addr()))
    }

    /// Nodes whose recorded pid is a live mariadbd of this sandbox, with that pid.
    pub fn running_nodes(&self) -> Vec<(&NodeInfo, i32)> {
        self.nodes
            .iter()
            .filter_map(|n| process::running_pid(n).map(|pid| (n, pid)))
            .collect()
    }

    /// The pid of node `index` if it runs.
    pub fn pid(&self, index: usize) -> Result<Option<i32>> {
        Ok(process::running_pid(self.node(index)?))
    }

    /// SIGKILL node `index` (a crash). Returns once the process is gone.
    pub async fn kill_node(&self, index: usize) -> Result<()> {
        process::kill_node(self.node(index)?, self.spec.timeout).await
    }

    /// Clean shutdown of node `index` (SIGTERM, SIGKILL after the timeout).
    pub async fn stop_node(&self, index: usize) -> Result<()> {
        process::stop_node(self.node(index)?, self.spec.timeout).await
    }

    /// Starts node `index` again with its existing datadir and waits until it accepts connections.
    pub async fn start_node(&self, index: usize) -> Result<()> {
        let binaries = find_binaries()?;
        let node = self.node(index)?;
        if process::running_pid(node).is_some() {
            return Ok(());
        }
        process::start_node(&binaries, node, &self.spec).await
    }

    /// Waits until every running replica has executed everything its master has binlogged.
    pub async fn wait_replicas_caught_up(&self, timeout: Duration) -> Result<()> {
        replication::wait_caught_up(self, timeout).await
    }

    /// Status of every node; a node that is down is reported, not an error.
    pub async fn status(&self) -> Vec<NodeStatus> {
        status::collect(self).await
    }

    /// Stops every node this sandbox started and waits for them to exit. Safe to run twice.
    pub async fn down(&self) -> Result<()> {
        let mut errors = Vec::new();
        let stops = self
            .nodes
            .iter()
            .map(|n| process::stop_node(n, self.spec.timeout));
        for (node, result) in self
            .nodes
            .iter()
            .zip(futures::future::join_all(stops).await)
        {
            if let Err(e) = result {
                errors.push(format!("{}: {e:#}", node.name));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            bail!("could not stop every node: {}", errors.join("; "))
        }
    }

    fn same_shape(&self, spec: &SandboxSpec) -> bool {
        self.spec.nodes == spec.nodes
            && self.spec.base_ip == spec.base_ip
            && self.spec.port == spec.port
            && self.spec.gtid == spec.gtid
    }

    async fn create(&self, binaries: &Binaries) -> Result<()> {
        std::fs::create_dir_all(&self.spec.dir)
            .with_context(|| format!("cannot create {}", self.spec.dir.display()))?;
        self.write_manifest()?;
        for node in &self.nodes {
            std::fs::create_dir_all(node.dir.join("tmp"))
                .with_context(|| format!("cannot create {}", node.dir.display()))?;
            let text = cnf::render(&self.spec, node, process::running_as_root());
            std::fs::write(&node.cnf, text)
                .with_context(|| format!("cannot write {}", node.cnf.display()))?;
        }
        let installs = self
            .nodes
            .iter()
            .map(|n| process::install_db(binaries, n, self.spec.timeout));
        for result in futures::future::join_all(installs).await {
            result?;
        }
        let result = async {
            self.start_all(binaries).await?;
            replication::bootstrap(self).await
        }
        .await;
        if let Err(e) = result {
            // Leave nothing running behind a failed `up`; keep the files for the post-mortem.
            let _ = self.down().await;
            return Err(e);
        }
        Ok(())
    }

    async fn start_all(&self, binaries: &Binaries) -> Result<()> {
        let starts = self
            .nodes
            .iter()
            .map(|n| process::start_node(binaries, n, &self.spec));
        let results = futures::future::join_all(starts).await;
        if let Some(err) = results.into_iter().find_map(Result::err) {
            let _ = self.down().await;
            return Err(err);
        }
        Ok(())
    }

    fn write_manifest(&self) -> Result<()> {
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            spec: self.spec.clone(),
            nodes: self.nodes.clone(),
            credentials: self.credentials.clone(),
        };
        let path = self.spec.dir.join(MANIFEST);
        let text = serde_json::to_string_pretty(&manifest)?;
        write_private(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Stops the sandbox when dropped: tests and tools hold one so that a panic or an early return
/// never leaves mariadbd processes behind.
#[derive(Debug)]
pub struct SandboxGuard(pub Sandbox);

impl SandboxGuard {
    /// Hands the sandbox back without stopping it (`--keep`).
    pub fn disarm(self) -> Sandbox {
        let guard = std::mem::ManuallyDrop::new(self);
        guard.0.clone()
    }
}

impl std::ops::Deref for SandboxGuard {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        &self.0
    }
}

impl Drop for SandboxGuard {
    fn drop(&mut self) {
        let sb = self.0.clone();
        // Drop cannot await, and may run inside a runtime: stop from a thread with its own.
        let stopped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(sb.down()))
        })
        .join();
        if !matches!(stopped, Ok(Ok(Ok(())))) {
            eprintln!(
                "warning: could not stop the sandbox in {}",
                self.0.dir().display()
            );
        }
    }
}

/// Writes a file readable only by its owner: it holds passwords.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

mod duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(nodes: usize, ip: &str) -> SandboxSpec {
        SandboxSpec::new("/tmp/x", nodes, ip.parse().unwrap())
    }

    #[test]
    fn validate_rejects_zero_nodes_and_non_loopback_and_overflowing_ranges() {
        assert!(
            spec(0, "127.0.0.10")
                .validate()
                .unwrap_err()
                .to_string()
                .contains("--nodes")
        );
        assert!(
            spec(3, "10.0.0.1")
                .validate()
                .unwrap_err()
                .to_string()
                .contains("loopback")
        );
        assert!(spec(3, "127.0.0.253").validate().is_err());
        assert!(spec(1, "127.0.0.0").validate().is_err());
        assert!(spec(3, "127.0.0.252").validate().is_ok());
        assert!(spec(3, "127.0.0.50").validate().is_ok());
    }

    #[test]
    fn nodes_get_consecutive_addresses_and_unique_server_ids() {
        let nodes = spec(3, "127.0.9.50").node_infos();
        let ips: Vec<String> = nodes.iter().map(|n| n.ip.to_string()).collect();
        assert_eq!(ips, ["127.0.9.50", "127.0.9.51", "127.0.9.52"]);
        assert_eq!(nodes[0].server_id, (9 << 8) | 50);
        assert_ne!(nodes[0].server_id, nodes[1].server_id);
        assert_eq!(nodes[2].socket, PathBuf::from("/tmp/x/node3/mariadbd.sock"));
    }

    #[test]
    fn credentials_debug_hides_passwords() {
        let c = Credentials::generate();
        let shown = format!("{c:?}");
        assert!(!shown.contains(&c.admin_password));
        assert!(!shown.contains(&c.repl_password));
    }
}
