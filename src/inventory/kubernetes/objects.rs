//! Kubernetes and MetalLB objects turned into plain data: what l2watch needs from each, with a
//! [`Warning`] for every part it cannot use. Every conversion is a pure function of one object.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use kube::core::{ApiResource, GroupVersionKind};
use serde::Deserialize;

use super::selector::Selector;
use super::{ObjectName, Warning};
use crate::inventory::{KubeProxy, ServiceName};
use crate::wire::iprange::IpRange;

/// The result of converting one object: its plain data (`None` when the object is not usable or not
/// of interest) and what could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted<T> {
    /// The plain data.
    pub value: Option<T>,
    /// What was skipped.
    pub warnings: Vec<Warning>,
}

impl<T> Converted<T> {
    fn new(value: Option<T>, warnings: Vec<Warning>) -> Converted<T> {
        Converted { value, warnings }
    }

    fn skipped(warning: Warning) -> Converted<T> {
        Converted { value: None, warnings: vec![warning] }
    }

    fn none() -> Converted<T> {
        Converted { value: None, warnings: Vec::new() }
    }
}

// ---------------------------------------------------------------------------------------------------
// MetalLB's custom resources

/// The API group and version of MetalLB's CRDs that l2watch reads.
pub const METALLB_GROUP: &str = "metallb.io";
/// See [`METALLB_GROUP`].
pub const METALLB_VERSION: &str = "v1beta1";

fn metallb_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(METALLB_GROUP, METALLB_VERSION, kind), plural)
}

/// `IPAddressPool`, for `Api<DynamicObject>`.
pub fn ip_address_pool_resource() -> ApiResource {
    metallb_resource("IPAddressPool", "ipaddresspools")
}

/// `L2Advertisement`, for `Api<DynamicObject>`.
pub fn l2_advertisement_resource() -> ApiResource {
    metallb_resource("L2Advertisement", "l2advertisements")
}

/// `ServiceL2Status`, for `Api<DynamicObject>`.
pub fn service_l2_status_resource() -> ApiResource {
    metallb_resource("ServiceL2Status", "servicel2statuses")
}

/// Deserializes `obj.data[field]`; an absent or null field is the type's default.
fn data_field<'a, T: Deserialize<'a> + Default>(obj: &'a DynamicObject, field: &str) -> Result<T, String> {
    match obj.data.get(field) {
        None | Some(serde_json::Value::Null) => Ok(T::default()),
        Some(v) => T::deserialize(v).map_err(|e| format!("{field}: {e}")),
    }
}

fn parse_ranges(object: &str, field: &str, entries: &[String], warnings: &mut Vec<Warning>) -> Vec<IpRange> {
    entries
        .iter()
        .filter_map(|entry| match entry.parse::<IpRange>() {
            Ok(r) => Some(r),
            Err(e) => {
                warnings.push(Warning::BadValue {
                    object: object.to_owned(),
                    field: field.to_owned(),
                    value: entry.clone(),
                    reason: e.to_string(),
                });
                None
            }
        })
        .collect()
}

/// Where a pool was defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolOrigin {
    /// An `IPAddressPool` (MetalLB >= 0.13): announced in layer2 only where an L2Advertisement
    /// covers it.
    IpAddressPool,
    /// The `address-pools` of the legacy ConfigMap (MetalLB <= 0.12), with its protocol as written.
    LegacyConfigMap {
        /// `layer2` or `bgp`.
        protocol: String,
    },
}

/// An address pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolInfo {
    /// Its name.
    pub name: String,
    /// Its namespace (MetalLB's); for a legacy pool, the ConfigMap's.
    pub namespace: String,
    /// The addresses that parsed.
    pub ranges: Vec<IpRange>,
    /// Whether MetalLB hands its addresses out without being asked for the pool or an IP.
    pub auto_assign: bool,
    /// Its labels, for `ipAddressPoolSelectors`.
    pub labels: BTreeMap<String, String>,
    /// Where it was defined.
    pub origin: PoolOrigin,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PoolSpec {
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    auto_assign: Option<bool>,
}

impl PoolInfo {
    /// An `IPAddressPool` (metallb.io/v1beta1). An address that does not parse is skipped with a
    /// warning; a spec of the wrong shape skips the pool.
    pub fn from_ip_address_pool(obj: &DynamicObject) -> Converted<PoolInfo> {
        let object = ObjectName::of("IPAddressPool", obj).to_string();
        let spec: PoolSpec = match data_field(obj, "spec") {
            Ok(s) => s,
            Err(reason) => return Converted::skipped(Warning::Unreadable { object, reason }),
        };
        let mut warnings = Vec::new();
        let ranges = parse_ranges(&object, "spec.addresses", &spec.addresses, &mut warnings);
        let pool = PoolInfo {
            name: obj.metadata.name.clone().unwrap_or_default(),
            namespace: obj.metadata.namespace.clone().unwrap_or_default(),
            ranges,
            auto_assign: spec.auto_assign.unwrap_or(true),
            labels: obj.metadata.labels.clone().unwrap_or_default(),
            origin: PoolOrigin::IpAddressPool,
        };
        Converted::new(Some(pool), warnings)
    }

    /// Whether MetalLB announces this pool's addresses with ARP/NDP at all, judged from its own
    /// definition; CRD pools also need an L2Advertisement (see [`L2AdvertisementInfo::advertises`]).
    pub fn legacy_layer2(&self) -> Option<bool> {
        match &self.origin {
            PoolOrigin::IpAddressPool => None,
            PoolOrigin::LegacyConfigMap { protocol } => Some(protocol == "layer2"),
        }
    }
}

/// An `L2Advertisement`: which pools are announced in layer2, from which nodes, on which interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2AdvertisementInfo {
    /// Its name.
    pub name: String,
    /// Its namespace (MetalLB's).
    pub namespace: String,
    /// `ipAddressPools`: pools by name.
    pub pools: Vec<String>,
    /// `ipAddressPoolSelectors`: pools by label.
    pub pool_selectors: Vec<Selector>,
    /// `nodeSelectors`: the nodes that may announce; empty means all nodes.
    pub node_selectors: Vec<Selector>,
    /// `interfaces`: where it announces; empty means every eligible interface.
    pub interfaces: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct L2AdvertisementSpec {
    #[serde(default)]
    ip_address_pools: Vec<String>,
    #[serde(default)]
    ip_address_pool_selectors: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    #[serde(default)]
    node_selectors: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    #[serde(default)]
    interfaces: Vec<String>,
}

impl L2AdvertisementInfo {
    /// An `L2Advertisement` (metallb.io/v1beta1). A missing spec is MetalLB's "all pools, all nodes,
    /// all interfaces".
    pub fn from_dynamic(obj: &DynamicObject) -> Converted<L2AdvertisementInfo> {
        let object = ObjectName::of("L2Advertisement", obj).to_string();
        let spec: L2AdvertisementSpec = match data_field(obj, "spec") {
            Ok(s) => s,
            Err(reason) => return Converted::skipped(Warning::Unreadable { object, reason }),
        };
        let pool_selectors: Vec<Selector> =
            spec.ip_address_pool_selectors.iter().map(Selector::from_k8s).collect();
        let node_selectors: Vec<Selector> = spec.node_selectors.iter().map(Selector::from_k8s).collect();
        let warnings = pool_selectors
            .iter()
            .chain(&node_selectors)
            .filter_map(Selector::unknown_operator)
            .map(|op| Warning::Suspicious {
                object: object.clone(),
                reason: format!(
                    "selector operator {op:?} is not In, NotIn, Exists or DoesNotExist: MetalLB rejects \
                     the configuration; l2watch treats the selector as matching nothing"
                ),
            })
            .collect();
        let info = L2AdvertisementInfo {
            name: obj.metadata.name.clone().unwrap_or_default(),
            namespace: obj.metadata.namespace.clone().unwrap_or_default(),
            pools: spec.ip_address_pools,
            pool_selectors,
            node_selectors,
            interfaces: spec.interfaces,
        };
        Converted::new(Some(info), warnings)
    }

    /// Whether it names pools by label.
    pub fn has_pool_selectors(&self) -> bool {
        !self.pool_selectors.is_empty()
    }

    /// Whether it announces `pool`: named, selected by label, or neither list given (all pools).
    /// Legacy pools are never covered: that MetalLB had no L2Advertisements.
    pub fn advertises(&self, pool: &PoolInfo) -> bool {
        if pool.origin != PoolOrigin::IpAddressPool || pool.namespace != self.namespace {
            return false;
        }
        if self.pools.is_empty() && self.pool_selectors.is_empty() {
            return true;
        }
        self.pools.contains(&pool.name) || self.pool_selectors.iter().any(|s| s.selects(&pool.labels))
    }

    /// Whether a node with these labels may announce for it. As in MetalLB, any one selector is
    /// enough, and no selector at all means every node.
    pub fn selects(&self, node_labels: &BTreeMap<String, String>) -> bool {
        self.node_selectors.is_empty() || self.node_selectors.iter().any(|s| s.selects(node_labels))
    }
}

/// Which ServiceL2Status layout an object has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L2StatusLayout {
    /// MetalLB 0.14.4-0.14.5 (behind `--enable-l2-service-status`): in the Service's namespace,
    /// label `metallb.io/service`.
    V0_14_4,
    /// MetalLB 0.14.6+: in MetalLB's namespace, labels `metallb.io/service-name` and
    /// `metallb.io/service-namespace`, and the same in its status.
    V0_14_6,
}

/// A `ServiceL2Status`: one node announcing one Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2StatusInfo {
    /// The Service it is about.
    pub service: ServiceName,
    /// The announcing node.
    pub node: String,
    /// The node came from the `metallb.io/node` label because the status is still empty.
    pub node_from_label: bool,
    /// The interfaces it announces on; empty means all eligible ones.
    pub interfaces: Vec<String>,
    /// Which layout it has.
    pub layout: L2StatusLayout,
}

/// Label on ServiceL2Status: the announcing node.
pub const LABEL_NODE: &str = "metallb.io/node";
/// Label on ServiceL2Status (0.14.6+): the Service's name.
pub const LABEL_SERVICE_NAME: &str = "metallb.io/service-name";
/// Label on ServiceL2Status (0.14.6+): the Service's namespace.
pub const LABEL_SERVICE_NAMESPACE: &str = "metallb.io/service-namespace";
/// Label on ServiceL2Status (0.14.4-0.14.5): the Service's name; the namespace is the object's own.
pub const LABEL_SERVICE_V0_14_4: &str = "metallb.io/service";

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct L2StatusStatus {
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    service_namespace: Option<String>,
    #[serde(default)]
    interfaces: Vec<InterfaceName>,
}

#[derive(Deserialize)]
struct InterfaceName {
    #[serde(default)]
    name: String,
}

fn non_empty(s: Option<&String>) -> Option<&str> {
    s.map(String::as_str).filter(|s| !s.is_empty())
}

impl L2StatusInfo {
    /// A `ServiceL2Status` (metallb.io/v1beta1) of either layout. The status fields win over the
    /// labels; the labels stand in while the status is still empty right after creation.
    pub fn from_dynamic(obj: &DynamicObject) -> Converted<L2StatusInfo> {
        let object = ObjectName::of("ServiceL2Status", obj).to_string();
        let status: L2StatusStatus = match data_field(obj, "status") {
            Ok(s) => s,
            Err(reason) => return Converted::skipped(Warning::Unreadable { object, reason }),
        };
        let empty = BTreeMap::new();
        let labels = obj.metadata.labels.as_ref().unwrap_or(&empty);
        let own_namespace = obj.metadata.namespace.as_deref().unwrap_or("");

        let from_status =
            non_empty(status.service_namespace.as_ref()).zip(non_empty(status.service_name.as_ref()));
        let from_labels =
            non_empty(labels.get(LABEL_SERVICE_NAMESPACE)).zip(non_empty(labels.get(LABEL_SERVICE_NAME)));
        let old = non_empty(labels.get(LABEL_SERVICE_V0_14_4)).map(|name| (own_namespace, name));
        let (service, layout) = match (from_status.or(from_labels), old) {
            (Some(svc), _) => (svc, L2StatusLayout::V0_14_6),
            (None, Some(svc)) => (svc, L2StatusLayout::V0_14_4),
            (None, None) => {
                return Converted::skipped(Warning::Unreadable {
                    object,
                    reason: "names no Service (no status.serviceName/serviceNamespace, no metallb.io/service-name \
                             and metallb.io/service-namespace labels, no metallb.io/service label)"
                        .into(),
                });
            }
        };
        let (node, node_from_label) = match non_empty(status.node.as_ref()) {
            Some(n) => (n, false),
            None => match non_empty(labels.get(LABEL_NODE)) {
                Some(n) => (n, true),
                None => {
                    return Converted::skipped(Warning::Unreadable {
                        object,
                        reason: "names no node (no status.node, no metallb.io/node label)".into(),
                    });
                }
            },
        };
        let info = L2StatusInfo {
            service: ServiceName { namespace: service.0.to_owned(), name: service.1.to_owned() },
            node: node.to_owned(),
            node_from_label,
            interfaces: status.interfaces.into_iter().map(|i| i.name).filter(|n| !n.is_empty()).collect(),
            layout,
        };
        Converted::new(Some(info), Vec::new())
    }
}

// ---------------------------------------------------------------------------------------------------
// Core objects

/// A cluster node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its name.
    pub name: String,
    /// Its `InternalIP` and `ExternalIP` addresses, in the Node's order.
    pub addresses: Vec<IpAddr>,
    /// Condition `Ready` is `True`.
    pub ready: bool,
    /// Its labels, for L2Advertisement `nodeSelectors`.
    pub labels: BTreeMap<String, String>,
}

impl NodeInfo {
    /// A Node. Addresses of other types (Hostname, InternalDNS) are not IPs and are left out.
    pub fn from_node(node: &Node) -> Converted<NodeInfo> {
        let object = ObjectName::of("Node", node).to_string();
        let mut warnings = Vec::new();
        let status = node.status.as_ref();
        let addresses = status
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
            .filter(|a| a.type_ == "InternalIP" || a.type_ == "ExternalIP")
            .filter_map(|a| match a.address.trim().parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(e) => {
                    warnings.push(Warning::BadValue {
                        object: object.clone(),
                        field: format!("status.addresses ({})", a.type_),
                        value: a.address.clone(),
                        reason: e.to_string(),
                    });
                    None
                }
            })
            .collect();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let info = NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            addresses,
            ready,
            labels: node.metadata.labels.clone().unwrap_or_default(),
        };
        Converted::new(Some(info), warnings)
    }
}

/// Prefix of the annotations MetalLB reads (>= 0.14.9 for `loadBalancerIPs`).
pub const PREFIX_METALLB_IO: &str = "metallb.io/";
/// Prefix of the annotations MetalLB reads, deprecated but still read.
pub const PREFIX_UNIVERSE_TF: &str = "metallb.universe.tf/";
/// The annotation names MetalLB reads on a Service, under either prefix (case-sensitive).
pub const READ_ANNOTATIONS: [&str; 4] =
    ["loadBalancerIPs", "address-pool", "allow-shared-ip", "ip-allocated-from-pool"];

/// Where a Service's requested IPs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestSource {
    /// `metallb.io/loadBalancerIPs`.
    MetallbIo,
    /// `metallb.universe.tf/loadBalancerIPs`.
    UniverseTf,
    /// `spec.loadBalancerIP`.
    SpecLoadBalancerIp,
    /// An annotation MetalLB ignores, whose value is IP addresses: what the user meant, though
    /// MetalLB does not pin it (see [`ServiceInfo::ignored`]).
    IgnoredAnnotation(String),
}

impl RequestSource {
    /// The annotation key or field, for people and labels.
    pub fn as_str(&self) -> &str {
        match self {
            RequestSource::MetallbIo => "metallb.io/loadBalancerIPs",
            RequestSource::UniverseTf => "metallb.universe.tf/loadBalancerIPs",
            RequestSource::SpecLoadBalancerIp => "spec.loadBalancerIP",
            RequestSource::IgnoredAnnotation(key) => key,
        }
    }

    /// Whether MetalLB acts on it.
    pub fn is_honoured(&self) -> bool {
        !matches!(self, RequestSource::IgnoredAnnotation(_))
    }
}

/// A Service annotation under `metallb.io/` or `metallb.universe.tf/` that MetalLB does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredAnnotation {
    /// The key as written.
    pub key: String,
    /// The key MetalLB reads that the writer most likely meant, with the same prefix; empty when no
    /// read key is close (see [`expected_key`]).
    pub expected_key: String,
    /// The value as written.
    pub value: String,
}

/// A LoadBalancer Service, as MetalLB sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// `namespace/name`.
    pub name: ServiceName,
    /// Assigned IPs (`status.loadBalancer.ingress[].ip`); empty while pending.
    pub assigned: Vec<IpAddr>,
    /// The IPs it asked for; empty: none in particular.
    pub requested: Vec<IpAddr>,
    /// Where `requested` came from; `None` when nothing was requested.
    pub requested_from: Option<RequestSource>,
    /// The pool it asks for (`address-pool`).
    pub pool: Option<String>,
    /// The pool MetalLB took its IPs from (`ip-allocated-from-pool`).
    pub allocated_from_pool: Option<String>,
    /// `allow-shared-ip`: Services with the same key may share an IP.
    pub sharing_key: Option<String>,
    /// MetalLB-looking annotations that MetalLB ignores, in key order.
    pub ignored: Vec<IgnoredAnnotation>,
}

impl ServiceInfo {
    /// Whether MetalLB has not (yet) assigned an IP.
    pub fn is_pending(&self) -> bool {
        self.assigned.is_empty()
    }

    /// A Service; `None` unless `spec.type` is `LoadBalancer`.
    ///
    /// Requests follow MetalLB's order: `metallb.io/loadBalancerIPs` if that key is present, else
    /// `metallb.universe.tf/loadBalancerIPs`, and when the chosen value is empty,
    /// `spec.loadBalancerIP`. Without any, the IPs of an ignored annotation whose value is IP
    /// addresses stand in, so drift can still compare against what the user meant.
    pub fn from_service(svc: &Service) -> Converted<ServiceInfo> {
        let spec = svc.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) != Some("LoadBalancer") {
            return Converted::none();
        }
        let object = ObjectName::of("Service", svc).to_string();
        let mut warnings = Vec::new();
        let empty = BTreeMap::new();
        let ann = svc.metadata.annotations.as_ref().unwrap_or(&empty);

        let assigned = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            // An ingress with only a hostname comes from another load balancer; there is no IP to watch.
            .filter_map(|i| i.ip.as_deref().filter(|ip| !ip.is_empty()))
            .filter_map(|ip| parse_ip(&object, "status.loadBalancer.ingress[].ip", ip, &mut warnings))
            .collect();

        let read = |name: &str| {
            ann.get(&format!("{PREFIX_METALLB_IO}{name}")).map(|v| (RequestSource::MetallbIo, v)).or_else(
                || ann.get(&format!("{PREFIX_UNIVERSE_TF}{name}")).map(|v| (RequestSource::UniverseTf, v)),
            )
        };
        let spec_ip = spec.and_then(|s| s.load_balancer_ip.as_deref()).filter(|s| !s.is_empty());
        let annotated = read("loadBalancerIPs").filter(|(_, v)| !v.is_empty());
        let (mut requested, mut requested_from) = match (annotated, spec_ip) {
            (Some((source, value)), spec_ip) => {
                if spec_ip.is_some() {
                    warnings.push(Warning::Suspicious {
                        object: object.clone(),
                        reason: format!(
                            "both {} and spec.loadBalancerIP are set: MetalLB refuses to allocate; l2watch \
                             takes the annotation as the request",
                            source.as_str()
                        ),
                    });
                }
                let ips = value
                    .split(',')
                    .filter_map(|ip| parse_ip(&object, source.as_str(), ip, &mut warnings))
                    .collect();
                (ips, Some(source))
            }
            (None, Some(ip)) => {
                let ips = parse_ip(&object, "spec.loadBalancerIP", ip, &mut warnings).into_iter().collect();
                (ips, Some(RequestSource::SpecLoadBalancerIp))
            }
            (None, None) => (Vec::new(), None),
        };

        let ignored: Vec<IgnoredAnnotation> = ann
            .iter()
            .filter_map(|(key, value)| {
                let (prefix, name) = split_metallb_key(key)?;
                if READ_ANNOTATIONS.contains(&name) {
                    return None;
                }
                Some(IgnoredAnnotation {
                    key: key.clone(),
                    expected_key: expected_key(prefix, name),
                    value: value.clone(),
                })
            })
            .collect();
        if requested_from.is_none()
            && let Some((key, ips)) = ignored.iter().find_map(|i| ip_list(&i.value).map(|ips| (&i.key, ips)))
        {
            requested = ips;
            requested_from = Some(RequestSource::IgnoredAnnotation(key.clone()));
        }

        let info = ServiceInfo {
            name: ServiceName {
                namespace: svc.metadata.namespace.clone().unwrap_or_default(),
                name: svc.metadata.name.clone().unwrap_or_default(),
            },
            assigned,
            requested,
            requested_from,
            pool: read("address-pool").map(|(_, v)| v.clone()).filter(|v| !v.is_empty()),
            allocated_from_pool: read("ip-allocated-from-pool")
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty()),
            sharing_key: read("allow-shared-ip").map(|(_, v)| v.clone()).filter(|v| !v.is_empty()),
            ignored,
        };
        Converted::new(Some(info), warnings)
    }
}

fn parse_ip(object: &str, field: &str, value: &str, warnings: &mut Vec<Warning>) -> Option<IpAddr> {
    match value.trim().parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(e) => {
            warnings.push(Warning::BadValue {
                object: object.to_owned(),
                field: field.to_owned(),
                value: value.to_owned(),
                reason: e.to_string(),
            });
            None
        }
    }
}

/// `Some` when every comma-separated part of `value` is an IP address (and there is one).
fn ip_list(value: &str) -> Option<Vec<IpAddr>> {
    let ips: Vec<IpAddr> =
        value.split(',').map(|p| p.trim().parse::<IpAddr>()).collect::<Result<_, _>>().ok()?;
    (!ips.is_empty()).then_some(ips)
}

fn split_metallb_key(key: &str) -> Option<(&'static str, &str)> {
    [PREFIX_METALLB_IO, PREFIX_UNIVERSE_TF]
        .into_iter()
        .find_map(|prefix| key.strip_prefix(prefix).map(|name| (prefix, name)))
}

/// The read key (same prefix) that an ignored annotation name most likely meant, or an empty
/// string when none is close.
///
/// Names are compared lowercased and with everything but letters and digits removed, so
/// `loadBalancer-ips`, `LoadBalancerIPs` and `load_balancer_ips` all mean `loadBalancerIPs`. Failing
/// that, the read name with the smallest edit distance wins if the distance is at most a quarter of
/// its length (`loadBalancerIP`, `address-pools`); anything further away (`layer2-interface`) gets
/// an empty expected key rather than a misleading guess.
pub fn expected_key(prefix: &str, name: &str) -> String {
    let wanted = squash(name);
    READ_ANNOTATIONS
        .iter()
        .map(|read| {
            let r = squash(read);
            (edit_distance(&wanted, &r), r.len(), *read)
        })
        .min_by_key(|(distance, _, _)| *distance)
        .filter(|(distance, len, _)| distance * 4 <= *len)
        .map(|(_, _, read)| format!("{prefix}{read}"))
        .unwrap_or_default()
}

fn squash(s: &str) -> Vec<u8> {
    s.bytes().filter(u8::is_ascii_alphanumeric).map(|b| b.to_ascii_lowercase()).collect()
}

/// Levenshtein distance. Annotation names are at most 63 bytes, so the quadratic table is tiny.
fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The reason of the speaker's Event naming the announcing node.
pub const REASON_NODE_ASSIGNED: &str = "nodeAssigned";

/// A speaker's `nodeAssigned` Event: a node won the announcement of a Service at some time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAssigned {
    /// The Service.
    pub service: ServiceName,
    /// The node that announced it.
    pub node: String,
    /// The protocol named in the message (MetalLB 0.13.2+); `None` for the <= 0.12 message.
    pub protocol: Option<String>,
    /// When it was last seen: the latest of `lastTimestamp`, `eventTime`,
    /// `series.lastObservedTime` and `firstTimestamp` that exist (then `creationTimestamp`).
    pub at: Option<Timestamp>,
    /// The Event's own `namespace` and `name`, to match its deletion.
    pub event: (String, String),
    /// The Event's `resourceVersion`, to order Events stamped in the same second.
    pub resource_version: Option<u64>,
}

impl NodeAssigned {
    /// A `nodeAssigned` Event on a Service whose message names a node; `None` for any other Event.
    pub fn from_event(ev: &Event) -> Option<NodeAssigned> {
        if ev.reason.as_deref() != Some(REASON_NODE_ASSIGNED)
            || ev.involved_object.kind.as_deref() != Some("Service")
        {
            return None;
        }
        let (node, protocol) = announced_node(ev.message.as_deref()?)?;
        let event_namespace = ev.metadata.namespace.clone().unwrap_or_default();
        let service = ServiceName {
            namespace: ev.involved_object.namespace.clone().unwrap_or_else(|| event_namespace.clone()),
            name: ev.involved_object.name.clone()?,
        };
        let at = [
            ev.last_timestamp.as_ref().map(|t| t.0),
            ev.event_time.as_ref().map(|t| t.0),
            ev.series.as_ref().and_then(|s| s.last_observed_time.as_ref()).map(|t| t.0),
            ev.first_timestamp.as_ref().map(|t| t.0),
        ]
        .into_iter()
        .flatten()
        .max()
        .or_else(|| ev.metadata.creation_timestamp.as_ref().map(|t| t.0));
        Some(NodeAssigned {
            service,
            node: node.to_owned(),
            protocol: protocol.map(str::to_owned),
            at,
            event: (event_namespace, ev.metadata.name.clone().unwrap_or_default()),
            resource_version: ev.metadata.resource_version.as_deref().and_then(|rv| rv.parse().ok()),
        })
    }

    /// Whether it is about layer2 (the <= 0.12 message only existed for layer2).
    pub fn is_layer2(&self) -> bool {
        self.protocol.as_deref().is_none_or(|p| p == "layer2")
    }

    /// Whether this Event is newer than `other`: by time, then by resourceVersion (etcd revisions
    /// grow, and Events carry only second resolution), missing values being oldest.
    pub fn newer_than(&self, other: &NodeAssigned) -> bool {
        (self.at, self.resource_version) > (other.at, other.resource_version)
    }
}

/// The node (and protocol, when named) in a `nodeAssigned` message: `announcing from node "<node>"`
/// with ` with protocol "<protocol>"` since MetalLB 0.13.2, possibly prefixed by the event
/// aggregator's `(combined from similar events): `.
pub fn announced_node(message: &str) -> Option<(&str, Option<&str>)> {
    let message = message.trim();
    let message = message.strip_prefix("(combined from similar events): ").unwrap_or(message);
    let (node, rest) = message.strip_prefix("announcing from node \"")?.split_once('"')?;
    if node.is_empty() {
        return None;
    }
    if rest.is_empty() {
        return Some((node, None));
    }
    let protocol = rest.strip_prefix(" with protocol \"")?.strip_suffix('"')?;
    Some((node, Some(protocol)))
}

// ---------------------------------------------------------------------------------------------------
// ConfigMaps

/// Whether kube-proxy makes every node answer ARP for every Service IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictArp {
    /// IPVS mode with `strictARP` false or unset: every node answers ARP for every Service IP,
    /// which MetalLB layer2 cannot work with.
    Off,
    /// IPVS mode with `strictARP: true`.
    On,
    /// A mode that does not put Service IPs on a node interface, so `strictARP` does not matter.
    /// `mode` is as written; an empty or missing mode is reported as `iptables`, kube-proxy's
    /// default on Linux.
    NotNeeded {
        /// The proxy mode.
        mode: String,
    },
    /// No kube-proxy ConfigMap (kube-proxy replaced, or not readable), or one that does not parse.
    Unknown,
}

impl StrictArp {
    /// `Some(true)` when fine (on, or not needed), `Some(false)` when IPVS runs without it, `None`
    /// when unknown: the value of `l2watch_kube_proxy_strict_arp`.
    pub fn fine(&self) -> Option<bool> {
        match self {
            StrictArp::Off => Some(false),
            StrictArp::On | StrictArp::NotNeeded { .. } => Some(true),
            StrictArp::Unknown => None,
        }
    }

    /// As the inventory's neutral [`KubeProxy`]; `None` when unknown. Outside IPVS the strictARP
    /// value does not matter and is given as `false`.
    pub fn kube_proxy(&self) -> Option<KubeProxy> {
        let (mode, strict_arp) = match self {
            StrictArp::Off => ("ipvs", false),
            StrictArp::On => ("ipvs", true),
            StrictArp::NotNeeded { mode } => (mode.as_str(), false),
            StrictArp::Unknown => return None,
        };
        Some(KubeProxy { mode: mode.into(), strict_arp })
    }

    /// The proxy mode, for the `mode` label; `None` when unknown.
    pub fn mode(&self) -> Option<&str> {
        match self {
            StrictArp::Off | StrictArp::On => Some("ipvs"),
            StrictArp::NotNeeded { mode } => Some(mode),
            StrictArp::Unknown => None,
        }
    }

    /// kube-proxy's ConfigMap (`kube-system/kube-proxy`, key `config.conf`, a
    /// KubeProxyConfiguration in YAML). Only mode `ipvs` binds Service IPs to a node interface
    /// (`kube-ipvs0`); every other mode, known or not, is [`StrictArp::NotNeeded`].
    pub fn from_kube_proxy(cm: &ConfigMap) -> Converted<StrictArp> {
        #[derive(Deserialize)]
        struct Conf {
            #[serde(default)]
            mode: Option<String>,
            #[serde(default)]
            ipvs: Option<Ipvs>,
        }
        #[derive(Deserialize)]
        struct Ipvs {
            #[serde(default, rename = "strictARP")]
            strict_arp: Option<bool>,
        }
        let object = ObjectName::of("ConfigMap", cm).to_string();
        let unknown = |reason: String| {
            Converted::new(
                Some(StrictArp::Unknown),
                vec![Warning::Unreadable { object: object.clone(), reason }],
            )
        };
        let Some(text) = cm.data.as_ref().and_then(|d| d.get(KUBE_PROXY_KEY)) else {
            return unknown(format!("no {KUBE_PROXY_KEY:?} key: kube-proxy mode unknown"));
        };
        let conf: Conf = match serde_saphyr::from_str(text) {
            Ok(c) => c,
            Err(e) => return unknown(format!("{KUBE_PROXY_KEY}: {e}")),
        };
        let mode = conf.mode.unwrap_or_default();
        let state = match mode.as_str() {
            "ipvs" if conf.ipvs.and_then(|i| i.strict_arp).unwrap_or(false) => StrictArp::On,
            "ipvs" => StrictArp::Off,
            "" => StrictArp::NotNeeded { mode: "iptables".into() },
            _ => StrictArp::NotNeeded { mode },
        };
        Converted::new(Some(state), Vec::new())
    }
}

/// kube-proxy's ConfigMap: namespace.
pub const KUBE_PROXY_NAMESPACE: &str = "kube-system";
/// kube-proxy's ConfigMap: name.
pub const KUBE_PROXY_NAME: &str = "kube-proxy";
/// kube-proxy's ConfigMap: the key holding its configuration.
pub const KUBE_PROXY_KEY: &str = "config.conf";
/// The legacy MetalLB ConfigMap's name (MetalLB <= 0.12).
pub const LEGACY_CONFIG_NAME: &str = "config";
/// The legacy MetalLB ConfigMap's key.
pub const LEGACY_CONFIG_KEY: &str = "config";

/// The pools of MetalLB's legacy ConfigMap (<= 0.12, key `config`, YAML `address-pools[]`). Pools of
/// every protocol are returned; [`PoolInfo::legacy_layer2`] tells the layer2 ones.
pub fn legacy_pools(cm: &ConfigMap) -> Converted<Vec<PoolInfo>> {
    #[derive(Deserialize, Default)]
    struct Conf {
        #[serde(default, rename = "address-pools")]
        address_pools: Vec<Pool>,
    }
    #[derive(Deserialize)]
    struct Pool {
        #[serde(default)]
        name: String,
        #[serde(default)]
        protocol: String,
        #[serde(default)]
        addresses: Vec<String>,
        #[serde(default, rename = "auto-assign")]
        auto_assign: Option<bool>,
    }
    let object = ObjectName::of("ConfigMap", cm).to_string();
    let Some(text) = cm.data.as_ref().and_then(|d| d.get(LEGACY_CONFIG_KEY)) else {
        return Converted::skipped(Warning::Unreadable {
            object,
            reason: format!("no {LEGACY_CONFIG_KEY:?} key"),
        });
    };
    // An empty document is a valid (empty) MetalLB config.
    let conf: Conf = if text.trim().is_empty() {
        Conf::default()
    } else {
        match serde_saphyr::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                return Converted::skipped(Warning::Unreadable {
                    object,
                    reason: format!("{LEGACY_CONFIG_KEY}: {e}"),
                });
            }
        }
    };
    let namespace = cm.metadata.namespace.clone().unwrap_or_default();
    let mut warnings = Vec::new();
    let pools = conf
        .address_pools
        .into_iter()
        .map(|p| PoolInfo {
            ranges: parse_ranges(
                &object,
                &format!("address-pools[{}].addresses", p.name),
                &p.addresses,
                &mut warnings,
            ),
            name: p.name,
            namespace: namespace.clone(),
            auto_assign: p.auto_assign.unwrap_or(true),
            labels: BTreeMap::new(),
            origin: PoolOrigin::LegacyConfigMap { protocol: p.protocol },
        })
        .collect();
    Converted::new(Some(pools), warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::kubernetes::fixtures::one;
    use serde_json::json;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn svc_name() -> ServiceName {
        "web/nginx".parse().unwrap()
    }

    fn ok<T>(c: Converted<T>) -> T {
        assert!(c.warnings.is_empty(), "unexpected warnings: {:?}", c.warnings);
        c.value.expect("a value")
    }

    fn ranges(p: &PoolInfo) -> Vec<String> {
        p.ranges.iter().map(ToString::to_string).collect()
    }

    /// A new fixture must get a test here (or in the index tests) before it is silently unused.
    #[test]
    fn every_yaml_fixture_is_covered() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/metallb");
        let mut found: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        found.sort();
        let covered = [
            "01-servicel2status.yaml",
            "01b-servicel2status-with-interfaces.yaml",
            "01c-servicel2status-no-status-yet.yaml",
            "02-servicel2status-v0.14.4.yaml",
            "03-ipaddresspool.yaml",
            "03b-ipaddresspool-v0.13-minimal.yaml",
            "04-l2advertisement.yaml",
            "04b-l2advertisement-minimal.yaml",
            "05-service.yaml",
            "05b-service-v0.13-legacy-annotations.yaml",
            "05c-service-drift-requested-differs.yaml",
            "05d-service-pending-requested-ip-not-in-pool.yaml",
            "06-event-nodeassigned.yaml",
            "06b-event-nodeassigned-legacy-v0.12.yaml",
            "07-event-ipallocated.yaml",
            "09-legacy-configmap.yaml",
            "10-leases-cilium-kubevip.yaml",
            "11-kube-proxy-configmap-ipvs-no-strictarp.yaml",
            "11b-kube-proxy-configmap-ipvs-strictarp.yaml",
            "11c-kube-proxy-configmap-iptables.yaml",
        ];
        assert_eq!(found, covered);
    }

    #[test]
    fn service_l2_status_both_layouts_and_no_status_yet() {
        let current = ok(L2StatusInfo::from_dynamic(&one("01-servicel2status.yaml")));
        assert_eq!(
            current,
            L2StatusInfo {
                service: svc_name(),
                node: "worker-2".into(),
                node_from_label: false,
                interfaces: vec![],
                layout: L2StatusLayout::V0_14_6,
            }
        );
        let with_if = ok(L2StatusInfo::from_dynamic(&one("01b-servicel2status-with-interfaces.yaml")));
        assert_eq!(with_if.interfaces, ["eth0"]);
        assert_eq!((with_if.service, with_if.node.as_str()), (svc_name(), "worker-2"));

        let fresh = ok(L2StatusInfo::from_dynamic(&one("01c-servicel2status-no-status-yet.yaml")));
        assert_eq!(
            (fresh.service, fresh.node.as_str(), fresh.node_from_label),
            (svc_name(), "worker-2", true)
        );
        assert_eq!(fresh.layout, L2StatusLayout::V0_14_6);

        let old = ok(L2StatusInfo::from_dynamic(&one("02-servicel2status-v0.14.4.yaml")));
        assert_eq!(
            old,
            L2StatusInfo {
                service: svc_name(),
                node: "worker-2".into(),
                node_from_label: false,
                interfaces: vec![],
                layout: L2StatusLayout::V0_14_4,
            }
        );
    }

    #[test]
    fn service_l2_status_status_beats_labels_and_unjoinable_is_warned() {
        let mut obj: DynamicObject = one("01-servicel2status.yaml");
        obj.data["status"]["node"] = json!("worker-3");
        assert_eq!(ok(L2StatusInfo::from_dynamic(&obj)).node, "worker-3");

        let mut orphan: DynamicObject = one("01c-servicel2status-no-status-yet.yaml");
        orphan.metadata.labels = None;
        let c = L2StatusInfo::from_dynamic(&orphan);
        assert!(c.value.is_none());
        assert!(matches!(c.warnings.as_slice(), [Warning::Unreadable { .. }]), "{:?}", c.warnings);

        let mut nodeless: DynamicObject = one("01c-servicel2status-no-status-yet.yaml");
        nodeless.metadata.labels.as_mut().unwrap().remove(LABEL_NODE);
        assert!(L2StatusInfo::from_dynamic(&nodeless).value.is_none());
    }

    #[test]
    fn ip_address_pools() {
        let first = ok(PoolInfo::from_ip_address_pool(&one("03-ipaddresspool.yaml")));
        assert_eq!((first.name.as_str(), first.namespace.as_str()), ("first-pool", "metallb-system"));
        assert_eq!(
            ranges(&first),
            [
                "192.168.1.240-192.168.1.250",
                "192.168.10.0-192.168.10.15",
                "fc00:f853:ccd:e799::-fc00:f853:ccd:e799::f"
            ]
        );
        assert!(first.auto_assign);
        assert_eq!(first.origin, PoolOrigin::IpAddressPool);
        assert_eq!(first.legacy_layer2(), None);

        let expensive = ok(PoolInfo::from_ip_address_pool(&one("03b-ipaddresspool-v0.13-minimal.yaml")));
        assert_eq!(ranges(&expensive), ["42.176.25.64-42.176.25.67"]);
        assert!(!expensive.auto_assign);
    }

    #[test]
    fn pool_with_a_bad_entry_keeps_the_rest() {
        let mut obj: DynamicObject = one("03b-ipaddresspool-v0.13-minimal.yaml");
        obj.data["spec"]["addresses"] = json!(["10.0.0.0/33", "10.1.0.0/30"]);
        obj.data["spec"].as_object_mut().unwrap().remove("autoAssign");
        let c = PoolInfo::from_ip_address_pool(&obj);
        assert!(matches!(c.warnings.as_slice(), [Warning::BadValue { value, .. }] if value == "10.0.0.0/33"));
        let pool = c.value.unwrap();
        assert_eq!(ranges(&pool), ["10.1.0.0-10.1.0.3"]);
        assert!(pool.auto_assign, "autoAssign defaults to true");

        obj.data["spec"]["addresses"] = json!("10.1.0.0/30");
        let c = PoolInfo::from_ip_address_pool(&obj);
        assert!(c.value.is_none());
        assert!(matches!(c.warnings.as_slice(), [Warning::Unreadable { .. }]));
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn pool(name: &str, pool_labels: &[(&str, &str)]) -> PoolInfo {
        PoolInfo {
            name: name.into(),
            namespace: "metallb-system".into(),
            ranges: vec![],
            auto_assign: true,
            labels: labels(pool_labels),
            origin: PoolOrigin::IpAddressPool,
        }
    }

    #[test]
    fn l2_advertisement_every_field() {
        let ad = ok(L2AdvertisementInfo::from_dynamic(&one("04-l2advertisement.yaml")));
        assert_eq!((ad.name.as_str(), ad.namespace.as_str()), ("lan", "metallb-system"));
        assert_eq!(ad.pools, ["first-pool"]);
        assert!(ad.has_pool_selectors());
        assert_eq!(ad.node_selectors.len(), 2);
        assert_eq!(ad.interfaces, ["eth0"]);
        assert!(ad.selects(&labels(&[("kubernetes.io/hostname", "worker-2")])));
        assert!(ad.selects(&labels(&[("kubernetes.io/hostname", "worker-3")])));
        assert!(!ad.selects(&labels(&[("kubernetes.io/hostname", "worker-1")])));
        assert!(ad.advertises(&pool("first-pool", &[])));
        assert!(ad.advertises(&pool("other", &[("announce", "lan")])));
        assert!(!ad.advertises(&pool("other", &[("announce", "wan")])));
        let elsewhere = PoolInfo { namespace: "other-metallb".into(), ..pool("first-pool", &[]) };
        assert!(!ad.advertises(&elsewhere));
    }

    #[test]
    fn l2_advertisement_empty_spec_is_everything() {
        let ad = ok(L2AdvertisementInfo::from_dynamic(&one("04b-l2advertisement-minimal.yaml")));
        assert_eq!(ad.name, "example");
        assert!(ad.pools.is_empty() && !ad.has_pool_selectors() && ad.interfaces.is_empty());
        assert!(ad.selects(&labels(&[])));
        assert!(ad.advertises(&pool("anything", &[])));
        let legacy =
            PoolInfo { origin: PoolOrigin::LegacyConfigMap { protocol: "layer2".into() }, ..pool("x", &[]) };
        assert!(!ad.advertises(&legacy));
    }

    #[test]
    fn l2_advertisement_unknown_operator_is_warned() {
        let mut obj: DynamicObject = one("04b-l2advertisement-minimal.yaml");
        obj.data["spec"] = json!({"nodeSelectors": [{"matchExpressions": [{"key": "a", "operator": "in", "values": ["b"]}]}]});
        let c = L2AdvertisementInfo::from_dynamic(&obj);
        assert!(matches!(c.warnings.as_slice(), [Warning::Suspicious { .. }]), "{:?}", c.warnings);
        assert!(!c.value.unwrap().selects(&labels(&[("a", "b")])));
    }

    #[test]
    fn services_from_fixtures() {
        let s = ok(ServiceInfo::from_service(&one("05-service.yaml")));
        assert_eq!(s.name, svc_name());
        assert_eq!(s.assigned, [ip("192.168.1.240")]);
        assert_eq!(s.requested, [ip("192.168.1.240")]);
        assert_eq!(s.requested_from, Some(RequestSource::MetallbIo));
        assert_eq!(s.allocated_from_pool.as_deref(), Some("first-pool"));
        assert_eq!((s.pool.as_deref(), s.sharing_key.as_deref()), (None, None));
        assert!(s.ignored.is_empty() && !s.is_pending());

        let legacy = ok(ServiceInfo::from_service(&one("05b-service-v0.13-legacy-annotations.yaml")));
        assert_eq!(legacy.requested, [ip("192.168.1.240")]);
        assert_eq!(legacy.requested_from, Some(RequestSource::SpecLoadBalancerIp));
        assert_eq!(legacy.pool.as_deref(), Some("first-pool"));
        assert_eq!(legacy.allocated_from_pool.as_deref(), Some("first-pool"));

        let drift = ok(ServiceInfo::from_service(&one("05c-service-drift-requested-differs.yaml")));
        assert_eq!(
            (drift.assigned.as_slice(), drift.requested.as_slice()),
            (&[ip("192.168.1.240")][..], &[ip("192.168.1.241")][..])
        );

        let pending =
            ok(ServiceInfo::from_service(&one("05d-service-pending-requested-ip-not-in-pool.yaml")));
        assert!(pending.is_pending());
        assert_eq!(pending.requested, [ip("192.168.1.99")]);
        assert_eq!(pending.requested_from, Some(RequestSource::MetallbIo));
    }

    fn service(annotations: serde_json::Value, spec_ip: Option<&str>) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "app", "namespace": "ns", "annotations": annotations},
            "spec": {"type": "LoadBalancer", "loadBalancerIP": spec_ip},
        }))
        .unwrap()
    }

    #[test]
    fn requested_ip_precedence() {
        let both = json!({
            "metallb.io/loadBalancerIPs": "10.0.0.1",
            "metallb.universe.tf/loadBalancerIPs": "10.0.0.2",
        });
        let s = ok(ServiceInfo::from_service(&service(both, None)));
        assert_eq!((s.requested, s.requested_from), (vec![ip("10.0.0.1")], Some(RequestSource::MetallbIo)));

        let old = json!({"metallb.universe.tf/loadBalancerIPs": "10.0.0.2, fd00::2"});
        let s = ok(ServiceInfo::from_service(&service(old, None)));
        assert_eq!(s.requested, [ip("10.0.0.2"), ip("fd00::2")]);
        assert_eq!(s.requested_from, Some(RequestSource::UniverseTf));

        let spec = ok(ServiceInfo::from_service(&service(json!({}), Some("10.0.0.3"))));
        assert_eq!(
            (spec.requested, spec.requested_from),
            (vec![ip("10.0.0.3")], Some(RequestSource::SpecLoadBalancerIp))
        );

        // MetalLB takes the metallb.io key when present, even empty, and then falls to the spec.
        let empty =
            json!({"metallb.io/loadBalancerIPs": "", "metallb.universe.tf/loadBalancerIPs": "10.0.0.2"});
        let s = ok(ServiceInfo::from_service(&service(empty, Some("10.0.0.3"))));
        assert_eq!(s.requested_from, Some(RequestSource::SpecLoadBalancerIp));

        // MetalLB refuses both at once; l2watch says so and keeps the annotation.
        let c = ServiceInfo::from_service(&service(
            json!({"metallb.io/loadBalancerIPs": "10.0.0.1"}),
            Some("10.0.0.3"),
        ));
        assert!(matches!(c.warnings.as_slice(), [Warning::Suspicious { .. }]), "{:?}", c.warnings);
        assert_eq!(c.value.unwrap().requested, [ip("10.0.0.1")]);

        let c = ServiceInfo::from_service(&service(
            json!({"metallb.io/loadBalancerIPs": "10.0.0.1,10.0.0"}),
            None,
        ));
        assert!(matches!(c.warnings.as_slice(), [Warning::BadValue { .. }]), "{:?}", c.warnings);
        assert_eq!(c.value.unwrap().requested, [ip("10.0.0.1")]);

        let none = ok(ServiceInfo::from_service(&service(json!({}), None)));
        assert!(none.requested.is_empty() && none.requested_from.is_none());
    }

    #[test]
    fn ignored_annotations_and_their_intended_ips() {
        let ann = json!({
            "metallb.universe.tf/loadBalancer-ips": "192.168.1.50",
            "metallb.io/address-pools": "first-pool",
            "metallb.io/layer2-interface": "eth0",
            "metallb.io/allow-shared-ip": "key-1",
            "example.com/loadBalancer-ips": "10.9.9.9",
        });
        let s = ok(ServiceInfo::from_service(&service(ann, None)));
        let ignored: Vec<(&str, &str)> =
            s.ignored.iter().map(|i| (i.key.as_str(), i.expected_key.as_str())).collect();
        assert_eq!(
            ignored,
            [
                ("metallb.io/address-pools", "metallb.io/address-pool"),
                ("metallb.io/layer2-interface", ""),
                ("metallb.universe.tf/loadBalancer-ips", "metallb.universe.tf/loadBalancerIPs"),
            ]
        );
        assert_eq!(s.requested, [ip("192.168.1.50")]);
        let from = s.requested_from.unwrap();
        assert_eq!(from, RequestSource::IgnoredAnnotation("metallb.universe.tf/loadBalancer-ips".into()));
        assert!(!from.is_honoured());
        assert_eq!(s.sharing_key.as_deref(), Some("key-1"));
        assert_eq!(s.pool, None, "the misspelt pool key is not read");

        // A real request wins over the ignored one.
        let ann = json!({"metallb.universe.tf/loadBalancer-IPs": "192.168.1.50", "metallb.io/loadBalancerIPs": "192.168.1.60"});
        let s = ok(ServiceInfo::from_service(&service(ann, None)));
        assert_eq!(
            (s.requested, s.requested_from),
            (vec![ip("192.168.1.60")], Some(RequestSource::MetallbIo))
        );
        assert_eq!(s.ignored[0].expected_key, "metallb.universe.tf/loadBalancerIPs");
    }

    #[test]
    fn expected_keys() {
        for (name, expected) in [
            ("loadBalancer-ips", "loadBalancerIPs"),
            ("loadbalancerips", "loadBalancerIPs"),
            ("load_balancer_ips", "loadBalancerIPs"),
            ("loadBalancerIP", "loadBalancerIPs"),
            ("addresspool", "address-pool"),
            ("allow-shared-ips", "allow-shared-ip"),
            ("ip-allocated-from", "ip-allocated-from-pool"),
        ] {
            assert_eq!(expected_key("metallb.io/", name), format!("metallb.io/{expected}"), "{name}");
        }
        for far in ["layer2-interface", "pool", "lb-ips", ""] {
            assert_eq!(expected_key("metallb.io/", far), "", "{far}");
        }
    }

    #[test]
    fn only_load_balancers() {
        let mut s = service(json!({}), None);
        s.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        assert_eq!(ServiceInfo::from_service(&s), Converted::none());
    }

    #[test]
    fn node_assigned_events() {
        let ev = NodeAssigned::from_event(&one("06-event-nodeassigned.yaml")).unwrap();
        assert_eq!(
            (ev.service.clone(), ev.node.as_str(), ev.protocol.as_deref()),
            (svc_name(), "worker-2", Some("layer2"))
        );
        assert_eq!(ev.at, Some("2025-03-10T12:00:05Z".parse().unwrap()));
        assert_eq!(ev.event, ("web".into(), "nginx.182b6f2d493f6eb0".into()));
        assert_eq!(ev.resource_version, Some(184610));
        assert!(ev.is_layer2());

        let old = NodeAssigned::from_event(&one("06b-event-nodeassigned-legacy-v0.12.yaml")).unwrap();
        assert_eq!((old.node.as_str(), old.protocol.as_deref()), ("worker-2", None));
        assert!(old.is_layer2());

        assert_eq!(NodeAssigned::from_event(&one("07-event-ipallocated.yaml")), None);
    }

    #[test]
    fn node_assigned_messages() {
        assert_eq!(
            announced_node(r#"announcing from node "w1" with protocol "layer2""#),
            Some(("w1", Some("layer2")))
        );
        assert_eq!(announced_node(r#"announcing from node "w1""#), Some(("w1", None)));
        assert_eq!(
            announced_node(
                r#"(combined from similar events): announcing from node "w3" with protocol "layer2""#
            ),
            Some(("w3", Some("layer2")))
        );
        assert_eq!(
            announced_node(r#"(combined from similar events): announcing from node "w3""#),
            Some(("w3", None))
        );
        for bad in [
            r#"announcing from node """#,
            "announcing from node w1",
            r#"announcing from node "w1" via bgp"#,
            "",
        ] {
            assert_eq!(announced_node(bad), None, "{bad}");
        }
    }

    #[test]
    fn node_assigned_time_is_the_latest_that_exists() {
        let mut ev: Event = one("06-event-nodeassigned.yaml");
        ev.last_timestamp = None;
        ev.first_timestamp = None;
        assert_eq!(
            NodeAssigned::from_event(&ev).unwrap().at,
            Some("2025-03-10T11:58:41Z".parse().unwrap()),
            "creation"
        );
        let mut ev: Event = one("06-event-nodeassigned.yaml");
        ev.last_timestamp = None;
        ev.event_time = serde_json::from_value(json!("2025-03-10T11:59:00.000001Z")).unwrap();
        ev.series =
            serde_json::from_value(json!({"count": 4, "lastObservedTime": "2025-03-10T12:30:00.000000Z"}))
                .unwrap();
        assert_eq!(NodeAssigned::from_event(&ev).unwrap().at, Some("2025-03-10T12:30:00Z".parse().unwrap()));
        let mut bgp = ev.clone();
        bgp.message = Some(r#"announcing from node "w1" with protocol "bgp""#.into());
        assert!(!NodeAssigned::from_event(&bgp).unwrap().is_layer2());
        let mut pod = ev;
        pod.involved_object.kind = Some("Pod".into());
        assert_eq!(NodeAssigned::from_event(&pod), None);
    }

    #[test]
    fn nodes() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "worker-1", "labels": {"kubernetes.io/hostname": "worker-1"}},
            "status": {
                "addresses": [
                    {"type": "Hostname", "address": "worker-1"},
                    {"type": "InternalIP", "address": "192.168.1.11"},
                    {"type": "InternalIP", "address": "fd00::11"},
                    {"type": "ExternalIP", "address": "203.0.113.11"},
                    {"type": "ExternalIP", "address": "not-an-ip"},
                ],
                "conditions": [
                    {"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "True"},
                ],
            },
        }))
        .unwrap();
        let c = NodeInfo::from_node(&node);
        assert!(matches!(c.warnings.as_slice(), [Warning::BadValue { value, .. }] if value == "not-an-ip"));
        let info = c.value.unwrap();
        assert_eq!(info.name, "worker-1");
        assert_eq!(info.addresses, [ip("192.168.1.11"), ip("fd00::11"), ip("203.0.113.11")]);
        assert!(info.ready);
        assert_eq!(info.labels["kubernetes.io/hostname"], "worker-1");

        let mut not_ready = node;
        not_ready.status.as_mut().unwrap().conditions.as_mut().unwrap()[1].status = "Unknown".into();
        assert!(!NodeInfo::from_node(&not_ready).value.unwrap().ready);
    }

    #[test]
    fn legacy_config_map() {
        let pools = ok(legacy_pools(&one("09-legacy-configmap.yaml")));
        let summary: Vec<(&str, Vec<String>, bool, Option<bool>)> =
            pools.iter().map(|p| (p.name.as_str(), ranges(p), p.auto_assign, p.legacy_layer2())).collect();
        assert_eq!(
            summary,
            [
                ("default", vec!["192.168.1.240-192.168.1.250".to_owned()], true, Some(true)),
                ("expensive", vec!["42.176.25.64-42.176.25.67".to_owned()], false, Some(true)),
            ]
        );
        assert!(pools.iter().all(|p| p.namespace == "metallb-system"));
    }

    #[test]
    fn legacy_config_map_bgp_and_broken() {
        let mut cm: ConfigMap = one("09-legacy-configmap.yaml");
        let data = cm.data.as_mut().unwrap();
        data.insert(
            "config".into(),
            "address-pools:\n- name: bgp\n  protocol: bgp\n  addresses: [10.0.0.0/24, nonsense]\n".into(),
        );
        let c = legacy_pools(&cm);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        let pools = c.value.unwrap();
        assert_eq!(pools[0].origin, PoolOrigin::LegacyConfigMap { protocol: "bgp".into() });
        assert_eq!(pools[0].legacy_layer2(), Some(false));
        assert_eq!(ranges(&pools[0]), ["10.0.0.0-10.0.0.255"]);

        cm.data.as_mut().unwrap().insert("config".into(), "address-pools: [".into());
        let c = legacy_pools(&cm);
        assert!(c.value.is_none() && matches!(c.warnings.as_slice(), [Warning::Unreadable { .. }]));
    }

    #[test]
    fn kube_proxy_fixtures() {
        let off = ok(StrictArp::from_kube_proxy(&one("11-kube-proxy-configmap-ipvs-no-strictarp.yaml")));
        assert_eq!((off.clone(), off.fine(), off.mode()), (StrictArp::Off, Some(false), Some("ipvs")));
        let on = ok(StrictArp::from_kube_proxy(&one("11b-kube-proxy-configmap-ipvs-strictarp.yaml")));
        assert_eq!((on.clone(), on.fine(), on.mode()), (StrictArp::On, Some(true), Some("ipvs")));
        let ipt = ok(StrictArp::from_kube_proxy(&one("11c-kube-proxy-configmap-iptables.yaml")));
        assert_eq!(ipt, StrictArp::NotNeeded { mode: "iptables".into() });
        assert_eq!((ipt.fine(), ipt.mode()), (Some(true), Some("iptables")));
        let arp_ok: Vec<Option<bool>> =
            [off, on, ipt, StrictArp::Unknown].iter().map(|s| s.kube_proxy().map(|k| k.arp_ok())).collect();
        assert_eq!(arp_ok, [Some(false), Some(true), Some(true), None]);
    }

    #[test]
    fn kube_proxy_modes_and_unknowns() {
        let with = |conf: &str| {
            let mut cm: ConfigMap = one("11c-kube-proxy-configmap-iptables.yaml");
            cm.data.as_mut().unwrap().insert(KUBE_PROXY_KEY.into(), conf.into());
            StrictArp::from_kube_proxy(&cm)
        };
        assert_eq!(ok(with("mode: \"\"\n")), StrictArp::NotNeeded { mode: "iptables".into() });
        assert_eq!(
            ok(with("kind: KubeProxyConfiguration\n")),
            StrictArp::NotNeeded { mode: "iptables".into() }
        );
        assert_eq!(ok(with("mode: nftables\n")), StrictArp::NotNeeded { mode: "nftables".into() });
        assert_eq!(ok(with("mode: ipvs\n")), StrictArp::Off, "strictARP defaults to false");
        let broken = with("mode: [ipvs\n");
        assert_eq!(broken.value, Some(StrictArp::Unknown));
        assert_eq!(broken.warnings.len(), 1);
        assert_eq!(StrictArp::Unknown.fine(), None);

        let mut cm: ConfigMap = one("11c-kube-proxy-configmap-iptables.yaml");
        cm.data.as_mut().unwrap().remove(KUBE_PROXY_KEY);
        assert_eq!(StrictArp::from_kube_proxy(&cm).value, Some(StrictArp::Unknown));
    }
}
