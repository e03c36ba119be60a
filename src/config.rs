//! The configuration file: one YAML document, typed, unknown keys rejected, every error with the file,
//! line and column. `examples/l2watch.yaml` documents every option with its default.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::iprange::IpRange;
use crate::mac::Mac;

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
            oui_files: crate::vendor::DEFAULT_FILES.iter().map(PathBuf::from).collect(),
        }
    }
}

/// The `capture:` section.
#[derive(Debug, Clone, Deserialize)]
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

/// The `probe:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// Send RFC 5227 probes at all. Off: passive monitoring only (a switched LAN hides most conflicts).
    pub enabled: bool,
    /// How often each service, node, host and registry address is probed (with +-10% jitter).
    #[serde(with = "humane_duration")]
    pub interval: Duration,
    /// How often each unassigned pool address is probed.
    #[serde(with = "humane_duration")]
    pub pool_interval: Duration,
    /// How long replies to one probe count towards its round.
    #[serde(with = "humane_duration")]
    pub reply_window: Duration,
    /// At most this many probe frames per second, over all addresses and interfaces.
    pub rate: u32,
    /// A service address is `unanswered` after this many silent rounds in a row.
    pub unanswered_after: u32,
    /// Unassigned pool addresses beyond this many are not probed (an IPv6 /64 pool is not sweepable).
    pub max_pool_addresses: usize,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            enabled: true,
            interval: Duration::from_secs(10),
            pool_interval: Duration::from_secs(300),
            reply_window: Duration::from_secs(1),
            rate: 100,
            unanswered_after: 3,
            max_pool_addresses: 4096,
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
    /// `static` when the config lists anything, else `none`.
    #[default]
    Auto,
    /// Nodes, pools, services and hosts listed in this file.
    Static,
    /// No inventory: arpwatch-like monitoring of every address seen.
    None,
}

/// The `inventory:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryConfig {
    /// `auto`, `static` or `none`.
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

/// Whether l2watch keeps per-IP history for every address or only the watched ones.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Track {
    /// `all` without an inventory, `watched` with one.
    #[default]
    Auto,
    /// Only service, node, host, registry and pool addresses.
    Watched,
    /// Every address seen (bounded by `max_tracked_ips`).
    All,
}

/// The `detect:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// A finding stays active this long after its last evidence.
    #[serde(with = "humane_duration")]
    pub hold: Duration,
    /// An address flipping back to a MAC that claimed it within this window has several responders.
    #[serde(with = "humane_duration")]
    pub flip_window: Duration,
    /// Which addresses get per-IP history.
    pub track: Track,
    /// At most this many addresses have per-IP state; the least recently seen are evicted first. The
    /// table is sized at twice this (so eviction never makes it grow): 12288 takes about 8 MiB.
    pub max_tracked_ips: usize,
    /// At most this many MACs are remembered per address (1 to 4).
    pub max_macs_per_ip: usize,
    /// At most this many findings are held at once.
    pub max_findings: usize,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            hold: Duration::from_secs(600),
            flip_window: Duration::from_secs(300),
            track: Track::Auto,
            max_tracked_ips: 12_288,
            max_macs_per_ip: 4,
            max_findings: 1_024,
        }
    }
}

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

impl<'de> Deserialize<'de> for ServiceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for ServiceName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A MAC, or every MAC that shares its first `bits` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacPattern {
    /// The address (bits past the prefix are ignored).
    pub mac: Mac,
    /// Prefix length, 1 to 48 (48 = this one MAC).
    pub bits: u8,
}

impl MacPattern {
    /// Whether `mac` matches.
    #[inline]
    pub fn matches(&self, mac: Mac) -> bool {
        let shift = 48 - u32::from(self.bits);
        (self.mac.to_u64() >> shift) == (mac.to_u64() >> shift)
    }
}

impl FromStr for MacPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (mac, bits) = match s.split_once('/') {
            Some((m, b)) => {
                let bits: u8 = b
                    .trim()
                    .parse()
                    .map_err(|_| format!("invalid MAC prefix length in {s:?}: expected 1 to 48"))?;
                if !(1..=48).contains(&bits) {
                    return Err(format!("invalid MAC prefix length in {s:?}: expected 1 to 48"));
                }
                (m, bits)
            }
            None => (s, 48),
        };
        let mac: Mac = mac.parse().map_err(|e: crate::mac::ParseMacError| e.to_string())?;
        Ok(MacPattern { mac, bits })
    }
}

impl fmt::Display for MacPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bits == 48 { write!(f, "{}", self.mac) } else { write!(f, "{}/{}", self.mac, self.bits) }
    }
}

impl<'de> Deserialize<'de> for MacPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Durations written as `90s`, `10m`, `1h30m`, `500ms`.
pub mod humane_duration {
    use std::time::Duration;

    /// Parses `1h30m`, `10m`, `45s`, `250ms`; a bare number is seconds.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let bad = || format!("invalid duration {s:?}: expected e.g. 500ms, 45s, 10m or 1h30m");
        let t = s.trim();
        if t.is_empty() {
            return Err(bad());
        }
        if let Ok(secs) = t.parse::<u64>() {
            return Ok(Duration::from_secs(secs));
        }
        let mut total = Duration::ZERO;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let one = match &rest[..unit_len] {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n.saturating_mul(60)),
                "h" => Duration::from_secs(n.saturating_mul(3600)),
                _ => return Err(bad()),
            };
            total = total.saturating_add(one);
            rest = &rest[unit_len..];
        }
        Ok(total)
    }

    /// Serde `deserialize_with`.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        use serde::Deserialize;
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
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
    /// Parses a config from YAML text; `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let mut config: Config = serde_saphyr::from_str(text).map_err(|e| yaml_error(path, &e))?;
        if let Some(reg) = config.registry.as_mut()
            && reg.is_relative()
            && let Some(dir) = path.parent()
        {
            *reg = dir.join(&*reg);
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
        if !(1..=crate::detect::MAX_MACS_PER_IP).contains(&d.max_macs_per_ip) {
            return Err(invalid(
                path,
                &top,
                format!(
                    "detect.max_macs_per_ip is {}: it must be 1 to {}",
                    d.max_macs_per_ip,
                    crate::detect::MAX_MACS_PER_IP
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
        if d.hold.is_zero() {
            return Err(invalid(path, &top, "detect.hold must be longer than zero".into()));
        }
        let fail = |msg: String| Err(invalid(path, &top, msg));
        if !(1..=256).contains(&self.capture.ring_mib) {
            return fail(format!("capture.ring_mib is {}: it must be 1 to 256", self.capture.ring_mib));
        }
        let p = &self.probe;
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
        if d.hold > 30 * day || d.flip_window > 30 * day {
            return fail("detect.hold and detect.flip_window must be at most 30 days".into());
        }
        if self.metrics.max_series < 16 {
            return fail("metrics.max_series must be at least 16".into());
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
        assert_eq!(humane_duration::parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(humane_duration::parse("90").unwrap(), Duration::from_secs(90));
        assert_eq!(humane_duration::parse("1h1m1s").unwrap(), Duration::from_secs(3661));
        for bad in ["", "m", "10x", "1.5h", "-1s"] {
            assert!(humane_duration::parse(bad).is_err(), "{bad:?}");
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
