//! What a run of the monitor saw, per source (capture file or interface): frames by kind, VLAN stack
//! and skip reason, and the findings to report. Filled by `analyze` and the live capture alike.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::monitor::finding::Finding;
use crate::wire::decode::{Decoded, SkipReason};
use crate::wire::observation::Vlans;

/// Most findings kept for a report (active and cleared together); more are counted, not listed.
pub const MAX_REPORTED_FINDINGS: usize = 10_000;

/// What one file gave.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    /// The path as given.
    pub path: PathBuf,
    /// `pcap` or `pcapng`, when recognised.
    pub format: Option<&'static str>,
    /// Link types of its interfaces.
    pub link_types: Vec<u32>,
    /// Frames read.
    pub frames: u64,
    /// Frames of link types l2watch cannot decode, by link type.
    pub unsupported: BTreeMap<u32, u64>,
    /// Why it could not be read to the end.
    pub error: Option<String>,
}

/// Frame counts over all files.
#[derive(Debug, Clone, Default)]
pub struct FrameCounts {
    /// Frames read.
    pub total: u64,
    /// Well-formed frames that are not ARP or neighbour discovery.
    pub ignored: u64,
    /// ARP/ND frames skipped, by [`SkipReason::index`].
    pub skipped: [u64; SkipReason::ALL.len()],
    /// Frames of unsupported link types.
    pub unsupported_link_type: u64,
    /// ARP/ND frames per VLAN tag stack (untagged frames are not counted here); at most
    /// [`MAX_VLAN_STACKS`] stacks, the rest in `vlans_other`.
    pub vlans: rustc_hash::FxHashMap<Vlans, u64>,
    /// Tagged ARP/ND frames whose stack did not fit in `vlans`.
    pub vlans_other: u64,
}

impl FrameCounts {
    /// Counts one decoded frame (everything but `total` and `unsupported_link_type`).
    ///
    /// Always inlined: called through a reference, `decoded` would be written to memory and read
    /// back at once, and a fresh struct read back with other widths than it was written with stalls
    /// the CPU (store-to-load forwarding fails); that cost a third of `analyze`'s time per frame.
    #[inline(always)]
    pub fn count(&mut self, decoded: &Decoded) {
        match decoded {
            Decoded::Frame(obs) => {
                if !obs.vlans.is_empty() {
                    self.count_vlans(obs.vlans);
                }
            }
            Decoded::Ignored => self.ignored += 1,
            Decoded::Skipped(reason) => self.skipped[reason.index()] += 1,
        }
    }

    /// Counts a tagged frame's VLAN stack: the rare case, kept out of line.
    #[inline(never)]
    fn count_vlans(&mut self, vlans: Vlans) {
        let n = self.vlans.len();
        match self.vlans.get_mut(&vlans) {
            Some(c) => *c += 1,
            None if n < MAX_VLAN_STACKS => {
                self.vlans.insert(vlans, 1);
            }
            None => self.vlans_other += 1,
        }
    }
}

/// Most distinct VLAN tag stacks counted in a report.
pub const MAX_VLAN_STACKS: usize = 1024;

/// What a run saw beside the detector's state, ready to be rendered by [`crate::export::report`].
pub struct Analysis {
    /// Per file.
    pub files: Vec<FileOutcome>,
    /// Frame counts.
    pub frames: FrameCounts,
    /// Findings that cleared during the replay, then those still active at its end.
    pub findings: Vec<(Finding, bool)>,
    /// Findings not listed because [`MAX_REPORTED_FINDINGS`] was reached.
    pub findings_omitted: u64,
}

impl Analysis {
    /// Whether any file could not be read completely or had frames of an unsupported link type.
    pub fn had_errors(&self) -> bool {
        self.files.iter().any(|f| f.error.is_some() || !f.unsupported.is_empty())
    }
}

/// Interface numbers carry the file (or, live, the capture interface): 16 interfaces per file, plenty
/// for pcapng captures.
pub fn interface_id(file: usize, iface: u16) -> u16 {
    ((file.min(4095) as u16) << 4) | (iface & 0xf)
}

/// The file index and interface of an interface number made by [`interface_id`].
pub fn split_interface(id: u16) -> (usize, u16) {
    (usize::from(id >> 4), id & 0xf)
}
