//! Builds ARP and IPv6 neighbour-discovery frames into a caller-provided buffer.
//!
//! The live prober, the test capture builder and the capture generator all use these writers, so the
//! frames l2watch sends and the frames it is tested against come from one place. Writers never
//! allocate and never panic: a buffer that is too small yields `None`. A buffer of [`MAX_FRAME`]
//! bytes always suffices.
//!
//! Frames are Ethernet II without FCS, optionally with up to [`Vlans::MAX`] VLAN tags, and padded
//! so that the untagged part is at least the 60-byte Ethernet minimum.
//!
//! Headers are written through pnet_packet's mutable views, which name every field: no offsets here.
//! They cost a few nanoseconds more per frame than writing the bytes by hand (benches/pnet.rs), nothing
//! for frames sent at most `probe.rate` times a second.

use std::net::{Ipv4Addr, Ipv6Addr};

use pnet_base::MacAddr;
use pnet_packet::MutablePacket;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperation, MutableArpPacket};
use pnet_packet::ethernet::{EtherType, EtherTypes, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{
    MutableNdpOptionPacket, MutableNeighborAdvertPacket, MutableNeighborSolicitPacket, NdpOptionTypes,
    NeighborAdvertFlags,
};
use pnet_packet::icmpv6::{Icmpv6Code, Icmpv6Types, MutableIcmpv6Packet};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::MutableIpv6Packet;
use pnet_packet::vlan::{ClassesOfService, MutableVlanPacket};

use crate::wire::decode::icmpv6_checksum;
use crate::wire::mac::Mac;
use crate::wire::observation::Vlans;

/// ARP operation code of a request.
pub const ARP_REQUEST: u16 = 1;
/// ARP operation code of a reply.
pub const ARP_REPLY: u16 = 2;

/// Smallest Ethernet frame without FCS; shorter frames are padded up to it.
pub const MIN_FRAME: usize = 60;

const ETH_HEADER: usize = 14;
const VLAN_TAG: usize = 4;
const ARP_BODY: usize = 28;
const IPV6_HEADER: usize = 40;
/// NS and NA share this layout: type, code, checksum, 4 bytes of flags/reserved, target address.
const ND_BODY: usize = 24;
/// A link-layer address option for Ethernet: type, length (in 8-byte units), 6-byte MAC.
const LL_OPTION: usize = 8;

/// Enough room for any frame built here: the largest is a neighbour advertisement or solicitation
/// with a link-layer option under [`Vlans::MAX`] tags (a padded ARP frame is smaller).
pub const MAX_FRAME: usize = ETH_HEADER + VLAN_TAG * Vlans::MAX + IPV6_HEADER + ND_BODY + LL_OPTION;

// Catches a future change that makes ARP frames the larger ones.
const _: () = assert!(MIN_FRAME + VLAN_TAG * Vlans::MAX <= MAX_FRAME);

/// `ff02::1`, all nodes on the link: where unsolicited advertisements go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Tags from a slice; extra tags are dropped because a builder method has no way to fail.
fn vlans_from(ids: &[u16]) -> Vlans {
    let mut v = Vlans::NONE;
    for &id in ids {
        if !v.push(id) {
            break;
        }
    }
    v
}

/// An ARP frame to build (RFC 826, Ethernet/IPv4 only).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ArpSpec {
    /// Ethernet source address.
    pub eth_src: Mac,
    /// Ethernet destination address.
    pub eth_dst: Mac,
    /// VLAN tags, outermost first.
    pub vlans: Vlans,
    /// Tag the outermost of two or more VLANs as an 802.1ad S-tag (0x88a8) instead of 0x8100.
    pub qinq: bool,
    /// Operation: [`ARP_REQUEST`] or [`ARP_REPLY`] (any value is written as given).
    pub op: u16,
    /// Sender hardware address.
    pub sender_mac: Mac,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: Mac,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpSpec {
    /// A broadcast request from `sender_mac`/`sender_ip` asking who has `target_ip`.
    pub fn request(sender_mac: Mac, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Self {
        ArpSpec {
            eth_src: sender_mac,
            eth_dst: Mac::BROADCAST,
            vlans: Vlans::NONE,
            qinq: false,
            op: ARP_REQUEST,
            sender_mac,
            sender_ip,
            target_mac: Mac::ZERO,
            target_ip,
        }
    }

    /// A reply from `sender_mac`/`sender_ip`, unicast to the asker `target_mac`/`target_ip`.
    pub fn reply(sender_mac: Mac, sender_ip: Ipv4Addr, target_mac: Mac, target_ip: Ipv4Addr) -> Self {
        ArpSpec {
            eth_src: sender_mac,
            eth_dst: target_mac,
            vlans: Vlans::NONE,
            qinq: false,
            op: ARP_REPLY,
            sender_mac,
            sender_ip,
            target_mac,
            target_ip,
        }
    }

    /// A gratuitous ARP (RFC 5227 announcement): a broadcast request whose sender and target IP are
    /// both `ip`.
    pub fn gratuitous(mac: Mac, ip: Ipv4Addr) -> Self {
        ArpSpec::request(mac, ip, ip)
    }

    /// An RFC 5227 probe for `target_ip`: a broadcast request with sender IP 0.0.0.0, so that no
    /// neighbour caches the prober's MAC for an address it does not own yet.
    pub fn probe(sender_mac: Mac, target_ip: Ipv4Addr) -> Self {
        ArpSpec::request(sender_mac, Ipv4Addr::UNSPECIFIED, target_ip)
    }

    /// The same frame with these VLAN tags, outermost first; tags beyond [`Vlans::MAX`] are dropped.
    pub fn with_vlans(mut self, ids: &[u16]) -> Self {
        self.vlans = vlans_from(ids);
        self
    }

    /// The same frame with the outermost of two or more tags written as an 802.1ad S-tag.
    pub fn with_qinq(mut self, qinq: bool) -> Self {
        self.qinq = qinq;
        self
    }

    /// The same frame with another Ethernet source (the ARP sender MAC is unchanged).
    pub fn with_eth_src(mut self, mac: Mac) -> Self {
        self.eth_src = mac;
        self
    }

    /// The same frame with another Ethernet destination.
    pub fn with_eth_dst(mut self, mac: Mac) -> Self {
        self.eth_dst = mac;
        self
    }
}

/// Which neighbour-discovery message to build.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NdMessage {
    /// Neighbour solicitation (ICMPv6 type 135).
    Solicitation,
    /// Neighbour advertisement (ICMPv6 type 136) with its flags.
    Advertisement {
        /// R: the sender is a router.
        router: bool,
        /// S: the advertisement answers a solicitation.
        solicited: bool,
        /// O: receivers should replace a cached link-layer address.
        override_: bool,
    },
}

/// An IPv6 neighbour-discovery frame to build (RFC 4861).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NdSpec {
    /// Ethernet source address.
    pub eth_src: Mac,
    /// Ethernet destination address.
    pub eth_dst: Mac,
    /// VLAN tags, outermost first.
    pub vlans: Vlans,
    /// Tag the outermost of two or more VLANs as an 802.1ad S-tag (0x88a8) instead of 0x8100.
    pub qinq: bool,
    /// IPv6 source address (`::` for duplicate address detection).
    pub src_ip: Ipv6Addr,
    /// IPv6 destination address.
    pub dst_ip: Ipv6Addr,
    /// Solicitation or advertisement.
    pub message: NdMessage,
    /// The target address field: the address solicited or advertised.
    pub target: Ipv6Addr,
    /// The link-layer address option: source link-layer address in a solicitation, target
    /// link-layer address in an advertisement; `None` leaves the option out.
    pub link_addr: Option<Mac>,
}

impl NdSpec {
    /// A neighbour solicitation from `src_ip` for `target`, multicast to the target's
    /// solicited-node group, carrying the source link-layer option.
    pub fn solicit(mac: Mac, src_ip: Ipv6Addr, target: Ipv6Addr) -> Self {
        let dst_ip = solicited_node(target);
        NdSpec {
            eth_src: mac,
            eth_dst: multicast_mac(dst_ip),
            vlans: Vlans::NONE,
            qinq: false,
            src_ip,
            dst_ip,
            message: NdMessage::Solicitation,
            target,
            link_addr: Some(mac),
        }
    }

    /// A duplicate-address-detection solicitation for the tentative `target`: source `::` and no
    /// source link-layer option, as RFC 4861 §4.3 requires for an unspecified source.
    pub fn dad(mac: Mac, target: Ipv6Addr) -> Self {
        NdSpec {
            src_ip: Ipv6Addr::UNSPECIFIED,
            link_addr: None,
            ..NdSpec::solicit(mac, Ipv6Addr::UNSPECIFIED, target)
        }
    }

    /// A solicited advertisement of `target` at `mac`, unicast to the soliciting node
    /// `dst_mac`/`dst_ip`, with the override flag and the target link-layer option.
    pub fn advertise(mac: Mac, target: Ipv6Addr, dst_mac: Mac, dst_ip: Ipv6Addr) -> Self {
        NdSpec {
            eth_src: mac,
            eth_dst: dst_mac,
            vlans: Vlans::NONE,
            qinq: false,
            src_ip: target,
            dst_ip,
            message: NdMessage::Advertisement { router: false, solicited: true, override_: true },
            target,
            link_addr: Some(mac),
        }
    }

    /// An unsolicited advertisement of `target` at `mac` to all nodes (`ff02::1`), with the
    /// override flag: what a host sends when its address or MAC changes.
    pub fn unsolicited(mac: Mac, target: Ipv6Addr) -> Self {
        NdSpec {
            eth_dst: multicast_mac(ALL_NODES),
            dst_ip: ALL_NODES,
            message: NdMessage::Advertisement { router: false, solicited: false, override_: true },
            ..NdSpec::advertise(mac, target, Mac::ZERO, ALL_NODES)
        }
    }

    /// The same frame with these VLAN tags, outermost first; tags beyond [`Vlans::MAX`] are dropped.
    pub fn with_vlans(mut self, ids: &[u16]) -> Self {
        self.vlans = vlans_from(ids);
        self
    }

    /// The same frame with the outermost of two or more tags written as an 802.1ad S-tag.
    pub fn with_qinq(mut self, qinq: bool) -> Self {
        self.qinq = qinq;
        self
    }

    /// The same frame with another link-layer address option (`None` drops it).
    pub fn with_link_addr(mut self, mac: Option<Mac>) -> Self {
        self.link_addr = mac;
        self
    }

    /// The same frame with another Ethernet source.
    pub fn with_eth_src(mut self, mac: Mac) -> Self {
        self.eth_src = mac;
        self
    }
}

/// The solicited-node multicast address of `ip` (RFC 4291 §2.7.1): `ff02::1:ff` followed by the
/// low 24 bits of `ip`.
pub fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15]])
}

/// The Ethernet group address of an IPv6 multicast address (RFC 2464 §7): `33:33` followed by
/// its low 32 bits.
pub fn multicast_mac(ip: Ipv6Addr) -> Mac {
    let o = ip.octets();
    Mac([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// Writes an ARP frame into `buf`; returns its length, or `None` when `buf` is too small.
pub fn write_arp(buf: &mut [u8], spec: &ArpSpec) -> Option<usize> {
    let l2 = write_eth(buf, spec.eth_dst, spec.eth_src, &spec.vlans, spec.qinq, EtherTypes::Arp)?;
    let mut arp = MutableArpPacket::new(buf.get_mut(l2..l2 + ARP_BODY)?)?;
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(ArpOperation(spec.op));
    arp.set_sender_hw_addr(MacAddr::from(spec.sender_mac.0));
    arp.set_sender_proto_addr(spec.sender_ip);
    arp.set_target_hw_addr(MacAddr::from(spec.target_mac.0));
    arp.set_target_proto_addr(spec.target_ip);
    pad(buf, l2 + ARP_BODY, spec.vlans.as_slice().len())
}

/// Writes a neighbour-discovery frame into `buf`; returns its length, or `None` when `buf` is too
/// small.
pub fn write_nd(buf: &mut [u8], spec: &NdSpec) -> Option<usize> {
    let l2 = write_eth(buf, spec.eth_dst, spec.eth_src, &spec.vlans, spec.qinq, EtherTypes::Ipv6)?;
    let icmp_len = ND_BODY + if spec.link_addr.is_some() { LL_OPTION } else { 0 };
    let mut ip = MutableIpv6Packet::new(buf.get_mut(l2..l2 + IPV6_HEADER + icmp_len)?)?;
    ip.set_version(6);
    ip.set_traffic_class(0);
    ip.set_flow_label(0);
    ip.set_payload_length(icmp_len as u16);
    ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
    // RFC 4861 receivers drop ND with any other hop limit: proves it stayed on-link.
    ip.set_hop_limit(255);
    ip.set_source(spec.src_ip);
    ip.set_destination(spec.dst_ip);

    let icmp = ip.payload_mut();
    let option = match spec.message {
        NdMessage::Solicitation => {
            let mut ns = MutableNeighborSolicitPacket::new(icmp)?;
            ns.set_icmpv6_type(Icmpv6Types::NeighborSolicit);
            ns.set_icmpv6_code(Icmpv6Code(0));
            ns.set_checksum(0);
            ns.set_reserved(0);
            ns.set_target_addr(spec.target);
            NdpOptionTypes::SourceLLAddr
        }
        NdMessage::Advertisement { router, solicited, override_ } => {
            let mut na = MutableNeighborAdvertPacket::new(icmp)?;
            na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
            na.set_icmpv6_code(Icmpv6Code(0));
            na.set_checksum(0);
            let flag = |on: bool, f: u8| if on { f } else { 0 };
            na.set_flags(
                flag(router, NeighborAdvertFlags::Router)
                    | flag(solicited, NeighborAdvertFlags::Solicited)
                    | flag(override_, NeighborAdvertFlags::Override),
            );
            na.set_reserved(0);
            na.set_target_addr(spec.target);
            NdpOptionTypes::TargetLLAddr
        }
    };
    if let Some(mac) = spec.link_addr {
        let mut opt = MutableNdpOptionPacket::new(icmp.get_mut(ND_BODY..)?)?;
        opt.set_option_type(option);
        opt.set_length(1); // in units of 8 bytes: type, length and the MAC
        opt.set_data(&mac.0);
    }
    let sum = icmpv6_checksum(&spec.src_ip.octets(), &spec.dst_ip.octets(), icmp);
    MutableIcmpv6Packet::new(icmp)?.set_checksum(sum);

    pad(buf, l2 + IPV6_HEADER + icmp_len, spec.vlans.as_slice().len())
}

/// Writes the Ethernet header and VLAN tags; returns where the payload starts.
fn write_eth(
    buf: &mut [u8],
    dst: Mac,
    src: Mac,
    vlans: &Vlans,
    qinq: bool,
    ethertype: EtherType,
) -> Option<usize> {
    let tags = vlans.as_slice();
    let len = ETH_HEADER + VLAN_TAG * tags.len();
    let mut eth = MutableEthernetPacket::new(buf.get_mut(..len)?)?;
    eth.set_destination(MacAddr::from(dst.0));
    eth.set_source(MacAddr::from(src.0));
    // Each header names what follows it: the Ethernet header the first tag (an 802.1ad S-tag when
    // asked for and another tag follows), each tag the next, the last tag the payload.
    eth.set_ethertype(match tags {
        [] => ethertype,
        [_, _, ..] if qinq => EtherTypes::PBridge,
        _ => EtherTypes::Vlan,
    });
    let mut rest = eth.payload_mut();
    for (i, &id) in tags.iter().enumerate() {
        let (this, after) = std::mem::take(&mut rest).split_at_mut_checked(VLAN_TAG)?;
        let mut tag = MutableVlanPacket::new(this)?;
        // Priority 0, drop-eligible 0: only the VLAN ID matters to l2watch.
        tag.set_priority_code_point(ClassesOfService::BE);
        tag.set_drop_eligible_indicator(0);
        tag.set_vlan_identifier(id & 0x0fff);
        tag.set_ethertype(if i + 1 < tags.len() { EtherTypes::Vlan } else { ethertype });
        rest = after;
    }
    Some(len)
}

/// Zero-pads a frame of `len` bytes so that, not counting its tags, it reaches [`MIN_FRAME`].
/// Tags are not counted because a switch strips them on access ports and the untagged frame must
/// still be valid there.
fn pad(buf: &mut [u8], len: usize, tags: usize) -> Option<usize> {
    let total = len.max(MIN_FRAME + VLAN_TAG * tags);
    buf.get_mut(len..total)?.fill(0);
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(s: &str) -> Mac {
        s.parse().unwrap()
    }

    /// A checksum written the slow, obvious way, independent of the one under test: sum every
    /// 16-bit word of pseudo-header and message with 64-bit arithmetic, fold once at the end.
    fn naive_icmpv6_checksum(ipv6_packet: &[u8]) -> u16 {
        let payload = &ipv6_packet[40..];
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ipv6_packet[8..40]);
        pseudo.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 58]);
        pseudo.extend_from_slice(payload);
        if pseudo.len() % 2 == 1 {
            pseudo.push(0);
        }
        // Skip the checksum field itself (offset 40 + 2 in the pseudo-header buffer).
        let mut total: u64 = 0;
        for (i, w) in pseudo.chunks(2).enumerate() {
            if i != (40 + 2) / 2 {
                total += u64::from(w[0]) * 256 + u64::from(w[1]);
            }
        }
        while total > 0xffff {
            total = (total % 0x10000) + (total / 0x10000);
        }
        0xffff - total as u16
    }

    /// Verifies a received ICMPv6 message the way a receiver does: the sum including the
    /// checksum must be all ones.
    fn checksum_verifies(ipv6_packet: &[u8]) -> bool {
        let mut buf = ipv6_packet[8..40].to_vec();
        let payload = &ipv6_packet[40..];
        buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        buf.extend_from_slice(&[0, 0, 0, 58]);
        buf.extend_from_slice(payload);
        let mut total: u64 =
            buf.chunks(2).map(|w| u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0))).sum();
        while total > 0xffff {
            total = (total & 0xffff) + (total >> 16);
        }
        total == 0xffff
    }

    #[test]
    fn probe_bytes() {
        let spec = ArpSpec::probe(mac("52:54:00:12:34:56"), Ipv4Addr::new(192, 168, 1, 10));
        let mut buf = [0xaa; MAX_FRAME];
        let n = write_arp(&mut buf, &spec).unwrap();
        let mut expected = vec![
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // broadcast
            0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // source
            0x08, 0x06, // ARP
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, // Ethernet, IPv4, hlen 6, plen 4
            0x00, 0x01, // request
            0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // sender MAC
            0, 0, 0, 0, // sender IP 0.0.0.0
            0, 0, 0, 0, 0, 0, // target MAC zero
            192, 168, 1, 10, // target IP
        ];
        expected.resize(60, 0);
        assert_eq!(&buf[..n], &expected[..]);
    }

    #[test]
    fn tagged_reply_bytes() {
        let spec = ArpSpec::reply(
            mac("02:00:00:00:00:01"),
            Ipv4Addr::new(10, 0, 0, 1),
            mac("02:00:00:00:00:02"),
            Ipv4Addr::new(10, 0, 0, 2),
        )
        .with_vlans(&[100, 20])
        .with_qinq(true);
        let mut buf = [0xaa; MAX_FRAME];
        let n = write_arp(&mut buf, &spec).unwrap();
        assert_eq!(n, 68);
        assert_eq!(&buf[12..22], &[0x88, 0xa8, 0x00, 100, 0x81, 0x00, 0x00, 20, 0x08, 0x06]);
        assert_eq!(&buf[22 + 6..22 + 8], &[0, 2]);
        assert!(buf[22 + 28..n].iter().all(|&b| b == 0));
        // Without the QinQ flag every tag is 802.1Q.
        let n = write_arp(&mut buf, &spec.with_qinq(false)).unwrap();
        assert_eq!(n, 68);
        assert_eq!(&buf[12..14], &[0x81, 0x00]);
    }

    #[test]
    fn gratuitous_has_equal_sender_and_target_ip() {
        let ip = Ipv4Addr::new(192, 0, 2, 7);
        let spec = ArpSpec::gratuitous(mac("02:00:00:00:00:07"), ip);
        assert_eq!(
            (spec.sender_ip, spec.target_ip, spec.op, spec.eth_dst),
            (ip, ip, ARP_REQUEST, Mac::BROADCAST)
        );
    }

    #[test]
    fn dad_ns_bytes() {
        let target: Ipv6Addr = "fe80::5054:ff:fe12:3456".parse().unwrap();
        let spec = NdSpec::dad(mac("52:54:00:12:34:56"), target);
        let mut buf = [0xaa; MAX_FRAME];
        let n = write_nd(&mut buf, &spec).unwrap();
        assert_eq!(n, 14 + 40 + 24);
        let f = &buf[..n];
        assert_eq!(
            &f[0..14],
            &[0x33, 0x33, 0xff, 0x12, 0x34, 0x56, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x86, 0xdd]
        );
        let ip = &f[14..];
        assert_eq!(&ip[0..8], &[0x60, 0, 0, 0, 0, 24, 58, 255]);
        assert_eq!(&ip[8..24], &[0; 16]);
        let group: Ipv6Addr = "ff02::1:ff12:3456".parse().unwrap();
        assert_eq!(&ip[24..40], &group.octets());
        let icmp = &ip[40..];
        assert_eq!(&icmp[0..2], &[135, 0]);
        assert_eq!(&icmp[4..8], &[0; 4]);
        assert_eq!(&icmp[8..24], &target.octets());
        assert_eq!(u16::from_be_bytes([icmp[2], icmp[3]]), naive_icmpv6_checksum(ip));
        assert!(checksum_verifies(ip));
    }

    #[test]
    fn ns_carries_source_link_layer_option() {
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let target: Ipv6Addr = "2001:db8::abcd:ef01".parse().unwrap();
        let m = mac("02:11:22:33:44:55");
        let mut buf = [0; MAX_FRAME];
        let n = write_nd(&mut buf, &NdSpec::solicit(m, src, target)).unwrap();
        assert_eq!(n, 14 + 40 + 32);
        assert_eq!(&buf[0..6], &[0x33, 0x33, 0xff, 0xcd, 0xef, 0x01]);
        let ip = &buf[14..n];
        assert_eq!(&ip[8..24], &src.octets());
        assert_eq!(&ip[40 + 24..], &[1, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(u16::from_be_bytes([ip[42], ip[43]]), naive_icmpv6_checksum(ip));
    }

    #[test]
    fn na_bytes() {
        let target: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let m = mac("02:00:00:00:00:07");
        let mut buf = [0; MAX_FRAME];

        let n = write_nd(&mut buf, &NdSpec::unsolicited(m, target)).unwrap();
        assert_eq!(&buf[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
        let ip = &buf[14..n];
        assert_eq!(&ip[8..24], &target.octets());
        assert_eq!(&ip[24..40], &ALL_NODES.octets());
        assert_eq!(&ip[40..42], &[136, 0]);
        assert_eq!(&ip[44..48], &[0x20, 0, 0, 0]); // override only
        assert_eq!(&ip[64..72], &[2, 1, 0x02, 0, 0, 0, 0, 0x07]);
        assert_eq!(u16::from_be_bytes([ip[42], ip[43]]), naive_icmpv6_checksum(ip));

        let asker: Ipv6Addr = "2001:db8::99".parse().unwrap();
        let spec = NdSpec::advertise(m, target, mac("02:00:00:00:00:99"), asker).with_vlans(&[7]);
        let n = write_nd(&mut buf, &spec).unwrap();
        assert_eq!(n, 18 + 40 + 32);
        assert_eq!(&buf[0..6], &[0x02, 0, 0, 0, 0, 0x99]);
        assert_eq!(&buf[12..18], &[0x81, 0x00, 0x00, 0x07, 0x86, 0xdd]);
        assert_eq!(&buf[18 + 44..18 + 48], &[0x60, 0, 0, 0]); // solicited + override
        assert!(checksum_verifies(&buf[18..n]));
    }

    #[test]
    fn solicited_node_address() {
        let ip: Ipv6Addr = "2001:db8::1:2:3344:5566".parse().unwrap();
        assert_eq!(solicited_node(ip), "ff02::1:ff44:5566".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn undersized_buffers_give_none() {
        let arp =
            ArpSpec::probe(mac("02:00:00:00:00:01"), Ipv4Addr::new(10, 0, 0, 1)).with_vlans(&[1, 2, 3, 4]);
        let nd =
            NdSpec::solicit(mac("02:00:00:00:00:01"), "fe80::1".parse().unwrap(), "fe80::2".parse().unwrap())
                .with_vlans(&[1, 2, 3, 4]);
        let mut buf = [0; MAX_FRAME];
        let arp_len = write_arp(&mut buf, &arp).unwrap();
        let nd_len = write_nd(&mut buf, &nd).unwrap();
        assert_eq!(nd_len, MAX_FRAME, "the largest frame fills MAX_FRAME exactly");
        for short in 0..arp_len {
            assert_eq!(write_arp(&mut buf[..short], &arp), None, "{short} bytes");
        }
        for short in 0..nd_len {
            assert_eq!(write_nd(&mut buf[..short], &nd), None, "{short} bytes");
        }
    }

    #[test]
    fn extra_vlans_are_dropped() {
        let spec = ArpSpec::gratuitous(Mac::ZERO, Ipv4Addr::LOCALHOST).with_vlans(&[1, 2, 3, 4, 5]);
        assert_eq!(spec.vlans.as_slice(), &[1, 2, 3, 4]);
    }
}
