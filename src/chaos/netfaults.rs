//! iptables chains and cgroup v2 groups for partitions between local processes.
use std::ffi::CString;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};

/// Where cgroup v2 is mounted (`/sys/fs/cgroup` on pure v2 hosts, `/sys/fs/cgroup/unified` on
/// hybrid ones).
pub fn cgroup2_root() -> Result<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").context("cannot read /proc/mounts")?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, path, kind) = (f.next()?, f.next()?, f.next()?);
            (kind == "cgroup2").then(|| PathBuf::from(path))
        })
        .next()
        .ok_or_else(|| anyhow!("no cgroup v2 hierarchy is mounted; partitions need one (mount -t cgroup2 none /sys/fs/cgroup/unified)"))
}

/// Makes `cmd` start inside the cgroup `group` (relative to the cgroup v2 root), so every
/// socket it ever opens carries that group. The group must exist (see [`NetFaults::group`]).
pub fn process_in_group(cmd: &mut Command, group_dir: &Path) -> Result<()> {
    let procs = CString::new(
        group_dir
            .join("cgroup.procs")
            .as_os_str()
            .as_encoded_bytes(),
    )
    .context("cgroup path contains a NUL byte")?;
    // SAFETY: the closure only calls open/write/close, which are async-signal-safe, on memory
    // prepared before fork.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // "0" moves the writing process itself.
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            if written != 1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// One run's partitions: an iptables chain jumped to from `OUTPUT`, and a cgroup directory.
#[derive(Debug)]
pub struct NetFaults {
    chain: String,
    cgroup_dir: PathBuf,
}

impl NetFaults {
    /// `run` names the chain and cgroup (letters, digits, `-`; at most 20 characters).
    pub fn new(run: &str) -> Result<NetFaults> {
        if run.is_empty()
            || run.len() > 20
            || !run.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            bail!("run name {run:?} must be 1-20 letters, digits or '-'");
        }
        let chain = format!("RMHA-{run}");
        let cgroup_dir = cgroup2_root()?.join("raftmha").join(run);
        // A leftover from a crashed run of the same name: start clean.
        drop(NetFaults {
            chain: chain.clone(),
            cgroup_dir: cgroup_dir.clone(),
        });
        iptables(&["-N", &chain])?;
        iptables(&["-I", "OUTPUT", "1", "-j", &chain])?;
        std::fs::create_dir_all(&cgroup_dir)
            .with_context(|| format!("cannot create cgroup {}", cgroup_dir.display()))?;
        Ok(NetFaults { chain, cgroup_dir })
    }

    /// The directory holding this run's process groups (give it to `SandboxSpec::cgroup_parent`).
    pub fn cgroup_dir(&self) -> &Path {
        &self.cgroup_dir
    }

    /// The cgroup directory for process `name`, created on first use; start the process in it
    /// with [`process_in_group`].
    pub fn group(&self, name: &str) -> Result<PathBuf> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("process group name {name:?} must be letters, digits, '-' or '_'");
        }
        let dir = self.cgroup_dir.join(name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create cgroup {}", dir.display()))?;
        Ok(dir)
    }

    /// The `--path` iptables matches: relative to the cgroup v2 root.
    fn match_path(&self, name: &str) -> Result<String> {
        let root = cgroup2_root()?;
        let dir = self.group(name)?;
        Ok(dir
            .strip_prefix(&root)
            .map_err(|_| anyhow!("cgroup outside the root"))?
            .display()
            .to_string())
    }

    /// Drops every packet process group `from` sends to `to` (breaks its TCP connections to
    /// that address both ways; other senders are unaffected).
    pub fn cut(&self, from: &str, to: Ipv4Addr) -> Result<()> {
        let path = self.match_path(from)?;
        iptables(&[
            "-A",
            &self.chain,
            "-m",
            "cgroup",
            "--path",
            &path,
            "-d",
            &to.to_string(),
            "-j",
            "DROP",
        ])
    }

    /// Drops every packet to or from `ip`: the process listening there is cut off from all.
    pub fn isolate(&self, ip: Ipv4Addr) -> Result<()> {
        let ip = ip.to_string();
        iptables(&["-A", &self.chain, "-d", &ip, "-j", "DROP"])?;
        iptables(&["-A", &self.chain, "-s", &ip, "-j", "DROP"])
    }

    /// Removes every partition of this run (the processes stay in their groups).
    pub fn heal(&self) -> Result<()> {
        iptables(&["-F", &self.chain])
    }

    /// Number of rules currently installed, for reporting.
    pub fn rules(&self) -> Result<usize> {
        let out = Command::new(iptables_bin())
            .args(["-w", "-S", &self.chain])
            .output()
            .context("cannot run iptables")?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("-A"))
            .count())
    }

    fn teardown(&self) {
        let _ = iptables(&["-D", "OUTPUT", "-j", &self.chain]);
        let _ = iptables(&["-F", &self.chain]);
        let _ = iptables(&["-X", &self.chain]);
        remove_cgroup_tree(&self.cgroup_dir);
    }
}

impl Drop for NetFaults {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Moves any process left in the groups to the root group, then removes the directories
/// (cgroup directories can only be removed empty, and only with rmdir).
fn remove_cgroup_tree(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&entry.path());
        }
    }
    if let (Ok(procs), Ok(root)) = (
        std::fs::read_to_string(dir.join("cgroup.procs")),
        cgroup2_root(),
    ) {
        for pid in procs.lines() {
            let _ = std::fs::write(root.join("cgroup.procs"), pid);
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn iptables_bin() -> &'static str {
    if Path::new("/usr/sbin/iptables").exists() {
        "/usr/sbin/iptables"
    } else {
        "iptables"
    }
}

fn iptables(args: &[&str]) -> Result<()> {
    // -w: wait for the xtables lock; parallel tests change rules at the same time.
    let out = Command::new(iptables_bin())
        .arg("-w")
        .args(args)
        .output()
        .context(
            "cannot run iptables: install it with `apt-get install -y iptables` and run as root",
        )?;
    if !out.status.success() {
        bail!(
            "iptables {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
