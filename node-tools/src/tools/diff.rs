//! `apply_diff_relay_logs --command=find|generate`: on the latest replica, find where a lagging
//! replica's read position ends in the relay logs and cut everything after it into a diff file.

use std::path::{Path, PathBuf};

use crate::binlog::concat::ConcatReport;
use crate::binlog::relay::{
    FindResult, Found, MasterCoord, find_position, list_numbered, read_index, relay_from_info,
};

use super::ToolError;

/// Where the relay logs are: MHA's `--relay_log_info`, or `--relay_dir` + `--current_relay_log`,
/// or an index file.
#[derive(Debug, Clone)]
pub enum RelaySource {
    Info(PathBuf),
    DirAndCurrent { dir: PathBuf, current: String },
    Index(PathBuf),
}

impl RelaySource {
    /// The relay files, oldest first.
    pub fn files(&self) -> Result<Vec<PathBuf>, ToolError> {
        let files = match self {
            RelaySource::Info(info) => {
                let (dir, base) = relay_from_info(info)
                    .map_err(ToolError::io(format!("read {}", info.display())))?;
                list_numbered(&dir, &base)
                    .map_err(ToolError::io(format!("list {}", dir.display())))?
            }
            RelaySource::DirAndCurrent { dir, current } => {
                let base = current
                    .rsplit_once('.')
                    .map_or(current.as_str(), |(b, _)| b);
                list_numbered(dir, base)
                    .map_err(ToolError::io(format!("list {}", dir.display())))?
            }
            RelaySource::Index(index) => {
                read_index(index).map_err(ToolError::io(format!("read {}", index.display())))?
            }
        };
        if files.is_empty() {
            return Err(ToolError::Invalid(format!(
                "no relay log files found ({self:?})"
            )));
        }
        Ok(files)
    }
}

pub fn find(
    files: &[PathBuf],
    target: &MasterCoord,
    latest: Option<&MasterCoord>,
) -> Result<FindResult, ToolError> {
    Ok(find_position(files, target, latest)?)
}

/// The outcome of `generate`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Generated {
    pub find: FindResult,
    /// None when the target already has everything (no file written).
    pub report: Option<ConcatReport>,
}

/// Finds the start and writes `[start, end of the last relay log)` to `output`.
pub fn generate(
    files: &[PathBuf],
    target: &MasterCoord,
    latest: Option<&MasterCoord>,
    output: &Path,
    verify_crc: bool,
) -> Result<Generated, ToolError> {
    let find = find(files, target, latest)?;
    let report = match &find.found {
        Found::TargetHasAll => None,
        Found::At { index, offset, .. } => Some(super::save::concat_to(
            &files[*index..],
            *offset,
            output,
            verify_crc,
        )?),
    };
    Ok(Generated { find, report })
}
