//! The monitor: the detector, the probe schedule, this host's identity and the judgement of probe
//! rounds, behind one value that the capture loop feeds and asks.
//!
//! Pure: no sockets, no clock (every call takes the time), no log lines. Whatever it decides reaches the
//! caller through a [`Sink`] (findings raised, refreshed, cleared) and [`RoundReport`]s (probe rounds
//! closed). A new inventory snapshot is taken with [`Monitor::set_inventory`], which re-judges the
//! findings whose context changed, so a `wrong_announcer` explained by a new announcer clears at once.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::inventory::{Inventory, Lookup, ServiceName};
use crate::monitor::detect::{At, DetectConfig, Detector, MAX_MACS_PER_IP};
use crate::monitor::drift::ServiceFindings;
use crate::monitor::finding::{Finding, Sink};
use crate::monitor::probe::{Class, ProbeConfig, Prober};
use crate::monitor::state::{Restored, State};
use crate::wire::iprange::IpKey;
use crate::wire::mac::Mac;
use crate::wire::observation::{FrameKind, Observation, Timestamp, Vlans};

/// How the monitor is set up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Detection windows and state limits.
    pub detect: DetectConfig,
    /// Probing; `enabled: false` turns every probe off.
    pub probe: ProbeConfig,
    /// Capture interfaces every probe goes out on (`probe.rate` counts frames, so the schedule runs
    /// at `rate / interfaces` addresses a second).
    pub interfaces: usize,
    /// Seed of the schedule's jitter, so two nodes do not probe in lockstep.
    pub seed: u64,
}

/// A closed probe round, as the exporter needs it.
#[derive(Debug)]
pub struct RoundReport<'a> {
    /// The probed address.
    pub ip: IpAddr,
    /// Why it is probed.
    pub class: Class,
    /// Distinct MACs that answered.
    pub responders: usize,
    /// For a Service's address: silent rounds in a row as this node judges them (0 where this node
    /// answers for the address itself), and the Service.
    pub service: Option<(u32, Option<&'a ServiceName>)>,
}

/// A round the prober closed, copied out so the detector can judge it after the prober is done.
struct Closed {
    ip: IpAddr,
    sent: Timestamp,
    class: Class,
    macs: [Mac; MAX_MACS_PER_IP],
    n: usize,
    silent: u32,
    interface: Option<u16>,
}

/// The pure core of `l2watch run`.
pub struct Monitor {
    detector: Detector,
    prober: Option<Prober>,
    inv: Arc<Inventory>,
    /// Watched addresses this host was last seen claiming (its speaker's announcements, its kernel's
    /// replies), until another MAC claims them.
    self_claims: FxHashMap<IpKey, Timestamp>,
    unanswered_after: u32,
    /// Interface that rounds without a reply are attributed to.
    default_interface: u16,
    /// Findings about Services, from the inventory alone.
    services: ServiceFindings,
    hold: Duration,
    closed: Vec<Closed>,
    /// Capture interfaces, which share `probe.rate`.
    interfaces: usize,
    seed: u64,
}

/// `probe.rate` counts frames and every probe goes out on each interface: the schedule gets its share.
fn per_interface(mut probe: ProbeConfig, interfaces: usize) -> ProbeConfig {
    let n = interfaces.max(1) as u32;
    probe.rate = (probe.rate / n).max(1);
    probe.confirm_rate = (probe.confirm_rate / n).max(1);
    probe
}

impl Monitor {
    /// A monitor watching `inv`, with the probe schedule spread over the next interval from `now`.
    /// What the inventory alone shows (drift, ignored annotations) is raised into `sink` at once.
    pub fn new(settings: Settings, inv: Arc<Inventory>, now: Timestamp, sink: &mut impl Sink) -> Monitor {
        let Settings { detect, probe, interfaces, seed } = settings;
        let unanswered_after = probe.unanswered_after;
        let prober = probe.enabled.then(|| {
            let mut p = Prober::new(per_interface(probe, interfaces), seed);
            p.set_targets(&inv, now);
            p
        });
        let mut services = ServiceFindings::default();
        services.update(None, &inv, now, sink);
        let hold = detect.hold;
        let mut detector = Detector::new(detect);
        detector.set_confirming(prober.is_some());
        Monitor {
            hold,
            services,
            detector,
            prober,
            inv,
            self_claims: FxHashMap::default(),
            unanswered_after,
            default_interface: 0,
            closed: Vec::with_capacity(64),
            interfaces,
            seed,
        }
    }

    /// Takes new settings (a config reload) without losing anything known: findings, per-IP history
    /// and the probe schedule stay. Probing turned on starts a schedule; turned off, drops it.
    pub fn reconfigure(&mut self, detect: DetectConfig, probe: ProbeConfig, now: Timestamp) {
        self.hold = detect.hold;
        self.unanswered_after = probe.unanswered_after;
        self.detector.set_config(detect);
        if !probe.enabled {
            self.prober = None;
        } else if let Some(p) = self.prober.as_mut() {
            p.set_config(per_interface(probe, self.interfaces));
        } else {
            let mut p = Prober::new(per_interface(probe, self.interfaces), self.seed);
            p.set_targets(&self.inv, now);
            self.prober = Some(p);
        }
        self.detector.set_confirming(self.prober.is_some());
    }

    /// Rounds without any reply are attributed to this capture interface.
    pub fn set_default_interface(&mut self, interface: u16) {
        self.default_interface = interface;
    }

    /// Gives a node that claims a Service IP it is not known to announce `grace` for a live
    /// inventory to catch up before it is judged (see `detect.announcer_grace`).
    pub fn set_announcer_grace(&mut self, grace: Duration) {
        self.detector.set_announcer_grace(grace);
    }

    /// The inventory in force.
    pub fn inventory(&self) -> &Arc<Inventory> {
        &self.inv
    }

    /// The detector (per-IP history and counters, for reports).
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The probe schedule, when probing is on.
    pub fn prober(&self) -> Option<&Prober> {
        self.prober.as_ref()
    }

    /// The active findings (unordered): about frames, then about Services.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> + Clone {
        self.detector.findings().chain(self.services.iter())
    }

    /// Takes a new inventory snapshot: probe targets follow it (addresses kept keep their schedule),
    /// and findings it no longer supports clear now rather than after the hold time.
    pub fn set_inventory(&mut self, inv: Arc<Inventory>, now: Timestamp, sink: &mut impl Sink) {
        if let Some(p) = self.prober.as_mut() {
            p.set_targets(&inv, now);
        }
        // A claim recorded for an address the new inventory no longer watches means nothing now.
        self.self_claims.retain(|ip, _| matches!(inv.lookup(*ip), Lookup::Watched(_)));
        self.detector.reconcile(&inv, sink);
        self.services.update(Some(&self.inv), &inv, now, sink);
        self.inv = inv;
    }

    /// Feeds one decoded frame. Returns the round-trip time when it is the first answer to an open
    /// probe round (for the RTT histogram).
    #[inline]
    pub fn observe(&mut self, obs: &Observation, sink: &mut impl Sink) -> Option<Duration> {
        // Only answers to probes make a round: an ARP reply to a sender IP of 0.0.0.0, or a neighbour
        // advertisement, untagged as the probes are. A gratuitous ARP in the window (a failover
        // announcing itself) is not a second responder.
        let answer = obs.vlans.is_empty()
            && !obs.sender_ip.is_unspecified()
            && match obs.kind {
                FrameKind::Reply => obs.target_ip.is_unspecified(),
                FrameKind::NdNa => true,
                _ => false,
            };
        let concurrent = answer
            && self
                .prober
                .as_ref()
                .is_some_and(|p| p.answered_by_another(obs.sender_ip, obs.sender_mac, obs.time));
        self.detector.observe_answer(obs, concurrent, &self.inv, sink);
        if !obs.kind.claims() || obs.sender_ip.is_unspecified() {
            return None;
        }
        let ip = IpKey::from(obs.sender_ip);
        if self.inv.own_macs.binary_search(&obs.sender_mac).is_ok() {
            // Our own claim, seen on the way out: this node (its speaker, or its kernel for an address
            // it holds) answers for the IP until another MAC claims it.
            if obs.outgoing && matches!(self.inv.lookup(ip), Lookup::Watched(_)) {
                self.self_claims.insert(ip, obs.time);
            }
            return None;
        }
        if !self.self_claims.is_empty() {
            // Another MAC claims it: the IP moved away from this node (or is shared, which the rounds
            // show).
            self.self_claims.remove(&ip);
        }
        if !answer {
            return None;
        }
        self.prober.as_mut()?.reply(obs.sender_ip, obs.sender_mac, obs.time, obs.interface)
    }

    /// What a restart must not lose (see [`crate::monitor::state`]), at `now`.
    pub fn save(&self, now: Timestamp) -> State {
        self.detector.save(now)
    }

    /// Takes back a saved state at start, judged against the inventory in force; see
    /// [`Detector::restore`].
    pub fn restore(&mut self, state: &State, now: Timestamp) -> Restored {
        self.detector.restore(state, &self.inv, now)
    }

    /// The earliest moment a probe is due or a round closes.
    pub fn next_event(&self) -> Option<Timestamp> {
        self.prober.as_ref().and_then(Prober::next_event)
    }

    /// The wall clock was stepped by `delta` nanoseconds: the probe schedule moves with it.
    pub fn shift(&mut self, delta: i64) {
        if let Some(p) = self.prober.as_mut() {
            p.shift(delta);
        }
        self.detector.shift(delta);
    }

    /// Sends the probes that are due through `send` (which says whether the probe went out) and
    /// judges the rounds that closed, reporting each to `rounds`.
    pub fn probe(
        &mut self,
        now: Timestamp,
        send: impl FnMut(IpAddr) -> bool,
        sink: &mut impl Sink,
        mut rounds: impl FnMut(&RoundReport<'_>),
    ) {
        // Claims whose grace is over are judged by the next round of their address, brought forward;
        // without probing (or for an address not probed) they are judged as they stand.
        let prober = &mut self.prober;
        self.detector.take_confirmations(|ip| {
            if let Some(p) = prober.as_mut() {
                p.confirm(ip, now);
            }
        });
        let due: Vec<IpAddr> = self.detector.due_claims(now).collect();
        for ip in due {
            if !self.prober.as_mut().is_some_and(|p| p.probe_soon(ip, now)) {
                self.detector.settle_claims(Some(ip), None, now, &self.inv, sink);
            }
        }
        let Some(prober) = self.prober.as_mut() else { return };
        let closed = &mut self.closed;
        prober.poll(now, send, |o| {
            let mut macs = [Mac::ZERO; MAX_MACS_PER_IP];
            let n = o.macs.len().min(MAX_MACS_PER_IP);
            macs[..n].copy_from_slice(&o.macs[..n]);
            closed.push(Closed {
                ip: o.ip,
                sent: o.sent,
                class: o.class,
                macs,
                n,
                silent: o.silent_rounds,
                interface: o.interface,
            });
        });
        let mut closed = std::mem::take(&mut self.closed);
        for c in closed.drain(..) {
            self.judge(now, &c, sink, &mut rounds);
        }
        self.closed = closed;
    }

    fn judge(
        &mut self,
        now: Timestamp,
        c: &Closed,
        sink: &mut impl Sink,
        rounds: &mut impl FnMut(&RoundReport<'_>),
    ) {
        let macs = &c.macs[..c.n];
        let key = IpKey::from(c.ip);
        let judged = c.class == Class::Service && !self.answers_itself(key);
        let unanswered = judged && c.silent >= self.unanswered_after;
        let at = At {
            time: now,
            frame: 0,
            vlans: Vlans::default(),
            interface: c.interface.unwrap_or(self.default_interface),
        };
        self.detector.probe_round(c.ip, macs, unanswered, at, &self.inv, sink);
        self.detector.settle_claims(Some(c.ip), Some(macs), c.sent, &self.inv, sink);
        let service = (c.class == Class::Service).then(|| {
            let svc = match self.inv.lookup(key) {
                Lookup::Watched(w) => w.service.as_deref(),
                _ => None,
            };
            (if judged { c.silent } else { 0 }, svc)
        });
        rounds(&RoundReport { ip: c.ip, class: c.class, responders: macs.len(), service });
    }

    /// Whether this node answers for `ip` itself, so it cannot judge the IP unanswered (a host never
    /// answers its own probes): it is the announcer, was the last to claim the address on the LAN (a
    /// MetalLB speaker's or keepalived's announcements, its kernel's replies), or holds it as an IPv6
    /// address of a LAN interface. Held IPv4 addresses are not used: procfs does not say which
    /// interface holds one, and kube-proxy in IPVS mode puts every Service IP on a dummy.
    fn answers_itself(&self, ip: IpKey) -> bool {
        if let (Lookup::Watched(w), Some(me)) = (self.inv.lookup(ip), self.inv.this_node)
            && w.announcers.contains(&me)
        {
            return true;
        }
        self.self_claims.contains_key(&ip) || self.inv.local_addresses.binary_search(&ip.to_ip()).is_ok()
    }

    /// Clears findings whose hold time has passed by `now` (a quiet LAN sends no frames to do it).
    pub fn expire(&mut self, now: Timestamp, sink: &mut impl Sink) {
        self.detector.expire(now, sink);
        self.services.expire(now, self.hold, sink);
        self.services.recheck(&self.inv, now, sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Machine, Parts, Service, ThisHost};
    use crate::monitor::finding::{FindingKind, NoSink};
    use crate::wire::observation::Observation;

    fn mac(s: &str) -> Mac {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn secs(s: f64) -> Timestamp {
        Timestamp(1_700_000_000_000_000_000 + (s * 1e9) as u64)
    }

    const A: &str = "02:00:00:00:00:0a";
    const B: &str = "02:00:00:00:00:0b";
    const FOREIGN: &str = "02:00:00:00:00:ff";
    const VIP: &str = "10.0.0.100";

    /// Nodes a and b, the Service on [`VIP`] announced from `announcer`, and this host as node `me`
    /// (a, or a third node c that judges every round).
    fn two_nodes(announcer: Option<&str>, me: &str) -> Arc<Inventory> {
        let mut svc = Service::assigned("ns/web".parse().unwrap(), vec![ip(VIP)]);
        svc.announcer = announcer.map(Arc::from);
        let parts = Parts {
            nodes: vec![
                Machine { name: "a".into(), macs: vec![mac(A)], ips: vec![] },
                Machine { name: "b".into(), macs: vec![mac(B)], ips: vec![] },
            ],
            services: vec![svc],
            ..Parts::default()
        };
        let own = if me == "a" { A } else { "02:00:00:00:00:0c" };
        let me = ThisHost { node: me.into(), macs: vec![mac(own)], addresses: vec![] };
        Arc::new(Inventory::build(parts, Some(&me)))
    }

    /// This host is node a.
    fn inventory(announcer: Option<&str>) -> Arc<Inventory> {
        two_nodes(announcer, "a")
    }

    fn settings() -> Settings {
        let probe = ProbeConfig { interval: Duration::from_secs(10), ..ProbeConfig::default() };
        Settings { detect: DetectConfig::default(), probe, interfaces: 1, seed: 1 }
    }

    fn claim(m: &str, t: Timestamp, outgoing: bool) -> Observation {
        Observation { outgoing, ..Observation::gratuitous(t, mac(m), ip(VIP)) }
    }

    fn answer(m: &str, t: Timestamp) -> Observation {
        Observation {
            time: t,
            kind: FrameKind::Reply,
            sender_mac: mac(m),
            eth_src: mac(m),
            sender_ip: ip(VIP),
            target_ip: ip("0.0.0.0"),
            ..Observation::EMPTY
        }
    }

    /// Runs the schedule from `from` for `secs` seconds in 50 ms steps; `answer` says who answers each
    /// probe. Returns the round reports.
    fn run(m: &mut Monitor, from: f64, secs_: f64, answerers: &[&str]) -> Vec<(usize, Option<u32>)> {
        let mut out = Vec::new();
        let mut t = from;
        while t < from + secs_ {
            let now = secs(t);
            let mut sent = Vec::new();
            m.probe(
                now,
                |ip| {
                    sent.push(ip);
                    true
                },
                &mut NoSink,
                |r| out.push((r.responders, r.service.map(|s| s.0))),
            );
            for _ in sent {
                for a in answerers {
                    m.observe(&answer(a, secs(t + 0.01)), &mut NoSink);
                }
            }
            t += 0.05;
        }
        out
    }

    fn kinds(m: &Monitor) -> Vec<FindingKind> {
        let mut v: Vec<FindingKind> = m.findings().map(|f| f.kind).collect();
        v.sort();
        v
    }

    /// Warning and critical findings only (mac_changed history is beside the point here).
    fn conflicts(m: &Monitor) -> Vec<FindingKind> {
        kinds(m).into_iter().filter(|k| k.severity() >= crate::monitor::finding::Severity::Warning).collect()
    }

    #[test]
    fn silence_is_unanswered_only_where_this_node_does_not_answer_itself() {
        // Node b announces; this node (a) probes and nobody answers: unanswered after 3 rounds.
        let mut m = Monitor::new(settings(), inventory(Some("b")), secs(0.0), &mut NoSink);
        let rounds = run(&mut m, 0.0, 45.0, &[]);
        assert!(rounds.len() >= 4, "{rounds:?}");
        assert!(rounds.iter().any(|r| r.1 >= Some(3)));
        assert_eq!(kinds(&m), [FindingKind::Unanswered]);
        // Node b answers again: cleared at the next round, not after the hold time.
        run(&mut m, 45.0, 12.0, &[B]);
        assert!(kinds(&m).is_empty(), "{:?}", kinds(&m));

        // This node is the announcer: it never answers its own probes, and never judges.
        let mut m = Monitor::new(settings(), inventory(Some("a")), secs(0.0), &mut NoSink);
        let rounds = run(&mut m, 0.0, 45.0, &[]);
        assert!(rounds.iter().all(|r| r.1 == Some(0)), "{rounds:?}");
        assert!(kinds(&m).is_empty());

        // Announcer unknown, but this node was seen announcing the address going out: not judged.
        let mut m = Monitor::new(settings(), inventory(None), secs(0.0), &mut NoSink);
        m.observe(&claim(A, secs(0.0), true), &mut NoSink);
        run(&mut m, 0.0, 45.0, &[]);
        assert!(kinds(&m).is_empty());
        // Once another MAC claims it, this node judges again.
        m.observe(&claim(B, secs(45.0), false), &mut NoSink);
        run(&mut m, 45.0, 45.0, &[]);
        assert!(kinds(&m).contains(&FindingKind::Unanswered), "{:?}", kinds(&m));
    }

    #[test]
    fn two_devices_in_one_round_are_multiple_responders() {
        let mut m = Monitor::new(settings(), inventory(Some("b")), secs(0.0), &mut NoSink);
        run(&mut m, 0.0, 12.0, &[B, FOREIGN]);
        let k = kinds(&m);
        assert!(k.contains(&FindingKind::MultipleResponders), "{k:?}");
        // Only answers to probes count: a gratuitous ARP from b in the window is not a responder.
        let mut m = Monitor::new(settings(), inventory(Some("b")), secs(0.0), &mut NoSink);
        m.observe(&claim(B, secs(0.5), false), &mut NoSink);
        let rounds = run(&mut m, 0.0, 12.0, &[B]);
        assert!(rounds.iter().all(|r| r.0 == 1), "{rounds:?}");
    }

    /// Without an inventory: `first` announces [`VIP`], then `second` does; the probe that goes out
    /// at once is answered by `answerers`. Returns the monitor and the addresses probed.
    fn takeover(answerers: &[&str], probing: bool) -> (Monitor, Vec<IpAddr>) {
        let mut cfg = settings();
        cfg.probe.enabled = probing;
        let mut m = Monitor::new(cfg, Arc::new(Inventory::none()), secs(0.0), &mut NoSink);
        m.observe(&claim(A, secs(0.0), false), &mut NoSink);
        m.observe(&claim(B, secs(0.5), false), &mut NoSink);
        let mut sent = Vec::new();
        m.probe(
            secs(0.5),
            |ip| {
                sent.push(ip);
                true
            },
            &mut NoSink,
            |_| {},
        );
        for (i, a) in answerers.iter().enumerate() {
            m.observe(&answer(a, secs(0.51 + 0.01 * i as f64)), &mut NoSink);
        }
        m.probe(secs(1.7), |_| true, &mut NoSink, |_| {});
        (m, sent)
    }

    #[test]
    fn an_unexplained_takeover_is_confirmed_by_a_probe_at_once() {
        // Both still answer: a conflict, known within 2 s of the second announcement.
        let (m, sent) = takeover(&[A, B], true);
        assert_eq!(sent, [ip(VIP)]);
        assert!(kinds(&m).contains(&FindingKind::MultipleResponders), "{:?}", kinds(&m));
        // Only the new one answers: it moved.
        let (m, sent) = takeover(&[B], true);
        assert_eq!(sent, [ip(VIP)]);
        assert_eq!(kinds(&m), [FindingKind::MacChanged]);
        // With probing off nothing is sent, and one announcement each is only a change.
        let (m, sent) = takeover(&[], false);
        assert!(sent.is_empty());
        assert_eq!(kinds(&m), [FindingKind::MacChanged]);
    }

    #[test]
    fn a_flood_of_takeovers_sends_no_more_probes_than_the_confirmation_rate() {
        // 100,000 addresses each taken over by a second MAC, over 10 s, with no inventory.
        let mut m = Monitor::new(settings(), Arc::new(Inventory::none()), secs(0.0), &mut NoSink);
        let mut rng = crate::wire::synth::SplitMix64::new(4);
        let mut sent = 0u32;
        const N: u64 = 100_000;
        for i in 0..N {
            let t = secs(10.0 * i as f64 / N as f64);
            let ip = IpAddr::from(std::net::Ipv4Addr::from(rng.next_u64() as u32));
            for m_ in [rng.next_u64(), rng.next_u64()] {
                let b = m_.to_be_bytes();
                let mac = Mac([2, b[1], b[2], b[3], b[4], b[5]]);
                m.observe(&Observation::gratuitous(t, mac, ip), &mut NoSink);
            }
            if i % 100 == 0 {
                m.probe(
                    t,
                    |_| {
                        sent += 1;
                        true
                    },
                    &mut NoSink,
                    |_| {},
                );
            }
        }
        let rate = ProbeConfig::default().confirm_rate;
        assert!(sent <= rate * 10 + rate, "{sent} probes for 10 s at {rate}/s");
        assert!(sent >= rate * 9, "only {sent} confirmations went out");
    }

    #[test]
    fn a_split_brain_is_one_event_not_a_change_every_round() {
        // Nodes a and b both answer every round for a Service whose announcer is unknown (either may
        // announce it); this host is node c.
        let mut m = Monitor::new(settings(), two_nodes(None, "c"), secs(0.0), &mut NoSink);
        m.observe(&claim(B, secs(0.1), false), &mut NoSink);
        run(&mut m, 0.0, 35.0, &[A, B]);
        run(&mut m, 35.0, 35.0, &[B, A]);
        assert!(kinds(&m).contains(&FindingKind::MultipleResponders), "{:?}", kinds(&m));
        let changes: Vec<(bool, u64)> = m
            .findings()
            .filter(|f| f.kind == FindingKind::MacChanged)
            .map(|f| (f.expected, f.count))
            .collect();
        let events: u64 = changes.iter().map(|c| c.1).sum();
        assert!(events <= 1, "{changes:?}");
    }

    #[test]
    fn a_new_announcer_clears_wrong_announcer_at_once() {
        // a is the announcer; b claims the IP: wrong_announcer.
        let mut m = Monitor::new(settings(), inventory(Some("a")), secs(0.0), &mut NoSink);
        m.observe(&claim(A, secs(0.5), true), &mut NoSink);
        m.observe(&claim(B, secs(1.0), false), &mut NoSink);
        assert!(kinds(&m).contains(&FindingKind::WrongAnnouncer));
        let changed =
            |m: &Monitor| m.findings().find(|f| f.kind == FindingKind::MacChanged).map(|f| f.expected);
        assert_eq!(changed(&m), Some(false));
        // The API now says b announces it (a failover the inventory caught up with): cleared now.
        struct Cleared(Vec<FindingKind>);
        impl Sink for Cleared {
            fn cleared(&mut self, f: &Finding) {
                self.0.push(f.kind);
            }
        }
        let mut sink = Cleared(Vec::new());
        m.set_inventory(inventory(Some("b")), secs(2.0), &mut sink);
        assert_eq!(sink.0, [FindingKind::WrongAnnouncer]);
        assert!(!kinds(&m).contains(&FindingKind::WrongAnnouncer));
        // And the move to b reads as the failover it was.
        assert_eq!(changed(&m), Some(true));
        // A foreign claim is not explained by any inventory change that leaves it foreign.
        m.observe(&claim(FOREIGN, secs(3.0), false), &mut NoSink);
        m.set_inventory(inventory(None), secs(4.0), &mut NoSink);
        assert!(kinds(&m).contains(&FindingKind::ForeignMac));
    }

    #[test]
    fn own_answers_never_join_a_round_and_others_give_the_rtt() {
        let mut m = Monitor::new(settings(), inventory(Some("b")), secs(0.0), &mut NoSink);
        // Open a round: the first probe goes out within one interval.
        let mut t = 0.0;
        let mut sent = false;
        while !sent && t < 12.0 {
            m.probe(
                secs(t),
                |_| {
                    sent = true;
                    true
                },
                &mut NoSink,
                |_| {},
            );
            t += 0.05;
        }
        assert!(sent, "no probe within an interval");
        // This host's own reply is its own: no RTT, no responder.
        assert_eq!(m.observe(&answer(A, secs(t + 0.001)), &mut NoSink), None);
        // Node b's reply is the round's first answer: the RTT is since the probe.
        let rtt = m.observe(&answer(B, secs(t + 0.002)), &mut NoSink).expect("b's answer is in the round");
        assert!(rtt > Duration::ZERO && rtt < Duration::from_millis(100), "{rtt:?}");
        let mut rounds = Vec::new();
        m.probe(secs(t + 1.5), |_| true, &mut NoSink, |r| rounds.push(r.responders));
        assert_eq!(rounds, [1]);
    }

    /// This host is node c, so it judges every round.
    fn cluster(announcer: &str) -> Arc<Inventory> {
        two_nodes(Some(announcer), "c")
    }

    #[test]
    fn a_new_announcer_gets_a_grace_for_the_api_then_a_probe_round_judges() {
        let graced = || {
            let mut m = Monitor::new(settings(), cluster("a"), secs(0.0), &mut NoSink);
            m.set_announcer_grace(Duration::from_secs(10));
            // Node b's gratuitous ARP comes before the API says it announces now.
            m.observe(&claim(B, secs(1.0), false), &mut NoSink);
            assert!(conflicts(&m).is_empty(), "judged before the grace: {:?}", conflicts(&m));
            m
        };
        // The API catches up within the grace: never a conflict.
        let mut m = graced();
        m.set_inventory(cluster("b"), secs(3.0), &mut NoSink);
        run(&mut m, 3.0, 20.0, &[B]);
        assert!(!conflicts(&m).contains(&FindingKind::WrongAnnouncer), "{:?}", conflicts(&m));
        // It does not, and b still answers the round after the grace: wrong_announcer.
        let mut m = graced();
        run(&mut m, 0.0, 10.5, &[B]);
        assert!(conflicts(&m).is_empty(), "{:?}", conflicts(&m));
        run(&mut m, 10.5, 3.0, &[B]);
        assert_eq!(conflicts(&m), [FindingKind::WrongAnnouncer]);
        // The old announcer answers too: split brain.
        let mut m = graced();
        run(&mut m, 0.0, 13.5, &[A, B]);
        let k = conflicts(&m);
        assert!(
            k.contains(&FindingKind::WrongAnnouncer) && k.contains(&FindingKind::MultipleResponders),
            "{k:?}"
        );
        // b claimed once and went quiet: a blip, nothing to report.
        let mut m = graced();
        run(&mut m, 0.0, 14.0, &[A]);
        assert!(conflicts(&m).is_empty(), "{:?}", conflicts(&m));
        // Without probing, the claim is judged as it stands once the grace is over.
        let mut cfg = settings();
        cfg.probe.enabled = false;
        let mut m = Monitor::new(cfg, cluster("a"), secs(0.0), &mut NoSink);
        m.set_announcer_grace(Duration::from_secs(10));
        m.observe(&claim(B, secs(1.0), false), &mut NoSink);
        m.probe(secs(5.0), |_| true, &mut NoSink, |_| {});
        assert!(conflicts(&m).is_empty());
        m.probe(secs(11.5), |_| true, &mut NoSink, |_| {});
        assert_eq!(conflicts(&m), [FindingKind::WrongAnnouncer]);
    }

    #[test]
    fn a_failback_before_the_api_shows_it_is_no_conflict() {
        // a announced, b took over (the API caught up), and now a takes it back; its gratuitous ARP
        // comes before the API says so.
        let mut m = Monitor::new(settings(), cluster("a"), secs(0.0), &mut NoSink);
        m.set_announcer_grace(Duration::from_secs(10));
        m.observe(&claim(A, secs(1.0), false), &mut NoSink);
        m.set_inventory(cluster("b"), secs(2.0), &mut NoSink);
        m.observe(&claim(B, secs(3.0), false), &mut NoSink);
        m.observe(&claim(A, secs(60.0), false), &mut NoSink);
        assert!(conflicts(&m).is_empty(), "{:?}", conflicts(&m));
        m.set_inventory(cluster("a"), secs(61.0), &mut NoSink);
        run(&mut m, 61.0, 20.0, &[A]);
        assert!(conflicts(&m).is_empty(), "{:?}", conflicts(&m));
        // Without a live inventory, a flip back to a node that is not the announcer is both
        // answering (the passive rule).
        let mut m = Monitor::new(settings(), cluster("b"), secs(0.0), &mut NoSink);
        m.observe(&claim(A, secs(1.0), false), &mut NoSink);
        m.observe(&claim(B, secs(3.0), false), &mut NoSink);
        m.observe(&claim(A, secs(60.0), false), &mut NoSink);
        assert!(conflicts(&m).contains(&FindingKind::MultipleResponders), "{:?}", conflicts(&m));
    }

    #[test]
    fn unanswered_ends_with_the_service() {
        let mut m = Monitor::new(settings(), cluster("b"), secs(0.0), &mut NoSink);
        run(&mut m, 0.0, 45.0, &[]);
        assert!(conflicts(&m).contains(&FindingKind::Unanswered));
        // The Service is deleted: nothing probes its address any more, and nothing must be owed.
        let gone = Arc::new(Inventory::build(Parts::default(), None));
        m.set_inventory(gone, secs(46.0), &mut NoSink);
        assert!(conflicts(&m).is_empty(), "{:?}", conflicts(&m));
    }
}
