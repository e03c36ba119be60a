//! What decoding a frame yields: one [`Observation`], the same for live capture and pcap replay.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::wire::mac::Mac;

/// Nanoseconds since the Unix epoch. The detector never reads a clock: every time it sees comes in
/// through a value of this type, so replay and tests control time.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// From whole seconds and nanoseconds.
    pub const fn from_secs_nanos(secs: u64, nanos: u32) -> Timestamp {
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos as u64))
    }

    /// From a [`std::time::Duration`] since the epoch.
    pub fn from_duration(d: std::time::Duration) -> Timestamp {
        Timestamp(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Whole seconds since the epoch.
    pub const fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }

    /// This time plus `d`.
    pub fn plus(self, d: std::time::Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
    }

    /// Time elapsed from `earlier` to `self` (zero when `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// What kind of address-resolution frame this is. The names are the `kind` label of
/// `l2watch_frames_total`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum FrameKind {
    /// ARP request from a host that has an address (sender IP set, sender IP != target IP).
    Request,
    /// ARP reply (sender IP != target IP).
    Reply,
    /// ARP announcement: request or reply whose sender IP equals its target IP.
    Gratuitous,
    /// RFC 5227 probe: ARP request with sender IP 0.0.0.0. Claims nothing; announces intent.
    Probe,
    /// IPv6 neighbour solicitation from a host that has an address.
    NdNs,
    /// IPv6 neighbour advertisement.
    NdNa,
    /// IPv6 duplicate address detection: a neighbour solicitation from `::`.
    NdDad,
}

impl FrameKind {
    /// Every kind, in label order.
    pub const ALL: [FrameKind; 7] = [
        FrameKind::Request,
        FrameKind::Reply,
        FrameKind::Gratuitous,
        FrameKind::Probe,
        FrameKind::NdNs,
        FrameKind::NdNa,
        FrameKind::NdDad,
    ];

    /// The label value used in metrics, logs and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            FrameKind::Request => "request",
            FrameKind::Reply => "reply",
            FrameKind::Gratuitous => "gratuitous",
            FrameKind::Probe => "probe",
            FrameKind::NdNs => "nd_ns",
            FrameKind::NdNa => "nd_na",
            FrameKind::NdDad => "nd_dad",
        }
    }

    /// Position in [`FrameKind::ALL`], for counter arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether a frame of this kind claims its sender IP for its sender MAC (see DESIGN.md "Claims").
    pub const fn claims(self) -> bool {
        matches!(
            self,
            FrameKind::Request | FrameKind::Reply | FrameKind::Gratuitous | FrameKind::NdNs | FrameKind::NdNa
        )
    }

    /// Whether this kind announces intent to take its target IP (RFC 5227 probe or IPv6 DAD).
    pub const fn is_probe(self) -> bool {
        matches!(self, FrameKind::Probe | FrameKind::NdDad)
    }
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Up to four VLAN IDs, outermost first (an 802.1ad S-tag before the 802.1Q C-tag).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Vlans {
    ids: [u16; Vlans::MAX],
    len: u8,
}

impl Vlans {
    /// Most tags kept; a frame with more is malformed for l2watch.
    pub const MAX: usize = 4;

    /// No tag.
    pub const NONE: Vlans = Vlans { ids: [0; Vlans::MAX], len: 0 };

    /// Adds the next inner tag; `false` when [`Vlans::MAX`] tags are already there.
    #[inline]
    pub fn push(&mut self, id: u16) -> bool {
        let Some(slot) = self.ids.get_mut(self.len as usize) else {
            return false;
        };
        *slot = id & 0x0fff;
        self.len += 1;
        true
    }

    /// The IDs, outermost first.
    #[inline]
    pub fn as_slice(&self) -> &[u16] {
        &self.ids[..self.len as usize]
    }

    /// No tag at all.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The innermost ID (the one the host's VLAN interface sees), if tagged.
    pub fn inner(&self) -> Option<u16> {
        self.as_slice().last().copied()
    }
}

impl fmt::Debug for Vlans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl serde::Serialize for Vlans {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

/// One decoded ARP or neighbour-discovery frame.
///
/// The fields follow ARP. For IPv6 they are filled so that the same rules apply:
/// - `nd_ns`: sender = IPv6 source and its source link-layer option (else the Ethernet source);
///   target = the solicited address, target MAC zero.
/// - `nd_dad`: sender IP `::`, sender MAC as for `nd_ns`; target = the tentative address.
/// - `nd_na`: sender = the advertised (target) address and its target link-layer option (else the
///   Ethernet source); target = IPv6 destination and the Ethernet destination.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Observation {
    /// When the frame was captured.
    pub time: Timestamp,
    /// 1-based frame number in its capture file, or a running count for live capture.
    pub frame: u64,
    /// Index of the capture interface in its source's interface table.
    pub interface: u16,
    /// The frame was sent by this host (live capture and Linux cooked captures can tell).
    pub outgoing: bool,
    /// VLAN tags, outermost first.
    pub vlans: Vlans,
    /// Ethernet source address.
    pub eth_src: Mac,
    /// Ethernet destination address.
    pub eth_dst: Mac,
    /// What kind of frame this is.
    pub kind: FrameKind,
    /// ARP sender hardware address (see the type's doc for IPv6).
    pub sender_mac: Mac,
    /// ARP sender protocol address.
    pub sender_ip: IpAddr,
    /// ARP target hardware address.
    pub target_mac: Mac,
    /// ARP target protocol address.
    pub target_ip: IpAddr,
}

impl Observation {
    /// A blank observation, handy as a base for tests and builders.
    pub const EMPTY: Observation = Observation {
        time: Timestamp(0),
        frame: 0,
        interface: 0,
        outgoing: false,
        vlans: Vlans::NONE,
        eth_src: Mac::ZERO,
        eth_dst: Mac::ZERO,
        kind: FrameKind::Request,
        sender_mac: Mac::ZERO,
        sender_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        target_mac: Mac::ZERO,
        target_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };

    /// `mac` announcing `ip` at `time` with a gratuitous ARP, as decoded from the wire (for tests,
    /// benchmarks and synthetic input).
    pub fn gratuitous(time: Timestamp, mac: Mac, ip: IpAddr) -> Observation {
        Observation {
            time,
            kind: FrameKind::Gratuitous,
            sender_mac: mac,
            eth_src: mac,
            sender_ip: ip,
            target_ip: ip,
            ..Observation::EMPTY
        }
    }
}
