//! Local MariaDB sandboxes.
