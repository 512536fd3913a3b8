//! Admin API: gRPC service, client and the shared auth token.
pub mod auth;
