//! MHA's merge rules and the mapping onto a raftmha [`ClusterSpec`].
//!
//! MHA reads the global file's `[server default]` only, then the app file's `[server default]`
//! (which wins), then each `[serverN]` block (which wins for that server). Blocks are ordered
//! numerically when every id looks like `server<digits>`, else lexically; MHA breaks election
//! ties by that order, so it becomes `priority` (1, 2, 3…).
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::MhaError;
use super::ini::{self, Entry, Section};
use super::params::{self, Fate, Scope};
use crate::state::cluster_file::{ClusterSpec, PingType, ServerSpec, Settings, Users};

/// Where the example deployment (`config/`, the systemd units) keeps the agents' token.
const AGENT_TOKEN_FILE: &str = "/etc/raftmha/agent.token";

/// One input file: its name (for messages) and text.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The cluster's name (MHA's is the app file's stem, e.g. `app1`).
    pub name: String,
    /// Absolute directory where the password files will be written.
    pub secrets_dir: PathBuf,
    /// When set, every server whose host is an IP address gets `agent = "<ip>:<port>"`.
    pub agent_port: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct Imported {
    pub spec: ClusterSpec,
    /// Passwords to write (mode 0600) at the paths the spec names; MHA's default is empty.
    pub admin_password: String,
    pub repl_password: String,
    /// One line per parameter that has no equivalent or was ignored, with the reason.
    pub warnings: Vec<String>,
}

impl Imported {
    pub fn admin_password_path(&self) -> Option<&str> {
        self.spec.users.admin_password_file.as_deref()
    }
    pub fn repl_password_path(&self) -> Option<&str> {
        self.spec.users.repl_password_file.as_deref()
    }
}

/// A parameter's value with where it came from.
#[derive(Debug, Clone, Copy)]
struct Found<'a> {
    file: &'a str,
    entry: &'a Entry,
}

impl Found<'_> {
    fn err(&self, message: String) -> MhaError {
        MhaError::Line {
            file: self.file.to_string(),
            line: self.entry.line,
            message: format!("`{}`: {message}", self.entry.key),
        }
    }
}

struct Block<'a> {
    id: &'a str,
    file: &'a str,
    entries: &'a [Entry],
}

impl<'a> Block<'a> {
    fn get(&self, key: &str) -> Option<Found<'a>> {
        let file = self.file;
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|entry| Found { file, entry })
    }
}

pub fn import(
    app: Source<'_>,
    global: Option<Source<'_>>,
    opts: &ImportOptions,
) -> Result<Imported, MhaError> {
    let mut warnings = Vec::new();
    let app_sections = ini::parse(app.file, app.text)?;
    let global_sections = match global {
        Some(g) => ini::parse(g.file, g.text)?,
        None => Vec::new(),
    };

    // Defaults, most specific first: app `[server default]`, then global `[server default]`.
    let mut defaults: Vec<Block<'_>> = Vec::new();
    let mut servers: Vec<Block<'_>> = Vec::new();
    if let Some(g) = global {
        for s in &global_sections {
            if s.name == "server default" {
                defaults.push(block(g.file, s));
            } else {
                warnings.push(format!(
                    "{} line {}: [{}] ignored: MHA reads only [server default] from the global file",
                    g.file, s.line, s.name
                ));
            }
        }
    }
    for s in &app_sections {
        if s.name == "server default" {
            defaults.insert(0, block(app.file, s));
        } else if is_server_block(&s.name) {
            servers.push(block(app.file, s));
        } else if s.name.starts_with("binlog") {
            warnings.push(format!(
                "{} line {}: [{}] ignored: binlog servers are not supported; the agents save the dead master's binlog",
                app.file, s.line, s.name
            ));
        } else {
            return Err(MhaError::Line {
                file: app.file.into(),
                line: s.line,
                message: format!(
                    "unknown block [{}]: MHA allows [server default], [server…] and [binlog…]",
                    s.name
                ),
            });
        }
    }
    if servers.is_empty() {
        return Err(MhaError::File {
            file: app.file.into(),
            message: "no [server…] block".into(),
        });
    }
    sort_like_mha(&mut servers);

    // Every key must be known; drop-with-warning those that have no equivalent.
    let mut dropped_seen = BTreeMap::new();
    let all_blocks = defaults.iter().map(|b| (b, true));
    for (b, is_default) in all_blocks.chain(servers.iter().map(|b| (b, false))) {
        for entry in b.entries {
            let found = Found {
                file: b.file,
                entry,
            };
            let Some(param) = params::lookup(&entry.key) else {
                return Err(found.err(format!(
                    "unknown MHA parameter in [{}] (MHA refuses it too)",
                    b.id
                )));
            };
            if is_default && param.scope == Scope::Local {
                warnings.push(format!(
                    "{} line {}: `{}` in [{}] ignored: MHA reads it only from [server…] blocks",
                    b.file, entry.line, entry.key, b.id
                ));
                continue;
            }
            if matches!(param.fate, Fate::Dropped(_)) {
                dropped_seen
                    .entry(param.name)
                    .or_insert_with(|| format!("{} line {}", b.file, entry.line));
            }
        }
    }
    for (name, at) in &dropped_seen {
        if let Some(Fate::Dropped(reason)) = params::lookup(name).map(|p| p.fate) {
            warnings.push(format!("{at}: `{name}` not imported: {reason}"));
        }
    }

    // Parameters that are one value per cluster in raftmha: all servers must agree.
    let cluster_wide = |key: &str| -> Result<Option<Found<'_>>, MhaError> {
        let mut chosen: Option<Found<'_>> = None;
        for s in &servers {
            let here = effective(s, &defaults, key);
            match (chosen, here) {
                (None, h) => chosen = h.or(chosen),
                (Some(c), Some(h)) if c.entry.value != h.entry.value => {
                    return Err(h.err(format!(
                        "differs between servers ({:?} vs {:?}); raftmha needs one value per cluster",
                        c.entry.value, h.entry.value
                    )));
                }
                (Some(c), None) => {
                    return Err(c.err(format!(
                        "set for some servers but not for [{}]; raftmha needs one value per cluster",
                        s.id
                    )));
                }
                _ => {}
            }
        }
        Ok(chosen)
    };

    let value = |key: &str| -> Result<Option<String>, MhaError> {
        Ok(cluster_wide(key)?.map(|f| f.entry.value.clone()))
    };

    let admin_user = match value("user")? {
        Some(u) => u,
        None => {
            warnings.push("`user` not set: using MHA's default `root`".into());
            "root".into()
        }
    };
    let Some(repl_user) = value("repl_user")? else {
        return Err(MhaError::File {
            file: app.file.into(),
            message: "`repl_user` is not set: MHA would read Master_User from SHOW SLAVE STATUS at failover time; raftmha needs it up front, add repl_user=... to [server default]".into(),
        });
    };
    let admin_password = value("password")?.unwrap_or_default();
    let repl_password = value("repl_password")?.unwrap_or_default();
    if admin_password.is_empty() {
        warnings.push(
            "`password` not set: the admin password file will be empty (MHA's default)".into(),
        );
    }
    if repl_password.is_empty() {
        warnings
            .push("`repl_password` not set: the replication password file will be empty".into());
    }

    let mut settings = Settings {
        // MHA's defaults, kept so behaviour does not change on import.
        ping_interval_ms: 3000,
        ping_failures: 3,
        ..Settings::default()
    };
    if let Some(f) = cluster_wide("ping_interval")? {
        let secs: u64 = f
            .entry
            .value
            .parse()
            .map_err(|_| f.err("must be a whole number of seconds".into()))?;
        if !(1..=60).contains(&secs) {
            return Err(f.err("must be between 1 and 60 seconds".into()));
        }
        settings.ping_interval_ms = secs * 1000;
    }
    // The lease must outlive a few checks, or a healthy master would fence itself.
    settings.lease_ttl_ms = settings.lease_ttl_ms.max(settings.ping_interval_ms * 3);
    if let Some(f) = cluster_wide("ping_type")? {
        settings.ping_type = match f.entry.value.to_ascii_uppercase().as_str() {
            "SELECT" => PingType::Select,
            "CONNECT" => PingType::Connect,
            "INSERT" => PingType::Insert,
            _ => return Err(f.err("must be SELECT, CONNECT or INSERT".into())),
        };
    }
    let script = |key: &str| -> Result<Option<String>, MhaError> {
        Ok(value(key)?.filter(|v| !v.is_empty()))
    };
    settings.master_ip_failover_script = script("master_ip_failover_script")?;
    settings.master_ip_online_change_script = script("master_ip_online_change_script")?;
    settings.shutdown_script = script("shutdown_script")?;
    settings.report_script = script("report_script")?;

    let mut specs = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        let Some(hostname) = s.get("hostname") else {
            return Err(MhaError::File {
                file: s.file.into(),
                message: format!("[{}]: `hostname` is required", s.id),
            });
        };
        // MHA connects to `ip` (resolved from hostname when absent).
        let host = s.get("ip").unwrap_or(hostname).entry.value.clone();
        let port = match effective(s, &defaults, "port") {
            Some(f) => f
                .entry
                .value
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| f.err("must be a port number".into()))?,
            None => 3306,
        };
        let flag = |key: &str| -> Result<bool, MhaError> {
            match s.get(key) {
                None => Ok(false),
                Some(f) => match f.entry.value.as_str() {
                    "" | "0" => Ok(false),
                    "1" => Ok(true),
                    _ => Err(f.err("must be 0 or 1".into())),
                },
            }
        };
        let agent = match opts.agent_port {
            Some(p) if host.parse::<std::net::IpAddr>().is_ok() => Some(format!("{host}:{p}")),
            Some(_) => {
                warnings.push(format!(
                    "[{}]: host {host:?} is not an IP address: set its `agent` by hand",
                    s.id
                ));
                None
            }
            None => None,
        };
        specs.push(ServerSpec {
            name: s.id.to_string(),
            host,
            port,
            agent,
            candidate_master: flag("candidate_master")?,
            no_master: flag("no_master")?,
            ignore_fail: flag("ignore_fail")?,
            priority: u32::try_from(i + 1).unwrap_or(u32::MAX),
        });
    }

    let secret = |what: &str| {
        opts.secrets_dir
            .join(format!("{}.{what}.password", opts.name))
            .display()
            .to_string()
    };
    let spec = ClusterSpec {
        name: opts.name.clone(),
        users: Users {
            admin_user,
            admin_password_file: Some(secret("admin")),
            admin_password_env: None,
            repl_user,
            repl_password_file: Some(secret("repl")),
            repl_password_env: None,
            // MHA has no agent: with agents named, point at the token where the example
            // deployment keeps it (warned, so the operator checks it).
            agent_token_file: opts.agent_port.map(|_| {
                warnings.push(format!(
                    "agents named: the managers read the agents' token from {AGENT_TOKEN_FILE} (edit users.agent_token_file if yours lives elsewhere)"
                ));
                AGENT_TOKEN_FILE.to_string()
            }),
            agent_token_env: None,
        },
        settings,
        servers: specs,
    };
    spec.validate().map_err(|e| MhaError::File {
        file: app.file.into(),
        message: format!("the converted cluster is not valid: {e}"),
    })?;
    Ok(Imported {
        spec,
        admin_password,
        repl_password,
        warnings,
    })
}

/// The server's own value, else the most specific default's.
fn effective<'a>(server: &Block<'a>, defaults: &[Block<'a>], key: &str) -> Option<Found<'a>> {
    server
        .get(key)
        .or_else(|| defaults.iter().find_map(|d| d.get(key)))
}

fn block<'a>(file: &'a str, s: &'a Section) -> Block<'a> {
    Block {
        id: &s.name,
        file,
        entries: &s.entries,
    }
}

/// `server` followed by a non-empty suffix without spaces (MHA's rule).
fn is_server_block(name: &str) -> bool {
    name.strip_prefix("server")
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
}

/// `server\D*(\d+)` for every block → numeric order, else lexical order.
fn sort_like_mha(servers: &mut [Block<'_>]) {
    let number = |id: &str| -> Option<u64> {
        let rest = id.strip_prefix("server")?;
        let digits = rest.trim_start_matches(|c: char| !c.is_ascii_digit());
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        digits[..end].parse().ok()
    };
    if servers.iter().all(|s| number(s.id).is_some()) {
        servers.sort_by_key(|s| number(s.id));
    } else {
        servers.sort_by(|a, b| a.id.cmp(b.id));
    }
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
