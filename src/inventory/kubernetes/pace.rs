//! Watch requests paced per resource. kube's watcher asks again at once when a watch ends without
//! an error, and a watch answered with 200 and a body that is not a complete line (a proxy that
//! does not stream, cutting the response short) ends that way every time: thousands of requests a
//! second from every node, with nothing surfacing to l2watch. A healthy watch runs for minutes
//! (kube asks for `timeoutSeconds=290`), and retries after errors are already backed off, so at most
//! one watch request a second per resource changes nothing else.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Request;
use tokio::time::Instant;

/// The least time between two watch requests of one resource.
pub const SPACING: Duration = Duration::from_secs(1);
/// Watch requests in a row that came too soon before it is said.
const SAY_AFTER: u32 = 10;
/// A watch that ran this long was a real one: what follows is a new streak.
const LASTED: Duration = Duration::from_secs(10);

/// The [`tower_layer::Layer`] for kube's client stack; clones share the pacing.
#[derive(Debug, Clone, Default)]
pub struct PaceWatches {
    paths: Arc<Mutex<HashMap<String, Path>>>,
}

/// One resource's watch requests.
#[derive(Debug)]
struct Path {
    /// When the last one was (or will be) sent.
    last: Instant,
    /// How many in a row came within [`SPACING`] of the one before.
    quick: u32,
    /// This streak has been logged.
    said: bool,
}

impl PaceWatches {
    /// How long a watch request to `path` made at `now` waits; records it.
    fn delay(&self, path: &str, now: Instant) -> Duration {
        let mut paths = self.paths.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(p) = paths.get_mut(path) else {
            paths.insert(path.to_owned(), Path { last: now, quick: 0, said: false });
            return Duration::ZERO;
        };
        let since = now.saturating_duration_since(p.last);
        if since >= LASTED {
            p.said = false;
        }
        let wait = SPACING.saturating_sub(since);
        if wait.is_zero() {
            p.quick = 0;
        } else {
            p.quick += 1;
            if p.quick >= SAY_AFTER && !p.said {
                tracing::warn!(
                    watch = path,
                    "the Kubernetes API ends every watch of this as soon as it starts (a proxy in front of it that does not stream?); watching it at most once a second, so the inventory may lag"
                );
                p.said = true;
            }
        }
        p.last = now + wait;
        wait
    }
}

/// Whether a request is a watch (`watch=true` or `watch=1` in its query).
fn is_watch<B>(req: &Request<B>) -> bool {
    req.uri().query().is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

impl<S> tower_layer::Layer<S> for PaceWatches {
    type Service = Paced<S>;

    fn layer(&self, inner: S) -> Paced<S> {
        Paced { inner, pace: self.clone() }
    }
}

/// kube's client stack with watch requests paced.
#[derive(Debug, Clone)]
pub struct Paced<S> {
    inner: S,
    pace: PaceWatches,
}

impl<S, B> tower_service::Service<Request<B>> for Paced<S>
where
    S: tower_service::Service<Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let wait =
            if is_watch(&req) { self.pace.delay(req.uri().path(), Instant::now()) } else { Duration::ZERO };
        // The client's futures do nothing until polled: the request goes out after the wait.
        let call = self.inner.call(req);
        Box::pin(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            call.await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_ended_at_once_waits_and_others_do_not() {
        let pace = PaceWatches::default();
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        assert_eq!(pace.delay("/api/v1/services", t0), Duration::ZERO);
        // Another resource is paced on its own.
        assert_eq!(pace.delay("/api/v1/nodes", ms(10)), Duration::ZERO);
        // Right after: sent a second after the last one, and the next a second after that.
        assert_eq!(pace.delay("/api/v1/services", ms(20)), Duration::from_millis(980));
        assert_eq!(pace.delay("/api/v1/services", ms(1010)), Duration::from_millis(990));
        // A watch that ran for minutes: at once.
        assert_eq!(pace.delay("/api/v1/services", ms(300_000)), Duration::ZERO);
    }

    #[test]
    fn only_watches_are_paced() {
        let watch = Request::get("/api/v1/services?&watch=true&resourceVersion=5").body(()).unwrap();
        let list = Request::get("/api/v1/services?&limit=500").body(()).unwrap();
        assert!(is_watch(&watch) && !is_watch(&list));
        assert!(is_watch(&Request::get("/x?watch=1").body(()).unwrap()));
    }
}
