//! Turns one captured frame into one [`Observation`], or says why not.
//!
//! This is the per-frame hot path: it borrows the frame, allocates nothing, never panics on any
//! input, and rejects the common case (IPv4, IPv6 that is not ND) after reading a couple of
//! bytes. Every read goes through a checked split (`split_first_chunk`, `get`, slice patterns),
//! so a short or hostile frame ends in a [`Decoded`] value, never in a panic.
//!
//! "Truncated" is used uniformly: a frame whose bytes end before l2watch could rule out ARP/ND
//! (a cut Ethernet, cooked, VLAN, LLC/SNAP or IPv6 header, or a missing ICMPv6 type) or before
//! the ARP/ND message it carries ends is [`SkipReason::Truncated`], never [`Decoded::Ignored`].
//! That keeps a too-small capture snap length visible in the skip counters.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::mac::Mac;
use crate::wire::observation::{FrameKind, Observation, Timestamp, Vlans};

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
/// Pre-standard QinQ outer tag still emitted by some switches.
const ETH_P_QINQ_9100: u16 = 0x9100;
/// Linux cooked captures carry this pseudo-protocol for 802.2 LLC frames: the LLC header
/// follows directly, there is no 802.3 length field.
const ETH_P_802_2: u16 = 0x0004;
/// Largest 802.3 length field; larger values (from 0x0600) are ethertypes.
const MAX_8023_LEN: u16 = 1500;

/// LLC DSAP/SSAP 0xAA, UI, SNAP OUI 00-00-00 (RFC 1042 encapsulation), type ARP.
const SNAP_ARP: [u8; 8] = [0xaa, 0xaa, 0x03, 0x00, 0x00, 0x00, 0x08, 0x06];

const ARPHRD_ETHER: u16 = 1;
/// IEEE 802 hardware type: what ARP over LLC/SNAP (RFC 1042) uses with 48-bit MACs.
const ARPHRD_IEEE802: u16 = 6;
const ARP_PTYPE_IPV4: u16 = 0x0800;
const ARPOP_REQUEST: u16 = 1;
const ARPOP_REPLY: u16 = 2;

const PACKET_BROADCAST: u16 = 1;
const PACKET_OUTGOING: u16 = 4;

const IPPROTO_ICMPV6: u8 = 58;
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_OPT_SOURCE_LINKADDR: u8 = 1;
const ND_OPT_TARGET_LINKADDR: u8 = 2;
/// NA "Solicited" flag (first byte of the flags word).
const ND_NA_FLAG_SOLICITED: u8 = 0x40;
/// ND header before options: type, code, checksum, flags/reserved, target.
const ND_MIN_LEN: usize = 24;
/// ff02::1:ff00:0/104 (RFC 4291 §2.7.1).
const SOLICITED_NODE_PREFIX: [u8; 13] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff];

/// Capture link types l2watch decodes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LinkType {
    /// Ethernet II / 802.3 (LINKTYPE_ETHERNET, 1).
    Ethernet,
    /// Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 113).
    LinuxSll,
    /// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 276).
    LinuxSll2,
    /// IP over InfiniBand (LINKTYPE_IPOIB, 242). Its ARP uses 20-byte hardware addresses, so every
    /// ARP frame is skipped as unsupported hardware: decoded only to be counted, never misread.
    Ipoib,
}

impl LinkType {
    /// From a pcap/pcapng LINKTYPE_ number: 1 Ethernet, 113 Linux cooked v1, 276 Linux cooked
    /// v2, 242 IP over InfiniBand; `None` otherwise.
    pub fn from_linktype(n: u32) -> Option<LinkType> {
        match n {
            1 => Some(LinkType::Ethernet),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            242 => Some(LinkType::Ipoib),
            _ => None,
        }
    }
}

/// What the capture source knows about a frame besides its bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameMeta {
    /// Capture time.
    pub time: Timestamp,
    /// 1-based frame number in the capture file, or a running count for live capture.
    pub frame: u64,
    /// Index of the capture interface in its source's interface table.
    pub interface: u16,
    /// The live socket reported the frame as sent by this host. Linux cooked captures with
    /// packet type 4 (PACKET_OUTGOING) are marked outgoing as well.
    pub outgoing: bool,
    /// A VLAN tag the kernel stripped and reported separately (TPACKET_V3 `tp_vlan_tci`). It is
    /// the outermost tag, before any tags still in the bytes.
    pub vlan: Option<u16>,
}

/// The outcome of decoding one frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Decoded {
    /// A usable ARP or neighbour-discovery frame.
    Frame(Observation),
    /// A well-formed frame that is not ARP / ND (IPv4, IPv6 RA/RS/MLD, STP, ...). Not an error.
    Ignored,
    /// An ARP or ND frame (or something claiming to be one) that l2watch cannot use.
    Skipped(SkipReason),
}

/// Why an ARP / ND frame was skipped. The names are the `reason` label of the skip counter.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum SkipReason {
    /// The bytes end before the headers say they should.
    Truncated,
    /// ARP hardware type other than Ethernet (1) or IEEE 802 (6), e.g. InfiniBand (32).
    UnsupportedHardware,
    /// ARP protocol type other than IPv4.
    UnsupportedProtocol,
    /// ARP hardware/protocol address length not 6/4, or an ND link-layer option that is not
    /// one 8-byte unit (a 6-byte MAC).
    BadAddressLength,
    /// ARP opcode other than request (1) or reply (2): RARP, InARP, garbage.
    UnsupportedOpcode,
    /// The sender MAC (ARP sender hardware address, ND link-layer option or the Ethernet source
    /// it falls back to) is zero, multicast or broadcast.
    BadSenderMac,
    /// The sender IP cannot be claimed: multicast, 255.255.255.255, or 0.0.0.0 outside an
    /// RFC 5227 probe; a multicast IPv6 solicitation source.
    BadSenderIp,
    /// More than [`Vlans::MAX`] VLAN tags.
    TooManyVlans,
    /// ND message whose IPv6 hop limit is not 255 (RFC 4861: it may have crossed a router).
    BadHopLimit,
    /// ND message whose ICMPv6 checksum is wrong.
    BadChecksum,
    /// ND message failing an RFC 4861 §7.1 validity check (code, length, options, target,
    /// DAD rules, solicited flag).
    BadNdMessage,
}

impl SkipReason {
    /// Every reason, in label order ([`SkipReason::index`] is the position here).
    pub const ALL: [SkipReason; 11] = [
        SkipReason::Truncated,
        SkipReason::UnsupportedHardware,
        SkipReason::UnsupportedProtocol,
        SkipReason::BadAddressLength,
        SkipReason::UnsupportedOpcode,
        SkipReason::BadSenderMac,
        SkipReason::BadSenderIp,
        SkipReason::TooManyVlans,
        SkipReason::BadHopLimit,
        SkipReason::BadChecksum,
        SkipReason::BadNdMessage,
    ];

    /// The label value used in metrics, logs and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            SkipReason::Truncated => "truncated",
            SkipReason::UnsupportedHardware => "unsupported_hardware",
            SkipReason::UnsupportedProtocol => "unsupported_protocol",
            SkipReason::BadAddressLength => "bad_address_length",
            SkipReason::UnsupportedOpcode => "unsupported_opcode",
            SkipReason::BadSenderMac => "bad_sender_mac",
            SkipReason::BadSenderIp => "bad_sender_ip",
            SkipReason::TooManyVlans => "too_many_vlans",
            SkipReason::BadHopLimit => "bad_hop_limit",
            SkipReason::BadChecksum => "bad_checksum",
            SkipReason::BadNdMessage => "bad_nd_message",
        }
    }

    /// Position in [`SkipReason::ALL`], for counter arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// One short human sentence for reports.
    pub const fn description(self) -> &'static str {
        match self {
            SkipReason::Truncated => "The frame ends before its headers say it should.",
            SkipReason::UnsupportedHardware => {
                "ARP for a hardware type other than Ethernet (for example InfiniBand)."
            }
            SkipReason::UnsupportedProtocol => "ARP for a protocol other than IPv4.",
            SkipReason::BadAddressLength => {
                "ARP or ND link-layer address of the wrong length for Ethernet and IPv4."
            }
            SkipReason::UnsupportedOpcode => {
                "ARP opcode other than request or reply (RARP, InARP or garbage)."
            }
            SkipReason::BadSenderMac => {
                "Sender MAC is zero, multicast or broadcast, so it cannot be a station."
            }
            SkipReason::BadSenderIp => {
                "Sender IP is multicast, broadcast or unspecified, so it cannot be claimed."
            }
            SkipReason::TooManyVlans => "More stacked VLAN tags than l2watch keeps.",
            SkipReason::BadHopLimit => "Neighbour discovery with an IPv6 hop limit other than 255.",
            SkipReason::BadChecksum => "Neighbour discovery with a wrong ICMPv6 checksum.",
            SkipReason::BadNdMessage => "Neighbour discovery message that fails RFC 4861 checks.",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a frame produced no observation; converted to [`Decoded`] once at the top so the
/// parsers can use `?`.
enum Miss {
    Ignored,
    Skip(SkipReason),
}

impl From<SkipReason> for Miss {
    #[inline]
    fn from(r: SkipReason) -> Miss {
        Miss::Skip(r)
    }
}

type Step<T> = Result<T, Miss>;

/// Decodes one captured frame of link type `link`.
///
/// Never panics and never allocates, whatever `data` holds.
///
/// Always inlined, with the ARP path below it: called out of line, the ~100-byte `Observation` went
/// through memory several times per frame (built field by field, then copied whole), and each copy of
/// a struct just written waits for the writes to land (store-to-load forwarding fails). Inlined into
/// the caller's loop its fields stay in registers: `analyze` decodes in 7 ns a frame instead of 22.
#[inline(always)]
pub fn decode(link: LinkType, data: &[u8], meta: &FrameMeta) -> Decoded {
    match decode_frame(link, data, meta) {
        Ok(o) => Decoded::Frame(o),
        Err(Miss::Ignored) => Decoded::Ignored,
        Err(Miss::Skip(r)) => Decoded::Skipped(r),
    }
}

/// Splits the first `N` bytes off the cursor `b`, or reports truncation.
#[inline(always)]
fn take<'a, const N: usize>(b: &mut &'a [u8]) -> Step<&'a [u8; N]> {
    let (head, tail) = b.split_first_chunk::<N>().ok_or(SkipReason::Truncated)?;
    *b = tail;
    Ok(head)
}

#[inline(always)]
fn be16(b: &[u8; 2]) -> u16 {
    u16::from_be_bytes(*b)
}

/// What the link layer says about a frame.
#[derive(Clone, Copy)]
struct Link {
    eth_src: Mac,
    eth_dst: Mac,
    outgoing: bool,
}

/// What an ARP or ND message says: the fields of an [`Observation`] the link layer does not give.
struct Body {
    kind: FrameKind,
    sender_mac: Mac,
    sender_ip: IpAddr,
    target_mac: Mac,
    target_ip: IpAddr,
}

#[inline(always)]
fn decode_frame(link_type: LinkType, data: &[u8], meta: &FrameMeta) -> Step<Observation> {
    let mut c = data;
    let mut vlans = Vlans::NONE;
    if let Some(v) = meta.vlan {
        // The list is empty here, so this always fits.
        vlans.push(v);
    }

    // Cooked captures label their payload with Linux skb protocol numbers, where values below
    // 0x0600 are pseudo-protocols rather than 802.3 lengths.
    let cooked = link_type != LinkType::Ethernet;
    let mut link = Link { eth_src: Mac::ZERO, eth_dst: Mac::ZERO, outgoing: meta.outgoing };
    let mut ethertype = match link_type {
        LinkType::Ethernet => {
            let dst = take::<6>(&mut c)?;
            let src = take::<6>(&mut c)?;
            link.eth_dst = Mac(*dst);
            link.eth_src = Mac(*src);
            be16(take::<2>(&mut c)?)
        }
        LinkType::LinuxSll => {
            // One length check for the whole header; the takes below cannot fail.
            let mut h: &[u8] = take::<16>(&mut c)?;
            let pkttype = be16(take(&mut h)?);
            let hatype = be16(take(&mut h)?);
            let halen = be16(take(&mut h)?);
            let addr = take::<6>(&mut h)?;
            let _addr_pad = take::<2>(&mut h)?;
            apply_cooked(&mut link, pkttype, hatype, halen, addr);
            be16(take(&mut h)?)
        }
        LinkType::LinuxSll2 => {
            let mut h: &[u8] = take::<20>(&mut c)?;
            let protocol = be16(take(&mut h)?);
            let _reserved_ifindex = take::<6>(&mut h)?;
            let hatype = be16(take(&mut h)?);
            let [pkttype, halen] = *take(&mut h)?;
            let addr = take::<6>(&mut h)?;
            apply_cooked(&mut link, pkttype.into(), hatype, halen.into(), addr);
            protocol
        }
        LinkType::Ipoib => {
            // Two 20-byte InfiniBand addresses (no MACs to keep), the ethertype, 2 reserved bytes.
            let h = take::<44>(&mut c)?;
            u16::from_be_bytes([h[40], h[41]])
        }
    };

    // Excess tags are not fatal yet: a non-ARP/ND frame with many tags is still just Ignored.
    let mut too_many_vlans = false;
    while matches!(ethertype, ETH_P_8021Q | ETH_P_8021AD | ETH_P_QINQ_9100) {
        let [t0, t1, e0, e1] = *take::<4>(&mut c)?;
        too_many_vlans |= !vlans.push(u16::from_be_bytes([t0, t1]));
        ethertype = u16::from_be_bytes([e0, e1]);
    }

    let body = match ethertype {
        ETH_P_ARP => arp(c)?,
        ETH_P_IPV6 => nd(c, link)?,
        ETH_P_802_2 if cooked => llc_snap_arp(c)?,
        n if !cooked && n <= MAX_8023_LEN => llc_snap_arp(c)?,
        _ => return Err(Miss::Ignored),
    };
    if too_many_vlans {
        return Err(SkipReason::TooManyVlans.into());
    }
    // Built once, here, from values held in registers: an observation built early and completed
    // with `..base` was copied through the stack, and the copy read its 6-byte MACs back with loads
    // that straddled two stores, which the CPU cannot forward (a stall on every frame).
    Ok(Observation {
        time: meta.time,
        frame: meta.frame,
        interface: meta.interface,
        outgoing: link.outgoing,
        vlans,
        eth_src: link.eth_src,
        eth_dst: link.eth_dst,
        kind: body.kind,
        sender_mac: body.sender_mac,
        sender_ip: body.sender_ip,
        target_mac: body.target_mac,
        target_ip: body.target_ip,
    })
}

/// Fills what a Linux cooked header knows: the source MAC (only for Ethernet devices), the
/// broadcast destination, and the direction.
#[inline]
fn apply_cooked(link: &mut Link, pkttype: u16, hatype: u16, halen: u16, addr: &[u8; 6]) {
    if hatype == ARPHRD_ETHER && halen == 6 {
        link.eth_src = Mac(*addr);
    }
    // The real destination of a unicast or multicast frame is not recorded; leave it zero.
    if pkttype == PACKET_BROADCAST {
        link.eth_dst = Mac::BROADCAST;
    }
    link.outgoing |= pkttype == PACKET_OUTGOING;
}

/// 802.2 LLC: only ARP in RFC 1042 SNAP encapsulation is of interest.
#[inline(always)]
fn llc_snap_arp(c: &[u8]) -> Step<Body> {
    match c.split_first_chunk::<8>() {
        Some((h, rest)) if *h == SNAP_ARP => arp(rest),
        Some(_) => Err(Miss::Ignored),
        // Too short to tell: only a cut SNAP ARP header counts as truncated ARP.
        None if SNAP_ARP.starts_with(c) => Err(SkipReason::Truncated.into()),
        None => Err(Miss::Ignored),
    }
}

/// RFC 826 ARP for Ethernet/IPv4. Trailing bytes (Ethernet padding) are ignored.
#[inline(always)]
fn arp(mut c: &[u8]) -> Step<Body> {
    let [h0, h1, p0, p1, hlen, plen, o0, o1] = *take::<8>(&mut c)?;
    // Header fields are checked before the body length so that, e.g., InfiniBand ARP (whose
    // body is longer) is reported as what it is, not as truncated Ethernet ARP.
    let htype = u16::from_be_bytes([h0, h1]);
    if htype != ARPHRD_ETHER && htype != ARPHRD_IEEE802 {
        return Err(SkipReason::UnsupportedHardware.into());
    }
    if u16::from_be_bytes([p0, p1]) != ARP_PTYPE_IPV4 {
        return Err(SkipReason::UnsupportedProtocol.into());
    }
    if hlen != 6 || plen != 4 {
        return Err(SkipReason::BadAddressLength.into());
    }
    let op = u16::from_be_bytes([o0, o1]);
    if op != ARPOP_REQUEST && op != ARPOP_REPLY {
        return Err(SkipReason::UnsupportedOpcode.into());
    }
    let sha = Mac(*take::<6>(&mut c)?);
    let spa = *take::<4>(&mut c)?;
    let tha = Mac(*take::<6>(&mut c)?);
    let tpa = *take::<4>(&mut c)?;

    if !is_station(sha) {
        return Err(SkipReason::BadSenderMac.into());
    }
    let sender = Ipv4Addr::from(spa);
    let kind = if op == ARPOP_REQUEST && sender.is_unspecified() {
        FrameKind::Probe
    } else if spa == tpa {
        FrameKind::Gratuitous
    } else if op == ARPOP_REQUEST {
        FrameKind::Request
    } else {
        FrameKind::Reply
    };
    // Only a probe may use 0.0.0.0; anything else would be read as a claim on it.
    if kind != FrameKind::Probe && (sender.is_unspecified() || sender.is_multicast() || sender.is_broadcast())
    {
        return Err(SkipReason::BadSenderIp.into());
    }
    Ok(Body {
        kind,
        sender_mac: sha,
        sender_ip: IpAddr::V4(sender),
        target_mac: tha,
        target_ip: IpAddr::V4(Ipv4Addr::from(tpa)),
    })
}

/// A MAC that can belong to one station: not zero, not group (multicast/broadcast).
#[inline(always)]
fn is_station(m: Mac) -> bool {
    !m.is_zero() && !m.is_multicast()
}

/// IPv6 neighbour solicitation / advertisement (RFC 4861 §4.3, §4.4, §7.1).
#[inline]
fn nd(mut c: &[u8], link: Link) -> Step<Body> {
    let [v, _, _, _, l0, l1, next, hop] = *take::<8>(&mut c)?;
    let src = take::<16>(&mut c)?;
    let dst = take::<16>(&mut c)?;
    // Extension headers before ICMPv6 are legal but ND never needs them (MLD uses hop-by-hop):
    // l2watch only reads ICMPv6 that follows the fixed header directly.
    if v >> 4 != 6 || next != IPPROTO_ICMPV6 {
        return Err(Miss::Ignored);
    }
    let ns = match *c.first().ok_or(SkipReason::Truncated)? {
        ND_NEIGHBOR_SOLICIT => true,
        ND_NEIGHBOR_ADVERT => false,
        _ => return Err(Miss::Ignored),
    };
    // The payload length bounds the message; anything after it is Ethernet padding.
    let icmp = c.get(..usize::from(u16::from_be_bytes([l0, l1]))).ok_or(SkipReason::Truncated)?;
    if hop != 255 {
        return Err(SkipReason::BadHopLimit.into());
    }
    if icmp.len() < ND_MIN_LEN {
        return Err(SkipReason::BadNdMessage.into());
    }
    if icmpv6_checksum(src, dst, icmp) != 0 {
        return Err(SkipReason::BadChecksum.into());
    }

    let mut m = icmp;
    let bad = |_| Miss::Skip(SkipReason::BadNdMessage);
    let [_, code, _, _, flags, _, _, _] = *take::<8>(&mut m).map_err(bad)?;
    let target = Ipv6Addr::from(*take::<16>(&mut m).map_err(bad)?);
    if code != 0 || target.is_multicast() || target.is_unspecified() {
        return Err(SkipReason::BadNdMessage.into());
    }
    let wanted = if ns { ND_OPT_SOURCE_LINKADDR } else { ND_OPT_TARGET_LINKADDR };
    let lla = link_layer_option(m, wanted)?;

    let source = Ipv6Addr::from(*src);
    let obs = if ns {
        if source.is_unspecified() {
            // DAD (RFC 4861 §7.1.1): must go to a solicited-node group and carry no SLLA.
            if !dst.starts_with(&SOLICITED_NODE_PREFIX) || lla.is_some() {
                return Err(SkipReason::BadNdMessage.into());
            }
            Body {
                kind: FrameKind::NdDad,
                sender_mac: link.eth_src,
                sender_ip: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                target_mac: Mac::ZERO,
                target_ip: IpAddr::V6(target),
            }
        } else {
            if source.is_multicast() {
                return Err(SkipReason::BadSenderIp.into());
            }
            Body {
                kind: FrameKind::NdNs,
                sender_mac: lla.unwrap_or(link.eth_src),
                sender_ip: IpAddr::V6(source),
                target_mac: Mac::ZERO,
                target_ip: IpAddr::V6(target),
            }
        }
    } else {
        let dest = Ipv6Addr::from(*dst);
        if dest.is_multicast() && flags & ND_NA_FLAG_SOLICITED != 0 {
            return Err(SkipReason::BadNdMessage.into());
        }
        Body {
            kind: FrameKind::NdNa,
            sender_mac: lla.unwrap_or(link.eth_src),
            sender_ip: IpAddr::V6(target),
            target_mac: link.eth_dst,
            target_ip: IpAddr::V6(dest),
        }
    };
    // Cooked captures of non-Ethernet devices have no source MAC to fall back on: zero here
    // means "unknown", which must not become a claim.
    if !is_station(obs.sender_mac) {
        return Err(SkipReason::BadSenderMac.into());
    }
    Ok(obs)
}

/// Walks the ND options, validating every length, and returns the first link-layer address
/// option of type `wanted`.
#[inline]
fn link_layer_option(mut opts: &[u8], wanted: u8) -> Step<Option<Mac>> {
    let mut found = None;
    while let [ty, units, ..] = *opts {
        let Some((opt, rest)) = opts.split_at_checked(usize::from(units) * 8) else {
            return Err(SkipReason::BadNdMessage.into());
        };
        if units == 0 {
            // Would loop forever, and RFC 4861 §4.6 forbids it.
            return Err(SkipReason::BadNdMessage.into());
        }
        if ty == wanted {
            // Ethernet link-layer options are exactly one unit: type, length, 6-byte MAC
            // (RFC 2464 §8).
            let [_, _, a0, a1, a2, a3, a4, a5] = *opt else {
                return Err(SkipReason::BadAddressLength.into());
            };
            found = found.or(Some(Mac([a0, a1, a2, a3, a4, a5])));
        }
        opts = rest;
    }
    // A single byte left over is an option header cut short.
    if !opts.is_empty() {
        return Err(SkipReason::BadNdMessage.into());
    }
    Ok(found)
}

/// The ICMPv6 checksum (RFC 4443 §2.3) of `message` under the IPv6 pseudo-header (RFC 8200 §8.1) of
/// `src` and `dst`: the one's complement of their one's-complement sum. Over a message whose checksum
/// field is zero it is the value to write there; over a received message it is 0 when the message is
/// intact. l2watch's one ICMPv6 checksum, for decoding and for building probes (pnet_packet's
/// `icmpv6::checksum` gives the same value slower, adding 16-bit words one by one: benches/pnet.rs).
#[inline]
pub fn icmpv6_checksum(src: &[u8; 16], dst: &[u8; 16], message: &[u8]) -> u16 {
    // The 32-bit length and next-header words of the pseudo-header are plain small integers.
    let sum =
        ones_sum(src) + ones_sum(dst) + message.len() as u64 + u64::from(IPPROTO_ICMPV6) + ones_sum(message);
    !fold(sum)
}

/// Sums `b` as big-endian 32-bit words (zero-padded) into a wide accumulator. Because
/// 2^16 ≡ 1 (mod 0xffff), folding this gives the same one's-complement sum as 16-bit words,
/// with half the additions and no carries to track.
#[inline]
fn ones_sum(b: &[u8]) -> u64 {
    let words = b.chunks_exact(4);
    let tail = match *words.remainder() {
        [a] => u32::from_be_bytes([a, 0, 0, 0]),
        [a, b] => u32::from_be_bytes([a, b, 0, 0]),
        [a, b, c] => u32::from_be_bytes([a, b, c, 0]),
        _ => 0,
    };
    let mut acc = u64::from(tail);
    for w in words {
        if let [a, b, c, d] = *w {
            acc += u64::from(u32::from_be_bytes([a, b, c, d]));
        }
    }
    acc
}

/// Folds a wide one's-complement accumulator down to 16 bits.
#[inline]
fn fold(mut s: u64) -> u16 {
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST_A: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x0a];
    const HOST_B: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x0b];
    const BCAST: [u8; 6] = [0xff; 6];

    fn meta() -> FrameMeta {
        FrameMeta { time: Timestamp(1_000), frame: 7, interface: 3, outgoing: false, vlan: None }
    }

    fn eth(dst: [u8; 6], src: [u8; 6], tags: &[(u16, u16)], ethertype: u16, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        for &(tpid, vid) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    fn arp_body(htype: u16, op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&htype.to_be_bytes());
        b.extend_from_slice(&0x0800u16.to_be_bytes());
        b.extend_from_slice(&[6, 4]);
        b.extend_from_slice(&op.to_be_bytes());
        b.extend_from_slice(&sha);
        b.extend_from_slice(&spa);
        b.extend_from_slice(&tha);
        b.extend_from_slice(&tpa);
        b
    }

    fn arp_frame(op: u16, spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
        eth(BCAST, HOST_A, &[], ETH_P_ARP, &arp_body(1, op, HOST_A, spa, [0; 6], tpa))
    }

    /// Straightforward 16-bit reference checksum, independent of the 32-bit fast path.
    fn reference_checksum(src: &[u8; 16], dst: &[u8; 16], icmp: &[u8]) -> u16 {
        let mut p = Vec::new();
        p.extend_from_slice(src);
        p.extend_from_slice(dst);
        p.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 58]);
        p.extend_from_slice(icmp);
        if p.len() % 2 == 1 {
            p.push(0);
        }
        let mut s: u32 = 0;
        for w in p.chunks(2) {
            s += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    struct Nd {
        ty: u8,
        code: u8,
        flags: u8,
        hop: u8,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        target: Ipv6Addr,
        options: Vec<u8>,
        corrupt_checksum: bool,
    }

    impl Nd {
        fn ns(src: Ipv6Addr, dst: Ipv6Addr, target: Ipv6Addr) -> Nd {
            Nd {
                ty: 135,
                code: 0,
                flags: 0,
                hop: 255,
                src,
                dst,
                target,
                options: Vec::new(),
                corrupt_checksum: false,
            }
        }

        fn na(src: Ipv6Addr, dst: Ipv6Addr, target: Ipv6Addr) -> Nd {
            Nd { ty: 136, ..Nd::ns(src, dst, target) }
        }

        fn lla(mut self, ty: u8, mac: [u8; 6]) -> Nd {
            self.options.extend_from_slice(&[ty, 1]);
            self.options.extend_from_slice(&mac);
            self
        }

        /// IPv6 header + ICMPv6 message, checksummed.
        fn ipv6(&self) -> Vec<u8> {
            let mut icmp = vec![self.ty, self.code, 0, 0, self.flags, 0, 0, 0];
            icmp.extend_from_slice(&self.target.octets());
            icmp.extend_from_slice(&self.options);
            let ck = reference_checksum(&self.src.octets(), &self.dst.octets(), &icmp);
            let ck = if self.corrupt_checksum { ck ^ 0x0100 } else { ck };
            icmp[2..4].copy_from_slice(&ck.to_be_bytes());
            let mut p = vec![0x60, 0, 0, 0];
            p.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
            p.extend_from_slice(&[58, self.hop]);
            p.extend_from_slice(&self.src.octets());
            p.extend_from_slice(&self.dst.octets());
            p.extend_from_slice(&icmp);
            p
        }

        fn frame(&self, dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
            eth(dst, src, &[], ETH_P_IPV6, &self.ipv6())
        }
    }

    fn ip6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn frame_of(d: Decoded) -> Observation {
        match d {
            Decoded::Frame(o) => o,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    #[test]
    fn skip_reason_tables_agree() {
        for (i, r) in SkipReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(!r.description().is_empty());
            assert!(r.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        let mut labels: Vec<_> = SkipReason::ALL.iter().map(|r| r.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), SkipReason::ALL.len());
        assert_eq!(SkipReason::Truncated.to_string(), "truncated");
    }

    #[test]
    fn link_types() {
        assert_eq!(LinkType::from_linktype(1), Some(LinkType::Ethernet));
        assert_eq!(LinkType::from_linktype(113), Some(LinkType::LinuxSll));
        assert_eq!(LinkType::from_linktype(276), Some(LinkType::LinuxSll2));
        assert_eq!(LinkType::from_linktype(242), Some(LinkType::Ipoib));
        assert_eq!(LinkType::from_linktype(127), None);
    }

    #[test]
    fn arp_kinds() {
        let cases = [
            (1, [10, 0, 0, 1], [10, 0, 0, 2], FrameKind::Request),
            (2, [10, 0, 0, 1], [10, 0, 0, 2], FrameKind::Reply),
            (1, [10, 0, 0, 1], [10, 0, 0, 1], FrameKind::Gratuitous),
            (2, [10, 0, 0, 1], [10, 0, 0, 1], FrameKind::Gratuitous),
            (1, [0, 0, 0, 0], [10, 0, 0, 1], FrameKind::Probe),
            (1, [0, 0, 0, 0], [0, 0, 0, 0], FrameKind::Probe),
        ];
        for (op, spa, tpa, kind) in cases {
            let o = frame_of(decode(LinkType::Ethernet, &arp_frame(op, spa, tpa), &meta()));
            assert_eq!(o.kind, kind, "op {op} {spa:?} -> {tpa:?}");
            assert_eq!(o.sender_ip, v4(spa));
            assert_eq!(o.target_ip, v4(tpa));
            assert_eq!(o.sender_mac, Mac(HOST_A));
            assert_eq!(o.target_mac, Mac::ZERO);
            assert_eq!(o.eth_src, Mac(HOST_A));
            assert_eq!(o.eth_dst, Mac::BROADCAST);
            assert_eq!((o.time, o.frame, o.interface, o.outgoing), (Timestamp(1_000), 7, 3, false));
            assert!(o.vlans.is_empty());
        }
    }

    #[test]
    fn arp_padding_is_ignored_and_sender_comes_from_arp() {
        // Ethernet source differs from the ARP sender; padded to 60 bytes with junk.
        let mut f =
            eth(BCAST, HOST_B, &[], ETH_P_ARP, &arp_body(1, 1, HOST_A, [10, 0, 0, 1], [0; 6], [10, 0, 0, 2]));
        f.resize(60, 0xee);
        let o = frame_of(decode(LinkType::Ethernet, &f, &meta()));
        assert_eq!(o.eth_src, Mac(HOST_B));
        assert_eq!(o.sender_mac, Mac(HOST_A));
        assert_eq!(o.kind, FrameKind::Request);
    }

    #[test]
    fn arp_rejections() {
        let skip = |f: &[u8]| decode(LinkType::Ethernet, f, &meta());
        // RARP request.
        let rarp = eth(BCAST, HOST_A, &[], ETH_P_ARP, &arp_body(1, 3, HOST_A, [0; 4], HOST_A, [0; 4]));
        assert_eq!(skip(&rarp), Decoded::Skipped(SkipReason::UnsupportedOpcode));
        for op in [0, 4, 8, 9, 0xaaaa] {
            let f = eth(BCAST, HOST_A, &[], ETH_P_ARP, &arp_body(1, op, HOST_A, [1; 4], [0; 6], [2; 4]));
            assert_eq!(skip(&f), Decoded::Skipped(SkipReason::UnsupportedOpcode), "op {op}");
        }
        // IPoIB: hardware type 32 with 20-byte hardware addresses.
        let mut ib = vec![0, 32, 0x08, 0x00, 20, 4, 0, 1];
        ib.extend_from_slice(&[0x11; 20]);
        ib.extend_from_slice(&[192, 168, 56, 10]);
        ib.extend_from_slice(&[0; 20]);
        ib.extend_from_slice(&[192, 168, 56, 24]);
        let f = eth(BCAST, HOST_A, &[], ETH_P_ARP, &ib);
        assert_eq!(skip(&f), Decoded::Skipped(SkipReason::UnsupportedHardware));
        // IPv6-over-ARP nonsense: protocol type not IPv4.
        let mut b = arp_body(1, 1, HOST_A, [1; 4], [0; 6], [2; 4]);
        b[2..4].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(
            skip(&eth(BCAST, HOST_A, &[], ETH_P_ARP, &b)),
            Decoded::Skipped(SkipReason::UnsupportedProtocol)
        );
        let mut b = arp_body(1, 1, HOST_A, [1; 4], [0; 6], [2; 4]);
        b[4] = 8;
        assert_eq!(
            skip(&eth(BCAST, HOST_A, &[], ETH_P_ARP, &b)),
            Decoded::Skipped(SkipReason::BadAddressLength)
        );
        // Group or zero sender MACs.
        for sha in [BCAST, [0; 6], [0x01, 0x00, 0x5e, 0, 0, 1]] {
            let f = eth(BCAST, HOST_A, &[], ETH_P_ARP, &arp_body(1, 2, sha, [1; 4], [0; 6], [2; 4]));
            assert_eq!(skip(&f), Decoded::Skipped(SkipReason::BadSenderMac));
        }
        // Replies and announcements cannot claim 0.0.0.0, multicast or broadcast.
        for (op, spa, tpa) in [
            (2, [0, 0, 0, 0], [10, 0, 0, 1]),
            (2, [0, 0, 0, 0], [0, 0, 0, 0]),
            (1, [224, 0, 0, 1], [10, 0, 0, 1]),
            (2, [255, 255, 255, 255], [10, 0, 0, 1]),
        ] {
            let f = arp_frame(op, spa, tpa);
            assert_eq!(skip(&f), Decoded::Skipped(SkipReason::BadSenderIp), "op {op} {spa:?}");
        }
    }

    #[test]
    fn stacked_vlans() {
        let body = arp_body(1, 1, HOST_A, [10, 0, 0, 1], [0; 6], [10, 0, 0, 2]);
        type Case<'a> = (&'a [(u16, u16)], &'a [u16]);
        let cases: [Case; 4] = [
            (&[(ETH_P_8021Q, 6)], &[6]),
            (&[(ETH_P_8021AD, 0x2000 | 200), (ETH_P_8021Q, 2001)], &[200, 2001]),
            (&[(ETH_P_8021Q, 1), (ETH_P_8021Q, 10), (ETH_P_8021Q, 100)], &[1, 10, 100]),
            (&[(ETH_P_QINQ_9100, 7), (ETH_P_8021AD, 8), (ETH_P_8021Q, 0xe009)], &[7, 8, 9]),
        ];
        for (tags, want) in cases {
            let f = eth(BCAST, HOST_A, tags, ETH_P_ARP, &body);
            let o = frame_of(decode(LinkType::Ethernet, &f, &meta()));
            assert_eq!(o.vlans.as_slice(), want);
            // The kernel-stripped tag goes first.
            let m = FrameMeta { vlan: Some(0x3000 | 42), ..meta() };
            let o = frame_of(decode(LinkType::Ethernet, &f, &m));
            let mut all = vec![42];
            all.extend_from_slice(want);
            assert_eq!(o.vlans.as_slice(), &all[..]);
        }
        let m = FrameMeta { vlan: Some(5), ..meta() };
        let o = frame_of(decode(LinkType::Ethernet, &arp_frame(1, [1; 4], [2; 4]), &m));
        assert_eq!(o.vlans.as_slice(), &[5]);
    }

    #[test]
    fn too_many_vlans_only_for_arp_nd() {
        let five = [(ETH_P_8021Q, 1), (ETH_P_8021Q, 2), (ETH_P_8021Q, 3), (ETH_P_8021Q, 4), (ETH_P_8021Q, 5)];
        let body = arp_body(1, 1, HOST_A, [10, 0, 0, 1], [0; 6], [10, 0, 0, 2]);
        let f = eth(BCAST, HOST_A, &five, ETH_P_ARP, &body);
        assert_eq!(decode(LinkType::Ethernet, &f, &meta()), Decoded::Skipped(SkipReason::TooManyVlans));
        let f = eth(BCAST, HOST_A, &five[..4], ETH_P_ARP, &body);
        assert_eq!(frame_of(decode(LinkType::Ethernet, &f, &meta())).vlans.as_slice(), &[1, 2, 3, 4]);
        // Four in the bytes plus one from the kernel is five.
        let m = FrameMeta { vlan: Some(9), ..meta() };
        assert_eq!(decode(LinkType::Ethernet, &f, &m), Decoded::Skipped(SkipReason::TooManyVlans));
        let f = eth(BCAST, HOST_A, &five, 0x0800, &[0x45; 40]);
        assert_eq!(decode(LinkType::Ethernet, &f, &meta()), Decoded::Ignored);
    }

    #[test]
    fn llc_snap_arp() {
        let mut body = SNAP_ARP.to_vec();
        body.extend_from_slice(&arp_body(6, 1, HOST_A, [10, 0, 0, 1], [0; 6], [10, 0, 0, 2]));
        let f = eth(BCAST, HOST_A, &[], body.len() as u16, &body);
        let o = frame_of(decode(LinkType::Ethernet, &f, &meta()));
        assert_eq!(o.kind, FrameKind::Request);
        assert_eq!(o.sender_ip, v4([10, 0, 0, 1]));
        // Truncated inside the SNAP header.
        let f = eth(BCAST, HOST_A, &[], 38, &SNAP_ARP[..5]);
        assert_eq!(decode(LinkType::Ethernet, &f, &meta()), Decoded::Skipped(SkipReason::Truncated));
        // STP (LLC 42 42 03) and SNAP IPv4 are not ARP.
        let stp = eth([0x01, 0x80, 0xc2, 0, 0, 0], HOST_A, &[], 38, &[0x42, 0x42, 0x03, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode(LinkType::Ethernet, &stp, &meta()), Decoded::Ignored);
        let stp_short = eth([0x01, 0x80, 0xc2, 0, 0, 0], HOST_A, &[], 38, &[0x42]);
        assert_eq!(decode(LinkType::Ethernet, &stp_short, &meta()), Decoded::Ignored);
        let snap_ip = eth(BCAST, HOST_A, &[], 40, &[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00, 0x45]);
        assert_eq!(decode(LinkType::Ethernet, &snap_ip, &meta()), Decoded::Ignored);
        // Cooked: LLC is announced by the ETH_P_802_2 pseudo-protocol, not a length.
        let c = sll1(0, 1, HOST_A, ETH_P_802_2, &body);
        assert_eq!(frame_of(decode(LinkType::LinuxSll, &c, &meta())).kind, FrameKind::Request);
        let c = sll1(0, 1, HOST_A, 60, &body);
        assert_eq!(decode(LinkType::LinuxSll, &c, &meta()), Decoded::Ignored);
    }

    fn sll1(pkttype: u16, hatype: u16, addr: [u8; 6], proto: u16, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&pkttype.to_be_bytes());
        f.extend_from_slice(&hatype.to_be_bytes());
        f.extend_from_slice(&6u16.to_be_bytes());
        f.extend_from_slice(&addr);
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&proto.to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    fn sll2(pkttype: u8, hatype: u16, addr: [u8; 6], proto: u16, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&proto.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&2u32.to_be_bytes());
        f.extend_from_slice(&hatype.to_be_bytes());
        f.extend_from_slice(&[pkttype, 6]);
        f.extend_from_slice(&addr);
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn cooked_v1_and_v2() {
        let body = arp_body(1, 1, HOST_A, [10, 0, 0, 1], [0; 6], [10, 0, 0, 2]);
        // Broadcast received.
        let o = frame_of(decode(LinkType::LinuxSll, &sll1(1, 1, HOST_B, ETH_P_ARP, &body), &meta()));
        assert_eq!((o.eth_src, o.eth_dst, o.outgoing), (Mac(HOST_B), Mac::BROADCAST, false));
        assert_eq!(o.sender_mac, Mac(HOST_A));
        // Outgoing unicast: destination unknown.
        let o = frame_of(decode(LinkType::LinuxSll, &sll1(4, 1, HOST_A, ETH_P_ARP, &body), &meta()));
        assert_eq!((o.eth_src, o.eth_dst, o.outgoing), (Mac(HOST_A), Mac::ZERO, true));
        let o = frame_of(decode(LinkType::LinuxSll2, &sll2(4, 1, HOST_A, ETH_P_ARP, &body), &meta()));
        assert_eq!((o.eth_src, o.eth_dst, o.outgoing), (Mac(HOST_A), Mac::ZERO, true));
        let o = frame_of(decode(LinkType::LinuxSll2, &sll2(1, 1, HOST_B, ETH_P_ARP, &body), &meta()));
        assert_eq!((o.eth_src, o.eth_dst, o.outgoing), (Mac(HOST_B), Mac::BROADCAST, false));
        // meta.outgoing is OR'ed in.
        let m = FrameMeta { outgoing: true, ..meta() };
        let o = frame_of(decode(LinkType::LinuxSll2, &sll2(0, 1, HOST_B, ETH_P_ARP, &body), &m));
        assert!(o.outgoing);
        // A non-Ethernet device gives no source MAC.
        let o = frame_of(decode(LinkType::LinuxSll, &sll1(0, 772, HOST_B, ETH_P_ARP, &body), &meta()));
        assert_eq!(o.eth_src, Mac::ZERO);
        // A VLAN tag re-inserted by libpcap after the cooked header.
        let mut tagged = 0x0064u16.to_be_bytes().to_vec();
        tagged.extend_from_slice(&ETH_P_ARP.to_be_bytes());
        tagged.extend_from_slice(&body);
        let o = frame_of(decode(LinkType::LinuxSll, &sll1(0, 1, HOST_B, ETH_P_8021Q, &tagged), &meta()));
        assert_eq!(o.vlans.as_slice(), &[100]);
        let o = frame_of(decode(LinkType::LinuxSll2, &sll2(0, 1, HOST_B, ETH_P_8021Q, &tagged), &meta()));
        assert_eq!(o.vlans.as_slice(), &[100]);
        // IPoIB ARP as a cooked capture would show it.
        let mut ib = vec![0, 32, 0x08, 0x00, 20, 4, 0, 1];
        ib.extend_from_slice(&[0; 48]);
        let f = sll1(1, 32, [0; 6], ETH_P_ARP, &ib);
        assert_eq!(
            decode(LinkType::LinuxSll, &f, &meta()),
            Decoded::Skipped(SkipReason::UnsupportedHardware)
        );
    }

    #[test]
    fn nd_kinds() {
        let a = ip6("fe80::5054:ff:fe00:a");
        let b = ip6("fe80::5054:ff:fe00:b");
        let snm_b = ip6("ff02::1:ff00:b");

        // NS with a source link-layer option that differs from the Ethernet source.
        let f = Nd::ns(a, snm_b, b).lla(1, HOST_B).frame([0x33, 0x33, 0xff, 0, 0, 0x0b], HOST_A);
        let o = frame_of(decode(LinkType::Ethernet, &f, &meta()));
        assert_eq!(o.kind, FrameKind::NdNs);
        assert_eq!((o.sender_ip, o.sender_mac), (IpAddr::V6(a), Mac(HOST_B)));
        assert_eq!((o.target_ip, o.target_mac), (IpAddr::V6(b), Mac::ZERO));
        // Without the option the Ethernet source stands in.
        let f = Nd::ns(a, snm_b, b).frame([0x33, 0x33, 0xff, 0, 0, 0x0b], HOST_A);
        assert_eq!(frame_of(decode(LinkType::Ethernet, &f, &meta())).sender_mac, Mac(HOST_A));

        // DAD.
        let f = Nd::ns(Ipv6Addr::UNSPECIFIED, snm_b, b).frame([0x33, 0x33, 0xff, 0, 0, 0x0b], HOST_B);
        let o = frame_of(decode(LinkType::Ethernet, &f, &meta()));
        assert_eq!(o.kind, FrameKind::NdDad);
        assert_eq!((o.sender_ip, o.sender_mac), (IpAddr::V6(Ipv6Addr::UNSPECIFIED), Mac(HOST_B)));
        assert_eq!((o.target_ip, o.target_mac), (IpAddr::V6(b), Mac::ZERO));

        // Solicited NA with a target link-layer option, padded.
        let mut na = Nd::na(b, a, b);
        na.flags = 0x60;
        let mut f = na.lla(2, HOST_B).frame(HOST_A, HOST_B);
        f.extend_from_slice(&[0xde, 0xad]);
        let o = frame_of(decode(LinkType::Ethernet, &f, &meta()));
        assert_eq!(o.kind, FrameKind::NdNa);
        assert_eq!((o.sender_ip, o.sender_mac), (IpAddr::V6(b), Mac(HOST_B)));
        assert_eq!((o.target_ip, o.target_mac), (IpAddr::V6(a), Mac(HOST_A)));
        // Unsolicited NA to all-nodes without option, in a VLAN; an SLLA option is not used.
        let all = ip6("ff02::1");
        let na = Nd::na(b, all, b).lla(1, [0x02, 0, 0, 0, 0, 9]);
        let f = eth([0x33, 0x33, 0, 0, 0, 1], HOST_B, &[(ETH_P_8021Q, 30)], ETH_P_IPV6, &na.ipv6());
        let o = frame_of(decode(LinkType::Ethernet, &f, &meta()));
        assert_eq!((o.sender_mac, o.target_ip), (Mac(HOST_B), IpAddr::V6(all)));
        assert_eq!(o.vlans.as_slice(), &[30]);

        // Other ICMPv6 (RS 133, RA 134, echo 128) and other payloads are ignored.
        for ty in [128, 133, 134, 137, 143] {
            let f = Nd { ty, ..Nd::ns(a, snm_b, b) }.frame(BCAST, HOST_A);
            assert_eq!(decode(LinkType::Ethernet, &f, &meta()), Decoded::Ignored, "type {ty}");
        }
        let mut hbh = Nd::ns(a, snm_b, b).ipv6();
        hbh[6] = 0; // hop-by-hop header first, as MLD does
        assert_eq!(
            decode(LinkType::Ethernet, &eth(BCAST, HOST_A, &[], ETH_P_IPV6, &hbh), &meta()),
            Decoded::Ignored
        );
    }

    #[test]
    fn nd_rejections() {
        let a = ip6("fe80::5054:ff:fe00:a");
        let b = ip6("fe80::5054:ff:fe00:b");
        let snm_b = ip6("ff02::1:ff00:b");
        let dec = |nd: &Nd| decode(LinkType::Ethernet, &nd.frame(HOST_B, HOST_A), &meta());
        let skipped = |r| Decoded::Skipped(r);

        assert_eq!(dec(&Nd { hop: 64, ..Nd::ns(a, snm_b, b) }), skipped(SkipReason::BadHopLimit));
        assert_eq!(dec(&Nd { hop: 254, ..Nd::na(b, a, b) }), skipped(SkipReason::BadHopLimit));
        assert_eq!(
            dec(&Nd { corrupt_checksum: true, ..Nd::ns(a, snm_b, b) }),
            skipped(SkipReason::BadChecksum)
        );
        assert_eq!(dec(&Nd { corrupt_checksum: true, ..Nd::na(b, a, b) }), skipped(SkipReason::BadChecksum));
        assert_eq!(dec(&Nd { code: 1, ..Nd::ns(a, snm_b, b) }), skipped(SkipReason::BadNdMessage));
        // Multicast or unspecified target.
        assert_eq!(dec(&Nd::ns(a, snm_b, snm_b)), skipped(SkipReason::BadNdMessage));
        assert_eq!(dec(&Nd::na(b, a, Ipv6Addr::UNSPECIFIED)), skipped(SkipReason::BadNdMessage));
        // DAD not to a solicited-node group, or with a source link-layer option.
        assert_eq!(dec(&Nd::ns(Ipv6Addr::UNSPECIFIED, b, b)), skipped(SkipReason::BadNdMessage));
        assert_eq!(
            dec(&Nd::ns(Ipv6Addr::UNSPECIFIED, snm_b, b).lla(1, HOST_A)),
            skipped(SkipReason::BadNdMessage)
        );
        // Solicited advertisement to a multicast group.
        assert_eq!(
            dec(&Nd { flags: 0x40, ..Nd::na(b, ip6("ff02::1"), b) }),
            skipped(SkipReason::BadNdMessage)
        );
        // Options: zero length, running past the end, a stray byte.
        assert_eq!(
            dec(&Nd { options: vec![1, 0, 0, 0, 0, 0, 0, 0], ..Nd::ns(a, snm_b, b) }),
            skipped(SkipReason::BadNdMessage)
        );
        assert_eq!(
            dec(&Nd { options: vec![14, 2, 0, 0, 0, 0, 0, 0], ..Nd::ns(a, snm_b, b) }),
            skipped(SkipReason::BadNdMessage)
        );
        assert_eq!(dec(&Nd { options: vec![14], ..Nd::ns(a, snm_b, b) }), skipped(SkipReason::BadNdMessage));
        // Unknown options of valid length are skipped over.
        let nonce = Nd { options: vec![14, 1, 1, 2, 3, 4, 5, 6], ..Nd::ns(a, snm_b, b) }.lla(1, HOST_B);
        assert_eq!(frame_of(dec(&nonce)).sender_mac, Mac(HOST_B));
        // An IPoIB-sized (3 unit) link-layer option.
        assert_eq!(
            dec(&Nd { options: [vec![1, 3], vec![0x11; 22]].concat(), ..Nd::ns(a, snm_b, b) }),
            skipped(SkipReason::BadAddressLength)
        );
        // Group or zero link-layer address, or no usable address at all.
        assert_eq!(dec(&Nd::na(b, a, b).lla(2, BCAST)), skipped(SkipReason::BadSenderMac));
        assert_eq!(dec(&Nd::ns(a, snm_b, b).lla(1, [0; 6])), skipped(SkipReason::BadSenderMac));
        let f = sll1(0, 772, [0; 6], ETH_P_IPV6, &Nd::ns(a, snm_b, b).ipv6());
        assert_eq!(decode(LinkType::LinuxSll, &f, &meta()), skipped(SkipReason::BadSenderMac));
        // Multicast source.
        assert_eq!(dec(&Nd::ns(ip6("ff02::1"), snm_b, b)), skipped(SkipReason::BadSenderIp));
        // Payload length too small for ND.
        let mut p = Nd::ns(a, snm_b, b).ipv6();
        p[4..6].copy_from_slice(&8u16.to_be_bytes());
        assert_eq!(
            decode(LinkType::Ethernet, &eth(HOST_B, HOST_A, &[], ETH_P_IPV6, &p), &meta()),
            skipped(SkipReason::BadNdMessage)
        );
    }

    #[test]
    fn checksum_matches_reference_at_every_length() {
        let src = [0x11; 16];
        let dst = [0xfe; 16];
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut msg = Vec::new();
        for len in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            msg.push(x as u8);
            let mut m = msg.clone();
            if m.len() >= 4 {
                m[2] = 0;
                m[3] = 0;
                let ck = reference_checksum(&src, &dst, &m);
                m[2..4].copy_from_slice(&ck.to_be_bytes());
                assert_eq!(icmpv6_checksum(&src, &dst, &m), 0, "length {}", len + 1);
                m[len / 2] ^= 0x10;
                assert_ne!(icmpv6_checksum(&src, &dst, &m), 0, "flip at length {}", len + 1);
            }
        }
    }

    #[test]
    fn every_truncation_is_truncated() {
        let a = ip6("fe80::5054:ff:fe00:a");
        let b = ip6("fe80::5054:ff:fe00:b");
        let arp = arp_frame(1, [10, 0, 0, 1], [10, 0, 0, 2]);
        let tagged_arp = eth(BCAST, HOST_A, &[(ETH_P_8021AD, 1), (ETH_P_8021Q, 2)], ETH_P_ARP, &arp[14..]);
        let na = Nd::na(b, a, b).lla(2, HOST_B).frame(HOST_A, HOST_B);
        let mut snap = SNAP_ARP.to_vec();
        snap.extend_from_slice(&arp[14..]);
        let snap = eth(BCAST, HOST_A, &[], snap.len() as u16, &snap);
        let cooked = sll2(0, 1, HOST_A, ETH_P_IPV6, &na[14..]);
        let cases = [
            (LinkType::Ethernet, arp),
            (LinkType::Ethernet, tagged_arp),
            (LinkType::Ethernet, na),
            (LinkType::Ethernet, snap),
            (LinkType::LinuxSll2, cooked),
        ];
        for (link, f) in cases {
            assert!(matches!(decode(link, &f, &meta()), Decoded::Frame(_)));
            for n in 0..f.len() {
                assert_eq!(
                    decode(link, &f[..n], &meta()),
                    Decoded::Skipped(SkipReason::Truncated),
                    "{link:?} cut to {n} of {}",
                    f.len()
                );
            }
        }
    }

    #[test]
    fn other_traffic_is_ignored() {
        // IPv4 TCP SYN.
        let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        ip.extend_from_slice(&[
            0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
        ]);
        let f = eth(HOST_B, HOST_A, &[], 0x0800, &ip);
        assert_eq!(decode(LinkType::Ethernet, &f, &meta()), Decoded::Ignored);
        let f = eth(HOST_B, HOST_A, &[(ETH_P_8021Q, 5)], 0x0800, &ip);
        assert_eq!(decode(LinkType::Ethernet, &f, &meta()), Decoded::Ignored);
        // IPv6 TCP, and an IPv6 frame with a bogus version.
        let mut p6 = Nd::ns(ip6("2001:db8::1"), ip6("2001:db8::2"), ip6("2001:db8::3")).ipv6();
        p6[6] = 6;
        assert_eq!(
            decode(LinkType::Ethernet, &eth(HOST_B, HOST_A, &[], ETH_P_IPV6, &p6), &meta()),
            Decoded::Ignored
        );
        p6[6] = 58;
        p6[0] = 0x40;
        assert_eq!(
            decode(LinkType::Ethernet, &eth(HOST_B, HOST_A, &[], ETH_P_IPV6, &p6), &meta()),
            Decoded::Ignored
        );
        // LLDP, and ethertype values between 1500 and 0x0600.
        let f = eth([0x01, 0x80, 0xc2, 0, 0, 0x0e], HOST_A, &[], 0x88cc, &[0; 40]);
        assert_eq!(decode(LinkType::Ethernet, &f, &meta()), Decoded::Ignored);
        let f = eth(BCAST, HOST_A, &[], 1501, &SNAP_ARP);
        assert_eq!(decode(LinkType::Ethernet, &f, &meta()), Decoded::Ignored);
        assert_eq!(decode(LinkType::LinuxSll2, &sll2(0, 1, HOST_A, 0x0800, &ip), &meta()), Decoded::Ignored);
    }

    #[test]
    fn fuzz_never_panics() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        const TYPES: [u16; 8] =
            [ETH_P_ARP, ETH_P_IPV6, ETH_P_8021Q, ETH_P_8021AD, ETH_P_QINQ_9100, ETH_P_802_2, 40, 0x0800];
        let mut buf = [0u8; 120];
        let mut frames = 0;
        for i in 0..200_000u32 {
            let len = (next() % 120) as usize;
            for chunk in buf.chunks_mut(8) {
                let r = next().to_le_bytes();
                chunk.copy_from_slice(&r[..chunk.len()]);
            }
            let r = next();
            // Plausible protocol numbers where each link type and the first VLAN tag keep them.
            let t = TYPES[(r % 8) as usize].to_be_bytes();
            let t2 = TYPES[((r >> 8) % 8) as usize].to_be_bytes();
            let link = [LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::Ipoib]
                [(i % 4) as usize];
            let (at, tag) = match link {
                LinkType::Ethernet => (12, 16),
                LinkType::LinuxSll => (14, 18),
                LinkType::LinuxSll2 => (0, 22),
                LinkType::Ipoib => (40, 44),
            };
            buf[at..at + 2].copy_from_slice(&t);
            buf[tag..tag + 2].copy_from_slice(&t2);
            // Make ARP and ND headers mostly sane so the deeper parsers are reached too, either
            // right after the link header or after the first VLAN tag.
            let direct = at + 2 + if link == LinkType::LinuxSll2 { 18 } else { 0 };
            let body = if r & 0x80000 != 0 { direct + 4 } else { direct };
            if r & 0x10000 != 0 {
                let op = 1 + (r >> 24) as u8 % 2;
                buf[body..body + 8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, op]);
                buf[body + 8] &= 0xfe;
            } else if r & 0x20000 != 0 {
                buf[body] = 0x60;
                buf[body + 4] = 0;
                buf[body + 5] = (r >> 32) as u8 % 64;
                buf[body + 6] = 58;
                buf[body + 7] = 255;
                buf[body + 40] = 135 + (r >> 20) as u8 % 2;
            }
            let m = FrameMeta { vlan: (r & 0x40000 != 0).then_some(1), ..meta() };
            if let Decoded::Frame(_) = decode(link, &buf[..len], &m) {
                frames += 1;
            }
        }
        // The generator really exercises the ARP path (ND needs a lucky checksum).
        assert!(frames > 0);
    }

    /// The shared capture directory, found by walking up from the crate so the test works
    /// wherever the crate sits in the tree.
    fn testdata() -> std::path::PathBuf {
        let mut dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        loop {
            let candidate = dir.join("shared/testdata/pcap");
            if candidate.is_dir() {
                return candidate;
            }
            dir = dir.parent().expect("no shared/testdata/pcap directory above CARGO_MANIFEST_DIR");
        }
    }

    /// Every frame of a capture as (LINKTYPE_ number, interface, bytes).
    fn read_capture(name: &str) -> Vec<(u32, u16, Vec<u8>)> {
        let path = testdata().join(name);
        let mut out = Vec::new();
        crate::capture::replay::read_capture(&path, |f| {
            out.push((f.link_type, f.interface, f.data.to_vec()))
        })
        .unwrap_or_else(|e| panic!("{e}"));
        out
    }

    fn decode_capture(name: &str) -> Vec<Decoded> {
        read_capture(name)
            .into_iter()
            .enumerate()
            .map(|(i, (link, interface, data))| {
                let link = LinkType::from_linktype(link).expect("supported link type");
                let m = FrameMeta { frame: i as u64 + 1, interface, ..FrameMeta::default() };
                decode(link, &data, &m)
            })
            .collect()
    }

    fn frames(d: &[Decoded]) -> Vec<Observation> {
        d.iter()
            .filter_map(|d| match d {
                Decoded::Frame(o) => Some(*o),
                _ => None,
            })
            .collect()
    }

    fn count(d: &[Decoded], kind: FrameKind) -> usize {
        frames(d).iter().filter(|o| o.kind == kind).count()
    }

    fn skipped(d: &[Decoded]) -> usize {
        d.iter().filter(|d| matches!(d, Decoded::Skipped(_))).count()
    }

    fn mac(s: &str) -> Mac {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn capture_plain_arp() {
        let d = decode_capture("chrissanders_arp_resolution.pcapng");
        let f = frames(&d);
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].kind, f[0].sender_ip, f[0].target_ip),
            (FrameKind::Request, ip("192.168.0.114"), ip("192.168.0.1"))
        );
        assert_eq!(
            (f[1].kind, f[1].sender_mac, f[1].sender_ip),
            (FrameKind::Reply, mac("00:13:46:0b:22:ba"), ip("192.168.0.1"))
        );

        let d = decode_capture("chrissanders_arppoison.pcapng");
        let poison = frames(&d).into_iter().find(|o| o.frame == 56).expect("frame 56");
        assert_eq!(
            (poison.kind, poison.sender_ip, poison.sender_mac),
            (FrameKind::Reply, ip("172.16.0.1"), mac("00:25:b3:bf:91:ee"))
        );
        assert_eq!(skipped(&d), 0);

        let d = decode_capture("ndpi_nest_log_sink.pcap");
        assert_eq!(count(&d, FrameKind::Request), 113);
        let replies: Vec<_> = frames(&d).into_iter().filter(|o| o.kind == FrameKind::Reply).collect();
        assert_eq!(replies.len(), 113);
        assert!(replies.iter().all(|o| o.sender_mac == mac("18:b4:30:26:34:40")));

        let d = decode_capture("wireshark_arp-storm.pcap");
        let f = frames(&d);
        assert_eq!(f.len(), 622);
        assert!(f.iter().all(|o| o.kind == FrameKind::Request && o.sender_mac == mac("00:07:0d:af:f4:54")));
        let mut senders: Vec<_> = f.iter().map(|o| o.sender_ip).collect();
        senders.sort_unstable();
        senders.dedup();
        assert_eq!(senders.len(), 9);

        let d = decode_capture("tcpdump_eapon1.pcap");
        let g: Vec<_> = frames(&d).into_iter().filter(|o| o.kind == FrameKind::Gratuitous).collect();
        assert_eq!(g.len(), 3);
        assert!(
            g.iter().all(|o| o.sender_ip == ip("169.254.67.194") && o.sender_mac == mac("00:04:23:57:a5:7a"))
        );
    }

    #[test]
    fn capture_rfc5227_join() {
        let d = decode_capture("ndpi_iphone.pcap");
        let f = frames(&d);
        let at = |kind| f.iter().filter(|o| o.kind == kind).map(|o| o.frame).collect::<Vec<_>>();
        assert_eq!(at(FrameKind::Probe), [37, 38, 40]);
        assert_eq!(at(FrameKind::Gratuitous), [41, 43, 44]);
        for o in f.iter().filter(|o| matches!(o.kind, FrameKind::Probe | FrameKind::Gratuitous)) {
            assert_eq!(o.sender_mac, mac("c4:61:8b:35:82:a9"));
            assert_eq!(o.target_ip, ip("192.168.2.17"));
        }
        assert_eq!(count(&d, FrameKind::NdDad), 1);
        assert_eq!(skipped(&d), 0);
    }

    #[test]
    fn capture_vlans() {
        let f = frames(&decode_capture("suricata_detect-arp-03-vlan.pcap"));
        let vlans: Vec<_> = f.iter().map(|o| o.vlans.as_slice().to_vec()).collect();
        assert_eq!(vlans, [vec![6], vec![1, 10], vec![1, 10, 100]]);
        assert!(f.iter().all(|o| o.kind == FrameKind::Request && o.eth_src != o.sender_mac));

        let f = frames(&decode_capture("tcpdump_802.1ad_QinQ.pcap"));
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|o| o.vlans.as_slice() == [200, 2001]));
        assert_eq!((f[0].kind, f[0].target_ip), (FrameKind::Request, ip("172.21.79.100")));
        assert_eq!(
            (f[1].kind, f[1].sender_ip, f[1].sender_mac),
            (FrameKind::Reply, ip("172.21.79.100"), mac("00:80:ea:81:88:63"))
        );
    }

    #[test]
    fn capture_cooked_and_snap() {
        let d = decode_capture("zeek_linuxsll-arp.pcap");
        let f = frames(&d);
        assert_eq!(f.len(), 12);
        let req: Vec<_> = f.iter().filter(|o| o.kind == FrameKind::Request).collect();
        // INDEX.md says 10 from 10.1.10.100; the bytes say 9, plus one from 192.168.22.1.
        assert_eq!(req.len(), 10);
        let ask = |s, t| req.iter().filter(|o| o.sender_ip == ip(s) && o.target_ip == ip(t)).count();
        assert_eq!(ask("10.1.10.100", "10.1.10.1"), 9);
        assert_eq!(ask("192.168.22.1", "192.168.22.160"), 1);
        assert!(f.iter().all(|o| o.eth_dst == Mac::BROADCAST && o.eth_src == o.sender_mac));
        let g: Vec<_> = f.iter().filter(|o| o.kind == FrameKind::Gratuitous).collect();
        assert_eq!(g.len(), 2);
        assert!(g.iter().all(|o| o.sender_ip == ip("192.168.22.81")));
        assert!(f.iter().all(|o| !o.eth_src.is_zero()));

        // The RARP request travels as ethertype 0x8035, not ARP: ignored like the ICMP around it.
        let d = decode_capture("zeek_linux_dlt_sll2.pcap");
        let f = frames(&d);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].kind, f[0].sender_ip, f[0].target_ip),
            (FrameKind::Request, ip("192.0.2.1"), ip("192.0.2.2"))
        );
        assert_eq!(skipped(&d), 0);

        let d = decode_capture("zeek_snap-arp.pcapng");
        let f = frames(&d);
        assert_eq!(f.len(), d.len());
        assert_eq!(f.iter().filter(|o| o.interface == 1).count(), f.len() / 2);
        assert_eq!(count(&d, FrameKind::Request), 2);
        assert_eq!(count(&d, FrameKind::Reply), 2);
    }

    #[test]
    fn capture_neighbour_discovery() {
        let d = decode_capture("zeek_communityid_icmp6.pcap");
        assert_eq!((count(&d, FrameKind::NdNs), count(&d, FrameKind::NdNa)), (9, 9));
        assert_eq!(skipped(&d), 0);

        let d = decode_capture("zeek_icmp6-nd-options.pcap");
        assert_eq!(count(&d, FrameKind::NdDad), 5);
        let na: Vec<_> = frames(&d).into_iter().filter(|o| o.kind == FrameKind::NdNa).collect();
        assert_eq!(na.len(), 2);
        assert!(na.iter().all(|o| o.sender_mac == mac("c2:00:54:f5:00:00") && o.target_ip == ip("ff02::1")));
        assert_eq!(frames(&d).len() + skipped(&d), 7, "RA, RS and MLD are ignored");
        assert_eq!(skipped(&d), 0);

        // Every real ND frame fails once any byte the checksum covers is flipped.
        let raw = read_capture("zeek_communityid_icmp6.pcap");
        let mut flipped = 0;
        for (_, _, data) in raw {
            if !matches!(decode(LinkType::Ethernet, &data, &meta()), Decoded::Frame(_)) {
                continue;
            }
            for i in 22..data.len() {
                let mut bad = data.clone();
                bad[i] ^= 0x04;
                let d = decode(LinkType::Ethernet, &bad, &meta());
                assert!(!matches!(d, Decoded::Frame(_)), "flip at {i} accepted");
                flipped += 1;
            }
        }
        assert!(flipped > 0);
    }

    #[test]
    fn capture_fuzzed_and_foreign() {
        let d = decode_capture("tcpdump_arp-oobr.pcap");
        assert_eq!(d.len(), 2282);
        assert!(!d.contains(&Decoded::Ignored), "every frame is ARP");
        for r in [
            SkipReason::UnsupportedHardware,
            SkipReason::UnsupportedProtocol,
            SkipReason::BadAddressLength,
            SkipReason::UnsupportedOpcode,
            SkipReason::BadSenderMac,
        ] {
            assert!(d.contains(&Decoded::Skipped(r)), "{r}");
        }

        // IPoIB (LINKTYPE 242): its ARP has 20-byte hardware addresses and is skipped for its
        // hardware type, never misread; its IPv4 is ignored.
        let raw = read_capture("tcpdump_ipoib.pcap");
        let mut arps = 0;
        for (link, _, data) in raw {
            let link = LinkType::from_linktype(link).unwrap();
            assert_eq!(link, LinkType::Ipoib);
            let d = decode(link, &data, &meta());
            if data.get(40..42) == Some(&[0x08, 0x06][..]) {
                assert_eq!(d, Decoded::Skipped(SkipReason::UnsupportedHardware));
                arps += 1;
            } else {
                assert_eq!(d, Decoded::Ignored);
            }
        }
        assert!(arps > 0);
    }
}
