//! How the tools reach a database server, and the private option file for the `mariadb`
//! client (credentials never go on a command line).

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row};

use super::ToolError;

/// A server and the account to use. `Debug` never prints the password.
#[derive(Clone, serde::Deserialize)]
pub struct DbTarget {
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub socket: Option<PathBuf>,
    pub user: String,
    #[serde(default)]
    pub password: String,
}

impl std::fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("socket", &self.socket)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How long any single connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl DbTarget {
    pub fn addr(&self) -> String {
        match &self.socket {
            Some(s) => format!("{}", s.display()),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    pub fn opts(&self) -> Opts {
        let b = OptsBuilder::default()
            .user(Some(self.user.clone()))
            .pass(Some(self.password.clone()))
            .prefer_socket(false);
        match &self.socket {
            Some(s) => b.socket(Some(s.display().to_string())).into(),
            None => b
                .ip_or_hostname(self.host.clone())
                .tcp_port(self.port)
                .into(),
        }
    }

    pub fn db_err(&self, e: impl std::fmt::Display) -> ToolError {
        ToolError::Db {
            addr: self.addr(),
            message: e.to_string(),
        }
    }

    pub async fn connect(&self) -> Result<Conn, ToolError> {
        tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(self.opts()))
            .await
            .map_err(|_| self.db_err(format!("connect timed out after {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| self.db_err(e))
    }
}

/// Runs `sql` and returns the first row's first column as text (NULL → None).
pub async fn query_string(
    conn: &mut Conn,
    db: &DbTarget,
    sql: &str,
) -> Result<Option<String>, ToolError> {
    let row: Option<Row> = conn.query_first(sql).await.map_err(|e| db.db_err(e))?;
    Ok(row.and_then(|r| {
        r.get_opt::<Option<String>, _>(0)
            .and_then(Result::ok)
            .flatten()
    }))
}

/// The first row of `SHOW SLAVE STATUS` as (column, value) pairs; empty if not a replica.
pub async fn slave_status(
    conn: &mut Conn,
    db: &DbTarget,
) -> Result<Vec<(String, String)>, ToolError> {
    let row: Option<Row> = conn
        .query_first("SHOW SLAVE STATUS")
        .await
        .map_err(|e| db.db_err(e))?;
    let Some(row) = row else {
        return Ok(Vec::new());
    };
    let cols: Vec<String> = row
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    Ok(cols
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let v = row
                .get_opt::<Option<String>, _>(i)
                .and_then(Result::ok)
                .flatten()
                .unwrap_or_default();
            (name, v)
        })
        .collect())
}

pub fn column<'a>(status: &'a [(String, String)], name: &str) -> Option<&'a str> {
    status
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A private directory (0700) holding a client option file (0600); removed on drop.
pub struct ClientCnf {
    dir: PathBuf,
    file: PathBuf,
}

impl ClientCnf {
    pub fn create(workdir: &Path, db: &DbTarget) -> Result<Self, ToolError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = workdir.join(format!(".raftmha-client-{}-{nanos}", std::process::id()));
        DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&dir)
            .map_err(ToolError::io(format!("create {}", dir.display())))?;
        let file = dir.join("client.cnf");
        let mut text = String::from("[client]\n");
        text.push_str(&format!("user={}\n", option_value(&db.user)));
        text.push_str(&format!("password={}\n", option_value(&db.password)));
        match &db.socket {
            Some(s) => text.push_str(&format!(
                "socket={}\n",
                option_value(&s.display().to_string())
            )),
            None => {
                text.push_str(&format!("host={}\n", option_value(&db.host)));
                text.push_str(&format!("port={}\nprotocol=TCP\n", db.port));
            }
        }
        text.push_str("max_allowed_packet=1G\n");
        let cnf = ClientCnf { dir, file };
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&cnf.file)
            .map_err(ToolError::io(format!("create {}", cnf.file.display())))?;
        f.write_all(text.as_bytes())
            .map_err(ToolError::io(format!("write {}", cnf.file.display())))?;
        Ok(cnf)
    }

    pub fn path(&self) -> &Path {
        &self.file
    }
}

impl Drop for ClientCnf {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file);
        let _ = fs::remove_dir(&self.dir);
    }
}

/// A double-quoted option-file value with the escapes the client's parser understands.
fn option_value(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
