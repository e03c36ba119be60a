//! Kubernetes Events on the Service a finding concerns, so `kubectl describe svc` shows a conflict on
//! its IP: one Event when a conflict starts, repeats counted on the same Event (as kubelet does), and a
//! rate limit per Service and overall, so a storm of findings cannot become a storm of API writes.
//!
//! [`EventBook`] decides (pure, time passed in); the edge that writes the Events lives with the
//! Kubernetes source, which has the client.

use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::inventory::{Inventory, ServiceName};
use crate::monitor::finding::{Finding, FindingKind};
use crate::wire::observation::Timestamp;
use crate::wire::vendor::Vendors;

/// Repeats of the same Event within this window are counted on it rather than written anew (the
/// window client-go and kube-rs use).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// New Events a Service may get at once; then one per [`SERVICE_REFILL`].
const SERVICE_BURST: f64 = 5.0;
/// One more new Event per Service this often.
const SERVICE_REFILL: Duration = Duration::from_secs(60);
/// API writes (new Events and counts) per second over all Services.
const WRITES_PER_SECOND: f64 = 5.0;
/// Most Events remembered (for counting repeats); the oldest are forgotten first.
const MAX_REMEMBERED: usize = 1024;

/// What a finding becomes on its Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// The Service.
    pub service: ServiceName,
    /// `Warning`.
    pub type_: &'static str,
    /// `IPConflict`, `IPUnanswered`, `IPDrift`, `IgnoredAnnotation`.
    pub reason: &'static str,
    /// What happened and what to do, for `kubectl describe`.
    pub message: String,
    /// What repeats are counted by: the IP for conflicts (a foreign device found both answering a
    /// probe with the announcer and claiming the IP is one conflict, not two), else the message.
    pub subject: String,
}

impl EventSpec {
    /// The Event a raised finding deserves, if any: only warning and critical findings about a
    /// Service. `inv` names the announcer; `vendors` the MAC's maker.
    pub fn of(f: &Finding, inv: &Inventory, vendors: &Vendors) -> Option<EventSpec> {
        let service = f.service.as_deref()?.clone();
        let reason = match f.kind {
            FindingKind::ForeignMac | FindingKind::WrongAnnouncer | FindingKind::MultipleResponders => {
                "IPConflict"
            }
            FindingKind::Unanswered => "IPUnanswered",
            FindingKind::IpDrift => "IPDrift",
            FindingKind::IgnoredAnnotation => "IgnoredAnnotation",
            _ => return None,
        };
        let vendor = |m| vendors.lookup(m).map(|v| format!(" ({v})")).unwrap_or_default();
        let announcer = inv
            .services
            .iter()
            .find(|s| *s.name == service)
            .and_then(|s| s.announcer.as_deref())
            .map(|n| format!("; MetalLB announces it from node {n}"))
            .unwrap_or_default();
        let what = match f.kind {
            FindingKind::ForeignMac => format!(
                "{} is claimed by {}{}, which is not a cluster node{announcer}",
                f.ip,
                f.mac,
                vendor(f.mac)
            ),
            FindingKind::WrongAnnouncer => format!(
                "{} is claimed by node {} ({}){announcer}",
                f.ip,
                f.node.as_deref().unwrap_or("?"),
                f.mac
            ),
            FindingKind::MultipleResponders => {
                // Both MACs of one conflict raise a finding each: the same message counts them on one
                // Event.
                let mut macs = [Some(f.mac), f.other_mac];
                macs.sort();
                let list: Vec<String> = macs.iter().flatten().map(|m| format!("{m}{}", vendor(*m))).collect();
                format!("{} is answered by {}{announcer}", f.ip, list.join(" and "))
            }
            FindingKind::Unanswered => format!("nobody answers ARP/ND probes for {}{announcer}", f.ip),
            _ => f.describe(),
        };
        let mut message = format!("{what}: {}", f.kind.advice());
        // The Events API takes at most 1 kB.
        if message.len() > 1024 {
            let mut end = 1021;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push_str("...");
        }
        let subject = match reason {
            "IPConflict" | "IPUnanswered" => f.ip.to_string(),
            _ => message.clone(),
        };
        Some(EventSpec { service, type_: "Warning", reason, message, subject })
    }
}

/// What to do with an Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Write a new Event.
    Create,
    /// Count a repeat on the Event written before (by its name), now `count` times.
    Count {
        /// The Event's name.
        name: String,
        /// Occurrences so far, this one included.
        count: u32,
    },
}

#[derive(Debug)]
struct Remembered {
    name: Option<String>,
    count: u32,
    last: Timestamp,
}

/// Decides which Events are written, and which repeats are counted.
#[derive(Debug, Default)]
pub struct EventBook {
    seen: FxHashMap<(ServiceName, &'static str, String), Remembered>,
    tokens: FxHashMap<ServiceName, (f64, Timestamp)>,
    global: (f64, Timestamp),
    /// Events left unwritten by the rate limits.
    pub dropped: u64,
}

fn refill(bucket: &mut (f64, Timestamp), now: Timestamp, per_second: f64, cap: f64) {
    bucket.0 = (bucket.0 + now.since(bucket.1).as_secs_f64() * per_second).min(cap);
    bucket.1 = now;
}

impl EventBook {
    /// Whether (and how) `spec` is written at `now`; `None` when a rate limit holds it back.
    pub fn decide(&mut self, spec: &EventSpec, now: Timestamp) -> Option<Write> {
        if self.global.1 == Timestamp(0) {
            self.global = (WRITES_PER_SECOND, now);
        }
        refill(&mut self.global, now, WRITES_PER_SECOND, WRITES_PER_SECOND);
        if self.global.0 < 1.0 {
            self.dropped += 1;
            return None;
        }
        let key = (spec.service.clone(), spec.reason, spec.subject.clone());
        if let Some(r) = self.seen.get_mut(&key)
            && now.since(r.last) <= SERIES_WINDOW
            && let Some(name) = &r.name
        {
            r.count += 1;
            r.last = now;
            self.global.0 -= 1.0;
            return Some(Write::Count { name: name.clone(), count: r.count });
        }
        let bucket = self.tokens.entry(spec.service.clone()).or_insert((SERVICE_BURST, now));
        refill(bucket, now, 1.0 / SERVICE_REFILL.as_secs_f64(), SERVICE_BURST);
        if bucket.0 < 1.0 {
            self.dropped += 1;
            return None;
        }
        bucket.0 -= 1.0;
        self.global.0 -= 1.0;
        if self.seen.len() >= MAX_REMEMBERED {
            self.forget_oldest(now);
        }
        self.seen.insert(key, Remembered { name: None, count: 1, last: now });
        Some(Write::Create)
    }

    /// The Event for `spec` was created under `name`: repeats are counted on it.
    pub fn created(&mut self, spec: &EventSpec, name: String) {
        if let Some(r) = self.seen.get_mut(&(spec.service.clone(), spec.reason, spec.subject.clone())) {
            r.name = Some(name);
        }
    }

    fn forget_oldest(&mut self, now: Timestamp) {
        self.seen.retain(|_, r| now.since(r.last) <= SERIES_WINDOW);
        if self.seen.len() >= MAX_REMEMBERED {
            let oldest = self.seen.iter().min_by_key(|(_, r)| r.last).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.seen.remove(&k);
            }
        }
        self.tokens.retain(|_, (tokens, at)| *tokens < SERVICE_BURST || now.since(*at) <= SERVICE_REFILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Parts, Service};
    use crate::monitor::detect::{DetectConfig, Detector};
    use crate::monitor::finding::NoSink;
    use crate::wire::mac::Mac;
    use crate::wire::observation::{FrameKind, Observation};

    fn secs(s: f64) -> Timestamp {
        Timestamp(1_700_000_000_000_000_000 + (s * 1e9) as u64)
    }

    fn foreign_claim(inv: &Inventory, mac: Mac) -> Finding {
        let mut d = Detector::new(DetectConfig::default());
        let o = Observation {
            time: secs(0.0),
            kind: FrameKind::Gratuitous,
            sender_mac: mac,
            eth_src: mac,
            sender_ip: "10.0.0.100".parse().unwrap(),
            target_ip: "10.0.0.100".parse().unwrap(),
            ..Observation::EMPTY
        };
        d.observe(&o, inv, &mut NoSink);
        d.findings().next().unwrap().clone()
    }

    fn inv() -> Inventory {
        let mut s = Service::assigned("web/nginx".parse().unwrap(), vec!["10.0.0.100".parse().unwrap()]);
        s.announcer = Some("worker-2".into());
        Inventory::build(Parts { services: vec![s], ..Parts::default() }, None)
    }

    #[test]
    fn a_conflict_names_ip_mac_and_announcer() {
        let inv = inv();
        let f = foreign_claim(&inv, Mac([0x02, 0, 0, 0, 0, 0xf0]));
        let e = EventSpec::of(&f, &inv, &Vendors::default()).unwrap();
        assert_eq!(
            (e.reason, e.type_, e.service.to_string().as_str()),
            ("IPConflict", "Warning", "web/nginx")
        );
        assert!(e.message.contains("10.0.0.100") && e.message.contains("02:00:00:00:00:f0"), "{}", e.message);
        assert!(
            e.message.contains("(locally administered)") && e.message.contains("node worker-2"),
            "{}",
            e.message
        );
        assert!(e.message.contains(FindingKind::ForeignMac.advice()));
    }

    #[test]
    fn repeats_are_counted_and_storms_are_limited() {
        let inv = inv();
        let spec = |m: u8| {
            EventSpec::of(&foreign_claim(&inv, Mac([2, 0, 0, 0, 0, m])), &inv, &Vendors::default()).unwrap()
        };
        let mut b = EventBook::default();
        let a = spec(1);
        assert_eq!(b.decide(&a, secs(0.0)), Some(Write::Create));
        b.created(&a, "nginx.1".into());
        // The same conflict again within the window: counted on the same Event.
        assert_eq!(b.decide(&a, secs(10.0)), Some(Write::Count { name: "nginx.1".into(), count: 2 }));
        // After the window: a new Event.
        assert_eq!(b.decide(&a, secs(10.0 + 6.0 * 60.0 + 1.0)), Some(Write::Create));
        b.created(&a, "nginx.2".into());
        // Another MAC on the same IP within the window is the same conflict: counted on it.
        assert_eq!(
            b.decide(&spec(2), secs(10.0 + 6.0 * 60.0 + 2.0)),
            Some(Write::Count { name: "nginx.2".into(), count: 2 })
        );
        // Many conflicts on other addresses of one Service: a burst, then one a minute.
        let t = 1000.0;
        let other = |m: u8| {
            let mut s = spec(m);
            s.subject = format!("10.0.0.{m}");
            s
        };
        let written =
            (10..30).filter(|m| b.decide(&other(*m), secs(t + f64::from(*m) * 0.5)).is_some()).count();
        assert_eq!(written, 5);
        assert!(b.dropped >= 15);
        assert_eq!(b.decide(&other(99), secs(t + 75.0)), Some(Write::Create));
    }
}
