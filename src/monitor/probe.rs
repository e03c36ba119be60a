//! The probe schedule: which address to probe when, and what each round got back.
//!
//! Pure: no sockets and no clock. The capture thread asks [`Prober::poll`] what is due, sends the frames
//! itself, feeds replies in through [`Prober::reply`], and receives closed rounds. On a switched LAN a
//! node never sees the replies a foreign device sends to others, so these rounds are the ground truth
//! for conflicts (DESIGN.md).

use std::net::IpAddr;
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::Deserialize;

use crate::inventory::{Inventory, Lookup, Role};
use crate::monitor::detect::MAX_MACS_PER_IP;
use crate::wire::iprange::IpKey;
use crate::wire::mac::Mac;
use crate::wire::observation::Timestamp;
use crate::wire::synth::SplitMix64;

/// Most unassigned pool addresses probed (the `probe.max_pool_addresses` ceiling): an IPv4 /16, more
/// than one layer2 segment holds; beyond it the schedule alone would grow without bound (an IPv6 pool).
pub const MAX_POOL_ADDRESSES: usize = 1 << 16;

/// The `probe:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// Send RFC 5227 probes at all. Off: passive monitoring only (a switched LAN hides most conflicts).
    pub enabled: bool,
    /// How often each service, node, host and registry address is probed (with +-10% jitter).
    #[serde(with = "crate::humane::duration")]
    pub interval: Duration,
    /// How often each unassigned pool address is probed.
    #[serde(with = "crate::humane::duration")]
    pub pool_interval: Duration,
    /// How long replies to one probe count towards its round.
    #[serde(with = "crate::humane::duration")]
    pub reply_window: Duration,
    /// At most this many probe frames per second, over all addresses and interfaces.
    pub rate: u32,
    /// A service address is `unanswered` after this many silent rounds in a row.
    pub unanswered_after: u32,
    /// Unassigned pool addresses beyond this many are not probed (an IPv6 /64 pool is not sweepable).
    pub max_pool_addresses: usize,
    /// At most this many confirmation probes per second: an address whose MAC changed without an
    /// explanation is probed once at once, to tell a move from a conflict. They count within `rate`.
    pub confirm_rate: u32,
    /// An address is confirmed at most once per this long.
    #[serde(with = "crate::humane::duration")]
    pub confirm_gap: Duration,
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
            confirm_rate: 10,
            confirm_gap: Duration::from_secs(5),
        }
    }
}

/// Why an address is probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A Service's assigned address: someone must answer, so it may be judged `unanswered`.
    Service,
    /// A node's, a known host's, or a registry address no Service has: conflicts only (nobody is
    /// obliged to answer for a registry address that is not assigned).
    Watched,
    /// An unassigned pool address (slower schedule).
    Pool,
    /// Not scheduled: probed once because its MAC changed without an explanation.
    Confirm,
}

/// Replies delivered this long after their round's window still count if the kernel stamped them
/// within it: the ring hands frames over in blocks, up to a block timeout (20 ms) late.
pub const DELIVERY_GRACE: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
struct Target {
    ip: IpAddr,
    class: Class,
    next: Timestamp,
    round: Option<Round>,
    silent: u32,
}

#[derive(Clone, Copy, Debug)]
struct Round {
    sent: Timestamp,
    /// Replies stamped after this are too late.
    window_end: Timestamp,
    /// When the round is judged: the window plus [`DELIVERY_GRACE`].
    closes: Timestamp,
    macs: [Mac; MAX_MACS_PER_IP],
    n: u8,
    /// Capture interface of the first reply.
    interface: u16,
}

impl Round {
    /// A round for a probe sent at `sent`, taking replies for `window` nanoseconds.
    fn new(sent: Timestamp, window: u64) -> Round {
        let window_end = Timestamp(sent.0.saturating_add(window));
        Round {
            sent,
            window_end,
            closes: window_end.plus(DELIVERY_GRACE),
            macs: [Mac::ZERO; MAX_MACS_PER_IP],
            n: 0,
            interface: 0,
        }
    }
}

/// A probe round that has closed.
#[derive(Debug)]
pub struct Outcome<'a> {
    /// The probed address.
    pub ip: IpAddr,
    /// Why it is probed.
    pub class: Class,
    /// Distinct MACs that answered (at most [`MAX_MACS_PER_IP`]).
    pub macs: &'a [Mac],
    /// Rounds in a row without any answer, this one included (0 when answered).
    pub silent_rounds: u32,
    /// When the probe went out.
    pub sent: Timestamp,
    /// Capture interface of the first reply, if any.
    pub interface: Option<u16>,
}

/// The schedule and the open rounds for every probed address.
pub struct Prober {
    cfg: ProbeConfig,
    targets: Vec<Target>,
    index: FxHashMap<IpKey, u32>,
    rng: SplitMix64,
    tokens: f64,
    refilled: Timestamp,
    cursor: usize,
    skipped_pool: u128,
    open_rounds: usize,
    next_event: Option<Timestamp>,
    /// One-off rounds for addresses that are not scheduled, waiting to be sent or open.
    oneshots: FxHashMap<IpKey, Target>,
    /// When each address was last confirmed (only those within `confirm_gap`, at most
    /// [`MAX_CONFIRM_MEMORY`]).
    confirmed: FxHashMap<IpKey, Timestamp>,
    confirm_tokens: f64,
    confirm_refilled: Timestamp,
    /// Confirmations refused by the rate limit or the per-address gap.
    refused: u64,
}

/// Most one-off confirmation rounds waiting or open at once.
pub const MAX_ONESHOTS: usize = 64;
/// Most addresses remembered as confirmed recently; at `confirm_rate` within `confirm_gap` far fewer
/// are needed.
const MAX_CONFIRM_MEMORY: usize = 4096;

/// The confirmation bucket holds one second's worth (at least one).
fn cfg_confirm_burst(cfg: &ProbeConfig) -> u32 {
    cfg.confirm_rate.max(1)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Prober {
    /// An empty schedule; call [`Prober::set_targets`].
    pub fn new(mut cfg: ProbeConfig, seed: u64) -> Prober {
        // The config rejects more; anyone else gets a schedule that fits in memory.
        cfg.max_pool_addresses = cfg.max_pool_addresses.min(MAX_POOL_ADDRESSES);
        Prober {
            tokens: f64::from(cfg.rate),
            targets: Vec::new(),
            index: FxHashMap::default(),
            rng: SplitMix64::new(seed),
            refilled: Timestamp(0),
            cursor: 0,
            skipped_pool: 0,
            open_rounds: 0,
            next_event: None,
            oneshots: FxHashMap::with_capacity_and_hasher(MAX_ONESHOTS, Default::default()),
            confirmed: FxHashMap::default(),
            confirm_tokens: f64::from(cfg_confirm_burst(&cfg)),
            confirm_refilled: Timestamp(0),
            refused: 0,
            cfg,
        }
    }

    /// Takes new settings (a config reload), keeping the schedule and open rounds: each address moves
    /// to the new interval after its next probe.
    pub fn set_config(&mut self, cfg: ProbeConfig) {
        self.tokens = self.tokens.min(f64::from(cfg.rate));
        self.confirm_tokens = self.confirm_tokens.min(f64::from(cfg_confirm_burst(&cfg)));
        self.cfg = cfg;
        self.update_next_event();
    }

    /// Rebuilds the target list from an inventory: every service, registry, node and host address, and
    /// unassigned pool addresses up to `max_pool_addresses`. Addresses already scheduled keep their
    /// schedule and silent-round count; new ones get a random first slot within one interval, so a
    /// restart does not probe everything at once.
    pub fn set_targets(&mut self, inv: &Inventory, now: Timestamp) {
        let mut wanted: Vec<(IpAddr, Class)> = inv
            .watched()
            .filter_map(|(key, w)| {
                let class = match w.role {
                    Role::Service => Class::Service,
                    Role::Node | Role::Host | Role::Registry => Class::Watched,
                    Role::Pool => return None,
                };
                Some((key.to_ip(), class))
            })
            .collect();
        let mut budget = self.cfg.max_pool_addresses;
        self.skipped_pool = 0;
        for pool in &inv.pools {
            for range in &pool.ranges {
                let mut ip = range.first();
                let len = range.len();
                let take = len.min(budget as u128);
                // IPv6 pools can hold more than 2^128 addresses together: the count stops at the top.
                self.skipped_pool = self.skipped_pool.saturating_add(len - take);
                for _ in 0..take {
                    if matches!(inv.lookup(ip), Lookup::Pool(_)) {
                        wanted.push((ip.to_ip(), Class::Pool));
                    }
                    ip = IpKey(ip.0.wrapping_add(1));
                }
                budget -= take as usize;
            }
        }
        wanted.sort_by_key(|(ip, _)| *ip);
        wanted.dedup_by_key(|(ip, _)| *ip);
        let old = std::mem::take(&mut self.targets);
        let old_index = std::mem::take(&mut self.index);
        for (ip, class) in wanted {
            let target = match old_index.get(&IpKey::from(ip)) {
                Some(&i) if old[i as usize].class == class => old[i as usize].clone(),
                _ => {
                    let spread = nanos(self.interval(class)).max(1);
                    Target {
                        ip,
                        class,
                        next: Timestamp(now.0 + self.rng.below(spread)),
                        round: None,
                        silent: 0,
                    }
                }
            };
            self.index.insert(IpKey::from(ip), self.targets.len() as u32);
            self.targets.push(target);
        }
        self.cursor = 0;
        self.open_rounds = self.targets.iter().filter(|t| t.round.is_some()).count();
        self.update_next_event();
    }

    /// Moves every scheduled time by `delta` nanoseconds: the wall clock was stepped (NTP at boot),
    /// and without this the schedule would stall for as long as the clock went back.
    pub fn shift(&mut self, delta: i64) {
        let mv = |t: &mut Timestamp| t.0 = t.0.saturating_add_signed(delta);
        for t in self.targets.iter_mut().chain(self.oneshots.values_mut()) {
            mv(&mut t.next);
            if let Some(r) = t.round.as_mut() {
                mv(&mut r.sent);
                mv(&mut r.window_end);
                mv(&mut r.closes);
            }
        }
        for t in self.confirmed.values_mut() {
            mv(t);
        }
        mv(&mut self.refilled);
        mv(&mut self.confirm_refilled);
        self.update_next_event();
    }

    /// The earliest round to close, or probe to send once the rate limit allows it: an overdue probe
    /// waiting for a token must not make the capture thread spin.
    fn update_next_event(&mut self) {
        let all = || self.targets.iter().chain(self.oneshots.values());
        let closes = all().filter_map(|t| t.round.map(|r| r.closes)).min();
        let due = all().filter(|t| t.round.is_none()).map(|t| t.next).min();
        let rate = f64::from(self.cfg.rate.max(1));
        let token =
            Timestamp(self.refilled.0.saturating_add(((1.0 - self.tokens).max(0.0) / rate * 1e9) as u64));
        let due = due.map(|d| d.max(token));
        self.next_event = match (closes, due) {
            (Some(c), Some(d)) => Some(c.min(d)),
            (c, d) => c.or(d),
        };
    }

    fn interval(&self, class: Class) -> Duration {
        if class == Class::Pool { self.cfg.pool_interval } else { self.cfg.interval }
    }

    /// Number of scheduled addresses.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Pool addresses left out by `max_pool_addresses` at the last [`Prober::set_targets`].
    pub fn skipped_pool_addresses(&self) -> u128 {
        self.skipped_pool
    }

    /// Brings the next probe of `ip` forward to `now` (a claim wants judging); returns false when
    /// `ip` is not scheduled. A round already open for it serves as it is.
    pub fn probe_soon(&mut self, ip: IpAddr, now: Timestamp) -> bool {
        let Some(&i) = self.index.get(&IpKey::from(ip)) else { return false };
        let t = &mut self.targets[i as usize];
        if t.round.is_none() && t.next > now {
            t.next = now;
            self.update_next_event();
        }
        true
    }

    /// Asks for one probe of `ip` at once because its MAC changed without an explanation. A scheduled
    /// address has its next probe brought forward; any other gets a one-off round. Refused (false)
    /// when `ip` was confirmed within `confirm_gap`, or beyond `confirm_rate`.
    pub fn confirm(&mut self, ip: IpAddr, now: Timestamp) -> bool {
        let key = IpKey::from(ip);
        let gap = nanos(self.cfg.confirm_gap);
        if self.confirmed.get(&key).is_some_and(|t| now.0 < t.0.saturating_add(gap))
            || self.oneshots.contains_key(&key)
        {
            self.refused += 1;
            return false;
        }
        let burst = f64::from(cfg_confirm_burst(&self.cfg));
        let elapsed = now.since(self.confirm_refilled).as_secs_f64();
        self.confirm_tokens = (self.confirm_tokens + elapsed * f64::from(self.cfg.confirm_rate)).min(burst);
        self.confirm_refilled = now;
        if self.confirm_tokens < 1.0 || self.cfg.confirm_rate == 0 {
            self.refused += 1;
            return false;
        }
        if self.confirmed.len() >= MAX_CONFIRM_MEMORY {
            self.confirmed.retain(|_, t| now.0 < t.0.saturating_add(gap));
            if self.confirmed.len() >= MAX_CONFIRM_MEMORY {
                self.refused += 1;
                return false;
            }
        }
        if !self.probe_soon(ip, now) {
            if self.oneshots.len() >= MAX_ONESHOTS {
                self.refused += 1;
                return false;
            }
            self.oneshots
                .insert(key, Target { ip, class: Class::Confirm, next: now, round: None, silent: 0 });
            self.update_next_event();
        }
        self.confirm_tokens -= 1.0;
        self.confirmed.insert(key, now);
        true
    }

    /// Confirmations refused so far (rate limit, per-address gap, or too many at once).
    pub fn refused_confirmations(&self) -> u64 {
        self.refused
    }

    /// Whether `mac` answering `ip` at `at` joins an open round that another MAC answered already.
    #[inline]
    pub fn answered_by_another(&self, ip: IpAddr, mac: Mac, at: Timestamp) -> bool {
        if self.open_rounds == 0 {
            return false;
        }
        let key = IpKey::from(ip);
        let round = match self.index.get(&key) {
            Some(&i) => self.targets[i as usize].round.as_ref(),
            None => self.oneshots.get(&key).and_then(|t| t.round.as_ref()),
        };
        round.is_some_and(|r| {
            at >= r.sent && at <= r.window_end && r.n > 0 && !r.macs[..r.n as usize].contains(&mac)
        })
    }

    /// The earliest moment something is due (a probe or a round closing), if anything is scheduled.
    pub fn next_event(&self) -> Option<Timestamp> {
        self.next_event
    }

    /// Sends what is due and closes rounds whose reply window has passed. `send` transmits one probe
    /// and says whether it went out; `closed` receives each finished round.
    pub fn poll(
        &mut self,
        now: Timestamp,
        mut send: impl FnMut(IpAddr) -> bool,
        mut closed: impl FnMut(Outcome<'_>),
    ) {
        // Nothing due: the common case on every wakeup, answered without walking the targets.
        if self.next_event.is_none_or(|e| e > now) {
            return;
        }
        for t in &mut self.targets {
            if let Some(r) = t.round.filter(|r| r.closes <= now) {
                t.round = None;
                self.open_rounds -= 1;
                t.silent = if r.n == 0 { t.silent.saturating_add(1) } else { 0 };
                closed(Outcome {
                    ip: t.ip,
                    class: t.class,
                    macs: &r.macs[..r.n as usize],
                    silent_rounds: t.silent,
                    sent: r.sent,
                    interface: (r.n > 0).then_some(r.interface),
                });
            }
        }
        if !self.oneshots.is_empty() {
            self.oneshots.retain(|_, t| {
                let Some(r) = t.round.filter(|r| r.closes <= now) else { return true };
                closed(Outcome {
                    ip: t.ip,
                    class: Class::Confirm,
                    macs: &r.macs[..r.n as usize],
                    silent_rounds: u32::from(r.n == 0),
                    sent: r.sent,
                    interface: (r.n > 0).then_some(r.interface),
                });
                false
            });
            self.open_rounds = self.targets.iter().filter(|t| t.round.is_some()).count()
                + self.oneshots.values().filter(|t| t.round.is_some()).count();
        }
        self.refill(now);
        let window = nanos(self.cfg.reply_window);
        // Confirmations first: a change waiting to be judged matters more than a routine round.
        for t in self.oneshots.values_mut() {
            if self.tokens < 1.0 {
                break;
            }
            if t.round.is_some() {
                continue;
            }
            if !send(t.ip) {
                // No interface can send: nothing to confirm with; the round closes unanswered and
                // says nothing (one responder or none is not a conflict).
                t.round = Some(Round::new(now, 0));
                self.open_rounds += 1;
                continue;
            }
            self.tokens -= 1.0;
            t.round = Some(Round::new(now, window));
            self.open_rounds += 1;
        }
        let n = self.targets.len();
        for step in 0..n {
            if self.tokens < 1.0 {
                break;
            }
            let i = (self.cursor + step) % n;
            let t = &self.targets[i];
            if t.next > now || t.round.is_some() {
                continue;
            }
            let interval = nanos(self.interval(t.class));
            // +-10% jitter, so nodes probing the same addresses drift apart instead of in lockstep.
            let jitter = self.rng.below(interval / 5 + 1);
            let next = Timestamp(now.0.saturating_add(interval - interval / 10).saturating_add(jitter));
            let ip = t.ip;
            if !send(ip) {
                // The interface is down: try again next interval rather than spin.
                self.targets[i].next = next;
                continue;
            }
            self.tokens -= 1.0;
            let t = &mut self.targets[i];
            t.next = next;
            t.round = Some(Round::new(now, window));
            self.open_rounds += 1;
            self.cursor = (i + 1) % n;
        }
        self.update_next_event();
    }

    fn refill(&mut self, now: Timestamp) {
        let rate = f64::from(self.cfg.rate);
        let elapsed = now.since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate.max(1.0));
        self.refilled = now;
    }

    /// A reply for `ip` from `mac`, stamped `at`, arrived on capture interface `interface`. When a
    /// round for `ip` is open and `at` is within its window, `mac` joins its responders; the time since
    /// the probe is returned for the first responder (the round's RTT).
    #[inline]
    pub fn reply(&mut self, ip: IpAddr, mac: Mac, at: Timestamp, interface: u16) -> Option<Duration> {
        // Most of the time no round is open: no lookup at all.
        if self.open_rounds == 0 {
            return None;
        }
        let key = IpKey::from(ip);
        let round = match self.index.get(&key) {
            Some(&i) => self.targets[i as usize].round.as_mut()?,
            None => self.oneshots.get_mut(&key)?.round.as_mut()?,
        };
        if at > round.window_end || at < round.sent || round.macs[..round.n as usize].contains(&mac) {
            return None;
        }
        let first = round.n == 0;
        if first {
            round.interface = interface;
        }
        if (round.n as usize) < MAX_MACS_PER_IP {
            round.macs[round.n as usize] = mac;
            round.n += 1;
        }
        first.then(|| at.since(round.sent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::testing::inventory as build;

    const S: u64 = 1_000_000_000;

    /// Node a (10.0.0.1), pool 10.0.0.100-10.0.0.103, and ns/web on 10.0.0.100.
    fn inv() -> Inventory {
        build(
            &[("a", &["02:00:00:00:00:01"], "10.0.0.1")],
            &["10.0.0.100-10.0.0.103"],
            &[("ns/web", "10.0.0.100")],
            &[],
        )
    }

    fn cfg() -> ProbeConfig {
        ProbeConfig { interval: Duration::from_secs(10), rate: 1000, ..ProbeConfig::default() }
    }

    type Sent = Vec<(u64, IpAddr)>;
    type Closed = Vec<(IpAddr, usize, u32)>;

    fn run(p: &mut Prober, from: u64, to: u64, step: u64) -> (Sent, Closed) {
        let (mut sent, mut closed) = (Vec::new(), Vec::new());
        let mut t = from;
        while t <= to {
            p.poll(
                Timestamp(t),
                |ip| {
                    sent.push((t, ip));
                    true
                },
                |o| closed.push((o.ip, o.macs.len(), o.silent_rounds)),
            );
            t += step;
        }
        (sent, closed)
    }

    #[test]
    fn every_address_is_probed_once_per_interval_with_jitter() {
        let mut p = Prober::new(cfg(), 7);
        p.set_targets(&inv(), Timestamp(0));
        // Service .100, node .1, and pool .101-.103 (.100 is the service's).
        assert_eq!(p.len(), 5);
        let (sent, _) = run(&mut p, 0, 60 * S, S / 10);
        let service: Vec<u64> =
            sent.iter().filter(|(_, ip)| ip.to_string() == "10.0.0.100").map(|s| s.0).collect();
        assert!((6..=7).contains(&service.len()), "{service:?}");
        for w in service.windows(2) {
            let gap = w[1] - w[0];
            assert!((9 * S..=11 * S + S / 10).contains(&gap), "gap {gap}");
        }
        // Pool addresses are on the 5-minute schedule: once in the first minute at most.
        let pool = sent.iter().filter(|(_, ip)| ip.to_string() == "10.0.0.102").count();
        assert!(pool <= 1, "{pool}");
    }

    #[test]
    fn rounds_collect_distinct_macs_and_count_silence() {
        let mut p = Prober::new(ProbeConfig { interval: Duration::from_secs(2), ..cfg() }, 1);
        p.set_targets(&inv(), Timestamp(0));
        let vip: IpAddr = "10.0.0.100".parse().unwrap();
        let mut rounds = Vec::new();
        let mut t = 0;
        while t < 10 * S {
            let mut sent_now = false;
            p.poll(
                Timestamp(t),
                |ip| {
                    sent_now |= ip == vip;
                    true
                },
                |o| {
                    if o.ip == vip {
                        rounds.push((o.macs.to_vec(), o.silent_rounds));
                    }
                },
            );
            if sent_now && t < 3 * S {
                let a = Mac([2, 0, 0, 0, 0, 0xa]);
                let b = Mac([2, 0, 0, 0, 0, 0xb]);
                assert_eq!(p.reply(vip, a, Timestamp(t + 1000), 0), Some(Duration::from_nanos(1000)));
                assert_eq!(p.reply(vip, a, Timestamp(t + 2000), 0), None, "same MAC twice");
                assert_eq!(p.reply(vip, b, Timestamp(t + 3000), 0), None, "RTT only for the first");
            }
            t += S / 20;
        }
        assert!(rounds.len() >= 4, "{rounds:?}");
        assert_eq!(rounds[0].0.len(), 2);
        assert_eq!(rounds[0].1, 0);
        let silent: Vec<u32> = rounds.iter().skip_while(|r| !r.0.is_empty()).map(|r| r.1).collect();
        assert_eq!(silent[..3], [1, 2, 3]);
        // A late reply (after the window) does not count.
        assert_eq!(p.reply(vip, Mac([2, 0, 0, 0, 0, 0xc]), Timestamp(t + 100 * S), 0), None);
    }

    #[test]
    fn a_probe_waiting_for_the_rate_limit_is_not_due_yet() {
        let many = build(&[], &["10.1.0.0/24"], &[], &[]);
        let c = ProbeConfig {
            rate: 10,
            pool_interval: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            ..cfg()
        };
        let mut p = Prober::new(c, 3);
        p.set_targets(&many, Timestamp(0));
        let mut sent = 0;
        p.poll(
            Timestamp(2 * S),
            |_| {
                sent += 1;
                true
            },
            |_| {},
        );
        assert_eq!(sent, 10, "the initial bucket");
        // Everything else is overdue, but the next token comes in 100 ms: that is the next event,
        // not "now" (which would make the capture thread spin).
        let next = p.next_event().unwrap();
        assert!(next > Timestamp(2 * S) && next <= Timestamp(2 * S + S / 10 + 1), "{next:?}");
    }

    #[test]
    fn rate_limit_caps_probes_per_second() {
        let many = build(&[], &["10.1.0.0/22"], &[], &[]);
        let c = ProbeConfig {
            rate: 50,
            pool_interval: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            ..cfg()
        };
        let mut p = Prober::new(c, 3);
        p.set_targets(&many, Timestamp(0));
        assert_eq!(p.len(), 1024);
        let (sent, _) = run(&mut p, 0, 10 * S, S / 100);
        // 50/s for 10 s plus the initial bucket of 50.
        assert!((500..=551).contains(&sent.len()), "{}", sent.len());
        // Fair: the cursor walks on, so distinct addresses are probed, not the first 50 again and again.
        let mut ips: Vec<IpAddr> = sent.iter().map(|s| s.1).collect();
        ips.sort();
        ips.dedup();
        assert!(ips.len() >= 500, "{}", ips.len());
    }

    #[test]
    fn pool_cap_and_reschedule_keep_state() {
        let big = build(&[], &["fd00::/64"], &[("a/b", "fd00::5")], &[]);
        let mut p = Prober::new(ProbeConfig { max_pool_addresses: 100, ..cfg() }, 3);
        p.set_targets(&big, Timestamp(0));
        assert_eq!(p.len(), 100, "99 pool addresses + the service");
        assert_eq!(p.skipped_pool_addresses(), (1u128 << 64) - 100);
        run(&mut p, 0, 30 * S, S / 10);
        let vip: IpAddr = "fd00::5".parse().unwrap();
        let before = p.targets[p.index[&IpKey::from(vip)] as usize].silent;
        assert!(before >= 2);
        p.set_targets(&big, Timestamp(31 * S));
        assert_eq!(p.targets[p.index[&IpKey::from(vip)] as usize].silent, before);
    }

    /// Found with the fuzz target `config`: an unbounded `max_pool_addresses` with an IPv6 pool
    /// scheduled addresses until memory ran out.
    #[test]
    fn absurd_pool_cap_is_clamped() {
        let big = build(&[], &["fd00::/8"], &[], &[]);
        let mut p = Prober::new(ProbeConfig { max_pool_addresses: usize::MAX, ..cfg() }, 3);
        p.set_targets(&big, Timestamp(0));
        assert_eq!(p.len(), MAX_POOL_ADDRESSES);
        assert_eq!(p.skipped_pool_addresses(), (1u128 << 120) - MAX_POOL_ADDRESSES as u128);
    }

    /// Found with the fuzz target `config` once `Metrics::set_inventory` no longer panicked on the
    /// same input: IPv6 pools beyond 2^128 addresses together overflowed the skipped count.
    #[test]
    fn skipped_pool_addresses_saturate() {
        let huge = build(&[], &["::/1", "8000::/1", "4000::/2"], &[], &[]);
        let mut p = Prober::new(cfg(), 3);
        p.set_targets(&huge, Timestamp(0));
        assert_eq!(p.skipped_pool_addresses(), u128::MAX);
    }

    #[test]
    fn failed_send_does_not_open_a_round() {
        let mut p = Prober::new(cfg(), 9);
        p.set_targets(&inv(), Timestamp(0));
        let mut closed = 0;
        p.poll(Timestamp(20 * S), |_| false, |_| closed += 1);
        assert!(p.targets.iter().all(|t| t.round.is_none()));
        assert!(p.next_event().unwrap() > Timestamp(20 * S));
        assert_eq!(closed, 0);
    }

    #[test]
    fn replies_count_by_their_stamp_and_the_schedule_follows_clock_steps() {
        let inv = build(&[], &[], &[("ns/web", "10.0.0.100")], &[("ns/planned", "10.0.0.101")]);
        let mut p = Prober::new(ProbeConfig { interval: Duration::from_secs(2), ..cfg_default() }, 5);
        let base = 1_700_000_000 * S;
        p.set_targets(&inv, Timestamp(base));
        let classes: Vec<(String, Class)> = p.targets.iter().map(|t| (t.ip.to_string(), t.class)).collect();
        assert_eq!(classes, [("10.0.0.100".into(), Class::Service), ("10.0.0.101".into(), Class::Watched)]);
        // Open a round for the service address.
        let vip: IpAddr = "10.0.0.100".parse().unwrap();
        let mut t = base;
        let sent_at = loop {
            let mut sent = None;
            p.poll(
                Timestamp(t),
                |ip| {
                    if ip == vip {
                        sent = Some(t);
                    }
                    true
                },
                |_| {},
            );
            if let Some(s) = sent {
                break s;
            }
            t += S / 100;
        };
        let window = ProbeConfig::default().reply_window;
        let a = Mac([2, 0, 0, 0, 0, 0xa]);
        let b = Mac([2, 0, 0, 0, 0, 0xb]);
        // Stamped inside the window, delivered after it (a ring block handed over late): counts.
        let inside = Timestamp(sent_at).plus(window - Duration::from_millis(1));
        assert!(p.reply(vip, a, inside, 3).is_some());
        // Stamped after the window: does not (the round's MACs below are `a` alone).
        p.reply(vip, b, Timestamp(sent_at).plus(window + Duration::from_millis(1)), 3);
        let mut out = Vec::new();
        let close = Timestamp(sent_at).plus(window + DELIVERY_GRACE);
        p.poll(close, |_| true, |o| out.push((o.ip, o.macs.to_vec(), o.interface)));
        assert!(out.contains(&(vip, vec![a], Some(3))), "{out:?}");
        // The wall clock jumps back an hour: everything due moves with it, nothing stalls.
        let before = p.next_event().unwrap();
        p.shift(-3_600 * S as i64);
        assert_eq!(p.next_event().unwrap().0, before.0 - 3_600 * S);
    }

    #[test]
    fn a_confirmation_is_one_probe_at_once_and_at_most_once_per_gap() {
        let mut p = Prober::new(cfg(), 3);
        p.set_targets(&Inventory::none(), Timestamp(0));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let t0 = 100 * S;
        assert!(p.confirm(ip, Timestamp(t0)));
        // The same address again within the gap: refused.
        assert!(!p.confirm(ip, Timestamp(t0 + S)));
        let mut sent = Vec::new();
        p.poll(
            Timestamp(t0),
            |ip| {
                sent.push(ip);
                true
            },
            |_| {},
        );
        assert_eq!(sent, [ip]);
        let (a, b) = (Mac([2, 0, 0, 0, 0, 0xa]), Mac([2, 0, 0, 0, 0, 0xb]));
        p.reply(ip, a, Timestamp(t0 + S / 100), 0);
        assert!(p.answered_by_another(ip, b, Timestamp(t0 + S / 50)));
        assert!(!p.answered_by_another(ip, a, Timestamp(t0 + S / 50)));
        p.reply(ip, b, Timestamp(t0 + S / 50), 0);
        let mut out = Vec::new();
        p.poll(Timestamp(t0 + 2 * S), |_| true, |o| out.push((o.ip, o.class, o.macs.to_vec())));
        assert_eq!(out, [(ip, Class::Confirm, vec![a, b])]);
        // Closed and forgotten: nothing more is sent or closed for it.
        let (mut again, mut closed_again) = (0, 0);
        p.poll(
            Timestamp(t0 + 3 * S),
            |_| {
                again += 1;
                true
            },
            |_| closed_again += 1,
        );
        assert_eq!((again, closed_again), (0, 0));
        // After the gap it may be confirmed again.
        assert!(p.confirm(ip, Timestamp(t0 + 6 * S)));
        // A scheduled address is not given a second round: its next one comes forward.
        let mut p = Prober::new(cfg(), 3);
        p.set_targets(&inv(), Timestamp(0));
        let vip: IpAddr = "10.0.0.100".parse().unwrap();
        assert!(p.confirm(vip, Timestamp(S / 10)));
        let mut sent = Vec::new();
        p.poll(
            Timestamp(S / 10),
            |ip| {
                sent.push(ip);
                true
            },
            |_| {},
        );
        assert!(sent.contains(&vip), "{sent:?}");
        assert!(p.oneshots.is_empty());
    }

    #[test]
    fn a_flood_of_takeovers_sends_no_more_confirmations_than_the_rate() {
        // 100,000 random addresses changing MAC over 10 s (10,000 a second).
        let mut p = Prober::new(ProbeConfig { rate: 100, confirm_rate: 10, ..ProbeConfig::default() }, 5);
        p.set_targets(&Inventory::none(), Timestamp(0));
        let mut rng = SplitMix64::new(9);
        let mut sent = 0u64;
        let t0 = 1_000 * S;
        for i in 0..100_000u64 {
            let t = Timestamp(t0 + i * (10 * S / 100_000));
            let ip = IpAddr::from(std::net::Ipv4Addr::from(rng.next_u64() as u32));
            p.confirm(ip, t);
            if i % 100 == 0 {
                p.poll(
                    t,
                    |_| {
                        sent += 1;
                        true
                    },
                    |_| {},
                );
            }
        }
        p.poll(
            Timestamp(t0 + 12 * S),
            |_| {
                sent += 1;
                true
            },
            |_| {},
        );
        // 10 a second for 10 s, plus the first second's burst.
        assert!(sent <= 10 * 10 + 10, "{sent} probes sent");
        assert!(sent >= 90, "the rate limit should still let {sent} through");
        assert!(p.oneshots.len() <= MAX_ONESHOTS && p.confirmed.len() <= MAX_CONFIRM_MEMORY);
        assert!(p.refused_confirmations() >= 99_000);
    }

    fn cfg_default() -> ProbeConfig {
        ProbeConfig { rate: 1000, ..ProbeConfig::default() }
    }
}
