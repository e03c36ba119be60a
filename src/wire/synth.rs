//! Synthetic LAN traffic: the realistic and flood workloads used by the benchmarks (`cargo bench`,
//! `examples/gencap.rs`) and by load tests. Deterministic for a seed; frames are built with
//! [`crate::wire::frame`] into one reused buffer and handed to a callback, so nothing is held in memory.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::frame::{self, ArpSpec, NdSpec};
use crate::wire::mac::Mac;

/// Capture time of the first frame (ns since the epoch): 2023-11-14.
pub const START_NANOS: u64 = 1_700_000_000 * 1_000_000_000;

/// Builds frames into one buffer and hands each to a callback with its time (ns since the epoch).
pub struct Emitter<F: FnMut(u64, &[u8])> {
    buf: [u8; frame::MAX_FRAME],
    sink: F,
    /// Frames emitted.
    pub frames: u64,
    /// Time of the last frame.
    pub last_nanos: u64,
}

impl<F: FnMut(u64, &[u8])> Emitter<F> {
    /// An emitter that calls `sink(time_ns, frame)` per frame.
    pub fn new(sink: F) -> Self {
        Emitter { buf: [0; frame::MAX_FRAME], sink, frames: 0, last_nanos: START_NANOS }
    }

    fn emit(&mut self, nanos: u64, len: Option<usize>) {
        // MAX_FRAME fits every frame this module builds; a None would be a bug in frame.rs.
        let Some(len) = len else { return };
        (self.sink)(nanos, &self.buf[..len]);
        self.frames += 1;
        self.last_nanos = nanos;
    }

    /// Emits an ARP frame.
    pub fn arp(&mut self, nanos: u64, spec: &ArpSpec) {
        let len = frame::write_arp(&mut self.buf, spec);
        self.emit(nanos, len);
    }

    /// Emits a neighbour-discovery frame.
    pub fn nd(&mut self, nanos: u64, spec: &NdSpec) {
        let len = frame::write_nd(&mut self.buf, spec);
        self.emit(nanos, len);
    }
}

/// splitmix64: tiny, fast, and every seed (even 0) gives a good stream.
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`); the multiply-shift bias is far below anything a benchmark sees.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// A unicast, locally administered MAC from 46 bits.
pub fn mac_from_bits(bits: u64) -> Mac {
    let b = bits.to_be_bytes();
    // The top 6 of the 46 bits go above the two flag bits of the first octet.
    Mac([((bits >> 40) as u8) << 2 | 0x02, b[3], b[4], b[5], b[6], b[7]])
}

/// One station of the realistic LAN.
struct Host {
    ip: Ipv4Addr,
    /// `macs[0]` is the owner; any further MACs answer for the same IP (the conflict).
    macs: Vec<Mac>,
    link_local: Ipv6Addr,
    global: Ipv6Addr,
}

impl Host {
    fn new(ip: Ipv4Addr, mac: Mac) -> Self {
        let m = mac.0;
        // Modified EUI-64 (RFC 4291 appendix A), as SLAAC hosts form their addresses.
        let iid = [m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]];
        let with_prefix = |prefix: [u8; 8]| {
            let mut o = [0u8; 16];
            o[..8].copy_from_slice(&prefix);
            o[8..].copy_from_slice(&iid);
            Ipv6Addr::from(o)
        };
        Host {
            ip,
            macs: vec![mac],
            link_local: with_prefix([0xfe, 0x80, 0, 0, 0, 0, 0, 0]),
            global: with_prefix([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0]),
        }
    }

    /// The MAC this host's next IPv4 frame comes from. A conflicted address is mostly its owner's,
    /// but the other stations keep speaking up, so the conflict shows all through the capture.
    fn ipv4_mac(&self, rng: &mut SplitMix64) -> Mac {
        if self.macs.len() > 1 && rng.chance(400) {
            self.macs[1 + rng.below(self.macs.len() as u64 - 1) as usize]
        } else {
            self.macs[0]
        }
    }
}

const HOSTS: usize = 200;
const CONFLICTS: usize = 10;

/// A realistic LAN: ~200 hosts and a gateway, about half replies, requests (some unicast, some
/// unanswered), a few % gratuitous ARP and probes, IPv6 ND, and ten IPv4 addresses answered by two or
/// three MACs throughout. About 1 ms of capture time per frame. Returns a summary naming the conflicts.
pub fn realistic(out: &mut Emitter<impl FnMut(u64, &[u8])>, rng: &mut SplitMix64, frames: u64) -> String {
    let mut macs: Vec<Mac> = Vec::new();
    let mut fresh_mac = |rng: &mut SplitMix64| loop {
        let m = mac_from_bits(rng.next_u64() >> 18);
        if !macs.contains(&m) {
            macs.push(m);
            return m;
        }
    };

    // Hosts take 200 of 192.168.1.2..=254 in a seed-dependent order; the rest stay unused and
    // draw requests nobody answers, like the stale entries and scans of a real LAN.
    let mut last_octets: Vec<u8> = (2..=254).collect();
    for i in (1..last_octets.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        last_octets.swap(i, j);
    }
    let (used, unused) = last_octets.split_at(HOSTS);
    let gateway = Host::new(Ipv4Addr::new(192, 168, 1, 1), fresh_mac(rng));
    let mut hosts: Vec<Host> =
        used.iter().map(|&o| Host::new(Ipv4Addr::new(192, 168, 1, o), fresh_mac(rng))).collect();
    hosts.push(gateway);
    let gateway_index = hosts.len() - 1;
    // The hosts are in random order already, so the first ten are as good as any ten.
    for host in &mut hosts[..CONFLICTS] {
        for _ in 0..1 + rng.below(2) {
            host.macs.push(fresh_mac(rng));
        }
    }

    let pick_other = |rng: &mut SplitMix64, not: usize| loop {
        let i = rng.below(hosts.len() as u64) as usize;
        if i != not {
            return i;
        }
    };

    let mut now = START_NANOS;
    // Gap before a frame that starts an exchange, and before the answer within one: chosen so that
    // the average is close to 1 ms per frame.
    let gap = |rng: &mut SplitMix64| 1_000 * (1 + rng.below(3_200));
    let answer_gap = |rng: &mut SplitMix64| 1_000 * (50 + rng.below(500));

    let mut written = 0;
    while written < frames {
        now += gap(rng);
        let roll = rng.below(1000);
        // The gateway resolves more than anyone: it forwards for the whole LAN.
        let asker = if rng.chance(300) { gateway_index } else { rng.below(hosts.len() as u64) as usize };
        let a = &hosts[asker];
        match roll {
            0..800 => {
                let a_mac = a.ipv4_mac(rng);
                let unanswered = rng.chance(30);
                if unanswered {
                    let ip = Ipv4Addr::new(192, 168, 1, unused[rng.below(unused.len() as u64) as usize]);
                    out.arp(now, &ArpSpec::request(a_mac, a.ip, ip));
                    written += 1;
                    continue;
                }
                let t = &hosts[pick_other(rng, asker)];
                // Linux re-validates cached entries with unicast requests.
                let req = if rng.chance(300) {
                    ArpSpec::request(a_mac, a.ip, t.ip).with_eth_dst(t.macs[0])
                } else {
                    ArpSpec::request(a_mac, a.ip, t.ip)
                };
                out.arp(now, &req);
                written += 1;
                if written < frames {
                    now += answer_gap(rng);
                    out.arp(now, &ArpSpec::reply(t.ipv4_mac(rng), t.ip, a_mac, a.ip));
                    written += 1;
                }
            }
            800..850 => {
                out.arp(now, &ArpSpec::gratuitous(a.ipv4_mac(rng), a.ip));
                written += 1;
            }
            850..870 => {
                // A host re-checking its own address after a link flap.
                out.arp(now, &ArpSpec::probe(a.macs[0], a.ip));
                written += 1;
            }
            870..980 => {
                let t = &hosts[pick_other(rng, asker)];
                let (src, target) =
                    if rng.chance(500) { (a.link_local, t.link_local) } else { (a.global, t.global) };
                out.nd(now, &NdSpec::solicit(a.macs[0], src, target));
                written += 1;
                if written < frames {
                    now += answer_gap(rng);
                    out.nd(now, &NdSpec::advertise(t.macs[0], target, a.macs[0], src));
                    written += 1;
                }
            }
            980..990 => {
                let target = if rng.chance(500) { a.link_local } else { a.global };
                out.nd(now, &NdSpec::dad(a.macs[0], target));
                written += 1;
            }
            _ => {
                out.nd(now, &NdSpec::unsolicited(a.macs[0], a.global));
                written += 1;
            }
        }
    }

    let mut summary = format!("gencap: {HOSTS} hosts and a gateway; conflicted IPv4 addresses:\n");
    for h in &hosts[..CONFLICTS] {
        let macs: Vec<String> = h.macs.iter().map(Mac::to_string).collect();
        summary += &format!("  {:<15} {}\n", h.ip, macs.join(" "));
    }
    summary
}

/// Bijective mixing of the low `bits` bits (odd multiplies and xor-shifts are invertible modulo
/// 2^bits), so distinct counters give distinct outputs that still look random.
fn permute(mut x: u64, bits: u32, key: u64) -> u64 {
    let mask = (1u64 << bits) - 1;
    let shift = bits / 2;
    x = x.wrapping_add(key) & mask;
    x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15) & mask;
    x ^= x >> shift;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9) & mask;
    x ^= x >> shift;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb) & mask;
    x ^ (x >> shift)
}

/// A flood: every frame a gratuitous ARP or reply from a new IPv4 address and a new MAC, 5-15 µs apart.
pub fn flood(out: &mut Emitter<impl FnMut(u64, &[u8])>, rng: &mut SplitMix64, frames: u64) -> String {
    let ip_key = rng.next_u64();
    let mac_key = rng.next_u64();
    // Replies answer one router, as if it had just asked for everybody.
    let router_mac = mac_from_bits(rng.next_u64() >> 18);
    let router_ip = Ipv4Addr::new(10, 255, 255, 254);

    let mut ip_counter = 0u64;
    let mut next_ip = || loop {
        let ip = Ipv4Addr::from(permute(ip_counter, 32, ip_key) as u32);
        ip_counter += 1;
        // Skip 0/8 (0.0.0.0 would make a probe), loopback, multicast and above, and the router.
        let first = ip.octets()[0];
        if first != 0 && first != 127 && first < 224 && ip != router_ip {
            return ip;
        }
    };

    let mut now = START_NANOS;
    for i in 0..frames {
        now += 1_000 * (5 + rng.below(11));
        let mac = mac_from_bits(permute(i, 46, mac_key));
        let ip = next_ip();
        if rng.chance(500) {
            out.arp(now, &ArpSpec::gratuitous(mac, ip));
        } else {
            out.arp(now, &ArpSpec::reply(mac, ip, router_mac, router_ip));
        }
    }
    format!(
        "gencap: flood of {frames} distinct IPv4 addresses and MACs (replies to {router_ip} at {router_mac})\n"
    )
}
