//! The detection engine: observations in, findings out.
//!
//! Pure: no I/O, no clock (time comes from each observation), no allocation per frame once warm, and
//! every table has a hard cap with counted eviction, so a flood of random ARP cannot grow memory.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::Deserialize;

use crate::inventory::{Inventory, Lookup, Owner, Role};
use crate::monitor::finding::{Finding, FindingKey, FindingKind, Severity, Sink};
use crate::monitor::ip_table::{IpTable, Keyed};
use crate::monitor::state::{Address, Restored, SCHEMA, SavedFinding, SavedMac, State};
use crate::wire::iprange::IpKey;
use crate::wire::mac::Mac;
use crate::wire::observation::{FrameKind, Observation, Timestamp, Vlans};

/// Most MACs remembered per IP (the `detect.max_macs_per_ip` ceiling).
pub const MAX_MACS_PER_IP: usize = 4;

/// Most addresses with per-IP state (the `detect.max_tracked_ips` ceiling): about 300 MiB of tables.
pub const MAX_TRACKED_IPS: usize = 1 << 20;

/// Most findings held at once (the `detect.max_findings` ceiling); their table is reserved up front.
pub const MAX_FINDINGS: usize = 1 << 16;

/// Per-IP states the table has room for before it first grows.
const INITIAL_IPS: usize = 1024;

/// Findings are expired at most this often (in capture time).
const SWEEP_EVERY_NS: u64 = 1_000_000_000;

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
    #[serde(with = "crate::humane::duration")]
    pub hold: Duration,
    /// An address flipping back to a MAC that claimed it within this window has several responders.
    #[serde(with = "crate::humane::duration")]
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
    /// With a live inventory (Kubernetes), a node claiming a Service IP it is not known to announce is
    /// given this long for the API to catch up (a failover's gratuitous ARP usually comes before its
    /// ServiceL2Status or Event), then judged by a probe round. Zero: judged at once (a static
    /// inventory never catches up, and `analyze` replays history).
    #[serde(with = "crate::humane::duration")]
    pub announcer_grace: Duration,
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
            announcer_grace: Duration::from_secs(10),
        }
    }
}

/// One MAC's history for one IP.
// repr(C), what every claim writes first: with the address state's header before it, the first
// slot's MAC, latest claim, frame and count fill one cache line.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct MacSlot {
    /// The MAC.
    pub mac: Mac,
    /// Latest claim.
    pub last_seen: Timestamp,
    /// Frame number of the latest claim.
    pub last_frame: u64,
    /// Claims seen.
    pub count: u64,
    /// First claim.
    pub first_seen: Timestamp,
    /// Frame number of the first claim.
    pub first_frame: u64,
}

const NO_SLOT: u8 = u8::MAX;

// repr(C), header first, on cache lines of its own: a frame then reads the address (the table's
// check), the header and the first slot's hot half (almost always the slot in use) in one line.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
struct IpState {
    ip: IpKey,
    last_seen: Timestamp,
    len: u8,
    current: u8,
    watched: bool,
    slots: [MacSlot; MAX_MACS_PER_IP],
}

impl Keyed for IpState {
    #[inline(always)]
    fn key(&self) -> IpKey {
        self.ip
    }
}

/// Counters the detector keeps about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Observations by [`FrameKind::index`].
    pub frames: [u64; FrameKind::ALL.len()],
    /// Per-IP states evicted because `max_tracked_ips` was reached.
    pub ips_evicted: u64,
    /// MACs forgotten because an IP had `max_macs_per_ip` already.
    pub macs_evicted: u64,
    /// Findings dropped because `max_findings` was reached.
    pub findings_evicted: u64,
    /// Confirmation probes not asked for because [`MAX_CONFIRMATIONS`] were waiting.
    pub confirmations_dropped: u64,
}

impl Stats {
    /// Everything evicted, for `l2watch_series_evicted_total`-style accounting.
    pub fn evicted(&self) -> u64 {
        self.ips_evicted + self.macs_evicted + self.findings_evicted
    }
}

/// The engine. One per capture thread (or per replayed file set).
pub struct Detector {
    cfg: DetectConfig,
    ips: IpTable<IpState>,
    findings: FxHashMap<FindingKey, Finding>,
    stats: Stats,
    next_sweep: Timestamp,
    scratch: Vec<u64>,
    /// The per-IP table is full of addresses that may not be evicted.
    pinned_full: bool,
    /// Grace in force for unexplained announcers (zero unless [`Detector::set_announcer_grace`]).
    grace: Duration,
    /// Nodes claiming a Service IP they are not known to announce, waiting for the grace to pass.
    pending: FxHashMap<FindingKey, Pending>,
    /// Addresses whose MAC changed without an explanation, waiting for a confirmation probe (at most
    /// [`MAX_CONFIRMATIONS`]; the prober rate-limits what it sends).
    confirm: Vec<IpAddr>,
    /// Whether anyone takes confirmations (a live daemon that probes; not `analyze`).
    confirming: bool,
}

/// Most addresses waiting for a confirmation probe between two wakeups; more are left out (a flood of
/// takeovers cannot grow memory, and the prober's rate limit would drop them anyway).
pub const MAX_CONFIRMATIONS: usize = 64;

/// A `wrong_announcer` waiting for the API to catch up, or for a probe round to settle it.
#[derive(Clone, Debug)]
struct Pending {
    /// When the grace is over.
    due: Timestamp,
    /// The latest claim.
    at: At,
    /// The claiming node.
    node: Arc<str>,
}

/// Most claims waiting for their grace at once; more are judged at once.
const MAX_PENDING: usize = 256;

/// Context of a finding, built only when a finding is new (it clones `Arc`s).
struct Ctx {
    role: Option<Role>,
    service: Option<Arc<crate::inventory::ServiceName>>,
    node: Option<Arc<str>>,
    pool: Option<Arc<str>>,
    other_mac: Option<Mac>,
    expected: bool,
    flip_flop: bool,
}

impl Ctx {
    fn of(look: Lookup<'_>) -> Ctx {
        let (role, service, pool) = match look {
            Lookup::Watched(w) => (Some(w.role), w.service.clone(), w.pool.clone()),
            Lookup::Pool(p) => (Some(Role::Pool), None, Some(p.name.clone())),
            Lookup::Unwatched => (None, None, None),
        };
        Ctx { role, service, node: None, pool, other_mac: None, expected: false, flip_flop: false }
    }
}

/// Where and when a piece of evidence was seen.
#[derive(Clone, Copy, Debug)]
pub struct At {
    /// When.
    pub time: Timestamp,
    /// Frame number (0 for evidence that is not one frame, such as a probe round).
    pub frame: u64,
    /// VLAN stack.
    pub vlans: Vlans,
    /// Capture interface.
    pub interface: u16,
}

impl At {
    fn of(obs: &Observation) -> At {
        At { time: obs.time, frame: obs.frame, vlans: obs.vlans, interface: obs.interface }
    }
}

/// Order in which findings are evicted, lowest first: info before the rest, then oldest evidence.
fn eviction_rank(f: &Finding) -> u64 {
    (u64::from(f.severity() != Severity::Info) << 63) | (f.last_seen.0 >> 1)
}

/// Identity of a responder: a node or host counts once however many MACs it answers with.
#[inline]
fn responder(inv: &Inventory, mac: Mac) -> u64 {
    match inv.owner(mac) {
        Some(Owner::Node(i)) => (1 << 62) | u64::from(i),
        Some(Owner::Host(i)) => (1 << 61) | u64::from(i),
        None => mac.to_u64(),
    }
}

/// What a claim of `ip` by `mac` is by the inventory alone: the conflict it raises, if any, with the
/// node concerned (the claiming node for `wrong_announcer`, the address's owner for
/// `node_ip_conflict`). Written once for frames and for re-judging findings against a new inventory.
fn claim_verdict(
    inv: &Inventory,
    look: Lookup<'_>,
    ip: IpKey,
    mac: Mac,
) -> Option<(FindingKind, Option<Arc<str>>)> {
    match look {
        Lookup::Watched(w) => match w.role {
            Role::Service | Role::Registry => match inv.owner(mac) {
                Some(Owner::Node(n)) => (!w.announcers.is_empty() && !w.announcers.contains(&n))
                    .then(|| (FindingKind::WrongAnnouncer, Some(inv.owner_name(Owner::Node(n))))),
                // A node without an l2watch Lease may be the one answering: its MACs are unknown.
                _ => (!inv.allowed(mac, ip) && !inv.may_be_unverified_node(w))
                    .then_some((FindingKind::ForeignMac, None)),
            },
            Role::Node | Role::Host => (inv.owner(mac) != w.owner && !inv.allowed(mac, ip))
                .then(|| (FindingKind::NodeIpConflict, w.owner.map(|o| inv.owner_name(o)))),
            Role::Pool => None,
        },
        // A node claiming a pool address is a fresh assignment the inventory has not seen yet.
        Lookup::Pool(_) => (!matches!(inv.owner(mac), Some(Owner::Node(_))) && !inv.allowed(mac, ip))
            .then_some((FindingKind::PoolSquatter, None)),
        Lookup::Unwatched => None,
    }
}

/// Whether a Service address moving from `previous` to `mac` is a failover: from one node to
/// another that may announce it.
fn change_expected(inv: &Inventory, look: Lookup<'_>, previous: Mac, mac: Mac) -> bool {
    match look {
        Lookup::Watched(w) if matches!(w.role, Role::Service | Role::Registry) => {
            matches!(inv.owner(previous), Some(Owner::Node(_)))
                && match inv.owner(mac) {
                    Some(Owner::Node(n)) => w.announcers.is_empty() || w.announcers.contains(&n),
                    _ => false,
                }
        }
        _ => false,
    }
}

/// Whether an RFC 5227 probe (or DAD) of `ip` from `mac` is `foreign_probe`.
fn probe_verdict(inv: &Inventory, look: Lookup<'_>, ip: IpKey, mac: Mac) -> bool {
    let owner = match look {
        Lookup::Unwatched => return false,
        Lookup::Watched(w) => w.owner,
        Lookup::Pool(_) => None,
    };
    match inv.owner(mac) {
        // Nodes probe: l2watch itself does, on every node.
        Some(Owner::Node(_)) => false,
        Some(o) if Some(o) == owner => false,
        _ => !inv.allowed(mac, ip),
    }
}

impl Detector {
    /// A detector with the given limits; memory for them is reserved up front.
    pub fn new(cfg: DetectConfig) -> Detector {
        // The config rejects caps outside these bounds; anyone else gets them clamped rather than an
        // allocation no machine can make.
        let cap_ips = cfg.max_tracked_ips.clamp(16, MAX_TRACKED_IPS);
        let cap_findings = cfg.max_findings.clamp(16, MAX_FINDINGS);
        // The per-IP table starts small and grows with the traffic: a sparse table sized for the cap
        // turns every lookup into a cache and TLB miss (it measured 70 ns a frame live). It never
        // holds more than the cap (eviction makes room first), so its states never take more than
        // twice the cap's room (the vector's doubling) and its index four times as many slots.
        Detector {
            ips: IpTable::with_capacity(INITIAL_IPS.min(cap_ips)),
            findings: FxHashMap::with_capacity_and_hasher(2 * cap_findings, Default::default()),
            scratch: Vec::with_capacity(cap_ips.max(cap_findings)),
            stats: Stats::default(),
            next_sweep: Timestamp(0),
            pinned_full: false,
            grace: Duration::ZERO,
            pending: FxHashMap::default(),
            confirm: Vec::with_capacity(MAX_CONFIRMATIONS),
            confirming: false,
            cfg: DetectConfig { max_tracked_ips: cap_ips, max_findings: cap_findings, ..cfg },
        }
    }

    /// Takes new limits and windows (a config reload) keeping everything known: tables shrink to new
    /// caps as they are next filled. A grace in force takes the new `announcer_grace`.
    pub fn set_config(&mut self, cfg: DetectConfig) {
        if !self.grace.is_zero() {
            self.grace = cfg.announcer_grace;
        }
        self.cfg = DetectConfig {
            max_tracked_ips: cfg.max_tracked_ips.max(16),
            max_findings: cfg.max_findings.max(16),
            ..cfg
        };
        self.pinned_full = false;
    }

    /// Gives nodes that claim a Service IP they are not known to announce `grace` before they are
    /// judged (see [`DetectConfig::announcer_grace`]); zero judges at once.
    pub fn set_announcer_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    /// The wall clock was stepped by `delta` nanoseconds: claims waiting for their grace keep the
    /// time they have left.
    pub fn shift(&mut self, delta: i64) {
        for p in self.pending.values_mut() {
            p.due = Timestamp(p.due.0.saturating_add_signed(delta));
        }
    }

    /// Addresses whose unexplained announcer has had its grace by `now`: each wants a probe round.
    pub fn due_claims(&self, now: Timestamp) -> impl Iterator<Item = IpAddr> + '_ {
        self.pending.iter().filter(move |(_, p)| p.due <= now).map(|(k, _)| k.ip.to_ip())
    }

    /// Settles the waiting claims of `ip` whose grace was over when a probe round was sent at `sent`:
    /// a claiming node that still answers (`macs`) is `wrong_announcer` (an old announcer answering too
    /// is `multiple_responders`, which [`Detector::probe_round`] raises); one that went quiet was a
    /// blip. With `macs` as `None` (no probing), every claim past its grace is judged as it stands.
    pub fn settle_claims(
        &mut self,
        ip: Option<IpAddr>,
        macs: Option<&[Mac]>,
        sent: Timestamp,
        inv: &Inventory,
        sink: &mut impl Sink,
    ) {
        if self.pending.is_empty() {
            return;
        }
        let ripe: Vec<(FindingKey, Pending)> = self
            .pending
            .iter()
            .filter(|(k, p)| p.due <= sent && ip.is_none_or(|ip| k.ip == IpKey::from(ip)))
            .map(|(k, p)| (*k, p.clone()))
            .collect();
        for (key, p) in ripe {
            self.pending.remove(&key);
            let look = inv.lookup(key.ip);
            // The API caught up (or the node is no longer a node): nothing to say.
            if claim_verdict(inv, look, key.ip, key.mac).is_none_or(|(k, _)| k != FindingKind::WrongAnnouncer)
            {
                continue;
            }
            let claimer = responder(inv, key.mac);
            if macs.is_some_and(|m| !m.iter().any(|&m| responder(inv, m) == claimer)) {
                continue;
            }
            let node = Some(p.node.clone());
            self.raise(FindingKind::WrongAnnouncer, key.ip, key.mac, p.at, sink, || Ctx {
                node,
                ..Ctx::of(look)
            });
        }
    }

    /// Feeds one observation.
    #[inline]
    pub fn observe(&mut self, obs: &Observation, inv: &Inventory, sink: &mut impl Sink) {
        self.observe_answer(obs, false, inv, sink);
    }

    /// Feeds one observation; `concurrent` says it answers a probe round that another device already
    /// answered: both answer at once, so the address did not move (the round's close judges them).
    #[inline]
    pub fn observe_answer(
        &mut self,
        obs: &Observation,
        concurrent: bool,
        inv: &Inventory,
        sink: &mut impl Sink,
    ) {
        self.stats.frames[obs.kind.index()] += 1;
        if obs.time >= self.next_sweep {
            self.expire(obs.time, sink);
        }
        if obs.kind.claims() {
            if !obs.sender_ip.is_unspecified() {
                self.claim(obs, concurrent, inv, sink);
            }
        } else if obs.kind.is_probe() {
            self.probe(obs, inv, sink);
        }
    }

    /// Collects addresses whose MAC changed without an explanation for [`Detector::take_confirmations`]
    /// (off by default: a replayed capture cannot be probed).
    pub fn set_confirming(&mut self, on: bool) {
        self.confirming = on;
        self.confirm.clear();
    }

    /// Takes the addresses whose MAC changed without an explanation since the last call: each wants
    /// one probe at once, to tell a move (only the new MAC answers) from a conflict (both answer).
    pub fn take_confirmations(&mut self, mut each: impl FnMut(IpAddr)) {
        for ip in self.confirm.drain(..) {
            each(ip);
        }
    }

    /// Clears findings whose hold time has passed by `now`. [`Detector::observe`] calls it as capture
    /// time advances; a live daemon also calls it from a timer so findings clear on a quiet LAN.
    pub fn expire(&mut self, now: Timestamp, sink: &mut impl Sink) {
        self.next_sweep = Timestamp(now.0.saturating_add(SWEEP_EVERY_NS));
        self.pinned_full = false;
        let hold = self.cfg.hold;
        self.findings.retain(|_, f| {
            let keep = now.since(f.last_seen) <= hold;
            if !keep {
                sink.cleared(f);
            }
            keep
        });
    }

    /// Judges one closed probe round for `ip`: `macs` answered it. Two or more responders (a node counts
    /// once) are `multiple_responders`; `unanswered` (decided by the caller: enough silent rounds, and
    /// this node is not the announcer) raises or refreshes that finding, and any other round clears it.
    pub fn probe_round(
        &mut self,
        ip: IpAddr,
        macs: &[Mac],
        unanswered: bool,
        at: At,
        inv: &Inventory,
        sink: &mut impl Sink,
    ) {
        let key = IpKey::from(ip);
        let look = inv.lookup(key);
        if unanswered {
            self.raise(FindingKind::Unanswered, key, Mac::ZERO, at, sink, || Ctx::of(look));
        } else {
            // Answered, or no longer judged (this node took the IP over): either way it is over.
            let gone = FindingKey { kind: FindingKind::Unanswered, ip: key, mac: Mac::ZERO };
            if let Some(f) = self.findings.remove(&gone) {
                sink.cleared(&f);
            }
        }
        let Some((&first, rest)) = macs.split_first() else { return };
        let first_id = responder(inv, first);
        let Some(&other) = rest.iter().find(|&&m| responder(inv, m) != first_id) else { return };
        if matches!(look, Lookup::Unwatched) && !inv.track_all {
            return;
        }
        for &mac in macs {
            let partner = if responder(inv, mac) == first_id { other } else { first };
            self.raise(FindingKind::MultipleResponders, key, mac, at, sink, || Ctx {
                other_mac: Some(partner),
                ..Ctx::of(look)
            });
        }
    }

    /// The active findings (unordered).
    pub fn findings(&self) -> impl Iterator<Item = &Finding> + Clone {
        self.findings.values()
    }

    /// The MACs that claimed `ip`, with first and last seen, when it is tracked.
    pub fn history(&self, ip: IpAddr) -> Option<&[MacSlot]> {
        self.ips.get(&IpKey::from(ip)).map(|s| &s.slots[..s.len as usize])
    }

    /// Number of IPs with per-IP state.
    pub fn tracked_ips(&self) -> usize {
        self.ips.len()
    }

    /// The detector's own counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The limits in force.
    pub fn config(&self) -> &DetectConfig {
        &self.cfg
    }

    fn claim(&mut self, obs: &Observation, concurrent: bool, inv: &Inventory, sink: &mut impl Sink) {
        let ip = IpKey::from(obs.sender_ip);
        let mac = obs.sender_mac;
        let look = inv.lookup(ip);
        let unwatched = matches!(look, Lookup::Unwatched);
        if unwatched && !inv.track_all {
            return;
        }
        // An unwatched address has no verdict: no call on the common path of `analyze`.
        let verdict = if unwatched { None } else { claim_verdict(inv, look, ip, mac) };
        if let Some((kind, node)) = verdict {
            let key = FindingKey { kind, ip, mac };
            let wait = kind == FindingKind::WrongAnnouncer
                && !self.grace.is_zero()
                && !self.findings.contains_key(&key)
                && (self.pending.len() < MAX_PENDING || self.pending.contains_key(&key));
            match (wait, node) {
                (true, Some(node)) => {
                    let at = At::of(obs);
                    let due = obs.time.plus(self.grace);
                    self.pending.entry(key).and_modify(|p| p.at = at).or_insert(Pending { due, at, node });
                }
                (_, node) => self.raise(kind, ip, mac, At::of(obs), sink, || Ctx { node, ..Ctx::of(look) }),
            }
        }
        if obs.eth_src != mac
            && matches!(obs.kind, FrameKind::Request | FrameKind::Reply | FrameKind::Gratuitous)
            && !inv.allowed(mac, ip)
        {
            let eth_src = obs.eth_src;
            self.raise(FindingKind::EthShaMismatch, ip, mac, At::of(obs), sink, || Ctx {
                other_mac: Some(eth_src),
                ..Ctx::of(look)
            });
        }
        self.record(ip, mac, look, obs, concurrent, inv, sink);
    }

    /// Per-IP MAC history: `mac_changed`, a confirmation probe for a change nothing explains, and, for
    /// flips back, `multiple_responders`.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        ip: IpKey,
        mac: Mac,
        look: Lookup<'_>,
        obs: &Observation,
        concurrent: bool,
        inv: &Inventory,
        sink: &mut impl Sink,
    ) {
        // Addresses the inventory lists are never evicted; pool addresses are (a pool may be a /16).
        let watched = matches!(look, Lookup::Watched(_));
        let max_macs = self.cfg.max_macs_per_ip;
        let mut forgot = false;
        let Some(state) = self.state(ip, watched) else { return };
        state.last_seen = obs.time;
        state.watched = watched;
        let len = state.len as usize;
        let (idx, known, previous_claim) = match state.slots[..len].iter().position(|s| s.mac == mac) {
            Some(i) => (i, true, state.slots[i].last_seen),
            None => {
                let i = if len < max_macs {
                    state.len += 1;
                    len
                } else {
                    // Forget the MAC heard from longest ago, but never the current one.
                    forgot = true;
                    let cur = state.current as usize;
                    let i =
                        (0..len).filter(|&i| i != cur).min_by_key(|&i| state.slots[i].last_seen).unwrap_or(0);
                    if i == cur {
                        state.current = NO_SLOT;
                    }
                    i
                };
                state.slots[i] =
                    MacSlot { mac, first_seen: obs.time, first_frame: obs.frame, ..MacSlot::default() };
                (i, false, Timestamp(0))
            }
        };
        let slot = &mut state.slots[idx];
        slot.last_seen = obs.time;
        slot.last_frame = obs.frame;
        slot.count += 1;
        let current = state.current;
        if current as usize == idx {
            // The MAC that claimed it last claims it again: nearly every frame.
            return;
        }
        state.current = idx as u8;
        let previous = state.slots.get(current as usize).map(|s| s.mac);
        if forgot {
            self.stats.macs_evicted += 1;
        }
        let Some(previous) = previous else {
            return;
        };
        if responder(inv, previous) == responder(inv, mac) {
            // One node answering from several interfaces is MetalLB working as designed.
            return;
        }
        // Two devices answering one probe round, or flapping between them while they are known to
        // both answer, is one split brain (`multiple_responders`), not a string of moves.
        if concurrent || self.both_answer(ip, previous, mac) {
            return;
        }
        let expected = change_expected(inv, look, previous, mac);
        if !expected && self.confirming {
            if self.confirm.len() < MAX_CONFIRMATIONS {
                self.confirm.push(ip.to_ip());
            } else {
                self.stats.confirmations_dropped += 1;
            }
        }
        self.raise(FindingKind::MacChanged, ip, mac, At::of(obs), sink, || Ctx {
            other_mac: Some(previous),
            expected,
            flip_flop: known,
            ..Ctx::of(look)
        });
        if let Some(f) = self.findings.get_mut(&FindingKey { kind: FindingKind::MacChanged, ip, mac }) {
            // The latest change decides how the standing mac_changed finding reads.
            f.other_mac = Some(previous);
            f.expected = expected;
            f.flip_flop |= known;
        }
        // With a live inventory a flip back between two nodes is a failback the API has not shown
        // yet: the pending claim and its probe round judge it, not the passive flip rule.
        let failback = !self.grace.is_zero()
            && matches!(inv.owner(previous), Some(Owner::Node(_)))
            && matches!(inv.owner(mac), Some(Owner::Node(_)));
        if known && !expected && !failback && obs.time.since(previous_claim) <= self.cfg.flip_window {
            // The IP came back to a MAC that claimed it recently: both are answering.
            self.raise(FindingKind::MultipleResponders, ip, mac, At::of(obs), sink, || Ctx {
                other_mac: Some(previous),
                ..Ctx::of(look)
            });
            self.raise(FindingKind::MultipleResponders, ip, previous, At::of(obs), sink, || Ctx {
                other_mac: Some(mac),
                ..Ctx::of(look)
            });
        }
    }

    fn both_answer(&self, ip: IpKey, a: Mac, b: Mac) -> bool {
        let active =
            |mac| self.findings.contains_key(&FindingKey { kind: FindingKind::MultipleResponders, ip, mac });
        active(a) && active(b)
    }

    fn probe(&mut self, obs: &Observation, inv: &Inventory, sink: &mut impl Sink) {
        let ip = IpKey::from(obs.target_ip);
        let look = inv.lookup(ip);
        if probe_verdict(inv, look, ip, obs.sender_mac) {
            self.raise(FindingKind::ForeignProbe, ip, obs.sender_mac, At::of(obs), sink, || Ctx::of(look));
        }
    }

    /// Re-judges the active findings against a new inventory: a conflict the new inventory explains
    /// (the claiming node is the announcer now, the MAC is allow-listed, the pool address was
    /// assigned) clears at once; the others take the new context (Service, pool, role). Per-IP state
    /// learns which addresses are watched now, so eviction follows the new inventory.
    pub fn reconcile(&mut self, inv: &Inventory, sink: &mut impl Sink) {
        self.findings.retain(|key, f| {
            let look = inv.lookup(key.ip);
            let holds = match f.kind {
                FindingKind::ForeignMac
                | FindingKind::WrongAnnouncer
                | FindingKind::NodeIpConflict
                | FindingKind::PoolSquatter => {
                    claim_verdict(inv, look, key.ip, key.mac).is_some_and(|(k, _)| k == f.kind)
                }
                FindingKind::ForeignProbe => probe_verdict(inv, look, key.ip, key.mac),
                // Only a Service's address must be answered.
                FindingKind::Unanswered => {
                    matches!(look, Lookup::Watched(w) if w.role == Role::Service)
                }
                // Two MACs of one node are one responder.
                FindingKind::MultipleResponders => {
                    f.other_mac.is_none_or(|o| responder(inv, o) != responder(inv, key.mac))
                }
                _ => true,
            };
            if !holds {
                sink.cleared(f);
                return false;
            }
            if f.kind == FindingKind::MacChanged
                && let Some(previous) = f.other_mac
            {
                // The API caught up with a failover: the change reads as expected from now on.
                f.expected = change_expected(inv, look, previous, key.mac);
            }
            let ctx = Ctx::of(look);
            f.role = ctx.role;
            f.service = ctx.service;
            f.pool = ctx.pool;
            true
        });
        self.pending.retain(|key, _| {
            claim_verdict(inv, inv.lookup(key.ip), key.ip, key.mac)
                .is_some_and(|(k, _)| k == FindingKind::WrongAnnouncer)
        });
        for s in self.ips.values_mut() {
            s.watched = matches!(inv.lookup(s.ip), Lookup::Watched(_));
        }
        self.pinned_full = false;
    }

    /// What a restart must not lose: every address's MAC history (most recently seen first) and the
    /// active findings, at `now`.
    pub fn save(&self, now: Timestamp) -> State {
        let mut addresses: Vec<&IpState> = self.ips.values().filter(|s| s.len > 0).collect();
        addresses.sort_by_key(|s| std::cmp::Reverse(s.last_seen));
        let addresses = addresses
            .into_iter()
            .map(|s| Address {
                ip: s.ip.to_ip(),
                current: (s.current != NO_SLOT).then_some(s.current),
                macs: s.slots[..s.len as usize]
                    .iter()
                    .map(|m| SavedMac {
                        mac: m.mac,
                        first_seen: m.first_seen.0,
                        last_seen: m.last_seen.0,
                        count: m.count,
                    })
                    .collect(),
            })
            .collect();
        let findings = self
            .findings
            .values()
            .map(|f| SavedFinding {
                kind: f.kind.as_str().to_owned(),
                ip: f.ip,
                mac: f.mac,
                other_mac: f.other_mac,
                node: f.node.as_deref().map(str::to_owned),
                expected: f.expected,
                flip_flop: f.flip_flop,
                vlans: f.vlans.as_slice().to_vec(),
                interface: f.interface,
                first_seen: f.first_seen.0,
                last_seen: f.last_seen.0,
                count: f.count,
            })
            .collect();
        State { schema: SCHEMA.to_owned(), taken: now.0, addresses, findings }
    }

    /// Takes back what [`Detector::save`] saved, within the limits in force, judged against `inv`: a
    /// finding the inventory now explains, or one past its hold time at `now`, is left out. Nothing
    /// goes to a sink: these findings were raised (and logged) before the restart. Per-IP state is
    /// taken only into an empty table (at start).
    pub fn restore(&mut self, state: &State, inv: &Inventory, now: Timestamp) -> Restored {
        let mut r = Restored::default();
        let max_macs = self.cfg.max_macs_per_ip.clamp(1, MAX_MACS_PER_IP);
        for a in &state.addresses {
            let key = IpKey::from(a.ip);
            let look = inv.lookup(key);
            let watched = matches!(look, Lookup::Watched(_));
            let wanted = watched || inv.track_all || matches!(look, Lookup::Pool(_));
            if !wanted || self.ips.len() >= self.cfg.max_tracked_ips || self.ips.contains_key(&key) {
                r.skipped += 1;
                continue;
            }
            let mut st = IpState {
                ip: key,
                slots: [MacSlot::default(); MAX_MACS_PER_IP],
                len: 0,
                current: NO_SLOT,
                watched,
                last_seen: Timestamp(0),
            };
            for (i, m) in a.macs.iter().take(max_macs).enumerate() {
                st.slots[i] = MacSlot {
                    mac: m.mac,
                    first_seen: Timestamp(m.first_seen),
                    last_seen: Timestamp(m.last_seen),
                    count: m.count,
                    ..MacSlot::default()
                };
                st.len += 1;
                st.last_seen = st.last_seen.max(Timestamp(m.last_seen));
            }
            st.current = a.current.filter(|&c| c < st.len).unwrap_or(NO_SLOT);
            // Not there yet (checked above): this inserts.
            self.ips.get_or_insert_with(key, || st);
            r.addresses += 1;
        }
        for saved in &state.findings {
            let kind = FindingKind::ALL.iter().copied().find(|k| k.as_str() == saved.kind);
            let Some(kind) = kind.filter(|k| !k.from_inventory()) else {
                r.skipped += 1;
                continue;
            };
            let key = FindingKey { kind, ip: IpKey::from(saved.ip), mac: saved.mac };
            let expired = now.since(Timestamp(saved.last_seen)) > self.cfg.hold;
            if expired || self.findings.len() >= self.cfg.max_findings || self.findings.contains_key(&key) {
                r.skipped += 1;
                continue;
            }
            let ctx = Ctx::of(inv.lookup(key.ip));
            let mut vlans = Vlans::default();
            for &id in saved.vlans.iter().take(Vlans::MAX) {
                vlans.push(id);
            }
            self.findings.insert(
                key,
                Finding {
                    kind,
                    ip: saved.ip,
                    mac: saved.mac,
                    other_mac: saved.other_mac,
                    role: ctx.role,
                    service: ctx.service,
                    node: saved.node.as_deref().map(Arc::from),
                    pool: ctx.pool,
                    expected: saved.expected,
                    flip_flop: saved.flip_flop,
                    detail: None,
                    vlans,
                    interface: saved.interface,
                    first_seen: Timestamp(saved.first_seen),
                    last_seen: Timestamp(saved.last_seen),
                    first_frame: 0,
                    last_frame: 0,
                    count: saved.count,
                },
            );
            r.findings += 1;
        }
        let before = self.findings.len();
        self.reconcile(inv, &mut crate::monitor::finding::NoSink);
        r.findings -= before - self.findings.len();
        r.skipped += before - self.findings.len();
        r
    }

    /// The state for `ip`, created if there is room (making room by evicting the least recently seen
    /// unwatched half when full). `None` when only watched IPs fill the table.
    fn state(&mut self, ip: IpKey, watched: bool) -> Option<&mut IpState> {
        // Length first: the common case (room left) then costs one lookup, not two.
        if self.ips.len() >= self.cfg.max_tracked_ips && !self.ips.contains_key(&ip) {
            self.evict_ips();
            if self.ips.len() >= self.cfg.max_tracked_ips {
                self.stats.ips_evicted += 1;
                return None;
            }
        }
        Some(self.ips.get_or_insert_with(ip, || IpState {
            ip,
            slots: [MacSlot::default(); MAX_MACS_PER_IP],
            len: 0,
            current: NO_SLOT,
            watched,
            last_seen: Timestamp(0),
        }))
    }

    fn evict_ips(&mut self) {
        if self.pinned_full {
            return;
        }
        self.scratch.clear();
        self.scratch.extend(self.ips.values().filter(|s| !s.watched).map(|s| s.last_seen.0));
        if self.scratch.is_empty() {
            // Only inventory addresses left: do not rescan the whole table for every new address;
            // look again at the next sweep (the inventory may have changed).
            self.pinned_full = true;
            return;
        }
        let mid = self.scratch.len() / 2;
        let cut = *self.scratch.select_nth_unstable(mid).1;
        let before = self.ips.len();
        self.ips.retain(|s| s.watched || s.last_seen.0 > cut);
        self.stats.ips_evicted += (before - self.ips.len()) as u64;
    }

    fn raise(
        &mut self,
        kind: FindingKind,
        ip: IpKey,
        mac: Mac,
        obs: At,
        sink: &mut impl Sink,
        ctx: impl FnOnce() -> Ctx,
    ) {
        let key = FindingKey { kind, ip, mac };
        if let Some(f) = self.findings.get_mut(&key) {
            f.last_seen = obs.time;
            f.last_frame = obs.frame;
            f.count += 1;
            sink.refreshed(f);
            return;
        }
        if self.findings.len() >= self.cfg.max_findings {
            self.evict_findings(obs.time, sink);
        }
        let c = ctx();
        let f = Finding {
            kind,
            ip: ip.to_ip(),
            mac,
            other_mac: c.other_mac,
            role: c.role,
            service: c.service,
            node: c.node,
            pool: c.pool,
            expected: c.expected,
            flip_flop: c.flip_flop,
            detail: None,
            vlans: obs.vlans,
            interface: obs.interface,
            first_seen: obs.time,
            last_seen: obs.time,
            first_frame: obs.frame,
            last_frame: obs.frame,
            count: 1,
        };
        sink.raised(&f);
        self.findings.insert(key, f);
    }

    /// Makes room for a new finding: expired ones first, then the least recently seen quarter, info
    /// findings before the rest so a flood of noise cannot push out a conflict.
    fn evict_findings(&mut self, now: Timestamp, sink: &mut impl Sink) {
        self.expire(now, sink);
        if self.findings.len() < self.cfg.max_findings {
            return;
        }
        self.scratch.clear();
        self.scratch.extend(self.findings.values().map(eviction_rank));
        let nth = self.scratch.len() / 4;
        let cut = *self.scratch.select_nth_unstable(nth).1;
        let before = self.findings.len();
        self.findings.retain(|_, f| {
            let keep = eviction_rank(f) > cut;
            if !keep {
                sink.cleared(f);
            }
            keep
        });
        self.stats.findings_evicted += (before - self.findings.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::finding::NoSink;
    use crate::wire::observation::Observation;
    use std::net::Ipv4Addr;

    fn claim(ip: u32, mac: u64, t: u64) -> Observation {
        let b = mac.to_be_bytes();
        let m = Mac([0x02, b[3], b[4], b[5], b[6], b[7]]);
        Observation {
            time: Timestamp(t),
            kind: FrameKind::Reply,
            sender_mac: m,
            eth_src: m,
            sender_ip: IpAddr::V4(Ipv4Addr::from(ip)),
            ..Observation::EMPTY
        }
    }

    /// Found with the fuzz target `config`: caps no memory can hold made the constructor panic
    /// (arithmetic overflow, capacity overflow) or abort. Beyond the maxima they are clamped, as
    /// they are below the minimum.
    #[test]
    fn absurd_caps_are_clamped() {
        let d = Detector::new(DetectConfig {
            max_tracked_ips: usize::MAX,
            max_findings: usize::MAX / 2 + 1,
            ..DetectConfig::default()
        });
        assert_eq!(d.config().max_tracked_ips, MAX_TRACKED_IPS);
        assert_eq!(d.config().max_findings, MAX_FINDINGS);
    }

    #[test]
    fn a_saved_state_restores_history_and_findings_within_the_limits() {
        const S: u64 = 1_000_000_000;
        let t0 = 1_700_000_000 * S;
        let inv = Inventory::none();
        let mut d = Detector::new(DetectConfig::default());
        // 10.0.0.1: MAC 1, then 2, then 1 again (multiple_responders); 10.0.0.2..: one MAC each.
        for (ip, mac, t) in [(1, 1, 0), (1, 2, 1), (1, 1, 2), (2, 3, 3), (3, 4, 4)] {
            d.observe(&claim(0x0a00_0000 + ip, mac, t0 + t * S), &inv, &mut NoSink);
        }
        let saved = d.save(Timestamp(t0 + 5 * S));
        let keys = |d: &Detector| {
            let mut k: Vec<(FindingKind, IpAddr, Mac, u64, Timestamp)> =
                d.findings().map(|f| (f.kind, f.ip, f.mac, f.count, f.first_seen)).collect();
            k.sort_by_key(|x| (x.0, x.1, x.2));
            k
        };
        assert!(keys(&d).iter().any(|k| k.0 == FindingKind::MultipleResponders));
        // Through JSON, as the state file carries it.
        let saved: State = serde_json::from_str(&serde_json::to_string(&saved).unwrap()).unwrap();
        let mut back = Detector::new(DetectConfig::default());
        let r = back.restore(&saved, &inv, Timestamp(t0 + 6 * S));
        assert_eq!((r.addresses, r.skipped), (3, 0));
        assert_eq!(keys(&back), keys(&d));
        let ip1: IpAddr = "10.0.0.1".parse().unwrap();
        let macs =
            |d: &Detector| d.history(ip1).unwrap().iter().map(|m| (m.mac, m.count)).collect::<Vec<_>>();
        assert_eq!(macs(&back), macs(&d));
        // Claims after the restore carry on from the history: MAC 2 again is a flip, not a new MAC.
        back.observe(&claim(0x0a00_0001, 2, t0 + 7 * S), &inv, &mut NoSink);
        assert!(back.findings().any(|f| f.kind == FindingKind::MacChanged && f.flip_flop));
        // Past the hold time, findings are not taken back; over the caps, neither is the rest.
        let mut late = Detector::new(DetectConfig::default());
        let r = late.restore(&saved, &inv, Timestamp(t0 + 5 * S + 601 * S));
        assert_eq!(r.findings, 0);
        let mut small =
            Detector::new(DetectConfig { max_tracked_ips: 16, max_findings: 16, ..DetectConfig::default() });
        let mut many = saved.clone();
        many.addresses = (0..100u32)
            .map(|i| Address {
                ip: IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)),
                ..saved.addresses[0].clone()
            })
            .collect();
        let r = small.restore(&many, &inv, Timestamp(t0 + 6 * S));
        assert_eq!((r.addresses, r.skipped - saved.findings.len() + r.findings), (16, 84));
        assert!(small.tracked_ips() <= 16);
        // An unknown kind (a newer version's) or an out-of-range slot is left out, not trusted.
        let mut odd = saved.clone();
        odd.findings[0].kind = "something_new".into();
        odd.addresses[0].current = Some(9);
        let mut d2 = Detector::new(DetectConfig::default());
        let r = d2.restore(&odd, &inv, Timestamp(t0 + 6 * S));
        assert_eq!(r.findings, saved.findings.len() - 1);
    }

    #[test]
    fn tables_stop_growing_at_twice_the_cap() {
        let cfg = DetectConfig { max_tracked_ips: 4096, max_macs_per_ip: 2, ..DetectConfig::default() };
        let mut d = Detector::new(cfg);
        let inv = Inventory::none();
        let findings0 = d.findings.capacity();
        // The state vector doubles from its start up to the cap at most (it never holds more), and
        // the index keeps two slots a state.
        let bound = 2 * 4096;
        let slots_bound = 2 * bound;
        // Largest capacity seen in the first and in the second half of the flood.
        let mut peak = [0usize; 2];
        // The benchmark's random flood: every frame a new IP and a new MAC.
        let mut frames = Vec::new();
        let mut out = crate::wire::synth::Emitter::new(|t: u64, f: &[u8]| frames.push((t, f.to_vec())));
        crate::wire::synth::flood(&mut out, &mut crate::wire::synth::SplitMix64::new(1), 300_000);
        let half = frames.len() / 2;
        for (i, (t, f)) in frames.iter().enumerate() {
            let meta = crate::wire::decode::FrameMeta { time: Timestamp(*t), ..Default::default() };
            if let crate::wire::decode::Decoded::Frame(o) =
                crate::wire::decode::decode(crate::wire::decode::LinkType::Ethernet, f, &meta)
            {
                d.observe(&o, &inv, &mut NoSink);
            }
            assert!(d.tracked_ips() <= 4096);
            let p = &mut peak[usize::from(i >= half)];
            *p = (*p).max(d.ips.capacity());
            assert!(d.ips.slots() <= slots_bound, "{} index slots", d.ips.slots());
        }
        // And a few IPs answered by more MACs than the per-IP cap.
        for i in 0..1000u32 {
            for m in 0..3 {
                d.observe(&claim(7, u64::from(i * 3 + m), 300_000_000 + u64::from(i)), &inv, &mut NoSink);
            }
        }
        // Once warm, the per-IP table never grows again, and never beyond twice the cap; the findings
        // table (hashbrown: capacity() shrinks a little with tombstones) never grows.
        assert!(peak[1] <= peak[0] && peak[0] <= bound, "per-IP table grew: {peak:?} (bound {bound})");
        assert!(d.ips.capacity() <= bound && d.findings.capacity() <= findings0, "a table grew");
        assert!(d.stats().ips_evicted >= 295_000 && d.stats().macs_evicted >= 2_000, "{:?}", d.stats());
    }

    #[test]
    fn findings_are_capped_and_conflicts_outlive_noise() {
        let cfg = DetectConfig { max_findings: 64, ..DetectConfig::default() };
        let mut d = Detector::new(cfg);
        let inv = Inventory::none();
        // One real conflict (flip back within the window), then a flood of info-only mismatches.
        for (t, mac) in [(1, 1), (2, 2), (3, 1)] {
            d.observe(&claim(0x0a00_0001, mac, t), &inv, &mut NoSink);
        }
        for i in 0..10_000u32 {
            let mut o = claim(0x0b00_0000 + i, u64::from(i) + 100, 10 + u64::from(i));
            o.eth_src = Mac([0x02, 0, 0, 0, 0, 0xee]);
            d.observe(&o, &inv, &mut NoSink);
        }
        assert!(d.findings().count() <= 64);
        assert!(d.stats().findings_evicted > 9_000);
        assert_eq!(d.findings().filter(|f| f.kind == FindingKind::MultipleResponders).count(), 2);
    }

    #[test]
    fn probe_rounds_judge_responders_and_silence() {
        let macs: &[&str] = &["02:00:00:00:00:01", "02:00:00:00:00:02"];
        let inv = crate::monitor::testing::inventory(&[("a", macs, "")], &[], &[("ns/web", "10.0.0.5")], &[]);
        let mut d = Detector::new(DetectConfig::default());
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let at = |t: u64| At { time: Timestamp(t), frame: 0, vlans: Vlans::default(), interface: 0 };
        let node1 = Mac([2, 0, 0, 0, 0, 1]);
        let node2 = Mac([2, 0, 0, 0, 0, 2]);
        let foreign = Mac([2, 0, 0, 0, 0, 9]);
        let kinds = |d: &Detector| {
            let mut v: Vec<(FindingKind, Mac)> = d.findings().map(|f| (f.kind, f.mac)).collect();
            v.sort_by_key(|(k, m)| (*k, *m));
            v
        };
        // One node answering from two interfaces is one responder.
        d.probe_round(ip, &[node1, node2], false, at(1), &inv, &mut NoSink);
        assert!(kinds(&d).is_empty());
        // Silence, judged unanswered by the prober: raised once, refreshed after.
        d.probe_round(ip, &[], true, at(2), &inv, &mut NoSink);
        d.probe_round(ip, &[], true, at(3), &inv, &mut NoSink);
        assert_eq!(kinds(&d), [(FindingKind::Unanswered, Mac::ZERO)]);
        assert_eq!(d.findings().next().unwrap().count, 2);
        // An answer clears it at once, not after the hold time.
        d.probe_round(ip, &[node1], false, at(4), &inv, &mut NoSink);
        assert!(kinds(&d).is_empty());
        // So does a silent round no longer judged (this node took the address over).
        d.probe_round(ip, &[], true, at(4), &inv, &mut NoSink);
        d.probe_round(ip, &[], false, at(4), &inv, &mut NoSink);
        assert!(kinds(&d).is_empty());
        // A node and a foreign device in one round: both are responders.
        d.probe_round(ip, &[node1, foreign], false, at(5), &inv, &mut NoSink);
        let mut want =
            vec![(FindingKind::MultipleResponders, node1), (FindingKind::MultipleResponders, foreign)];
        want.sort_by_key(|(k, m)| (*k, *m));
        assert_eq!(kinds(&d), want);
        let f = d.findings().find(|f| f.mac == foreign).unwrap();
        assert_eq!(f.other_mac, Some(node1));
        // Rounds for addresses nobody watches are ignored when only watched ones are tracked.
        let mut quiet = Detector::new(DetectConfig::default());
        quiet.probe_round("10.9.9.9".parse().unwrap(), &[node1, foreign], false, at(6), &inv, &mut NoSink);
        assert_eq!(quiet.findings().count(), 0);
    }

    #[test]
    fn pool_addresses_are_evictable_and_inventory_addresses_are_not() {
        let inv = crate::monitor::testing::inventory(&[], &["10.0.0.0/8"], &[("ns/web", "10.0.0.5")], &[]);
        let mut d = Detector::new(DetectConfig { max_tracked_ips: 64, ..DetectConfig::default() });
        d.observe(&claim(0x0a00_0005, 1, 1), &inv, &mut NoSink);
        // A flood of squatters on pool addresses, many more than the table holds.
        for i in 0..1000u32 {
            d.observe(&claim(0x0a10_0000 + i, 100 + u64::from(i), 10 + u64::from(i)), &inv, &mut NoSink);
        }
        assert!(d.tracked_ips() <= 64);
        // The newest pool address has history (older ones made room), the service address kept its.
        assert!(d.history("10.16.3.231".parse().unwrap()).is_some());
        assert!(d.history("10.0.0.5".parse().unwrap()).is_some());
        assert!(d.stats().ips_evicted > 900);
    }

    #[test]
    fn a_table_full_of_inventory_addresses_turns_new_ones_away_and_counts_them() {
        let svcs: Vec<(String, String)> =
            (1..=20).map(|i| (format!("ns/web{i}"), format!("10.0.0.{i}"))).collect();
        let svcs: Vec<(&str, &str)> = svcs.iter().map(|(n, i)| (n.as_str(), i.as_str())).collect();
        let inv = crate::monitor::testing::inventory(&[], &["10.0.1.0/24"], &svcs, &[]);
        let mut d = Detector::new(DetectConfig { max_tracked_ips: 16, ..DetectConfig::default() });
        for i in 1..=20u32 {
            d.observe(&claim(0x0a00_0000 + i, u64::from(i), u64::from(i)), &inv, &mut NoSink);
        }
        assert_eq!(d.tracked_ips(), 16);
        assert!(d.pinned_full, "the scan found nothing to evict and remembers it");
        let before = d.stats().ips_evicted;
        for i in 0..100u32 {
            d.observe(&claim(0x0a00_0100 + i, 1000 + u64::from(i), 100 + u64::from(i)), &inv, &mut NoSink);
        }
        assert_eq!(d.tracked_ips(), 16);
        assert_eq!(d.stats().ips_evicted, before + 100);
        // The next sweep looks again (the inventory may have changed by then).
        d.expire(Timestamp(2_000_000_000), &mut NoSink);
        assert!(!d.pinned_full);
        assert!(d.history("10.0.0.1".parse().unwrap()).is_some());
    }
}
