//! The inventory: which IPs are watched, who is expected to answer for each, which MACs belong to
//! cluster nodes, and the allow-list.
//!
//! Sources (the config file, the IP registry, the Kubernetes API) describe what they know as neutral
//! [`Parts`]; [`Inventory::build`] joins them with [`ThisHost`] into an immutable snapshot that the
//! capture thread takes at its next wakeup. Building never fails: what does not fit together becomes a
//! warning on the snapshot, so a half-broken cluster is still monitored.

pub mod kubernetes;
mod snapshot;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

pub use snapshot::{Inventory, Lookup, Owner, Watched};

use crate::wire::iprange::IpRange;
use crate::wire::mac::{Mac, MacPattern};

/// `namespace/name` of a Kubernetes Service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceName {
    /// The namespace.
    pub namespace: String,
    /// The Service's name.
    pub name: String,
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A service name without exactly one `/`, or with an empty part.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid service name {0:?}: expected namespace/name")]
pub struct ParseServiceNameError(String);

impl FromStr for ServiceName {
    type Err = ParseServiceNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(ServiceName { namespace: ns.to_owned(), name: name.to_owned() })
            }
            _ => Err(ParseServiceNameError(s.to_owned())),
        }
    }
}

impl<'de> serde::Deserialize<'de> for ServiceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for ServiceName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The role of a watched IP (DESIGN.md "Inventory").
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A LoadBalancer IP assigned to a Service.
    Service,
    /// A cluster node's own address.
    Node,
    /// A known machine outside the cluster (gateway, DNS server).
    Host,
    /// An address from the IP registry that no Service has (yet).
    Registry,
    /// An unassigned address of a pool.
    Pool,
}

impl Role {
    /// Every role, in label order.
    pub const ALL: [Role; 5] = [Role::Service, Role::Node, Role::Host, Role::Registry, Role::Pool];

    /// The `role` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Service => "service",
            Role::Node => "node",
            Role::Host => "host",
            Role::Registry => "registry",
            Role::Pool => "pool",
        }
    }
}

/// A node or known host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Its name.
    pub name: Arc<str>,
    /// The MACs it answers with.
    pub macs: Vec<Mac>,
    /// Its own IPs.
    pub ips: Vec<IpAddr>,
}

/// A Service annotation under `metallb.io/` or `metallb.universe.tf/` that MetalLB does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredKey {
    /// The key as written.
    pub key: Arc<str>,
    /// The key MetalLB reads instead (empty when none is close).
    pub expected_key: Arc<str>,
}

/// A LoadBalancer Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// `namespace/name`.
    pub name: Arc<ServiceName>,
    /// Assigned IPs (empty while pending).
    pub ips: Vec<IpAddr>,
    /// The IPs it asked for (an annotation or `spec.loadBalancerIP`); empty: none in particular.
    pub requested: Vec<IpAddr>,
    /// Where `requested` was read from (an annotation key or a field), for people.
    pub requested_from: Option<Arc<str>>,
    /// MetalLB-looking annotation keys MetalLB ignores.
    pub ignored: Vec<IgnoredKey>,
    /// The announcing node, when known. `None`: any node may announce.
    pub announcer: Option<Arc<str>>,
    /// The pool it came from.
    pub pool: Option<Arc<str>>,
}

impl Service {
    /// A Service with assigned IPs and nothing else known.
    pub fn assigned(name: ServiceName, ips: Vec<IpAddr>) -> Service {
        Service {
            name: Arc::new(name),
            ips,
            requested: Vec::new(),
            requested_from: None,
            ignored: Vec::new(),
            announcer: None,
            pool: None,
        }
    }
}

/// An address pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// Its name.
    pub name: Arc<str>,
    /// Its ranges.
    pub ranges: Vec<IpRange>,
}

/// One allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// Which MACs.
    pub mac: MacPattern,
    /// Which addresses; empty means any.
    pub ips: Vec<IpRange>,
    /// Why.
    pub note: String,
}

/// What one or more sources know, before it is joined into a snapshot. Sources are merged with
/// [`Parts::extend`]: nodes and hosts of the same name become one machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts {
    /// Cluster nodes.
    pub nodes: Vec<Machine>,
    /// Known hosts outside the cluster.
    pub hosts: Vec<Machine>,
    /// LoadBalancer Services.
    pub services: Vec<Service>,
    /// Address pools.
    pub pools: Vec<Pool>,
    /// The IP registry: the address each Service is expected to have.
    pub registry: Vec<(ServiceName, IpAddr)>,
    /// The allow-list.
    pub allow: Vec<Allowed>,
    /// Keep per-IP history for every address, not only watched ones.
    pub track_all: bool,
    /// kube-proxy's mode and strictARP setting, when known.
    pub kube_proxy: Option<KubeProxy>,
    /// Nodes whose MACs no source knows (no l2watch Lease): a device answering for an address they
    /// may announce cannot be told from them.
    pub unverified_nodes: Vec<Arc<str>>,
    /// What a source could not use, for the snapshot's warnings.
    pub warnings: Vec<String>,
    /// The node whose l2watch writes Kubernetes Events (the first live peer by name), so a conflict
    /// every node sees becomes one Event, not one per node. `None`: every node writes.
    pub event_writer: Option<Arc<str>>,
}

/// How kube-proxy runs (ConfigMap `kube-system/kube-proxy`, key `config.conf`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeProxy {
    /// `ipvs`, `iptables`, `nftables` (an empty mode is iptables on Linux).
    pub mode: Arc<str>,
    /// `ipvs.strictARP`.
    pub strict_arp: bool,
}

impl KubeProxy {
    /// Whether MetalLB layer2 can work: IPVS needs strictARP, the other modes need nothing.
    pub fn arp_ok(&self) -> bool {
        self.strict_arp || &*self.mode != "ipvs"
    }
}

impl Parts {
    /// Adds what another source knows. `track_all` stays as it is.
    pub fn extend(&mut self, other: Parts) {
        self.nodes.extend(other.nodes);
        self.hosts.extend(other.hosts);
        self.services.extend(other.services);
        self.pools.extend(other.pools);
        self.registry.extend(other.registry);
        self.allow.extend(other.allow);
        self.kube_proxy = self.kube_proxy.take().or(other.kube_proxy);
        self.unverified_nodes.extend(other.unverified_nodes);
        self.warnings.extend(other.warnings);
        self.event_writer = self.event_writer.take().or(other.event_writer);
    }

    /// Whether nothing at all is known (no node, host, pool, Service or registry entry).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
            && self.hosts.is_empty()
            && self.services.is_empty()
            && self.pools.is_empty()
            && self.registry.is_empty()
    }
}

/// The host l2watch runs on: its node, the MACs it answers ARP with, and the addresses it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThisHost {
    /// Its node name.
    pub node: Arc<str>,
    /// The MACs of the interfaces it answers ARP from.
    pub macs: Vec<Mac>,
    /// IPv6 addresses of its LAN interfaces (it answers for them itself).
    pub addresses: Vec<IpAddr>,
}
