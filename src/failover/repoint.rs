//! Turning a [`RepointBy`] step into the `CHANGE MASTER` / `CHANGE REPLICATION SOURCE` the
//! dialect layer builds, with the captured position when the plan needs one.
use std::time::Duration;

use super::input::ServerRef;
use super::plan::RepointBy;
use crate::db::{BinlogCoord, ChangeSource, Flavor, Secret, SourcePosition};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepointError {
    #[error("repointing by position needs the new master's captured binlog position")]
    NoCapturedPosition,
}

/// Replication account and timing used for every repointed replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationAccount {
    pub user: String,
    pub password: Secret,
    /// Short retries and heartbeats so a replica notices a dead source quickly (orchestrator
    /// recommends 1 s retry and a heartbeat of half `slave_net_timeout`).
    pub connect_retry_secs: Option<u32>,
    pub heartbeat_period: Option<Duration>,
}

/// The source definition for a replica of `new_master` on a server of `flavor`.
pub fn change_source(
    flavor: Flavor,
    new_master: &ServerRef,
    account: &ReplicationAccount,
    by: RepointBy,
    captured: Option<&BinlogCoord>,
) -> Result<ChangeSource, RepointError> {
    let position = match (by, flavor) {
        (RepointBy::CapturedPosition, _) => {
            SourcePosition::File(captured.cloned().ok_or(RepointError::NoCapturedPosition)?)
        }
        // slave_pos: the replica's own applied position; recovery set it where needed.
        (RepointBy::Gtid, Flavor::MariaDb) => SourcePosition::MariaDbSlavePos,
        (RepointBy::Gtid, Flavor::MySql) => SourcePosition::MySqlAutoPosition,
    };
    Ok(ChangeSource {
        host: new_master.host.clone(),
        port: new_master.port,
        user: account.user.clone(),
        password: account.password.clone(),
        position,
        connect_retry_secs: account.connect_retry_secs,
        heartbeat_period: account.heartbeat_period,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> ReplicationAccount {
        ReplicationAccount {
            user: "repl".into(),
            password: Secret::new("pw"),
            connect_retry_secs: Some(1),
            heartbeat_period: Some(Duration::from_millis(500)),
        }
    }

    #[test]
    fn each_repoint_kind_maps_to_the_flavors_position() {
        let nm = ServerRef::new("db2", "127.0.80.2", 3306);
        let at = BinlogCoord::new("binlog.000004", 976);
        let c = change_source(
            Flavor::MariaDb,
            &nm,
            &account(),
            RepointBy::CapturedPosition,
            Some(&at),
        )
        .expect("has a position");
        assert_eq!(c.position, SourcePosition::File(at));
        assert_eq!((c.host.as_str(), c.port), ("127.0.80.2", 3306));
        let c =
            change_source(Flavor::MariaDb, &nm, &account(), RepointBy::Gtid, None).expect("gtid");
        assert_eq!(c.position, SourcePosition::MariaDbSlavePos);
        let c = change_source(Flavor::MySql, &nm, &account(), RepointBy::Gtid, None).expect("gtid");
        assert_eq!(c.position, SourcePosition::MySqlAutoPosition);
        assert_eq!(
            change_source(
                Flavor::MySql,
                &nm,
                &account(),
                RepointBy::CapturedPosition,
                None
            ),
            Err(RepointError::NoCapturedPosition)
        );
    }
}
