//! The configuration file: one YAML document, typed, unknown keys rejected, every error with the file,
//! line and column. `examples/l2watch.yaml` documents every option with its default.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::inventory::{
    Allowed, Inventory, Machine, ParseServiceNameError, Parts, Pool, Service, ServiceName,
};
use crate::monitor::detect::DetectConfig;
use crate::monitor::detect::Track;
use crate::monitor::probe::ProbeConfig;
use crate::wire::iprange::IpRange;
use crate::wire::mac::{Mac, MacPattern};

/// The whole configuration file. Every field has a default, so an empty file is a valid config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the inventory comes from and, for `static`, what it holds.
    pub inventory: InventoryConfig,
    /// MACs that may claim addresses without a finding (routers, VRRP/CARP, load balancers).
    pub allow: Vec<AllowEntry>,
    /// The IP registry file: the expected IP of each `namespace/service`. Relative to the config file.
    pub registry: Option<PathBuf>,
    /// Detection windows and state limits.
    pub detect: DetectConfig,
    /// This node's name, as in Kubernetes. Unset: `--node-name`, then `$NODE_NAME`, then the hostname.
    pub node_name: Option<String>,
    /// Live capture (`l2watch run`, `l2watch scan`).
    pub capture: CaptureConfig,
    /// Active probing of watched addresses.
    pub probe: ProbeConfig,
    /// The HTTP endpoint and metric limits.
    pub metrics: MetricsConfig,
    /// IEEE registries (CSV) for MAC vendor names; files that do not exist are skipped.
    pub oui_files: Vec<PathBuf>,
    /// The Kubernetes inventory source.
    pub kubernetes: KubernetesConfig,
    /// The state file a restart reads back.
    pub state: StateConfig,
}

/// The `state:` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Where per-IP MAC history and active findings are kept across restarts (`--state` overrides
    /// it); relative to the config file. Unset: nothing is kept.
    pub path: Option<PathBuf>,
    /// How often it is written while something changed (and once more on a clean stop).
    #[serde(with = "crate::humane::duration")]
    pub interval: Duration,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig { path: None, interval: Duration::from_secs(60) }
    }
}

/// The `kubernetes:` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// Write a Warning Event on the Service when a conflict on its IP starts (and for drift and
    /// ignored annotations).
    pub events: bool,
    /// How long this node's Lease (its MACs, for the peers) counts after each renewal; it is renewed
    /// every third of it.
    #[serde(with = "crate::humane::duration")]
    pub lease_duration: Duration,
    /// MetalLB's namespace, where its legacy ConfigMap `config` lives (MetalLB <= 0.12).
    pub metallb_namespace: String,
    /// At start, the API must answer within this, or l2watch exits (it does not start blind).
    #[serde(with = "crate::humane::duration")]
    pub connect_timeout: Duration,
    /// A request or watch on which the API sends nothing for this long is given up and retried (a
    /// stalled server, a connection lost without a reset). The API server sends a watch bookmark
    /// about every minute, so a healthy watch is never this quiet.
    #[serde(with = "crate::humane::duration")]
    pub read_timeout: Duration,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            events: true,
            lease_duration: Duration::from_secs(30),
            metallb_namespace: "metallb-system".into(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(90),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            inventory: InventoryConfig::default(),
            allow: Vec::new(),
            registry: None,
            detect: DetectConfig::default(),
            node_name: None,
            capture: CaptureConfig::default(),
            probe: ProbeConfig::default(),
            metrics: MetricsConfig::default(),
            oui_files: crate::wire::vendor::DEFAULT_FILES.iter().map(PathBuf::from).collect(),
            kubernetes: KubernetesConfig::default(),
            state: StateConfig::default(),
        }
    }
}

/// The `capture:` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Interfaces to watch and probe on. Empty: the interface of the default route.
    pub interfaces: Vec<String>,
    /// Interfaces whose MACs are not among the MACs this node answers ARP with; `*` matches any run of
    /// characters. The default is MetalLB's own `announcedInterfacesToExclude` list.
    pub exclude: Vec<String>,
    /// Kernel ring buffer per interface, in MiB (1 to 256). 8 MiB holds ~65,000 ARP frames.
    pub ring_mib: usize,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            interfaces: Vec::new(),
            exclude: [
                "docker*",
                "cbr*",
                "dummy*",
                "virbr*",
                "lxcbr*",
                "veth*",
                "lo",
                "cali*",
                "tunl*",
                "flannel*",
                "kube-ipvs*",
                "cni*",
                "nodelocaldns*",
            ]
            .map(String::from)
            .to_vec(),
            ring_mib: 8,
        }
    }
}

/// The `metrics:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the HTTP endpoint (`/metrics`, `/healthz`, `/readyz`, `/findings`).
    pub listen: std::net::SocketAddr,
    /// At most this many series whose labels the LAN controls (IPs, MACs); the oldest are evicted and
    /// counted in `l2watch_series_evicted_total`.
    pub max_series: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { listen: std::net::SocketAddr::from(([0, 0, 0, 0], 9787)), max_series: 4096 }
    }
}

/// Which inventory source l2watch uses.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InventorySource {
    /// `kubernetes` when running in a cluster or a kubeconfig is given (`l2watch run` only), else
    /// `static` when the config lists anything, else `none`.
    #[default]
    Auto,
    /// The Kubernetes API (in-cluster, or `$KUBECONFIG` / `~/.kube/config`), plus what this file lists.
    Kubernetes,
    /// Nodes, pools, services and hosts listed in this file.
    Static,
    /// No inventory: arpwatch-like monitoring of every address seen.
    None,
}

impl InventorySource {
    /// The source `auto` stands for: `kubernetes` when `cluster` (an API is reachable by the usual
    /// inference: in a cluster, or a kubeconfig), else `static` when `listed` (the config lists
    /// anything), else `none`. Other sources stand for themselves.
    pub fn resolve(self, cluster: bool, listed: bool) -> InventorySource {
        match self {
            InventorySource::Auto if cluster => InventorySource::Kubernetes,
            InventorySource::Auto if listed => InventorySource::Static,
            InventorySource::Auto => InventorySource::None,
            s => s,
        }
    }

    /// The `source` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            InventorySource::Auto => "auto",
            InventorySource::Kubernetes => "kubernetes",
            InventorySource::Static => "static",
            InventorySource::None => "none",
        }
    }
}

impl InventoryConfig {
    /// Whether this file lists any node, host, pool or Service.
    pub fn lists_anything(&self) -> bool {
        !(self.nodes.is_empty() && self.hosts.is_empty() && self.pools.is_empty() && self.services.is_empty())
    }
}

/// The `inventory:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryConfig {
    /// `auto`, `kubernetes`, `static` or `none`.
    pub source: InventorySource,
    /// Cluster nodes: the MACs that may announce service IPs, and their own IPs.
    pub nodes: Vec<Spanned<MachineConfig>>,
    /// Known machines outside the cluster whose IPs are watched (the default gateway, a DNS server):
    /// another MAC claiming one of their IPs is a `node_ip_conflict`.
    pub hosts: Vec<Spanned<MachineConfig>>,
    /// Address pools, as in MetalLB IPAddressPools.
    pub pools: Vec<PoolConfig>,
    /// LoadBalancer services and the IPs they were assigned.
    pub services: Vec<Spanned<ServiceConfig>>,
}

/// A node or host: a name, its MACs and its IPs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineConfig {
    /// Node name (as in Kubernetes) or a host's name.
    pub name: String,
    /// Every MAC it may answer ARP with (MetalLB answers from each eligible interface).
    #[serde(default)]
    pub macs: Vec<Mac>,
    /// Its own addresses.
    #[serde(default)]
    pub ips: Vec<IpAddr>,
}

/// An address pool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Pool name (the IPAddressPool's name).
    pub name: String,
    /// CIDRs, `a-b` ranges or single addresses, IPv4 or IPv6.
    pub addresses: Vec<IpRange>,
}

/// A LoadBalancer service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// `namespace/name`.
    pub name: ServiceName,
    /// Assigned LoadBalancer IPs.
    pub ips: Vec<IpAddr>,
    /// The node that announces it. Unset: any node may (failover between nodes is not a conflict).
    #[serde(default)]
    pub announcer: Option<String>,
    /// The pool it came from (informational).
    #[serde(default)]
    pub pool: Option<String>,
}

/// One allow-list entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowEntry {
    /// A MAC in any common notation, or a prefix such as `00:00:5e:00:01:00/40` (every VRRP MAC).
    pub mac: MacPattern,
    /// Limit the allowance to these addresses. Empty: any address.
    #[serde(default)]
    pub ips: Vec<IpRange>,
    /// Why it is allowed, for the people reading the config.
    #[serde(default)]
    pub note: String,
}

/// The IP registry: the address each Service is expected to have, as `namespace/service: ip`.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    /// Entries in file order.
    pub entries: Vec<(ServiceName, IpAddr)>,
}

/// A config or registry file that cannot be used. Displays as one line: `file:line:column: message`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or does not fit the schema.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// The YAML fits the schema but the content contradicts itself (an unknown announcer, a MAC given
    /// to two nodes...).
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What is wrong.
        message: String,
    },
}

fn yaml_error(path: &Path, err: &serde_saphyr::Error) -> ConfigError {
    let bare = err.without_snippet();
    let (line, column) = bare.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    // Keep the report to one line: the message's first line, without the location the library repeats.
    let text = bare.to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    let message = strip_location_suffix(first).to_owned();
    ConfigError::Syntax { path: path.display().to_string(), line, column, message }
}

fn strip_location_suffix(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

/// Builds an [`ConfigError::Invalid`] pointing at `at`.
pub fn invalid(path: &Path, at: &serde_saphyr::Location, message: String) -> ConfigError {
    ConfigError::Invalid { path: path.display().to_string(), line: at.line(), column: at.column(), message }
}

impl Config {
    /// What this config file knows of the inventory, checked for contradictions (a name listed twice,
    /// an announcer that is not a node, a MAC given to two machines), each reported with its line and
    /// column. `path` is the config file, for error messages; `registry` its IP registry, if any.
    pub fn inventory_parts(&self, path: &Path, registry: Option<&Registry>) -> Result<Parts, ConfigError> {
        let inv = &self.inventory;
        let mut parts = Parts::default();
        // With the Kubernetes API, what this file lists is added to what the API says.
        let use_static = match inv.source.resolve(false, inv.lists_anything()) {
            InventorySource::Static | InventorySource::Kubernetes => true,
            InventorySource::None | InventorySource::Auto => false,
        };
        if use_static {
            for (list, target, what) in
                [(&inv.nodes, &mut parts.nodes, "node"), (&inv.hosts, &mut parts.hosts, "host")]
            {
                for m in list {
                    if target.iter().any(|x: &Machine| *x.name == *m.value.name) {
                        return Err(invalid(
                            path,
                            &m.referenced,
                            format!("{what} {:?} is listed twice", m.value.name),
                        ));
                    }
                    target.push(Machine {
                        name: m.value.name.as_str().into(),
                        macs: m.value.macs.clone(),
                        ips: m.value.ips.clone(),
                    });
                }
            }
            for p in &inv.pools {
                parts.pools.push(Pool { name: p.name.as_str().into(), ranges: p.addresses.clone() });
            }
            for s in &inv.services {
                let s_ = &s.value;
                if let Some(a) = &s_.announcer
                    && !parts.nodes.iter().any(|n| *n.name == **a)
                {
                    return Err(invalid(
                        path,
                        &s.referenced,
                        format!("service {} names announcer {a:?}, which is not in inventory.nodes", s_.name),
                    ));
                }
                let mut svc = Service::assigned(s_.name.clone(), s_.ips.clone());
                svc.announcer = s_.announcer.as_deref().map(Arc::from);
                svc.pool = s_.pool.as_deref().map(Arc::from);
                parts.services.push(svc);
            }
            for (list, what) in [(&inv.nodes, "node"), (&inv.hosts, "host")] {
                for m in list {
                    for mac in &m.value.macs {
                        let owners =
                            parts.nodes.iter().chain(&parts.hosts).filter(|x| x.macs.contains(mac)).count();
                        if owners > 1 {
                            return Err(invalid(
                                path,
                                &m.referenced,
                                format!(
                                    "MAC {mac} of {what} {:?} also belongs to another node or host",
                                    m.value.name
                                ),
                            ));
                        }
                    }
                }
            }
        }
        if let Some(r) = registry {
            parts.registry = r.entries.clone();
        }
        for a in &self.allow {
            parts.allow.push(Allowed { mac: a.mac, ips: a.ips.clone(), note: a.note.clone() });
        }
        parts.track_all = match self.detect.track {
            Track::All => true,
            Track::Watched => false,
            Track::Auto => !use_static && inv.source != InventorySource::Kubernetes,
        };
        Ok(parts)
    }

    /// The static inventory of this config alone (no Kubernetes API, no host identity): for `analyze`,
    /// `scan` and tests.
    pub fn static_inventory(
        &self,
        path: &Path,
        registry: Option<&Registry>,
    ) -> Result<Inventory, ConfigError> {
        Ok(Inventory::build(self.inventory_parts(path, registry)?, None))
    }

    /// Parses a config from YAML text; `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let mut config: Config = serde_saphyr::from_str(text).map_err(|e| yaml_error(path, &e))?;
        for file in [config.registry.as_mut(), config.state.path.as_mut()].into_iter().flatten() {
            if file.is_relative()
                && let Some(dir) = path.parent()
            {
                *file = dir.join(&*file);
            }
        }
        config.validate(path)?;
        Ok(config)
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Config::parse(path, &text)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let d = &self.detect;
        let top = serde_saphyr::Location::UNKNOWN;
        if !(1..=crate::monitor::detect::MAX_MACS_PER_IP).contains(&d.max_macs_per_ip) {
            return Err(invalid(
                path,
                &top,
                format!(
                    "detect.max_macs_per_ip is {}: it must be 1 to {}",
                    d.max_macs_per_ip,
                    crate::monitor::detect::MAX_MACS_PER_IP
                ),
            ));
        }
        if d.max_tracked_ips < 16 || d.max_findings < 16 {
            return Err(invalid(
                path,
                &top,
                "detect.max_tracked_ips and detect.max_findings must be at least 16".into(),
            ));
        }
        let (max_ips, max_findings) =
            (crate::monitor::detect::MAX_TRACKED_IPS, crate::monitor::detect::MAX_FINDINGS);
        if d.max_tracked_ips > max_ips || d.max_findings > max_findings {
            return Err(invalid(
                path,
                &top,
                format!(
                    "detect.max_tracked_ips is {} and detect.max_findings {}: they must be at most {max_ips} \
                     and {max_findings} (their tables are held in memory)",
                    d.max_tracked_ips, d.max_findings
                ),
            ));
        }
        if d.hold.is_zero() {
            return Err(invalid(path, &top, "detect.hold must be longer than zero".into()));
        }
        let fail = |msg: String| Err(invalid(path, &top, msg));
        if !(1..=256).contains(&self.capture.ring_mib) {
            return fail(format!("capture.ring_mib is {}: it must be 1 to 256", self.capture.ring_mib));
        }
        let p = &self.probe;
        if p.max_pool_addresses > crate::monitor::probe::MAX_POOL_ADDRESSES {
            return fail(format!(
                "probe.max_pool_addresses is {}: it must be at most {} (an IPv4 /16; the schedule is held \
                 in memory)",
                p.max_pool_addresses,
                crate::monitor::probe::MAX_POOL_ADDRESSES
            ));
        }
        if p.rate == 0 || p.unanswered_after == 0 {
            return fail("probe.rate and probe.unanswered_after must be at least 1".into());
        }
        if p.reply_window.is_zero() || p.interval <= p.reply_window || p.pool_interval <= p.reply_window {
            return fail(format!(
                "probe.reply_window ({:?}) must be longer than zero and shorter than probe.interval ({:?}) \
                 and probe.pool_interval ({:?})",
                p.reply_window, p.interval, p.pool_interval
            ));
        }
        let day = std::time::Duration::from_secs(86_400);
        if p.interval > day || p.pool_interval > day {
            return fail("probe.interval and probe.pool_interval must be at most 24h".into());
        }
        if d.announcer_grace > std::time::Duration::from_secs(3600) {
            return fail("detect.announcer_grace must be at most 1h".into());
        }
        if d.hold > 30 * day || d.flip_window > 30 * day {
            return fail("detect.hold and detect.flip_window must be at most 30 days".into());
        }
        let k = &self.kubernetes;
        if k.lease_duration < Duration::from_secs(3) || k.lease_duration > Duration::from_secs(3600) {
            return fail("kubernetes.lease_duration must be 3s to 1h".into());
        }
        if k.connect_timeout.is_zero() || k.metallb_namespace.trim().is_empty() {
            return fail(
                "kubernetes.connect_timeout must be longer than zero and kubernetes.metallb_namespace set"
                    .into(),
            );
        }
        if k.read_timeout < Duration::from_secs(1) || k.read_timeout > Duration::from_secs(3600) {
            return fail("kubernetes.read_timeout must be 1s to 1h".into());
        }
        if self.metrics.max_series < 16 {
            return fail("metrics.max_series must be at least 16".into());
        }
        if self.state.interval < Duration::from_secs(1) {
            return fail("state.interval must be at least 1s".into());
        }
        if self.node_name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return fail("node_name must not be empty".into());
        }
        Ok(())
    }
}

impl Registry {
    /// Parses a registry from YAML text (`namespace/service: ip` per line).
    pub fn parse(path: &Path, text: &str) -> Result<Registry, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Registry::default());
        }
        let map: Vec<(Spanned<String>, Spanned<String>)> =
            serde_saphyr::from_str::<indexmap_free::OrderedMap>(text).map_err(|e| yaml_error(path, &e))?.0;
        let mut entries = Vec::with_capacity(map.len());
        for (k, v) in map {
            let name: ServiceName = k
                .value
                .parse()
                .map_err(|e: ParseServiceNameError| invalid(path, &k.referenced, e.to_string()))?;
            let ip: IpAddr = v.value.trim().parse().map_err(|_| {
                invalid(path, &v.referenced, format!("invalid IP address {:?} for {name}", v.value))
            })?;
            if entries.iter().any(|(n, _): &(ServiceName, IpAddr)| *n == name) {
                return Err(invalid(path, &k.referenced, format!("{name} is listed twice")));
            }
            entries.push((name, ip));
        }
        Ok(Registry { entries })
    }

    /// Reads and parses a registry file.
    pub fn load(path: &Path) -> Result<Registry, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Registry::parse(path, &text)
    }
}

/// A YAML mapping read in document order, keys and values with their locations.
mod indexmap_free {
    use serde::de::{MapAccess, Visitor};
    use serde_saphyr::Spanned;

    pub struct OrderedMap(pub Vec<(Spanned<String>, Spanned<String>)>);

    impl<'de> serde::Deserialize<'de> for OrderedMap {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = OrderedMap;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a mapping of namespace/service to IP address")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<OrderedMap, A::Error> {
                    let mut v = Vec::new();
                    while let Some(entry) = m.next_entry()? {
                        v.push(entry);
                    }
                    Ok(OrderedMap(v))
                }
            }
            d.deserialize_map(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("l2watch.yaml"), text)
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.detect.hold, Duration::from_secs(600));
        assert_eq!(c.inventory.source, InventorySource::Auto);
    }

    #[test]
    fn full_static_inventory() {
        let c = parse(
            "inventory:\n  source: static\n  nodes:\n    - name: worker-1\n      macs: [\"52-54-00-6b-3c-01\", 5254.006b.3c11]\n      ips: [192.168.1.11]\n  pools:\n    - name: first-pool\n      addresses: [192.168.1.240/28, 192.168.10.0-192.168.10.9]\n  services:\n    - name: web/nginx\n      ips: [192.168.1.240]\n      announcer: worker-1\nallow:\n  - mac: 00:00:5e:00:01:00/40\n    note: VRRP\ndetect:\n  hold: 1h30m\n",
        )
        .unwrap();
        let n = &c.inventory.nodes[0].value;
        assert_eq!(n.macs[1].to_string(), "52:54:00:6b:3c:11");
        assert_eq!(c.inventory.services[0].value.name.to_string(), "web/nginx");
        assert!(c.allow[0].mac.matches("00:00:5e:00:01:2a".parse().unwrap()));
        assert!(!c.allow[0].mac.matches("00:00:5e:00:02:2a".parse().unwrap()));
        assert_eq!(c.detect.hold, Duration::from_secs(5400));
    }

    fn one_line_error(text: &str) -> String {
        let e = parse(text).unwrap_err().to_string();
        assert!(!e.contains('\n'), "not one line: {e}");
        e
    }

    /// Found through the fuzz target `config` (inputs written after reading `Detector::new`; the
    /// random search did not reach such numbers in 15 minutes): caps beyond what memory can hold
    /// made `run` and `analyze` abort (allocation too big, capacity overflow) or run out of memory
    /// before they said anything.
    #[test]
    fn caps_that_memory_cannot_hold_are_errors() {
        for (text, key) in [
            ("detect:\n  max_findings: 1000000000000000\n", "detect.max_findings"),
            ("detect:\n  max_tracked_ips: 18446744073709551615\n", "detect.max_tracked_ips"),
            ("probe:\n  max_pool_addresses: 18446744073709551615\n", "probe.max_pool_addresses"),
        ] {
            let e = one_line_error(text);
            assert!(e.contains(key) && e.contains("at most"), "{e}");
        }
        let c = parse(
            "detect:\n  max_tracked_ips: 1048576\n  max_findings: 65536\nprobe:\n  max_pool_addresses: 65536\n",
        );
        assert!(c.is_ok(), "the largest caps are fine");
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let e = one_line_error("detect:\n  hold: 10m\n  hodl: 5m\n");
        assert!(e.starts_with("l2watch.yaml:3:3: "), "{e}");
        assert!(e.contains("hodl"), "{e}");
    }

    #[test]
    fn bad_cidr_names_line_and_column() {
        let e = one_line_error("inventory:\n  pools:\n    - name: p\n      addresses: [192.168.1.0/33]\n");
        assert!(e.starts_with("l2watch.yaml:4:"), "{e}");
        assert!(e.contains("prefix length"), "{e}");
    }

    #[test]
    fn bad_mac_names_line_and_column() {
        let e = one_line_error("inventory:\n  nodes:\n    - name: n\n      macs: [52:54:00:zz:3c:01]\n");
        assert!(e.starts_with("l2watch.yaml:4:"), "{e}");
        assert!(e.contains("invalid MAC address"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(crate::humane::duration::parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(crate::humane::duration::parse("90").unwrap(), Duration::from_secs(90));
        assert_eq!(crate::humane::duration::parse("1h1m1s").unwrap(), Duration::from_secs(3661));
        for bad in ["", "m", "10x", "1.5h", "-1s"] {
            assert!(crate::humane::duration::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn registry_file() {
        let p = Path::new("registry.yaml");
        let r = Registry::parse(p, "web/nginx: 192.168.1.240\nml/mlflow: 192.168.1.201\n").unwrap();
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.entries[1].0.to_string(), "ml/mlflow");
        let e = Registry::parse(p, "web/nginx: 192.168.1.240\nnoslash: 10.0.0.1\n").unwrap_err().to_string();
        assert!(e.starts_with("registry.yaml:2:1: "), "{e}");
        let e = Registry::parse(p, "web/nginx: 192.168.1.300\n").unwrap_err().to_string();
        assert!(e.starts_with("registry.yaml:1:12: "), "{e}");
    }
}
