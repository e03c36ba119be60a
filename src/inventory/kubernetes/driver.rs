//! Watch streams into the index: `Apply` and `Delete` change it at once; a relist (`Init`,
//! `InitApply`..., `InitDone`) is buffered and replaces the resource's state in one step, so readers
//! never see a half-listed cluster and an object missing from the relist is gone.
//!
//! The driver only consumes a stream: the watcher that produces it (and its retries) is the
//! caller's. Every change bumps a generation number on a `tokio::sync::watch` channel, so whoever
//! builds inventory snapshots can wait for changes and coalesce bursts.

use std::convert::Infallible;
use std::fmt::Display;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::{Stream, StreamExt};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::watcher;
use tokio::sync::watch;

use super::index::{ClusterIndex, ClusterView, Resource};
use super::lenient::{Lenient, Unreadable};

/// A shared [`ClusterIndex`] plus a change counter. Cloning shares both.
#[derive(Debug, Clone)]
pub struct IndexHandle {
    index: Arc<Mutex<ClusterIndex>>,
    generation: Arc<watch::Sender<u64>>,
}

impl IndexHandle {
    /// Shares `index`, at generation 0.
    pub fn new(index: ClusterIndex) -> IndexHandle {
        IndexHandle { index: Arc::new(Mutex::new(index)), generation: Arc::new(watch::Sender::new(0)) }
    }

    /// Runs `f` on the index and counts it as a change.
    pub fn update<T>(&self, f: impl FnOnce(&mut ClusterIndex) -> T) -> T {
        let out = f(&mut self.lock());
        self.bump();
        out
    }

    /// Runs `f` on the index and counts a change only when `f` says there was one.
    pub fn update_if(&self, f: impl FnOnce(&mut ClusterIndex) -> bool) -> bool {
        let changed = f(&mut self.lock());
        if changed {
            self.bump();
        }
        changed
    }

    fn bump(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Runs `f` on the index without changing it.
    pub fn read<T>(&self, f: impl FnOnce(&ClusterIndex) -> T) -> T {
        f(&self.lock())
    }

    /// The joined view at `now`.
    pub fn snapshot(&self, now: Timestamp) -> ClusterView {
        self.read(|index| index.snapshot(now))
    }

    /// A receiver that sees the generation number grow with every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// The current generation number.
    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    fn lock(&self) -> MutexGuard<'_, ClusterIndex> {
        // Nothing in the index panics on object data; should a panic happen anyway, the worst left
        // behind is one resource half-reset, which its next relist repairs: better than every
        // watcher and reader failing from then on.
        self.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Feeds a watch stream of resource `R` into the index until the stream ends.
pub async fn drive<R, S, O>(stream: S, handle: &IndexHandle)
where
    R: Resource,
    S: Stream<Item = watcher::Event<O>>,
    O: Into<Lenient<R::Object>>,
{
    drive_fallible::<R, _, O, Infallible>(stream.map(Ok), handle).await;
}

/// [`drive`] for a stream with errors, such as kube's `watcher()`: an error is recorded in the
/// resource's [`super::index::SyncState`] and the stream is read on (the watcher retries by itself).
pub async fn drive_fallible<R, S, O, E>(stream: S, handle: &IndexHandle)
where
    R: Resource,
    S: Stream<Item = Result<watcher::Event<O>, E>>,
    O: Into<Lenient<R::Object>>,
    E: Display,
{
    let mut stream = std::pin::pin!(stream);
    let mut driver = Driver::<R>::new(handle.clone());
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                driver.event(lenient(event));
            }
            Err(e) => driver.error(e.to_string()),
        }
    }
}

/// The same event with its object(s) as [`Lenient`].
fn lenient<K, O: Into<Lenient<K>>>(event: watcher::Event<O>) -> watcher::Event<Lenient<K>> {
    match event {
        watcher::Event::Apply(o) => watcher::Event::Apply(o.into()),
        watcher::Event::Delete(o) => watcher::Event::Delete(o.into()),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(o) => watcher::Event::InitApply(o.into()),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

/// A relist in progress.
struct Relist<K> {
    objects: Vec<K>,
    unreadable: Vec<Unreadable>,
}

impl<K> Default for Relist<K> {
    fn default() -> Self {
        Relist { objects: Vec::new(), unreadable: Vec::new() }
    }
}

/// Feeds one resource's watch events into the index, one at a time, for a caller that owns the
/// watch (and may start it over).
pub struct Driver<R: Resource> {
    handle: IndexHandle,
    /// `Some` between Init and InitDone.
    relist: Option<Relist<R::Object>>,
}

impl<R: Resource> Driver<R> {
    /// Feeds `handle`'s index.
    pub fn new(handle: IndexHandle) -> Driver<R> {
        Driver { handle, relist: None }
    }

    /// One watch event. Returns whether it shows the resource read: a relist completed, or a change
    /// (readable or not) arrived on a working watch.
    pub fn event(&mut self, event: watcher::Event<Lenient<R::Object>>) -> bool {
        match event {
            watcher::Event::Init => {
                self.relist = Some(Relist::default());
                false
            }
            watcher::Event::InitApply(Lenient::Read(obj)) => {
                if self.handle.read(|index| R::relevant(index, &obj)) {
                    self.relist.get_or_insert_with(Relist::default).objects.push(obj);
                }
                false
            }
            watcher::Event::InitApply(Lenient::Unreadable(bad)) => {
                self.relist.get_or_insert_with(Relist::default).unreadable.push(*bad);
                false
            }
            watcher::Event::InitDone => {
                let relist = self.relist.take().unwrap_or_default();
                self.handle.update(|index| {
                    index.reset::<R>(&relist.objects);
                    for bad in &relist.unreadable {
                        let _ = index.unreadable::<R>(bad);
                    }
                    index.mark_listed(R::NAME);
                });
                true
            }
            watcher::Event::Apply(Lenient::Read(obj)) => {
                // An object that stopped being relevant (a Service no longer of type
                // LoadBalancer) must still reach the index to be dropped from it.
                self.handle.update_if(|index| index.apply::<R>(&obj));
                true
            }
            watcher::Event::Apply(Lenient::Unreadable(bad)) => {
                self.handle.update_if(|index| index.unreadable::<R>(&bad));
                true
            }
            watcher::Event::Delete(obj) => {
                // Only the name counts, so an unreadable object is deleted like any other.
                let meta = kube::Resource::meta(&obj);
                let namespace = meta.namespace.clone().unwrap_or_default();
                let name = meta.name.clone().unwrap_or_default();
                self.handle.update_if(|index| index.delete::<R>(&namespace, &name));
                true
            }
        }
    }

    /// An error of the watch: recorded in the resource's [`super::index::SyncState`]; what the index
    /// holds is unchanged, so there is nothing to rebuild.
    pub fn error(&mut self, error: String) {
        self.handle.update_if(|index| {
            index.record_error(R::NAME, error);
            false
        });
    }

    /// The watch is started over (its next events begin with a relist): a relist half received is
    /// dropped, and the index keeps what it had until the new one is complete.
    pub fn restart(&mut self) {
        self.relist = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::kubernetes::fixtures::one;
    use crate::inventory::kubernetes::index::{IndexConfig, IpAddressPools, Nodes, Services};
    use futures::channel::mpsc;
    use k8s_openapi::api::core::v1::{Node, Service};
    use kube::api::DynamicObject;
    use watcher::Event as E;

    fn node(name: &str) -> Node {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap()
    }

    fn node_names(handle: &IndexHandle) -> Vec<String> {
        handle.snapshot("2025-03-10T12:00:00Z".parse().unwrap()).nodes.into_iter().map(|n| n.name).collect()
    }

    /// Lets the driver task run until it waits for the next event.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn relist_replaces_state_and_watch_events_update_it() {
        let handle = IndexHandle::new(ClusterIndex::new(IndexConfig::default()));
        let mut changes = handle.subscribe();
        let (tx, rx) = mpsc::unbounded::<E<Node>>();
        let driver = {
            let handle = handle.clone();
            tokio::spawn(async move { drive::<Nodes, _, _>(rx, &handle).await })
        };

        for ev in [E::Init, E::InitApply(node("a")), E::InitApply(node("b")), E::InitDone] {
            tx.unbounded_send(ev).unwrap();
        }
        changes.changed().await.unwrap();
        assert_eq!(node_names(&handle), ["a", "b"]);
        assert!(handle.read(|i| i.sync_state()["nodes"].listed));

        // During a relist readers still see the old state; "a" is gone once it is done.
        tx.unbounded_send(E::Init).unwrap();
        tx.unbounded_send(E::InitApply(node("b"))).unwrap();
        tx.unbounded_send(E::InitApply(node("c"))).unwrap();
        settle().await;
        assert_eq!(node_names(&handle), ["a", "b"]);
        let before = handle.generation();
        tx.unbounded_send(E::InitDone).unwrap();
        changes.changed().await.unwrap();
        assert_eq!(node_names(&handle), ["b", "c"]);
        assert_eq!(handle.generation(), before + 1, "one relist, one change");

        tx.unbounded_send(E::Apply(node("d"))).unwrap();
        changes.changed().await.unwrap();
        assert_eq!(node_names(&handle), ["b", "c", "d"]);
        tx.unbounded_send(E::Delete(node("b"))).unwrap();
        changes.changed().await.unwrap();
        assert_eq!(node_names(&handle), ["c", "d"]);

        // Applying what is already known is no change.
        let before = handle.generation();
        tx.unbounded_send(E::Apply(node("d"))).unwrap();
        settle().await;
        assert_eq!(handle.generation(), before);

        drop(tx);
        driver.await.unwrap();
    }

    #[tokio::test]
    async fn namespaced_dynamic_objects_and_irrelevant_ones() {
        let handle = IndexHandle::new(ClusterIndex::default());
        let pools: Vec<E<DynamicObject>> = vec![
            E::Init,
            E::InitApply(one("03-ipaddresspool.yaml")),
            E::InitApply(one("03b-ipaddresspool-v0.13-minimal.yaml")),
            E::InitDone,
            E::Delete(one("03-ipaddresspool.yaml")),
        ];
        drive::<IpAddressPools, _, _>(futures::stream::iter(pools), &handle).await;
        let view = handle.snapshot("2025-03-10T12:00:00Z".parse().unwrap());
        let names: Vec<&str> = view.pools.iter().map(|p| p.pool.name.as_str()).collect();
        assert_eq!(names, ["expensive"]);

        let mut cluster_ip: Service = one("05-service.yaml");
        cluster_ip.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        let services = vec![
            E::Init,
            E::InitApply(one("05-service.yaml")),
            E::InitApply(cluster_ip.clone()),
            E::InitDone,
        ];
        drive::<Services, _, _>(futures::stream::iter(services), &handle).await;
        assert_eq!(handle.snapshot("2025-03-10T12:00:00Z".parse().unwrap()).services.len(), 1);
        drive::<Services, _, _>(futures::stream::iter(vec![E::Apply(cluster_ip)]), &handle).await;
        assert!(handle.snapshot("2025-03-10T12:00:00Z".parse().unwrap()).services.is_empty());
    }

    #[tokio::test]
    async fn errors_are_recorded_and_reading_goes_on() {
        let handle = IndexHandle::new(ClusterIndex::default());
        let items: Vec<Result<E<Node>, String>> =
            vec![Err("410 Gone".into()), Ok(E::Init), Ok(E::InitApply(node("a"))), Ok(E::InitDone)];
        drive_fallible::<Nodes, _, _, _>(futures::stream::iter(items), &handle).await;
        let sync = handle.read(|i| i.sync_state()["nodes"].clone());
        assert_eq!((sync.listed, sync.errors, sync.last_error.as_deref()), (true, 1, Some("410 Gone")));
        assert_eq!(node_names(&handle), ["a"]);
    }

    /// A Service as the API might send it with `spec.ports` a string: it does not decode.
    fn unreadable_service(name: &str, spec_type: &str) -> Lenient<Service> {
        let mut raw = serde_json::to_value(one::<Service>("05-service.yaml")).unwrap();
        raw["metadata"]["name"] = serde_json::json!(name);
        raw["spec"]["type"] = serde_json::json!(spec_type);
        raw["spec"]["ports"] = serde_json::json!("http");
        let bad: Lenient<Service> = serde_json::from_value(raw).unwrap();
        assert!(matches!(bad, Lenient::Unreadable(_)));
        bad
    }

    fn service_names(handle: &IndexHandle) -> (Vec<String>, Vec<String>) {
        let view = handle.snapshot("2025-03-10T12:00:00Z".parse().unwrap());
        let names = view.services.iter().map(|s| s.service.name.name.clone()).collect();
        (names, view.warnings.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn an_unreadable_object_is_a_warning_in_its_place() {
        let handle = IndexHandle::new(ClusterIndex::default());
        let mut driver = Driver::<Services>::new(handle.clone());
        for e in [
            E::Init,
            E::InitApply(Lenient::Read(one("05-service.yaml"))),
            E::InitApply(unreadable_service("bad", "LoadBalancer")),
            // Would not have mattered: no warning.
            E::InitApply(unreadable_service("internal", "ClusterIP")),
        ] {
            assert!(!driver.event(e), "a relist half done shows nothing");
        }
        assert!(driver.event(E::InitDone));
        let (names, warnings) = service_names(&handle);
        assert_eq!(names, ["nginx"]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("Service web/bad: skipped: does not decode (invalid type"),
            "{warnings:?}"
        );

        // nginx turns unreadable: its data goes, a warning comes; deleting it takes the warning.
        let mut bad_nginx = unreadable_service("nginx", "LoadBalancer");
        assert!(driver.event(E::Apply(bad_nginx.clone())));
        let (names, warnings) = service_names(&handle);
        assert!(names.is_empty() && warnings.len() == 2, "{names:?} {warnings:?}");
        if let Lenient::Unreadable(u) = &mut bad_nginx {
            u.meta.resource_version = Some("99".into());
        }
        assert!(driver.event(E::Delete(bad_nginx)));
        assert_eq!(service_names(&handle).1.len(), 1);
    }

    #[test]
    fn a_restart_drops_a_relist_half_received() {
        let handle = IndexHandle::new(ClusterIndex::default());
        let mut driver = Driver::<Nodes>::new(handle.clone());
        for e in [E::Init, E::InitApply(node("a").into()), E::InitDone] {
            driver.event(e);
        }
        driver.event(E::Init);
        driver.event(E::InitApply(node("b").into()));
        driver.restart();
        // The new stream's relist is all that counts.
        for e in [E::Init, E::InitApply(node("c").into()), E::InitDone] {
            driver.event(e);
        }
        assert_eq!(node_names(&handle), ["c"]);
    }
}
