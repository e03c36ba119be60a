//! The cluster index: the plain data of every watched object, kept current by watch events
//! (`apply` / `delete` / `reset`, as kubert and kube's reflectors do), and joined on demand into a
//! [`ClusterView`].
//!
//! Memory stays bounded by what matters: Services other than LoadBalancer, Events other than
//! `nodeAssigned` on a Service, ConfigMaps other than kube-proxy's and MetalLB's legacy one, and
//! Leases other than l2watch's own are never stored, and only the newest `nodeAssigned` Event per
//! Service is kept.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use kube::core::{ApiResource, ObjectMeta};

use super::lease::{LEASE_PREFIX, PeerInfo};
use super::lenient::Unreadable;
use super::objects::{
    self, Converted, KUBE_PROXY_NAME, KUBE_PROXY_NAMESPACE, L2AdvertisementInfo, L2StatusInfo,
    LEGACY_CONFIG_NAME, NodeAssigned, NodeInfo, PoolInfo, PoolOrigin, REASON_NODE_ASSIGNED, ServiceInfo,
    StrictArp,
};
use super::{ObjectName, Warning};
use crate::inventory::ServiceName;

/// What the index needs to know about the cluster's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexConfig {
    /// The namespace of l2watch's peer Leases (its own). `None`: any namespace.
    pub lease_namespace: Option<String>,
    /// The namespace of MetalLB's legacy ConfigMap `config`. `None`: any namespace.
    pub metallb_namespace: Option<String>,
}

impl Default for IndexConfig {
    fn default() -> IndexConfig {
        IndexConfig { lease_namespace: None, metallb_namespace: Some("metallb-system".into()) }
    }
}

/// Where a Service's announcing node is known from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnnouncerSource {
    /// `ServiceL2Status` objects with a status.
    ServiceL2Status,
    /// `ServiceL2Status` objects still without a status: their `metallb.io/node` label.
    ServiceL2StatusLabel,
    /// The newest `nodeAssigned` Event: a hint with a time, since Events are rate-limited, expire,
    /// and are never sent on withdrawal.
    NodeAssignedEvent {
        /// When it was last seen.
        at: Option<Timestamp>,
    },
    /// Nothing tells: any node may announce.
    Unknown,
}

/// The node(s) announcing a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcer {
    /// The announcing nodes, sorted. Usually one; several when several speakers report announcing
    /// (a memberlist split brain, or a status not yet cleaned up); empty when unknown.
    pub nodes: Vec<String>,
    /// The interfaces they announce on, from ServiceL2Status; empty means all eligible ones.
    pub interfaces: Vec<String>,
    /// Where it is known from.
    pub source: AnnouncerSource,
}

impl Announcer {
    /// The announcing node when exactly one is known.
    pub fn node(&self) -> Option<&str> {
        match self.nodes.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

/// A LoadBalancer Service with its announcer resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    /// The Service.
    pub service: ServiceInfo,
    /// Who announces it: ServiceL2Status, else the newest `nodeAssigned` Event, else unknown.
    pub announcer: Announcer,
}

/// A pool and whether MetalLB announces it in layer2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolView {
    /// The pool.
    pub pool: PoolInfo,
    /// An `IPAddressPool` covered by an L2Advertisement, or a legacy pool of protocol `layer2`.
    pub layer2: bool,
}

/// A peer l2watch and whether it is alive at the snapshot's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerView {
    /// What it published.
    pub peer: PeerInfo,
    /// Renewed within its lease duration.
    pub alive: bool,
}

/// How far one resource's watch has come.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    /// A full list has been applied at least once.
    pub listed: bool,
    /// Watch errors so far (the watcher retries by itself).
    pub errors: u64,
    /// The last error.
    pub last_error: Option<String>,
    /// Reading it fails now, and what the index holds of it may be out of date.
    pub failing: bool,
}

/// Everything the index knows, joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    /// Nodes, by name.
    pub nodes: Vec<NodeInfo>,
    /// LoadBalancer Services, by namespace and name.
    pub services: Vec<ServiceView>,
    /// `IPAddressPool`s, then legacy pools.
    pub pools: Vec<PoolView>,
    /// L2Advertisements.
    pub l2_advertisements: Vec<L2AdvertisementInfo>,
    /// kube-proxy's ARP behaviour.
    pub strict_arp: StrictArp,
    /// Peer l2watch pods.
    pub peers: Vec<PeerView>,
    /// Everything that was skipped or looks wrong.
    pub warnings: Vec<Warning>,
    /// Per resource ([`Resource::NAME`]), how far its watch has come.
    pub sync: BTreeMap<&'static str, SyncState>,
}

/// `namespace` (empty for cluster-scoped objects) and `name`.
type Key = (String, String);

fn key_of<K: kube::Resource>(obj: &K) -> Key {
    let meta = obj.meta();
    (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

/// One object's plain data, or only the warnings when nothing of it is usable.
#[derive(Debug, Clone, PartialEq)]
struct Entry<T> {
    value: Option<T>,
    warnings: Vec<Warning>,
}

type Table<T> = BTreeMap<Key, Entry<T>>;

/// The index. Feed it through [`ClusterIndex::apply`], [`ClusterIndex::delete`] and
/// [`ClusterIndex::reset`] (or [`super::driver::drive`]); read it with [`ClusterIndex::snapshot`].
#[derive(Debug, Clone, Default)]
pub struct ClusterIndex {
    config: IndexConfig,
    nodes: Table<NodeInfo>,
    services: Table<ServiceInfo>,
    pools: Table<PoolInfo>,
    l2_advertisements: Table<L2AdvertisementInfo>,
    l2_statuses: Table<L2StatusInfo>,
    kube_proxy: Table<StrictArp>,
    legacy_config: Table<Vec<PoolInfo>>,
    leases: Table<PeerInfo>,
    /// The newest `nodeAssigned` Event per Service. Older ones are dropped on arrival: Events expire
    /// about an hour after their last update, so when the newest one goes, the older ones are gone
    /// too.
    node_assigned: BTreeMap<ServiceName, NodeAssigned>,
    sync: BTreeMap<&'static str, SyncState>,
}

/// One kind of watched object: how its watch events change the index. Implemented by the marker
/// types [`Nodes`], [`Services`], [`IpAddressPools`], [`L2Advertisements`], [`ServiceL2Statuses`],
/// [`Events`], [`KubeProxyConfigMaps`], [`LegacyConfigMaps`] and [`Leases`].
pub trait Resource {
    /// The object type the watcher yields.
    type Object: kube::Resource + Send + 'static;
    /// The resource's name, for [`SyncState`] and logs.
    const NAME: &'static str;
    /// Whether the index stores anything for this object; others need not be buffered during a
    /// relist.
    fn relevant(index: &ClusterIndex, obj: &Self::Object) -> bool;
    /// An object was added or changed. Returns whether what the index holds changed.
    fn apply(index: &mut ClusterIndex, obj: &Self::Object) -> bool;
    /// The object `namespace/name` was deleted (`namespace` empty for cluster-scoped objects).
    /// Returns whether what the index holds changed.
    fn delete(index: &mut ClusterIndex, namespace: &str, name: &str) -> bool;
    /// A full list: everything of this resource not in `objs` is gone.
    fn reset(index: &mut ClusterIndex, objs: &[Self::Object]);
    /// An object of this resource that does not decode was added or changed (or listed, after
    /// [`Resource::reset`]): it is skipped, with a warning in its place when it would have
    /// mattered. Returns whether what the index holds changed.
    fn unreadable(index: &mut ClusterIndex, bad: &Unreadable) -> bool;
}

/// Resources stored one entry per object.
trait Tabled: Resource {
    /// The object's kind, for warnings.
    const KIND: &'static str;
    type Plain: PartialEq;
    fn table(index: &mut ClusterIndex) -> &mut Table<Self::Plain>;
    /// `value: None` and no warnings: nothing to store.
    fn convert(config: &IndexConfig, obj: &Self::Object) -> Converted<Self::Plain>;
}

fn store<R: Tabled>(index: &mut ClusterIndex, obj: &R::Object) -> bool {
    let Converted { value, warnings } = R::convert(&index.config, obj);
    let key = key_of(obj);
    let table = R::table(index);
    if value.is_none() && warnings.is_empty() {
        return table.remove(&key).is_some();
    }
    let entry = Entry { value, warnings };
    // Most updates (status heartbeats, resourceVersion bumps) change nothing l2watch reads.
    if table.get(&key) == Some(&entry) {
        return false;
    }
    table.insert(key, entry);
    true
}

fn forget<R: Tabled>(index: &mut ClusterIndex, namespace: &str, name: &str) -> bool {
    R::table(index).remove(&(namespace.to_owned(), name.to_owned())).is_some()
}

fn replace_all<R: Tabled>(index: &mut ClusterIndex, objs: &[R::Object]) {
    R::table(index).clear();
    for obj in objs {
        let _ = store::<R>(index, obj);
    }
}

/// An object that does not decode: a warning in its place (its last readable version goes, as it
/// would with a spec l2watch cannot read), or nothing when it would not have mattered.
fn store_unreadable<R: Tabled>(index: &mut ClusterIndex, bad: &Unreadable, relevant: bool) -> bool {
    let key = (bad.meta.namespace.clone().unwrap_or_default(), bad.meta.name.clone().unwrap_or_default());
    if !relevant {
        return R::table(index).remove(&key).is_some();
    }
    let object = ObjectName { kind: R::KIND, namespace: bad.meta.namespace.as_deref(), name: &key.1 };
    let warning = Warning::Unreadable {
        object: object.to_string(),
        reason: format!("does not decode ({})", bad.error),
    };
    let entry = Entry { value: None, warnings: vec![warning] };
    let table = R::table(index);
    if table.get(&key) == Some(&entry) {
        return false;
    }
    table.insert(key, entry);
    true
}

macro_rules! tabled_resource {
    ($(#[$doc:meta])* $marker:ident, $object:ty, $kind:literal, $name:literal, $field:ident, $plain:ty,
     |$config:ident, $obj:ident| $convert:expr, |$rconfig:ident, $robj:ident| $relevant:expr,
     unreadable: |$uconfig:ident, $bad:ident| $relevant_bad:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $marker;

        impl Tabled for $marker {
            const KIND: &'static str = $kind;
            type Plain = $plain;
            fn table(index: &mut ClusterIndex) -> &mut Table<$plain> {
                &mut index.$field
            }
            fn convert($config: &IndexConfig, $obj: &$object) -> Converted<$plain> {
                $convert
            }
        }

        impl Resource for $marker {
            type Object = $object;
            const NAME: &'static str = $name;
            fn relevant(index: &ClusterIndex, $robj: &$object) -> bool {
                let $rconfig = &index.config;
                $relevant
            }
            fn apply(index: &mut ClusterIndex, obj: &$object) -> bool {
                store::<Self>(index, obj)
            }
            fn delete(index: &mut ClusterIndex, namespace: &str, name: &str) -> bool {
                forget::<Self>(index, namespace, name)
            }
            fn reset(index: &mut ClusterIndex, objs: &[$object]) {
                replace_all::<Self>(index, objs)
            }
            fn unreadable(index: &mut ClusterIndex, $bad: &Unreadable) -> bool {
                let $uconfig = &index.config;
                let relevant = $relevant_bad;
                store_unreadable::<Self>(index, $bad, relevant)
            }
        }
    };
}

tabled_resource!(
    /// Nodes (core v1).
    Nodes, Node, "Node", "nodes", nodes, NodeInfo,
    |_config, obj| NodeInfo::from_node(obj),
    |_config, _obj| true,
    unreadable: |_config, _bad| true
);

tabled_resource!(
    /// Services (core v1); only type LoadBalancer is kept.
    Services, Service, "Service", "services", services, ServiceInfo,
    |_config, obj| ServiceInfo::from_service(obj),
    |_config, obj| obj.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"),
    // Whatever else is wrong with it, a readable type that is not LoadBalancer says it would not
    // have mattered; no type at all is ClusterIP.
    unreadable: |_config, bad| match bad.raw.pointer("/spec/type") {
        Some(serde_json::Value::String(t)) => t == "LoadBalancer",
        Some(_) => true,
        None => bad.raw.get("spec").is_some_and(|s| !s.is_object()),
    }
);

tabled_resource!(
    /// MetalLB `IPAddressPool`s (metallb.io/v1beta1, as `DynamicObject`).
    IpAddressPools, DynamicObject, "IPAddressPool", "ipaddresspools", pools, PoolInfo,
    |_config, obj| PoolInfo::from_ip_address_pool(obj),
    |_config, _obj| true,
    unreadable: |_config, _bad| true
);

tabled_resource!(
    /// MetalLB `L2Advertisement`s (metallb.io/v1beta1, as `DynamicObject`).
    L2Advertisements, DynamicObject, "L2Advertisement", "l2advertisements", l2_advertisements,
    L2AdvertisementInfo,
    |_config, obj| L2AdvertisementInfo::from_dynamic(obj),
    |_config, _obj| true,
    unreadable: |_config, _bad| true
);

tabled_resource!(
    /// MetalLB `ServiceL2Status`es (metallb.io/v1beta1, as `DynamicObject`), either layout.
    ServiceL2Statuses, DynamicObject, "ServiceL2Status", "servicel2statuses", l2_statuses, L2StatusInfo,
    |_config, obj| L2StatusInfo::from_dynamic(obj),
    |_config, _obj| true,
    unreadable: |_config, _bad| true
);

tabled_resource!(
    /// kube-proxy's ConfigMap (`kube-system/kube-proxy`); every other ConfigMap is ignored. A table
    /// of its own: its watcher's relists must not touch MetalLB's legacy ConfigMap, and the other way
    /// round.
    KubeProxyConfigMaps, ConfigMap, "ConfigMap", "configmaps/kube-proxy", kube_proxy, StrictArp,
    |_config, obj| match config_map_kind(_config, &obj.metadata) {
        Some(ConfigMapKind::KubeProxy) => StrictArp::from_kube_proxy(obj),
        _ => Converted { value: None, warnings: Vec::new() },
    },
    |config, obj| matches!(config_map_kind(config, &obj.metadata), Some(ConfigMapKind::KubeProxy)),
    unreadable: |config, bad| matches!(config_map_kind(config, &bad.meta), Some(ConfigMapKind::KubeProxy))
);

tabled_resource!(
    /// MetalLB's legacy ConfigMap `config` (MetalLB <= 0.12); every other ConfigMap is ignored.
    LegacyConfigMaps, ConfigMap, "ConfigMap", "configmaps/metallb-config", legacy_config, Vec<PoolInfo>,
    |config, obj| match config_map_kind(config, &obj.metadata) {
        Some(ConfigMapKind::LegacyMetallb) => objects::legacy_pools(obj),
        _ => Converted { value: None, warnings: Vec::new() },
    },
    |config, obj| matches!(config_map_kind(config, &obj.metadata), Some(ConfigMapKind::LegacyMetallb)),
    unreadable: |config, bad| matches!(config_map_kind(config, &bad.meta), Some(ConfigMapKind::LegacyMetallb))
);

tabled_resource!(
    /// Leases (coordination.k8s.io/v1): l2watch's peer Leases (`l2watch-<node>`) only.
    Leases, Lease, "Lease", "leases", leases, PeerInfo,
    |config, obj| if lease_is_peer(config, &obj.metadata) {
        PeerInfo::from_lease(obj)
    } else {
        Converted { value: None, warnings: Vec::new() }
    },
    |config, obj| lease_is_peer(config, &obj.metadata),
    unreadable: |config, bad| lease_is_peer(config, &bad.meta)
);

impl IpAddressPools {
    /// The API resource, for `Api<DynamicObject>` and reflector stores.
    pub fn api_resource() -> ApiResource {
        objects::ip_address_pool_resource()
    }
}

impl L2Advertisements {
    /// The API resource, for `Api<DynamicObject>` and reflector stores.
    pub fn api_resource() -> ApiResource {
        objects::l2_advertisement_resource()
    }
}

impl ServiceL2Statuses {
    /// The API resource, for `Api<DynamicObject>` and reflector stores.
    pub fn api_resource() -> ApiResource {
        objects::service_l2_status_resource()
    }
}

enum ConfigMapKind {
    KubeProxy,
    LegacyMetallb,
}

fn config_map_kind(config: &IndexConfig, meta: &ObjectMeta) -> Option<ConfigMapKind> {
    let namespace = meta.namespace.as_deref().unwrap_or("");
    let name = meta.name.as_deref().unwrap_or("");
    if namespace == KUBE_PROXY_NAMESPACE && name == KUBE_PROXY_NAME {
        Some(ConfigMapKind::KubeProxy)
    } else if name == LEGACY_CONFIG_NAME && config.metallb_namespace.as_deref().is_none_or(|m| m == namespace)
    {
        Some(ConfigMapKind::LegacyMetallb)
    } else {
        None
    }
}

fn lease_is_peer(config: &IndexConfig, meta: &ObjectMeta) -> bool {
    meta.name.as_deref().is_some_and(|n| n.starts_with(LEASE_PREFIX))
        && config.lease_namespace.as_deref().is_none_or(|ns| meta.namespace.as_deref() == Some(ns))
}

/// Core v1 Events: only `nodeAssigned` on a Service (layer2), the newest per Service.
#[derive(Debug, Clone, Copy, Default)]
pub struct Events;

impl Resource for Events {
    type Object = Event;
    const NAME: &'static str = "events";

    fn relevant(_index: &ClusterIndex, ev: &Event) -> bool {
        ev.reason.as_deref() == Some(REASON_NODE_ASSIGNED)
            && ev.involved_object.kind.as_deref() == Some("Service")
    }

    fn apply(index: &mut ClusterIndex, ev: &Event) -> bool {
        let Some(assigned) = NodeAssigned::from_event(ev).filter(NodeAssigned::is_layer2) else {
            return false;
        };
        let keep = match index.node_assigned.get(&assigned.service) {
            None => true,
            Some(current) if *current == assigned => false,
            Some(current) => current.event == assigned.event || assigned.newer_than(current),
        };
        if keep {
            index.node_assigned.insert(assigned.service.clone(), assigned);
        }
        keep
    }

    fn delete(index: &mut ClusterIndex, namespace: &str, name: &str) -> bool {
        let before = index.node_assigned.len();
        index.node_assigned.retain(|_, a| a.event.0 != namespace || a.event.1 != name);
        index.node_assigned.len() != before
    }

    fn reset(index: &mut ClusterIndex, objs: &[Event]) {
        index.node_assigned.clear();
        for ev in objs {
            let _ = Self::apply(index, ev);
        }
    }

    /// Only a hint ever comes from Events (ServiceL2Status is the word on announcers), and only the
    /// newest per Service is kept: an unreadable one is passed over without a warning.
    fn unreadable(_index: &mut ClusterIndex, _bad: &Unreadable) -> bool {
        false
    }
}

impl ClusterIndex {
    /// An empty index.
    pub fn new(config: IndexConfig) -> ClusterIndex {
        ClusterIndex { config, ..ClusterIndex::default() }
    }

    /// An object of resource `R` was added or changed. Returns whether what the index holds
    /// changed.
    pub fn apply<R: Resource>(&mut self, obj: &R::Object) -> bool {
        R::apply(self, obj)
    }

    /// The object `namespace/name` of resource `R` was deleted (`namespace` empty when
    /// cluster-scoped). Returns whether what the index holds changed.
    pub fn delete<R: Resource>(&mut self, namespace: &str, name: &str) -> bool {
        R::delete(self, namespace, name)
    }

    /// A full list of resource `R`: replaces everything the index held for it.
    pub fn reset<R: Resource>(&mut self, objs: &[R::Object]) {
        R::reset(self, objs);
    }

    /// An object of resource `R` that does not decode was added, changed or listed: a warning takes
    /// its place when it would have mattered. Returns whether what the index holds changed.
    pub fn unreadable<R: Resource>(&mut self, bad: &Unreadable) -> bool {
        R::unreadable(self, bad)
    }

    /// Records that a full list of `resource` has been applied.
    pub fn mark_listed(&mut self, resource: &'static str) {
        self.sync.entry(resource).or_default().listed = true;
    }

    /// Records whether reading `resource` fails now. Returns whether that changed.
    pub fn set_failing(&mut self, resource: &'static str, failing: bool) -> bool {
        let state = self.sync.entry(resource).or_default();
        let changed = state.failing != failing;
        state.failing = failing;
        changed
    }

    /// Records a watch error of `resource`.
    pub fn record_error(&mut self, resource: &'static str, error: String) {
        let state = self.sync.entry(resource).or_default();
        state.errors = state.errors.saturating_add(1);
        state.last_error = Some(error);
    }

    /// Per resource, how far its watch has come.
    pub fn sync_state(&self) -> &BTreeMap<&'static str, SyncState> {
        &self.sync
    }

    /// Everything, joined, with peer liveness judged at `now`.
    pub fn snapshot(&self, now: Timestamp) -> ClusterView {
        let mut warnings = Vec::new();
        let nodes = values(&self.nodes, &mut warnings).cloned().collect();

        let mut statuses: BTreeMap<&ServiceName, Vec<&L2StatusInfo>> = BTreeMap::new();
        for status in values(&self.l2_statuses, &mut warnings) {
            statuses.entry(&status.service).or_default().push(status);
        }
        let services = values(&self.services, &mut warnings)
            .map(|svc| ServiceView {
                announcer: self
                    .announcer(&svc.name, statuses.get(&svc.name).map(Vec::as_slice).unwrap_or(&[])),
                service: svc.clone(),
            })
            .collect();

        let l2_advertisements: Vec<L2AdvertisementInfo> =
            values(&self.l2_advertisements, &mut warnings).cloned().collect();
        let mut strict_arp = StrictArp::Unknown;
        let mut legacy = Vec::new();
        for state in values(&self.kube_proxy, &mut warnings) {
            strict_arp = state.clone();
        }
        for pools in values(&self.legacy_config, &mut warnings) {
            legacy.extend(pools.iter().cloned());
        }
        let pools = values(&self.pools, &mut warnings)
            .cloned()
            .chain(legacy)
            .map(|pool| {
                let layer2 = match pool.origin {
                    PoolOrigin::IpAddressPool => l2_advertisements.iter().any(|ad| ad.advertises(&pool)),
                    PoolOrigin::LegacyConfigMap { .. } => pool.legacy_layer2() == Some(true),
                };
                PoolView { pool, layer2 }
            })
            .collect();

        let peers = values(&self.leases, &mut warnings)
            .map(|peer| PeerView { alive: peer.alive(now), peer: peer.clone() })
            .collect();

        ClusterView {
            nodes,
            services,
            pools,
            l2_advertisements,
            strict_arp,
            peers,
            warnings,
            sync: self.sync.clone(),
        }
    }

    fn announcer(&self, service: &ServiceName, statuses: &[&L2StatusInfo]) -> Announcer {
        if !statuses.is_empty() {
            let mut nodes: Vec<String> = statuses.iter().map(|s| s.node.clone()).collect();
            nodes.sort();
            nodes.dedup();
            let mut interfaces: Vec<String> =
                statuses.iter().flat_map(|s| s.interfaces.iter().cloned()).collect();
            interfaces.sort();
            interfaces.dedup();
            // A status that says "all interfaces" wins over one that names some.
            if statuses.iter().any(|s| s.interfaces.is_empty()) {
                interfaces.clear();
            }
            let source = if statuses.iter().all(|s| s.node_from_label) {
                AnnouncerSource::ServiceL2StatusLabel
            } else {
                AnnouncerSource::ServiceL2Status
            };
            return Announcer { nodes, interfaces, source };
        }
        match self.node_assigned.get(service) {
            Some(ev) => Announcer {
                nodes: vec![ev.node.clone()],
                interfaces: Vec::new(),
                source: AnnouncerSource::NodeAssignedEvent { at: ev.at },
            },
            None => Announcer { nodes: Vec::new(), interfaces: Vec::new(), source: AnnouncerSource::Unknown },
        }
    }
}

/// The usable values of a table, collecting every entry's warnings on the way.
fn values<'a, T>(
    table: &'a Table<T>,
    warnings: &mut Vec<Warning>,
) -> impl Iterator<Item = &'a T> + use<'a, T> {
    for entry in table.values() {
        warnings.extend(entry.warnings.iter().cloned());
    }
    table.values().filter_map(|e| e.value.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::kubernetes::fixtures::{load, one};
    use crate::inventory::kubernetes::lease::peer_lease;
    use serde_json::json;
    use std::time::Duration;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn nginx() -> ServiceName {
        "web/nginx".parse().unwrap()
    }

    fn index_with_service() -> ClusterIndex {
        let mut index = ClusterIndex::new(IndexConfig::default());
        assert!(index.apply::<Services>(&one("05-service.yaml")));
        index
    }

    fn announcer(index: &ClusterIndex) -> Announcer {
        let view = index.snapshot(ts("2025-03-10T12:00:00Z"));
        let svc = view.services.iter().find(|s| s.service.name == nginx()).expect("web/nginx");
        svc.announcer.clone()
    }

    fn event_at(node: &str, name: &str, at: &str, combined: bool) -> Event {
        let mut ev: Event = one("06-event-nodeassigned.yaml");
        let prefix = if combined { "(combined from similar events): " } else { "" };
        ev.message = Some(format!("{prefix}announcing from node \"{node}\" with protocol \"layer2\""));
        ev.metadata.name = Some(name.into());
        ev.last_timestamp = serde_json::from_value(json!(at)).unwrap();
        ev
    }

    #[test]
    fn announcer_from_each_service_l2_status_layout() {
        for (file, source) in [
            ("01-servicel2status.yaml", AnnouncerSource::ServiceL2Status),
            ("01b-servicel2status-with-interfaces.yaml", AnnouncerSource::ServiceL2Status),
            ("01c-servicel2status-no-status-yet.yaml", AnnouncerSource::ServiceL2StatusLabel),
            ("02-servicel2status-v0.14.4.yaml", AnnouncerSource::ServiceL2Status),
        ] {
            let mut index = index_with_service();
            assert_eq!(announcer(&index).source, AnnouncerSource::Unknown);
            index.apply::<ServiceL2Statuses>(&one(file));
            let a = announcer(&index);
            assert_eq!((a.node(), &a.source), (Some("worker-2"), &source), "{file}");
            let interfaces: &[&str] = if file.starts_with("01b") { &["eth0"] } else { &[] };
            assert_eq!(a.interfaces, interfaces, "{file}");
        }
    }

    #[test]
    fn announcer_from_both_event_formats_and_the_combined_prefix() {
        for ev in [
            one::<Event>("06-event-nodeassigned.yaml"),
            one::<Event>("06b-event-nodeassigned-legacy-v0.12.yaml"),
            event_at("worker-2", "nginx.1", "2025-03-10T12:00:05Z", true),
        ] {
            let mut index = index_with_service();
            assert!(index.apply::<Events>(&ev));
            let a = announcer(&index);
            assert_eq!(a.node(), Some("worker-2"));
            assert_eq!(a.source, AnnouncerSource::NodeAssignedEvent { at: Some(ts("2025-03-10T12:00:05Z")) });
        }
        let mut index = index_with_service();
        assert!(!index.apply::<Events>(&one("07-event-ipallocated.yaml")));
        assert_eq!(announcer(&index).source, AnnouncerSource::Unknown);
    }

    #[test]
    fn l2_status_beats_events_and_the_newest_event_wins() {
        let mut index = index_with_service();
        index.apply::<Events>(&event_at("worker-3", "nginx.b", "2025-03-10T12:10:00Z", false));
        // An older Event arriving later changes nothing.
        assert!(!index.apply::<Events>(&event_at("worker-1", "nginx.a", "2025-03-10T12:05:00Z", true)));
        assert_eq!(announcer(&index).node(), Some("worker-3"));
        // The older one is updated (the announcement moved back): now it is the newest.
        assert!(index.apply::<Events>(&event_at("worker-1", "nginx.a", "2025-03-10T12:20:00Z", true)));
        assert_eq!(announcer(&index).node(), Some("worker-1"));

        index.apply::<ServiceL2Statuses>(&one("01-servicel2status.yaml"));
        let a = announcer(&index);
        assert_eq!((a.node(), &a.source), (Some("worker-2"), &AnnouncerSource::ServiceL2Status));

        assert!(index.delete::<ServiceL2Statuses>("metallb-system", "l2-r8jwb"));
        assert_eq!(announcer(&index).node(), Some("worker-1"));
        // The kept Event expires: nothing is known any more (older ones were never kept).
        assert!(!index.delete::<Events>("web", "nginx.b"));
        assert!(index.delete::<Events>("web", "nginx.a"));
        assert_eq!(announcer(&index).source, AnnouncerSource::Unknown);
    }

    #[test]
    fn split_brain_statuses_name_every_node() {
        let mut index = index_with_service();
        index.apply::<ServiceL2Statuses>(&one("01b-servicel2status-with-interfaces.yaml"));
        let mut other: DynamicObject = one("01-servicel2status.yaml");
        other.metadata.name = Some("l2-zzzzz".into());
        other.data["status"]["node"] = json!("worker-3");
        index.apply::<ServiceL2Statuses>(&other);
        let a = announcer(&index);
        assert_eq!(a.nodes, ["worker-2", "worker-3"]);
        assert_eq!(a.node(), None);
        assert!(a.interfaces.is_empty(), "one status announces on every interface");
    }

    #[test]
    fn events_keep_one_per_service() {
        let mut index = ClusterIndex::default();
        for i in 0..100 {
            let at = format!("2025-03-10T12:{:02}:00Z", i % 60);
            index.apply::<Events>(&event_at(&format!("w{i}"), &format!("nginx.{i}"), &at, false));
        }
        assert_eq!(index.node_assigned.len(), 1);
        assert_eq!(index.node_assigned[&nginx()].node, "w59");
        index.reset::<Events>(&[]);
        assert!(index.node_assigned.is_empty());
    }

    #[test]
    fn services_pending_drifted_and_no_longer_load_balancers() {
        let mut index = ClusterIndex::default();
        index.reset::<Services>(&[one("05d-service-pending-requested-ip-not-in-pool.yaml")]);
        let view = index.snapshot(ts("2025-03-10T12:00:00Z"));
        assert!(view.services[0].service.is_pending());
        assert!(
            !index.apply::<Services>(&one("05d-service-pending-requested-ip-not-in-pool.yaml")),
            "unchanged"
        );
        assert!(index.apply::<Services>(&one("05c-service-drift-requested-differs.yaml")));
        let view = index.snapshot(ts("2025-03-10T12:00:00Z"));
        assert_eq!(view.services.len(), 1);
        assert_eq!(
            view.services[0].service.requested,
            ["192.168.1.241".parse::<std::net::IpAddr>().unwrap()]
        );

        let mut cluster_ip: Service = one("05-service.yaml");
        cluster_ip.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        assert!(!Services::relevant(&index, &cluster_ip));
        assert!(index.apply::<Services>(&cluster_ip), "a Service that stops being a LoadBalancer is dropped");
        assert!(index.snapshot(ts("2025-03-10T12:00:00Z")).services.is_empty());
    }

    #[test]
    fn pools_layer2_and_strict_arp() {
        let mut index = ClusterIndex::default();
        index.reset::<IpAddressPools>(&[
            one("03-ipaddresspool.yaml"),
            one("03b-ipaddresspool-v0.13-minimal.yaml"),
        ]);
        index.reset::<LegacyConfigMaps>(&[one("09-legacy-configmap.yaml")]);
        index.reset::<KubeProxyConfigMaps>(&[one("11-kube-proxy-configmap-ipvs-no-strictarp.yaml")]);
        let mut unrelated: ConfigMap = one("09-legacy-configmap.yaml");
        unrelated.metadata.namespace = Some("default".into());
        assert!(!LegacyConfigMaps::relevant(&index, &unrelated));
        assert!(!index.apply::<LegacyConfigMaps>(&unrelated));
        assert!(!KubeProxyConfigMaps::relevant(&index, &unrelated));

        let view = index.snapshot(ts("2025-03-10T12:00:00Z"));
        let pools: Vec<(&str, bool)> = view.pools.iter().map(|p| (p.pool.name.as_str(), p.layer2)).collect();
        assert_eq!(
            pools,
            [("expensive", false), ("first-pool", false), ("default", true), ("expensive", true)]
        );
        assert_eq!(view.strict_arp, StrictArp::Off);
        assert!(view.warnings.is_empty(), "{:?}", view.warnings);

        index.apply::<L2Advertisements>(&one("04-l2advertisement.yaml"));
        index.apply::<KubeProxyConfigMaps>(&one("11b-kube-proxy-configmap-ipvs-strictarp.yaml"));
        let view = index.snapshot(ts("2025-03-10T12:00:00Z"));
        let layer2: Vec<bool> = view.pools.iter().map(|p| p.layer2).collect();
        assert_eq!(layer2, [false, true, true, true], "04 names first-pool only");
        assert_eq!(view.strict_arp, StrictArp::On);
        assert_eq!(view.l2_advertisements.len(), 1);

        index.apply::<L2Advertisements>(&one("04b-l2advertisement-minimal.yaml"));
        assert!(index.snapshot(ts("2025-03-10T12:00:00Z")).pools.iter().all(|p| p.layer2));

        // Each watcher relists its own ConfigMap: an empty legacy list leaves kube-proxy's alone.
        index.reset::<LegacyConfigMaps>(&[]);
        let view = index.snapshot(ts("2025-03-10T12:00:00Z"));
        assert_eq!(view.strict_arp, StrictArp::On);
        assert_eq!(view.pools.len(), 2, "the legacy pools are gone");
        index.delete::<KubeProxyConfigMaps>("kube-system", "kube-proxy");
        assert_eq!(index.snapshot(ts("2025-03-10T12:00:00Z")).strict_arp, StrictArp::Unknown);
    }

    #[test]
    fn peers_and_their_liveness() {
        let mut index = ClusterIndex::new(IndexConfig {
            lease_namespace: Some("l2watch".into()),
            ..IndexConfig::default()
        });
        let renewed = ts("2025-03-10T12:00:00Z");
        let mac: crate::wire::mac::Mac = "52:54:00:6b:3c:02".parse().unwrap();
        let mut lease =
            peer_lease("worker-2", &[mac], &["eth0".into()], &[], renewed, Duration::from_secs(30));
        lease.metadata.namespace = Some("l2watch".into());
        let mut elsewhere = lease.clone();
        elsewhere.metadata.namespace = Some("default".into());
        assert!(!Leases::relevant(&index, &elsewhere));
        index.reset::<Leases>(&[lease, elsewhere]);
        index.apply::<Leases>(&load::<Lease>("10-leases-cilium-kubevip.yaml").remove(0));

        let view = index.snapshot(ts("2025-03-10T12:00:20Z"));
        assert_eq!(view.peers.len(), 1);
        assert_eq!(
            (view.peers[0].peer.node.as_str(), view.peers[0].peer.macs.as_slice()),
            ("worker-2", &[mac][..])
        );
        assert!(view.peers[0].alive);
        assert!(!index.snapshot(ts("2025-03-10T12:00:31Z")).peers[0].alive);
    }

    #[test]
    fn warnings_live_as_long_as_their_object() {
        let mut index = ClusterIndex::default();
        let mut pool: DynamicObject = one("03b-ipaddresspool-v0.13-minimal.yaml");
        pool.data["spec"]["addresses"] = json!(["10.0.0.0/33"]);
        index.apply::<IpAddressPools>(&pool);
        let mut status: DynamicObject = one("01c-servicel2status-no-status-yet.yaml");
        status.metadata.labels = None;
        index.apply::<ServiceL2Statuses>(&status);
        let view = index.snapshot(ts("2025-03-10T12:00:00Z"));
        assert_eq!(view.warnings.len(), 2, "{:?}", view.warnings);
        assert_eq!(view.pools[0].pool.ranges, []);
        let text = view.warnings.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        assert!(
            text.contains("IPAddressPool metallb-system/expensive") && text.contains("10.0.0.0/33"),
            "{text}"
        );

        index.delete::<IpAddressPools>("metallb-system", "expensive");
        index.reset::<ServiceL2Statuses>(&[]);
        assert!(index.snapshot(ts("2025-03-10T12:00:00Z")).warnings.is_empty());
    }

    #[test]
    fn nodes_reset_and_delete() {
        let node =
            |name: &str| -> Node { serde_json::from_value(json!({"metadata": {"name": name}})).unwrap() };
        let mut index = ClusterIndex::default();
        index.reset::<Nodes>(&[node("a"), node("b")]);
        assert!(index.delete::<Nodes>("", "a"));
        assert!(!index.delete::<Nodes>("", "a"));
        let names: Vec<String> =
            index.snapshot(ts("2025-03-10T12:00:00Z")).nodes.into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["b"]);
    }

    #[test]
    fn crd_api_resources() {
        let r = IpAddressPools::api_resource();
        assert_eq!(
            (r.api_version.as_str(), r.kind.as_str(), r.plural.as_str()),
            ("metallb.io/v1beta1", "IPAddressPool", "ipaddresspools")
        );
        assert_eq!(L2Advertisements::api_resource().plural, "l2advertisements");
        assert_eq!(ServiceL2Statuses::api_resource().plural, "servicel2statuses");
    }
}
