//! MHA configuration import: `app1.cnf` (+ `masterha_default.cnf`) → a raftmha cluster file.
//!
//! - [`ini`]: MHA's INI dialect (Config::Tiny) with line numbers for error messages.
//! - [`params`]: every MHA parameter, its scope and what raftmha does with it (one table,
//!   also rendered in the README's migration section).
//! - [`import`]: MHA's merge rules (global `[server default]` → app `[server default]` →
//!   `[serverN]`) and the mapping onto [`crate::state::cluster_file::ClusterSpec`].
pub mod import;
pub mod ini;
pub mod params;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MhaError {
    #[error("{file} line {line}: {message}")]
    Line {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    File { file: String, message: String },
}
