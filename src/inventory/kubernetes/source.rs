//! The Kubernetes inventory source, the edge: the client, one watcher per resource feeding the
//! [`IndexHandle`], this node's peer Lease, and the health of the connection.
//!
//! Everything here only moves data: the index decides what objects mean, [`super::parts`] what the
//! inventory makes of them. API errors are retried with backoff by the watchers; monitoring goes on
//! with the last inventory meanwhile, and an outage is logged once, not once per retry.

use std::collections::HashSet;
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Service};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::Instrument as _;

use super::driver::{IndexHandle, drive_fallible};
use super::index::{
    ClusterIndex, Events, IndexConfig, IpAddressPools, KubeProxyConfigMaps, L2Advertisements, Leases,
    LegacyConfigMaps, Nodes, Resource, ServiceL2Statuses, Services,
};
use super::lease::{LABEL_APP, lease_name, peer_lease};
use super::lenient::Lenient;
use super::objects::{KUBE_PROXY_NAME, KUBE_PROXY_NAMESPACE, LEGACY_CONFIG_NAME, REASON_NODE_ASSIGNED};
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
    let client = Client::try_from(config).with_context(|| format!("cannot set up a client for {url}"))?;
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
    let reported = Arc::new(Mutex::new(HashSet::new()));
    let c = &conn.client;
    let nodes: Api<Lenient<Node>> = Api::all(c.clone());
    spawn_watch::<Nodes>(nodes, watcher::Config::default(), &handle, &reported, false);
    let services: Api<Lenient<Service>> = Api::all(c.clone());
    spawn_watch::<Services>(services, watcher::Config::default(), &handle, &reported, false);
    // MetalLB's CRDs: optional (a cluster without MetalLB, or MetalLB <= 0.12, has none of them).
    let crd = |ar: kube::core::ApiResource| Api::<Lenient<DynamicObject>>::all_with(c.clone(), &ar);
    let all = watcher::Config::default;
    spawn_watch::<IpAddressPools>(crd(IpAddressPools::api_resource()), all(), &handle, &reported, true);
    spawn_watch::<L2Advertisements>(crd(L2Advertisements::api_resource()), all(), &handle, &reported, true);
    spawn_watch::<ServiceL2Statuses>(crd(ServiceL2Statuses::api_resource()), all(), &handle, &reported, true);
    let events: Api<Lenient<Event>> = Api::all(c.clone());
    let assigned = watcher::Config::default().fields(&format!("reason={REASON_NODE_ASSIGNED}"));
    spawn_watch::<Events>(events, assigned, &handle, &reported, true);
    // Two ConfigMaps by name, each in its namespace: kube-proxy's and MetalLB's legacy config.
    let kube_proxy: Api<Lenient<ConfigMap>> = Api::namespaced(c.clone(), KUBE_PROXY_NAMESPACE);
    let by_name = |n: &str| watcher::Config::default().fields(&format!("metadata.name={n}"));
    spawn_watch::<KubeProxyConfigMaps>(kube_proxy, by_name(KUBE_PROXY_NAME), &handle, &reported, true);
    let legacy: Api<Lenient<ConfigMap>> = Api::namespaced(c.clone(), &settings.metallb_namespace);
    spawn_watch::<LegacyConfigMaps>(legacy, by_name(LEGACY_CONFIG_NAME), &handle, &reported, true);
    let leases: Api<Lenient<Lease>> = Api::namespaced(c.clone(), &settings.namespace);
    let ours = watcher::Config::default().labels(&format!("{LABEL_APP}=l2watch"));
    spawn_watch::<Leases>(leases, ours, &handle, &reported, false);

    let (parts_tx, parts) = watch::channel(None);
    let (synced_tx, synced) = watch::channel(false);
    let (peers_tx, peers) = watch::channel(Vec::new());
    let reachable = Arc::new(std::sync::atomic::AtomicBool::new(true));
    tokio::spawn(health(c.clone(), conn.url.clone(), reachable.clone()));
    tokio::spawn(renew_lease(c.clone(), settings.clone(), publish));
    tokio::spawn(build(handle, settings.node, reachable, parts_tx, synced_tx, peers_tx));
    Cluster { parts, synced, peers }
}

/// Retry delays of a watcher: 0.5 s doubling to 5 s, with jitter so the nodes of a cluster do not
/// retry in step; any success starts over. kube's default goes up to 30 s, which after an outage
/// keeps the inventory behind for half a minute more than needed.
struct Retry {
    next: Duration,
    state: u64,
}

impl Retry {
    const FIRST: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(5);

    fn new(seed: u64) -> Retry {
        Retry { next: Retry::FIRST, state: seed | 1 }
    }
}

impl Iterator for Retry {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        // xorshift: a few bits of jitter need no better generator.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let base = self.next;
        self.next = (self.next * 2).min(Retry::MAX);
        let jitter = base.mul_f64((self.state % 400) as f64 / 1000.0);
        Some(base.mul_f64(0.8) + jitter)
    }
}

impl kube::runtime::utils::Backoff for Retry {
    fn reset(&mut self) {
        self.next = Retry::FIRST;
    }
}

/// A status code an API error carries, if any.
fn status_code(e: &watcher::Error) -> Option<u16> {
    match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some(s.code),
        watcher::Error::WatchError(s) => Some(s.code),
        _ => None,
    }
}

/// Watches one resource into the index, with backoff. A resource that is not there (a MetalLB CRD
/// not installed: 404) or not allowed (403) is said once in the log; an optional one then counts as
/// listed and empty, so the inventory can be in sync without it.
fn spawn_watch<R>(
    api: Api<Lenient<R::Object>>,
    config: watcher::Config,
    handle: &IndexHandle,
    reported: &Arc<Mutex<HashSet<(&'static str, u16)>>>,
    optional: bool,
) where
    R: Resource + 'static,
    R::Object: Clone + DeserializeOwned + Debug + Send + 'static,
{
    let for_task = handle.clone();
    let handle = handle.clone();
    let reported = reported.clone();
    let seed = std::process::id() as u64 ^ R::NAME.len() as u64 ^ (R::NAME.as_ptr() as u64);
    let stream = watcher(api, config).backoff(Retry::new(seed)).filter_map(move |item| {
        let out = match &item {
            Err(e) => match status_code(e) {
                Some(code @ (403 | 404)) => {
                    let first = reported.lock().map(|mut r| r.insert((R::NAME, code))).unwrap_or(false);
                    if first {
                        match (code, optional) {
                            (404, true) => tracing::info!(
                                resource = R::NAME,
                                "not served by this cluster (its CRD is not installed?); going on without it"
                            ),
                            (404, false) => tracing::error!(resource = R::NAME, error = %e, "not served by the Kubernetes API"),
                            (_, true) => tracing::info!(
                                resource = R::NAME,
                                "not allowed to read it; going on without it (the README's RBAC grants it)"
                            ),
                            _ => tracing::error!(
                                resource = R::NAME,
                                error = %e,
                                "forbidden: grant l2watch's service account get, list and watch on it (see the README's RBAC)"
                            ),
                        }
                    }
                    if optional {
                        handle.update_if(|i| {
                            let first = !i.sync_state().get(R::NAME).is_some_and(|s| s.listed);
                            i.mark_listed(R::NAME);
                            first
                        });
                    }
                    Some(item)
                }
                Some(410) => {
                    tracing::debug!(resource = R::NAME, "watch expired (410 Gone); relisting");
                    Some(item)
                }
                _ => {
                    tracing::debug!(resource = R::NAME, error = %e, "watch failed; retrying with backoff");
                    Some(item)
                }
            },
            Ok(_) => {
                if let Ok(mut r) = reported.lock() {
                    r.retain(|(name, _)| *name != R::NAME);
                }
                Some(item)
            }
        };
        std::future::ready(out)
    });
    let span = tracing::debug_span!("watch", resource = R::NAME);
    tokio::spawn(async move { drive_fallible::<R, _, _, _>(stream, &for_task).await }.instrument(span));
}

/// Checks the connection every [`HEALTH_EVERY`]; an outage is logged when it starts and when it ends.
async fn health(client: Client, url: String, reachable: Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering;
    let mut tick = tokio::time::interval(HEALTH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ok = match tokio::time::timeout(HEALTH_EVERY, client.apiserver_version()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {}s", HEALTH_EVERY.as_secs())),
        };
        let was = reachable.swap(ok.is_ok(), Ordering::Relaxed);
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
/// at the next renewal (logged once per failure streak); capture never waits for it.
async fn renew_lease(client: Client, settings: Settings, publish: watch::Receiver<Publish>) {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let name = lease_name(&settings.node);
    let params = PatchParams::apply("l2watch").force();
    let mut tick = tokio::time::interval(settings.lease_duration / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let p = publish.borrow().clone();
        let mut lease =
            peer_lease(&settings.node, &p.macs, &p.interfaces, &p.ips, now(), settings.lease_duration);
        lease.metadata.namespace = Some(settings.namespace.clone());
        match api.patch(&name, &params, &Patch::Apply(&lease)).await {
            Ok(_) => {
                if failing {
                    tracing::info!(lease = %name, "this node's Lease is written again");
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(
                        lease = %name, namespace = %settings.namespace, error = %e,
                        "cannot write this node's Lease: peers will not know its MACs; retrying"
                    );
                }
                failing = true;
            }
        }
    }
}

/// Turns index changes (and the passing of time, for Lease liveness) into parts, peers and the sync
/// state.
async fn build(
    handle: IndexHandle,
    node: String,
    reachable: Arc<std::sync::atomic::AtomicBool>,
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
        }
        let view = handle.snapshot(now());
        let listed = REQUIRED.iter().all(|r| view.sync.get(r).is_some_and(|s| s.listed));
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
        let synced = listed && reachable.load(std::sync::atomic::Ordering::Relaxed);
        synced_tx.send_if_modified(|old| {
            let changed = *old != synced;
            *old = synced;
            changed
        });
    }
}
