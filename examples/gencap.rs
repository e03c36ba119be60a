//! Generates large, deterministic ARP/ND captures for benchmarks.
//!
//! ```text
//! cargo run --release --example gencap -- <realistic|flood> OUT.pcap [--frames N] [--seed S]
//! ```
//!
//! - `realistic`: a 192.168.1.0/24 LAN of 200 hosts and a gateway. About half the frames are
//!   replies to the requests before them; the rest are requests, a few % gratuitous ARPs, ~1 %
//!   RFC 5227 probes and some IPv6 neighbour discovery. Ten IPv4 addresses are answered by two or
//!   three MACs throughout the capture (the conflicts a run should report). ~1 ms per frame.
//! - `flood`: every frame a gratuitous ARP or a reply from an IPv4 address and a MAC never seen
//!   before, ~10 µs apart: the worst case for the detector's tables.
//!
//! Frames stream to a classic pcap file (Ethernet, microseconds); nothing is held in memory, so
//! any frame count works. The same mode, count and seed always give the same file.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;

use l2watch::frame::{self, ArpSpec, NdSpec};
use l2watch::mac::Mac;

const USAGE: &str = "usage: gencap <realistic|flood> OUT.pcap [--frames N] [--seed S]

  realistic    200-host LAN with ten conflicted IPv4 addresses, ~1 ms per frame
  flood        every frame from a new IPv4 address and a new MAC, ~10 us per frame
  --frames N   number of frames (default 1000000)
  --seed S     PRNG seed (default 1)";

const DEFAULT_FRAMES: u64 = 1_000_000;
/// Where every capture starts: 2023-11-14T22:13:20Z.
const START_NANOS: u64 = 1_700_000_000 * 1_000_000_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Realistic,
    Flood,
}

struct Args {
    mode: Mode,
    out: String,
    frames: u64,
    seed: u64,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut mode = None;
    let mut out = None;
    let mut frames = DEFAULT_FRAMES;
    let mut seed = 1;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--frames" | "--seed" => {
                let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
                let n: u64 =
                    value.replace('_', "").parse().map_err(|_| format!("{arg}: not a number: {value:?}"))?;
                if arg == "--frames" {
                    frames = n;
                } else {
                    seed = n;
                }
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ if mode.is_none() => {
                mode = Some(match arg.as_str() {
                    "realistic" => Mode::Realistic,
                    "flood" => Mode::Flood,
                    other => return Err(format!("unknown mode {other:?}")),
                });
            }
            _ if out.is_none() => out = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    Ok(Args { mode: mode.ok_or("missing mode")?, out: out.ok_or("missing output file")?, frames, seed })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("gencap: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gencap: {}: {e}", args.out);
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> io::Result<()> {
    let mut out = PcapOut::create(&args.out)?;
    let mut rng = SplitMix64::new(args.seed);
    let summary = match args.mode {
        Mode::Realistic => realistic(&mut out, &mut rng, args.frames)?,
        Mode::Flood => flood(&mut out, &mut rng, args.frames)?,
    };
    let bytes = out.finish()?;
    eprintln!(
        "gencap: wrote {} frames, {bytes} bytes, {:.3} s of capture time to {}",
        out.frames,
        out.last_nanos.saturating_sub(START_NANOS) as f64 / 1e9,
        args.out
    );
    eprint!("{summary}");
    Ok(())
}

/// splitmix64: tiny, fast, and every seed (even 0) gives a good stream.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`); the multiply-shift bias is far below anything a benchmark sees.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// A unicast, locally administered MAC from 46 bits.
fn mac_from_bits(bits: u64) -> Mac {
    let b = bits.to_be_bytes();
    // The top 6 of the 46 bits go above the two flag bits of the first octet.
    Mac([((bits >> 40) as u8) << 2 | 0x02, b[3], b[4], b[5], b[6], b[7]])
}

/// Classic pcap writer that streams records through a `BufWriter`.
struct PcapOut {
    w: BufWriter<File>,
    buf: [u8; frame::MAX_FRAME],
    frames: u64,
    bytes: u64,
    last_nanos: u64,
}

impl PcapOut {
    fn create(path: &str) -> io::Result<Self> {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
        w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?; // microsecond resolution
        w.write_all(&2u16.to_le_bytes())?;
        w.write_all(&4u16.to_le_bytes())?;
        w.write_all(&0i32.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        w.write_all(&65_535u32.to_le_bytes())?;
        w.write_all(&1u32.to_le_bytes())?; // LINKTYPE_ETHERNET
        Ok(PcapOut { w, buf: [0; frame::MAX_FRAME], frames: 0, bytes: 24, last_nanos: START_NANOS })
    }

    fn record(&mut self, nanos: u64, len: usize) -> io::Result<()> {
        let mut head = [0u8; 16];
        head[0..4].copy_from_slice(&((nanos / 1_000_000_000) as u32).to_le_bytes());
        head[4..8].copy_from_slice(&((nanos % 1_000_000_000 / 1_000) as u32).to_le_bytes());
        head[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        head[12..16].copy_from_slice(&(len as u32).to_le_bytes());
        self.w.write_all(&head)?;
        self.w.write_all(&self.buf[..len])?;
        self.frames += 1;
        self.bytes += 16 + len as u64;
        self.last_nanos = nanos;
        Ok(())
    }

    fn arp(&mut self, nanos: u64, spec: &ArpSpec) -> io::Result<()> {
        let len = frame::write_arp(&mut self.buf, spec).expect("MAX_FRAME fits every ARP frame");
        self.record(nanos, len)
    }

    fn nd(&mut self, nanos: u64, spec: &NdSpec) -> io::Result<()> {
        let len = frame::write_nd(&mut self.buf, spec).expect("MAX_FRAME fits every ND frame");
        self.record(nanos, len)
    }

    fn finish(&mut self) -> io::Result<u64> {
        self.w.flush()?;
        Ok(self.bytes)
    }
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

fn realistic(out: &mut PcapOut, rng: &mut SplitMix64, frames: u64) -> io::Result<String> {
    let mut macs: Vec<Mac> = Vec::new();
    let mut fresh_mac = |rng: &mut SplitMix64| loop {
        let m = mac_from_bits(rng.next() >> 18);
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
                    out.arp(now, &ArpSpec::request(a_mac, a.ip, ip))?;
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
                out.arp(now, &req)?;
                written += 1;
                if written < frames {
                    now += answer_gap(rng);
                    out.arp(now, &ArpSpec::reply(t.ipv4_mac(rng), t.ip, a_mac, a.ip))?;
                    written += 1;
                }
            }
            800..850 => {
                out.arp(now, &ArpSpec::gratuitous(a.ipv4_mac(rng), a.ip))?;
                written += 1;
            }
            850..870 => {
                // A host re-checking its own address after a link flap.
                out.arp(now, &ArpSpec::probe(a.macs[0], a.ip))?;
                written += 1;
            }
            870..980 => {
                let t = &hosts[pick_other(rng, asker)];
                let (src, target) =
                    if rng.chance(500) { (a.link_local, t.link_local) } else { (a.global, t.global) };
                out.nd(now, &NdSpec::solicit(a.macs[0], src, target))?;
                written += 1;
                if written < frames {
                    now += answer_gap(rng);
                    out.nd(now, &NdSpec::advertise(t.macs[0], target, a.macs[0], src))?;
                    written += 1;
                }
            }
            980..990 => {
                let target = if rng.chance(500) { a.link_local } else { a.global };
                out.nd(now, &NdSpec::dad(a.macs[0], target))?;
                written += 1;
            }
            _ => {
                out.nd(now, &NdSpec::unsolicited(a.macs[0], a.global))?;
                written += 1;
            }
        }
    }

    let mut summary = format!("gencap: {HOSTS} hosts and a gateway; conflicted IPv4 addresses:\n");
    for h in &hosts[..CONFLICTS] {
        let macs: Vec<String> = h.macs.iter().map(Mac::to_string).collect();
        summary += &format!("  {:<15} {}\n", h.ip, macs.join(" "));
    }
    Ok(summary)
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

fn flood(out: &mut PcapOut, rng: &mut SplitMix64, frames: u64) -> io::Result<String> {
    let ip_key = rng.next();
    let mac_key = rng.next();
    // Replies answer one router, as if it had just asked for everybody.
    let router_mac = mac_from_bits(rng.next() >> 18);
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
            out.arp(now, &ArpSpec::gratuitous(mac, ip))?;
        } else {
            out.arp(now, &ArpSpec::reply(mac, ip, router_mac, router_ip))?;
        }
    }
    Ok(format!(
        "gencap: flood of {frames} distinct IPv4 addresses and MACs (replies to {router_ip} at {router_mac})\n"
    ))
}
