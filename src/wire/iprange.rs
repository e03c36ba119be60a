//! IP address ranges as MetalLB writes them (`192.168.1.240/28`, `192.168.1.240-192.168.1.250`, a single
//! address), and the integer key l2watch uses for fast per-IP maps.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP address as one integer: IPv4 addresses are mapped into `::ffff:0:0/96`, so one map holds both
/// families and hashing is two multiplications.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct IpKey(pub u128);

impl IpKey {
    /// Whether this key stands for an IPv4 address.
    #[inline]
    pub fn is_v4(self) -> bool {
        self.0 >> 32 == 0xffff
    }

    /// Back to an address.
    pub fn to_ip(self) -> IpAddr {
        if self.is_v4() {
            IpAddr::V4(Ipv4Addr::from(self.0 as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.0))
        }
    }
}

impl From<IpAddr> for IpKey {
    #[inline]
    fn from(ip: IpAddr) -> IpKey {
        match ip {
            IpAddr::V4(a) => IpKey((0xffff_u128 << 32) | u32::from(a) as u128),
            IpAddr::V6(a) => IpKey(u128::from(a)),
        }
    }
}

/// An inclusive range of addresses of one family.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IpRange {
    first: IpKey,
    last: IpKey,
}

/// Why a string is not an address range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseRangeError {
    /// Neither CIDR, `a-b` nor a single address.
    #[error(
        "invalid address range {0:?}: expected a CIDR (192.168.1.240/28), a range (192.168.1.240-192.168.1.250) or an address"
    )]
    Syntax(String),
    /// The prefix length is larger than the address.
    #[error("invalid prefix length in {0:?}: at most 32 for IPv4 and 128 for IPv6")]
    PrefixLength(String),
    /// `a-b` with `a` and `b` of different families, or `a` after `b`.
    #[error(
        "invalid address range {0:?}: both ends must be of one family and the first must not exceed the last"
    )]
    Bounds(String),
}

impl IpRange {
    /// The range holding exactly `ip`.
    pub fn single(ip: IpAddr) -> IpRange {
        let k = IpKey::from(ip);
        IpRange { first: k, last: k }
    }

    /// Whether `ip` is in the range.
    #[inline]
    pub fn contains(&self, ip: IpKey) -> bool {
        self.first <= ip && ip <= self.last
    }

    /// First address.
    pub fn first(&self) -> IpKey {
        self.first
    }

    /// Last address.
    pub fn last(&self) -> IpKey {
        self.last
    }

    /// Number of addresses (saturating).
    pub fn len(&self) -> u128 {
        (self.last.0 - self.first.0).saturating_add(1)
    }

    /// Never empty; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl FromStr for IpRange {
    type Err = ParseRangeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        let syntax = || ParseRangeError::Syntax(input.to_owned());
        if let Some((addr, len)) = s.split_once('/') {
            let addr: IpAddr = addr.trim().parse().map_err(|_| syntax())?;
            let len: u32 = len.trim().parse().map_err(|_| syntax())?;
            let bits = if addr.is_ipv4() { 32 } else { 128 };
            if len > bits {
                return Err(ParseRangeError::PrefixLength(input.to_owned()));
            }
            // Host bits are masked, as MetalLB does with `192.168.1.7/24`.
            let base = IpKey::from(addr).0;
            // Shifting ones down rather than a one up: an IPv6 /0 has 128 host bits, and a u128
            // cannot be shifted by 128.
            let host_bits = bits - len;
            let host_mask: u128 = if host_bits == 0 { 0 } else { u128::MAX >> (128 - host_bits) };
            return Ok(IpRange { first: IpKey(base & !host_mask), last: IpKey(base | host_mask) });
        }
        if let Some((a, b)) = s.split_once('-') {
            let a: IpAddr = a.trim().parse().map_err(|_| syntax())?;
            let b: IpAddr = b.trim().parse().map_err(|_| syntax())?;
            let (first, last) = (IpKey::from(a), IpKey::from(b));
            if a.is_ipv4() != b.is_ipv4() || first > last {
                return Err(ParseRangeError::Bounds(input.to_owned()));
            }
            return Ok(IpRange { first, last });
        }
        let ip: IpAddr = s.parse().map_err(|_| syntax())?;
        Ok(IpRange::single(ip))
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first.to_ip())
        } else {
            write!(f, "{}-{}", self.first.to_ip(), self.last.to_ip())
        }
    }
}

impl<'de> serde::Deserialize<'de> for IpRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for IpRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> IpKey {
        IpKey::from(s.parse::<IpAddr>().unwrap())
    }

    #[test]
    fn cidr_masks_host_bits() {
        let r: IpRange = "192.168.1.247/28".parse().unwrap();
        assert_eq!(r.to_string(), "192.168.1.240-192.168.1.255");
        assert!(r.contains(k("192.168.1.240")) && r.contains(k("192.168.1.255")));
        assert!(!r.contains(k("192.168.1.239")) && !r.contains(k("192.168.2.240")));
        assert_eq!(r.len(), 16);
    }

    #[test]
    fn ranges_and_single_addresses_of_both_families() {
        let r: IpRange = "192.168.10.0 - 192.168.10.9".parse().unwrap();
        assert_eq!(r.len(), 10);
        let r6: IpRange = "fc00:f853:ccd:e799::/124".parse().unwrap();
        assert!(r6.contains(k("fc00:f853:ccd:e799::f")));
        assert!(!r6.contains(k("192.168.10.1")));
        let one: IpRange = "10.0.0.1".parse().unwrap();
        assert_eq!(one.len(), 1);
        let all4: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all4.contains(k("255.255.255.255")) && !all4.contains(k("::1")));
    }

    /// Found by the fuzz target `config` (`addresses: ["::/0"]`): the host mask shifted a u128 by
    /// 128, a panic with overflow checks and a single address `::` without them.
    #[test]
    fn ipv6_slash_zero_is_every_address() {
        let all6: IpRange = "::/0".parse().unwrap();
        assert_eq!((all6.first, all6.last), (IpKey(0), IpKey(u128::MAX)));
        assert_eq!(all6.len(), u128::MAX);
        let half: IpRange = "8000::/1".parse().unwrap();
        assert_eq!((half.first, half.last), (IpKey(1 << 127), IpKey(u128::MAX)));
    }

    #[test]
    fn rejects_bad_ranges() {
        for s in ["192.168.1.0/33", "::/129", "192.168.1.9-192.168.1.1", "10.0.0.1-::1", "10.0.0/24", "x"] {
            assert!(s.parse::<IpRange>().is_err(), "{s} parsed");
        }
    }

    #[test]
    fn key_round_trips() {
        for s in ["192.168.1.1", "0.0.0.0", "::", "fe80::1", "::ffff:1.2.3.4"] {
            let ip: IpAddr = s.parse().unwrap();
            let back = IpKey::from(ip).to_ip();
            // A v4-mapped IPv6 address comes back as IPv4: ND never carries one.
            assert_eq!(back.to_canonical(), ip.to_canonical());
        }
    }
}
