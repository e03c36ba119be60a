//! The Kubernetes inventory source, the edge: the client, one watcher per resource feeding the
//! [`IndexHandle`], this node's peer Lease, and the health of the connection.
//!
//! Everything here only moves data: the index decides what objects mean, [`super::parts`] what the
//! inventory makes of them. API errors are retried with backoff by the watchers; monitoring goes on
//! with the last inventory meanwhile, and an outage is logged once, not once per retry.
//!
//! Faults, and what each watcher does about them:
//! - no answer (refused, reset, or silent for `read_timeout`): retried with backoff, resuming the
//!   watch where it was; the health check says the outage once for all of them;
//! - 410 Gone, as an HTTP status or an ERROR event: the watch starts over with a relist (kube resumes
//!   from the expired resourceVersion forever after an HTTP 410);
//! - an answer that is not JSON, in a list or a watch line: said once, and relisted until it reads,
//!   since the line may have carried a change; one object that does not decode is skipped alone
//!   ([`super::lenient`]);
//! - 403 or 404: said once; an optional resource is treated as empty; asked again every
//!   [`Retry::REFUSED`], not every few seconds;
//! - a watch that ends as soon as it starts, without an error: kube asks again at once, so the
//!   client sends at most one watch request a second per resource ([`super::pace`]).

use std::fmt::Debug;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Service};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::Instrument as _;

use super::driver::{Driver, IndexHandle};
use super::index::{
    ClusterIndex, Events, IndexConfig, IpAddressPools, KubeProxyConfigMaps, L2Advertisements, Leases,
    LegacyConfigMaps, Nodes, Resource, ServiceL2Statuses, Services,
};
use super::lease::{LABEL_APP, lease_name, peer_lease};
use super::lenient::Lenient;
use super::objects::{KUBE_PROXY_NAME, KUBE_PROXY_NAMESPACE, LEGACY_CONFIG_NAME, REASON_NODE_ASSIGNED};
use super::pace::PaceWatches;
use crate::inventory::Parts;
use crate::wire::mac::Mac;

/// The namespace l2watch uses when neither `$POD_NAMESPACE` nor the kubeconfig context names one.
pub const DEFAULT_NAMESPACE: &str = "l2watch";
/// Resources without which the inventory is not in sync: every Service IP and node comes from them.
const REQUIRED: [&str; 2] = [Nodes::NAME, Services::NAME];
/// How often the connection is checked (`GET /version`).
const HEALTH_EVERY: Duration = Duration::from_secs(5);
/// How often the cluster view is rebuilt without a change (peer Leases expire with time).
const REBUILD_EVERY: Duration = Duration::from_secs(5);
/// Changes arriving within this are built into one snapshot.
const COALESCE: Duration = Duration::from_millis(100);

/// A client and where l2watch lives in the cluster.
pub struct Connection {
    /// The client.
    pub client: Client,
    /// l2watch's own namespace (its Leases).
    pub namespace: String,
    /// The API server's address, for messages.
    pub url: String,
}

/// Connects the way `kubectl` does (`$KUBECONFIG` or `~/.kube/config`, else in-cluster) and checks
/// that the API answers within `timeout`: l2watch does not start blind. Every request and watch on
/// which the API then sends nothing for `read_timeout` is given up and retried.
pub async fn connect(timeout: Duration, read_timeout: Duration) -> anyhow::Result<Connection> {
    let mut config = Config::infer().await.context(
        "no Kubernetes API configuration found: not in a cluster, and no KUBECONFIG or ~/.kube/config",
    )?;
    // kube sets no read timeout: a list or a watch start the server never answers, or a watch on a
    // connection lost without a reset, would wait forever (a watch stream only for kube's 295 s).
    // Counted from each request's send, not from when a pooled connection went idle.
    config.read_timeout = Some(read_timeout);
    config.reset_reader_on_write = true;
    if let Some(proxy) = config.proxy_url.take() {
        // kube reads proxies from the environment but supports none of their protocols without extra
        // features; an API server on the node's network needs none.
        tracing::info!(%proxy, "not using the HTTP proxy from the environment for the Kubernetes API");
    }
    let url = config.cluster_url.to_string();
    let namespace = namespace(&config);
    let client = kube::client::ClientBuilder::try_from(config)
        .map(|b| b.with_layer(&PaceWatches::default()).build())
        .with_context(|| format!("cannot set up a client for {url}"))?;
    match tokio::time::timeout(timeout, client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(Connection { client, namespace, url }),
        Ok(Err(e)) => anyhow::bail!("cannot reach the Kubernetes API at {url}: {e}"),
        Err(_) => anyhow::bail!("the Kubernetes API at {url} did not answer within {}s", timeout.as_secs()),
    }
}

/// `$POD_NAMESPACE` (the downward API), else the kubeconfig context's namespace (in a cluster: the
/// service account's), else [`DEFAULT_NAMESPACE`].
fn namespace(config: &Config) -> String {
    if let Ok(ns) = std::env::var("POD_NAMESPACE")
        && !ns.trim().is_empty()
    {
        return ns.trim().to_owned();
    }
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() && std::env::var_os("KUBECONFIG").is_none() {
        return config.default_namespace.clone();
    }
    // kube fills in "default" when the context names none: read the context itself.
    let named = kube::config::Kubeconfig::read().ok().and_then(|k| {
        let current = k.current_context.clone()?;
        k.contexts.into_iter().find(|c| c.name == current)?.context?.namespace
    });
    named.filter(|n| !n.is_empty()).unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
}

/// What this node publishes in its Lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Publish {
    /// The MACs it answers ARP with.
    pub macs: Vec<Mac>,
    /// Its LAN interfaces.
    pub interfaces: Vec<String>,
    /// Its LAN addresses.
    pub ips: Vec<IpAddr>,
}

/// How the source runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This node.
    pub node: String,
    /// l2watch's namespace.
    pub namespace: String,
    /// MetalLB's namespace (its legacy ConfigMap).
    pub metallb_namespace: String,
    /// How long a peer Lease counts after its renewal.
    pub lease_duration: Duration,
}

/// What the source hands to the rest of the daemon.
pub struct Cluster {
    /// The cluster as inventory parts; `None` until nodes and Services are listed.
    pub parts: watch::Receiver<Option<Parts>>,
    /// Whether the inventory is in sync now.
    pub synced: watch::Receiver<bool>,
    /// Peers (node, Lease current), for `l2watch_peer_up`.
    pub peers: watch::Receiver<Vec<(String, bool)>>,
}

/// The time as the Kubernetes types want it.
fn now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

/// Starts the watchers, the Lease renewal and the health check on the current runtime.
/// `publish` says what this node's Lease carries; it is re-read at every renewal.
pub fn start(conn: &Connection, settings: Settings, publish: watch::Receiver<Publish>) -> Cluster {
    let index = ClusterIndex::new(IndexConfig {
        lease_namespace: Some(settings.namespace.clone()),
        metallb_namespace: Some(settings.metallb_namespace.clone()),
    });
    let handle = IndexHandle::new(index);
    let c = &conn.client;
    let nodes: Api<Lenient<Node>> = Api::all(c.clone());
    spawn_watch::<Nodes>(nodes, watcher::Config::default(), &handle, false);
    let services: Api<Lenient<Service>> = Api::all(c.clone());
    spawn_watch::<Services>(services, watcher::Config::default(), &handle, false);
    // MetalLB's CRDs: optional (a cluster without MetalLB, or MetalLB <= 0.12, has none of them).
    let crd = |ar: kube::core::ApiResource| Api::<Lenient<DynamicObject>>::all_with(c.clone(), &ar);
    let all = watcher::Config::default;
    spawn_watch::<IpAddressPools>(crd(IpAddressPools::api_resource()), all(), &handle, true);
    spawn_watch::<L2Advertisements>(crd(L2Advertisements::api_resource()), all(), &handle, true);
    spawn_watch::<ServiceL2Statuses>(crd(ServiceL2Statuses::api_resource()), all(), &handle, true);
    let events: Api<Lenient<Event>> = Api::all(c.clone());
    let assigned = watcher::Config::default().fields(&format!("reason={REASON_NODE_ASSIGNED}"));
    spawn_watch::<Events>(events, assigned, &handle, true);
    // Two ConfigMaps by name, each in its namespace: kube-proxy's and MetalLB's legacy config.
    let kube_proxy: Api<Lenient<ConfigMap>> = Api::namespaced(c.clone(), KUBE_PROXY_NAMESPACE);
    let by_name = |n: &str| watcher::Config::default().fields(&format!("metadata.name={n}"));
    spawn_watch::<KubeProxyConfigMaps>(kube_proxy, by_name(KUBE_PROXY_NAME), &handle, true);
    let legacy: Api<Lenient<ConfigMap>> = Api::namespaced(c.clone(), &settings.metallb_namespace);
    spawn_watch::<LegacyConfigMaps>(legacy, by_name(LEGACY_CONFIG_NAME), &handle, true);
    let leases: Api<Lenient<Lease>> = Api::namespaced(c.clone(), &settings.namespace);
    let ours = watcher::Config::default().labels(&format!("{LABEL_APP}=l2watch"));
    spawn_watch::<Leases>(leases, ours, &handle, false);

    let (parts_tx, parts) = watch::channel(None);
    let (synced_tx, synced) = watch::channel(false);
    let (peers_tx, peers) = watch::channel(Vec::new());
    let (reachable_tx, reachable) = watch::channel(true);
    tokio::spawn(health(c.clone(), conn.url.clone(), reachable_tx));
    tokio::spawn(renew_lease(c.clone(), settings.clone(), publish));
    tokio::spawn(build(handle, settings.node, reachable, parts_tx, synced_tx, peers_tx));
    Cluster { parts, synced, peers }
}

/// Retry delays of a watcher: 0.5 s doubling to 5 s, with jitter so the nodes of a cluster do not
/// retry in step; a watch that works again starts over. kube's default goes up to 30 s, which after
/// an outage keeps the inventory behind for half a minute more than needed. kube's stream backoff
/// cannot be used: it starts over on any event, and its watcher sends one (`Init`) before every
/// list it retries, so a list that keeps failing would be asked for twice a second.
struct Retry {
    next: Duration,
    state: u64,
}

impl Retry {
    const FIRST: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(5);
    /// After a 403 or 404: nothing changes until someone fixes RBAC or installs a CRD, and every
    /// node of the cluster asks.
    const REFUSED: Duration = Duration::from_secs(30);

    fn new(seed: u64) -> Retry {
        Retry { next: Retry::FIRST, state: seed | 1 }
    }

    /// 80-120% of `base`.
    fn jitter(&mut self, base: Duration) -> Duration {
        // xorshift: a few bits of jitter need no better generator.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        base.mul_f64(0.8) + base.mul_f64((self.state % 400) as f64 / 1000.0)
    }

    /// The delay before the next try.
    fn next(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Retry::MAX);
        self.jitter(base)
    }

    /// The delay after a 403 or 404.
    fn refused(&mut self) -> Duration {
        self.jitter(Retry::REFUSED)
    }

    fn reset(&mut self) {
        self.next = Retry::FIRST;
    }
}

/// What went wrong with a watch, as far as what to do about it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// No answer: refused, reset, or silent for the read timeout. The health check says so once for
    /// all watchers; kube resumes the watch where it was.
    Unreachable,
    /// 410 Gone (or a watch event without a resourceVersion): the watch cannot resume; relist.
    Expired,
    /// 403 or 404: not allowed, or not served (a CRD not installed), until someone changes that.
    Refused(u16),
    /// An answer that is not JSON (or not UTF-8, or a line without end): whatever it carried is
    /// lost, so relist.
    Unreadable,
    /// Any other error status: a server in trouble (5xx, 429, a failing webhook); kube retries.
    Status(u16),
}

impl Fault {
    fn of(e: &watcher::Error) -> Fault {
        match e {
            watcher::Error::InitialListFailed(e)
            | watcher::Error::WatchStartFailed(e)
            | watcher::Error::WatchFailed(e) => Fault::of_client(e),
            watcher::Error::WatchError(s) => Fault::of_status(s.code),
            watcher::Error::NoResourceVersion => Fault::Expired,
        }
    }

    fn of_client(e: &kube::Error) -> Fault {
        match e {
            kube::Error::Api(s) => Fault::of_status(s.code),
            kube::Error::SerdeError(_)
            | kube::Error::FromUtf8(_)
            | kube::Error::LinesCodecMaxLineLengthExceeded => Fault::Unreadable,
            // Connections, timeouts, TLS and credentials: nothing the API said about this resource.
            _ => Fault::Unreachable,
        }
    }

    fn of_status(code: u16) -> Fault {
        match code {
            410 => Fault::Expired,
            403 | 404 => Fault::Refused(code),
            other => Fault::Status(other),
        }
    }
}

/// Whether a kube client error means the API was not reached (rather than answering with an
/// error): the health check reports those, once for everything.
fn unreachable(e: &kube::Error) -> bool {
    Fault::of_client(e) == Fault::Unreachable
}

/// Watches one resource into the index, on its own task.
fn spawn_watch<R>(api: Api<Lenient<R::Object>>, config: watcher::Config, handle: &IndexHandle, optional: bool)
where
    R: Resource + 'static,
    R::Object: Clone + DeserializeOwned + Debug + Send + 'static,
{
    let handle = handle.clone();
    let seed = std::process::id() as u64 ^ R::NAME.len() as u64 ^ (R::NAME.as_ptr() as u64);
    let span = tracing::debug_span!("watch", resource = R::NAME);
    tokio::spawn(watch::<R>(api, config, handle, optional, Retry::new(seed)).instrument(span));
}

/// One watcher's run of errors: said once when it starts and once when it ends, with the backoff
/// growing across the relists in it.
#[derive(Debug, Default)]
struct Streak {
    /// Errors since the resource was last read.
    active: bool,
    /// A line has been logged about it.
    said: bool,
    /// It is a 403 or 404 (and an optional resource has been emptied for it).
    refused: bool,
    /// Its last error was on a watch, not a list: a relist that works does not show that the watch
    /// does too.
    on_watch: bool,
    /// A relist has worked since its last error: it is over if no error comes before this.
    over_at: Option<tokio::time::Instant>,
    /// A relist has worked in it, and the watch failed again after it.
    relisted: bool,
}

impl Streak {
    /// How long a watch must go without an error after a relist to count as working: a watch the
    /// server refuses or garbles fails at once.
    const CONFIRM: Duration = Duration::from_secs(5);
}

/// Watches one resource into the index, with backoff, for ever. A failure streak is said once when
/// it starts and once when it ends (no answer at all is the health check's to say). A resource that
/// is refused (403) or not served (404) and `optional` then counts as listed and empty, so the
/// inventory can be in sync without it.
async fn watch<R>(
    api: Api<Lenient<R::Object>>,
    config: watcher::Config,
    handle: IndexHandle,
    optional: bool,
    mut retry: Retry,
) where
    R: Resource + 'static,
    R::Object: Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut driver = Driver::<R>::new(handle.clone());
    let mut streak = Streak::default();
    let end = |streak: &mut Streak, retry: &mut Retry| {
        if streak.said {
            tracing::info!(
                resource = R::NAME,
                "read from the Kubernetes API again; the inventory is current"
            );
        }
        *streak = Streak::default();
        retry.reset();
        handle.update_if(|i| i.set_failing(R::NAME, false));
    };
    loop {
        let mut stream = std::pin::pin!(watcher(api.clone(), config.clone()));
        loop {
            let over_at = streak.over_at;
            let item = tokio::select! {
                item = stream.next() => item,
                _ = tokio::time::sleep_until(over_at.unwrap_or_else(tokio::time::Instant::now)), if over_at.is_some() => {
                    end(&mut streak, &mut retry);
                    continue;
                }
            };
            // kube's watcher never ends; should it, start over.
            let Some(item) = item else { break };
            let e = match item {
                Ok(event) => {
                    let relisted = matches!(event, watcher::Event::InitDone);
                    if driver.event(event) && streak.active {
                        if relisted && streak.on_watch {
                            streak.over_at = Some(tokio::time::Instant::now() + Streak::CONFIRM);
                            streak.relisted = true;
                        } else {
                            end(&mut streak, &mut retry);
                        }
                    }
                    continue;
                }
                Err(e) => e,
            };
            driver.error(e.to_string());
            let listing = matches!(e, watcher::Error::InitialListFailed(_));
            let fault = Fault::of(&e);
            let again = streak.relisted;
            streak.active = true;
            streak.over_at = None;
            streak.on_watch = !listing;
            let mut delay = retry.next();
            let restart = match fault {
                Fault::Unreachable => {
                    tracing::debug!(error = %e, "no answer from the Kubernetes API; retrying with backoff");
                    // A list that failed leaves the resource behind until one succeeds; a watch
                    // resumes where it was.
                    if listing {
                        handle.update_if(|i| i.set_failing(R::NAME, true));
                    }
                    false
                }
                Fault::Expired => {
                    tracing::debug!(error = %e, "watch expired (410 Gone); relisting");
                    // Routine: the relist is all it takes.
                    streak.on_watch = false;
                    true
                }
                Fault::Refused(code) => {
                    if !streak.refused {
                        refused_once::<R>(code, optional, &e);
                        streak.said = true;
                        streak.refused = true;
                        if optional {
                            // Treated as empty: what it said before may no longer hold.
                            handle.update(|i| {
                                i.reset::<R>(&[]);
                                i.mark_listed(R::NAME);
                            });
                        }
                    }
                    handle.update_if(|i| i.set_failing(R::NAME, !optional));
                    delay = retry.refused();
                    // kube would retry a refused watch from where it was, never relisting.
                    !listing
                }
                Fault::Unreadable => {
                    if !streak.said {
                        tracing::warn!(
                            resource = R::NAME, error = %e,
                            "unreadable answer from the Kubernetes API (a proxy in front of it?); the last known objects stay in use, relisting until it reads again"
                        );
                        streak.said = true;
                    }
                    handle.update_if(|i| i.set_failing(R::NAME, true));
                    // A watch that fails again after a relist that worked: relisting every few
                    // seconds would load the API server for nothing.
                    if again && !listing {
                        delay = retry.refused();
                    }
                    true
                }
                Fault::Status(code) => {
                    // A watch the server ended with an error resumes by itself; a list that keeps
                    // failing leaves the inventory behind.
                    if listing {
                        if !streak.said {
                            tracing::warn!(
                                resource = R::NAME, code, error = %e,
                                "the Kubernetes API refused to list it; the last known objects stay in use, retrying"
                            );
                            streak.said = true;
                        }
                        handle.update_if(|i| i.set_failing(R::NAME, true));
                    } else {
                        tracing::debug!(code, error = %e, "watch failed; retrying with backoff");
                    }
                    false
                }
            };
            tokio::time::sleep(delay).await;
            if restart {
                break;
            }
        }
        driver.restart();
    }
}

/// The one line about a 403 or 404.
fn refused_once<R: Resource>(code: u16, optional: bool, e: &watcher::Error) {
    match (code, optional) {
        (404, true) => tracing::info!(
            resource = R::NAME,
            "not served by this cluster (its CRD is not installed?); going on without it"
        ),
        (404, false) => tracing::error!(resource = R::NAME, error = %e, "not served by the Kubernetes API"),
        (_, true) => tracing::info!(
            resource = R::NAME,
            "not allowed to read it; going on without it, as if there were none (the README's RBAC grants it)"
        ),
        _ => tracing::error!(
            resource = R::NAME,
            error = %e,
            "forbidden: grant l2watch's service account get, list and watch on it (see the README's RBAC); the last known objects stay in use"
        ),
    }
}

/// Checks the connection every [`HEALTH_EVERY`]; an outage is logged when it starts and when it ends.
async fn health(client: Client, url: String, reachable: watch::Sender<bool>) {
    let mut tick = tokio::time::interval(HEALTH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ok = match tokio::time::timeout(HEALTH_EVERY, client.apiserver_version()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {}s", HEALTH_EVERY.as_secs())),
        };
        let was = *reachable.borrow();
        reachable.send_if_modified(|r| std::mem::replace(r, ok.is_ok()) != ok.is_ok());
        match (was, ok) {
            (true, Err(e)) => tracing::warn!(
                api = %url, error = %e,
                "lost the Kubernetes API; monitoring goes on with the last inventory, retrying with backoff"
            ),
            (false, Ok(())) => {
                tracing::info!(api = %url, "the Kubernetes API is back; the inventory catches up")
            }
            _ => {}
        }
    }
}

/// Renews this node's Lease every third of its duration. A Lease that cannot be written is retried
/// at the next renewal; capture never waits for it. A write the API refuses is logged once per
/// failure streak; one that does not reach the API is the health check's to report.
async fn renew_lease(client: Client, settings: Settings, publish: watch::Receiver<Publish>) {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let name = lease_name(&settings.node);
    let params = PatchParams::apply("l2watch").force();
    let mut tick = tokio::time::interval(settings.lease_duration / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A line has been logged about the current failure streak.
    let mut said = false;
    loop {
        tick.tick().await;
        let p = publish.borrow().clone();
        let mut lease =
            peer_lease(&settings.node, &p.macs, &p.interfaces, &p.ips, now(), settings.lease_duration);
        lease.metadata.namespace = Some(settings.namespace.clone());
        match api.patch(&name, &params, &Patch::Apply(&lease)).await {
            Ok(_) => {
                if said {
                    tracing::info!(lease = %name, "this node's Lease is written again");
                }
                said = false;
            }
            Err(e) if unreachable(&e) => {
                tracing::debug!(lease = %name, error = %e, "cannot reach the Kubernetes API to renew this node's Lease");
            }
            Err(e) => {
                if !said {
                    tracing::warn!(
                        lease = %name, namespace = %settings.namespace, error = %e,
                        "cannot write this node's Lease: peers will not know its MACs; retrying"
                    );
                }
                said = true;
            }
        }
    }
}

/// Turns index changes (and the passing of time, for Lease liveness) into parts, peers and the sync
/// state.
async fn build(
    handle: IndexHandle,
    node: String,
    mut reachable: watch::Receiver<bool>,
    parts_tx: watch::Sender<Option<Parts>>,
    synced_tx: watch::Sender<bool>,
    peers_tx: watch::Sender<Vec<(String, bool)>>,
) {
    let mut changes = handle.subscribe();
    let mut tick = tokio::time::interval(REBUILD_EVERY);
    loop {
        tokio::select! {
            r = changes.changed() => {
                if r.is_err() {
                    return;
                }
                tokio::time::sleep(COALESCE).await;
            }
            _ = tick.tick() => {}
            // The health check's verdict goes out at once, not at the next tick.
            r = reachable.changed() => {
                if r.is_err() {
                    return;
                }
            }
        }
        let view = handle.snapshot(now());
        let listed = REQUIRED.iter().all(|r| view.sync.get(r).is_some_and(|s| s.listed));
        let failing = view.sync.values().any(|s| s.failing);
        let peers: Vec<(String, bool)> = view.peers.iter().map(|p| (p.peer.node.clone(), p.alive)).collect();
        peers_tx.send_if_modified(|old| {
            let changed = *old != peers;
            *old = peers;
            changed
        });
        if listed {
            let parts = super::parts::parts(&view, &node);
            parts_tx.send_if_modified(|old| {
                let changed = old.as_ref() != Some(&parts);
                *old = Some(parts);
                changed
            });
        }
        let synced = listed && !failing && *reachable.borrow_and_update();
        synced_tx.send_if_modified(|old| {
            let changed = *old != synced;
            *old = synced;
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Status::failure("x", "y").with_code(code).boxed())
    }

    #[test]
    fn faults_by_what_to_do_about_them() {
        let list = |e| Fault::of(&watcher::Error::InitialListFailed(e));
        let start = |e| Fault::of(&watcher::Error::WatchStartFailed(e));
        assert_eq!(start(api(410)), Fault::Expired, "kube resumes from the expired version forever");
        assert_eq!(
            Fault::of(&watcher::Error::WatchError(Status::failure("gone", "Expired").with_code(410).boxed())),
            Fault::Expired
        );
        assert_eq!(list(api(403)), Fault::Refused(403));
        assert_eq!(start(api(404)), Fault::Refused(404));
        assert_eq!(list(api(503)), Fault::Status(503));
        let not_json = serde_json::from_str::<serde_json::Value>("<html>").unwrap_err();
        assert_eq!(
            Fault::of(&watcher::Error::WatchFailed(kube::Error::SerdeError(not_json))),
            Fault::Unreadable
        );
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(
            Fault::of(&watcher::Error::WatchFailed(kube::Error::ReadEvents(reset))),
            Fault::Unreachable
        );
        assert_eq!(Fault::of(&watcher::Error::NoResourceVersion), Fault::Expired);
        assert!(!unreachable(&api(500)), "an answer, even an error, is the API's word");
    }

    #[test]
    fn retries_back_off_to_5s_and_refusals_wait_longer() {
        let mut r = Retry::new(7);
        let delays: Vec<Duration> = (0..8).map(|_| r.next()).collect();
        let within = |d: Duration, base: Duration| d >= base.mul_f64(0.8) && d <= base.mul_f64(1.2);
        assert!(within(delays[0], Retry::FIRST), "{delays:?}");
        assert!(delays[5..].iter().all(|d| within(*d, Retry::MAX)), "{delays:?}");
        r.reset();
        assert!(within(r.next(), Retry::FIRST));
        assert!(within(r.refused(), Retry::REFUSED));
    }
}
