//! The `raftmha manager` daemon.
