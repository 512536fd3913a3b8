//! Transaction (event group) boundaries, so that nothing is ever cut inside a transaction.
//!
//! MariaDB: a group starts at GTID; a STANDALONE group ends after its QUERY, others at XID or a
//! QUERY `COMMIT`/`ROLLBACK` (or `XA PREPARE`/`XA COMMIT`/`XA ROLLBACK`).
//! MySQL: a group starts at GTID/ANONYMOUS_GTID/GTID_TAGGED (or `BEGIN` without GTIDs); it ends at
//! XID, QUERY `COMMIT`/`ROLLBACK`, XA_PREPARE, TRANSACTION_PAYLOAD, or a lone DDL QUERY.
//! Events outside any group (FDE, ROTATE, STOP, GTID_LIST, CHECKPOINT, ...) are neutral.

use super::events::{MariaGtid, MariaGtidEvent, mysql_gtid_of, query_is, query_text};
use super::header::types;
use super::reader::Event;

/// What an event does to the group state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Role {
    /// Not part of any group (format, rotation and bookkeeping events).
    Outside,
    /// Opens a group.
    Begin,
    /// Inside an open group.
    Inside,
    /// Closes the open group (the event belongs to it).
    End,
    /// A group of one event (a DDL QUERY without GTID, a MySQL TRANSACTION_PAYLOAD alone).
    Single,
    /// A group-internal event seen while no group was open (the stream started mid-group).
    Orphan,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Outside => "-",
            Role::Begin => "BEGIN",
            Role::Inside => "in",
            Role::End => "END",
            Role::Single => "BEGIN+END",
            Role::Orphan => "ORPHAN",
        }
    }
}

/// Identity of a group, when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupId {
    Maria(MariaGtid),
    MySql(String),
    None,
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupId::Maria(g) => write!(f, "{g}"),
            GroupId::MySql(s) => f.write_str(s),
            GroupId::None => f.write_str("-"),
        }
    }
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Idle,
    /// MariaDB GTID seen.
    Maria { standalone: bool, xa_prepare: bool },
    /// MySQL GTID seen, waiting for BEGIN or a DDL.
    MySqlGtid,
    /// Inside BEGIN ... COMMIT.
    Open,
}

/// Feeds events in stream order; reports each event's [`Role`].
#[derive(Debug, Default)]
pub struct GroupTracker {
    state: State,
    id: Option<GroupId>,
    /// Groups that were opened and never closed (a new group began first).
    pub interrupted: u64,
}

impl GroupTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// True while a group is open.
    pub fn in_group(&self) -> bool {
        !matches!(self.state, State::Idle)
    }

    /// The id of the open (or just closed) group.
    pub fn current(&self) -> Option<&GroupId> {
        self.id.as_ref()
    }

    fn begin(&mut self, state: State, id: GroupId) -> Role {
        if self.in_group() {
            self.interrupted += 1;
        }
        self.state = state;
        self.id = Some(id);
        Role::Begin
    }

    fn end(&mut self) -> Role {
        self.state = State::Idle;
        Role::End
    }

    pub fn observe(&mut self, ev: &Event<'_>) -> Role {
        let t = ev.header.type_code;
        let body = ev.body();
        match t {
            types::FORMAT_DESCRIPTION
            | types::ROTATE
            | types::STOP
            | types::PREVIOUS_GTIDS
            | types::GTID_LIST
            | types::BINLOG_CHECKPOINT
            | types::START_ENCRYPTION
            | types::HEARTBEAT
            | types::INCIDENT => Role::Outside,
            types::MARIADB_GTID => {
                let Some(g) = MariaGtidEvent::parse(body) else {
                    return self.begin(State::Open, GroupId::None);
                };
                let state = State::Maria {
                    standalone: g.standalone(),
                    xa_prepare: g.flags2 & super::events::gtid_flags::PREPARED_XA != 0,
                };
                self.begin(state, GroupId::Maria(g.gtid(ev.header.server_id)))
            }
            types::MYSQL_GTID | types::ANONYMOUS_GTID | types::GTID_TAGGED => {
                let id = mysql_gtid_of(t, body).map_or(GroupId::None, GroupId::MySql);
                self.begin(State::MySqlGtid, id)
            }
            types::QUERY | types::QUERY_COMPRESSED => self.query(t, body),
            types::XID | types::XA_PREPARE => {
                if self.in_group() {
                    self.end()
                } else {
                    Role::Orphan
                }
            }
            types::TRANSACTION_PAYLOAD => {
                if self.in_group() {
                    self.end()
                } else {
                    self.id = Some(GroupId::None);
                    Role::Single
                }
            }
            _ => {
                if self.in_group() {
                    Role::Inside
                } else {
                    Role::Orphan
                }
            }
        }
    }

    fn query(&mut self, t: u8, body: &[u8]) -> Role {
        // Compressed queries are long ones (≥ log_bin_compress_min_len): never COMMIT or BEGIN.
        let text = if t == types::QUERY {
            query_text(body).unwrap_or(&[])
        } else {
            &[]
        };
        let is = |w: &str| query_is(text, w);
        let starts = |w: &str| {
            text.trim_ascii_start()
                .get(..w.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(w.as_bytes()))
        };
        let closes = is("COMMIT") || is("ROLLBACK") || starts("XA COMMIT") || starts("XA ROLLBACK");
        match self.state {
            State::Idle => {
                if is("BEGIN") {
                    self.begin(State::Open, GroupId::None)
                } else if closes {
                    Role::Orphan
                } else {
                    // A statement outside BEGIN without GTIDs is a group by itself.
                    self.id = Some(GroupId::None);
                    Role::Single
                }
            }
            State::Maria {
                standalone,
                xa_prepare,
            } => {
                if standalone || closes || (xa_prepare && starts("XA PREPARE")) {
                    self.end()
                } else {
                    Role::Inside
                }
            }
            State::MySqlGtid => {
                if is("BEGIN") || starts("XA START") {
                    self.state = State::Open;
                    Role::Inside
                } else {
                    self.end()
                }
            }
            State::Open => {
                if closes || starts("XA PREPARE") {
                    self.end()
                } else {
                    Role::Inside
                }
            }
        }
    }
}
