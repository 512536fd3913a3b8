//! Fencing tokens: a manager that lost its leadership must not act on this host.
//!
//! Every mutating call a manager makes (apply a diff, fence, unfence, stop mysqld, purge
//! relay logs) carries the token of the run or duty it acts for: the cluster, the Raft term
//! the manager leads, and the cluster's epoch. The agent keeps the highest token it has seen
//! per cluster in its workdir (written and synced before the call proceeds) and refuses any
//! lower one, so a leader paused in the middle of a failover that wakes up after a successor
//! acted here is refused. Order: term first (one leader per term), then epoch. Lease
//! renewals are checked against it but do not raise it: every manager renews, and only the
//! leader's acts decide what is current. A call without a token (operator tooling, an older
//! manager) is not fenced.
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The gRPC metadata key that carries the token.
pub const HEADER: &str = "x-raftmha-fencing-token";
const FILE: &str = "fencing-tokens.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FencingToken {
    pub cluster: String,
    pub term: u64,
    pub epoch: u64,
}

impl FencingToken {
    /// `term.epoch.cluster` (cluster names are plain identifiers; the cluster goes last so
    /// any character in it survives).
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.term, self.epoch, self.cluster)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.splitn(3, '.');
        let (Some(term), Some(epoch), Some(cluster)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("fencing token {text:?} is not term.epoch.cluster"));
        };
        let number = |s: &str, what: &str| {
            s.parse::<u64>()
                .map_err(|_| format!("fencing token {text:?}: {what} is not a number"))
        };
        if cluster.is_empty() {
            return Err(format!("fencing token {text:?} names no cluster"));
        }
        Ok(FencingToken {
            cluster: cluster.to_string(),
            term: number(term, "term")?,
            epoch: number(epoch, "epoch")?,
        })
    }

    fn rank(&self) -> (u64, u64) {
        (self.term, self.epoch)
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cluster {} term {} epoch {}",
            self.cluster, self.term, self.epoch
        )
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error(
        "stale fencing token ({got}): this agent already acted for term {term} epoch {epoch}; the caller lost its leadership"
    )]
    Stale {
        got: FencingToken,
        term: u64,
        epoch: u64,
    },
    #[error("fencing tokens in {path}: {why}")]
    Store { path: String, why: String },
}

/// The highest token seen per cluster, persisted in the workdir.
pub struct TokenBook {
    path: PathBuf,
    highest: Mutex<BTreeMap<String, (u64, u64)>>,
}

impl TokenBook {
    /// Opens the book in `workdir`. A missing file is an empty book; an unreadable or
    /// corrupt one is an error (the agent must not forget what it promised).
    pub fn open(workdir: &Path) -> Result<Self, TokenError> {
        let path = workdir.join(FILE);
        let store_error = |why: String| TokenError::Store {
            path: path.display().to_string(),
            why,
        };
        let highest = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| store_error(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(store_error(e.to_string())),
        };
        Ok(TokenBook {
            path,
            highest: Mutex::new(highest),
        })
    }

    /// Admits a mutating call: refused when lower than the highest token seen for its
    /// cluster; a higher one is recorded (and synced to disk) first.
    pub fn admit(&self, token: &FencingToken) -> Result<(), TokenError> {
        let mut highest = self.highest.lock().unwrap_or_else(|p| p.into_inner());
        let seen = highest.get(&token.cluster).copied();
        if let Some((term, epoch)) = seen {
            if token.rank() < (term, epoch) {
                return Err(TokenError::Stale {
                    got: token.clone(),
                    term,
                    epoch,
                });
            }
            if token.rank() == (term, epoch) {
                return Ok(());
            }
        }
        let mut next = highest.clone();
        next.insert(token.cluster.clone(), token.rank());
        self.persist(&next)?;
        *highest = next;
        Ok(())
    }

    /// Checks a lease renewal's token without raising the highest one.
    pub fn check(&self, token: &FencingToken) -> Result<(), TokenError> {
        let highest = self.highest.lock().unwrap_or_else(|p| p.into_inner());
        match highest.get(&token.cluster) {
            Some(&(term, epoch)) if token.term < term => Err(TokenError::Stale {
                got: token.clone(),
                term,
                epoch,
            }),
            _ => Ok(()),
        }
    }

    /// The highest token seen for `cluster`, as (term, epoch).
    pub fn highest(&self, cluster: &str) -> Option<(u64, u64)> {
        let highest = self.highest.lock().unwrap_or_else(|p| p.into_inner());
        highest.get(cluster).copied()
    }

    fn persist(&self, book: &BTreeMap<String, (u64, u64)>) -> Result<(), TokenError> {
        let store_error = |e: std::io::Error| TokenError::Store {
            path: self.path.display().to_string(),
            why: e.to_string(),
        };
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(book).map_err(|e| TokenError::Store {
            path: self.path.display().to_string(),
            why: e.to_string(),
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(store_error)?;
        f.write_all(&bytes).map_err(store_error)?;
        f.sync_all().map_err(store_error)?;
        std::fs::rename(&tmp, &self.path).map_err(store_error)?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(term: u64, epoch: u64) -> FencingToken {
        FencingToken {
            cluster: "app1".into(),
            term,
            epoch,
        }
    }

    #[test]
    fn a_lower_token_is_refused_after_a_higher_one_acted_even_after_a_restart() {
        let dir = tempfile::tempdir().expect("tmp");
        let book = TokenBook::open(dir.path()).expect("open");
        book.admit(&token(3, 0)).expect("first");
        book.admit(&token(3, 1)).expect("same term, next epoch");
        book.admit(&token(3, 1)).expect("the same token again");
        book.admit(&token(4, 0)).expect("a newer term");
        let reopened = TokenBook::open(dir.path()).expect("reopen");
        for stale in [token(3, 1), token(3, 9)] {
            assert!(
                matches!(reopened.admit(&stale), Err(TokenError::Stale { .. })),
                "{stale}"
            );
        }
        let other = FencingToken {
            cluster: "app2".into(),
            term: 1,
            epoch: 0,
        };
        reopened.admit(&other).expect("clusters are independent");
        assert_eq!(reopened.highest("app1"), Some((4, 0)));
    }

    #[test]
    fn renewals_are_checked_by_term_and_never_raise_the_book() {
        let dir = tempfile::tempdir().expect("tmp");
        let book = TokenBook::open(dir.path()).expect("open");
        book.check(&token(9, 9)).expect("nothing seen yet");
        assert_eq!(book.highest("app1"), None);
        book.admit(&token(5, 2)).expect("leader acts");
        book.check(&token(5, 0))
            .expect("same term, older epoch view");
        assert!(book.check(&token(4, 7)).is_err());
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused_clearly() {
        let t = FencingToken {
            cluster: "app.1".into(),
            term: 7,
            epoch: 3,
        };
        assert_eq!(FencingToken::parse(&t.encode()), Ok(t));
        for bad in ["", "7", "7.3", "x.3.app", "7.y.app", "7.3."] {
            assert!(FencingToken::parse(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join(FILE), b"{not json").expect("write");
        assert!(matches!(
            TokenBook::open(dir.path()),
            Err(TokenError::Store { .. })
        ));
    }
}
