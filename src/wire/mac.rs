//! The one MAC address type used everywhere in l2watch.
//!
//! It prints lowercase with colons (`52:54:00:6b:3c:01`), parses every common notation (colon, dash,
//! dotted Cisco) through the `macaddr` crate, and serializes as a string so JSON reports and metric labels
//! agree on one spelling.

use std::fmt;
use std::str::FromStr;

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// `00:00:00:00:00:00`: the target MAC of ARP requests.
    pub const ZERO: Mac = Mac([0; 6]);
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    /// Reads a MAC from the first six bytes of `b`; `None` when `b` is shorter.
    #[inline]
    pub fn from_slice(b: &[u8]) -> Option<Mac> {
        let a: [u8; 6] = b.get(..6)?.try_into().ok()?;
        Some(Mac(a))
    }

    /// All zero bytes.
    #[inline]
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// The group bit is set (broadcast or multicast): never a station's own address.
    #[inline]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// The locally administered bit is set: assigned by software (random, virtual), never by the IEEE.
    #[inline]
    pub fn is_local(&self) -> bool {
        self.0[0] & 2 == 2
    }

    /// The address as one integer, for prefix matching.
    #[inline]
    pub fn to_u64(self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string that is not a MAC address in any notation l2watch accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid MAC address {0:?}: expected six hex bytes such as 52:54:00:6b:3c:01, 52-54-00-6b-3c-01 or 5254.006b.3c01"
)]
pub struct ParseMacError(pub String);

impl FromStr for Mac {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = macaddr::MacAddr6::from_str(s.trim()).map_err(|_| ParseMacError(s.to_owned()))?;
        Ok(Mac(parsed.into_array()))
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A MAC, or every MAC that shares its first `bits` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacPattern {
    /// The address (bits past the prefix are ignored).
    pub mac: Mac,
    /// Prefix length, 1 to 48 (48 = this one MAC).
    pub bits: u8,
}

impl MacPattern {
    /// Whether `mac` matches.
    #[inline]
    pub fn matches(&self, mac: Mac) -> bool {
        let shift = 48 - u32::from(self.bits);
        (self.mac.to_u64() >> shift) == (mac.to_u64() >> shift)
    }
}

impl FromStr for MacPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (mac, bits) = match s.split_once('/') {
            Some((m, b)) => {
                let bits: u8 = b
                    .trim()
                    .parse()
                    .map_err(|_| format!("invalid MAC prefix length in {s:?}: expected 1 to 48"))?;
                if !(1..=48).contains(&bits) {
                    return Err(format!("invalid MAC prefix length in {s:?}: expected 1 to 48"));
                }
                (m, bits)
            }
            None => (s, 48),
        };
        let mac: Mac = mac.parse().map_err(|e: ParseMacError| e.to_string())?;
        Ok(MacPattern { mac, bits })
    }
}

impl fmt::Display for MacPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bits == 48 { write!(f, "{}", self.mac) } else { write!(f, "{}/{}", self.mac, self.bits) }
    }
}

impl<'de> serde::Deserialize<'de> for MacPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_common_notation_and_prints_one() {
        for s in ["52:54:00:6B:3C:01", "52-54-00-6b-3c-01", "5254.006b.3c01"] {
            let m: Mac = s.parse().unwrap();
            assert_eq!(m.to_string(), "52:54:00:6b:3c:01", "from {s}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "52:54:00:6b:3c", "52:54:00:6b:3c:01:02", "zz:54:00:6b:3c:01"] {
            assert!(s.parse::<Mac>().is_err(), "{s:?} parsed");
        }
    }

    #[test]
    fn group_bit() {
        assert!(Mac::BROADCAST.is_multicast());
        assert!(Mac([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(!Mac([0x52, 0x54, 0, 0, 0, 1]).is_multicast());
    }
}
