//! The streaming event walker.
//!
//! It reads a file through one reusable buffer with large `pread`s (no per-event syscall, memory
//! bounded by [`BUF_SIZE`] whatever the file or event size), hands out each event as a borrowed
//! slice, and verifies CRC32 under the most recent FORMAT_DESCRIPTION event. Events larger than
//! the buffer are checksummed in streamed chunks and handed out as a prefix.
//!
//! We read rather than `mmap`: a binlog truncated by the server while mapped would kill the
//! process with SIGBUS, and file-backed pages of a mapping count against the RSS budget.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::{ErrorKind, PRE_V4, WalkError};
use super::fde::{FdeError, FormatDescription, event_crc};
use super::header::{CRC_LEN, HEADER_LEN, Header, MAGIC, MAX_EVENT_SIZE, types};

/// The first four bytes of a MySQL 8.0.14+ encrypted binlog (`binlog_encryption=ON`).
const MYSQL_ENCRYPTED_MAGIC: [u8; 4] = [0xfd, 0x62, 0x69, 0x6e];

/// Buffer size: events up to this size are handed out whole. 1 MiB keeps the working set in
/// the CPU cache while CRCs are computed right after the read.
pub const BUF_SIZE: usize = 1 << 20;
/// How much of an oversized event is kept for decoding (all decoders need far less).
const BIG_PREFIX: usize = 64 * 1024;

/// One event as read from the file.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// Offset of the event's first byte in the file.
    pub offset: u64,
    pub header: Header,
    /// The whole event (header, body and trailer), or only its first bytes when `whole` is false.
    pub bytes: &'a [u8],
    pub whole: bool,
    /// Whether this event carries a CRC32 trailer.
    pub has_crc: bool,
    /// Whether events after this one carry a CRC (changes only at an FDE).
    pub checksum_after: bool,
    /// Common header length of this event (the FDE's declared one; 19 for FDEs themselves).
    pub header_len: usize,
}

impl Event<'_> {
    /// Offset just past the event.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.header.event_size)
    }

    /// The body without header and trailer (a prefix if the event was too big to hold).
    pub fn body(&self) -> &[u8] {
        // A prefix has no trailer; the FDE parser finds the alg byte and CRC itself.
        let strip =
            self.whole && self.has_crc && self.header.type_code != types::FORMAT_DESCRIPTION;
        let trailer = if strip { CRC_LEN } else { 0 };
        let end = self
            .bytes
            .len()
            .saturating_sub(trailer)
            .max(self.header_len);
        self.bytes.get(self.header_len..end).unwrap_or(&[])
    }
}

/// Walks the events of one file.
pub struct Walker {
    file: File,
    path: PathBuf,
    /// Bytes of the file we consider (its size when opened, or a caller-given limit).
    limit: u64,
    buf: Vec<u8>,
    buf_off: u64,
    buf_len: usize,
    big: Vec<u8>,
    next: u64,
    fde: Option<FormatDescription>,
    verify_crc: bool,
    events: u64,
}

impl Walker {
    /// Opens `path`, checks the magic bytes and positions at the first event (offset 4).
    /// The file's size is taken now: bytes appended later are not read.
    pub fn open(path: &Path) -> Result<Self, WalkError> {
        let file = File::open(path).map_err(|e| WalkError::new(path, 0, e))?;
        let limit = file
            .metadata()
            .map_err(|e| WalkError::new(path, 0, e))?
            .len();
        let mut w = Walker {
            file,
            path: path.to_path_buf(),
            limit,
            buf: vec![0; BUF_SIZE],
            buf_off: 0,
            buf_len: 0,
            big: Vec::new(),
            next: 4,
            fde: None,
            verify_crc: true,
            events: 0,
        };
        if limit < 4 {
            return Err(WalkError::new(path, 0, ErrorKind::BadMagic));
        }
        let magic = w.window(0, 4)?;
        if magic == MYSQL_ENCRYPTED_MAGIC {
            let kind = ErrorKind::Encrypted {
                setting: "binlog_encryption",
                from: 0,
            };
            return Err(WalkError::new(path, 0, kind));
        }
        if magic != MAGIC {
            return Err(WalkError::new(path, 0, ErrorKind::BadMagic));
        }
        Ok(w)
    }

    /// Turns CRC verification on or off (it is on by default).
    pub fn verify_crc(mut self, on: bool) -> Self {
        self.verify_crc = on;
        self
    }

    /// Treats the file as ending at `limit` (which must not exceed its size).
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = self.limit.min(limit);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file as seen by this walker.
    pub fn len(&self) -> u64 {
        self.limit
    }

    pub fn is_empty(&self) -> bool {
        self.limit <= 4
    }

    /// Offset of the next event to be read.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Events handed out so far.
    pub fn events_read(&self) -> u64 {
        self.events
    }

    /// The FORMAT_DESCRIPTION in force (the latest one read).
    pub fn format(&self) -> Option<&FormatDescription> {
        self.fde.as_ref()
    }

    /// Common header length of the events at the current position.
    fn header_len(&self) -> usize {
        self.fde
            .as_ref()
            .map_or(HEADER_LEN, |f| usize::from(f.header_len))
    }

    /// Whether events at the current position carry a CRC.
    pub fn checksum_on(&self) -> bool {
        self.fde.as_ref().is_some_and(|f| f.checksum)
    }

    /// The underlying file (for kernel-side copies of byte ranges).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Continues at `offset` with `fde` in force, without reading what lies before. The caller
    /// vouches that `offset` is an event boundary; the next read verifies the event there.
    pub fn start_at(&mut self, offset: u64, fde: FormatDescription) {
        self.next = offset;
        self.fde = Some(fde);
    }

    /// Walks forward (headers only, no CRC) until the next event starts at `offset`.
    /// Errors if `offset` is not an event boundary.
    pub fn skip_to(&mut self, offset: u64) -> Result<(), WalkError> {
        let verify = self.verify_crc;
        self.verify_crc = false;
        let result = (|| {
            while self.next < offset {
                if self.next_event()?.is_none() {
                    break;
                }
            }
            Ok(())
        })();
        self.verify_crc = verify;
        result?;
        if self.next != offset {
            return Err(WalkError::new(
                &self.path,
                offset,
                ErrorKind::Invalid(format!(
                    "not an event boundary (events around it start at {} )",
                    self.next
                )),
            ));
        }
        Ok(())
    }

    fn err(&self, offset: u64, kind: impl Into<ErrorKind>) -> WalkError {
        WalkError::new(&self.path, offset, kind)
    }

    /// Makes `[off, off+n)` available in the buffer (`n ≤ BUF_SIZE`, within the limit).
    fn window(&mut self, off: u64, n: usize) -> Result<&[u8], WalkError> {
        let in_buf = off >= self.buf_off && off + n as u64 <= self.buf_off + self.buf_len as u64;
        if !in_buf {
            // Keep whatever we already hold from `off` on, then read more behind it.
            if off >= self.buf_off && off < self.buf_off + self.buf_len as u64 {
                let from = (off - self.buf_off) as usize;
                self.buf.copy_within(from..self.buf_len, 0);
                self.buf_len -= from;
            } else {
                self.buf_len = 0;
            }
            self.buf_off = off;
            while self.buf_len < n {
                let at = self.buf_off + self.buf_len as u64;
                let want = (self.buf.len() - self.buf_len).min((self.limit - at) as usize);
                if want == 0 {
                    break;
                }
                let got = self
                    .file
                    .read_at(&mut self.buf[self.buf_len..self.buf_len + want], at)
                    .map_err(|e| WalkError::new(&self.path, at, e))?;
                if got == 0 {
                    // The file shrank under us.
                    let have = self.buf_len as u64;
                    return Err(self.err(
                        off,
                        ErrorKind::Truncated {
                            need: n as u64,
                            have,
                        },
                    ));
                }
                self.buf_len += got;
            }
        }
        let from = (off - self.buf_off) as usize;
        Ok(&self.buf[from..from + n])
    }

    /// CRC32 of `[off, off+len)` for events larger than the buffer, read in chunks.
    fn streamed_crc(&mut self, off: u64, len: u64, header: &Header) -> Result<u32, WalkError> {
        let mut hasher = crc32fast::Hasher::new();
        let mut at = off;
        let end = off + len;
        let mut first = true;
        while at < end {
            let n = ((end - at) as usize).min(BUF_SIZE);
            let chunk = self.window(at, n)?;
            if first && header.type_code == types::FORMAT_DESCRIPTION {
                // FDEs are never this large; keep the rule anyway.
                return Ok(event_crc(chunk, header));
            }
            first = false;
            hasher.update(chunk);
            at += n as u64;
        }
        Ok(hasher.finalize())
    }

    /// Reads the next event; `Ok(None)` at the end of the file.
    pub fn next_event(&mut self) -> Result<Option<Event<'_>>, WalkError> {
        let off = self.next;
        if off >= self.limit {
            return Ok(None);
        }
        let left = self.limit - off;
        if self.fde.is_none() && left >= 5 && self.window(off + 4, 1)?[0] == types::START_V3 {
            // v1 (13-byte headers) and v3 files start with START_EVENT_V3; its type byte is
            // at the same place in both.
            return Err(self.err(off, ErrorKind::Unsupported(PRE_V4)));
        }
        if left < HEADER_LEN as u64 {
            return Err(self.err(
                off,
                ErrorKind::Truncated {
                    need: HEADER_LEN as u64,
                    have: left,
                },
            ));
        }
        let header = Header::parse(self.window(off, HEADER_LEN)?)
            .ok_or_else(|| self.err(off, ErrorKind::Invalid("short header".into())))?;
        let size = header.event_size;
        let is_fde = header.type_code == types::FORMAT_DESCRIPTION;
        let has_crc = self.checksum_on() && !is_fde;
        // An FDE's own header is the v4 one: readers learn the length from it.
        let header_len = if is_fde {
            HEADER_LEN
        } else {
            self.header_len()
        };
        let trailer = if has_crc { CRC_LEN as u32 } else { 0 };
        let min = header_len as u32 + trailer;
        if size < min || size > MAX_EVENT_SIZE {
            return Err(self.err(
                off,
                ErrorKind::BadSize {
                    size,
                    type_code: header.type_code,
                },
            ));
        }
        if u64::from(size) > left {
            return Err(self.err(
                off,
                ErrorKind::Truncated {
                    need: u64::from(size),
                    have: left,
                },
            ));
        }
        if self.fde.is_none() && !is_fde {
            return Err(self.err(off, ErrorKind::FirstNotFde(header.type_name())));
        }
        if header.type_code == types::START_ENCRYPTION {
            // MariaDB `encrypt_binlog`: every event after this one is ciphertext.
            let kind = ErrorKind::Encrypted {
                setting: "encrypt_binlog",
                from: off,
            };
            return Err(self.err(off, kind));
        }
        let size_us = size as usize;
        let whole = size_us <= BUF_SIZE;
        if is_fde {
            let fde = {
                let bytes = self.window(off, size_us.min(BUF_SIZE))?;
                FormatDescription::parse(bytes).map_err(|e| match e {
                    FdeError::Version(1..=3) => {
                        WalkError::new(&self.path, off, ErrorKind::Unsupported(PRE_V4))
                    }
                    e => WalkError::new(&self.path, off, e),
                })?
            };
            if fde.own_crc_verified() && self.verify_crc {
                self.check_crc(off, size, &header)?;
            }
            self.fde = Some(fde);
        } else if has_crc && self.verify_crc {
            self.check_crc(off, size, &header)?;
        }
        if whole {
            self.window(off, size_us)?;
        } else {
            let prefix = self.window(off, BIG_PREFIX)?.to_vec();
            self.big = prefix;
        }
        // Field borrows from here on (not `&mut self` methods): the event's bytes stay borrowed
        // from the buffer while the FDE and the path are read.
        let bytes: &[u8] = if whole {
            let from = (off - self.buf_off) as usize;
            &self.buf[from..from + size_us]
        } else {
            &self.big
        };
        if !is_fde && let Some(fde) = self.fde.as_ref() {
            // Whole events are checked whole, larger ones by their first bytes.
            let body_len = (size - header_len as u32 - trailer) as usize;
            let body_end = bytes.len().min(header_len + body_len);
            let body = bytes.get(header_len..body_end).unwrap_or(&[]);
            if let Err(what) = super::validate::check(fde, header.type_code, body, body_len as u64)
            {
                let kind = ErrorKind::Content {
                    type_name: header.type_name(),
                    what,
                };
                return Err(WalkError::new(&self.path, off, kind));
            }
        }
        self.next = off + u64::from(size);
        self.events += 1;
        let checksum_after = self.fde.as_ref().is_some_and(|f| f.checksum);
        let fde_has_crc = is_fde && self.fde.as_ref().is_some_and(|f| f.checksum_aware);
        Ok(Some(Event {
            offset: off,
            header,
            bytes,
            whole,
            has_crc: has_crc || fde_has_crc,
            checksum_after,
            header_len,
        }))
    }

    fn check_crc(&mut self, off: u64, size: u32, header: &Header) -> Result<(), WalkError> {
        let payload = u64::from(size) - CRC_LEN as u64;
        let computed = if size as usize <= BUF_SIZE {
            let bytes = self.window(off, size as usize)?;
            event_crc(&bytes[..payload as usize], header)
        } else {
            self.streamed_crc(off, payload, header)?
        };
        let stored_bytes = self.window(off + payload, CRC_LEN)?;
        let stored = u32::from_le_bytes([
            stored_bytes[0],
            stored_bytes[1],
            stored_bytes[2],
            stored_bytes[3],
        ]);
        if stored != computed {
            return Err(self.err(
                off,
                ErrorKind::Checksum {
                    type_name: header.type_name(),
                    stored,
                    computed,
                },
            ));
        }
        Ok(())
    }
}
