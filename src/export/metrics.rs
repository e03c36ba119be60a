//! The Prometheus metrics of DESIGN.md's contract, and the bookkeeping that keeps them bounded.
//!
//! The capture thread never touches a labelled metric per frame: it counts in plain integers and
//! publishes deltas once per housekeeping tick, through handles resolved once per interface. Series whose
//! labels the LAN controls (IPs, MACs) are created only for findings and probe rounds of watched
//! addresses, and all of them together are capped by `metrics.max_series`; the least recently updated
//! are removed first and counted in `l2watch_series_evicted_total`.

use std::collections::BTreeMap;
use std::fs;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{
    Counter, Encoder as _, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::inventory::{Inventory, ServiceName};
use crate::monitor::finding::{Detail, Finding, FindingKey, FindingKind, Severity};
use crate::wire::decode::SkipReason;
use crate::wire::observation::FrameKind;

/// The `namespace` and `service` labels of a finding (empty for addresses that are not a Service's).
fn service_labels(f: &Finding) -> (&str, &str) {
    f.service.as_ref().map_or(("", ""), |s| (s.namespace.as_str(), s.name.as_str()))
}

/// A labelled family whose series the [`SeriesBook`] bounds, kept here and written straight to the
/// text format: the prometheus crate's gather builds a message per series and sorts them all, about
/// 6 ms for 10,000 series; this renders them in about 1.
struct Bounded {
    kind: &'static str,
    name: &'static str,
    help: &'static str,
    /// Label names in the order callers give values.
    labels: Vec<&'static str>,
    /// Positions of `labels` sorted by name: the exposition lists labels by name, as prometheus does.
    order: Vec<usize>,
    /// Series by label values in `order`, so they render sorted.
    series: std::sync::Mutex<BTreeMap<Vec<String>, i64>>,
}

impl Bounded {
    fn new(kind: &'static str, name: &'static str, help: &'static str, labels: &[&'static str]) -> Bounded {
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by_key(|&i| labels[i]);
        Bounded { kind, name, help, labels: labels.to_vec(), order, series: Default::default() }
    }

    fn key<S: AsRef<str>>(&self, values: &[S]) -> Vec<String> {
        self.order.iter().map(|&i| values.get(i).map_or("", |v| v.as_ref()).to_owned()).collect()
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<Vec<String>, i64>) -> T) -> T {
        // A panic while holding the lock leaves a consistent map: every change is one insert or remove.
        let mut g = self.series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g)
    }

    fn set<S: AsRef<str>>(&self, values: &[S], v: i64) {
        let key = self.key(values);
        self.with(|m| m.insert(key, v));
    }

    fn inc_by<S: AsRef<str>>(&self, values: &[S], d: u64) {
        let key = self.key(values);
        self.with(|m| {
            let e = m.entry(key).or_insert(0);
            *e = e.saturating_add(i64::try_from(d).unwrap_or(i64::MAX));
        });
    }

    fn remove<S: AsRef<str>>(&self, values: &[S]) {
        let key = self.key(values);
        self.with(|m| m.remove(&key));
    }

    /// Appends the family in the text format; nothing when it has no series (as prometheus does).
    fn render(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        self.with(|m| {
            if m.is_empty() {
                return;
            }
            let _ = writeln!(out, "# HELP {} {}", self.name, escape(self.help, false));
            let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
            for (values, v) in m.iter() {
                out.extend_from_slice(self.name.as_bytes());
                out.push(b'{');
                for (n, (&i, value)) in self.order.iter().zip(values).enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    let _ = write!(out, "{}=\"{}\"", self.labels[i], escape(value, true));
                }
                let _ = writeln!(out, "}} {v}");
            }
        });
    }
}

/// The text format's escaping: backslash and newline, and in label values the double quote.
fn escape(s: &str, quote: bool) -> std::borrow::Cow<'_, str> {
    if !(s.contains(['\\', '\n']) || quote && s.contains('"')) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '"' if quote => o.push_str("\\\""),
            c => o.push(c),
        }
    }
    std::borrow::Cow::Owned(o)
}

/// Every metric l2watch exports, registered in one registry.
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    frames: IntCounterVec,
    dropped: IntCounterVec,
    malformed: IntCounterVec,
    capture_up: IntGaugeVec,
    probes_sent: IntCounterVec,
    probe_rtt: HistogramVec,
    foreign_replies: Bounded,
    conflict_active: Bounded,
    ip_responders: Bounded,
    ip_unanswered: Bounded,
    ip_mac_changes: Bounded,
    service_info: IntGaugeVec,
    service_drift: Bounded,
    service_ip_changes: Bounded,
    service_ignored: Bounded,
    service_announcer_changes: Bounded,
    watched_ips: IntGaugeVec,
    inventory_synced: IntGaugeVec,
    strict_arp: IntGaugeVec,
    peer_up: IntGaugeVec,
    series_evicted: IntCounter,
    /// `l2watch_http_connections_evicted_total`: HTTP connections closed to make room for new ones.
    pub http_connections_evicted: IntCounter,
    config_reloads: IntCounterVec,
    config_reload_ok: IntGaugeVec,
    state_writes: IntCounterVec,
    state_bytes: IntGaugeVec,
    process: Process,
}

struct Process {
    cpu: Counter,
    cpu_seen: std::sync::Mutex<f64>,
    rss: IntGauge,
    vsize: IntGauge,
    fds: IntGauge,
    max_fds: IntGauge,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

/// Handles of one capture interface's metrics, resolved once so the capture thread never looks up labels.
pub struct InterfaceMetrics {
    frames: [IntCounter; FrameKind::ALL.len()],
    malformed: [IntCounter; SkipReason::ALL.len()],
    dropped: IntCounter,
    /// `l2watch_capture_up`.
    pub up: IntGauge,
    /// `l2watch_probes_sent_total`.
    pub probes_sent: IntCounter,
    /// `l2watch_probe_rtt_seconds`.
    pub rtt: Histogram,
}

/// Per-interface counts kept by the capture thread in plain integers and published as deltas.
#[derive(Clone, Debug, Default)]
pub struct InterfaceCounts {
    /// ARP/ND frames by [`FrameKind::index`].
    pub frames: [u64; FrameKind::ALL.len()],
    /// Skipped frames by [`SkipReason::index`].
    pub malformed: [u64; SkipReason::ALL.len()],
    /// Kernel drops.
    pub dropped: u64,
}

impl InterfaceMetrics {
    /// Adds what `now` counts beyond `published`, then remembers `now` as published.
    pub fn publish(&self, now: &InterfaceCounts, published: &mut InterfaceCounts) {
        // The counts only grow; saturating keeps a counter from ever going down if that changed.
        for (i, c) in self.frames.iter().enumerate() {
            c.inc_by(now.frames[i].saturating_sub(published.frames[i]));
        }
        for (i, c) in self.malformed.iter().enumerate() {
            c.inc_by(now.malformed[i].saturating_sub(published.malformed[i]));
        }
        self.dropped.inc_by(now.dropped.saturating_sub(published.dropped));
        *published = now.clone();
    }
}

/// Which labelled family a bounded series belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Family {
    ForeignReplies,
    ConflictActive,
    IpResponders,
    IpUnanswered,
    IpMacChanges,
    ServiceDrift,
    ServiceIgnored,
    ServiceIpChanges,
    ServiceAnnouncerChanges,
}

impl Family {
    /// Gauges that say something is wrong now: removed when it is over, evicted last.
    fn is_state(self) -> bool {
        matches!(self, Family::ConflictActive | Family::ServiceDrift | Family::ServiceIgnored)
    }
}

/// Which finding a published count belongs to.
type PublishedKey = (FindingKey, Option<Arc<ServiceName>>);

/// The LAN-controlled series that exist, with when each was last updated.
#[derive(Default)]
pub struct SeriesBook {
    series: FxHashMap<(Family, Vec<String>), u64>,
    tick: u64,
    /// Per finding (a Service's findings also by Service): first seen and count last published.
    published: FxHashMap<PublishedKey, (u64, u64)>,
    suppressed: FxHashSet<FindingKey>,
    scratch: Vec<u64>,
}

impl SeriesBook {
    /// Takes `findings` (restored from a state file) as published with the evidence they have: the
    /// counters they feed count only what comes after the restart, which Prometheus, seeing the
    /// restart's reset, adds to what it had.
    pub fn seed<'a>(&mut self, findings: impl Iterator<Item = &'a Finding>) {
        for f in findings.filter(|f| !f.kind.from_inventory()) {
            self.published.insert((f.key(), None), (f.first_seen.0, f.count));
        }
    }

    /// Number of bounded series alive.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether no bounded series exists.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

const RTT_BUCKETS: [f64; 12] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0, 2.5];

impl Metrics {
    /// Builds and registers every metric. Fails only on a programming error (a duplicate name).
    pub fn new() -> prometheus::Result<Metrics> {
        let r = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(opts(name, help), labels)?;
            r.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntGaugeVec> {
            let g = IntGaugeVec::new(opts(name, help), labels)?;
            r.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let svc = ["ip", "namespace", "service"];
        let m = Metrics {
            frames: counter(
                "l2watch_frames_total",
                "ARP and neighbour discovery frames seen, by kind.",
                &["interface", "kind"],
            )?,
            dropped: counter(
                "l2watch_frames_dropped_total",
                "Frames the kernel dropped because the capture ring was full (PACKET_STATISTICS).",
                &["interface"],
            )?,
            malformed: counter(
                "l2watch_frames_malformed_total",
                "ARP/ND frames skipped as unusable, by reason.",
                &["interface", "reason"],
            )?,
            capture_up: gauge(
                "l2watch_capture_up",
                "1 while the interface is up and captured, 0 while it is down or gone.",
                &["interface"],
            )?,
            probes_sent: counter(
                "l2watch_probes_sent_total",
                "RFC 5227 probes and DAD solicitations sent.",
                &["interface"],
            )?,
            probe_rtt: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "l2watch_probe_rtt_seconds",
                        "Time from a probe to the first reply of its round.",
                    )
                    .buckets(RTT_BUCKETS.to_vec()),
                    &["interface"],
                )?;
                r.register(Box::new(h.clone()))?;
                h
            },
            foreign_replies: Bounded::new(
                "counter",
                "l2watch_foreign_mac_replies_total",
                "Claims of a service IP by a MAC outside the cluster and the allow-list.",
                &["ip", "mac", "vendor", "namespace", "service"],
            ),
            conflict_active: Bounded::new(
                "gauge",
                "l2watch_conflict_active",
                "1 while a warning or critical finding about frames is active, one series per MAC involved.",
                &["kind", "ip", "mac", "namespace", "service"],
            ),
            ip_responders: Bounded::new(
                "gauge",
                "l2watch_ip_responders",
                "Distinct MACs that answered the last probe round.",
                &["ip"],
            ),
            ip_unanswered: Bounded::new(
                "gauge",
                "l2watch_ip_unanswered",
                "Probe rounds in a row without any reply for a service IP (0 once answered).",
                &svc,
            ),
            ip_mac_changes: Bounded::new(
                "counter",
                "l2watch_ip_mac_changes_total",
                "Times an IP moved to another MAC; expected=true when an announcer change explains it.",
                &["ip", "expected"],
            ),
            service_info: gauge(
                "l2watch_service_info",
                "1 for every LoadBalancer IP of a Service, with its announcer and pool.",
                &["namespace", "service", "ip", "announcer", "pool"],
            )?,
            service_drift: Bounded::new(
                "gauge",
                "l2watch_service_ip_drift",
                "1 while a Service's IP differs from the one it requested or the IP registry gives (actual_ip empty: pending).",
                &["namespace", "service", "expected_ip", "actual_ip", "source"],
            ),
            service_ip_changes: Bounded::new(
                "counter",
                "l2watch_service_ip_changes_total",
                "Times a Service's assigned IP changed.",
                &["namespace", "service"],
            ),
            service_ignored: Bounded::new(
                "gauge",
                "l2watch_service_ignored_annotation",
                "1 while a Service carries a MetalLB-looking annotation key MetalLB does not read.",
                &["namespace", "service", "key", "expected_key"],
            ),
            service_announcer_changes: Bounded::new(
                "counter",
                "l2watch_service_announcer_changes_total",
                "Times the node announcing a Service changed.",
                &["namespace", "service"],
            ),
            watched_ips: gauge("l2watch_watched_ips", "Addresses watched, by role.", &["role"])?,
            inventory_synced: gauge(
                "l2watch_inventory_synced",
                "1 when the inventory from this source is loaded.",
                &["source"],
            )?,
            strict_arp: gauge(
                "l2watch_kube_proxy_strict_arp",
                "1 when kube-proxy's strictARP is on or not needed, 0 when it runs in IPVS mode without it (every node answers ARP for every Service IP); absent when unknown.",
                &["mode"],
            )?,
            peer_up: gauge(
                "l2watch_peer_up",
                "1 for each node whose l2watch published its MACs in a Lease recently, 0 when its Lease expired.",
                &["peer"],
            )?,
            series_evicted: {
                let c = IntCounter::with_opts(opts(
                    "l2watch_series_evicted_total",
                    "Series removed because metrics.max_series was reached.",
                ))?;
                r.register(Box::new(c.clone()))?;
                c
            },
            config_reloads: counter(
                "l2watch_config_reloads_total",
                "Config reloads (SIGHUP), by result: success, or failure (the running config stays).",
                &["result"],
            )?,
            config_reload_ok: gauge(
                "l2watch_config_last_reload_successful",
                "1 when the last config reload (SIGHUP) succeeded or none was asked for, 0 when it failed.",
                &[],
            )?,
            state_writes: counter(
                "l2watch_state_writes_total",
                "State file writes, by result: ok, or error (the previous file stays whole).",
                &["result"],
            )?,
            state_bytes: gauge("l2watch_state_bytes", "Size of the state file last written.", &[])?,
            http_connections_evicted: {
                let c = IntCounter::with_opts(opts(
                    "l2watch_http_connections_evicted_total",
                    "HTTP connections closed because too many were open (the oldest go first): slow or stuck clients.",
                ))?;
                r.register(Box::new(c.clone()))?;
                c
            },
            process: Process::new(&r)?,
            registry: r.clone(),
        };
        m.config_reload_ok.with_label_values(&[] as &[&str]).set(1);
        let build = gauge("l2watch_build_info", "1, labelled with the l2watch version.", &["version"])?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Ok(m)
    }

    /// Resolves the handles of one capture interface.
    pub fn interface(&self, name: &str) -> InterfaceMetrics {
        InterfaceMetrics {
            frames: FrameKind::ALL.map(|k| self.frames.with_label_values(&[name, k.as_str()])),
            malformed: SkipReason::ALL.map(|r| self.malformed.with_label_values(&[name, r.as_str()])),
            dropped: self.dropped.with_label_values(&[name]),
            up: self.capture_up.with_label_values(&[name]),
            probes_sent: self.probes_sent.with_label_values(&[name]),
            rtt: self.probe_rtt.with_label_values(&[name]),
        }
    }

    /// Publishes what the inventory says: watched addresses per role, Service info, and the source.
    pub fn set_inventory(&self, inv: &Inventory) {
        for (role, n) in inv.watched_counts() {
            self.watched_ips.with_label_values(&[role.as_str()]).set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.service_info.reset();
        for s in &inv.services {
            for ip in &s.ips {
                let ip = ip.to_string();
                let labels = [
                    s.name.namespace.as_str(),
                    s.name.name.as_str(),
                    ip.as_str(),
                    s.announcer.as_deref().unwrap_or(""),
                    s.pool.as_deref().unwrap_or(""),
                ];
                self.service_info.with_label_values(&labels).set(1);
            }
        }
        self.strict_arp.reset();
        if let Some(kp) = &inv.kube_proxy {
            self.strict_arp.with_label_values(&[&kp.mode]).set(i64::from(kp.arp_ok()));
        }
    }

    /// A config reload (SIGHUP) succeeded or failed.
    pub fn config_reloaded(&self, ok: bool) {
        self.config_reloads.with_label_values(&[if ok { "success" } else { "failure" }]).inc();
        self.config_reload_ok.with_label_values(&[] as &[&str]).set(i64::from(ok));
    }

    /// The state file was written (`Some(bytes)`) or could not be.
    pub fn state_written(&self, bytes: Option<usize>) {
        self.state_writes.with_label_values(&[if bytes.is_some() { "ok" } else { "error" }]).inc();
        if let Some(n) = bytes {
            self.state_bytes.with_label_values(&[] as &[&str]).set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// `l2watch_inventory_synced{source}`: whether `source` is in sync now.
    pub fn set_synced(&self, source: &str, synced: bool) {
        self.inventory_synced.reset();
        self.inventory_synced.with_label_values(&[source]).set(i64::from(synced));
    }

    /// `l2watch_peer_up`: every peer node with whether its Lease is current. Peers are cluster nodes
    /// (bounded by the cluster, not by the LAN).
    pub fn set_peers<'a>(&self, peers: impl Iterator<Item = (&'a str, bool)>) {
        self.peer_up.reset();
        for (peer, up) in peers {
            self.peer_up.with_label_values(&[peer]).set(i64::from(up));
        }
    }

    /// Brings the finding series in line with the active findings: `l2watch_conflict_active` for
    /// warning and critical findings about frames, the Service gauges (drift, ignored annotations)
    /// for those about the inventory, and the counters (`l2watch_foreign_mac_replies_total`,
    /// `l2watch_ip_mac_changes_total`, the Service change counters) from the growth of each
    /// finding's evidence count.
    pub fn sync_findings<'a>(
        &self,
        book: &mut SeriesBook,
        findings: impl Iterator<Item = &'a Finding> + Clone,
        vendors: &crate::wire::vendor::Vendors,
        max_series: usize,
    ) {
        book.tick += 1;
        let tick = book.tick;
        // Conflicts get at most the share of the budget that eviction leaves standing, the most severe
        // and oldest first: more active findings than that must not make the published set (and the
        // alerts on it) churn from one tick to the next.
        let budget = max_series - max_series / 4;
        let mut conflicts: Vec<&Finding> = findings
            .clone()
            .filter(|f| f.severity() >= Severity::Warning && !f.kind.from_inventory())
            .collect();
        let mut suppressed = FxHashSet::default();
        if conflicts.len() > budget {
            conflicts.sort_by_key(|f| (std::cmp::Reverse(f.severity()), f.first_seen, f.ip, f.mac, f.kind));
            for f in &conflicts[budget..] {
                if !book.suppressed.contains(&f.key()) {
                    self.series_evicted.inc();
                }
                suppressed.insert(f.key());
            }
            conflicts.truncate(budget);
        }
        book.suppressed = suppressed;
        let mut states: Vec<(Family, Vec<String>)> = conflicts
            .iter()
            .map(|f| {
                let (ns, svc) = service_labels(f);
                let mac = f.shown_mac().map(|m| m.to_string()).unwrap_or_default();
                (
                    Family::ConflictActive,
                    vec![f.kind.as_str().to_owned(), f.ip.to_string(), mac, ns.into(), svc.into()],
                )
            })
            .collect();
        for f in findings.clone() {
            let (ns, svc) = service_labels(f);
            match f.detail.as_deref() {
                Some(Detail::Drift { source, expected, actual, .. }) => states.push((
                    Family::ServiceDrift,
                    vec![
                        ns.into(),
                        svc.into(),
                        expected.to_string(),
                        actual.map(|a| a.to_string()).unwrap_or_default(),
                        source.as_str().into(),
                    ],
                )),
                Some(Detail::Ignored { key, expected_key }) => states.push((
                    Family::ServiceIgnored,
                    vec![ns.into(), svc.into(), key.to_string(), expected_key.to_string()],
                )),
                _ => {}
            }
        }
        // A state that is over loses its series (DESIGN: removed when cleared), before new series are
        // admitted: they should not compete with the dead for room.
        let alive: FxHashSet<&(Family, Vec<String>)> = states.iter().collect();
        book.series.retain(|key, _| {
            let keep = !key.0.is_state() || alive.contains(key);
            if !keep {
                self.remove(key.0, &key.1);
            }
            keep
        });
        for (family, labels) in &states {
            self.admit(book, *family, labels, tick, max_series);
            self.family(*family).set(labels, 1);
        }
        let mut published = std::mem::take(&mut book.published);
        let mut next = FxHashMap::default();
        for f in findings {
            // A Service finding is the Service's, whatever IP it is filed under now.
            let key = if f.kind.from_inventory() {
                let ip = crate::wire::iprange::IpKey::from(std::net::IpAddr::from([0u8; 4]));
                (FindingKey { kind: f.kind, ip, mac: f.mac }, f.service.clone())
            } else {
                (f.key(), None)
            };
            let (first, seen) = published.remove(&key).unwrap_or((f.first_seen.0, 0));
            // A finding that cleared and came back starts counting from 1 again.
            let delta = if first == f.first_seen.0 { f.count.saturating_sub(seen) } else { f.count };
            next.insert(key, (f.first_seen.0, f.count));
            if delta == 0 {
                continue;
            }
            let (ns, svc) = service_labels(f);
            let (family, labels) = match f.kind {
                FindingKind::ForeignMac => {
                    let vendor = vendors.lookup(f.mac).unwrap_or_default().to_owned();
                    (
                        Family::ForeignReplies,
                        vec![f.ip.to_string(), f.mac.to_string(), vendor, ns.into(), svc.into()],
                    )
                }
                FindingKind::MacChanged => {
                    (Family::IpMacChanges, vec![f.ip.to_string(), f.expected.to_string()])
                }
                FindingKind::IpChanged => (Family::ServiceIpChanges, vec![ns.into(), svc.into()]),
                FindingKind::AnnouncerChanged => {
                    (Family::ServiceAnnouncerChanges, vec![ns.into(), svc.into()])
                }
                _ => continue,
            };
            self.admit(book, family, &labels, tick, max_series);
            self.family(family).inc_by(&labels, delta);
        }
        book.published = next;
    }

    fn family(&self, family: Family) -> &Bounded {
        match family {
            Family::ForeignReplies => &self.foreign_replies,
            Family::ConflictActive => &self.conflict_active,
            Family::IpResponders => &self.ip_responders,
            Family::IpUnanswered => &self.ip_unanswered,
            Family::IpMacChanges => &self.ip_mac_changes,
            Family::ServiceDrift => &self.service_drift,
            Family::ServiceIgnored => &self.service_ignored,
            Family::ServiceIpChanges => &self.service_ip_changes,
            Family::ServiceAnnouncerChanges => &self.service_announcer_changes,
        }
    }

    fn remove(&self, family: Family, labels: &[String]) {
        self.family(family).remove(labels);
    }

    /// Removes the probe series (`l2watch_ip_responders`, `l2watch_ip_unanswered`) of addresses no
    /// longer probed (`probed` says which are): after a Service is deleted or moves, its old address
    /// must not keep its last value.
    pub fn forget_probe_series(&self, book: &mut SeriesBook, probed: impl Fn(&str) -> bool) {
        book.series.retain(|(family, labels), _| {
            let keep = !matches!(family, Family::IpResponders | Family::IpUnanswered)
                || labels.first().is_some_and(|ip| probed(ip));
            if !keep {
                self.remove(*family, labels);
            }
            keep
        });
    }

    /// Records a closed probe round for a watched address.
    pub fn probe_round(
        &self,
        book: &mut SeriesBook,
        ip: &str,
        responders: usize,
        unanswered: Option<(u32, &str, &str)>,
        max_series: usize,
    ) {
        book.tick += 1;
        let labels = vec![ip.to_owned()];
        self.admit(book, Family::IpResponders, &labels, book.tick, max_series);
        self.ip_responders.set(&labels, responders as i64);
        if let Some((rounds, ns, svc)) = unanswered {
            let labels = vec![ip.to_owned(), ns.to_owned(), svc.to_owned()];
            self.admit(book, Family::IpUnanswered, &labels, book.tick, max_series);
            self.ip_unanswered.set(&labels, i64::from(rounds));
        }
    }

    /// Records a series about to be set. A new one first makes room under the cap, so that a scrape,
    /// which may come at any moment, never sees more than `max_series`.
    fn admit(&self, book: &mut SeriesBook, family: Family, labels: &[String], tick: u64, max_series: usize) {
        let key = (family, labels.to_vec());
        if book.series.len() >= max_series && !book.series.contains_key(&key) {
            self.evict(book, max_series);
        }
        book.series.insert(key, tick);
    }

    fn evict(&self, book: &mut SeriesBook, max_series: usize) {
        // Evict down to 3/4 of the cap at once, so a flood does not pay a scan per series: counters
        // and probe gauges first, least recently updated first; active conflicts last. (An evicted
        // counter that comes back starts from 0, which Prometheus reads as a counter reset.)
        let rank = |family: Family, touched: u64| (u64::from(family.is_state()) << 63) | touched;
        let target = max_series - max_series / 4;
        book.scratch.clear();
        book.scratch.extend(book.series.iter().map(|((family, _), touched)| rank(*family, *touched)));
        let n = book.series.len() - target;
        let cut = *book.scratch.select_nth_unstable(n - 1).1;
        let mut removed = 0;
        book.series.retain(|(family, labels), touched| {
            if rank(*family, *touched) > cut || removed >= n {
                return true;
            }
            removed += 1;
            self.remove(*family, labels);
            false
        });
        self.series_evicted.inc_by(removed as u64);
    }

    /// The text exposition of every metric, with process metrics read fresh.
    pub fn render(&self) -> Vec<u8> {
        self.process.refresh();
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail on I/O; a failure would be a malformed family, which the
        // registry already rejected at registration.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        for f in [
            &self.foreign_replies,
            &self.conflict_active,
            &self.ip_responders,
            &self.ip_unanswered,
            &self.ip_mac_changes,
            &self.service_drift,
            &self.service_ip_changes,
            &self.service_ignored,
            &self.service_announcer_changes,
        ] {
            f.render(&mut out);
        }
        out
    }
}

impl Process {
    fn new(r: &Registry) -> prometheus::Result<Process> {
        let int = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let g = IntGauge::with_opts(opts(name, help))?;
            r.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let cpu = Counter::with_opts(opts("process_cpu_seconds_total", "User and system CPU time spent."))?;
        r.register(Box::new(cpu.clone()))?;
        let start = Gauge::with_opts(opts("process_start_time_seconds", "Start time since the Unix epoch."))?;
        r.register(Box::new(start.clone()))?;
        start.set(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()));
        Ok(Process {
            cpu,
            cpu_seen: std::sync::Mutex::new(0.0),
            rss: int("process_resident_memory_bytes", "Resident memory size.")?,
            vsize: int("process_virtual_memory_bytes", "Virtual memory size.")?,
            fds: int("process_open_fds", "Open file descriptors.")?,
            max_fds: int("process_max_fds", "Limit of open file descriptors.")?,
        })
    }

    fn refresh(&self) {
        if let Some(stat) = ProcStat::read() {
            if let Ok(mut seen) = self.cpu_seen.lock()
                && stat.cpu_seconds > *seen
            {
                self.cpu.inc_by(stat.cpu_seconds - *seen);
                *seen = stat.cpu_seconds;
            }
            self.rss.set(stat.rss_bytes as i64);
            self.vsize.set(stat.vsize_bytes as i64);
        }
        if let Ok(dir) = fs::read_dir("/proc/self/fd") {
            self.fds.set(dir.count() as i64);
        }
        if let Some(max) = max_fds() {
            self.max_fds.set(max);
        }
    }
}

/// What `/proc/self/stat` and `/proc/self/status` say about this process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStat {
    /// utime + stime in seconds.
    pub cpu_seconds: f64,
    /// Resident set size.
    pub rss_bytes: u64,
    /// Peak resident set size (VmHWM).
    pub peak_rss_bytes: u64,
    /// Virtual size.
    pub vsize_bytes: u64,
}

impl ProcStat {
    /// Reads the current process's figures; `None` where /proc is unavailable.
    pub fn read() -> Option<ProcStat> {
        ProcStat::read_pid("self")
    }

    /// Reads another process's figures (benchmarks measure the daemon from outside).
    pub fn read_pid(pid: &str) -> Option<ProcStat> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may contain spaces and parentheses: fields start after the last ')'.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Fields from `state` (3rd in proc(5)): utime is 14th, stime 15th, vsize 23rd, rss 24th.
        let ticks = 100.0; // USER_HZ is 100 on every Linux architecture l2watch targets.
        let utime: f64 = f.get(11)?.parse().ok()?;
        let stime: f64 = f.get(12)?.parse().ok()?;
        let vsize: u64 = f.get(20)?.parse().ok()?;
        let rss_pages: u64 = f.get(21)?.parse().ok()?;
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(0, |k| k * 1024)
        };
        Some(ProcStat {
            cpu_seconds: (utime + stime) / ticks,
            rss_bytes: kib("VmRSS:").max(rss_pages * 4096),
            peak_rss_bytes: kib("VmHWM:"),
            vsize_bytes: vsize,
        })
    }
}

fn max_fds() -> Option<i64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::monitor::detect::{DetectConfig, Detector};
    use crate::monitor::finding::NoSink;
    use crate::wire::frame::{ArpSpec, write_arp};
    use crate::wire::mac::Mac;
    use std::path::Path;

    fn text(m: &Metrics) -> String {
        String::from_utf8(m.render()).unwrap()
    }

    fn series(t: &str, name: &str) -> usize {
        t.lines().filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{')).count()
    }

    #[test]
    fn every_contract_metric_is_exported_with_its_type() {
        let m = Metrics::new().unwrap();
        let _ = m.interface("eth0");
        let cfg = Config::parse(
            Path::new("t"),
            "inventory:\n  nodes: [{name: a, macs: ['02:00:00:00:00:01']}]\n  services: [{name: ns/web, ips: [10.0.0.5], announcer: a}]\n",
        )
        .unwrap();
        let inv = cfg.static_inventory(Path::new("t"), None).unwrap();
        m.set_inventory(&inv);
        m.set_synced("static", true);
        let t = text(&m);
        for (name, kind) in [
            ("l2watch_frames_total", "counter"),
            ("l2watch_frames_dropped_total", "counter"),
            ("l2watch_frames_malformed_total", "counter"),
            ("l2watch_capture_up", "gauge"),
            ("l2watch_probes_sent_total", "counter"),
            ("l2watch_probe_rtt_seconds", "histogram"),
            ("l2watch_service_info", "gauge"),
            ("l2watch_watched_ips", "gauge"),
            ("l2watch_inventory_synced", "gauge"),
            ("l2watch_series_evicted_total", "counter"),
            ("l2watch_http_connections_evicted_total", "counter"),
            ("l2watch_build_info", "gauge"),
            ("process_resident_memory_bytes", "gauge"),
        ] {
            assert!(t.contains(&format!("# TYPE {name} {kind}\n")), "{name} {kind} missing:\n{t}");
        }
        assert!(t.contains(
            "l2watch_service_info{announcer=\"a\",ip=\"10.0.0.5\",namespace=\"ns\",pool=\"\",service=\"web\"} 1"
        ));
        assert!(t.contains("l2watch_watched_ips{role=\"service\"} 1"));
        assert_eq!(series(&t, "l2watch_frames_total"), FrameKind::ALL.len());
    }

    fn claim(det: &mut Detector, inv: &Inventory, ip: [u8; 4], mac: u8, t: u64) {
        let mut buf = [0u8; 128];
        let spec = ArpSpec::gratuitous(Mac([2, 0, 0, 0, 1, mac]), ip.into());
        let n = write_arp(&mut buf, &spec).unwrap();
        let meta = crate::wire::decode::FrameMeta {
            time: crate::wire::observation::Timestamp(t),
            ..Default::default()
        };
        if let crate::wire::decode::Decoded::Frame(obs) =
            crate::wire::decode::decode(crate::wire::decode::LinkType::Ethernet, &buf[..n], &meta)
        {
            det.observe(&obs, inv, &mut NoSink);
        }
    }

    #[test]
    fn conflicts_appear_count_and_vanish_when_cleared() {
        let m = Metrics::new().unwrap();
        let cfg =
            Config::parse(Path::new("t"), "inventory:\n  services: [{name: ns/web, ips: [10.0.0.5]}]\n")
                .unwrap();
        let inv = cfg.static_inventory(Path::new("t"), None).unwrap();
        let mut det = Detector::new(DetectConfig::default());
        let mut book = SeriesBook::default();
        claim(&mut det, &inv, [10, 0, 0, 5], 9, 1_000);
        claim(&mut det, &inv, [10, 0, 0, 5], 9, 2_000);
        m.sync_findings(&mut book, det.findings(), &crate::wire::vendor::Vendors::default(), 100);
        let t = text(&m);
        let key = "{ip=\"10.0.0.5\",mac=\"02:00:00:00:01:09\",namespace=\"ns\",service=\"web\",vendor=\"locally administered\"}";
        assert!(t.contains(&format!("l2watch_foreign_mac_replies_total{key} 2")), "{t}");
        assert!(t.contains("l2watch_conflict_active{ip=\"10.0.0.5\",kind=\"foreign_mac\""), "{t}");
        claim(&mut det, &inv, [10, 0, 0, 5], 9, 3_000);
        m.sync_findings(&mut book, det.findings(), &crate::wire::vendor::Vendors::default(), 100);
        assert!(text(&m).contains(&format!("l2watch_foreign_mac_replies_total{key} 3")));
        // Hold time passes: the conflict series goes, the counter stays.
        det.expire(crate::wire::observation::Timestamp(3_000 + 601 * 1_000_000_000), &mut NoSink);
        m.sync_findings(&mut book, det.findings(), &crate::wire::vendor::Vendors::default(), 100);
        let t = text(&m);
        assert_eq!(series(&t, "l2watch_conflict_active"), 0, "{t}");
        assert!(t.contains(&format!("l2watch_foreign_mac_replies_total{key} 3")));
    }

    #[test]
    fn series_are_capped_and_eviction_counted() {
        let m = Metrics::new().unwrap();
        let mut book = SeriesBook::default();
        for i in 0..1000 {
            m.probe_round(&mut book, &format!("10.0.{}.{}", i / 256, i % 256), 1, None, 64);
        }
        assert!(book.len() <= 64);
        let t = text(&m);
        assert!(series(&t, "l2watch_ip_responders") <= 64);
        let evicted: u64 = t
            .lines()
            .find_map(|l| l.strip_prefix("l2watch_series_evicted_total "))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert_eq!(evicted as usize + series(&t, "l2watch_ip_responders"), 1000);
        // The newest survive.
        assert!(t.contains("l2watch_ip_responders{ip=\"10.0.3.231\"} 1"));
    }

    #[test]
    fn service_info_names_the_pool_the_address_is_in() {
        // The config names no pool for the Service; its address is in pool `p`, and `/findings` says so.
        let m = Metrics::new().unwrap();
        let cfg = Config::parse(
            Path::new("t"),
            "inventory:\n  pools: [{name: p, addresses: [10.0.0.0/24]}]\n  services: [{name: ns/web, ips: [10.0.0.5]}]\n",
        )
        .unwrap();
        let inv = cfg.static_inventory(Path::new("t"), None).unwrap();
        m.set_inventory(&inv);
        let t = text(&m);
        assert!(
            t.contains("l2watch_service_info{announcer=\"\",ip=\"10.0.0.5\",namespace=\"ns\",pool=\"p\",service=\"web\"} 1"),
            "{t}"
        );
    }

    #[test]
    fn a_storm_of_conflicts_publishes_a_stable_subset() {
        let m = Metrics::new().unwrap();
        let cfg =
            Config::parse(Path::new("t"), "inventory:\n  pools: [{name: p, addresses: [10.0.0.0/24]}]\n")
                .unwrap();
        let inv = cfg.static_inventory(Path::new("t"), None).unwrap();
        let mut det = Detector::new(DetectConfig::default());
        let mut book = SeriesBook::default();
        for i in 0..100u8 {
            claim(&mut det, &inv, [10, 0, 0, i], i, 1_000 + u64::from(i));
        }
        m.sync_findings(&mut book, det.findings(), &crate::wire::vendor::Vendors::default(), 16);
        let first: Vec<String> = text(&m)
            .lines()
            .filter(|l| l.starts_with("l2watch_conflict_active{"))
            .map(str::to_owned)
            .collect();
        assert_eq!(first.len(), 12, "3/4 of max_series");
        // The oldest findings are the ones shown.
        assert!(
            first.iter().any(|l| l.contains("ip=\"10.0.0.0\""))
                && !first.iter().any(|l| l.contains("ip=\"10.0.0.99\""))
        );
        let evicted = |t: &str| {
            t.lines().find_map(|l| l.strip_prefix("l2watch_series_evicted_total ")).map(str::to_owned)
        };
        assert_eq!(evicted(&text(&m)).as_deref(), Some("88"));
        // Next tick, more evidence for everything: the same series, no new evictions.
        for i in 0..100u8 {
            claim(&mut det, &inv, [10, 0, 0, i], i, 5_000 + u64::from(i));
        }
        m.sync_findings(&mut book, det.findings(), &crate::wire::vendor::Vendors::default(), 16);
        let t = text(&m);
        let second: Vec<String> =
            t.lines().filter(|l| l.starts_with("l2watch_conflict_active{")).map(str::to_owned).collect();
        assert_eq!(first, second);
        assert_eq!(evicted(&t).as_deref(), Some("88"));
        // Probe gauges are evicted before conflicts.
        for i in 0..20 {
            m.probe_round(&mut book, &format!("10.1.0.{i}"), 1, None, 16);
        }
        let t = text(&m);
        assert_eq!(t.lines().filter(|l| l.starts_with("l2watch_conflict_active{")).count(), 12);
        assert!(t.lines().filter(|l| l.starts_with("l2watch_ip_responders{")).count() <= 4);
    }

    #[test]
    fn service_findings_have_gauges_and_counters_of_their_own() {
        use crate::inventory::{IgnoredKey, Parts, Service};
        use crate::monitor::drift::ServiceFindings;
        use crate::wire::observation::Timestamp;
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let snapshot = |assigned: &str, ignored: bool| {
            let mut s = Service::assigned("ml/mlflow".parse().unwrap(), vec![ip(assigned)]);
            s.requested = vec![ip("192.168.1.201")];
            if ignored {
                s.ignored = vec![IgnoredKey {
                    key: "metallb.universe.tf/loadBalancer-ips".into(),
                    expected_key: "metallb.universe.tf/loadBalancerIPs".into(),
                }];
            }
            Inventory::build(Parts { services: vec![s], ..Parts::default() }, None)
        };
        let m = Metrics::new().unwrap();
        let mut book = SeriesBook::default();
        let mut t = ServiceFindings::default();
        let vendors = crate::wire::vendor::Vendors::default();
        let a = snapshot("192.168.1.215", true);
        t.update(None, &a, Timestamp(1), &mut NoSink);
        m.sync_findings(&mut book, t.iter(), &vendors, 100);
        let out = text(&m);
        assert!(out.contains("l2watch_service_ip_drift{actual_ip=\"192.168.1.215\",expected_ip=\"192.168.1.201\",namespace=\"ml\",service=\"mlflow\",source=\"requested\"} 1"), "{out}");
        assert!(out.contains("l2watch_service_ignored_annotation{expected_key=\"metallb.universe.tf/loadBalancerIPs\",key=\"metallb.universe.tf/loadBalancer-ips\",namespace=\"ml\",service=\"mlflow\"} 1"), "{out}");
        assert_eq!(series(&out, "l2watch_conflict_active"), 0, "Service findings are not LAN conflicts");
        // Fixed: the gauges go, and the IP change is counted.
        let b = snapshot("192.168.1.201", false);
        t.update(Some(&a), &b, Timestamp(2), &mut NoSink);
        m.sync_findings(&mut book, t.iter(), &vendors, 100);
        let out = text(&m);
        assert_eq!(series(&out, "l2watch_service_ip_drift"), 0, "{out}");
        assert_eq!(series(&out, "l2watch_service_ignored_annotation"), 0, "{out}");
        assert!(
            out.contains("l2watch_service_ip_changes_total{namespace=\"ml\",service=\"mlflow\"} 1"),
            "{out}"
        );
        t.update(Some(&b), &a, Timestamp(3), &mut NoSink);
        m.sync_findings(&mut book, t.iter(), &vendors, 100);
        assert!(text(&m).contains("l2watch_service_ip_changes_total{namespace=\"ml\",service=\"mlflow\"} 2"));
    }

    #[test]
    fn probe_series_of_addresses_no_longer_probed_go() {
        let m = Metrics::new().unwrap();
        let mut book = SeriesBook::default();
        m.probe_round(&mut book, "10.0.0.5", 1, Some((0, "ns", "web")), 100);
        m.probe_round(&mut book, "10.0.0.6", 1, Some((3, "ns", "api")), 100);
        m.forget_probe_series(&mut book, |ip| ip == "10.0.0.5");
        let t = text(&m);
        assert!(t.contains("l2watch_ip_responders{ip=\"10.0.0.5\"} 1"), "{t}");
        assert!(!t.contains("10.0.0.6"), "{t}");
        assert_eq!(book.len(), 2);
    }

    #[test]
    fn bounded_families_render_like_prometheus_with_escaping() {
        let m = Metrics::new().unwrap();
        let mut book = SeriesBook::default();
        m.foreign_replies.inc_by(&["10.0.0.5", "02:00:00:00:00:01", "ACME \"Net\"\\Works", "ns", "web"], 2);
        m.probe_round(&mut book, "10.0.0.5", 2, Some((1, "ns", "web")), 100);
        let t = text(&m);
        assert!(
            t.contains("l2watch_foreign_mac_replies_total{ip=\"10.0.0.5\",mac=\"02:00:00:00:00:01\",namespace=\"ns\",service=\"web\",vendor=\"ACME \\\"Net\\\"\\\\Works\"} 2\n"),
            "{t}"
        );
        assert!(t.contains("# TYPE l2watch_foreign_mac_replies_total counter\n"), "{t}");
        assert!(
            t.contains("l2watch_ip_unanswered{ip=\"10.0.0.5\",namespace=\"ns\",service=\"web\"} 1\n"),
            "{t}"
        );
        // A family without series is left out, as prometheus does.
        assert!(!t.contains("l2watch_conflict_active"), "{t}");
        // promtool-style sanity: every sample line belongs to a family announced before it.
        let mut announced = std::collections::HashSet::new();
        for l in t.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                assert!(announced.insert(rest.split(' ').next().unwrap().to_owned()), "family twice: {l}");
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                let family =
                    ["_bucket", "_sum", "_count"].iter().fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
                assert!(announced.contains(name) || announced.contains(family), "{l}");
            }
        }
    }
}
