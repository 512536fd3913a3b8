//! Shared-token authentication: `authorization: Bearer <token>` on every call.

use tonic::{Request, Status};

use super::config::AgentConfig;

/// Reads the token from the configured file or environment variable.
pub fn load_token(cfg: &AgentConfig) -> anyhow::Result<String> {
    let token = match (&cfg.token_file, &cfg.token_env) {
        (Some(f), _) => std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("token file {}: {e}", f.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        (None, Some(var)) => {
            std::env::var(var).map_err(|_| anyhow::anyhow!("${var} is not set"))?
        }
        (None, None) => anyhow::bail!("no token configured"),
    };
    if token.len() < 16 {
        anyhow::bail!("the agent token must be at least 16 characters");
    }
    Ok(token)
}

/// Equal-length comparison that takes the same time wherever the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// The server-side interceptor.
#[derive(Clone)]
pub struct TokenCheck {
    expected: std::sync::Arc<Vec<u8>>,
}

impl TokenCheck {
    pub fn new(token: String) -> Self {
        TokenCheck {
            expected: std::sync::Arc::new(format!("Bearer {token}").into_bytes()),
        }
    }
}

impl tonic::service::Interceptor for TokenCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let given = req
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes())
            .unwrap_or(&[]);
        if constant_time_eq(given, &self.expected) {
            Ok(req)
        } else {
            Err(Status::unauthenticated("missing or wrong agent token"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
