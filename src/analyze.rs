//! `l2watch analyze`: replays capture files through the same decode → detect path as live capture and
//! collects what a report needs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::DetectConfig;
use crate::decode::{self, Decoded, FrameMeta, LinkType, SkipReason};
use crate::detect::{Detector, Sink};
use crate::finding::Finding;
use crate::inventory::Inventory;
use crate::observation::Vlans;
use crate::replay::{self, ReplayError};

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
    #[inline]
    pub fn count(&mut self, decoded: &Decoded) {
        match decoded {
            Decoded::Frame(obs) => {
                if !obs.vlans.is_empty() {
                    let n = self.vlans.len();
                    match self.vlans.get_mut(&obs.vlans) {
                        Some(c) => *c += 1,
                        None if n < MAX_VLAN_STACKS => {
                            self.vlans.insert(obs.vlans, 1);
                        }
                        None => self.vlans_other += 1,
                    }
                }
            }
            Decoded::Ignored => self.ignored += 1,
            Decoded::Skipped(reason) => self.skipped[reason.index()] += 1,
        }
    }
}

/// Most distinct VLAN tag stacks counted in a report.
pub const MAX_VLAN_STACKS: usize = 1024;

/// Everything `analyze` found, ready to be rendered by [`crate::report`].
pub struct Analysis {
    /// Per file.
    pub files: Vec<FileOutcome>,
    /// Frame counts.
    pub frames: FrameCounts,
    /// Findings that cleared during the replay, then those still active at its end.
    pub findings: Vec<(Finding, bool)>,
    /// Findings not listed because [`MAX_REPORTED_FINDINGS`] was reached.
    pub findings_omitted: u64,
    /// The detector at the end (its per-IP history and counters feed the report).
    pub detector: Detector,
}

impl Analysis {
    /// Whether any file could not be read completely or had frames of an unsupported link type.
    pub fn had_errors(&self) -> bool {
        self.files.iter().any(|f| f.error.is_some() || !f.unsupported.is_empty())
    }
}

#[derive(Default)]
struct Collect {
    cleared: Vec<Finding>,
    omitted: u64,
}

impl Sink for Collect {
    fn cleared(&mut self, f: &Finding) {
        if self.cleared.len() < MAX_REPORTED_FINDINGS {
            self.cleared.push(f.clone());
        } else {
            self.omitted += 1;
        }
    }
}

/// Replays `files` in order through one detector.
pub fn analyze(files: &[PathBuf], inventory: &Inventory, detect: DetectConfig) -> Analysis {
    let mut detector = Detector::new(detect);
    let mut sink = Collect::default();
    let mut counts = FrameCounts::default();
    let mut outcomes = Vec::with_capacity(files.len());
    for (file_index, path) in files.iter().enumerate() {
        let mut unsupported: BTreeMap<u32, u64> = BTreeMap::new();
        let result = replay::read_capture(path, |raw| {
            counts.total += 1;
            let Some(link) = LinkType::from_linktype(raw.link_type) else {
                counts.unsupported_link_type += 1;
                *unsupported.entry(raw.link_type).or_default() += 1;
                return;
            };
            let meta = FrameMeta {
                time: raw.time,
                frame: raw.number,
                // Interfaces are numbered per file; the report maps this back to file and interface.
                interface: interface_id(file_index, raw.interface),
                outgoing: false,
                vlan: None,
            };
            let decoded = decode::decode(link, raw.data, &meta);
            counts.count(&decoded);
            if let Decoded::Frame(obs) = decoded {
                detector.observe(&obs, inventory, &mut sink);
            }
        });
        let (info, error) = match result {
            Ok(info) => (Some(info), None),
            Err(e) => {
                let info = match &e {
                    ReplayError::Broken { after_frame, .. } => {
                        Some(replay::FileInfo { format: "", link_types: Vec::new(), frames: *after_frame })
                    }
                    _ => None,
                };
                (info, Some(e.to_string()))
            }
        };
        let info = info.unwrap_or_default();
        outcomes.push(FileOutcome {
            path: path.clone(),
            format: (!info.format.is_empty()).then_some(info.format),
            link_types: info.link_types,
            frames: info.frames,
            unsupported,
            error,
        });
    }
    let mut findings: Vec<(Finding, bool)> = sink.cleared.into_iter().map(|f| (f, false)).collect();
    let mut omitted = sink.omitted;
    for f in detector.findings() {
        if findings.len() < MAX_REPORTED_FINDINGS {
            findings.push((f.clone(), true));
        } else {
            omitted += 1;
        }
    }
    Analysis { files: outcomes, frames: counts, findings, findings_omitted: omitted, detector }
}

/// Interface numbers carry the file (or, live, the capture interface): 16 interfaces per file, plenty
/// for pcapng captures.
pub fn interface_id(file: usize, iface: u16) -> u16 {
    ((file.min(4095) as u16) << 4) | (iface & 0xf)
}

/// The file index and interface of an interface number made by [`analyze`].
pub fn split_interface(id: u16) -> (usize, u16) {
    (usize::from(id >> 4), id & 0xf)
}
