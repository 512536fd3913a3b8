//! raftmha node tools.
pub mod proto {
    tonic::include_proto!("raftmha.node.v1");
}
