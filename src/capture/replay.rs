//! Reading capture files (pcap and pcapng) frame by frame, without holding them in memory.
//!
//! This is an edge: it knows file formats, not ARP. Each frame goes to a callback with its link type,
//! interface and time; decoding and detection happen there, exactly as for live capture.
//!
//! The file is read in large chunks into one reused buffer and its records are walked in place: each
//! frame reaches the callback as a slice of that buffer, never copied. A record cut by the end of a
//! chunk is moved to the front of the buffer and completed by the next read. The same walker runs over
//! a capture already in memory ([`read_capture_bytes`]), with no copy at all.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;
use std::sync::mpsc;

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileInfo {
    /// `pcap` or `pcapng`.
    pub format: &'static str,
    /// Link type of each interface, by index (for pcapng, those of the last section).
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

/// Bytes asked of the file per read. Large enough that system calls cost nothing per frame (a 1M-frame
/// capture is about 80 reads), small enough that a chunk the kernel just copied is still in the
/// core's L2 cache when the walk reads it.
pub const CHUNK: usize = 1 << 20;

/// The largest record (classic pcap frame or pcapng block) accepted. libpcap never captures more
/// than 256 KiB of a frame; a bigger length is corruption or a hostile file, and believing it would
/// make the reader allocate up to 4 GiB for one record.
const MAX_RECORD: usize = 16 << 20;

const PCAPNG_SHB: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const TRUNCATED: &str = "the file ends in the middle of a record (truncated capture?)";

/// Reads every frame of `path` into `each`, in file order.
///
/// A second thread reads the file ahead into a few [`CHUNK`]-sized buffers while this one walks the
/// records: the kernel's copy out of the page cache (or the disk itself) runs beside decoding instead
/// of before it.
pub fn read_capture(path: &Path, each: impl FnMut(RawFrame<'_>)) -> Result<FileInfo, ReplayError> {
    let shown = path.display().to_string();
    match File::open(path) {
        Ok(file) => read_ahead(&file, &shown, CHUNK, each),
        Err(source) => Err(ReplayError::Io { path: shown, source }),
    }
}

/// Reads `file` `chunk` bytes at a time on another thread, [`READ_AHEAD`] chunks ahead of the walk.
fn read_ahead(
    file: &File,
    name: &str,
    chunk: usize,
    mut each: impl FnMut(RawFrame<'_>),
) -> Result<FileInfo, ReplayError> {
    std::thread::scope(|scope| {
        let (full_tx, full) = mpsc::sync_channel::<std::io::Result<(Vec<u8>, usize)>>(READ_AHEAD);
        let (free, free_rx) = mpsc::channel::<Vec<u8>>();
        let reader = std::thread::Builder::new().name("l2watch-read".into()).spawn_scoped(scope, move || {
            // Buffers come back once walked; the first ones are made here, off the walking thread.
            let mut made = 0;
            // The first reads are short and grow: the walk starts after a small read instead of a
            // whole chunk (0.8 ms for the first, its pages faulted in as the kernel copies), and
            // each read still ends before the walk of the one before it does.
            let mut want = FIRST_READ;
            loop {
                let mut buf = match free_rx.try_recv() {
                    Ok(buf) => buf,
                    Err(_) if made < READ_AHEAD + 1 => {
                        made += 1;
                        vec![0u8; chunk.max(1)]
                    }
                    Err(_) => match free_rx.recv() {
                        Ok(buf) => buf,
                        // The walker stopped (the end, or a broken record).
                        Err(_) => return,
                    },
                };
                let len = want.clamp(1, buf.len());
                let got = fill(&mut &*file, &mut buf[..len]);
                want = want.saturating_mul(2);
                let last = !matches!(got, Ok(n) if n > 0);
                if full_tx.send(got.map(|n| (buf, n))).is_err() || last {
                    return;
                }
            }
        });
        if reader.is_err() {
            // No thread to be had: read in turn with walking.
            return read_chunked(file, name, chunk, each);
        }
        let mut chunks = Chunks::default();
        loop {
            match full.recv() {
                Ok(Ok((buf, n))) if n > 0 => {
                    chunks.feed(&buf[..n], &mut each).map_err(|f| chunks.walker.error(name, f))?;
                    // Refused only when the reader has stopped, which it does after the last chunk.
                    let _ = free.send(buf);
                }
                Ok(Err(e)) => return Err(chunks.walker.read_error(name, e)),
                // The end of the file (or a reader gone without a word, which cannot happen).
                Ok(Ok(_)) | Err(_) => return chunks.finish(name),
            }
        }
    })
}

/// The first read's size in [`read_ahead`]; each next one is twice the last, up to the chunk.
const FIRST_READ: usize = 32 << 10;

/// Chunks read ahead and not yet walked.
const READ_AHEAD: usize = 2;

/// Reads every frame of a capture coming from `reader` (a file, a pipe, a decompressor) into `each`,
/// in order; `name` stands for the file in errors.
pub fn read_capture_from(
    reader: impl Read,
    name: &str,
    each: impl FnMut(RawFrame<'_>),
) -> Result<FileInfo, ReplayError> {
    read_chunked(reader, name, CHUNK, each)
}

/// Reads every frame of a capture held in memory into `each`, in file order; `name` stands for the
/// file in errors. The same walker as [`read_capture`] (and the entry point for fuzzing): frames are
/// slices of `bytes`.
pub fn read_capture_bytes(
    bytes: &[u8],
    name: &str,
    mut each: impl FnMut(RawFrame<'_>),
) -> Result<FileInfo, ReplayError> {
    let mut w = Walker::default();
    let used = w.walk(bytes, &mut each).map_err(|f| w.error(name, f))?;
    w.finish(name, &bytes[used..])
}

/// Reads `reader` into one buffer of `chunk` bytes, walking each read before the next.
fn read_chunked(
    mut reader: impl Read,
    name: &str,
    chunk: usize,
    mut each: impl FnMut(RawFrame<'_>),
) -> Result<FileInfo, ReplayError> {
    let mut chunks = Chunks::default();
    let mut buf = vec![0u8; chunk.max(1)];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return chunks.finish(name),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(chunks.walker.read_error(name, e)),
        };
        chunks.feed(&buf[..n], &mut each).map_err(|f| chunks.walker.error(name, f))?;
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Chunks of the input walked in order. The records of a chunk are walked in place; the start of one
/// cut by the chunk's end waits in `carry`, which the next chunks complete (copying only that record).
#[derive(Default)]
struct Chunks {
    walker: Walker,
    /// The start of a record (or file header) the chunks so far did not hold whole: fewer bytes than
    /// `walker.need`, which is at most [`MAX_RECORD`].
    carry: Vec<u8>,
}

impl Chunks {
    fn feed(&mut self, mut chunk: &[u8], each: &mut impl FnMut(RawFrame<'_>)) -> Result<(), Fault> {
        while !self.carry.is_empty() {
            let want = self.walker.need.saturating_sub(self.carry.len());
            let (head, rest) = chunk.split_at(want.min(chunk.len()));
            // Exactly what the record needs: a big record does not leave a buffer twice its size.
            self.carry.reserve_exact(want);
            self.carry.extend_from_slice(head);
            chunk = rest;
            if self.carry.len() < self.walker.need {
                return Ok(());
            }
            // The record is whole: walk it. A file header may reveal that more is needed (a pcap
            // magic asks for the rest of the header): then the loop completes that too.
            let used = self.walker.walk(&self.carry, each)?;
            self.carry.drain(..used);
        }
        let used = self.walker.walk(chunk, each)?;
        if used < chunk.len() {
            self.carry.reserve_exact(self.walker.need);
            self.carry.extend_from_slice(&chunk[used..]);
        }
        Ok(())
    }

    fn finish(self, path: &str) -> Result<FileInfo, ReplayError> {
        self.walker.finish(path, &self.carry)
    }
}

/// How multi-byte fields are stored: as written by a little- or a big-endian machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Little,
    Big,
}

impl Order {
    /// The `u16` at `at` of a fixed-size header (constant offsets: no bounds check left after inlining).
    #[inline(always)]
    fn u16_at<const N: usize>(self, h: &[u8; N], at: usize) -> u16 {
        let b = [h[at], h[at + 1]];
        match self {
            Order::Little => u16::from_le_bytes(b),
            Order::Big => u16::from_be_bytes(b),
        }
    }

    #[inline(always)]
    fn u32_at<const N: usize>(self, h: &[u8; N], at: usize) -> u32 {
        let b = [h[at], h[at + 1], h[at + 2], h[at + 3]];
        match self {
            Order::Little => u32::from_le_bytes(b),
            Order::Big => u32::from_be_bytes(b),
        }
    }

    /// A pcapng timestamp: high word first, whatever the byte order.
    #[inline(always)]
    fn ts_at<const N: usize>(self, h: &[u8; N], at: usize) -> u64 {
        (u64::from(self.u32_at(h, at)) << 32) | u64::from(self.u32_at(h, at + 4))
    }
}

/// How long one timestamp unit of a pcapng interface is (its `if_tsresol` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// 10^-k s with k <= 9: this many nanoseconds.
    Nanos(u64),
    /// 10^-k s with k > 9: this many units per nanosecond.
    PerNano(u64),
    /// 2^-k s.
    Binary(u32),
}

impl Unit {
    /// Microseconds, the resolution of an interface that does not say.
    const DEFAULT: Unit = Unit::Nanos(1000);

    /// From the option's byte: the high bit says base 2 instead of 10, the rest is the exponent.
    fn from_tsresol(v: u8) -> Unit {
        let exp = u32::from(v & 0x7f);
        if v & 0x80 != 0 {
            Unit::Binary(exp)
        } else if exp <= 9 {
            Unit::Nanos(10u64.pow(9 - exp))
        } else {
            // Beyond 10^-28 s every count rounds to zero nanoseconds anyway.
            Unit::PerNano(10u64.checked_pow(exp - 9).unwrap_or(u64::MAX))
        }
    }

    #[inline]
    fn nanos(self, count: u64) -> u64 {
        match self {
            Unit::Nanos(n) => count.saturating_mul(n),
            Unit::PerNano(d) => count / d,
            Unit::Binary(k) => {
                // In 128 bits: 2^64 counts times 10^9 fits, and k is at most 127.
                let ns = (u128::from(count) * 1_000_000_000) >> k;
                u64::try_from(ns).unwrap_or(u64::MAX)
            }
        }
    }
}

/// How a pcapng interface's timestamps become [`Timestamp`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Clock {
    unit: Unit,
    /// `if_tsoffset`: seconds to add to every timestamp, in nanoseconds.
    offset: i64,
}

impl Clock {
    #[inline]
    fn time(self, count: u64) -> Timestamp {
        let ns = self.unit.nanos(count);
        Timestamp(ns.saturating_add_signed(self.offset))
    }
}

/// Where the walk is in the file.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Nothing recognised yet: the first four bytes decide.
    Magic,
    /// Classic pcap; its 24-byte file header is next.
    PcapHeader { order: Order, nanos: bool },
    /// Classic pcap records.
    Pcap { order: Order, nanos: bool, link_type: u32 },
    /// pcapng blocks, in the byte order of the current section (a section header sets it).
    PcapNg { order: Order },
}

/// Why the walk stopped for good.
enum Fault {
    /// The start of the file is not a capture's; the hex of its first bytes, or what is wrong.
    NotACapture(String),
    /// A record after the header is unusable: what is wrong.
    Broken(String),
}

/// The format state machine: fed buffers, it hands every complete record's frame to the callback and
/// says how much of the buffer it used and how many bytes the next record needs.
struct Walker {
    stage: Stage,
    info: FileInfo,
    /// Timestamp conversion of each pcapng interface of the current section, by index.
    clocks: Vec<Clock>,
    /// Whether the file header (pcap) or first section header (pcapng) has been read: a problem before
    /// it means the file is not a capture at all.
    started: bool,
    /// After a walk that stopped short: the size of the record at the stop, which the bytes left do
    /// not hold entirely. Never more than [`MAX_RECORD`].
    need: usize,
}

impl Default for Walker {
    fn default() -> Walker {
        Walker { stage: Stage::Magic, info: FileInfo::default(), clocks: Vec::new(), started: false, need: 0 }
    }
}

impl Walker {
    /// Walks every complete record at the start of `buf`; returns the bytes used.
    fn walk(&mut self, buf: &[u8], each: &mut impl FnMut(RawFrame<'_>)) -> Result<usize, Fault> {
        let mut used = 0;
        loop {
            let rest = &buf[used..];
            match self.stage {
                Stage::Magic => {
                    let Some(magic) = rest.first_chunk::<4>() else {
                        self.need = 4;
                        return Ok(used);
                    };
                    self.stage = match *magic {
                        PCAPNG_SHB => {
                            self.info.format = "pcapng";
                            // The magic is the section header's block type: the block walk reads it.
                            Stage::PcapNg { order: Order::Little }
                        }
                        [0xd4, 0xc3, 0xb2, 0xa1] => Stage::PcapHeader { order: Order::Little, nanos: false },
                        [0xa1, 0xb2, 0xc3, 0xd4] => Stage::PcapHeader { order: Order::Big, nanos: false },
                        [0x4d, 0x3c, 0xb2, 0xa1] => Stage::PcapHeader { order: Order::Little, nanos: true },
                        [0xa1, 0xb2, 0x3c, 0x4d] => Stage::PcapHeader { order: Order::Big, nanos: true },
                        _ => return Err(Fault::NotACapture(hex(magic))),
                    };
                }
                Stage::PcapHeader { order, nanos } => {
                    self.info.format = "pcap";
                    let Some(h) = rest.first_chunk::<24>() else {
                        self.need = 24;
                        return Ok(used);
                    };
                    // Magic, version 2.4, time zone, sigfigs and snaplen: nothing in them changes how
                    // records are read (libpcap ignores them too). The link type is the low 16 bits;
                    // the bits above carry FCS information.
                    let link_type = order.u32_at(h, 20) & 0xffff;
                    self.info.link_types = vec![link_type];
                    self.stage = Stage::Pcap { order, nanos, link_type };
                    self.started = true;
                    used += 24;
                }
                Stage::Pcap { order, nanos, link_type } => {
                    return Ok(used + self.walk_pcap(rest, order, nanos, link_type, each)?);
                }
                Stage::PcapNg { .. } => return Ok(used + self.walk_pcapng(rest, each)?),
            }
        }
    }

    /// Classic pcap records: a 16-byte header (seconds, fraction, captured and original length), then
    /// the captured bytes.
    #[inline]
    fn walk_pcap(
        &mut self,
        mut rest: &[u8],
        order: Order,
        nanos: bool,
        link_type: u32,
        each: &mut impl FnMut(RawFrame<'_>),
    ) -> Result<usize, Fault> {
        let len = rest.len();
        let frac_scale = if nanos { 1 } else { 1000 };
        loop {
            let Some((h, body)) = rest.split_first_chunk::<16>() else {
                self.need = 16;
                break;
            };
            let caplen = order.u32_at(h, 8) as usize;
            if caplen > MAX_RECORD {
                return Err(Fault::Broken(format!(
                    "corrupt record: frame {} claims {caplen} captured bytes (at most {MAX_RECORD} are believed)",
                    self.info.frames + 1
                )));
            }
            let Some((data, after)) = body.split_at_checked(caplen) else {
                self.need = 16 + caplen;
                break;
            };
            self.info.frames += 1;
            let secs = u64::from(order.u32_at(h, 0));
            let frac = order.u32_at(h, 4).saturating_mul(frac_scale);
            each(RawFrame {
                link_type,
                interface: 0,
                number: self.info.frames,
                time: Timestamp::from_secs_nanos(secs, frac),
                data,
            });
            rest = after;
        }
        Ok(len - rest.len())
    }

    /// pcapng blocks: type, total length, body, the total length again.
    fn walk_pcapng(&mut self, mut rest: &[u8], each: &mut impl FnMut(RawFrame<'_>)) -> Result<usize, Fault> {
        let len = rest.len();
        let Stage::PcapNg { mut order } = self.stage else { return Ok(0) };
        loop {
            // 12 bytes: the smallest block, and enough to see a section header's byte-order magic.
            let Some(head) = rest.first_chunk::<12>() else {
                self.need = 12;
                break;
            };
            let is_section = head[..4] == PCAPNG_SHB;
            if is_section {
                order = match head[8..12] {
                    [0x1a, 0x2b, 0x3c, 0x4d] => Order::Big,
                    [0x4d, 0x3c, 0x2b, 0x1a] => Order::Little,
                    _ => return Err(self.corrupt("a section header without the byte-order magic 1a2b3c4d")),
                };
                self.stage = Stage::PcapNg { order };
            }
            let block_type = order.u32_at(head, 0);
            let total = order.u32_at(head, 4) as usize;
            if total < 12 || !total.is_multiple_of(4) {
                return Err(self.corrupt(&format!("a block of type {block_type:#x} claims {total} bytes")));
            }
            if total > MAX_RECORD {
                return Err(self.corrupt(&format!(
                    "a block of type {block_type:#x} claims {total} bytes (at most {MAX_RECORD} are believed)"
                )));
            }
            let Some((block, after)) = rest.split_at_checked(total) else {
                self.need = total;
                break;
            };
            let (body, trailer) = block[8..].split_at(total - 12);
            if trailer.first_chunk::<4>().map(|t| order.u32_at(t, 0)) != Some(total as u32) {
                return Err(self.corrupt(&format!(
                    "a block of type {block_type:#x} ends with another length than it starts with"
                )));
            }
            match block_type {
                0x0a0d_0d0a => self.section(order, body)?,
                1 => self.interface(order, body)?,
                6 => {
                    let Some((h, data)) = body.split_first_chunk::<20>() else {
                        return Err(self.corrupt("an enhanced packet block shorter than its fixed fields"));
                    };
                    let iface = order.u32_at(h, 0) as usize;
                    self.packet(iface, order.ts_at(h, 4), order.u32_at(h, 12) as usize, data, each)?;
                }
                3 => {
                    // Simple packet: no interface field (always the first; a file that describes
                    // none is read as Ethernet, as before), no timestamp. The data is padded; the
                    // original length says how much of it is the frame.
                    let Some((h, data)) = body.split_first_chunk::<4>() else {
                        return Err(self.corrupt("a simple packet block without its length field"));
                    };
                    let n = (order.u32_at(h, 0) as usize).min(data.len());
                    self.info.frames += 1;
                    each(RawFrame {
                        link_type: self.info.link_types.first().copied().unwrap_or(1),
                        interface: 0,
                        number: self.info.frames,
                        time: Timestamp(0),
                        data: &data[..n],
                    });
                }
                2 => {
                    // The obsolete packet block: an enhanced packet block with a 16-bit interface
                    // and a drop count.
                    let Some((h, data)) = body.split_first_chunk::<20>() else {
                        return Err(self.corrupt("a packet block shorter than its fixed fields"));
                    };
                    let iface = usize::from(order.u16_at(h, 0));
                    self.packet(iface, order.ts_at(h, 4), order.u32_at(h, 12) as usize, data, each)?;
                }
                // Name resolution, interface statistics, decryption secrets, custom and unknown blocks.
                _ => {}
            }
            rest = after;
        }
        Ok(len - rest.len())
    }

    /// A section header: a new byte order (already taken) and a new numbering of interfaces.
    fn section(&mut self, order: Order, body: &[u8]) -> Result<(), Fault> {
        let Some(h) = body.first_chunk::<16>() else {
            return Err(self.corrupt("a section header shorter than its fixed fields"));
        };
        let (major, minor) = (order.u16_at(h, 4), order.u16_at(h, 6));
        if major != 1 {
            return Err(self.corrupt(&format!("pcapng version {major}.{minor}, not 1.x")));
        }
        self.info.link_types.clear();
        self.clocks.clear();
        self.started = true;
        Ok(())
    }

    /// An interface description: link type, snaplen, and the options that say how to read its times.
    fn interface(&mut self, order: Order, body: &[u8]) -> Result<(), Fault> {
        let Some((h, mut options)) = body.split_first_chunk::<8>() else {
            return Err(self.corrupt("an interface description shorter than its fixed fields"));
        };
        let link_type = u32::from(order.u16_at(h, 0));
        let mut clock = Clock { unit: Unit::DEFAULT, offset: 0 };
        while let Some((oh, after)) = options.split_first_chunk::<4>() {
            let (code, n) = (order.u16_at(oh, 0), usize::from(order.u16_at(oh, 2)));
            if code == 0 {
                break;
            }
            let Some(value) = after.get(..n) else {
                return Err(self.corrupt("an interface option runs past the end of its block"));
            };
            match (code, value) {
                // if_tsresol
                (9, [v, ..]) => clock.unit = Unit::from_tsresol(*v),
                // if_tsoffset: seconds, signed.
                (14, v) => {
                    if let Some(b) = v.first_chunk::<8>() {
                        let secs = match order {
                            Order::Little => i64::from_le_bytes(*b),
                            Order::Big => i64::from_be_bytes(*b),
                        };
                        clock.offset = secs.saturating_mul(1_000_000_000);
                    }
                }
                _ => {}
            }
            // Values are padded to 32 bits; a last option without its padding is forgiven.
            options = after.get(n.next_multiple_of(4)..).unwrap_or(&[]);
        }
        self.info.link_types.push(link_type);
        self.clocks.push(clock);
        Ok(())
    }

    /// A frame of an enhanced (or obsolete) packet block.
    #[inline]
    fn packet(
        &mut self,
        iface: usize,
        count: u64,
        caplen: usize,
        data: &[u8],
        each: &mut impl FnMut(RawFrame<'_>),
    ) -> Result<(), Fault> {
        let (Some(&link_type), Some(&clock)) = (self.info.link_types.get(iface), self.clocks.get(iface))
        else {
            return Err(Fault::Broken(format!(
                "packet names interface {iface}, which the file never described"
            )));
        };
        let Some(data) = data.get(..caplen) else {
            return Err(self.corrupt(&format!(
                "frame {} claims {caplen} captured bytes, more than its block holds",
                self.info.frames + 1
            )));
        };
        self.info.frames += 1;
        each(RawFrame {
            link_type,
            interface: iface as u16,
            number: self.info.frames,
            time: clock.time(count),
            data,
        });
        Ok(())
    }

    fn corrupt(&self, what: &str) -> Fault {
        Fault::Broken(format!("corrupt record: {what}"))
    }

    /// The error for a fault, with the file's name: before the header is read, the file is no capture.
    fn error(&self, path: &str, fault: Fault) -> ReplayError {
        let path = path.to_owned();
        match fault {
            Fault::NotACapture(magic) => ReplayError::NotACapture { path, magic },
            Fault::Broken(_) if !self.started => ReplayError::NotACapture { path, magic: self.bad_header() },
            Fault::Broken(detail) => ReplayError::Broken { path, after_frame: self.info.frames, detail },
        }
    }

    fn bad_header(&self) -> String {
        match self.stage {
            Stage::PcapNg { .. } => "a pcapng magic but no valid section header".to_owned(),
            _ => "a pcap magic but no valid header".to_owned(),
        }
    }

    fn read_error(&self, path: &str, source: std::io::Error) -> ReplayError {
        if self.started {
            let detail = format!("read error: {source}");
            ReplayError::Broken { path: path.to_owned(), after_frame: self.info.frames, detail }
        } else {
            ReplayError::Io { path: path.to_owned(), source }
        }
    }

    /// The end of the input, with `left` not walked (the start of a record that never ends).
    fn finish(self, path: &str, left: &[u8]) -> Result<FileInfo, ReplayError> {
        let path = path.to_owned();
        match self.stage {
            Stage::Magic if left.is_empty() => {
                Err(ReplayError::NotACapture { path, magic: "nothing: the file is empty".to_owned() })
            }
            Stage::Magic => Err(ReplayError::NotACapture { path, magic: hex(left) }),
            _ if !self.started => Err(ReplayError::NotACapture { path, magic: self.bad_header() }),
            _ if !left.is_empty() => {
                Err(ReplayError::Broken { path, after_frame: self.info.frames, detail: TRUNCATED.to_owned() })
            }
            _ => Ok(self.info),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
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

#[cfg(test)]
mod tests {
    use super::*;

    type Frames = Vec<(u32, u16, u64, u64, Vec<u8>)>;

    /// Frames (link type, interface, number, nanoseconds, bytes) and the outcome, errors as text.
    fn from_bytes(b: &[u8]) -> (Frames, Result<FileInfo, String>) {
        let mut frames = Frames::new();
        let r = read_capture_bytes(b, "t", |f| {
            frames.push((f.link_type, f.interface, f.number, f.time.0, f.data.to_vec()))
        });
        (frames, r.map_err(|e| e.to_string()))
    }

    fn from_reader(r: impl Read, chunk: usize) -> (Frames, Result<FileInfo, String>) {
        let mut frames = Frames::new();
        let r = read_chunked(r, "t", chunk, |f| {
            frames.push((f.link_type, f.interface, f.number, f.time.0, f.data.to_vec()))
        });
        (frames, r.map_err(|e| e.to_string()))
    }

    /// Reads `b` whole and in every small chunk size, also with reads that return less than asked;
    /// all must agree. Returns what they agree on.
    fn read_every_way(b: &[u8]) -> (Frames, Result<FileInfo, String>) {
        let whole = from_bytes(b);
        for chunk in (1..=80).chain([511, 4096, CHUNK]) {
            assert_eq!(from_reader(b, chunk), whole, "chunk {chunk}");
        }
        for most in [1, 3, 7] {
            assert_eq!(from_reader(Trickle { rest: b, most }, 64), whole, "reads of at most {most}");
        }
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, b).unwrap();
        for chunk in [13, 4096, CHUNK] {
            std::io::Seek::rewind(&mut file).unwrap();
            let mut frames = Frames::new();
            let r = read_ahead(&file, "t", chunk, |f| {
                frames.push((f.link_type, f.interface, f.number, f.time.0, f.data.to_vec()))
            });
            assert_eq!((frames, r.map_err(|e| e.to_string())), whole, "read ahead in chunks of {chunk}");
        }
        whole
    }

    /// A reader that hands out at most `most` bytes per read, as pipes and sockets do.
    struct Trickle<'a> {
        rest: &'a [u8],
        most: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.most).min(self.rest.len());
            buf[..n].copy_from_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            Ok(n)
        }
    }

    /// A reader that fails once `rest` is read.
    struct Failing<'a> {
        rest: &'a [u8],
    }

    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.rest.is_empty() {
                return Err(std::io::Error::other("disk on fire"));
            }
            self.rest.read(buf)
        }
    }

    fn put16(out: &mut Vec<u8>, o: Order, v: u16) {
        out.extend_from_slice(&match o {
            Order::Little => v.to_le_bytes(),
            Order::Big => v.to_be_bytes(),
        });
    }

    fn put32(out: &mut Vec<u8>, o: Order, v: u32) {
        out.extend_from_slice(&match o {
            Order::Little => v.to_le_bytes(),
            Order::Big => v.to_be_bytes(),
        });
    }

    /// A classic pcap file header.
    fn pcap(o: Order, nanos: bool, link: u32) -> Vec<u8> {
        let mut out = Vec::new();
        put32(&mut out, o, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        put16(&mut out, o, 2);
        put16(&mut out, o, 4);
        put32(&mut out, o, 0);
        put32(&mut out, o, 0);
        put32(&mut out, o, 262_144);
        put32(&mut out, o, link);
        out
    }

    fn record(out: &mut Vec<u8>, o: Order, secs: u32, frac: u32, data: &[u8]) {
        put32(out, o, secs);
        put32(out, o, frac);
        put32(out, o, data.len() as u32);
        put32(out, o, data.len() as u32);
        out.extend_from_slice(data);
    }

    /// A pcapng block: the body padded to 32 bits, framed by its total length.
    fn block(out: &mut Vec<u8>, o: Order, block_type: u32, body: &[u8]) {
        let padded = body.len().next_multiple_of(4);
        put32(out, o, block_type);
        put32(out, o, (12 + padded) as u32);
        out.extend_from_slice(body);
        out.resize(out.len() + padded - body.len(), 0);
        put32(out, o, (12 + padded) as u32);
    }

    fn shb(out: &mut Vec<u8>, o: Order) {
        let mut b = Vec::new();
        put32(&mut b, o, 0x1a2b_3c4d);
        put16(&mut b, o, 1);
        put16(&mut b, o, 0);
        b.extend_from_slice(&[0xff; 8]); // section length unknown
        block(out, o, 0x0a0d_0d0a, &b);
    }

    fn idb(out: &mut Vec<u8>, o: Order, link: u16, options: &[(u16, &[u8])]) {
        let mut b = Vec::new();
        put16(&mut b, o, link);
        put16(&mut b, o, 0);
        put32(&mut b, o, 0);
        for (code, value) in options {
            put16(&mut b, o, *code);
            put16(&mut b, o, value.len() as u16);
            b.extend_from_slice(value);
            b.resize(b.len().next_multiple_of(4), 0);
        }
        if !options.is_empty() {
            b.extend_from_slice(&[0; 4]);
        }
        block(out, o, 1, &b);
    }

    fn epb(out: &mut Vec<u8>, o: Order, iface: u32, count: u64, data: &[u8]) {
        let mut b = Vec::new();
        put32(&mut b, o, iface);
        put32(&mut b, o, (count >> 32) as u32);
        put32(&mut b, o, count as u32);
        put32(&mut b, o, data.len() as u32);
        put32(&mut b, o, data.len() as u32);
        b.extend_from_slice(data);
        block(out, o, 6, &b);
    }

    const T0: u64 = 1_700_000_000;

    #[test]
    fn classic_pcap_in_both_byte_orders_and_resolutions() {
        for o in [Order::Little, Order::Big] {
            for nanos in [false, true] {
                let mut f = pcap(o, nanos, 1);
                record(&mut f, o, T0 as u32, 123_456, &[1; 60]);
                record(&mut f, o, T0 as u32 + 1, 0, &[]);
                record(&mut f, o, T0 as u32 + 2, 999_999, &[2, 3, 4]);
                let (frames, info) = read_every_way(&f);
                let scale = if nanos { 1 } else { 1000 };
                assert_eq!(
                    frames,
                    [
                        (1, 0, 1, T0 * 1_000_000_000 + 123_456 * scale, vec![1; 60]),
                        (1, 0, 2, (T0 + 1) * 1_000_000_000, vec![]),
                        (1, 0, 3, (T0 + 2) * 1_000_000_000 + 999_999 * scale, vec![2, 3, 4]),
                    ],
                    "{o:?} nanos {nanos}"
                );
                assert_eq!(info, Ok(FileInfo { format: "pcap", link_types: vec![1], frames: 3 }));
            }
        }
    }

    #[test]
    fn pcap_link_type_is_the_low_16_bits() {
        // The bits above carry "FCS present" and its length.
        let (_, info) = from_bytes(&pcap(Order::Little, false, 0x1400_0001));
        assert_eq!(info.unwrap().link_types, [1]);
    }

    #[test]
    fn records_cut_by_chunk_ends_are_completed() {
        // read_every_way reads with chunks of 1 to 80 bytes: every header and body of these
        // records is split at every offset somewhere.
        let o = Order::Little;
        let mut f = pcap(o, false, 1);
        for i in 0..20u8 {
            record(&mut f, o, T0 as u32, u32::from(i), &vec![i; usize::from(i) * 7]);
        }
        let (frames, info) = read_every_way(&f);
        assert_eq!(frames.len(), 20);
        assert_eq!(frames[19].4, vec![19; 133]);
        assert_eq!(info.unwrap().frames, 20);
    }

    #[test]
    fn the_growing_first_reads_lose_no_record() {
        // About 600 KB: reads of 32, 64, 128, 256 KiB and then a whole chunk, each ending inside a
        // record somewhere.
        let o = Order::Little;
        let mut f = pcap(o, false, 1);
        let mut n = 0u32;
        while f.len() < 600_000 {
            record(&mut f, o, T0 as u32, n, &vec![n as u8; 60 + (n as usize * 37) % 1400]);
            n += 1;
        }
        let whole = from_bytes(&f);
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &f).unwrap();
        std::io::Seek::rewind(&mut file).unwrap();
        let mut frames = Frames::new();
        let r = read_ahead(&file, "t", CHUNK, |f| {
            frames.push((f.link_type, f.interface, f.number, f.time.0, f.data.to_vec()))
        });
        assert_eq!(frames.len(), n as usize);
        assert_eq!((frames, r.map_err(|e| e.to_string())), whole);
    }

    /// Feeds `f` to a [`Chunks`] `chunk` bytes at a time; returns the frames' lengths, the outcome and
    /// the largest the carry buffer grew.
    fn carried(f: &[u8], chunk: usize) -> (Vec<usize>, Result<u64, String>, usize) {
        let mut c = Chunks::default();
        let mut lens = Vec::new();
        let mut largest = 0;
        for piece in f.chunks(chunk) {
            if let Err(e) = c.feed(piece, &mut |f| lens.push(f.data.len())) {
                return (lens, Err(c.walker.error("t", e).to_string()), largest);
            }
            largest = largest.max(c.carry.capacity());
        }
        (lens, c.finish("t").map(|i| i.frames).map_err(|e| e.to_string()), largest)
    }

    #[test]
    fn a_record_bigger_than_the_chunk_is_carried_in_a_buffer_of_its_size() {
        let o = Order::Big;
        let mut f = pcap(o, false, 1);
        record(&mut f, o, 1, 0, &[7; 5000]);
        record(&mut f, o, 2, 0, &[8; 10]);
        let (lens, r, largest) = carried(&f, 64);
        assert_eq!((lens, r), (vec![5000, 10], Ok(2)));
        assert_eq!(largest, 16 + 5000);
    }

    #[test]
    fn truncated_header_is_not_a_capture() {
        let f = pcap(Order::Little, false, 1);
        for cut in 4..24 {
            let (frames, r) = read_every_way(&f[..cut]);
            assert!(frames.is_empty());
            assert!(r.unwrap_err().contains("a pcap magic but no valid header"), "cut at {cut}");
        }
        let mut ng = Vec::new();
        shb(&mut ng, Order::Little);
        let (_, r) = read_every_way(&ng[..20]);
        assert!(r.unwrap_err().contains("a pcapng magic but no valid section header"));
    }

    #[test]
    fn truncated_record_header_or_body_is_broken_after_the_last_whole_frame() {
        let o = Order::Little;
        let mut f = pcap(o, true, 1);
        record(&mut f, o, 1, 0, &[1; 42]);
        record(&mut f, o, 2, 0, &[2; 42]);
        let whole = f.len();
        record(&mut f, o, 3, 0, &[3; 42]);
        for cut in whole + 1..f.len() {
            let (frames, r) = read_every_way(&f[..cut]);
            assert_eq!(frames.len(), 2);
            assert_eq!(r, Err(format!("t: broken after frame 2: {TRUNCATED}")), "cut at {cut}");
        }
        let (_, r) = read_every_way(&f[..whole]);
        assert_eq!(r.unwrap().frames, 2);
    }

    #[test]
    fn absurd_lengths_are_corrupt_records_and_allocate_nothing() {
        let o = Order::Little;
        let mut f = pcap(o, false, 1);
        record(&mut f, o, 1, 0, &[1; 60]);
        let mut bad = f.clone();
        put32(&mut bad, o, 2);
        put32(&mut bad, o, 0);
        put32(&mut bad, o, 0xffff_fff0);
        put32(&mut bad, o, 0xffff_fff0);
        bad.extend_from_slice(&[0; 100]);
        let (frames, r) = read_every_way(&bad);
        assert_eq!(frames.len(), 1);
        let e = r.unwrap_err();
        assert!(e.starts_with("t: broken after frame 1: corrupt record: frame 2 claims 4294967280"), "{e}");
        let (lens, r, largest) = carried(&bad, 64);
        assert_eq!((lens.len(), r), (1, Err(e)));
        // The first record, cut by the first chunk's end, is the largest carried.
        assert!(largest <= 16 + 60, "the carry grew to {largest}");

        // Just over the limit: still refused before anything is allocated for it.
        let mut over = f.clone();
        record(&mut over, o, 2, 0, &[]);
        let at = over.len() - 8;
        over[at..at + 4].copy_from_slice(&(MAX_RECORD as u32 + 1).to_le_bytes());
        let (_, r, largest) = carried(&over, 64);
        assert!(r.unwrap_err().contains("corrupt record"));
        assert!(largest <= 16 + 60, "the carry grew to {largest}");

        // The same for a pcapng block.
        let mut ng = Vec::new();
        shb(&mut ng, o);
        idb(&mut ng, o, 1, &[]);
        put32(&mut ng, o, 6);
        put32(&mut ng, o, 0xffff_fff0);
        ng.extend_from_slice(&[0; 64]);
        let (_, r, largest) = carried(&ng, 16);
        let e = r.unwrap_err();
        assert!(e.contains("corrupt record: a block of type 0x6 claims 4294967280 bytes"), "{e}");
        // The 28-byte section header is the largest block carried.
        assert!(largest <= 28, "the carry grew to {largest}");
        assert_eq!(read_every_way(&ng).1, Err(e));
    }

    #[test]
    fn not_a_capture_names_its_first_bytes() {
        let (_, r) = read_every_way(b"");
        assert!(r.unwrap_err().contains("it starts with nothing: the file is empty"));
        let (_, r) = read_every_way(b"\x01\x02");
        assert!(r.unwrap_err().contains("it starts with 01 02)"));
        let (_, r) = read_every_way(b"this is text");
        assert!(r.unwrap_err().contains("it starts with 74 68 69 73)"));
    }

    #[test]
    fn read_errors_before_and_after_the_header() {
        let r = from_reader(Failing { rest: b"" }, 64).1;
        assert_eq!(r, Err("t: cannot read: disk on fire".to_owned()));
        let o = Order::Little;
        let mut f = pcap(o, false, 1);
        record(&mut f, o, 1, 0, &[1; 60]);
        let (frames, r) = from_reader(Failing { rest: &f }, 64);
        assert_eq!(frames.len(), 1);
        assert_eq!(r, Err("t: broken after frame 1: read error: disk on fire".to_owned()));
    }

    #[test]
    fn pcapng_sections_in_both_byte_orders_renumber_interfaces() {
        let mut f = Vec::new();
        shb(&mut f, Order::Big);
        idb(&mut f, Order::Big, 1, &[]);
        idb(&mut f, Order::Big, 113, &[(9, &[9])]);
        epb(&mut f, Order::Big, 1, 5_000_000_001, &[1, 2, 3]);
        epb(&mut f, Order::Big, 0, 7, &[4; 5]);
        shb(&mut f, Order::Little);
        idb(&mut f, Order::Little, 276, &[(2, b"eth0"), (9, &[6])]);
        epb(&mut f, Order::Little, 0, T0 * 1_000_000 + 1, &[5; 60]);
        let (frames, info) = read_every_way(&f);
        assert_eq!(
            frames,
            [
                (113, 1, 1, 5_000_000_001, vec![1, 2, 3]),
                (1, 0, 2, 7_000, vec![4; 5]),
                (276, 0, 3, T0 * 1_000_000_000 + 1_000, vec![5; 60]),
            ]
        );
        // The interfaces of the last section.
        assert_eq!(info, Ok(FileInfo { format: "pcapng", link_types: vec![276], frames: 3 }));
    }

    #[test]
    fn pcapng_timestamp_resolutions_and_offset() {
        let o = Order::Little;
        let mut f = Vec::new();
        shb(&mut f, o);
        idb(&mut f, o, 1, &[]); // microseconds
        idb(&mut f, o, 1, &[(9, &[3])]); // milliseconds
        idb(&mut f, o, 1, &[(9, &[0x80 | 10])]); // 1/1024 s
        idb(&mut f, o, 1, &[(9, &[0x80 | 30])]); // 1/2^30 s
        idb(&mut f, o, 1, &[(9, &[12])]); // picoseconds
        idb(&mut f, o, 1, &[(9, &[0]), (14, &(-100i64).to_le_bytes())]); // seconds, 100 s earlier
        let counts = [2_000_001, 2_001, 2048 + 512, 3 << 30, 5_000_000_001_000, 1_000];
        for (i, c) in counts.into_iter().enumerate() {
            epb(&mut f, o, i as u32, c, &[]);
        }
        let times: Vec<u64> = read_every_way(&f).0.iter().map(|f| f.3).collect();
        assert_eq!(
            times,
            [2_000_001_000, 2_001_000_000, 2_500_000_000, 3_000_000_000, 5_000_000_001, 900_000_000_000]
        );
    }

    #[test]
    fn pcapng_simple_and_obsolete_packet_blocks_and_unknown_blocks() {
        let o = Order::Big;
        let mut f = Vec::new();
        shb(&mut f, o);
        idb(&mut f, o, 1, &[]);
        block(&mut f, o, 0x0bad, &[1, 2, 3, 4]); // unknown: skipped
        block(&mut f, o, 5, &[0; 16]); // interface statistics: skipped
        // Simple packet: 6 bytes of a 7-byte original, padded to 8 in the block.
        let mut spb = Vec::new();
        put32(&mut spb, o, 6);
        spb.extend_from_slice(&[9; 6]);
        block(&mut f, o, 3, &spb);
        // Obsolete packet block on interface 0, drops 0.
        let mut pb = Vec::new();
        put16(&mut pb, o, 0);
        put16(&mut pb, o, 0);
        put32(&mut pb, o, 0);
        put32(&mut pb, o, 42);
        put32(&mut pb, o, 3);
        put32(&mut pb, o, 3);
        pb.extend_from_slice(&[8; 3]);
        block(&mut f, o, 2, &pb);
        let (frames, info) = read_every_way(&f);
        assert_eq!(frames, [(1, 0, 1, 0, vec![9; 6]), (1, 0, 2, 42_000, vec![8; 3])]);
        assert_eq!(info.unwrap().frames, 2);
    }

    #[test]
    fn pcapng_corrupt_blocks() {
        let o = Order::Little;
        let mut start = Vec::new();
        shb(&mut start, o);
        idb(&mut start, o, 1, &[]);
        epb(&mut start, o, 0, 1, &[1; 10]);
        let broken = |f: &[u8]| {
            let (frames, r) = read_every_way(f);
            assert_eq!(frames.len(), 1);
            r.unwrap_err()
        };

        let mut f = start.clone();
        epb(&mut f, o, 3, 1, &[1; 10]);
        assert_eq!(
            broken(&f),
            "t: broken after frame 1: packet names interface 3, which the file never described"
        );

        let mut f = start.clone();
        epb(&mut f, o, 0, 1, &[1; 10]);
        let at = f.len() - 4 - 12 - 8; // the captured length of the last block
        f[at..at + 4].copy_from_slice(&13u32.to_le_bytes());
        assert!(broken(&f).contains("frame 2 claims 13 captured bytes, more than its block holds"));

        let mut f = start.clone();
        epb(&mut f, o, 0, 1, &[1; 10]);
        let end = f.len();
        f[end - 4..].copy_from_slice(&40u32.to_le_bytes());
        assert!(broken(&f).contains("ends with another length than it starts with"));

        for total in [0u32, 8, 13] {
            let mut f = start.clone();
            put32(&mut f, o, 6);
            put32(&mut f, o, total);
            f.extend_from_slice(&[0; 32]);
            assert!(broken(&f).contains(&format!("claims {total} bytes")), "{total}");
        }

        let mut f = start.clone();
        block(&mut f, o, 6, &[0; 8]);
        assert!(broken(&f).contains("an enhanced packet block shorter than its fixed fields"));

        let mut f = start.clone();
        block(&mut f, o, 1, &[1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 8, 0, 6]);
        assert!(broken(&f).contains("an interface option runs past the end of its block"));

        // A later section header without its byte-order magic.
        let mut f = start.clone();
        block(&mut f, o, 0x0a0d_0d0a, &[0; 16]);
        assert!(broken(&f).contains("without the byte-order magic"));
    }

    #[test]
    fn pcapng_bad_first_section_is_not_a_capture() {
        let mut f = Vec::new();
        shb(&mut f, Order::Little);
        f[8] = 0x4e; // byte-order magic
        assert!(read_every_way(&f).1.unwrap_err().contains("a pcapng magic but no valid section header"));
        let mut f = Vec::new();
        shb(&mut f, Order::Little);
        f[12] = 2; // version 2.0
        assert!(read_every_way(&f).1.unwrap_err().contains("a pcapng magic but no valid section header"));
    }

    /// The shared capture directory, found by walking up from the crate.
    fn testdata() -> std::path::PathBuf {
        let mut dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        loop {
            let candidate = dir.join("shared/testdata/pcap");
            if candidate.is_dir() {
                return candidate;
            }
            dir = dir.parent().expect("no shared/testdata/pcap directory above CARGO_MANIFEST_DIR");
        }
    }

    /// Every shared capture, read from the file, from memory and in odd chunk sizes, against what
    /// tcpdump 4.99 (libpcap, an independent reader) says of it: frames, first and last time, and the
    /// size of what `tcpdump -w` writes back (24 + 16 per frame + the captured bytes).
    #[test]
    fn shared_captures_read_as_tcpdump_reads_them() {
        let expected: [(&str, u32, usize, u64, u64, usize); 16] = [
            ("ndpi_iphone.pcap", 1, 500, 1582454552576659000, 1582454600748726000, 229926),
            ("ndpi_nest_log_sink.pcap", 1, 1000, 1536712992228658000, 1536719715232392000, 146010),
            ("suricata_detect-arp-03-vlan.pcap", 1, 3, 1774860599986551000, 1774860599987729000, 222),
            ("tcpdump_802.1ad_QinQ.pcap", 1, 2, 1575842394599412000, 1575842394599680000, 184),
            ("tcpdump_arp-oobr.pcap", 1, 2282, 1268518494558191000, 1268528829059036000, 172916),
            ("tcpdump_eapon1.pcap", 1, 114, 1080055048958610000, 1080055156024149000, 16412),
            ("tcpdump_ipoib.pcap", 242, 30, 1555605152697187000, 1555605229323197000, 5078),
            ("wireshark_arp-storm.pcap", 1, 622, 1096984865275344000, 1096984894244450000, 47296),
            ("zeek_arp-who-has-radiotap.pcap", 127, 2, 1439902891705224000, 1439902891746878000, 294),
            ("zeek_communityid_icmp6.pcap", 1, 49, 921159907494265000, 921159966755968000, 5356),
            ("zeek_icmp6-nd-options.pcap", 1, 20, 1219649643536057000, 1219649684149686000, 2144),
            ("zeek_linux_dlt_sll2.pcap", 276, 6, 1660534249872259000, 1660535793578961000, 672),
            ("zeek_linuxsll-arp.pcap", 113, 12, 1593626138922595000, 1593626147243274000, 960),
            ("chrissanders_arp_resolution.pcapng", 1, 2, 1165780762880651000, 1165780762884732000, 144),
            ("chrissanders_arppoison.pcapng", 1, 165, 1279251572730147000, 1279251587122706000, 64897),
            ("zeek_snap-arp.pcapng", 1, 4, 1355254140359551000, 1355254140390551000, 328),
        ];
        for (name, link, n, first, last, written) in expected {
            let path = testdata().join(name);
            let bytes = std::fs::read(&path).unwrap();
            let (frames, info) = read_every_way(&bytes);
            let info = info.unwrap_or_else(|e| panic!("{e}"));
            let mut from_file = Frames::new();
            let file_info = read_capture(&path, |f| {
                from_file.push((f.link_type, f.interface, f.number, f.time.0, f.data.to_vec()))
            })
            .unwrap();
            assert_eq!((&from_file, &file_info), (&frames, &info), "{name}");
            assert_eq!(info.frames, n as u64, "{name}");
            assert_eq!(info.format, if name.ends_with(".pcapng") { "pcapng" } else { "pcap" });
            assert!(frames.iter().all(|f| f.0 == link), "{name}");
            assert_eq!((frames[0].3, frames[n - 1].3), (first, last), "{name}");
            let captured: usize = frames.iter().map(|f| f.4.len()).sum();
            assert_eq!(24 + 16 * n + captured, written, "{name}");
            assert!(frames.iter().enumerate().all(|(i, f)| f.2 == i as u64 + 1), "{name}");
        }
    }
}
