//! A small HTTP/1.1 server for read-only GET endpoints, on hyper (already built for tonic):
//! the agent's routing checks (`/master`, `/replica`, `/health`) and the managers' `/metrics`,
//! health endpoints and web view. Every answer is computed synchronously from state the
//! caller keeps fresh in the background, so a request never waits on a database; one request
//! per connection, headers bounded in size and time.
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

/// A connection that has not finished within this is dropped.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_HEADERS_BYTES: usize = 16 * 1024;

/// What a handler sees of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Get {
    pub path: String,
    /// The raw query string (without `?`), empty when there is none.
    pub query: String,
}

impl Get {
    /// The value of query parameter `name` (`?lag=5` → `Some("5")`), not percent-decoded:
    /// every parameter we read is a number or a plain word.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }
}

/// An answer: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    /// A plain-text answer (a newline is appended).
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        let mut body = body.into();
        body.push('\n');
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
        }
    }

    pub fn json(status: u16, body: String) -> Self {
        Reply {
            status,
            content_type: "application/json",
            body,
        }
    }
}

/// The request handler: a pure function of the request and the caller's cached state.
pub type Handler = Arc<dyn Fn(&Get) -> Reply + Send + Sync>;

/// Binds `addr` now (so a bad address fails start-up) and serves in the background until
/// the returned task is aborted.
pub async fn start(
    addr: SocketAddr,
    handler: Handler,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    Ok(tokio::spawn(serve(listener, handler)))
}

async fn serve(listener: TcpListener, handler: Handler) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<Incoming>| {
                let reply = answer(&handler, req.method(), req.uri());
                async move { Ok::<_, Infallible>(reply) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADERS_BYTES)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), svc);
            if let Ok(Err(e)) = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                tracing::debug!("http: {e}");
            }
        });
    }
}

fn answer(handler: &Handler, method: &Method, uri: &hyper::Uri) -> hyper::Response<Full<Bytes>> {
    let reply = if method == Method::GET || method == Method::HEAD {
        handler(&Get {
            path: uri.path().to_string(),
            query: uri.query().unwrap_or_default().to_string(),
        })
    } else {
        Reply::text(405, "only GET and HEAD")
    };
    let body = if method == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from(reply.body)
    };
    let mut resp = hyper::Response::new(Full::new(body));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let headers = resp.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(reply.content_type),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_found_by_name() {
        let g = Get {
            path: "/replica".into(),
            query: "x=1&lag=5&flag".into(),
        };
        assert_eq!(g.param("lag"), Some("5"));
        assert_eq!(g.param("flag"), Some(""));
        assert_eq!(g.param("missing"), None);
    }

    #[tokio::test]
    async fn serves_the_handlers_answer_over_real_sockets() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handler: Handler = Arc::new(|g: &Get| match g.path.as_str() {
            "/ok" => Reply::text(200, format!("lag={}", g.param("lag").unwrap_or("-"))),
            _ => Reply::text(503, "no"),
        });
        let task = tokio::spawn(serve(listener, handler));
        let get = |path: &'static str| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = get("/ok?lag=3").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.ends_with("lag=3\n"), "{ok}");
        let no = get("/other").await;
        assert!(no.starts_with("HTTP/1.1 503"), "{no}");
        task.abort();
    }
}
