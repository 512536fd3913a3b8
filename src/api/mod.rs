//! Admin API: the gRPC service every manager serves, its client, and the shared auth token.
pub mod auth;
pub mod client;
pub mod http;
pub mod server;
