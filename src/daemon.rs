//! `l2watch run`: the capture thread (rings → decode → detect, plus the prober) and the state it shares
//! with the HTTP endpoint.
//!
//! One OS thread owns every ring, the detector and the probe schedule, so the per-frame path has no
//! lock, no channel and no allocation. It publishes to the rest of the process once per housekeeping
//! tick (1 s, or 100 ms after a finding was raised or cleared): metric deltas, the `/findings` document,
//! and a heartbeat.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rustc_hash::FxHashMap;

use crate::analyze::{Analysis, FileOutcome, FrameCounts, interface_id};
use crate::capture::{CaptureError, Readiness, Ring, RingConfig, wait};
use crate::config::Config;
use crate::decode::{self, Decoded, FrameMeta, LinkType};
use crate::detect::{At, Detector, MAX_MACS_PER_IP, Sink};
use crate::finding::{Finding, FindingKind, Severity};
use crate::frame::{ArpSpec, NdSpec, write_arp, write_nd};
use crate::inventory::{Inventory, Lookup};
use crate::iprange::IpKey;
use crate::mac::Mac;
use crate::metrics::{InterfaceCounts, InterfaceMetrics, Metrics, SeriesBook};
use crate::netif::Sys;
use crate::observation::{FrameKind, Timestamp, Vlans};
use crate::probe::{Class, Prober};

/// Most MACs recognised as this host's.
const MAX_OWN_MACS: usize = 256;

/// Most interfaces one daemon captures on: as many rings as one `wait` watches.
pub const MAX_INTERFACES: usize = crate::capture::ring::MAX_WAIT;

/// The current time as a capture timestamp (the kernel stamps frames with the same realtime clock).
pub fn now() -> Timestamp {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp::from_secs_nanos(d.as_secs(), d.subsec_nanos())
}

/// Nanoseconds on a monotonic clock (never 0 once started): scheduling and the heartbeat must not
/// stall or fire early when the wall clock is stepped.
fn monotonic_nanos() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// What the capture thread shares with the HTTP side.
pub struct Shared {
    /// Every metric.
    pub metrics: Metrics,
    findings: Mutex<Bytes>,
    heartbeat: AtomicU64,
    open: AtomicUsize,
    interfaces: usize,
    inventory_loaded: AtomicBool,
    stop: AtomicBool,
}

/// The capture thread is considered hung when its heartbeat is older than this.
const HEARTBEAT_LIMIT: Duration = Duration::from_secs(10);

impl Shared {
    /// State for `interfaces` capture interfaces.
    pub fn new(metrics: Metrics, interfaces: usize) -> Shared {
        Shared {
            metrics,
            findings: Mutex::new(Bytes::from_static(b"{}")),
            heartbeat: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            interfaces,
            inventory_loaded: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        }
    }

    /// `/healthz`: the capture thread is alive and looping.
    pub fn health(&self) -> Result<(), String> {
        let beat = self.heartbeat.load(Ordering::Relaxed);
        if beat == 0 {
            return Err("capture thread not started yet".into());
        }
        let age = Duration::from_nanos(monotonic_nanos().saturating_sub(beat));
        if age > HEARTBEAT_LIMIT {
            return Err(format!("capture thread stalled: no heartbeat for {:.0} s", age.as_secs_f64()));
        }
        Ok(())
    }

    /// `/readyz`: alive, every interface captured, and the inventory loaded.
    pub fn readiness(&self) -> Result<(), String> {
        self.health()?;
        let open = self.open.load(Ordering::Relaxed);
        if open < self.interfaces {
            return Err(format!("{open} of {} capture interfaces are up", self.interfaces));
        }
        if !self.inventory_loaded.load(Ordering::Relaxed) {
            return Err("inventory not loaded".into());
        }
        Ok(())
    }

    /// The `/findings` document (schema `l2watch.findings/v1`).
    pub fn findings_json(&self) -> Bytes {
        self.findings.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Asks the capture thread to stop.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Marks the inventory as loaded (static inventories are loaded before the capture starts).
    pub fn set_inventory_loaded(&self, loaded: bool) {
        self.inventory_loaded.store(loaded, Ordering::Relaxed);
    }
}

/// One capture interface.
struct Port {
    name: String,
    id: u16,
    ring: Option<Ring>,
    ifindex: u32,
    mac: Mac,
    up: bool,
    metrics: InterfaceMetrics,
    counts: InterfaceCounts,
    published: InterfaceCounts,
}

/// Everything the capture thread needs, prepared by the caller (which reports open errors itself).
pub struct Setup {
    /// The loaded config.
    pub config: Config,
    /// The inventory, with this node's own MACs added.
    pub inventory: Arc<Inventory>,
    /// This node's index in `inventory.nodes`.
    pub self_node: u32,
    /// MACs of this host that answer ARP.
    pub own_macs: Vec<Mac>,
    /// Open rings, one per interface, in order.
    pub rings: Vec<Ring>,
    /// Ring sizes, for reopening.
    pub ring_config: RingConfig,
    /// Where interface state is read from.
    pub sys: Sys,
    /// MAC vendor names.
    pub vendors: crate::vendor::Vendors,
}

/// The capture interfaces: the flags, else the config, else the default-route interface.
pub fn interfaces(
    flags: Vec<String>,
    config: &Config,
    sys: &crate::netif::Sys,
) -> anyhow::Result<Vec<String>> {
    let mut names = if !flags.is_empty() { flags } else { config.capture.interfaces.clone() };
    if names.is_empty() {
        match sys.default_route_interface() {
            Some(n) => names.push(n),
            None => anyhow::bail!(
                "this host has no default route, so l2watch cannot pick an interface: name one with --interface"
            ),
        }
    }
    // The same interface twice would count every frame and send every probe twice.
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    if names.len() > MAX_INTERFACES {
        anyhow::bail!("at most {} interfaces", MAX_INTERFACES);
    }
    Ok(names)
}

/// Opens a ring on each interface, with errors an operator can act on.
pub fn open_rings(
    sys: &crate::netif::Sys,
    names: &[String],
    cfg: &crate::capture::RingConfig,
) -> anyhow::Result<Vec<(crate::capture::Ring, crate::mac::Mac)>> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match open(sys, name, i, cfg) {
            Ok(r) => out.push(r),
            Err(crate::capture::CaptureError::NoSuchInterface(n)) => {
                let known: Vec<String> =
                    sys.links().unwrap_or_default().into_iter().map(|l| l.name).collect();
                anyhow::bail!("no network interface named {n:?} (this host has: {})", known.join(", "));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Ring sizes for `mib` MiB per interface: 1 MiB blocks, or 256 KiB ones for rings under 4 MiB so
/// there are always at least four. The thread wakes once per block, and on a VM a wakeup costs more
/// than the frames: 1 MiB blocks measured 63-99 ns per frame where 256 KiB ones measured 83-131.
pub fn ring_config(mib: usize) -> crate::capture::RingConfig {
    let block = if mib >= 4 { 1 << 20 } else { 256 << 10 };
    crate::capture::RingConfig { block_count: (mib << 20) / block, block_size: block, ..Default::default() }
}

/// Opens the capture ring on one interface, with the interface's MAC.
pub fn open(sys: &Sys, name: &str, index: usize, cfg: &RingConfig) -> Result<(Ring, Mac), CaptureError> {
    let ring = Ring::open(name, interface_id(index, 0), cfg)?;
    let mac = sys.link(name).and_then(|l| l.mac).unwrap_or(Mac::ZERO);
    Ok((ring, mac))
}

/// Counts `raised`/`cleared` so the capture thread knows when to publish early.
/// Also logs conflicts as they are raised and cleared: at most [`LOGS_PER_TICK`] lines a second, so a
/// flood of findings cannot turn into a flood of log lines; the rest are counted and summed up.
struct Changes {
    /// A finding was raised or cleared since the last publish.
    changed: bool,
    /// Log lines left this tick.
    log_budget: u32,
    /// Findings not logged this tick.
    unlogged: u64,
}

/// Finding log lines per housekeeping tick; more are counted and reported in one line.
const LOGS_PER_TICK: u32 = 10;

impl Changes {
    fn budget(&mut self) -> bool {
        if self.log_budget == 0 {
            self.unlogged += 1;
            return false;
        }
        self.log_budget -= 1;
        true
    }
}

/// What an operator should do about a finding of this kind.
fn advice(kind: FindingKind) -> &'static str {
    match kind {
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
        _ => "see /findings",
    }
}

impl Sink for Changes {
    fn raised(&mut self, f: &Finding) {
        self.changed = true;
        if f.severity() >= Severity::Warning && self.budget() {
            tracing::warn!(
                kind = f.kind.as_str(),
                ip = %f.ip,
                mac = %if f.kind == FindingKind::Unanswered { String::new() } else { f.mac.to_string() },
                service = %f.service.as_deref().map(ToString::to_string).unwrap_or_default(),
                node = f.node.as_deref().unwrap_or(""),
                "{}", advice(f.kind)
            );
        }
    }
    fn cleared(&mut self, f: &Finding) {
        self.changed = true;
        if f.severity() >= Severity::Warning && self.budget() {
            tracing::info!(kind = f.kind.as_str(), ip = %f.ip, mac = %f.mac, count = f.count, "finding cleared");
        }
    }
}

/// A probe round the prober closed, copied out so the detector can judge it.
struct ClosedRound {
    ip: IpAddr,
    class: Class,
    macs: [Mac; MAX_MACS_PER_IP],
    n: usize,
    silent: u32,
    interface: Option<u16>,
}

/// The capture thread's state.
pub struct Engine {
    shared: Arc<Shared>,
    ports: Vec<Port>,
    inv: Arc<Inventory>,
    self_node: u32,
    own_macs: Vec<Mac>,
    analysis: Analysis,
    prober: Option<Prober>,
    unanswered_after: u32,
    self_claims: FxHashMap<IpKey, Timestamp>,
    book: SeriesBook,
    max_series: usize,
    changes: Changes,
    ring_config: RingConfig,
    sys: Sys,
    vendors: crate::vendor::Vendors,
    logged_wait_error: bool,
    local_addresses: Vec<IpAddr>,
    next_rescan: Instant,
    next_log_reset: Instant,
    json: Vec<u8>,
    node_name: Arc<str>,
    exclude: Vec<String>,
}

/// Housekeeping (metric deltas, /findings, interface checks, expiry) runs this often.
const TICK: Duration = Duration::from_secs(1);
/// A finding raised or cleared is published this soon, not at the next tick.
const EARLY_PUBLISH: Duration = Duration::from_millis(100);
/// A change of the wall clock against the monotonic one beyond this is a step, not drift.
const CLOCK_STEP: Duration = Duration::from_secs(1);
/// How often the host's MACs and addresses are re-read (interfaces come and go).
const RESCAN: Duration = Duration::from_secs(5);

/// Wall clock minus monotonic clock, in nanoseconds: constant until someone steps the wall clock.
fn clock_skew() -> i64 {
    now().0 as i64 - monotonic_nanos() as i64
}

impl Engine {
    /// Prepares the capture thread's state; `names[i]` is the interface of `setup.rings[i]`.
    pub fn new(shared: Arc<Shared>, setup: Setup, names: &[String]) -> Engine {
        let Setup { config, inventory, self_node, own_macs, rings, ring_config, sys, vendors } = setup;
        let t0 = now();
        let ports: Vec<Port> = rings
            .into_iter()
            .zip(names)
            .enumerate()
            .map(|(i, (ring, name))| {
                let link = sys.link(name);
                let m = shared.metrics.interface(name);
                Port {
                    name: name.clone(),
                    id: interface_id(i, 0),
                    ifindex: ring.ifindex(),
                    mac: link.as_ref().and_then(|l| l.mac).unwrap_or(Mac::ZERO),
                    up: link.is_some_and(|l| l.is_up()),
                    ring: Some(ring),
                    metrics: m,
                    counts: InterfaceCounts::default(),
                    published: InterfaceCounts::default(),
                }
            })
            .collect();
        let files = ports
            .iter()
            .map(|p| FileOutcome {
                path: p.name.clone().into(),
                format: Some("live"),
                link_types: vec![1],
                frames: 0,
                unsupported: Default::default(),
                error: None,
            })
            .collect();
        let prober = config.probe.enabled.then(|| {
            // `probe.rate` counts frames, and every probe goes out on every interface.
            let mut cfg = config.probe.clone();
            cfg.rate = (cfg.rate / ports.len().max(1) as u32).max(1);
            let mut p = Prober::new(cfg, t0.0 ^ u64::from(std::process::id()));
            p.set_targets(&inventory, t0);
            p
        });
        if let Some(p) = &prober {
            tracing::info!(
                addresses = p.len(),
                skipped_pool_addresses = %p.skipped_pool_addresses(),
                interval_s = config.probe.interval.as_secs_f64(),
                "probing watched addresses"
            );
        }
        Engine {
            analysis: Analysis {
                files,
                frames: FrameCounts::default(),
                findings: Vec::new(),
                findings_omitted: 0,
                detector: Detector::new(config.detect.clone()),
            },
            unanswered_after: config.probe.unanswered_after,
            max_series: config.metrics.max_series,
            shared,
            ports,
            node_name: inventory.nodes.get(self_node as usize).map_or_else(|| "".into(), |n| n.name.clone()),
            inv: inventory,
            self_node,
            own_macs: {
                let mut m = own_macs;
                m.sort_unstable();
                m.dedup();
                m
            },
            prober,
            self_claims: FxHashMap::default(),
            book: SeriesBook::default(),
            changes: Changes { changed: false, log_budget: LOGS_PER_TICK, unlogged: 0 },
            ring_config,
            sys,
            vendors,
            logged_wait_error: false,
            local_addresses: Vec::new(),
            next_rescan: Instant::now(),
            next_log_reset: Instant::now(),
            json: Vec::new(),
            exclude: config.capture.exclude.clone(),
        }
    }

    /// Runs until [`Shared::request_stop`].
    pub fn run(mut self) {
        let mut ready: [Readiness; MAX_INTERFACES] = Default::default();
        let mut slot_of = [0usize; MAX_INTERFACES];
        // Housekeeping runs on the monotonic clock; the prober on the wall clock (the kernel stamps
        // replies with it), shifted whenever the wall clock is stepped.
        let mut next_tick = Instant::now();
        let mut last_publish = Instant::now();
        let mut last_cost = Duration::ZERO;
        let mut skew = clock_skew();
        self.housekeeping(now(), Instant::now());
        while !self.shared.stop.load(Ordering::Relaxed) {
            let t = now();
            let mut timeout = next_tick.saturating_duration_since(Instant::now());
            if let Some(e) = self.prober.as_ref().and_then(Prober::next_event) {
                timeout = timeout.min(Duration::from_nanos(e.0.saturating_sub(t.0)));
            }
            let timeout = timeout.min(Duration::from_millis(250));
            let waited = {
                // A stack array of the open rings (no allocation per wakeup); the filler is any open
                // ring and is never looked at past `n`.
                let mut open = self.ports.iter().enumerate().filter_map(|(i, p)| Some((i, p.ring.as_ref()?)));
                match open.next() {
                    None => {
                        std::thread::sleep(timeout);
                        Ok(0)
                    }
                    Some((i0, first)) => {
                        let mut refs: [&Ring; MAX_INTERFACES] = [first; MAX_INTERFACES];
                        slot_of[0] = i0;
                        let mut n = 1;
                        for (i, r) in open.take(MAX_INTERFACES - 1) {
                            refs[n] = r;
                            slot_of[n] = i;
                            n += 1;
                        }
                        wait(&refs[..n], timeout, &mut ready).map(|_| n)
                    }
                }
            };
            // Before the frames are read: replies stamped on a stepped clock meet a schedule moved
            // with it.
            let stepped = clock_skew();
            if stepped.abs_diff(skew) > CLOCK_STEP.as_nanos() as u64 {
                tracing::warn!(
                    step_s = (stepped - skew) as f64 / 1e9,
                    "the wall clock was stepped; moving the probe schedule with it"
                );
                if let Some(p) = self.prober.as_mut() {
                    p.shift(stepped - skew);
                }
            }
            skew = stepped;
            match waited {
                Ok(n) => {
                    self.logged_wait_error = false;
                    for (slot, &port) in slot_of.iter().enumerate().take(n) {
                        if let Some(err) = ready[slot].error.take() {
                            self.ring_error(port, err);
                        }
                        if ready[slot].readable {
                            self.drain(port);
                        }
                    }
                }
                Err(e) => {
                    if !self.logged_wait_error {
                        tracing::error!(error = %e, "waiting for frames failed; retrying");
                        self.logged_wait_error = true;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            let t = now();
            self.probe(t);
            let mono = Instant::now();
            // Findings raised or cleared are published early, but under a storm of them publishing
            // must not eat the capture thread: at most 1/20 of its time goes to early publishes.
            let early_gap = EARLY_PUBLISH.max(last_cost * 20);
            if mono >= next_tick || (self.changes.changed && mono.duration_since(last_publish) >= early_gap) {
                self.housekeeping(t, mono);
                last_publish = mono;
                last_cost = mono.elapsed();
                if mono >= next_tick {
                    next_tick = mono + TICK;
                }
            }
        }
        tracing::info!("capture stopped");
    }

    fn drain(&mut self, port: usize) {
        let Some(mut ring) = self.ports[port].ring.take() else { return };
        ring.drain(|meta, data| self.frame(port, meta, data));
        self.ports[port].ring = Some(ring);
    }

    #[inline]
    fn frame(&mut self, port: usize, meta: &FrameMeta, data: &[u8]) {
        self.analysis.frames.total += 1;
        self.analysis.files[port].frames += 1;
        let decoded = decode::decode(LinkType::Ethernet, data, meta);
        self.analysis.frames.count(&decoded);
        let obs = match decoded {
            Decoded::Frame(obs) => obs,
            Decoded::Skipped(r) => {
                self.ports[port].counts.malformed[r.index()] += 1;
                return;
            }
            Decoded::Ignored => return,
        };
        self.ports[port].counts.frames[obs.kind.index()] += 1;
        self.analysis.detector.observe(&obs, &self.inv, &mut self.changes);
        if !obs.kind.claims() || obs.sender_ip.is_unspecified() {
            return;
        }
        let ip = IpKey::from(obs.sender_ip);
        if self.own_macs.binary_search(&obs.sender_mac).is_ok() {
            // Our own claim, seen on the way out: this node (its speaker, or its kernel for an address
            // it holds) answers for the IP until another MAC claims it.
            if obs.outgoing && matches!(self.inv.lookup(ip), Lookup::Watched(_)) {
                self.self_claims.insert(ip, obs.time);
            }
            return;
        }
        if !self.self_claims.is_empty() {
            // Another MAC claims it: the IP moved away from this node (or is shared, which the
            // rounds show).
            self.self_claims.remove(&ip);
        }
        // Only answers to probes make a round: an ARP reply to a sender IP of 0.0.0.0, or a
        // neighbour advertisement, untagged as the probes are. A gratuitous ARP in the window (a
        // failover announcing itself) is not a second responder.
        let answer = match obs.kind {
            FrameKind::Reply => obs.target_ip.is_unspecified(),
            FrameKind::NdNa => true,
            _ => false,
        };
        if answer
            && obs.vlans.is_empty()
            && let Some(p) = self.prober.as_mut()
            && let Some(rtt) = p.reply(obs.sender_ip, obs.sender_mac, obs.time, obs.interface)
        {
            self.ports[port].metrics.rtt.observe(rtt.as_secs_f64());
        }
    }

    /// Whether this node answers for `ip` itself, so it cannot judge the IP unanswered (a host never
    /// answers its own probes): it is the configured announcer, was the last to claim the address on
    /// the LAN (a MetalLB speaker's or keepalived's announcements, its kernel's replies), or holds it
    /// as an IPv6 address of a LAN interface. Held IPv4 addresses are not used: procfs does not say
    /// which interface holds one, and kube-proxy in IPVS mode puts every Service IP on a dummy.
    fn self_announces(&self, ip: IpKey) -> bool {
        if let Lookup::Watched(w) = self.inv.lookup(ip)
            && w.announcers.contains(&self.self_node)
        {
            return true;
        }
        self.self_claims.contains_key(&ip) || self.local_addresses.binary_search(&ip.to_ip()).is_ok()
    }

    fn probe(&mut self, t: Timestamp) {
        let Some(mut prober) = self.prober.take() else { return };
        let mut buf = [0u8; 128];
        let ports = &mut self.ports;
        let mut closed: Vec<ClosedRound> = Vec::new();
        prober.poll(
            t,
            |ip| {
                let mut sent = false;
                for p in ports.iter_mut() {
                    let (Some(ring), true) = (p.ring.as_ref(), p.up) else { continue };
                    let n = match ip {
                        IpAddr::V4(v4) => write_arp(&mut buf, &ArpSpec::probe(p.mac, v4)),
                        IpAddr::V6(v6) => write_nd(&mut buf, &NdSpec::dad(p.mac, v6)),
                    };
                    let Some(n) = n else { continue };
                    match ring.send(&buf[..n]) {
                        Ok(()) => {
                            p.metrics.probes_sent.inc();
                            sent = true;
                        }
                        Err(e) => tracing::debug!(interface = %p.name, error = %e, "probe not sent"),
                    }
                }
                sent
            },
            |o| {
                let mut macs = [Mac::ZERO; MAX_MACS_PER_IP];
                let n = o.macs.len().min(MAX_MACS_PER_IP);
                macs[..n].copy_from_slice(&o.macs[..n]);
                let (ip, class, silent, interface) = (o.ip, o.class, o.silent_rounds, o.interface);
                closed.push(ClosedRound { ip, class, macs, n, silent, interface });
            },
        );
        self.prober = Some(prober);
        for o in closed {
            self.round(t, o);
        }
    }

    fn round(&mut self, t: Timestamp, o: ClosedRound) {
        let ClosedRound { ip, class, macs, n, silent, interface } = o;
        let macs = &macs[..n];
        let key = IpKey::from(ip);
        let judge = class == Class::Service && !self.self_announces(key);
        let unanswered = judge && silent >= self.unanswered_after;
        let at = At {
            time: t,
            frame: 0,
            vlans: Vlans::default(),
            interface: interface.unwrap_or(self.ports[0].id),
        };
        self.analysis.detector.probe_round(ip, macs, unanswered, at, &self.inv, &mut self.changes);
        if unanswered && silent == self.unanswered_after {
            tracing::warn!(%ip, rounds = silent, "nobody answers probes for this service IP");
        }
        let ip_text = ip.to_string();
        match class {
            Class::Service => {
                let svc = match self.inv.lookup(key) {
                    Lookup::Watched(w) => w.service.clone(),
                    _ => None,
                };
                let (ns, name) = svc.as_ref().map_or(("", ""), |s| (s.namespace.as_str(), s.name.as_str()));
                let rounds = if judge { silent } else { 0 };
                self.shared.metrics.probe_round(
                    &mut self.book,
                    &ip_text,
                    macs.len(),
                    Some((rounds, ns, name)),
                    self.max_series,
                );
            }
            Class::Watched => {
                self.shared.metrics.probe_round(&mut self.book, &ip_text, macs.len(), None, self.max_series)
            }
            Class::Pool => {}
        }
    }

    fn ring_error(&mut self, port: usize, err: CaptureError) {
        let p = &mut self.ports[port];
        match err {
            CaptureError::InterfaceDown { .. } => {
                if p.up {
                    tracing::warn!(interface = %p.name, "interface went down; capture resumes when it comes up");
                }
                p.up = false;
            }
            e => {
                tracing::warn!(
                    interface = %p.name, error = %e,
                    "capture lost; l2watch reopens the interface when it is back"
                );
                // Keep the kernel's last drop count: it goes with the socket.
                if let Some(st) = p.ring.as_mut().and_then(|r| r.stats().ok()) {
                    p.counts.dropped += st.dropped;
                }
                p.ring = None;
                p.up = false;
            }
        }
        p.metrics.up.set(0);
        // Publish the new state (readiness, /findings) now rather than at the next tick.
        self.changes.changed = true;
    }

    /// Re-reads this host's addresses and answering MACs: an interface that appears later (or is
    /// recreated with another MAC) must be recognised as this node's, or its own ARP would look foreign.
    fn rescan_host(&mut self) {
        self.local_addresses = self.sys.local_v6(&self.exclude);
        let Ok(answering) = self.sys.answering_macs(&self.exclude) else { return };
        let mut new: Vec<Mac> = answering
            .into_iter()
            .map(|(_, m)| m)
            .filter(|m| self.own_macs.binary_search(m).is_err())
            .collect();
        new.sort();
        new.dedup();
        // MACs that went away stay: old evidence and neighbours' caches still carry them. The cap
        // only matters on a host whose (not excluded) interfaces churn MACs.
        new.truncate(MAX_OWN_MACS.saturating_sub(self.own_macs.len()));
        if new.is_empty() {
            return;
        }
        let mut inv = (*self.inv).clone();
        let (_, conflicts) = inv.add_self(&self.node_name, &new);
        for (mac, owner) in conflicts {
            tracing::warn!(%mac, config_owner = %owner, "a new MAC of this host is given to another machine in the config");
        }
        tracing::info!(
            macs = %new.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            node = %self.node_name,
            "new interface MACs of this host added to its node"
        );
        self.own_macs.extend(new);
        self.own_macs.sort_unstable();
        self.inv = Arc::new(inv);
    }

    fn housekeeping(&mut self, t: Timestamp, mono: Instant) {
        if mono >= self.next_rescan {
            self.next_rescan = mono + RESCAN;
            self.rescan_host();
        }
        let mut open = 0;
        for (i, p) in self.ports.iter_mut().enumerate() {
            if let Some(ring) = p.ring.as_mut()
                && let Ok(st) = ring.stats()
            {
                p.counts.dropped += st.dropped;
            }
            p.metrics.publish(&p.counts, &mut p.published);
            let link = self.sys.link(&p.name);
            match (&p.ring, &link) {
                (Some(_), Some(l)) if l.ifindex == p.ifindex => {
                    if p.up != l.is_up() {
                        tracing::info!(interface = %p.name, up = l.is_up(), "interface state changed");
                    }
                    p.up = l.is_up();
                    p.mac = l.mac.unwrap_or(p.mac);
                }
                (Some(_), _) => {
                    tracing::warn!(interface = %p.name, "interface disappeared; reopening it when it returns");
                    p.ring = None;
                    p.up = false;
                }
                (None, Some(l)) => match Ring::open(&p.name, p.id, &self.ring_config) {
                    Ok(ring) => {
                        tracing::info!(interface = %p.name, "interface is back; capture reopened");
                        p.ifindex = ring.ifindex();
                        p.ring = Some(ring);
                        p.up = l.is_up();
                        p.mac = l.mac.unwrap_or(p.mac);
                    }
                    Err(e) => tracing::debug!(interface = %p.name, error = %e, "reopening failed"),
                },
                (None, None) => {}
            }
            p.metrics.up.set(i64::from(p.ring.is_some() && p.up));
            open += usize::from(p.ring.is_some() && p.up);
            self.analysis.files[i].error = match (&p.ring, p.up) {
                (None, _) => Some(format!("{}: interface gone; waiting for it to return", p.name)),
                (Some(_), false) => Some(format!("{}: interface down", p.name)),
                _ => None,
            };
        }
        self.analysis.detector.expire(t, &mut self.changes);
        self.shared.metrics.sync_findings(
            &mut self.book,
            &self.analysis.detector,
            &self.vendors,
            self.max_series,
        );
        self.analysis.findings = self.analysis.detector.findings().map(|f| (f.clone(), true)).collect();
        let doc = crate::report::to_json(&self.analysis, &self.inv, &self.vendors);
        // Compact, into a buffer kept between renders: /findings can hold thousands of findings.
        self.json.clear();
        match serde_json::to_writer(&mut self.json, &doc) {
            Ok(()) => {
                self.json.push(b'\n');
                if let Ok(mut slot) = self.shared.findings.lock() {
                    *slot = Bytes::copy_from_slice(&self.json);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot render /findings"),
        }
        drop(doc);
        self.analysis.findings.clear();
        self.changes.changed = false;
        if mono >= self.next_log_reset {
            if self.changes.unlogged > 0 {
                tracing::warn!(
                    more = self.changes.unlogged,
                    "more findings were raised or cleared than are logged; see /findings and /metrics"
                );
            }
            self.changes.log_budget = LOGS_PER_TICK;
            self.changes.unlogged = 0;
            self.next_log_reset = mono + TICK;
        }
        self.shared.open.store(open, Ordering::Relaxed);
        self.shared.heartbeat.store(monotonic_nanos(), Ordering::Relaxed);
    }
}

/// `l2watch run`: sets everything up, reporting each problem once and clearly, then runs until
/// SIGTERM/SIGINT. Returns the exit status.
pub fn start(
    config: Config,
    mut inv: Inventory,
    node: &str,
    named: bool,
    flags: Vec<String>,
) -> anyhow::Result<i32> {
    let sys = Sys::default();
    let names = interfaces(flags, &config, &sys)?;
    let source = if inv.is_empty() { "none" } else { "static" };
    let answering = sys.answering_macs(&config.capture.exclude)?;
    let own_macs: Vec<Mac> = answering.iter().map(|(_, m)| *m).collect();
    // Without an explicit name, a configured node that owns one of this host's MACs is this node.
    let by_mac = own_macs.iter().find_map(|m| match inv.owner(*m) {
        Some(o @ crate::inventory::Owner::Node(_)) => Some(inv.owner_name(o)),
        _ => None,
    });
    let node = match by_mac {
        Some(n) if !named => n.to_string(),
        _ => node.to_owned(),
    };
    let node = node.as_str();
    let (self_node, conflicts) = inv.add_self(node, &own_macs);
    for (mac, owner) in conflicts {
        tracing::warn!(%mac, config_owner = %owner, node, "a MAC of this host is given to another machine in the config; keeping the config's word");
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let listener = runtime.block_on(crate::http::bind(config.metrics.listen))?;
    let ring_config = ring_config(config.capture.ring_mib);
    let rings: Vec<Ring> = open_rings(&sys, &names, &ring_config)?.into_iter().map(|(r, _)| r).collect();
    let (vendors, loaded) = crate::vendor::Vendors::load(&config.oui_files);
    for e in &loaded.errors {
        tracing::warn!(error = %e, "cannot read a MAC vendor registry; vendor names from it are missing");
    }
    if vendors.is_empty() {
        tracing::info!(
            "no MAC vendor registry found (Debian: apt-get install ieee-data); vendor labels stay empty"
        );
    }
    let metrics = Metrics::new()?;
    metrics.set_inventory(&inv, source);
    let shared = Arc::new(Shared::new(metrics, names.len()));
    shared.set_inventory_loaded(true);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        node,
        interfaces = %names.join(","),
        own_macs = %answering.iter().map(|(n, m)| format!("{n}={m}")).collect::<Vec<_>>().join(","),
        listen = %config.metrics.listen,
        inventory = source,
        probing = config.probe.enabled,
        "l2watch started"
    );
    let setup =
        Setup { config, inventory: Arc::new(inv), self_node, own_macs, rings, ring_config, sys, vendors };
    let engine = Engine::new(shared.clone(), setup, &names);
    let capture = std::thread::Builder::new().name("capture".into()).spawn(move || engine.run())?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let status = runtime.block_on(async {
        let server = tokio::spawn(crate::http::serve(listener, shared.clone(), stop_rx));
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut check = tokio::time::interval(Duration::from_secs(1));
        let status = loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break 0 }
                _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break 0 }
                _ = check.tick() => {
                    if capture.is_finished() {
                        tracing::error!("the capture thread ended unexpectedly; exiting so the supervisor restarts l2watch");
                        break 2;
                    }
                }
            }
        };
        let _ = stop_tx.send(true);
        let _ = server.await;
        anyhow::Ok(status)
    })?;
    shared.request_stop();
    if capture.join().is_err() {
        return Ok(2);
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_are_deduplicated_in_order_and_capped() {
        let sys = Sys { class_net: "/nonexistent".into(), proc_net: "/nonexistent".into() };
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = interfaces(names(&["eth0", "eth1", "eth0"]), &Config::default(), &sys).unwrap();
        assert_eq!(got, ["eth0", "eth1"]);
        let err = interfaces(Vec::new(), &Config::default(), &sys).unwrap_err().to_string();
        assert!(err.contains("no default route") && err.contains("--interface"), "{err}");
        let many: Vec<String> = (0..17).map(|i| format!("eth{i}")).collect();
        assert!(interfaces(many, &Config::default(), &sys).is_err());
    }

    #[test]
    fn ring_blocks_are_1_mib_from_4_mib_up() {
        assert_eq!(ring_config(8).block_size, 1 << 20);
        assert_eq!(ring_config(8).block_count, 8);
        assert_eq!(ring_config(2).block_size, 256 << 10);
        assert_eq!(ring_config(2).block_count, 8);
    }
}
