//! What the detector knows that a restart must not lose: each address's MAC history (arpwatch's
//! arp.dat) and the active findings about frames. Pure: the value saved and restored; the file it
//! lives in is `export::state_file`'s business.
//!
//! Findings about Services are not saved: they follow from the inventory, which is read again at start.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::wire::mac::Mac;

/// The schema this version writes and reads. Another one (a newer l2watch's) is not guessed at.
pub const SCHEMA: &str = "l2watch.state/v1";

/// Everything saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// When it was taken (nanoseconds since the Unix epoch).
    pub taken: u64,
    /// Per-IP MAC history, most recently seen first.
    pub addresses: Vec<Address>,
    /// Active findings about frames and probe rounds.
    pub findings: Vec<SavedFinding>,
}

/// One address's MAC history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// The address.
    pub ip: IpAddr,
    /// Index in `macs` of the MAC that claimed it last.
    pub current: Option<u8>,
    /// The MACs that claimed it.
    pub macs: Vec<SavedMac>,
}

/// One MAC's claims of one address. Written as `[mac, first_seen, last_seen, count]`: there are up to
/// four per address, and field names would double the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "(Mac, u64, u64, u64)", from = "(Mac, u64, u64, u64)")]
pub struct SavedMac {
    /// The MAC.
    pub mac: Mac,
    /// First claim (ns since the epoch).
    pub first_seen: u64,
    /// Latest claim.
    pub last_seen: u64,
    /// Claims seen.
    pub count: u64,
}

impl From<SavedMac> for (Mac, u64, u64, u64) {
    fn from(m: SavedMac) -> Self {
        (m.mac, m.first_seen, m.last_seen, m.count)
    }
}

impl From<(Mac, u64, u64, u64)> for SavedMac {
    fn from((mac, first_seen, last_seen, count): (Mac, u64, u64, u64)) -> Self {
        SavedMac { mac, first_seen, last_seen, count }
    }
}

/// One active finding. Its context (role, Service, pool) comes from the inventory in force when it
/// is restored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedFinding {
    /// The kind, as in metrics and reports.
    pub kind: String,
    /// The address.
    pub ip: IpAddr,
    /// The MAC concerned.
    pub mac: Mac,
    /// The other MAC, for kinds that have one.
    pub other_mac: Option<Mac>,
    /// The node concerned, for kinds that have one.
    pub node: Option<String>,
    /// `mac_changed`: a failover explains it.
    pub expected: bool,
    /// `mac_changed`: the MAC had claimed the address before.
    pub flip_flop: bool,
    /// VLAN IDs, outermost first.
    pub vlans: Vec<u16>,
    /// Capture interface.
    pub interface: u16,
    /// First evidence (ns since the epoch).
    pub first_seen: u64,
    /// Latest evidence.
    pub last_seen: u64,
    /// Pieces of evidence.
    pub count: u64,
}

/// What a restore took and what it left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    /// Addresses whose history was taken.
    pub addresses: usize,
    /// Findings taken.
    pub findings: usize,
    /// Entries left out: over the limits in force, of an unknown kind, or expired.
    pub skipped: usize,
}
