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
    #[error("{0}")]
    Invalid(String),
}

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
}
