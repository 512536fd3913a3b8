//! Where a node's unix socket lives: a path the kernel accepts.
use std::path::{Path, PathBuf};

/// The longest unix socket path the kernel accepts is 107 bytes (`sun_path` is 108 with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// `DIR/nodeK/mariadbd.sock`, or, when that path is too long for a unix socket (deep CI checkouts
/// with long run names), a short path under `/tmp/raftmha-sockets/` named by a hash of the node's
/// directory: stable for the same directory, distinct between sandboxes.
pub fn socket_path(node_dir: &Path) -> PathBuf {
    let local = node_dir.join("mariadbd.sock");
    if local.as_os_str().len() <= MAX_SOCKET_PATH {
        return local;
    }
    // FNV-1a: deterministic across builds, unlike std's hasher.
    let hash = node_dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    PathBuf::from(format!("/tmp/raftmha-sockets/{hash:016x}.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_of_deep_directories_move_to_a_short_path() {
        let deep = PathBuf::from(format!("/check/{}/run-seed1", "d".repeat(100)));
        let a = socket_path(&deep.join("node1"));
        let b = socket_path(&deep.join("node2"));
        assert!(a.as_os_str().len() <= MAX_SOCKET_PATH, "{}", a.display());
        assert!(a.starts_with("/tmp/raftmha-sockets"));
        assert_ne!(a, b);
        assert_eq!(a, socket_path(&deep.join("node1")));
    }
}
