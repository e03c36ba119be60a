//! The capture thread of `l2watch run`: rings in, frames to the monitor, probes out, snapshots in,
//! and once a tick what it knows published to the rest of the process.
//!
//! One OS thread owns every ring and the [`Monitor`], so the per-frame path has no lock, no channel
//! and no allocation. A new inventory snapshot arrives through a channel and is taken at the next
//! wakeup (at most 250 ms later). Metric deltas, the `/findings` document and a heartbeat are
//! published once per tick (1 s, or 100 ms after a finding was raised or cleared).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::capture::netif::Sys;
use crate::capture::open::MAX_INTERFACES;
use crate::capture::{CaptureError, Readiness, Ring, RingConfig, wait};
use crate::export::log::FindingLog;
use crate::export::metrics::{InterfaceCounts, InterfaceMetrics, SeriesBook};
use crate::export::report::InventoryJson;
use crate::export::shared::{Shared, monotonic_nanos, wall_clock as now};
use crate::export::state_file::StateFile;
use crate::inventory::{Inventory, Lookup};
use crate::monitor::detect::DetectConfig;
use crate::monitor::engine::{Monitor, RoundReport};
use crate::monitor::probe::{Class, ProbeConfig};
use crate::monitor::state::State;
use crate::monitor::tally::{Analysis, FileOutcome, FrameCounts, interface_id};
use crate::wire::decode::{self, Decoded, FrameMeta, LinkType};
use crate::wire::frame::{ArpSpec, NdSpec, write_arp, write_nd};
use crate::wire::iprange::IpKey;
use crate::wire::mac::Mac;
use crate::wire::observation::Timestamp;
use crate::wire::vendor::Vendors;

/// Wall clock minus monotonic clock, in nanoseconds: constant until someone steps the wall clock.
fn clock_skew() -> i64 {
    now().0 as i64 - monotonic_nanos() as i64
}

/// Housekeeping (metric deltas, /findings, interface checks, expiry) runs this often.
const TICK: Duration = Duration::from_secs(1);
/// A finding raised or cleared is published this soon, not at the next tick.
const EARLY_PUBLISH: Duration = Duration::from_millis(100);
/// A change of the wall clock against the monotonic one beyond this is a step, not drift.
const CLOCK_STEP: Duration = Duration::from_secs(1);
/// The longest the thread sleeps: a new inventory snapshot waits at most this long.
const MAX_WAIT: Duration = Duration::from_millis(250);

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

/// What the capture thread is started with.
pub struct Setup {
    /// The monitor, with the first inventory.
    pub monitor: Monitor,
    /// New inventory snapshots.
    pub inventory: Receiver<Arc<Inventory>>,
    /// Open rings with their interface names, in order.
    pub rings: Vec<(Ring, String)>,
    /// Ring sizes, for reopening.
    pub ring_config: RingConfig,
    /// Where interface state is read from.
    pub sys: Sys,
    /// MAC vendor names.
    pub vendors: Arc<Vendors>,
    /// `metrics.max_series`.
    pub max_series: usize,
    /// Where the inventory comes from (`/findings` says so).
    pub source: &'static str,
    /// The finding sink (logs, Kubernetes Events).
    pub log: FindingLog,
    /// New settings from a config reload.
    pub reconfigure: Receiver<Reconfigure>,
    /// Where the state is kept across restarts, and how often it is written.
    pub state: Option<(StateFile, Duration)>,
}

/// Settings a config reload (SIGHUP) changes while capture goes on.
#[derive(Debug, Clone)]
pub struct Reconfigure {
    /// `detect:`.
    pub detect: DetectConfig,
    /// `probe:` (with `--no-probe` applied).
    pub probe: ProbeConfig,
    /// `metrics.max_series`.
    pub max_series: usize,
    /// `state.interval`.
    pub state_interval: Duration,
}

/// Writes the state file off the capture thread: fsync takes milliseconds to seconds, a ring fills
/// in 200 ms under a flood.
struct StateSaver {
    file: StateFile,
    interval: Duration,
    next: Instant,
    /// Frames and finding changes counted at the last save: nothing new, nothing written.
    saved_at: (u64, u64),
    to_writer: Option<std::sync::mpsc::SyncSender<State>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl StateSaver {
    fn start(file: StateFile, interval: Duration, shared: Arc<Shared>) -> StateSaver {
        // One write waiting at most: a slow disk skips saves rather than queueing them.
        let (tx, rx) = std::sync::mpsc::sync_channel::<State>(1);
        let target = file.clone();
        let writer = std::thread::Builder::new()
            .name("state-writer".into())
            .spawn(move || {
                let mut failing = false;
                for state in rx {
                    // Encoded here, not on the capture thread.
                    let bytes = crate::export::state_file::encode(&state);
                    drop(state);
                    match target.write(&bytes) {
                        Ok(()) => {
                            if failing {
                                tracing::info!(path = %target.path().display(), "the state file is written again");
                            }
                            failing = false;
                            shared.metrics.state_written(Some(bytes.len()));
                        }
                        Err(e) => {
                            if !failing {
                                tracing::warn!(error = %e, "cannot write the state file; the previous one stays; a restart would lose what was learnt since (check the volume)");
                            }
                            failing = true;
                            shared.metrics.state_written(None);
                        }
                    }
                }
            })
            .map_err(|e| tracing::error!(error = %e, "cannot start the state writer; state is not kept"))
            .ok();
        StateSaver {
            file,
            interval,
            next: Instant::now() + interval,
            saved_at: (0, 0),
            to_writer: writer.as_ref().map(|_| tx),
            writer,
        }
    }
}

/// The capture thread's state.
pub struct CaptureLoop {
    shared: Arc<Shared>,
    ports: Vec<Port>,
    monitor: Monitor,
    inventory: Receiver<Arc<Inventory>>,
    tally: Analysis,
    book: SeriesBook,
    max_series: usize,
    log: FindingLog,
    ring_config: RingConfig,
    sys: Sys,
    vendors: Arc<Vendors>,
    logged_wait_error: bool,
    next_log_reset: Instant,
    json: Vec<u8>,
    source: &'static str,
    events_dropped: u64,
    reconfigure: Receiver<Reconfigure>,
    state: Option<StateSaver>,
    /// Findings raised or cleared so far (a save is due only when something changed).
    finding_changes: u64,
}

impl CaptureLoop {
    /// Prepares the capture thread's state.
    pub fn new(shared: Arc<Shared>, setup: Setup) -> CaptureLoop {
        let Setup {
            mut monitor,
            inventory,
            rings,
            ring_config,
            sys,
            vendors,
            max_series,
            source,
            log,
            reconfigure,
            state,
        } = setup;
        let state = state.map(|(file, every)| StateSaver::start(file, every, shared.clone()));
        // Findings restored from the state file were counted before the restart.
        let mut book = SeriesBook::default();
        book.seed(monitor.findings());
        let ports: Vec<Port> = rings
            .into_iter()
            .enumerate()
            .map(|(i, (ring, name))| {
                let link = sys.link(&name);
                let metrics = shared.metrics.interface(&name);
                Port {
                    id: interface_id(i, 0),
                    ifindex: ring.ifindex(),
                    mac: link.as_ref().and_then(|l| l.mac).unwrap_or(Mac::ZERO),
                    up: link.is_some_and(|l| l.is_up()),
                    ring: Some(ring),
                    name,
                    metrics,
                    counts: InterfaceCounts::default(),
                    published: InterfaceCounts::default(),
                }
            })
            .collect();
        if let Some(p) = ports.first() {
            monitor.set_default_interface(p.id);
        }
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
        CaptureLoop {
            tally: Analysis {
                files,
                frames: FrameCounts::default(),
                findings: Vec::new(),
                findings_omitted: 0,
            },
            shared,
            ports,
            monitor,
            inventory,
            book,
            reconfigure,
            state,
            finding_changes: 0,
            max_series,
            log,
            source,
            events_dropped: 0,
            ring_config,
            sys,
            vendors,
            logged_wait_error: false,
            next_log_reset: Instant::now(),
            json: Vec::new(),
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
        while !self.shared.stopping() {
            let t = now();
            let mut timeout = next_tick.saturating_duration_since(Instant::now());
            if let Some(e) = self.monitor.next_event() {
                timeout = timeout.min(Duration::from_nanos(e.0.saturating_sub(t.0)));
            }
            let timeout = timeout.min(MAX_WAIT);
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
                self.monitor.shift(stepped - skew);
            }
            skew = stepped;
            self.take_inventory();
            self.take_settings();
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
            self.probe(now());
            let mono = Instant::now();
            // Findings raised or cleared are published early, but under a storm of them publishing
            // must not eat the capture thread: at most 1/20 of its time goes to early publishes.
            let early_gap = EARLY_PUBLISH.max(last_cost * 20);
            if mono >= next_tick || (self.log.changed && mono.duration_since(last_publish) >= early_gap) {
                self.housekeeping(now(), mono);
                last_publish = mono;
                last_cost = mono.elapsed();
                if mono >= next_tick {
                    next_tick = mono + TICK;
                }
            }
        }
        tracing::info!("capture stopped");
        self.save_state_on_stop();
    }

    /// Takes new settings from a config reload, if any.
    fn take_settings(&mut self) {
        let mut newest = None;
        while let Ok(r) = self.reconfigure.try_recv() {
            newest = Some(r);
        }
        let Some(r) = newest else { return };
        self.monitor.reconfigure(r.detect, r.probe, now());
        self.max_series = r.max_series;
        if let Some(s) = self.state.as_mut() {
            s.interval = r.state_interval;
            s.next = s.next.min(Instant::now() + r.state_interval);
        }
        self.log.changed = true;
    }

    /// Hands the state to the writer when it is due and something changed since the last save.
    fn save_state(&mut self, mono: Instant) {
        let Some(s) = self.state.as_mut() else { return };
        if mono < s.next {
            return;
        }
        s.next = mono + s.interval;
        let at = (self.tally.frames.total, self.finding_changes);
        if at == s.saved_at {
            return;
        }
        if let Some(tx) = &s.to_writer
            && tx.try_send(self.monitor.save(now())).is_ok()
        {
            s.saved_at = at;
        }
    }

    /// The last save, on a clean stop: waits for the writer, so what the next start reads is current.
    fn save_state_on_stop(&mut self) {
        let Some(mut s) = self.state.take() else { return };
        if let Some(tx) = s.to_writer.take() {
            let _ = tx.send(self.monitor.save(now()));
        }
        if let Some(w) = s.writer.take() {
            let _ = w.join();
        }
        tracing::info!(path = %s.file.path().display(), "state saved");
    }

    /// Takes the newest inventory snapshot waiting, if any.
    fn take_inventory(&mut self) {
        let mut newest = None;
        // Empty or disconnected alike: nothing new (the feed only goes away when the process stops).
        while let Ok(inv) = self.inventory.try_recv() {
            newest = Some(inv);
        }
        if let Some(inv) = newest {
            self.monitor.set_inventory(inv, now(), &mut self.log);
            let inv = self.monitor.inventory();
            let probed = |ip: &str| {
                ip.parse::<IpAddr>().is_ok_and(|ip| matches!(inv.lookup(IpKey::from(ip)), Lookup::Watched(_)))
            };
            self.shared.metrics.forget_probe_series(&mut self.book, probed);
            self.log.changed = true;
        }
    }

    fn drain(&mut self, port: usize) {
        let Some(mut ring) = self.ports[port].ring.take() else { return };
        ring.drain(|meta, data| self.frame(port, meta, data));
        self.ports[port].ring = Some(ring);
    }

    #[inline]
    fn frame(&mut self, port: usize, meta: &FrameMeta, data: &[u8]) {
        self.tally.frames.total += 1;
        self.tally.files[port].frames += 1;
        let decoded = decode::decode(LinkType::Ethernet, data, meta);
        self.tally.frames.count(&decoded);
        let obs = match decoded {
            Decoded::Frame(obs) => obs,
            Decoded::Skipped(r) => {
                self.ports[port].counts.malformed[r.index()] += 1;
                return;
            }
            Decoded::Ignored => return,
        };
        self.ports[port].counts.frames[obs.kind.index()] += 1;
        if let Some(rtt) = self.monitor.observe(&obs, &mut self.log) {
            self.ports[port].metrics.rtt.observe(rtt.as_secs_f64());
        }
    }

    fn probe(&mut self, t: Timestamp) {
        let mut buf = [0u8; 128];
        let ports = &mut self.ports;
        let metrics = &self.shared.metrics;
        let book = &mut self.book;
        let max_series = self.max_series;
        let send = |ip: IpAddr| {
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
        };
        let rounds = |r: &RoundReport<'_>| {
            let ip = r.ip.to_string();
            match (r.class, r.service) {
                (Class::Service, Some((rounds, svc))) => {
                    let (ns, name) = svc.map_or(("", ""), |s| (s.namespace.as_str(), s.name.as_str()));
                    metrics.probe_round(book, &ip, r.responders, Some((rounds, ns, name)), max_series);
                }
                (Class::Service | Class::Watched, _) => {
                    metrics.probe_round(book, &ip, r.responders, None, max_series)
                }
                (Class::Pool | Class::Confirm, _) => {}
            }
        };
        self.monitor.probe(t, send, &mut self.log, rounds);
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
        self.log.changed = true;
    }

    /// Checks each interface (down, gone, back) and reopens what returned.
    fn check_ports(&mut self) -> usize {
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
            self.tally.files[i].error = match (&p.ring, p.up) {
                (None, _) => Some(format!("{}: interface gone; waiting for it to return", p.name)),
                (Some(_), false) => Some(format!("{}: interface down", p.name)),
                _ => None,
            };
        }
        open
    }

    fn housekeeping(&mut self, t: Timestamp, mono: Instant) {
        let open = self.check_ports();
        self.monitor.expire(t, &mut self.log);
        self.shared.metrics.sync_findings(
            &mut self.book,
            self.monitor.findings(),
            &self.vendors,
            self.max_series,
        );
        self.publish_findings();
        self.finding_changes += u64::from(self.log.changed);
        self.log.changed = false;
        self.save_state(mono);
        if mono >= self.next_log_reset {
            if self.log.events_dropped > self.events_dropped {
                tracing::warn!(
                    findings = self.log.events_dropped - self.events_dropped,
                    "findings left out of Kubernetes Events: the Event writer is behind (the API is slow or down)"
                );
                self.events_dropped = self.log.events_dropped;
            }
            self.log.new_second();
            self.next_log_reset = mono + TICK;
        }
        self.shared.beat(open);
    }

    /// Renders `/findings`: compact, into a buffer kept between renders (it can hold thousands).
    fn publish_findings(&mut self) {
        self.tally.findings = self.monitor.findings().map(|f| (f.clone(), true)).collect();
        let inv = self.monitor.inventory();
        let mut doc =
            crate::export::report::to_json(&self.tally, self.monitor.detector(), inv, &self.vendors);
        doc.inventory = Some(InventoryJson::new(inv, self.source, self.shared.inventory_synced()));
        self.json.clear();
        match serde_json::to_writer(&mut self.json, &doc) {
            Ok(()) => {
                self.json.push(b'\n');
                self.shared.set_findings_json(Bytes::copy_from_slice(&self.json));
            }
            Err(e) => tracing::error!(error = %e, "cannot render /findings"),
        }
        drop(doc);
        self.tally.findings.clear();
    }
}
