//! Errors of the binlog engine: every one names the file and the byte offset.

use std::path::PathBuf;

use super::fde::FdeError;

/// What went wrong at a given place.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a binlog or relay log (bad magic bytes)")]
    BadMagic,
    #[error("event truncated: needs {need} bytes, only {have} left in the file")]
    Truncated { need: u64, have: u64 },
    #[error("invalid event size {size} (type {type_code})")]
    BadSize { size: u32, type_code: u8 },
    #[error("the first event is {0}, not FORMAT_DESCRIPTION")]
    FirstNotFde(&'static str),
    #[error("bad FORMAT_DESCRIPTION event: {0}")]
    Fde(#[from] FdeError),
    #[error("CRC32 mismatch in {type_name} event: stored {stored:08x}, computed {computed:08x}")]
    Checksum {
        type_name: &'static str,
        stored: u32,
        computed: u32,
    },
    /// The rest of the file is encrypted (MariaDB `encrypt_binlog`, MySQL `binlog_encryption`):
    /// nothing after `from` can be read without the server's keys.
    #[error("binlog is encrypted ({setting}=ON): cannot read past offset {from}")]
    Encrypted { setting: &'static str, from: u64 },
    /// A file format this engine does not read (a pre-v4 binlog).
    #[error("{0}")]
    Unsupported(&'static str),
    /// An event whose declared contents do not fit or make no sense.
    #[error("bad {type_name} event: {what}")]
    Content {
        type_name: &'static str,
        what: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// The message for binlogs written before v4 (a START_V3 event first, or an FDE of version < 4).
pub const PRE_V4: &str = "binlog format v1/v3 (MySQL < 5.0) is not supported";

/// An engine error: `file: offset N: what`.
#[derive(Debug, thiserror::Error)]
#[error("{}: offset {offset}: {kind}", path.display())]
pub struct WalkError {
    pub path: PathBuf,
    pub offset: u64,
    pub kind: ErrorKind,
}

impl WalkError {
    pub fn new(path: impl Into<PathBuf>, offset: u64, kind: impl Into<ErrorKind>) -> Self {
        WalkError {
            path: path.into(),
            offset,
            kind: kind.into(),
        }
    }

    /// True when the file simply ends inside an event (a crash or a file still being written),
    /// as opposed to bytes that are wrong.
    pub fn is_truncation(&self) -> bool {
        matches!(self.kind, ErrorKind::Truncated { .. })
    }

    /// True when the file is encrypted from some offset on: callers fall back to what needs
    /// no file reading (GTID positioning from the servers) rather than report corruption.
    pub fn is_encrypted(&self) -> bool {
        matches!(self.kind, ErrorKind::Encrypted { .. })
    }
}
