//! l2watch's peer Leases: how each l2watch pod tells the others which MACs, interfaces and LAN IPs
//! its node answers ARP with (Node objects do not carry MACs). Both directions live here, so the
//! encoding is defined once.
//!
//! Encoding (coordination.k8s.io/v1 `Lease`, in l2watch's own namespace):
//!
//! - name `l2watch-<node>`; label `app.kubernetes.io/name: l2watch` so a watcher can select them
//!   (not the node: label values stop at 63 characters, node names at 253);
//! - `spec.holderIdentity`: the node name (authoritative; the name only keeps Leases apart);
//! - `spec.renewTime` + `spec.leaseDurationSeconds`: the peer is alive until renewTime + duration;
//! - annotations, each a comma-separated list in the publisher's order, with no spaces:
//!   `l2watch.io/macs` (lowercase, colon-separated: `52:54:00:6b:3c:01`), `l2watch.io/interfaces`
//!   (interface names), `l2watch.io/ips` (addresses as Rust and Go print them).
//!
//! Liveness compares the publisher's clock (renewTime) with the reader's (`now`): clock skew between
//! nodes eats into the duration, so publishers should renew well within it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::objects::Converted;
use super::{ObjectName, Warning};
use crate::wire::mac::Mac;

/// Name prefix of peer Leases.
pub const LEASE_PREFIX: &str = "l2watch-";
/// Annotation: the node's MACs.
pub const ANNOTATION_MACS: &str = "l2watch.io/macs";
/// Annotation: the node's LAN interfaces.
pub const ANNOTATION_INTERFACES: &str = "l2watch.io/interfaces";
/// Annotation: the node's LAN IPs.
pub const ANNOTATION_IPS: &str = "l2watch.io/ips";
/// Label: `app.kubernetes.io/name`, always `l2watch`.
pub const LABEL_APP: &str = "app.kubernetes.io/name";

/// The Lease name for a node.
pub fn lease_name(node: &str) -> String {
    format!("{LEASE_PREFIX}{node}")
}

/// What one l2watch pod published about its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The node.
    pub node: String,
    /// The MACs it answers ARP with.
    pub macs: Vec<Mac>,
    /// Its LAN interfaces.
    pub interfaces: Vec<String>,
    /// Its LAN IPs.
    pub ips: Vec<IpAddr>,
    /// Last renewal (publisher's clock).
    pub renewed: Option<Timestamp>,
    /// How long a renewal counts.
    pub duration: Option<Duration>,
}

impl PeerInfo {
    /// Whether the peer renewed within its lease duration before `now`. A Lease without renewal
    /// time or duration is never alive.
    pub fn alive(&self, now: Timestamp) -> bool {
        let (Some(renewed), Some(duration)) = (self.renewed, self.duration) else {
            return false;
        };
        let Ok(duration) = SignedDuration::try_from(duration) else {
            return true; // longer than any clock difference
        };
        now.duration_since(renewed) < duration
    }

    /// A peer Lease; `None` for a Lease not named `l2watch-...`. MACs and IPs that do not parse are
    /// skipped with a warning.
    pub fn from_lease(lease: &Lease) -> Converted<PeerInfo> {
        let name = lease.metadata.name.as_deref().unwrap_or("");
        let Some(suffix) = name.strip_prefix(LEASE_PREFIX) else {
            return Converted { value: None, warnings: Vec::new() };
        };
        let object = ObjectName::of("Lease", lease).to_string();
        let mut warnings = Vec::new();
        let spec = lease.spec.as_ref();
        let node =
            spec.and_then(|s| s.holder_identity.as_deref()).filter(|h| !h.is_empty()).unwrap_or(suffix);
        if node.is_empty() {
            return Converted {
                value: None,
                warnings: vec![Warning::Unreadable { object, reason: "names no node".into() }],
            };
        }
        let empty = BTreeMap::new();
        let ann = lease.metadata.annotations.as_ref().unwrap_or(&empty);
        let list = |key: &str| -> Vec<&str> {
            ann.get(key)
                .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default()
        };
        let mut parsed = |key: &str, s: &str, reason: Option<String>| {
            if let Some(reason) = reason {
                warnings.push(Warning::BadValue {
                    object: object.clone(),
                    field: key.to_owned(),
                    value: s.to_owned(),
                    reason,
                });
            }
        };
        let macs = list(ANNOTATION_MACS)
            .into_iter()
            .filter_map(|s| {
                let r = s.parse::<Mac>();
                parsed(ANNOTATION_MACS, s, r.as_ref().err().map(ToString::to_string));
                r.ok()
            })
            .collect();
        let ips = list(ANNOTATION_IPS)
            .into_iter()
            .filter_map(|s| {
                let r = s.parse::<IpAddr>();
                parsed(ANNOTATION_IPS, s, r.as_ref().err().map(ToString::to_string));
                r.ok()
            })
            .collect();
        let duration = match spec.and_then(|s| s.lease_duration_seconds) {
            Some(secs) if secs > 0 => Some(Duration::from_secs(secs.unsigned_abs().into())),
            Some(secs) => {
                parsed("spec.leaseDurationSeconds", &secs.to_string(), Some("not positive".into()));
                None
            }
            None => None,
        };
        let info = PeerInfo {
            node: node.to_owned(),
            macs,
            interfaces: list(ANNOTATION_INTERFACES).into_iter().map(str::to_owned).collect(),
            ips,
            renewed: spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0),
            duration,
        };
        Converted { value: Some(info), warnings }
    }
}

/// The Lease that publishes this node to its peers, renewed at `now` and valid for `duration`
/// (rounded up to whole seconds, at least one). The namespace is left to the API call.
///
/// Interface names holding a comma or whitespace (Linux allows them; no LAN interface has them) are
/// left out, since they cannot be told apart in the list.
pub fn peer_lease(
    node: &str,
    macs: &[Mac],
    interfaces: &[String],
    ips: &[IpAddr],
    now: Timestamp,
    duration: Duration,
) -> Lease {
    let join = |items: Vec<String>| items.join(",");
    let interfaces: Vec<String> = interfaces
        .iter()
        .filter(|i| !i.is_empty() && !i.contains(',') && !i.contains(char::is_whitespace))
        .cloned()
        .collect();
    let annotations = BTreeMap::from([
        (ANNOTATION_MACS.to_owned(), join(macs.iter().map(Mac::to_string).collect())),
        (ANNOTATION_INTERFACES.to_owned(), join(interfaces)),
        (ANNOTATION_IPS.to_owned(), join(ips.iter().map(IpAddr::to_string).collect())),
    ]);
    // The node is not a label: label values stop at 63 characters, node names at 253.
    let labels = BTreeMap::from([(LABEL_APP.to_owned(), "l2watch".to_owned())]);
    let secs = duration.as_secs().saturating_add(u64::from(duration.subsec_nanos() > 0)).max(1);
    Lease {
        metadata: ObjectMeta {
            name: Some(lease_name(node)),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(node.to_owned()),
            lease_duration_seconds: Some(i32::try_from(secs).unwrap_or(i32::MAX)),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn mac(s: &str) -> Mac {
        s.parse().unwrap()
    }

    #[test]
    fn round_trip_through_json() {
        let macs = [mac("52:54:00:6b:3c:02"), mac("52-54-00-6B-3C-12")];
        let interfaces = ["eth0".to_owned(), "eth1".to_owned(), "bad,name".to_owned()];
        let ips: [IpAddr; 2] = ["192.168.1.12".parse().unwrap(), "fd00::12".parse().unwrap()];
        let now = ts("2025-03-10T12:00:05.118220Z");
        let lease = peer_lease("worker-2", &macs, &interfaces, &ips, now, Duration::from_millis(30_500));
        assert_eq!(lease.metadata.name.as_deref(), Some("l2watch-worker-2"));
        let ann = lease.metadata.annotations.as_ref().unwrap();
        assert_eq!(ann[ANNOTATION_MACS], "52:54:00:6b:3c:02,52:54:00:6b:3c:12");
        assert_eq!(ann[ANNOTATION_INTERFACES], "eth0,eth1");
        assert_eq!(ann[ANNOTATION_IPS], "192.168.1.12,fd00::12");
        assert_eq!(lease.spec.as_ref().unwrap().lease_duration_seconds, Some(31));

        // Through the wire format, as a peer reads it back.
        let json = serde_json::to_value(&lease).unwrap();
        let back: Lease = serde_json::from_value(json).unwrap();
        let peer = PeerInfo::from_lease(&back);
        assert!(peer.warnings.is_empty(), "{:?}", peer.warnings);
        let peer = peer.value.unwrap();
        assert_eq!(peer.node, "worker-2");
        assert_eq!(peer.macs, macs);
        assert_eq!(peer.interfaces, ["eth0", "eth1"]);
        assert_eq!(peer.ips, ips);
        assert_eq!(peer.renewed, Some(now));
        assert_eq!(peer.duration, Some(Duration::from_secs(31)));
    }

    #[test]
    fn alive_until_renewal_plus_duration() {
        let now = ts("2025-03-10T12:00:00Z");
        let peer = PeerInfo::from_lease(&peer_lease("w", &[], &[], &[], now, Duration::from_secs(15)))
            .value
            .unwrap();
        assert!(peer.alive(now));
        assert!(peer.alive(ts("2025-03-10T12:00:14.999Z")));
        assert!(!peer.alive(ts("2025-03-10T12:00:15Z")));
        assert!(!peer.alive(ts("2025-03-11T12:00:00Z")));
        // A publisher whose clock runs ahead is alive, not dead.
        assert!(peer.alive(ts("2025-03-10T11:59:00Z")));
        let never_renewed = PeerInfo { renewed: None, ..peer.clone() };
        assert!(!never_renewed.alive(now));
        let no_duration = PeerInfo { duration: None, ..peer };
        assert!(!no_duration.alive(now));
    }

    #[test]
    fn other_leases_and_bad_values() {
        for lease in crate::inventory::kubernetes::fixtures::load::<Lease>("10-leases-cilium-kubevip.yaml") {
            let c = PeerInfo::from_lease(&lease);
            assert_eq!(c.value, None);
            assert!(c.warnings.is_empty());
        }
        let mut lease = peer_lease("w", &[], &[], &[], ts("2025-03-10T12:00:00Z"), Duration::from_secs(1));
        let ann = lease.metadata.annotations.as_mut().unwrap();
        ann.insert(ANNOTATION_MACS.into(), "52:54:00:6b:3c:02, nonsense".into());
        ann.insert(ANNOTATION_IPS.into(), "10.0.0.1,10.0.0".into());
        lease.spec.as_mut().unwrap().holder_identity = None;
        let c = PeerInfo::from_lease(&lease);
        let peer = c.value.unwrap();
        assert_eq!(peer.node, "w", "the name stands in for a missing holder");
        assert_eq!(peer.macs, [mac("52:54:00:6b:3c:02")]);
        assert_eq!(peer.ips, ["10.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    }
}
