//! `l2watch scan`: a one-shot RFC 5227 probe sweep of address ranges, to see which addresses are free
//! before they go into a MetalLB pool, and who uses the others.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::capture::{Readiness, Ring, wait};
use crate::inventory::{Inventory, Owner};
use crate::wire::decode::{self, Decoded, LinkType};
use crate::wire::frame::{ArpSpec, NdSpec, write_arp, write_nd};
use crate::wire::iprange::{IpKey, IpRange};
use crate::wire::mac::Mac;
use crate::wire::observation::FrameKind;

/// Most addresses one scan probes.
pub const MAX_ADDRESSES: u128 = 65_536;

/// How a sweep runs.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Probes per address (RFC 5227 sends 3).
    pub rounds: u32,
    /// Probes per second over all addresses and interfaces.
    pub rate: u32,
    /// How long to wait for replies after the last probe.
    pub wait: Duration,
}

/// Who a MAC is, as far as this host and the config know.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Who {
    /// One of this host's interfaces.
    ThisHost,
    /// A cluster node from the config.
    Node(String),
    /// A known host from the config.
    Host(String),
    /// On the allow-list (with its note).
    Allowed(String),
    /// Nobody l2watch knows.
    Unknown,
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::ThisHost => f.write_str("this host"),
            Who::Node(n) => write!(f, "node {n}"),
            Who::Host(n) => write!(f, "host {n}"),
            Who::Allowed(note) if note.is_empty() => f.write_str("allow-listed"),
            Who::Allowed(note) => write!(f, "allow-listed ({note})"),
            Who::Unknown => f.write_str("unknown"),
        }
    }
}

/// One MAC that answered for an address.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// The MAC.
    pub mac: String,
    /// Who it is.
    pub who: Who,
    /// Its vendor from the IEEE registries, when known.
    pub vendor: Option<String>,
    /// Replies received from it.
    pub replies: u32,
    /// Time from the address's first probe to this MAC's first claim after it, in milliseconds; null
    /// when it only claimed the address before it was probed, and for this host's own addresses.
    pub rtt_ms: Option<f64>,
}

/// One address that answered.
#[derive(Debug, Clone, Serialize)]
pub struct Used {
    /// The address.
    pub ip: String,
    /// Every MAC that answered.
    pub answers: Vec<Answer>,
    /// Answered by more than one device (a node answering from several MACs counts once).
    pub conflict: bool,
}

/// The scan result (`--format json`, schema `l2watch.scan/v1`).
#[derive(Debug, Serialize)]
pub struct ScanReport {
    /// Always `l2watch.scan/v1`.
    pub schema: &'static str,
    /// The ranges as given.
    pub ranges: Vec<String>,
    /// Interfaces probed on.
    pub interfaces: Vec<String>,
    /// Addresses probed.
    pub probed: u64,
    /// Addresses nobody answered for.
    pub free: u64,
    /// Addresses that answered, in address order.
    pub used: Vec<Used>,
    /// Addresses answered by more than one device.
    pub conflicts: u64,
}

/// Expands ranges into addresses, refusing sweeps that are too large to be meant.
pub fn addresses(ranges: &[IpRange]) -> Result<Vec<IpAddr>, String> {
    // Saturating: IPv6 ranges can hold more than 2^128 addresses together, and a wrapped sum would
    // pass the bound.
    let total = ranges.iter().fold(0u128, |n, r| n.saturating_add(r.len()));
    if total > MAX_ADDRESSES {
        return Err(format!(
            "{total} addresses is too many for one scan (at most {MAX_ADDRESSES}): split the range"
        ));
    }
    let mut out: Vec<IpAddr> = Vec::with_capacity(total as usize);
    for r in ranges {
        let mut k = r.first();
        for _ in 0..r.len() {
            out.push(k.to_ip());
            k = IpKey(k.0.wrapping_add(1));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Who `mac` is.
pub fn who(inv: &Inventory, own: &[Mac], mac: Mac, ip: IpAddr) -> Who {
    if own.contains(&mac) {
        return Who::ThisHost;
    }
    match inv.owner(mac) {
        Some(o @ Owner::Node(_)) => return Who::Node(inv.owner_name(o).to_string()),
        Some(o @ Owner::Host(_)) => return Who::Host(inv.owner_name(o).to_string()),
        None => {}
    }
    let key = IpKey::from(ip);
    match inv.allowed_by(mac, key) {
        Some(a) => Who::Allowed(a.note.clone()),
        None => Who::Unknown,
    }
}

/// Replies gathered so far: per address, per MAC, (replies, time from the address's first probe).
struct Replies {
    first_probe: BTreeMap<IpAddr, Option<Instant>>,
    /// When this scan last probed each address, and when another prober on this host did (the l2watch
    /// daemon, say: its probes leave from the same MAC, so their answers look like ours).
    last_probe: BTreeMap<IpAddr, (Option<Instant>, Option<Instant>)>,
    seen: BTreeMap<IpAddr, BTreeMap<Mac, (u32, Option<Duration>)>>,
    ready: [Readiness; crate::capture::open::MAX_INTERFACES],
}

impl Replies {
    /// Waits up to `timeout` for frames and records every claim of a scanned address.
    fn collect(
        &mut self,
        rings: &mut [(Ring, Mac)],
        timeout: Duration,
    ) -> Result<(), crate::capture::CaptureError> {
        let refs: Vec<&Ring> = rings.iter().map(|(r, _)| r).collect();
        wait(&refs, timeout, &mut self.ready)?;
        for (i, (ring, _)) in rings.iter_mut().enumerate() {
            if let Some(e) = self.ready[i].error.take() {
                return Err(e);
            }
            if !self.ready[i].readable {
                continue;
            }
            let (first_probe, last_probe, seen) = (&self.first_probe, &mut self.last_probe, &mut self.seen);
            ring.drain(|meta, data| {
                let Decoded::Frame(obs) = decode::decode(LinkType::Ethernet, data, meta) else { return };
                if obs.outgoing {
                    // A probe going out that this scan did not send (the ring does not show a socket
                    // its own frames).
                    if obs.kind.is_probe()
                        && let Some((_, other)) = last_probe.get_mut(&obs.target_ip)
                    {
                        *other = Some(Instant::now());
                    }
                    return;
                }
                if !obs.kind.claims() {
                    return;
                }
                let Some(sent) = first_probe.get(&obs.sender_ip) else { return };
                // An answer to a probe (a reply to 0.0.0.0, an advertisement) answers the latest probe of the address:
                // when that was another prober's, the answer is not this scan's to count.
                let answers_probe = (obs.kind == FrameKind::Reply && obs.target_ip.is_unspecified())
                    || obs.kind == FrameKind::NdNa;
                if answers_probe
                    && let Some((ours, Some(other))) = last_probe.get(&obs.sender_ip)
                    && ours.is_none_or(|ours| ours < *other)
                {
                    return;
                }
                let e = seen.entry(obs.sender_ip).or_default().entry(obs.sender_mac).or_insert((0, None));
                e.0 += 1;
                // A claim heard before the address was probed (ordinary ARP) has no RTT; the first
                // one after the probe does.
                if e.1.is_none() {
                    e.1 = sent.map(|t| t.elapsed());
                }
            });
        }
        Ok(())
    }
}

/// Sends one probe, waiting out a full transmit queue (the ring's own send never blocks).
fn send(ring: &Ring, frame: &[u8]) -> Result<(), crate::capture::CaptureError> {
    let mut tries = 0;
    loop {
        match ring.send(frame) {
            Err(crate::capture::CaptureError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::WouldBlock && tries < 100 =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            other => return other,
        }
    }
}

/// Probes every address `rounds` times over `rings` (with their interface MACs) and collects replies.
/// Addresses of this host (`local`) are reported as used by it: a host never answers its own probes.
#[allow(clippy::too_many_arguments)]
pub fn sweep(
    rings: &mut [(Ring, Mac)],
    ips: &[IpAddr],
    opts: &ScanOptions,
    inv: &Inventory,
    own: &[Mac],
    vendors: &crate::wire::vendor::Vendors,
    local: &[IpAddr],
) -> Result<ScanReport, crate::capture::CaptureError> {
    let mut replies = Replies {
        first_probe: ips.iter().map(|ip| (*ip, None)).collect(),
        last_probe: ips.iter().map(|ip| (*ip, (None, None))).collect(),
        seen: BTreeMap::new(),
        ready: Default::default(),
    };
    // `rate` counts frames, and each address is probed on every interface.
    let per_second = f64::from(opts.rate.max(1)) / rings.len().max(1) as f64;
    let gap = Duration::from_secs_f64(1.0 / per_second);
    let mut buf = [0u8; 128];
    let mut next = Instant::now();
    for _ in 0..opts.rounds.max(1) {
        for ip in ips {
            for (ring, mac) in rings.iter() {
                let n = match ip {
                    IpAddr::V4(v4) => write_arp(&mut buf, &ArpSpec::probe(*mac, *v4)),
                    IpAddr::V6(v6) => write_nd(&mut buf, &NdSpec::dad(*mac, *v6)),
                };
                if let Some(n) = n {
                    send(ring, &buf[..n])?;
                }
            }
            let now = Instant::now();
            if let Some(t) = replies.first_probe.get_mut(ip) {
                t.get_or_insert(now);
            }
            replies.last_probe.entry(*ip).or_default().0 = Some(now);
            next += gap;
            replies.collect(rings, next.saturating_duration_since(Instant::now()))?;
        }
    }
    let end = Instant::now() + opts.wait;
    while Instant::now() < end {
        replies
            .collect(rings, end.saturating_duration_since(Instant::now()).min(Duration::from_millis(50)))?;
    }
    // This host never answers its own probes, so its own addresses would look free. Say they are
    // this host's, unless another device answered: an address this host merely lists (kube-proxy's
    // IPVS dummy holds every Service IP) must not turn the real owner's answer into a conflict.
    let mut seen = replies.seen;
    for ip in ips.iter().filter(|ip| local.contains(ip)) {
        let macs = seen.entry(*ip).or_default();
        if macs.is_empty() {
            for (_, mac) in rings.iter() {
                macs.insert(*mac, (0, None));
            }
        }
    }
    let mut used = Vec::new();
    let mut conflicts = 0;
    for (ip, macs) in &seen {
        let answers: Vec<Answer> = macs
            .iter()
            .map(|(mac, (n, t))| Answer {
                mac: mac.to_string(),
                who: who(inv, own, *mac, *ip),
                vendor: vendors.lookup(*mac).map(str::to_owned),
                replies: *n,
                rtt_ms: t.map(|t| t.as_secs_f64() * 1000.0),
            })
            .collect();
        let mut devices: Vec<Who> = Vec::new();
        for a in &answers {
            // A node or this host answering from several MACs is one device.
            let id = match &a.who {
                Who::Unknown | Who::Allowed(_) => Who::Allowed(a.mac.clone()),
                other => other.clone(),
            };
            if !devices.contains(&id) {
                devices.push(id);
            }
        }
        let conflict = devices.len() > 1;
        conflicts += u64::from(conflict);
        used.push(Used { ip: ip.to_string(), answers, conflict });
    }
    Ok(ScanReport {
        schema: "l2watch.scan/v1",
        ranges: Vec::new(),
        interfaces: rings.iter().map(|(r, _)| r.name().to_owned()).collect(),
        probed: ips.len() as u64,
        free: (ips.len() - used.len()) as u64,
        used,
        conflicts,
    })
}

/// The report for people.
pub fn to_text(r: &ScanReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Scanned {} addresses on {}: {} free, {} in use, {} answered by more than one device.",
        r.probed,
        r.interfaces.join(", "),
        r.free,
        r.used.len(),
        r.conflicts
    );
    if r.used.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\n{:<40} {:<17} {:>7} {:>9}  WHO", "IP", "MAC", "REPLIES", "RTT(ms)");
    for u in &r.used {
        for (i, a) in u.answers.iter().enumerate() {
            let ip = if i == 0 { u.ip.as_str() } else { "" };
            let vendor = a.vendor.as_deref().map(|v| format!(" [{v}]")).unwrap_or_default();
            let rtt = a.rtt_ms.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
            let _ = writeln!(out, "{ip:<40} {:<17} {:>7} {rtt:>9}  {}{vendor}", a.mac, a.replies, a.who);
        }
        if u.conflict {
            let _ = writeln!(out, "{:<40} ^ CONFLICT: answered by more than one device", "");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found while fixing the same sum in the inventory (fuzzing the config): two IPv6 halves make
    /// 2^128 addresses, which wrapped to 0 in a release build and passed the bound, so the sweep
    /// expanded 2^127 addresses until memory ran out (a panic with overflow checks).
    #[test]
    fn ranges_beyond_u128_are_too_many() {
        let halves: Vec<IpRange> = ["::/1", "8000::/1"].iter().map(|s| s.parse().unwrap()).collect();
        assert!(addresses(&halves).unwrap_err().contains("too many"));
    }

    #[test]
    fn ranges_expand_sorted_and_bounded() {
        let r: Vec<IpRange> =
            ["10.0.0.6-10.0.0.7", "10.0.0.4/31", "10.0.0.5"].iter().map(|s| s.parse().unwrap()).collect();
        let ips: Vec<String> = addresses(&r).unwrap().iter().map(|i| i.to_string()).collect();
        assert_eq!(ips, ["10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7"]);
        let big: Vec<IpRange> = vec!["10.0.0.0/15".parse().unwrap()];
        assert!(addresses(&big).unwrap_err().contains("too many"));
    }

    #[test]
    fn who_names_owner_host_and_allow_list() {
        let cfg = crate::config::Config::parse(
            std::path::Path::new("t"),
            "inventory:\n  nodes: [{name: n1, macs: ['02:00:00:00:00:01']}]\n  hosts: [{name: gw, macs: ['02:00:00:00:00:02']}]\nallow: [{mac: '00:00:5e:00:01:00/40', note: vrrp}]\n",
        )
        .unwrap();
        let inv = cfg.static_inventory(std::path::Path::new("t"), None).unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let own = [Mac([2, 0, 0, 0, 0, 9])];
        assert_eq!(who(&inv, &own, Mac([2, 0, 0, 0, 0, 9]), ip), Who::ThisHost);
        assert_eq!(who(&inv, &own, Mac([2, 0, 0, 0, 0, 1]), ip), Who::Node("n1".into()));
        assert_eq!(who(&inv, &own, Mac([2, 0, 0, 0, 0, 2]), ip), Who::Host("gw".into()));
        assert_eq!(who(&inv, &own, Mac([0, 0, 0x5e, 0, 1, 7]), ip), Who::Allowed("vrrp".into()));
        assert_eq!(who(&inv, &own, Mac([2, 0, 0, 0, 0, 3]), ip), Who::Unknown);
    }
}
