//! pnet_packet against l2watch's own code on the same frames: parsing (pnet's zero-copy views, with
//! the checks l2watch needs, against `wire::decode::decode`), building probe frames (`wire::frame`,
//! which writes through pnet's mutable views, against the writers it had before, which wrote the
//! bytes by hand), and verifying an ICMPv6 checksum (l2watch's one against pnet's).
//!
//! `cargo bench --bench pnet` prints time per batch and throughput in frames/s. Each pnet function
//! here is checked against l2watch's result before it is timed.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use l2watch::wire::decode::{Decoded, FrameMeta, LinkType, decode, icmpv6_checksum};
use l2watch::wire::frame::{ArpSpec, MAX_FRAME, NdSpec, write_arp, write_nd};
use l2watch::wire::mac::Mac;
use l2watch::wire::observation::FrameKind;
use l2watch::wire::synth::{self, Emitter, SplitMix64};
use pnet_packet::Packet;
use pnet_packet::arp::{ArpHardwareType, ArpHardwareTypes, ArpOperation, ArpPacket};
use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
use pnet_packet::icmpv6::ndp::{NdpOptionType, NdpOptionTypes, NeighborAdvertPacket, NeighborSolicitPacket};
use pnet_packet::icmpv6::{self, Icmpv6Code, Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::vlan::VlanPacket;

/// What both parsers must agree on: kind, sender MAC and IP, target IP, VLAN IDs.
type Seen = (FrameKind, Mac, IpAddr, IpAddr, Vec<u16>);

fn ours(frame: &[u8]) -> Option<Seen> {
    match decode(LinkType::Ethernet, frame, &FrameMeta::default()) {
        Decoded::Frame(o) => {
            Some((o.kind, o.sender_mac, o.sender_ip, o.target_ip, o.vlans.as_slice().to_vec()))
        }
        _ => None,
    }
}

/// A frame parsed with pnet's views, with the checks `decode` makes (pnet checks no field values,
/// only that each view's fixed part fits).
#[inline]
fn pnet_parse(frame: &[u8], vlans: &mut [u16; 4]) -> Option<(FrameKind, Mac, IpAddr, IpAddr, usize)> {
    let eth = EthernetPacket::new(frame)?;
    let mut ethertype = eth.get_ethertype();
    let mut rest = &frame[EthernetPacket::minimum_packet_size()..];
    let mut tags = 0;
    while matches!(ethertype, EtherTypes::Vlan | EtherTypes::PBridge | EtherTypes::QinQ) {
        let tag = VlanPacket::new(rest)?;
        *vlans.get_mut(tags)? = tag.get_vlan_identifier();
        tags += 1;
        ethertype = tag.get_ethertype();
        rest = &rest[VlanPacket::minimum_packet_size()..];
    }
    let src = Mac(eth.get_source().octets());
    let (kind, mac, ip, target) = match ethertype {
        EtherTypes::Arp => pnet_arp(rest)?,
        EtherTypes::Ipv6 => pnet_nd(rest, src)?,
        _ => return None,
    };
    Some((kind, mac, ip, target, tags))
}

#[inline]
fn pnet_arp(b: &[u8]) -> Option<(FrameKind, Mac, IpAddr, IpAddr)> {
    let arp = ArpPacket::new(b)?;
    // ArpPacket reads any lengths as Ethernet/IPv4: the header must be checked by hand.
    let htype = arp.get_hardware_type();
    if (htype != ArpHardwareTypes::Ethernet && htype != ArpHardwareType(6))
        || arp.get_protocol_type() != EtherTypes::Ipv4
        || arp.get_hw_addr_len() != 6
        || arp.get_proto_addr_len() != 4
    {
        return None;
    }
    let op = arp.get_operation();
    if op != ArpOperation(1) && op != ArpOperation(2) {
        return None;
    }
    let sha = Mac(arp.get_sender_hw_addr().octets());
    if sha.is_zero() || sha.is_multicast() {
        return None;
    }
    let (spa, tpa) = (arp.get_sender_proto_addr(), arp.get_target_proto_addr());
    let kind = if op == ArpOperation(1) && spa.is_unspecified() {
        FrameKind::Probe
    } else if spa == tpa {
        FrameKind::Gratuitous
    } else if op == ArpOperation(1) {
        FrameKind::Request
    } else {
        FrameKind::Reply
    };
    if kind != FrameKind::Probe && (spa.is_unspecified() || spa.is_multicast() || spa.is_broadcast()) {
        return None;
    }
    Some((kind, sha, IpAddr::V4(spa), IpAddr::V4(tpa)))
}

#[inline]
fn pnet_nd(b: &[u8], eth_src: Mac) -> Option<(FrameKind, Mac, IpAddr, IpAddr)> {
    let ip = Ipv6Packet::new(b)?;
    if ip.get_version() != 6
        || ip.get_next_header() != IpNextHeaderProtocols::Icmpv6
        || ip.get_hop_limit() != 255
    {
        return None;
    }
    let body = ip.payload();
    let icmp = Icmpv6Packet::new(body)?;
    let ns = match icmp.get_icmpv6_type() {
        Icmpv6Types::NeighborSolicit => true,
        Icmpv6Types::NeighborAdvert => false,
        _ => return None,
    };
    let (source, dest) = (ip.get_source(), ip.get_destination());
    if body.len() < 24 || icmp.get_icmpv6_code() != Icmpv6Code(0) {
        return None;
    }
    if icmpv6::checksum(&icmp, &source, &dest) != icmp.get_checksum() {
        return None;
    }
    let (target, flags, wanted) = if ns {
        let p = NeighborSolicitPacket::new(body)?;
        (p.get_target_addr(), 0, NdpOptionTypes::SourceLLAddr)
    } else {
        let p = NeighborAdvertPacket::new(body)?;
        (p.get_target_addr(), p.get_flags(), NdpOptionTypes::TargetLLAddr)
    };
    if target.is_multicast() || target.is_unspecified() {
        return None;
    }
    let lla = link_layer_option(&body[24..], wanted)?;
    let (kind, mac, ip_addr, target_ip) = if ns && source.is_unspecified() {
        if !dest.octets().starts_with(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff]) || lla.is_some() {
            return None;
        }
        (FrameKind::NdDad, eth_src, Ipv6Addr::UNSPECIFIED, target)
    } else if ns {
        if source.is_multicast() {
            return None;
        }
        (FrameKind::NdNs, lla.unwrap_or(eth_src), source, target)
    } else {
        if dest.is_multicast() && flags & 0x40 != 0 {
            return None;
        }
        (FrameKind::NdNa, lla.unwrap_or(eth_src), target, dest)
    };
    if mac.is_zero() || mac.is_multicast() {
        return None;
    }
    Some((kind, mac, IpAddr::V6(ip_addr), IpAddr::V6(target_ip)))
}

/// The first link-layer address option of type `wanted`, every option's length checked. Not pnet's
/// option iterator: pnet 0.35 computes an option's length as `length * 8 - 2` in `u8`, which
/// overflows for a length of 32 or more (a panic in debug builds, a wrong length in release).
#[inline]
fn link_layer_option(mut opts: &[u8], wanted: NdpOptionType) -> Option<Option<Mac>> {
    let mut found = None;
    while let [ty, units, ..] = *opts {
        let (opt, rest) = opts.split_at_checked(usize::from(units) * 8)?;
        if units == 0 {
            return None;
        }
        if ty == wanted.0 {
            let [_, _, a, b, c, d, e, f] = *opt else { return None };
            found = found.or(Some(Mac([a, b, c, d, e, f])));
        }
        opts = rest;
    }
    opts.is_empty().then_some(found)
}

/// The frame writers l2watch had before `wire::frame` used pnet_packet: every field written at its
/// offset by hand. Kept here to measure pnet's views against.
mod by_hand {
    use l2watch::wire::decode::icmpv6_checksum;
    use l2watch::wire::frame::{ArpSpec, MIN_FRAME, NdMessage, NdSpec};
    use l2watch::wire::mac::Mac;

    fn eth(buf: &mut [u8], dst: Mac, src: Mac, tags: &[u16], qinq: bool, ethertype: u16) -> Option<usize> {
        let len = 14 + 4 * tags.len();
        let head = buf.get_mut(..len)?;
        head[0..6].copy_from_slice(&dst.0);
        head[6..12].copy_from_slice(&src.0);
        for (i, (&id, tag)) in tags.iter().zip(head[12..len - 2].chunks_exact_mut(4)).enumerate() {
            let tpid: u16 = if qinq && i == 0 && tags.len() >= 2 { 0x88a8 } else { 0x8100 };
            tag[0..2].copy_from_slice(&tpid.to_be_bytes());
            tag[2..4].copy_from_slice(&(id & 0x0fff).to_be_bytes());
        }
        head[len - 2..].copy_from_slice(&ethertype.to_be_bytes());
        Some(len)
    }

    fn pad(buf: &mut [u8], len: usize, tags: usize) -> Option<usize> {
        let total = len.max(MIN_FRAME + 4 * tags);
        buf.get_mut(len..total)?.fill(0);
        Some(total)
    }

    pub fn write_arp(buf: &mut [u8], spec: &ArpSpec) -> Option<usize> {
        let tags = spec.vlans.as_slice();
        let l2 = eth(buf, spec.eth_dst, spec.eth_src, tags, spec.qinq, 0x0806)?;
        let body = buf.get_mut(l2..l2 + 28)?;
        body[0..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 0]);
        body[6..8].copy_from_slice(&spec.op.to_be_bytes());
        body[8..14].copy_from_slice(&spec.sender_mac.0);
        body[14..18].copy_from_slice(&spec.sender_ip.octets());
        body[18..24].copy_from_slice(&spec.target_mac.0);
        body[24..28].copy_from_slice(&spec.target_ip.octets());
        pad(buf, l2 + 28, tags.len())
    }

    pub fn write_nd(buf: &mut [u8], spec: &NdSpec) -> Option<usize> {
        let tags = spec.vlans.as_slice();
        let l2 = eth(buf, spec.eth_dst, spec.eth_src, tags, spec.qinq, 0x86dd)?;
        let icmp_len = 24 + if spec.link_addr.is_some() { 8 } else { 0 };
        let (ip, icmp) = buf.get_mut(l2..l2 + 40 + icmp_len)?.split_at_mut(40);
        ip[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
        ip[4..6].copy_from_slice(&(icmp_len as u16).to_be_bytes());
        ip[6..8].copy_from_slice(&[58, 255]);
        ip[8..24].copy_from_slice(&spec.src_ip.octets());
        ip[24..40].copy_from_slice(&spec.dst_ip.octets());
        let (ty, flags, option) = match spec.message {
            NdMessage::Solicitation => (135, 0, 1),
            NdMessage::Advertisement { router, solicited, override_ } => {
                (136, (u8::from(router) << 7) | (u8::from(solicited) << 6) | (u8::from(override_) << 5), 2)
            }
        };
        icmp[0..8].copy_from_slice(&[ty, 0, 0, 0, flags, 0, 0, 0]);
        icmp[8..24].copy_from_slice(&spec.target.octets());
        if let Some(mac) = spec.link_addr {
            icmp[24..26].copy_from_slice(&[option, 1]);
            icmp[26..32].copy_from_slice(&mac.0);
        }
        let sum = icmpv6_checksum(&spec.src_ip.octets(), &spec.dst_ip.octets(), icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        pad(buf, l2 + 40 + icmp_len, tags.len())
    }
}

/// Frames back to back, as a capture ring or a file buffer holds them.
struct Batch {
    bytes: Vec<u8>,
    frames: Vec<(usize, usize)>,
}

impl Batch {
    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.frames.iter().map(|&(at, len)| &self.bytes[at..at + len])
    }
}

/// 100,000 frames of `gencap realistic` (ARP with some ND, untagged).
fn realistic() -> Batch {
    let mut b = Batch { bytes: Vec::new(), frames: Vec::new() };
    let mut out = Emitter::new(|_t: u64, f: &[u8]| {
        b.frames.push((b.bytes.len(), f.len()));
        b.bytes.extend_from_slice(f);
    });
    synth::realistic(&mut out, &mut SplitMix64::new(1), 100_000);
    b
}

/// The probe and answer shapes l2watch builds, tagged and not.
fn specs() -> (Vec<ArpSpec>, Vec<NdSpec>) {
    let a = Mac([0x02, 0, 0, 0, 0, 0x0a]);
    let b = Mac([0x02, 0, 0, 0, 0, 0x0b]);
    let v4 = |x: u8| Ipv4Addr::new(192, 168, 1, x);
    let v6 = |x: u16| Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, x);
    let arp = vec![
        ArpSpec::probe(a, v4(10)),
        ArpSpec::gratuitous(a, v4(10)),
        ArpSpec::reply(b, v4(11), a, v4(10)).with_vlans(&[42]),
        ArpSpec::request(a, v4(10), v4(11)).with_vlans(&[200, 2001]).with_qinq(true),
    ];
    let nd = vec![
        NdSpec::dad(a, v6(10)),
        NdSpec::solicit(a, v6(10), v6(11)),
        NdSpec::advertise(b, v6(11), a, v6(10)).with_vlans(&[42]),
        NdSpec::unsolicited(b, v6(11)),
    ];
    (arp, nd)
}

fn parse(c: &mut Criterion) {
    let batch = realistic();
    // The parsers agree on every frame before either is timed.
    let mut vlans = [0u16; 4];
    for f in batch.iter() {
        let theirs = pnet_parse(f, &mut vlans).map(|(k, m, i, t, n)| (k, m, i, t, vlans[..n].to_vec()));
        assert_eq!(theirs, ours(f));
    }
    let (arp, nd) = specs();
    let mut buf = [0u8; MAX_FRAME];
    for s in &arp {
        let n = write_arp(&mut buf, s).unwrap();
        let theirs =
            pnet_parse(&buf[..n], &mut vlans).map(|(k, m, i, t, n)| (k, m, i, t, vlans[..n].to_vec()));
        assert_eq!(theirs, ours(&buf[..n]));
    }
    for s in &nd {
        let n = write_nd(&mut buf, s).unwrap();
        let theirs =
            pnet_parse(&buf[..n], &mut vlans).map(|(k, m, i, t, n)| (k, m, i, t, vlans[..n].to_vec()));
        assert_eq!(theirs, ours(&buf[..n]));
    }

    let mut g = c.benchmark_group("parse realistic");
    g.throughput(Throughput::Elements(batch.frames.len() as u64));
    g.bench_function("wire::decode", |bench| {
        bench.iter(|| {
            let mut n = 0u64;
            for f in batch.iter() {
                if let Decoded::Frame(o) = decode(LinkType::Ethernet, black_box(f), &FrameMeta::default()) {
                    n += o.sender_mac.0[5] as u64;
                }
            }
            black_box(n)
        })
    });
    g.bench_function("pnet_packet views", |bench| {
        bench.iter(|| {
            let mut n = 0u64;
            let mut vlans = [0u16; 4];
            for f in batch.iter() {
                if let Some((_, mac, ..)) = pnet_parse(black_box(f), &mut vlans) {
                    n += mac.0[5] as u64;
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

fn build(c: &mut Criterion) {
    let (arp, nd) = specs();
    let (mut ours_buf, mut hand_buf) = ([0u8; MAX_FRAME], [0u8; MAX_FRAME]);
    for s in &arp {
        let n = write_arp(&mut ours_buf, s).unwrap();
        assert_eq!(by_hand::write_arp(&mut hand_buf, s), Some(n));
        assert_eq!(ours_buf[..n], hand_buf[..n], "{s:?}");
    }
    for s in &nd {
        let n = write_nd(&mut ours_buf, s).unwrap();
        assert_eq!(by_hand::write_nd(&mut hand_buf, s), Some(n));
        assert_eq!(ours_buf[..n], hand_buf[..n], "{s:?}");
    }
    let mut g = c.benchmark_group("build");
    g.throughput(Throughput::Elements(4));
    g.bench_function("arp: wire::frame (pnet_packet views)", |bench| {
        bench.iter(|| arp.iter().map(|s| write_arp(black_box(&mut ours_buf), s).unwrap_or(0)).sum::<usize>())
    });
    g.bench_function("arp: by hand", |bench| {
        bench.iter(|| {
            arp.iter().map(|s| by_hand::write_arp(black_box(&mut hand_buf), s).unwrap_or(0)).sum::<usize>()
        })
    });
    g.bench_function("nd: wire::frame (pnet_packet views)", |bench| {
        bench.iter(|| nd.iter().map(|s| write_nd(black_box(&mut ours_buf), s).unwrap_or(0)).sum::<usize>())
    });
    g.bench_function("nd: by hand", |bench| {
        bench.iter(|| {
            nd.iter().map(|s| by_hand::write_nd(black_box(&mut hand_buf), s).unwrap_or(0)).sum::<usize>()
        })
    });
    g.finish();
}

fn checksum(c: &mut Criterion) {
    let (_, nd) = specs();
    let mut buf = [0u8; MAX_FRAME];
    let n = write_nd(&mut buf, &nd[1]).unwrap();
    let ip = &buf[14..n];
    let (src, dst) = (<[u8; 16]>::try_from(&ip[8..24]).unwrap(), <[u8; 16]>::try_from(&ip[24..40]).unwrap());
    let message = &ip[40..];
    let pnet_check = |m: &[u8]| {
        let p = Icmpv6Packet::new(m).unwrap();
        icmpv6::checksum(&p, &Ipv6Addr::from(src), &Ipv6Addr::from(dst)) == p.get_checksum()
    };
    assert_eq!(icmpv6_checksum(&src, &dst, message), 0);
    assert!(pnet_check(message));
    let mut g = c.benchmark_group("verify a 32-byte neighbour solicitation");
    g.throughput(Throughput::Elements(1));
    g.bench_function("wire::decode::icmpv6_checksum", |bench| {
        bench.iter(|| icmpv6_checksum(black_box(&src), black_box(&dst), black_box(message)) == 0)
    });
    g.bench_function("pnet_packet::icmpv6::checksum", |bench| bench.iter(|| pnet_check(black_box(message))));
    g.finish();
}

criterion_group!(benches, parse, build, checksum);
criterion_main!(benches);
