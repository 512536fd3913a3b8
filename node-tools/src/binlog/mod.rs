//! The binlog / relay-log engine: a streaming, CRC-verifying event walker and what is built on
//! it (transaction boundaries, relay→master coordinate mapping, position search, concatenation).
//!
//! - [`header`]: the 19-byte common header, type codes, flags.
//! - [`fde`]: FORMAT_DESCRIPTION (flavour, version, checksum rule) and the CRC rule.
//! - [`events`]: the few bodies we decode (ROTATE, GTIDs, GTID_LIST, QUERY text).
//! - [`reader`]: the walker ([`reader::Walker`]).
//! - [`group`]: transaction boundaries ([`group::GroupTracker`]).
//! - [`relay`]: relay file discovery, master coordinates, position search.
//! - [`validate`]: content checks of event bodies (lengths inside events must fit).
//! - [`tagged`]: MySQL 8.4 tagged GTID events (the serialization-library format).
//! - [`concat`]: header block + byte ranges into one valid binlog file.
//! - [`synth`]: a small binlog writer for tests, fuzzing and benchmarks.

pub mod concat;
pub mod error;
pub mod events;
pub mod fde;
pub mod group;
pub mod header;
pub mod reader;
pub mod relay;
pub mod synth;
pub mod tagged;
pub mod validate;

pub use error::{ErrorKind, WalkError};
pub use reader::{Event, Walker};
