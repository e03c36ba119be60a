//! Findings: the words used everywhere (metrics, logs, reports). See DESIGN.md "Findings".

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::inventory::{Role, ServiceName};
use crate::wire::iprange::IpKey;
use crate::wire::mac::Mac;
use crate::wire::observation::{Timestamp, Vlans};

/// How bad a finding is. Ordered: `Info < Warning < Critical`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Severity {
    /// History worth recording; never alerts.
    Info,
    /// Needs a look.
    Warning,
    /// Traffic is (or is about to be) misdirected.
    Critical,
}

impl Severity {
    /// Label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every kind of finding of DESIGN.md.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum FindingKind {
    /// A MAC outside the cluster and the allow-list claims a service IP.
    ForeignMac,
    /// A cluster node that is not the announcer claims a service IP.
    WrongAnnouncer,
    /// Two or more distinct responders for one IP.
    MultipleResponders,
    /// A service IP got no reply for N probe rounds.
    Unanswered,
    /// A MAC outside the cluster and the allow-list claims an unassigned pool IP.
    PoolSquatter,
    /// A node's (or known host's) IP claimed by a MAC that is not its own.
    NodeIpConflict,
    /// An RFC 5227 probe (or IPv6 DAD) from a foreign MAC for a watched IP.
    ForeignProbe,
    /// A Service's IP differs from the requested or registry IP, or it is pending.
    IpDrift,
    /// A Service carries a MetalLB-looking annotation key MetalLB does not read.
    IgnoredAnnotation,
    /// kube-proxy runs in IPVS mode without `strictARP`: every node answers ARP for every Service IP.
    StrictArpOff,
    /// A Service's IP changed.
    IpChanged,
    /// A Service's announcing node changed.
    AnnouncerChanged,
    /// The MAC answering for an IP changed.
    MacChanged,
    /// Ethernet source differs from the ARP sender MAC.
    EthShaMismatch,
}

impl FindingKind {
    /// Every kind.
    pub const ALL: [FindingKind; 14] = [
        FindingKind::ForeignMac,
        FindingKind::WrongAnnouncer,
        FindingKind::MultipleResponders,
        FindingKind::Unanswered,
        FindingKind::PoolSquatter,
        FindingKind::NodeIpConflict,
        FindingKind::ForeignProbe,
        FindingKind::IpDrift,
        FindingKind::IgnoredAnnotation,
        FindingKind::StrictArpOff,
        FindingKind::IpChanged,
        FindingKind::AnnouncerChanged,
        FindingKind::MacChanged,
        FindingKind::EthShaMismatch,
    ];

    /// Whether findings of this kind come from the inventory (keyed by Service) rather than from
    /// frames (keyed by IP and MAC). They have metrics of their own, not `l2watch_conflict_active`.
    pub const fn from_inventory(self) -> bool {
        matches!(
            self,
            FindingKind::IpDrift
                | FindingKind::IgnoredAnnotation
                | FindingKind::StrictArpOff
                | FindingKind::IpChanged
                | FindingKind::AnnouncerChanged
        )
    }

    /// The name used in metrics, logs and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            FindingKind::ForeignMac => "foreign_mac",
            FindingKind::WrongAnnouncer => "wrong_announcer",
            FindingKind::MultipleResponders => "multiple_responders",
            FindingKind::Unanswered => "unanswered",
            FindingKind::PoolSquatter => "pool_squatter",
            FindingKind::NodeIpConflict => "node_ip_conflict",
            FindingKind::ForeignProbe => "foreign_probe",
            FindingKind::IpDrift => "ip_drift",
            FindingKind::IgnoredAnnotation => "ignored_annotation",
            FindingKind::StrictArpOff => "strict_arp_off",
            FindingKind::IpChanged => "ip_changed",
            FindingKind::AnnouncerChanged => "announcer_changed",
            FindingKind::MacChanged => "mac_changed",
            FindingKind::EthShaMismatch => "eth_sha_mismatch",
        }
    }

    /// What an operator should do about a finding of this kind: the one place this text is written
    /// (logs, reports and Kubernetes Events all use it).
    pub const fn advice(self) -> &'static str {
        match self {
            FindingKind::ForeignMac => {
                "a device outside the cluster answers for a Service IP: find it by its MAC and remove the address, or allow-list it"
            }
            FindingKind::WrongAnnouncer => {
                "a node that is not the Service's announcer answers for its IP: check the MetalLB speakers (memberlist, strictARP)"
            }
            FindingKind::MultipleResponders => {
                "two devices answer for one address: clients reach either; find the second MAC"
            }
            FindingKind::Unanswered => {
                "nobody answers for a Service IP: check the announcing speaker and the node's interface"
            }
            FindingKind::PoolSquatter => {
                "a device uses an unassigned pool address: MetalLB may assign it to a Service; take it out of the pool or off the device"
            }
            FindingKind::NodeIpConflict => {
                "another MAC claims a node's or known host's address: a duplicate IP or ARP spoofing"
            }
            FindingKind::ForeignProbe => "a device probes for a watched address: it is about to take it",
            FindingKind::IpDrift => {
                "the Service does not have the IP it should: pin it with the metallb.io/loadBalancerIPs annotation, or update the registry"
            }
            FindingKind::IgnoredAnnotation => {
                "MetalLB does not read this annotation key, so the Service's IP is not pinned: use the key MetalLB reads"
            }
            FindingKind::StrictArpOff => {
                "kube-proxy runs in IPVS mode without strictARP, so every node answers ARP for every Service IP: set ipvs.strictARP: true in the kube-system/kube-proxy ConfigMap and restart kube-proxy (MetalLB requires it)"
            }
            FindingKind::IpChanged => "the Service's IP changed: clients that cached the old one break",
            FindingKind::AnnouncerChanged => "the node announcing the Service changed (a failover)",
            FindingKind::MacChanged => "the MAC answering for this address changed",
            FindingKind::EthShaMismatch => {
                "the Ethernet source differs from the ARP sender MAC: a spoofing sign, or Microsoft NLB"
            }
        }
    }

    /// Severity as in DESIGN.md.
    pub const fn severity(self) -> Severity {
        match self {
            FindingKind::ForeignMac
            | FindingKind::WrongAnnouncer
            | FindingKind::MultipleResponders
            | FindingKind::Unanswered
            | FindingKind::NodeIpConflict
            | FindingKind::StrictArpOff => Severity::Critical,
            FindingKind::PoolSquatter
            | FindingKind::ForeignProbe
            | FindingKind::IpDrift
            | FindingKind::IgnoredAnnotation => Severity::Warning,
            FindingKind::IpChanged
            | FindingKind::AnnouncerChanged
            | FindingKind::MacChanged
            | FindingKind::EthShaMismatch => Severity::Info,
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What identifies one finding: one per kind, IP and MAC involved.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FindingKey {
    /// Kind.
    pub kind: FindingKind,
    /// The IP concerned.
    pub ip: IpKey,
    /// The MAC concerned.
    pub mac: Mac,
}

/// Where the IP a Service should have comes from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum DriftSource {
    /// What the Service asked for (an annotation or `spec.loadBalancerIP`).
    Requested,
    /// The IP registry file.
    Registry,
}

impl DriftSource {
    /// The `source` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            DriftSource::Requested => "requested",
            DriftSource::Registry => "registry",
        }
    }
}

/// What a finding about a Service (rather than about frames) says.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Detail {
    /// `ip_drift`: the Service should have `expected` but has `actual` (`None`: pending, no IP).
    Drift {
        /// Where `expected` comes from.
        source: DriftSource,
        /// The IP it should have.
        expected: IpAddr,
        /// The IP it has, of the same family, if any.
        actual: Option<IpAddr>,
        /// The annotation or field the request was read from (for `requested`).
        from: Option<Arc<str>>,
    },
    /// `ignored_annotation`: `key` is not read by MetalLB; `expected_key` is.
    Ignored {
        /// The key as written.
        key: Arc<str>,
        /// The key MetalLB reads instead (empty when none is close).
        expected_key: Arc<str>,
    },
    /// `ip_changed`: the assigned IPs went from `from` to `to`.
    IpChanged {
        /// Before.
        from: Vec<IpAddr>,
        /// After.
        to: Vec<IpAddr>,
    },
    /// `strict_arp_off`: kube-proxy's mode (`ipvs`) from its ConfigMap.
    StrictArp {
        /// The proxy mode.
        mode: Arc<str>,
    },
    /// `announcer_changed`: the announcing node went from `from` to `to`.
    AnnouncerChanged {
        /// Before.
        from: Arc<str>,
        /// After.
        to: Arc<str>,
    },
}

/// One finding with its evidence.
#[derive(Clone, Debug)]
pub struct Finding {
    /// Kind.
    pub kind: FindingKind,
    /// The IP concerned.
    pub ip: IpAddr,
    /// The MAC concerned (the claimer; for `mac_changed` the new MAC).
    pub mac: Mac,
    /// The other MAC: previous MAC for `mac_changed`, the other responder for `multiple_responders`,
    /// the Ethernet source for `eth_sha_mismatch`.
    pub other_mac: Option<Mac>,
    /// Role of the IP in the inventory, when watched.
    pub role: Option<Role>,
    /// The Service that has the IP.
    pub service: Option<Arc<ServiceName>>,
    /// The node or host concerned: the claiming node for `wrong_announcer`, the IP's owner for
    /// `node_ip_conflict`.
    pub node: Option<Arc<str>>,
    /// The pool of the IP.
    pub pool: Option<Arc<str>>,
    /// `mac_changed`: an announcer change (failover) explains it.
    pub expected: bool,
    /// `mac_changed`: the new MAC had claimed this IP before (a flip flop), rather than a new MAC.
    pub flip_flop: bool,
    /// What the inventory says beyond frames (`ip_drift`, `ignored_annotation`, `ip_changed`,
    /// `announcer_changed`).
    pub detail: Option<Arc<Detail>>,
    /// VLAN tags of the first evidence.
    pub vlans: Vlans,
    /// Capture interface of the first evidence.
    pub interface: u16,
    /// First evidence.
    pub first_seen: Timestamp,
    /// Latest evidence.
    pub last_seen: Timestamp,
    /// Frame number of the first evidence.
    pub first_frame: u64,
    /// Frame number of the latest evidence.
    pub last_frame: u64,
    /// Pieces of evidence.
    pub count: u64,
}

impl Finding {
    /// The MAC to show: none for `unanswered` (about silence) and for findings about Services (about
    /// the inventory), whose key holds the zero MAC.
    pub fn shown_mac(&self) -> Option<Mac> {
        (self.kind != FindingKind::Unanswered && !self.kind.from_inventory()).then_some(self.mac)
    }

    /// Its key.
    pub fn key(&self) -> FindingKey {
        FindingKey { kind: self.kind, ip: IpKey::from(self.ip), mac: self.mac }
    }

    /// Its severity.
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }

    /// What happened, in one line for people (reports, logs, Events).
    pub fn describe(&self) -> String {
        let other = self.other_mac.map_or_else(|| "?".to_owned(), |m| m.to_string());
        let node = self.node.as_deref().unwrap_or("?");
        let mac = self.mac;
        match self.kind {
            FindingKind::ForeignMac => {
                format!("{mac} (not a cluster node, not allow-listed) claims this service IP")
            }
            FindingKind::WrongAnnouncer => format!("node {node} ({mac}) claims it but is not its announcer"),
            FindingKind::MultipleResponders => format!("{mac} and {other} both answer for it"),
            FindingKind::PoolSquatter => {
                format!("{mac} (outside the cluster) uses this unassigned pool address")
            }
            FindingKind::NodeIpConflict => format!("{mac} claims the address of {node}"),
            FindingKind::ForeignProbe => {
                format!("{mac} probes for it (RFC 5227 / DAD): it is about to take it")
            }
            FindingKind::MacChanged => format!(
                "now {mac} (was {other}){}{}",
                if self.flip_flop { ", flip flop back to an earlier MAC" } else { ", a new MAC" },
                if self.expected { ", expected: announcer change" } else { "" }
            ),
            FindingKind::EthShaMismatch => format!("ARP sender {mac} sent from Ethernet source {other}"),
            FindingKind::Unanswered => "nobody answers probes for this service IP".to_owned(),
            FindingKind::IpDrift
            | FindingKind::IgnoredAnnotation
            | FindingKind::StrictArpOff
            | FindingKind::IpChanged
            | FindingKind::AnnouncerChanged => self.describe_detail(),
        }
    }

    fn describe_detail(&self) -> String {
        let list = |ips: &[IpAddr]| {
            if ips.is_empty() {
                "none".to_owned()
            } else {
                ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
            }
        };
        match self.detail.as_deref() {
            Some(Detail::Drift { source, expected, actual, from }) => {
                let why = match (source, from) {
                    (DriftSource::Registry, _) => "the IP registry".to_owned(),
                    (DriftSource::Requested, Some(f)) => format!("its request ({f})"),
                    (DriftSource::Requested, None) => "its request".to_owned(),
                };
                match actual {
                    Some(a) => format!("has {a} but {why} says {expected}"),
                    None => format!("is pending (no IP) but {why} says {expected}"),
                }
            }
            Some(Detail::Ignored { key, expected_key }) if expected_key.is_empty() => {
                format!("annotation {key} is not read by MetalLB")
            }
            Some(Detail::Ignored { key, expected_key }) => {
                format!("annotation {key} is not read by MetalLB (it reads {expected_key})")
            }
            Some(Detail::IpChanged { from, to }) => format!("IP changed from {} to {}", list(from), list(to)),
            Some(Detail::AnnouncerChanged { from, to }) => format!("announcer changed from {from} to {to}"),
            Some(Detail::StrictArp { mode }) => {
                format!(
                    "kube-proxy runs in {mode} mode with strictARP off: every node answers ARP for every Service IP"
                )
            }
            None => self.kind.advice().to_owned(),
        }
    }
}

/// Receives what the detector decides. Every method defaults to doing nothing.
pub trait Sink {
    /// A finding became active.
    fn raised(&mut self, _finding: &Finding) {}
    /// An active finding got more evidence.
    fn refreshed(&mut self, _finding: &Finding) {}
    /// A finding's hold time passed without evidence, its evidence no longer holds against a new
    /// inventory, or it was evicted: it is no longer active.
    fn cleared(&mut self, _finding: &Finding) {}
}

/// A sink that ignores everything.
pub struct NoSink;
impl Sink for NoSink {}
