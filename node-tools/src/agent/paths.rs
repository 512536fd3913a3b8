//! Path policy: callers name files by bare name; the agent resolves them inside its configured
//! directories and refuses anything else (`..`, `/`, symlinks pointing outside).

use std::path::{Path, PathBuf};

use tonic::Status;

/// Resolves `name` inside `dir`, refusing traversal. The file must exist.
pub fn resolve(dir: &Path, name: &str) -> Result<PathBuf, Status> {
    if name.is_empty()
        || name.contains('/')
        || name.contains('\\')
        || name.contains('\0')
        || name == "."
        || name == ".."
    {
        return Err(Status::permission_denied(format!(
            "{name:?} is not a bare file name inside the served directories"
        )));
    }
    let base = dir
        .canonicalize()
        .map_err(|e| Status::failed_precondition(format!("{}: {e}", dir.display())))?;
    let path = base.join(name);
    let real = path
        .canonicalize()
        .map_err(|e| Status::not_found(format!("{name}: {e}")))?;
    if !real.starts_with(&base) {
        return Err(Status::permission_denied(format!(
            "{name:?} resolves outside {}",
            base.display()
        )));
    }
    Ok(real)
}

/// A name for an uploaded file: bare, and no hidden or odd characters.
pub fn upload_name(name: &str) -> Result<&str, Status> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(name)
    } else {
        Err(Status::invalid_argument(format!(
            "bad upload file name {name:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_traversal() {
        let dir = std::env::temp_dir();
        assert!(resolve(&dir, "../etc/passwd").is_err());
        assert!(resolve(&dir, "..").is_err());
        assert!(resolve(&dir, "/etc/passwd").is_err());
        assert!(upload_name("../x").is_err());
        assert!(upload_name(".hidden").is_err());
        assert!(upload_name("relay_from_read.binlog").is_ok());
    }
}
