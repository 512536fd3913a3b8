//! `save_binary_logs`: the events from `start_file:start_pos` to the end of the last binlog, in
//! one file that starts with a valid FORMAT_DESCRIPTION (MHA raw mode). Works on binlogs and on
//! relay logs (MHA saves a target's own relay logs from Exec to Read this way).

use std::path::{Path, PathBuf};

use crate::binlog::concat::{ConcatReport, OutFile, concat_from};
use crate::binlog::relay::{file_number, list_numbered};

use super::ToolError;

/// What to save.
#[derive(Debug, Clone)]
pub struct SaveRequest {
    /// Directories to look in; the first one that holds `start_file` wins (MHA's comma list).
    pub binlog_dirs: Vec<PathBuf>,
    pub start_file: String,
    pub start_pos: u64,
    pub output: PathBuf,
    pub verify_crc: bool,
}

/// The result: saved, or nothing after that position (MHA exit code 10).
#[derive(Debug, Clone, serde::Serialize)]
pub enum SaveOutcome {
    Saved(ConcatReport),
    NoEvents(ConcatReport),
}

/// The files from `start_file` to the newest one of the same series.
pub fn locate(dirs: &[PathBuf], start_file: &str) -> Result<Vec<PathBuf>, ToolError> {
    if start_file.contains('/') || start_file.is_empty() {
        return Err(ToolError::Invalid(format!(
            "start file {start_file:?} must be a bare file name"
        )));
    }
    let start_no = file_number(start_file).ok_or_else(|| {
        ToolError::Invalid(format!(
            "start file {start_file:?} is not named like base.NNNNNN"
        ))
    })?;
    let (base, _) = start_file.rsplit_once('.').unwrap_or((start_file, ""));
    let dir = dirs
        .iter()
        .find(|d| d.join(start_file).is_file())
        .ok_or_else(|| {
            ToolError::Invalid(format!(
                "{start_file} not found in {}",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let files =
        list_numbered(dir, base).map_err(ToolError::io(format!("list {}", dir.display())))?;
    Ok(files
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(file_number)
                .is_some_and(|n| n >= start_no)
        })
        .collect())
}

/// Saves the tail. The output is written to a temporary name and renamed when complete, so a
/// failure never leaves a plausible-looking partial file behind.
pub fn save(req: &SaveRequest) -> Result<SaveOutcome, ToolError> {
    let files = locate(&req.binlog_dirs, &req.start_file)?;
    let report = concat_to(&files, req.start_pos, &req.output, req.verify_crc)?;
    if report.data_events == 0 {
        Ok(SaveOutcome::NoEvents(report))
    } else {
        Ok(SaveOutcome::Saved(report))
    }
}

/// `concat_from` into `output` via a temporary file in the same directory.
pub fn concat_to(
    files: &[PathBuf],
    start: u64,
    output: &Path,
    verify_crc: bool,
) -> Result<ConcatReport, ToolError> {
    let tmp = tmp_name(output);
    let mut out =
        OutFile::create(&tmp).map_err(ToolError::io(format!("create {}", tmp.display())))?;
    let result = concat_from(files, start, &mut out, verify_crc);
    match result {
        Ok(report) => {
            out.finish()
                .map_err(ToolError::io(format!("write {}", tmp.display())))?;
            std::fs::rename(&tmp, output)
                .map_err(ToolError::io(format!("rename to {}", output.display())))?;
            Ok(report)
        }
        Err(e) => {
            drop(out);
            let _ = std::fs::remove_file(&tmp);
            Err(e.into())
        }
    }
}

fn tmp_name(output: &Path) -> PathBuf {
    let mut name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".partial-{}", std::process::id()));
    output.with_file_name(name)
}

/// MHA's `--command=test`: the file exists and is readable as a binlog, the output dir is writable.
pub fn test(dirs: &[PathBuf], start_file: &str, output_dir: &Path) -> Result<(), ToolError> {
    let files = locate(dirs, start_file)?;
    if let Some(first) = files.first() {
        crate::binlog::Walker::open(first)?;
    }
    let probe = output_dir.join(format!(".raftmha-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(ToolError::io(format!(
        "{} is not writable",
        output_dir.display()
    )))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}
