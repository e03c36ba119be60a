//! What the inventory alone shows about Services, no packets needed: IP drift (the assigned IP
//! differs from the requested one or from the IP registry, or the Service is pending), annotation
//! keys MetalLB ignores, and the history of IP and announcer changes between snapshots.
//!
//! Pure: snapshots and the time in, findings out through a [`Sink`]. Drift and ignored keys stay
//! active for as long as the inventory shows them (they do not expire with the hold time: nothing
//! refreshes them but a new snapshot); IP and announcer changes are `info` history that does.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::inventory::{Inventory, Role, Service, ServiceName};
use crate::monitor::finding::{Detail, DriftSource, Finding, FindingKind, Sink};
use crate::wire::mac::Mac;
use crate::wire::observation::{Timestamp, Vlans};

/// Identity of a Service finding: kind, Service, and what within it (the drift source and IP, the
/// annotation key).
type Key = (FindingKind, Option<Arc<ServiceName>>, String);

/// One thing the inventory shows about a Service.
struct Issue {
    kind: FindingKind,
    service: Option<Arc<ServiceName>>,
    ip: IpAddr,
    pool: Option<Arc<str>>,
    detail: Detail,
}

impl Issue {
    fn key(&self) -> Key {
        let sub = match &self.detail {
            Detail::Drift { source, expected, .. } => format!("{}:{expected}", source.as_str()),
            Detail::Ignored { key, .. } => key.to_string(),
            Detail::IpChanged { .. } | Detail::AnnouncerChanged { .. } | Detail::StrictArp { .. } => {
                String::new()
            }
        };
        (self.kind, self.service.clone(), sub)
    }

    fn finding(self, now: Timestamp) -> Finding {
        Finding {
            kind: self.kind,
            ip: self.ip,
            mac: Mac::ZERO,
            other_mac: None,
            role: self.service.is_some().then_some(Role::Service),
            service: self.service,
            node: None,
            pool: self.pool,
            expected: false,
            flip_flop: false,
            detail: Some(Arc::new(self.detail)),
            vlans: Vlans::default(),
            interface: 0,
            first_seen: now,
            last_seen: now,
            first_frame: 0,
            last_frame: 0,
            count: 1,
        }
    }
}

/// The assigned IP of the same family as `ip`, if any.
fn same_family(assigned: &[IpAddr], ip: IpAddr) -> Option<IpAddr> {
    assigned.iter().copied().find(|a| a.is_ipv4() == ip.is_ipv4())
}

/// The address a finding about `s` is filed under: `preferred`, else its first assigned IP, else
/// none (the unspecified address; reports show it as null).
fn ip_of(s: &Service, preferred: Option<IpAddr>) -> IpAddr {
    preferred.or_else(|| s.ips.first().copied()).unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// Drift and ignored keys, as `inv` shows them now.
fn standing(inv: &Inventory) -> Vec<Issue> {
    let mut out = Vec::new();
    let drift = |s: &Service, source, expected: IpAddr, from: Option<Arc<str>>| {
        let actual = same_family(&s.ips, expected);
        Issue {
            kind: FindingKind::IpDrift,
            service: Some(s.name.clone()),
            ip: ip_of(s, actual.or(Some(expected))),
            pool: s.pool.clone(),
            detail: Detail::Drift { source, expected, actual, from },
        }
    };
    for s in &inv.services {
        for &want in &s.requested {
            if !s.ips.contains(&want) {
                out.push(drift(s, DriftSource::Requested, want, s.requested_from.clone()));
            }
        }
        for k in &s.ignored {
            out.push(Issue {
                kind: FindingKind::IgnoredAnnotation,
                service: Some(s.name.clone()),
                ip: ip_of(s, None),
                pool: s.pool.clone(),
                detail: Detail::Ignored { key: k.key.clone(), expected_key: k.expected_key.clone() },
            });
        }
    }
    if let Some(kp) = &inv.kube_proxy
        && !kp.arp_ok()
    {
        out.push(Issue {
            kind: FindingKind::StrictArpOff,
            service: None,
            ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            pool: None,
            detail: Detail::StrictArp { mode: kp.mode.clone() },
        });
    }
    for (name, want) in &inv.registry {
        // A registry entry for a Service the inventory does not have is watched as a registry address;
        // drift needs the Service.
        if let Some(s) = inv.services.iter().find(|s| s.name == *name)
            && !s.ips.contains(want)
        {
            out.push(drift(s, DriftSource::Registry, *want, None));
        }
    }
    out
}

/// IP and announcer changes of Services present in both snapshots. A Service that appears, or a
/// pending one that gets its first IP, is an assignment, not a change.
fn changes(old: &Inventory, new: &Inventory) -> Vec<Issue> {
    let before: FxHashMap<&ServiceName, &Service> = old.services.iter().map(|s| (&*s.name, s)).collect();
    let mut out = Vec::new();
    for s in &new.services {
        let Some(o) = before.get(&*s.name) else { continue };
        let (mut a, mut b) = (o.ips.clone(), s.ips.clone());
        a.sort_unstable();
        b.sort_unstable();
        if a != b && !a.is_empty() && !b.is_empty() {
            out.push(Issue {
                kind: FindingKind::IpChanged,
                service: Some(s.name.clone()),
                ip: ip_of(s, None),
                pool: s.pool.clone(),
                detail: Detail::IpChanged { from: a, to: b },
            });
        }
    }
    out
}

/// A Service is pending for a moment after every creation, until MetalLB's controller assigns its IP:
/// only one still pending after this is drift (a requested IP outside every pool, a pool exhausted).
pub const PENDING_GRACE: Duration = Duration::from_secs(30);

/// History findings count changes and expire with the hold time; the others stand while the
/// inventory shows them.
fn is_history(kind: FindingKind) -> bool {
    matches!(kind, FindingKind::IpChanged | FindingKind::AnnouncerChanged)
}

/// The findings about Services, kept between snapshots.
#[derive(Default)]
pub struct ServiceFindings {
    findings: FxHashMap<Key, Finding>,
    /// Pending drift (no IP yet), since when it has been seen.
    pending_since: FxHashMap<Key, Timestamp>,
    /// The last announcer known for each Service: a failover on MetalLB >= 0.14.6 deletes one
    /// ServiceL2Status and creates another, so snapshots in between may know none.
    announcers: FxHashMap<Arc<ServiceName>, Arc<str>>,
}

impl ServiceFindings {
    /// Judges a new snapshot (`old` is the one it replaces, `None` at start): drift and ignored keys
    /// are raised, kept or cleared to match it; each IP or announcer change raises (or counts on) an
    /// `info` finding of its Service.
    pub fn update(&mut self, old: Option<&Inventory>, new: &Inventory, now: Timestamp, sink: &mut impl Sink) {
        self.judge(new, now, sink);
        let mut issues = match old {
            Some(old) => changes(old, new),
            None => Vec::new(),
        };
        let mut seen = rustc_hash::FxHashSet::default();
        for svc in &new.services {
            seen.insert(svc.name.clone());
            let Some(to) = &svc.announcer else { continue };
            match self.announcers.insert(svc.name.clone(), to.clone()) {
                Some(from) if from != *to => issues.push(Issue {
                    kind: FindingKind::AnnouncerChanged,
                    service: Some(svc.name.clone()),
                    ip: ip_of(svc, None),
                    pool: svc.pool.clone(),
                    detail: Detail::AnnouncerChanged { from, to: to.clone() },
                }),
                _ => {}
            }
        }
        self.announcers.retain(|name, _| seen.contains(name));
        for issue in issues {
            let key = issue.key();
            match self.findings.get_mut(&key) {
                Some(f) => {
                    f.count += 1;
                    f.last_seen = now;
                    f.ip = issue.ip;
                    f.detail = Some(Arc::new(issue.detail));
                    sink.refreshed(f);
                }
                None => {
                    let f = issue.finding(now);
                    sink.raised(&f);
                    self.findings.insert(key, f);
                }
            }
        }
    }

    /// Raises the pending drift of `inv` (the inventory in force) that has waited out
    /// [`PENDING_GRACE`] by `now`; the capture thread's tick calls it.
    pub fn recheck(&mut self, inv: &Inventory, now: Timestamp, sink: &mut impl Sink) {
        let waiting = self
            .pending_since
            .iter()
            .any(|(k, since)| !self.findings.contains_key(k) && now.since(*since) >= PENDING_GRACE);
        if waiting {
            self.judge(inv, now, sink);
        }
    }

    /// Drift and ignored keys: raised, kept or cleared to match `inv`.
    fn judge(&mut self, inv: &Inventory, now: Timestamp, sink: &mut impl Sink) {
        let mut issues = standing(inv);
        let pending: rustc_hash::FxHashSet<Key> = issues
            .iter()
            .filter(|i| matches!(i.detail, Detail::Drift { actual: None, .. }))
            .map(Issue::key)
            .collect();
        self.pending_since.retain(|k, _| pending.contains(k));
        for k in pending {
            self.pending_since.entry(k).or_insert(now);
        }
        let since = &self.pending_since;
        issues.retain(|i| since.get(&i.key()).is_none_or(|t| now.since(*t) >= PENDING_GRACE));
        let keep: rustc_hash::FxHashSet<Key> = issues.iter().map(Issue::key).collect();
        self.findings.retain(|key, f| {
            let history = is_history(f.kind);
            let stays = history || keep.contains(key);
            if !stays {
                sink.cleared(f);
            }
            stays
        });
        for issue in issues {
            let key = issue.key();
            match self.findings.get_mut(&key) {
                Some(f) => {
                    // Same key, maybe new facts (the actual IP of a drift moved on).
                    let detail = Detail::clone(&issue.detail);
                    if f.detail.as_deref() != Some(&detail) {
                        f.detail = Some(Arc::new(detail));
                        f.ip = issue.ip;
                    }
                }
                None => {
                    let f = issue.finding(now);
                    sink.raised(&f);
                    self.findings.insert(key, f);
                }
            }
        }
    }

    /// Clears history findings older than `hold` by `now`.
    pub fn expire(&mut self, now: Timestamp, hold: Duration, sink: &mut impl Sink) {
        self.findings.retain(|_, f| {
            let history = is_history(f.kind);
            let keep = !history || now.since(f.last_seen) <= hold;
            if !keep {
                sink.cleared(f);
            }
            keep
        });
    }

    /// The active findings (unordered).
    pub fn iter(&self) -> impl Iterator<Item = &Finding> + Clone {
        self.findings.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{IgnoredKey, Parts};
    use crate::monitor::finding::NoSink;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn svc(name: &str, ips: &[&str]) -> Service {
        Service::assigned(name.parse().unwrap(), ips.iter().map(|s| ip(s)).collect())
    }

    fn inv(services: Vec<Service>, registry: &[(&str, &str)]) -> Inventory {
        let registry = registry.iter().map(|(n, i)| (n.parse().unwrap(), ip(i))).collect();
        Inventory::build(Parts { services, registry, ..Parts::default() }, None)
    }

    type DriftFacts = (DriftSource, IpAddr, Option<IpAddr>);

    fn drift(f: &Finding) -> DriftFacts {
        match f.detail.as_deref() {
            Some(Detail::Drift { source, expected, actual, .. }) => (*source, *expected, *actual),
            d => panic!("not a drift: {d:?}"),
        }
    }

    fn sorted(t: &ServiceFindings) -> Vec<&Finding> {
        let mut v: Vec<&Finding> = t.iter().collect();
        v.sort_by_key(|f| (f.kind, f.service.clone(), f.ip));
        v
    }

    #[test]
    fn drift_from_the_request_the_registry_and_a_pending_service() {
        let t0 = Timestamp(1);
        // mlflow asked for .201 and got .215; the registry says .201 too.
        let mut mlflow = svc("ml/mlflow", &["192.168.1.215"]);
        mlflow.requested = vec![ip("192.168.1.201")];
        mlflow.requested_from = Some("metallb.io/loadBalancerIPs".into());
        // pending: asked for an IP outside every pool, has none.
        let mut pending = svc("web/pending", &[]);
        pending.requested = vec![ip("10.9.9.9")];
        // fine: got what it asked for and what the registry says.
        let mut fine = svc("web/nginx", &["192.168.1.240"]);
        fine.requested = vec![ip("192.168.1.240")];
        let snap = inv(
            vec![mlflow, pending, fine],
            &[("ml/mlflow", "192.168.1.201"), ("web/nginx", "192.168.1.240"), ("gone/svc", "192.168.1.9")],
        );
        let mut t = ServiceFindings::default();
        t.update(None, &snap, t0, &mut NoSink);
        // Every Service is pending for a moment after creation: not drift yet.
        assert_eq!(t.iter().count(), 2, "pending drift raised before its grace");
        t.recheck(&snap, Timestamp(t0.0 + 29_000_000_000), &mut NoSink);
        assert_eq!(t.iter().count(), 2);
        t.recheck(&snap, t0.plus(PENDING_GRACE), &mut NoSink);
        let mut got: Vec<(String, DriftFacts, IpAddr)> =
            sorted(&t).iter().map(|f| (f.service.as_ref().unwrap().to_string(), drift(f), f.ip)).collect();
        got.sort_by(|a, b| (&a.0, a.1.0).cmp(&(&b.0, b.1.0)));
        assert_eq!(
            got,
            [
                (
                    "ml/mlflow".into(),
                    (DriftSource::Requested, ip("192.168.1.201"), Some(ip("192.168.1.215"))),
                    ip("192.168.1.215")
                ),
                (
                    "ml/mlflow".into(),
                    (DriftSource::Registry, ip("192.168.1.201"), Some(ip("192.168.1.215"))),
                    ip("192.168.1.215")
                ),
                ("web/pending".into(), (DriftSource::Requested, ip("10.9.9.9"), None), ip("10.9.9.9")),
            ]
        );
        let f =
            t.iter().find(|f| drift(f).0 == DriftSource::Requested && f.ip == ip("192.168.1.215")).unwrap();
        assert!(f.describe().contains("has 192.168.1.215") && f.describe().contains("loadBalancerIPs"));
        // The pin is fixed: the drift clears with the next snapshot.
        let mut fixed = svc("ml/mlflow", &["192.168.1.201"]);
        fixed.requested = vec![ip("192.168.1.201")];
        let snap2 = inv(vec![fixed], &[("ml/mlflow", "192.168.1.201")]);
        struct Count(usize, usize);
        impl Sink for Count {
            fn raised(&mut self, _: &Finding) {
                self.0 += 1;
            }
            fn cleared(&mut self, _: &Finding) {
                self.1 += 1;
            }
        }
        let mut c = Count(0, 0);
        t.update(Some(&snap), &snap2, Timestamp(2), &mut c);
        // Three drifts cleared; the IP change .215 -> .201 is history.
        assert_eq!((c.0, c.1), (1, 3));
        let kinds: Vec<FindingKind> = t.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::IpChanged]);
    }

    #[test]
    fn ignored_keys_and_history_counts() {
        let mut s = svc("ml/mlflow", &["192.168.1.215"]);
        s.ignored = vec![IgnoredKey {
            key: "metallb.universe.tf/loadBalancer-ips".into(),
            expected_key: "metallb.universe.tf/loadBalancerIPs".into(),
        }];
        s.announcer = Some("worker-1".into());
        let a = inv(vec![s.clone()], &[]);
        let mut t = ServiceFindings::default();
        t.update(None, &a, Timestamp(1), &mut NoSink);
        let f = t.iter().next().unwrap();
        assert_eq!(f.kind, FindingKind::IgnoredAnnotation);
        assert!(f.describe().contains("it reads metallb.universe.tf/loadBalancerIPs"), "{}", f.describe());
        // Two failovers and an IP change: counters on one finding each.
        let mut b = s.clone();
        b.announcer = Some("worker-2".into());
        let b = inv(vec![b], &[]);
        t.update(Some(&a), &b, Timestamp(2), &mut NoSink);
        t.update(Some(&b), &a, Timestamp(3), &mut NoSink);
        let mut c = s.clone();
        c.ips = vec![ip("192.168.1.216")];
        t.update(Some(&a), &inv(vec![c], &[]), Timestamp(4), &mut NoSink);
        // A failover seen through a snapshot that knows no announcer (one status deleted, the next
        // not created yet) is still a change.
        let mut gap = s.clone();
        gap.announcer = None;
        let gap = inv(vec![gap], &[]);
        t.update(Some(&a), &gap, Timestamp(5), &mut NoSink);
        let mut back = s.clone();
        back.announcer = Some("worker-3".into());
        t.update(Some(&gap), &inv(vec![back], &[]), Timestamp(6), &mut NoSink);
        let count = |k| t.iter().find(|f| f.kind == k).map(|f| f.count);
        assert_eq!(count(FindingKind::AnnouncerChanged), Some(3));
        assert_eq!(count(FindingKind::IpChanged), Some(1));
        assert_eq!(count(FindingKind::IgnoredAnnotation), Some(1));
        // History expires with the hold time; the standing finding does not.
        t.expire(Timestamp(4 + 601_000_000_000), Duration::from_secs(600), &mut NoSink);
        let kinds: Vec<FindingKind> = t.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::IgnoredAnnotation]);
    }

    #[test]
    fn ipvs_without_strict_arp_is_a_cluster_wide_finding() {
        use crate::inventory::KubeProxy;
        let snap = |mode: &str, strict: bool| {
            let kube_proxy = Some(KubeProxy { mode: mode.into(), strict_arp: strict });
            Inventory::build(Parts { kube_proxy, ..Parts::default() }, None)
        };
        let mut t = ServiceFindings::default();
        let off = snap("ipvs", false);
        t.update(None, &off, Timestamp(1), &mut NoSink);
        let f = t.iter().next().expect("strict_arp_off");
        assert_eq!((f.kind, f.service.is_none()), (FindingKind::StrictArpOff, true));
        assert_eq!(f.severity(), crate::monitor::finding::Severity::Critical);
        for (mode, strict) in [("ipvs", true), ("iptables", false), ("nftables", false), ("", false)] {
            let mut t2 = ServiceFindings::default();
            t2.update(None, &snap(mode, strict), Timestamp(1), &mut NoSink);
            assert_eq!(t2.iter().count(), 0, "{mode} strictARP={strict}");
        }
        // Fixed in the ConfigMap: cleared by the next snapshot.
        t.update(Some(&off), &snap("ipvs", true), Timestamp(2), &mut NoSink);
        assert_eq!(t.iter().count(), 0);
    }
}
