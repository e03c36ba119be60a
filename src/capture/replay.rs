//! Reading capture files (pcap and pcapng) frame by frame, without holding them in memory.
//!
//! This is an edge: it knows file formats, not ARP. Each frame goes to a callback with its link type,
//! interface and time; decoding and detection happen there, exactly as for live capture.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{PcapError, TsResolution};

use crate::wire::observation::Timestamp;

/// One frame as the file holds it.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    /// LINKTYPE_ number of the frame's interface.
    pub link_type: u32,
    /// Interface index within the file (always 0 for classic pcap).
    pub interface: u16,
    /// 1-based frame number in the file, as tcpdump and Wireshark count.
    pub number: u64,
    /// Capture time.
    pub time: Timestamp,
    /// The bytes captured.
    pub data: &'a [u8],
}

/// What a file turned out to be.
#[derive(Debug, Clone, Default)]
pub struct FileInfo {
    /// `pcap` or `pcapng`.
    pub format: &'static str,
    /// Link type of each interface, by index.
    pub link_types: Vec<u32>,
    /// Frames read.
    pub frames: u64,
}

/// Why a capture file cannot be read (to the end).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file cannot be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start like a pcap or pcapng file.
    #[error(
        "{path}: not a pcap or pcapng capture (it starts with {magic}); write captures with tcpdump -w or dumpcap"
    )]
    NotACapture {
        /// The file.
        path: String,
        /// Its first bytes, in hex.
        magic: String,
    },
    /// The file ends in the middle of a record, or a record is corrupt. Frames before it were read.
    #[error("{path}: broken after frame {after_frame}: {detail}")]
    Broken {
        /// The file.
        path: String,
        /// Frames read successfully before the problem.
        after_frame: u64,
        /// What is wrong.
        detail: String,
    },
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const PCAP_MAGICS: [[u8; 4]; 4] =
    [[0xd4, 0xc3, 0xb2, 0xa1], [0xa1, 0xb2, 0xc3, 0xd4], [0x4d, 0x3c, 0xb2, 0xa1], [0xa1, 0xb2, 0x3c, 0x4d]];

/// Reads every frame of `path` into `each`, in file order.
pub fn read_capture(path: &Path, mut each: impl FnMut(RawFrame<'_>)) -> Result<FileInfo, ReplayError> {
    let shown = path.display().to_string();
    let io = |source| ReplayError::Io { path: shown.clone(), source };
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut file, &mut magic).map_err(io)?;
    let file = File::open(path).map_err(io)?;
    read_from(&shown, &magic[..got], file, &mut each)
}

/// Reads every frame of a capture held in memory into `each`, in file order; `name` stands for the
/// file in errors. The same reader as [`read_capture`], for captures that are not files (and fuzzing).
pub fn read_capture_bytes(
    bytes: &[u8],
    name: &str,
    mut each: impl FnMut(RawFrame<'_>),
) -> Result<FileInfo, ReplayError> {
    read_from(name, &bytes[..bytes.len().min(4)], bytes, &mut each)
}

/// Reads `input`, which starts with `magic` (its first four bytes, fewer if it is shorter).
fn read_from(
    shown: &str,
    magic: &[u8],
    input: impl Read,
    each: &mut impl FnMut(RawFrame<'_>),
) -> Result<FileInfo, ReplayError> {
    if magic == PCAPNG_MAGIC {
        read_pcapng(shown, input, each)
    } else if PCAP_MAGICS.iter().any(|m| m == magic) {
        read_pcap(shown, input, each)
    } else {
        let magic = if magic.is_empty() {
            "nothing: the file is empty".to_owned()
        } else {
            magic.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
        };
        Err(ReplayError::NotACapture { path: shown.to_owned(), magic })
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn broken(path: &str, after_frame: u64, e: PcapError) -> ReplayError {
    let detail = match e {
        PcapError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the file ends in the middle of a record (truncated capture?)".to_owned()
        }
        PcapError::IncompleteBuffer => {
            "the file ends in the middle of a record (truncated capture?)".to_owned()
        }
        PcapError::IoError(io) => format!("read error: {io}"),
        other => format!("corrupt record: {other}"),
    };
    ReplayError::Broken { path: path.to_owned(), after_frame, detail }
}

fn read_pcap(
    path: &str,
    file: impl Read,
    each: &mut impl FnMut(RawFrame<'_>),
) -> Result<FileInfo, ReplayError> {
    let mut reader = PcapReader::new(file).map_err(|e| match e {
        PcapError::IoError(source) if source.kind() != std::io::ErrorKind::UnexpectedEof => {
            ReplayError::Io { path: path.to_owned(), source }
        }
        _ => ReplayError::NotACapture {
            path: path.to_owned(),
            magic: "a pcap magic but no valid header".to_owned(),
        },
    })?;
    let header = reader.header();
    let link_type = u32::from(header.datalink);
    let nanos = header.ts_resolution == TsResolution::NanoSecond;
    let mut info = FileInfo { format: "pcap", link_types: vec![link_type], frames: 0 };
    while let Some(p) = reader.next_raw_packet() {
        let p = p.map_err(|e| broken(path, info.frames, e))?;
        info.frames += 1;
        let frac = if nanos { p.ts_frac } else { p.ts_frac.saturating_mul(1000) };
        each(RawFrame {
            link_type,
            interface: 0,
            number: info.frames,
            time: Timestamp::from_secs_nanos(u64::from(p.ts_sec), frac),
            data: &p.data,
        });
    }
    Ok(info)
}

/// Nanoseconds per timestamp unit of an interface, from its `if_tsresol` option (default microseconds).
fn unit_nanos(options: &[InterfaceDescriptionOption<'_>]) -> (u64, u64) {
    let resol = options.iter().find_map(|o| match o {
        InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
        _ => None,
    });
    // Returned as a fraction (numerator, denominator) so binary resolutions stay exact enough.
    match resol {
        None => (1000, 1),
        Some(r) if r & 0x80 == 0 => {
            let exp = u32::from(r);
            if exp <= 9 { (10u64.pow(9 - exp), 1) } else { (1, 10u64.saturating_pow(exp - 9)) }
        }
        Some(r) => (1_000_000_000, 1u64.checked_shl(u32::from(r & 0x7f)).unwrap_or(u64::MAX)),
    }
}

fn read_pcapng(
    path: &str,
    file: impl Read,
    each: &mut impl FnMut(RawFrame<'_>),
) -> Result<FileInfo, ReplayError> {
    let mut reader = PcapNgReader::new(file).map_err(|e| match e {
        PcapError::IoError(source) if source.kind() != std::io::ErrorKind::UnexpectedEof => {
            ReplayError::Io { path: path.to_owned(), source }
        }
        _ => ReplayError::NotACapture {
            path: path.to_owned(),
            magic: "a pcapng magic but no valid section header".to_owned(),
        },
    })?;
    let mut info = FileInfo { format: "pcapng", link_types: Vec::new(), frames: 0 };
    let mut units: Vec<(u64, u64)> = Vec::new();
    while let Some(block) = reader.next_block() {
        let block = block.map_err(|e| broken(path, info.frames, e))?;
        match block {
            Block::SectionHeader(_) => {
                // A new section starts a new interface numbering.
                units.clear();
                info.link_types.clear();
            }
            Block::InterfaceDescription(idb) => {
                info.link_types.push(u32::from(idb.linktype));
                units.push(unit_nanos(&idb.options));
            }
            Block::EnhancedPacket(epb) => {
                info.frames += 1;
                let iface = epb.interface_id as usize;
                let Some(&link_type) = info.link_types.get(iface) else {
                    return Err(ReplayError::Broken {
                        path: path.to_owned(),
                        after_frame: info.frames - 1,
                        detail: format!("packet names interface {iface}, which the file never described"),
                    });
                };
                let (num, den) = units.get(iface).copied().unwrap_or((1000, 1));
                // pcap-file 2 hands over the raw timestamp count as if it were nanoseconds.
                let raw = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
                let nanos = (u128::from(raw) * u128::from(num) / u128::from(den.max(1))) as u64;
                each(RawFrame {
                    link_type,
                    interface: iface as u16,
                    number: info.frames,
                    time: Timestamp(nanos),
                    data: &epb.data,
                });
            }
            Block::SimplePacket(spb) => {
                info.frames += 1;
                let link_type = info.link_types.first().copied().unwrap_or(1);
                each(RawFrame {
                    link_type,
                    interface: 0,
                    number: info.frames,
                    time: Timestamp(0),
                    data: &spb.data,
                });
            }
            _ => {}
        }
    }
    Ok(info)
}

/// A human name for a LINKTYPE_ number, for error messages.
pub fn link_type_name(n: u32) -> &'static str {
    match n {
        0 => "BSD loopback",
        1 => "Ethernet",
        101 => "raw IP",
        105 => "IEEE 802.11",
        113 => "Linux cooked v1",
        127 => "IEEE 802.11 radiotap",
        228 => "raw IPv4",
        229 => "raw IPv6",
        242 => "IP over InfiniBand",
        276 => "Linux cooked v2",
        _ => "unknown",
    }
}
