//! The HTTP endpoint: `/metrics`, `/healthz`, `/readyz` and `/findings`, on hyper 1 over tokio.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::export::shared::Shared;

/// Binds the listening socket; a port in use or a bad address is reported here, before capture starts.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (another process listens there: stop it or choose another address with --listen)"
            }
            std::io::ErrorKind::AddrNotAvailable => " (no interface of this host has that address)",
            std::io::ErrorKind::PermissionDenied => " (ports below 1024 need CAP_NET_BIND_SERVICE)",
            _ => "",
        };
        anyhow::anyhow!("cannot listen on {addr}: {e}{hint}")
    })
}

/// Open connections at most. A client that opens more (slow clients holding half-sent requests) pushes
/// out the oldest ones: the newest connection, a scraper's, is always served.
pub const MAX_CONNECTIONS: usize = 64;

/// How long open requests may finish after shutdown: the process has stopped capturing by then, and
/// a client holding a half-sent request must not hold up the exit.
pub const DRAIN: Duration = Duration::from_millis(500);

/// How long a client has to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until `shutdown` turns true, then stops accepting and lets open requests finish (up to
/// [`DRAIN`]).
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut conns = tokio::task::JoinSet::new();
    // Open connections, oldest first.
    let mut open: VecDeque<(tokio::task::Id, tokio::task::AbortHandle)> = VecDeque::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accepting an HTTP connection failed; retrying in 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if open.len() >= MAX_CONNECTIONS
                    && let Some((_, oldest)) = open.pop_front()
                {
                    oldest.abort();
                    shared.metrics.http_connections_evicted.inc();
                }
                let shared = shared.clone();
                let mut stop = shutdown.clone();
                let handle = conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(route(&shared, &req)) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
                open.push_back((handle.id(), handle));
            }
            _ = shutdown.changed() => break,
            Some(done) = conns.join_next_with_id(), if !conns.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                if let Some(i) = open.iter().position(|(open_id, _)| *open_id == id) {
                    open.remove(i);
                }
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
    // Dropping the set aborts whatever is still open.
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

const TEXT: &str = "text/plain; charset=utf-8";

fn route(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET and HEAD\n");
    }
    match req.uri().path() {
        "/metrics" => {
            reply(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", shared.metrics.render())
        }
        "/healthz" => match shared.health() {
            Ok(()) => reply(StatusCode::OK, TEXT, "ok\n"),
            Err(why) => reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{why}\n")),
        },
        "/readyz" => match shared.readiness() {
            Ok(()) => reply(StatusCode::OK, TEXT, "ready\n"),
            Err(why) => reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{why}\n")),
        },
        "/findings" => reply(StatusCode::OK, "application/json", shared.findings_json()),
        "/" => reply(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<html><body><h1>l2watch</h1><ul><li><a href=\"/metrics\">/metrics</a></li>\
             <li><a href=\"/findings\">/findings</a></li><li><a href=\"/healthz\">/healthz</a></li>\
             <li><a href=\"/readyz\">/readyz</a></li></ul></body></html>\n",
        ),
        _ => reply(StatusCode::NOT_FOUND, TEXT, "not found: try /metrics, /findings, /healthz or /readyz\n"),
    }
}
