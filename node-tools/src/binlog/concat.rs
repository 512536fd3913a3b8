//! Concatenating binlog/relay files from a start offset into one valid binlog file, the way MHA's
//! raw mode does: the first file's header block (FDE, fake ROTATE, master FDE), the events from
//! the start offset on, then for each later file its events without its FDEs (an FDE in the
//! middle of a stream makes `mysqlbinlog` emit ROLLBACK and would abort a transaction spanning
//! files) — except an FDE that switches checksums, which readers need.
//!
//! Bytes are copied by the kernel (`copy_file_range`) in long runs while the walker checks each
//! event, so memory stays bounded and the speed is that of `cp`.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::error::WalkError;
use super::header::{MAGIC, types};
use super::reader::{Event, Walker};

/// An output file written sequentially, with kernel-side range copies.
pub struct OutFile {
    file: File,
    path: PathBuf,
    pos: u64,
}

impl OutFile {
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::create(path)?;
        Ok(OutFile {
            file,
            path: path.to_path_buf(),
            pos: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn write_bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.file.write_all_at(b, self.pos)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Copies `src[off, off+len)` to the end of the output.
    pub fn copy_range(&mut self, src: &File, mut off: u64, mut len: u64) -> io::Result<()> {
        while len > 0 {
            let mut in_off = off as libc::loff_t;
            let mut out_off = self.pos as libc::loff_t;
            let chunk = len.min(1 << 30) as usize;
            // SAFETY: both descriptors are open files owned by us for the duration of the call,
            // and the offsets point to local variables.
            let n = unsafe {
                libc::copy_file_range(
                    src.as_raw_fd(),
                    &mut in_off,
                    self.file.as_raw_fd(),
                    &mut out_off,
                    chunk,
                    0,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                return match err.raw_os_error() {
                    Some(libc::EXDEV | libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP) => {
                        self.copy_by_reading(src, off, len)
                    }
                    _ => Err(err),
                };
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "source shrank while copying",
                ));
            }
            off += n as u64;
            len -= n as u64;
            self.pos += n as u64;
        }
        Ok(())
    }

    fn copy_by_reading(&mut self, src: &File, mut off: u64, mut len: u64) -> io::Result<()> {
        let mut buf = vec![0u8; (1 << 20).min(len as usize)];
        while len > 0 {
            let n = (len as usize).min(buf.len());
            src.read_exact_at(&mut buf[..n], off)?;
            self.write_bytes(&buf[..n])?;
            off += n as u64;
            len -= n as u64;
        }
        Ok(())
    }

    /// Drops everything written after `pos` (used to take back an incomplete group).
    pub fn truncate_to(&mut self, pos: u64) -> io::Result<()> {
        self.file.set_len(pos)?;
        self.pos = pos;
        Ok(())
    }

    pub fn finish(self) -> io::Result<()> {
        self.file.sync_data()?;
        let mut f = self.file;
        f.flush()
    }
}

/// A run of consecutive source bytes waiting to be copied.
#[derive(Default)]
pub struct PendingRange {
    start: u64,
    end: u64,
}

impl PendingRange {
    /// Adds an event; flushes first if it is not adjacent to the current run.
    pub fn push(&mut self, out: &mut OutFile, src: &File, ev: &Event<'_>) -> io::Result<()> {
        if self.end != ev.offset {
            self.flush(out, src)?;
            self.start = ev.offset;
        }
        self.end = ev.end();
        Ok(())
    }

    pub fn flush(&mut self, out: &mut OutFile, src: &File) -> io::Result<()> {
        if self.end > self.start {
            out.copy_range(src, self.start, self.end - self.start)?;
        }
        self.start = self.end;
        Ok(())
    }
}

/// What a concatenation produced.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ConcatReport {
    pub bytes_written: u64,
    /// Events copied from the start offset on (header blocks excluded).
    pub events_copied: u64,
    /// Of those, events that carry data (not rotation/format/bookkeeping).
    pub data_events: u64,
    pub files: usize,
    /// A partial event at the end of a file (a crash or a file being written) that was left out.
    pub truncated: Vec<String>,
    /// Where the copied data ended: last file and offset.
    pub end: Option<(PathBuf, u64)>,
}

/// Whether an event belongs to a file's leading header block (MHA's "init headers").
pub fn is_header_event(t: u8) -> bool {
    matches!(
        t,
        types::FORMAT_DESCRIPTION | types::ROTATE | types::PREVIOUS_GTIDS
    )
}

/// Events that carry no data: format, rotation and bookkeeping.
pub fn is_bookkeeping(t: u8) -> bool {
    matches!(
        t,
        types::FORMAT_DESCRIPTION
            | types::ROTATE
            | types::STOP
            | types::PREVIOUS_GTIDS
            | types::GTID_LIST
            | types::BINLOG_CHECKPOINT
            | types::HEARTBEAT
    )
}

/// Concatenates `files[0]` from `start_offset` (an event boundary) and all later files whole
/// into `out`. A partial event at the end of a file is left out and reported, not an error.
pub fn concat_from(
    files: &[PathBuf],
    start_offset: u64,
    out: &mut OutFile,
    verify_crc: bool,
) -> Result<ConcatReport, WalkError> {
    let io_err = |p: &Path, off: u64, e: io::Error| WalkError::new(p, off, e);
    let mut report = ConcatReport::default();
    out.write_bytes(&MAGIC)
        .map_err(|e| io_err(out.path(), 0, e))?;
    let mut written_checksum: Option<bool> = None;
    for (i, path) in files.iter().enumerate() {
        let mut w = Walker::open(path)?.verify_crc(verify_crc);
        if i == 0 && start_offset > w.len() {
            return Err(super::relay::invalid(
                path,
                start_offset,
                format!(
                    "start position is past the end of the file ({} bytes)",
                    w.len()
                ),
            ));
        }
        let src = w.file().try_clone().map_err(|e| io_err(path, 0, e))?;
        let mut run = PendingRange::default();
        let mut in_header = true;
        loop {
            let ev = match w.next_event() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) if e.is_truncation() => {
                    report.truncated.push(e.to_string());
                    break;
                }
                Err(e) => return Err(e),
            };
            let t = ev.header.type_code;
            let is_fde = t == types::FORMAT_DESCRIPTION;
            in_header = in_header && is_header_event(t);
            let keep = if is_fde {
                // Always the first file's header FDEs; otherwise only a checksum switch.
                (i == 0 && in_header) || written_checksum != Some(ev.checksum_after)
            } else if in_header {
                i == 0 || t == types::ROTATE
            } else if i == 0 && ev.offset < start_offset {
                if ev.end() > start_offset {
                    return Err(super::relay::invalid(
                        path,
                        start_offset,
                        format!(
                            "not an event boundary (the event at {} spans it)",
                            ev.offset
                        ),
                    ));
                }
                false
            } else {
                true
            };
            if keep {
                if is_fde {
                    written_checksum = Some(ev.checksum_after);
                }
                if !in_header {
                    report.events_copied += 1;
                    if !is_bookkeeping(t) {
                        report.data_events += 1;
                    }
                }
                run.push(out, &src, &ev)
                    .map_err(|e| io_err(out.path(), out.position(), e))?;
                report.end = Some((path.clone(), ev.end()));
            }
        }
        run.flush(out, &src)
            .map_err(|e| io_err(out.path(), out.position(), e))?;
        report.files += 1;
    }
    report.bytes_written = out.position();
    Ok(report)
}
