//! Snapshot files: `snapshot-<index>.snap`, written atomically (write a temp file, fsync,
//! rename, fsync the directory) and checksummed, so a crash leaves either the old or the
//! new snapshot and a damaged one is detected instead of installed.
//!
//! Layout: magic `RMHASNAP`, u32 format version, u32 CRC-32 of the body, u64 meta length,
//! u64 data length (all little endian), then the meta bytes and the data bytes.
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"RMHASNAP";
const VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 4 + 8 + 8;

fn invalid(path: &Path, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("snapshot file {} is corrupt: {why}", path.display()),
    )
}

pub fn file_name(index: u64) -> String {
    format!("snapshot-{index:020}.snap")
}

/// Writes the snapshot atomically and removes older snapshot files.
pub fn write(dir: &Path, index: u64, meta: &[u8], data: &[u8]) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let path = dir.join(file_name(index));
    let tmp = dir.join(format!("{}.tmp", file_name(index)));
    let mut crc = crc32fast::Hasher::new();
    crc.update(meta);
    crc.update(data);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&VERSION.to_le_bytes())?;
        f.write_all(&crc.finalize().to_le_bytes())?;
        f.write_all(&(meta.len() as u64).to_le_bytes())?;
        f.write_all(&(data.len() as u64).to_le_bytes())?;
        f.write_all(meta)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    File::open(dir)?.sync_all()?;
    for old in list(dir)? {
        if old != path {
            // Best effort: a leftover old file is ignored because the newest one wins.
            let _ = fs::remove_file(old);
        }
    }
    Ok(path)
}

/// Reads and verifies a snapshot file: `(meta, data)`.
pub fn read(path: &Path) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(invalid(path, "bad header"));
    }
    let u32_at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    if u32_at(8) != VERSION {
        return Err(invalid(
            path,
            format!("unknown format version {}", u32_at(8)),
        ));
    }
    let crc = u32_at(12);
    let meta_len = usize::try_from(u64_at(16)).map_err(|e| invalid(path, e))?;
    let data_len = usize::try_from(u64_at(24)).map_err(|e| invalid(path, e))?;
    let body = &bytes[HEADER..];
    if meta_len.checked_add(data_len) != Some(body.len()) {
        return Err(invalid(path, "length mismatch (truncated?)"));
    }
    if crc32fast::hash(body) != crc {
        return Err(invalid(path, "checksum mismatch"));
    }
    Ok((body[..meta_len].to_vec(), body[meta_len..].to_vec()))
}

/// Snapshot files in `dir`, oldest first. Temp files from an interrupted write are removed.
pub fn list(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("snapshot-") && name.ends_with(".snap.tmp") {
            let _ = fs::remove_file(&path);
        } else if name.starts_with("snapshot-") && name.ends_with(".snap") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_snapshot_reads_back_and_replaces_older_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), 5, b"m5", b"d5").expect("write");
        let newest = write(dir.path(), 9, b"meta", b"data").expect("write");
        assert_eq!(list(dir.path()).expect("list"), vec![newest.clone()]);
        assert_eq!(
            read(&newest).expect("read"),
            (b"meta".to_vec(), b"data".to_vec())
        );
    }

    #[test]
    fn a_flipped_byte_or_truncation_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), 1, b"meta", b"some data").expect("write");
        let mut bytes = fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).expect("write");
        assert!(read(&path).is_err());
        fs::write(&path, &bytes[..bytes.len() - 3]).expect("write");
        assert!(read(&path).is_err());
    }
}
