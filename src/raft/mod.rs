//! Everything typed by openraft lives here (type config, sled store, state machine,
//! tonic network, the running node), so an openraft upgrade touches one folder.
//!
//! - [`log_store`]: vote, log and metadata in one sled tree; each change one atomic batch.
//! - [`state_machine`]: applies [`crate::state::Request`]s; snapshots as checksummed files.
//! - [`network`] / [`service`]: Raft RPCs over tonic (serde-encoded openraft messages).
//! - [`node`]: opens a data dir safely and starts the Raft node.
//! - [`arrivals`]: when this manager applied each verdict (local, for the lease bound).
pub mod arrivals;
pub mod codec;
pub mod handle;
pub mod log_store;
pub mod network;
pub mod node;
pub mod service;
pub mod snapshot_file;
pub mod state_machine;

use std::io::Cursor;

use crate::state::{CommandResult, Request};

openraft::declare_raft_types!(
    /// The manager cluster's Raft types: node ids are u64, nodes are addressed by
    /// their gRPC `host:port` (Raft and admin API share one listener).
    pub TypeConfig:
        D = Request,
        R = CommandResult,
        NodeId = u64,
        Node = openraft::BasicNode,
);

pub type NodeId = u64;
pub type Node = openraft::BasicNode;
/// Snapshots are small (the manager state), so they travel as bytes in memory.
pub type SnapshotData = Cursor<Vec<u8>>;
pub type Raft = openraft::Raft<TypeConfig, state_machine::StateMachineStore>;
pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
pub type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotData>;
pub use openraft::{Config as RaftConfig, ServerState};
