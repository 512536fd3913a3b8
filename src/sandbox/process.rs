//! Starting and stopping `mariadbd` processes, by pid file, without ever touching a process
//! the sandbox did not start.
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use super::{NodeInfo, SandboxSpec};

/// How often waits poll. Short: `up`, failover tests and benchmarks wait on these loops.
const POLL: Duration = Duration::from_millis(50);

/// Where the MariaDB server programs are.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub mariadbd: PathBuf,
    pub install_db: PathBuf,
}

pub const BINDIR_ENV: &str = "RAFTMHA_MARIADB_BINDIR";

const INSTALL_HINT: &str = "install MariaDB with `apt-get update && apt-get install -y mariadb-server mariadb-client` (as root)";

/// Finds `mariadbd` and `mariadb-install-db`: only in `$RAFTMHA_MARIADB_BINDIR` when that is
/// set (MariaDB under /opt, say), otherwise in PATH or the sbin directories Debian uses (a
/// non-root PATH often lacks /usr/sbin).
pub fn find_binaries() -> Result<Binaries> {
    if let Some(dir) = std::env::var_os(BINDIR_ENV) {
        let dir = PathBuf::from(dir);
        let find = |name: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                bail!(
                    "`{name}` is not in {BINDIR_ENV}={}: {INSTALL_HINT}, or fix {BINDIR_ENV}",
                    dir.display()
                )
            }
        };
        return Ok(Binaries {
            mariadbd: find("mariadbd")?,
            install_db: find("mariadb-install-db")?,
        });
    }
    let find = |name: &str| -> Result<PathBuf> {
        let path_dirs = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default();
        path_dirs
            .into_iter()
            .chain(
                ["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from),
            )
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| anyhow!("`{name}` is not installed: {INSTALL_HINT}"))
    };
    Ok(Binaries {
        mariadbd: find("mariadbd")?,
        install_db: find("mariadb-install-db")?,
    })
}

pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Initialises the node's datadir with `mariadb-install-db` (root over the socket, no password).
pub async fn install_db(bin: &Binaries, node: &NodeInfo, timeout: Duration) -> Result<()> {
    let log_path = node.dir.join("install.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut cmd = tokio::process::Command::new(&bin.install_db);
    cmd.arg(format!("--defaults-file={}", node.cnf.display()))
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    let status = tokio::time::timeout(timeout, cmd.status())
        .await
        .map_err(|_| {
            anyhow!(
                "{}: mariadb-install-db did not finish within {timeout:?}; see {}",
                node.name,
                log_path.display()
            )
        })?
        .with_context(|| format!("cannot run {}", bin.install_db.display()))?;
    if !status.success() {
        // install-db's own log is mostly boilerplate; the server's reason is in the error log
        // when the bootstrap server got far enough to open it.
        let log = if node.error_log.exists() {
            &node.error_log
        } else {
            &log_path
        };
        bail!(
            "{} ({}) failed to start: mariadb-install-db failed ({status}); last lines of {}:\n{}",
            node.name,
            node.addr(),
            log.display(),
            tail(log, 15)
        );
    }
    Ok(())
}

/// Starts mariadbd for `node` in its own session (so it outlives the CLI that started it and
/// ignores the terminal's Ctrl-C) and waits until it accepts connections on its socket.
pub async fn start_node(bin: &Binaries, node: &NodeInfo, spec: &SandboxSpec) -> Result<()> {
    let timeout = spec.timeout;
    if let Some(pid) = running_pid(node) {
        bail!("{} is already running (pid {pid})", node.name);
    }
    if let Some(dir) = node.socket.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the socket directory {}", dir.display()))?;
    }
    // A pid file left by a crash would make us wait on a dead pid; mariadbd rewrites it.
    let _ = std::fs::remove_file(&node.pid_file);
    let out_path = node.dir.join("mariadbd.out");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out_path)
        .with_context(|| format!("cannot open {}", out_path.display()))?;
    let mut cmd = Command::new(&bin.mariadbd);
    cmd.arg(format!("--defaults-file={}", node.cnf.display()))
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    if let Some(parent) = &spec.cgroup_parent {
        let group = parent.join(&node.name);
        std::fs::create_dir_all(&group)
            .with_context(|| format!("cannot create cgroup {}", group.display()))?;
        crate::chaos::process_in_group(&mut cmd, &group)?;
    }
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", bin.mariadbd.display()))?;
    // Reap the child when it exits so a killed node never lingers as a zombie that `kill -0`
    // still sees; if this process exits first, init adopts and reaps it.
    let exited: Arc<Mutex<Option<ExitStatus>>> = Arc::default();
    let exited_writer = exited.clone();
    std::thread::spawn(move || {
        if let Ok(status) = child.wait()
            && let Ok(mut slot) = exited_writer.lock()
        {
            *slot = Some(status);
        }
    });

    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = exited.lock().ok().and_then(|s| *s) {
            bail!(
                "{} ({}) failed to start: mariadbd exited ({status}); last lines of {}:\n{}",
                node.name,
                node.addr(),
                node.error_log.display(),
                tail(&node.error_log, 15)
            );
        }
        if socket_accepts(&node.socket).await && running_pid(node).is_some() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{} ({}) did not come up within {timeout:?}; last lines of {}:\n{}",
                node.name,
                node.addr(),
                node.error_log.display(),
                tail(&node.error_log, 15)
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn socket_accepts(socket: &Path) -> bool {
    tokio::net::UnixStream::connect(socket).await.is_ok()
}

/// The pid in the node's pid file, if that process is alive and is this node's mariadbd.
pub fn running_pid(node: &NodeInfo) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(&node.pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (pid > 1 && is_our_mariadbd(pid, &node.cnf)).then_some(pid)
}

/// True when `pid` is alive (not a zombie) and runs mariadbd with our option file, so a pid
/// reused by an unrelated process after a crash is never signalled.
fn is_our_mariadbd(pid: i32, cnf: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let expected = format!("--defaults-file={}", cnf.display());
    let ours = cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == expected.as_bytes());
    ours && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        // The state follows the parenthesised command name, which may itself contain spaces.
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) with a pid we verified belongs to our mariadbd.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Clean shutdown: SIGTERM, then SIGKILL if it has not exited within `timeout`.
pub async fn stop_node(node: &NodeInfo, timeout: Duration) -> Result<()> {
    let Some(pid) = running_pid(node) else {
        return Ok(());
    };
    signal(pid, libc::SIGTERM);
    if wait_gone(node, pid, timeout).await {
        return Ok(());
    }
    signal(pid, libc::SIGKILL);
    if wait_gone(node, pid, Duration::from_secs(10)).await {
        return Ok(());
    }
    bail!(
        "{} (pid {pid}) did not exit after SIGTERM and SIGKILL",
        node.name
    )
}

/// SIGKILL: a crash, as failover tests need it.
pub async fn kill_node(node: &NodeInfo, timeout: Duration) -> Result<()> {
    let Some(pid) = running_pid(node) else {
        bail!("{} is not running", node.name);
    };
    signal(pid, libc::SIGKILL);
    if wait_gone(node, pid, timeout).await {
        Ok(())
    } else {
        bail!("{} (pid {pid}) survived SIGKILL for {timeout:?}", node.name)
    }
}

async fn wait_gone(node: &NodeInfo, pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !is_our_mariadbd(pid, &node.cnf) {
            return true;
        }
        tokio::time::sleep(POLL).await;
    }
    !is_our_mariadbd(pid, &node.cnf)
}

/// The last `lines` lines of a log file, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            all[start..]
                .iter()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(e) => format!("    (cannot read: {e})"),
    }
}
