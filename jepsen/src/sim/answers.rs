//! What a simulated server answers, as plain logic over its small state: enough for the
//! managers' checks (`SELECT 1`), their version and variable reads, the replicas' status
//! (`SHOW ALL SLAVES STATUS`, with a heartbeat counter that moves) and the heartbeat
//! upkeep's `CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD`. Anything else is acknowledged with
//! OK; nothing is stored.
use super::protocol::Answer;

pub const VERSION: &str = "10.11.19-MariaDB-simulated";

/// One simulated server's state.
#[derive(Debug, Clone)]
pub struct SimState {
    pub server_id: u32,
    /// `Some((host, port))` for a replica.
    pub source: Option<(String, u16)>,
    pub read_only: bool,
    pub heartbeat_period_s: f64,
}

fn one_row(columns: &[&str], values: Vec<Option<String>>) -> Answer {
    Answer::Rows {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows: vec![values],
    }
}

/// Splits a select list at top-level commas.
fn select_items(list: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0i32, 0, Vec::new());
    let mut quoted = None;
    for (i, ch) in list.char_indices() {
        match (quoted, ch) {
            (Some(q), c) if c == q => quoted = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quoted = Some(ch),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(list[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(list[start..].trim());
    out
}

/// The value of one variable or expression (lower-cased text).
fn value_of(s: &SimState, expr: &str, connection_id: u32) -> Option<String> {
    let on_off = |b: bool| if b { "1" } else { "0" }.to_string();
    let v = match expr {
        e if e.contains("max_allowed_packet") => "16777216".into(),
        e if e.contains("wait_timeout") => "28800".into(),
        e if e.contains("version_comment") => "raftmha simulated server".into(),
        e if e.contains("version") => VERSION.into(),
        e if e.contains("read_only") => on_off(s.read_only),
        e if e.contains("server_id") => s.server_id.to_string(),
        e if e.contains("gtid") && e.contains("wait") => "0".into(),
        e if e.contains("pos_wait") => "0".into(),
        e if e.contains("gtid_strict_mode") => "0".into(),
        e if e.contains("gtid") => format!("0-{}-1", s.server_id),
        e if e.contains("connection_id") => connection_id.to_string(),
        e if e.contains("log_bin") => "1".into(),
        e if e.contains("binlog_format") => "ROW".into(),
        e if e.contains("datadir") => "/nonexistent/simulated/".into(),
        e if e.contains("server_uuid") => format!("00000000-0000-0000-0000-{:012}", s.server_id),
        e if e.contains("slave_net_timeout") => "60".into(),
        e if e.contains("rpl_semi_sync") => "0".into(),
        e if e.parse::<f64>().is_ok() => e.into(),
        e if e.starts_with('\'') && e.ends_with('\'') && e.len() >= 2 => e[1..e.len() - 1].into(),
        _ => return None,
    };
    Some(v)
}

fn select(s: &SimState, sql: &str, connection_id: u32) -> Answer {
    let list = &sql["select".len()..];
    let list = list.split(" from ").next().unwrap_or(list);
    let items = select_items(list);
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for item in items {
        let (expr, alias) = match item.rfind(" as ") {
            Some(i) => (item[..i].trim(), item[i + 4..].trim()),
            None => (item, item),
        };
        columns.push(alias.trim_matches('`').to_string());
        values.push(value_of(s, &expr.to_lowercase(), connection_id));
    }
    Answer::Rows {
        columns,
        rows: vec![values],
    }
}

/// `SHOW GLOBAL VARIABLES WHERE Variable_name IN ('a','b')` or `LIKE 'a'`.
fn show_variables(s: &SimState, sql: &str) -> Answer {
    let names: Vec<String> = sql
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    let rows = names
        .iter()
        .filter_map(|n| {
            let lower = n.to_lowercase();
            let v = value_of(s, &format!("@@{lower}"), 0)?;
            let v = match (lower.as_str(), v.as_str()) {
                ("read_only" | "log_bin", "1") => "ON".into(),
                ("read_only" | "log_bin", "0") => "OFF".into(),
                _ => v,
            };
            Some(vec![Some(n.clone()), Some(v)])
        })
        .collect();
    Answer::Rows {
        columns: vec!["Variable_name".into(), "Value".into()],
        rows,
    }
}

const REPLICA_COLUMNS: &[&str] = &[
    "Connection_name",
    "Slave_IO_State",
    "Master_Host",
    "Master_User",
    "Master_Port",
    "Master_Log_File",
    "Read_Master_Log_Pos",
    "Relay_Log_File",
    "Relay_Log_Pos",
    "Relay_Master_Log_File",
    "Slave_IO_Running",
    "Slave_SQL_Running",
    "Last_IO_Errno",
    "Last_IO_Error",
    "Last_SQL_Errno",
    "Last_SQL_Error",
    "Exec_Master_Log_Pos",
    "Seconds_Behind_Master",
    "Master_Server_Id",
    "Using_Gtid",
    "Gtid_IO_Pos",
    "SQL_Delay",
    "Slave_SQL_Running_State",
    "Slave_heartbeat_period",
    "Slave_received_heartbeats",
];

/// The replica status row; `elapsed_s` since the simulation started drives the heartbeat
/// counter (a live stream: it moves every period).
fn replica_status(s: &SimState, elapsed_s: f64) -> Answer {
    let columns = REPLICA_COLUMNS.iter().map(|c| c.to_string()).collect();
    let Some((host, port)) = &s.source else {
        return Answer::Rows {
            columns,
            rows: Vec::new(),
        };
    };
    let beats = (elapsed_s / s.heartbeat_period_s.max(0.001)) as u64;
    let text = |v: &str| Some(v.to_string());
    let row = vec![
        text(""),
        text("Waiting for master to send event"),
        text(host),
        text("repl"),
        Some(port.to_string()),
        text("binlog.000001"),
        text("1000"),
        text("relay.000002"),
        text("1300"),
        text("binlog.000001"),
        text("Yes"),
        text("Yes"),
        text("0"),
        text(""),
        text("0"),
        text(""),
        text("1000"),
        text("0"),
        text("1"),
        text("Slave_Pos"),
        text("0-1-1"),
        text("0"),
        text("Slave has read all relay log; waiting for more updates"),
        Some(format!("{:.3}", s.heartbeat_period_s)),
        Some(beats.to_string()),
    ];
    Answer::Rows {
        columns,
        rows: vec![row],
    }
}

/// `MASTER_HEARTBEAT_PERIOD = x` in a `CHANGE MASTER TO`.
fn heartbeat_period(sql: &str) -> Option<f64> {
    let at = sql.find("master_heartbeat_period")?;
    let rest = sql[at..].split_once('=')?.1.trim_start();
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number.parse().ok()
}

/// Answers one statement, updating `s` for the few statements that change what later
/// answers say.
pub fn answer(s: &mut SimState, sql: &str, connection_id: u32, elapsed_s: f64) -> Answer {
    let lower = sql.trim().trim_end_matches(';').to_lowercase();
    if lower.starts_with("select") {
        return select(s, &lower_keep_quotes(sql), connection_id);
    }
    if lower.starts_with("show") && lower.contains("variables") {
        return show_variables(s, sql);
    }
    if lower.starts_with("show") && (lower.contains("slave") || lower.contains("replica")) {
        return replica_status(s, elapsed_s);
    }
    if lower.starts_with("show")
        && (lower.contains("master status") || lower.contains("binary log status"))
    {
        return one_row(
            &["File", "Position", "Binlog_Do_DB", "Binlog_Ignore_DB"],
            vec![
                Some("binlog.000001".into()),
                Some("1000".into()),
                Some(String::new()),
                Some(String::new()),
            ],
        );
    }
    if lower.starts_with("show") {
        return Answer::Rows {
            columns: vec!["Value".into()],
            rows: Vec::new(),
        };
    }
    if lower.starts_with("set global read_only") {
        s.read_only = lower.contains("on") || lower.ends_with('1');
    }
    if (lower.contains("change master") || lower.contains("change replication source"))
        && let Some(p) = heartbeat_period(&lower)
    {
        s.heartbeat_period_s = p;
    }
    Answer::Ok
}

/// Lower-cases a statement outside its quoted strings (aliases and literals keep their case).
fn lower_keep_quotes(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = None;
    for ch in sql.trim().trim_end_matches(';').chars() {
        match quoted {
            Some(q) if ch == q => {
                quoted = None;
                out.push(ch);
            }
            Some(_) => out.push(ch),
            None if ch == '\'' || ch == '"' || ch == '`' => {
                quoted = Some(ch);
                out.push(ch);
            }
            None => out.extend(ch.to_lowercase()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica() -> SimState {
        SimState {
            server_id: 2,
            source: Some(("127.3.0.1".into(), 3306)),
            read_only: true,
            heartbeat_period_s: 0.25,
        }
    }

    #[test]
    fn checks_versions_and_variables_are_answered() {
        let mut s = replica();
        let one = answer(&mut s, "SELECT 1", 7, 0.0);
        assert_eq!(
            one,
            Answer::Rows {
                columns: vec!["1".into()],
                rows: vec![vec![Some("1".into())]]
            }
        );
        let v = answer(
            &mut s,
            "SELECT VERSION() AS version, @@version_comment AS comment",
            7,
            0.0,
        );
        let Answer::Rows { columns, rows } = v else {
            panic!("rows expected")
        };
        assert_eq!(columns, ["version", "comment"]);
        assert_eq!(rows[0][0].as_deref(), Some(VERSION));
        let vars = answer(
            &mut s,
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('read_only','server_id')",
            7,
            0.0,
        );
        let Answer::Rows { rows, .. } = vars else {
            panic!("rows expected")
        };
        assert_eq!(rows[0], [Some("read_only".into()), Some("ON".into())]);
        assert_eq!(rows[1], [Some("server_id".into()), Some("2".into())]);
    }

    #[test]
    fn a_replica_streams_heartbeats_and_keeps_the_period_it_is_given() {
        let mut s = replica();
        let count = |s: &mut SimState, at: f64| match answer(s, "SHOW ALL SLAVES STATUS", 1, at) {
            Answer::Rows { columns, rows } => {
                let i = columns
                    .iter()
                    .position(|c| c == "Slave_received_heartbeats")
                    .expect("column");
                rows[0][i].clone().expect("value")
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(count(&mut s, 1.0), "4");
        assert_eq!(count(&mut s, 2.0), "8");
        answer(
            &mut s,
            "CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = 0.5",
            1,
            2.0,
        );
        assert_eq!(count(&mut s, 2.0), "4");
        let mut m = SimState {
            source: None,
            ..replica()
        };
        assert!(
            matches!(answer(&mut m, "SHOW ALL SLAVES STATUS", 1, 1.0), Answer::Rows { rows, .. } if rows.is_empty())
        );
    }
}
