//! The shared bearer token that every manager RPC (Raft and admin) must carry.
//!
//! The token is read from a file, never logged (its `Debug` is redacted) and compared in
//! constant time so response timing does not leak it byte by byte.
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

const HEADER: &str = "authorization";

#[derive(Clone)]
pub struct AuthToken(Arc<str>);

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    // Not `#[source]`: the message already carries it, and chains would print it twice.
    #[error("cannot read token file {path}: {error}")]
    Unreadable { path: String, error: std::io::Error },
    #[error("token file {path} is empty")]
    Empty { path: String },
    #[error("token file {path} holds characters not allowed in a header (use printable ASCII)")]
    NotPrintable { path: String },
}

impl AuthToken {
    pub fn load(path: &Path) -> Result<Self, TokenError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| TokenError::Unreadable {
            path: shown.clone(),
            error,
        })?;
        Self::from_text(text.trim()).map_err(|e| match e {
            TokenError::Empty { .. } => TokenError::Empty { path: shown },
            _ => TokenError::NotPrintable { path: shown },
        })
    }

    pub fn from_text(text: &str) -> Result<Self, TokenError> {
        if text.is_empty() {
            return Err(TokenError::Empty {
                path: String::new(),
            });
        }
        if !text.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Err(TokenError::NotPrintable {
                path: String::new(),
            });
        }
        Ok(AuthToken(Arc::from(text)))
    }

    /// Adds the token to an outgoing request.
    pub fn attach<T>(&self, req: &mut Request<T>) {
        // from_text admits only visible ASCII, which is always a valid header value.
        if let Ok(value) = MetadataValue::try_from(format!("Bearer {}", self.0)) {
            req.metadata_mut().insert(HEADER, value);
        }
    }

    /// Checks an incoming request's token.
    pub fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let presented = req
            .metadata()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if constant_time_eq(presented.as_bytes(), self.0.as_bytes()) {
            Ok(())
        } else {
            Err(Status::unauthenticated("missing or wrong auth token"))
        }
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, &x) in a.iter().enumerate() {
        let y = b.get(i % b.len().max(1)).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_token_passes_and_others_fail() {
        let token = AuthToken::from_text("s3cret-token").expect("valid");
        let mut ok = Request::new(());
        token.attach(&mut ok);
        assert!(token.check(&ok).is_ok());
        let other = AuthToken::from_text("s3cret-tokem").expect("valid");
        let mut bad = Request::new(());
        other.attach(&mut bad);
        assert!(token.check(&bad).is_err());
        assert!(token.check(&Request::new(())).is_err());
        let short = AuthToken::from_text("s3cret").expect("valid");
        let mut prefix = Request::new(());
        short.attach(&mut prefix);
        assert!(token.check(&prefix).is_err());
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let token = AuthToken::from_text("s3cret-token").expect("valid");
        assert!(!format!("{token:?}").contains("s3cret"));
    }

    #[test]
    fn empty_or_unprintable_tokens_are_refused() {
        assert!(AuthToken::from_text("").is_err());
        assert!(AuthToken::from_text("a b").is_err());
    }
}
