//! Live capture of ARP and IPv6 neighbour discovery through a Linux `AF_PACKET` TPACKET_V3 ring.
//!
//! One socket per interface: a classic BPF filter in the kernel keeps only ARP and ND solicitations and
//! advertisements (untagged or behind up to two VLAN tags), and accepted frames land in a ring of
//! blocks shared with the kernel through `mmap`. The kernel hands a block to user space when it is full
//! or when its `block_timeout_ms` timer expires with frames in it; [`Ring::drain`] reads every
//! handed-over block and gives it back, so a busy link costs one `poll` per block instead of one
//! `recvfrom` per frame.
//!
//! This is the only module of l2watch with `unsafe`: socket options, `mmap`, and reading the blocks the
//! kernel writes. Every block says why it is sound.
//!
//! Interface life cycle (Linux `packet_notifier`): when the bound interface goes down the kernel
//! unhooks the socket and sets `ENETDOWN` as its pending error, and when it comes up again with the same
//! ifindex the socket is hooked again and frames flow on the same ring; [`wait`] reports the first as
//! [`CaptureError::InterfaceDown`]. When the interface is deleted the socket is unbound for good (ifindex
//! -1); if it was up at that moment the deletion first takes it down, so [`wait`] reports `ENETDOWN`,
//! which becomes [`CaptureError::InterfaceGone`] because the ifindex no longer exists. An interface
//! deleted while already down reports nothing: poll [`Ring::interface_present`] while one is down.

use crate::wire::decode::FrameMeta;
use crate::wire::observation::Timestamp;

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Most rings one [`wait`] call watches; the poll set lives on the stack.
pub const MAX_WAIT: usize = 16;

/// `tp_frame_size`. TPACKET_V3 packs frames of any length into blocks and ignores it, but the kernel
/// still checks it divides the block size and is at least the header length.
const FRAME_SIZE: usize = 2048;

// Offsets in a block descriptor (`tpacket_block_desc`, `hdr.bh1` at 8) and a frame header
// (`tpacket3_hdr`, followed by a `sockaddr_ll` at TPACKET_ALIGN(48)). Fixed by the kernel ABI; the layout
// test checks them against libc's definitions.
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;
const TP_NEXT_OFFSET: usize = 0;
const TP_SEC: usize = 4;
const TP_NSEC: usize = 8;
const TP_SNAPLEN: usize = 12;
const TP_STATUS: usize = 20;
const TP_MAC: usize = 24;
const TP_VLAN_TCI: usize = 32;
const FRAME_SLL: usize = 48;
const SLL_PKTTYPE: usize = 10;
/// Bytes of frame header that must lie inside the block before any field is read.
const FRAME_HDR_LEN: usize = FRAME_SLL + size_of::<libc::sockaddr_ll>();

/// Sizes of the ring the kernel fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per block: a multiple of the page size. An ARP frame takes 128-144 bytes of it.
    pub block_size: usize,
    /// Number of blocks; the kernel drops frames (and counts them) when all are in user space.
    pub block_count: usize,
    /// Milliseconds after which a partly filled block is handed over anyway: the worst-case latency on
    /// a quiet link. 0 lets the kernel pick from the link speed.
    pub block_timeout_ms: u32,
    /// Bytes kept of each frame; ARP and ND need under 100.
    pub snaplen: u32,
}

impl Default for RingConfig {
    /// 16 blocks of 256 KiB (4 MiB, about 30 000 ARP frames), 20 ms, 256 bytes.
    fn default() -> RingConfig {
        RingConfig { block_size: 256 << 10, block_count: 16, block_timeout_ms: 20, snaplen: 256 }
    }
}

impl RingConfig {
    /// The `PACKET_RX_RING` request, after the checks whose kernel answer would only be `EINVAL`.
    /// The whole ring is kept under 2 GiB.
    fn request(&self) -> Result<libc::tpacket_req3, CaptureError> {
        let page = page_size();
        let fits = |n: usize| u32::try_from(n).ok().filter(|&n| n > 0 && n <= i32::MAX as u32);
        let total = self.block_size.checked_mul(self.block_count).and_then(fits);
        match (fits(self.block_size), fits(self.block_count), total) {
            // FRAME_SIZE divides every page size, so it divides the block size too.
            (Some(size), Some(count), Some(_))
                if self.block_size.is_multiple_of(page) && self.snaplen > 0 =>
            {
                Ok(libc::tpacket_req3 {
                    tp_block_size: size,
                    tp_block_nr: count,
                    tp_frame_size: FRAME_SIZE as u32,
                    tp_frame_nr: size / FRAME_SIZE as u32 * count,
                    tp_retire_blk_tov: self.block_timeout_ms,
                    tp_sizeof_priv: 0,
                    tp_feature_req_word: 0,
                })
            }
            _ => Err(CaptureError::InvalidConfig(format!(
                "{self:?}: blocks must be a multiple of the page size ({page} bytes), block count and \
                 snaplen must not be 0, and the whole ring must stay under 2 GiB"
            ))),
        }
    }
}

/// Why capture could not start or continue.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The interface name does not exist in this network namespace.
    #[error("no network interface named {0}")]
    NoSuchInterface(String),
    /// The process lacks CAP_NET_RAW.
    #[error(
        "permission denied: l2watch needs CAP_NET_RAW to capture and send frames; run it as root or \
         grant the capability (setcap cap_net_raw+ep /path/to/l2watch, or in Kubernetes \
         securityContext.capabilities.add: [NET_RAW])"
    )]
    PermissionDenied,
    /// The [`RingConfig`] cannot work, or [`wait`] got more rings than it can watch.
    #[error("invalid capture configuration: {0}")]
    InvalidConfig(String),
    /// A system call failed for another reason.
    #[error("{op} on {interface}: {source}")]
    Io {
        /// The failed call, e.g. `setsockopt(PACKET_RX_RING)`.
        op: &'static str,
        /// Interface name.
        interface: String,
        /// The OS error.
        source: io::Error,
    },
    /// The interface went down (`ENETDOWN`) but still exists: the socket resumes when it comes up.
    #[error("interface {interface} went down: {source}")]
    InterfaceDown {
        /// Interface name.
        interface: String,
        /// The socket error.
        source: io::Error,
    },
    /// The interface was deleted (`ENETDOWN` and the ifindex is gone, or `ENODEV`/`ENXIO`): the socket
    /// is unbound for good; close the ring and reopen by name later.
    #[error("interface {interface} is gone: {source}")]
    InterfaceGone {
        /// Interface name.
        interface: String,
        /// The socket error.
        source: io::Error,
    },
}

/// Maps a failed call's error; permission errors mean the same thing whichever call reports them.
fn os_error(op: &'static str, interface: &str, source: io::Error) -> CaptureError {
    match source.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => CaptureError::PermissionDenied,
        _ => CaptureError::Io { op, interface: interface.to_owned(), source },
    }
}

/// The interface-state meaning of a socket or send error, if it has one.
fn link_error(ifindex: u32, interface: &str, source: io::Error) -> Result<CaptureError, io::Error> {
    let interface = interface.to_owned();
    match source.raw_os_error() {
        Some(libc::ENETDOWN) if index_exists(ifindex) => {
            Ok(CaptureError::InterfaceDown { interface, source })
        }
        Some(libc::ENETDOWN | libc::ENODEV | libc::ENXIO) => {
            Ok(CaptureError::InterfaceGone { interface, source })
        }
        _ => Err(source),
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf takes no pointers and has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).unwrap_or(4096)
}

fn index_exists(ifindex: u32) -> bool {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has the IF_NAMESIZE bytes if_indextoname may write.
    !unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) }.is_null()
}

/// Opens an `AF_PACKET` raw socket with protocol 0: it queues nothing until bound with a protocol.
fn packet_socket(interface: &str) -> Result<OwnedFd, CaptureError> {
    // SAFETY: socket takes no pointers.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_error("socket", interface, io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn interface_index(name: &str) -> Result<u32, CaptureError> {
    let missing = || CaptureError::NoSuchInterface(name.to_owned());
    let cname = CString::new(name).map_err(|_| missing())?;
    // SAFETY: cname is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index != 0 {
        return Ok(index);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENODEV | libc::ENXIO | libc::EINVAL) => Err(missing()),
        _ => Err(os_error("if_nametoindex", name, err)),
    }
}

/// `setsockopt` with a value the kernel only reads.
fn set_option<T>(fd: BorrowedFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    let len = size_of::<T>() as libc::socklen_t;
    // SAFETY: value points at size_of::<T>() readable bytes for the duration of the call. The kernel
    // only reads user memory for the options used here (ints, tpacket_req3, and sock_fprog, whose
    // filter array the caller keeps alive across the call).
    let rc = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), len) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Binds to one interface. Protocol 0 binds for sending only: no receive hook is registered.
fn bind(fd: BorrowedFd, ifindex: u32, protocol: u16, interface: &str) -> Result<(), CaptureError> {
    let addr = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    let len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: addr is a complete sockaddr_ll and len is its size; the kernel only reads it.
    let rc = unsafe { libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), len) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENODEV | libc::ENXIO) => Err(CaptureError::NoSuchInterface(interface.to_owned())),
        _ => Err(os_error("bind", interface, err)),
    }
}

fn send_frame(
    fd: BorrowedFd,
    ifindex: u32,
    interface: &str,
    frame: &[u8],
    flags: libc::c_int,
) -> Result<(), CaptureError> {
    loop {
        // SAFETY: the pointer and length describe the live slice `frame`; send only reads it.
        let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), flags) };
        // A packet socket sends the whole frame or fails (packet_snd returns the length).
        if n >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(
                link_error(ifindex, interface, err).unwrap_or_else(|e| os_error("send", interface, e))
            );
        }
    }
}

/// Reads and clears the socket's pending error (`SO_ERROR`), as `Ok(None)` when there is none.
fn take_socket_error(fd: BorrowedFd) -> io::Result<Option<io::Error>> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid for writes of the sizes given; SO_ERROR writes one int.
    let rc = unsafe {
        libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_ERROR, (&raw mut value).cast(), &mut len)
    };
    match rc {
        0 if value == 0 => Ok(None),
        0 => Ok(Some(io::Error::from_raw_os_error(value))),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Kernel and ring counters since the previous [`Ring::stats`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Frames the filter accepted and the kernel put into the ring (`tp_packets - tp_drops`; the
    /// kernel's own `tp_packets` counts drops too).
    pub received: u64,
    /// Frames the filter accepted but the kernel dropped because every block was in user space.
    pub dropped: u64,
    /// Times the ring froze (all blocks in user space) (`tp_freeze_q_cnt`).
    pub freeze_q: u64,
    /// Frames [`Ring::drain`] skipped because their header pointed outside the block. Never seen from a
    /// correct kernel; with one, the rest of that block is skipped too.
    pub malformed: u64,
}

/// An `AF_PACKET` TPACKET_V3 receive ring bound to one interface. Owns the socket and the mapping.
#[derive(Debug)]
pub struct Ring {
    fd: OwnedFd,
    map: NonNull<u8>,
    block_size: usize,
    block_count: usize,
    next_block: usize,
    frames: u64,
    malformed: u64,
    interface_id: u16,
    ifindex: u32,
    name: String,
}

// SAFETY: the mapping belongs to this Ring alone and holds no thread-affine state; it is only read or
// written through `&mut self` (drain) and unmapped in Drop, so moving the Ring moves its sole owner.
unsafe impl Send for Ring {}

impl Ring {
    /// Opens a ring on `ifname` that sees ARP and ND frames in both directions. `interface_id` is
    /// copied into every [`FrameMeta`].
    pub fn open(ifname: &str, interface_id: u16, cfg: &RingConfig) -> Result<Ring, CaptureError> {
        let req = cfg.request()?;
        let fd = packet_socket(ifname)?;
        let ifindex = interface_index(ifname)?;
        let err = |op| move |e| os_error(op, ifname, e);
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        set_option(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_VERSION, &version)
            .map_err(err("setsockopt(PACKET_VERSION)"))?;
        let filter = neighbour_filter(cfg.snaplen);
        let prog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
        set_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
            .map_err(err("setsockopt(SO_ATTACH_FILTER)"))?;
        set_option(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .map_err(err("setsockopt(PACKET_RX_RING)"))?;
        let len = cfg.block_size * cfg.block_count;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: a fresh shared mapping of the ring the kernel just allocated for this socket, at an
        // address of the kernel's choosing; nothing else in the process aliases it.
        let map = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd.as_raw_fd(), 0) };
        if map == libc::MAP_FAILED {
            return Err(os_error("mmap", ifname, io::Error::last_os_error()));
        }
        let map = NonNull::new(map.cast::<u8>())
            .ok_or_else(|| os_error("mmap", ifname, io::Error::other("null mapping")))?;
        let ring = Ring {
            fd,
            map,
            block_size: cfg.block_size,
            block_count: cfg.block_count,
            next_block: 0,
            frames: 0,
            malformed: 0,
            interface_id,
            ifindex,
            name: ifname.to_owned(),
        };
        // Binding last: frames start to flow only once the filter and the ring are in place.
        bind(ring.fd.as_fd(), ifindex, libc::ETH_P_ALL as u16, ifname)?;
        Ok(ring)
    }

    /// The interface name given at open.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kernel's index of the interface.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Whether the ifindex this ring is bound to still exists (false once the interface was deleted).
    pub fn interface_present(&self) -> bool {
        index_exists(self.ifindex)
    }

    /// Hands every frame in the blocks the kernel has passed to user space to `f`, then gives the
    /// blocks back. Never blocks; reads at most `block_count` blocks so a flood cannot hold the caller.
    /// Returns the number of frames delivered. No allocation or system call.
    pub fn drain(&mut self, mut f: impl FnMut(&FrameMeta, &[u8])) -> usize {
        let mut delivered = 0;
        for _ in 0..self.block_count {
            // SAFETY: next_block < block_count, so the block lies inside the mapping.
            let block = unsafe { self.map.as_ptr().add(self.next_block * self.block_size) };
            // SAFETY: blocks are page-aligned, so block_status at offset 8 is aligned for a u32 and lies
            // in mapped memory for the life of self. The kernel writes it concurrently, hence atomic.
            let status = unsafe { AtomicU32::from_ptr(block.add(BLOCK_STATUS).cast::<u32>()) };
            // Acquire pairs with the kernel's smp_wmb before it sets TP_STATUS_USER: the frames it wrote
            // into the block are visible once we see the flag.
            if status.load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                break;
            }
            {
                // SAFETY: the kernel has handed this block to user space and does not write it until
                // we store TP_STATUS_KERNEL below, after this shared slice is gone. Its bytes are
                // initialised (the kernel zeroes ring pages) and any value is a valid u8.
                let data = unsafe { std::slice::from_raw_parts(block.cast_const(), self.block_size) };
                delivered += self.read_block(data, &mut f);
            }
            // Release: our reads of the block happen before the kernel may refill it.
            status.store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.next_block = (self.next_block + 1) % self.block_count;
        }
        delivered
    }

    /// Walks the frames of one block. Every offset is bounds-checked: a corrupt header skips the rest
    /// of the block rather than reading outside it.
    fn read_block(&mut self, block: &[u8], f: &mut impl FnMut(&FrameMeta, &[u8])) -> usize {
        let num_pkts = u32_at(block, BLOCK_NUM_PKTS).unwrap_or(0);
        let mut offset = u32_at(block, BLOCK_FIRST_PKT).map_or(usize::MAX, |o| o as usize);
        let mut delivered = 0;
        for i in 0..num_pkts {
            let Some((meta, bytes, next)) = self.parse_frame(block, offset) else {
                self.malformed += 1;
                break;
            };
            f(&meta, bytes);
            delivered += 1;
            match offset.checked_add(next as usize) {
                Some(o) if next != 0 => offset = o,
                _ => {
                    self.malformed += u64::from(i + 1 < num_pkts);
                    break;
                }
            }
        }
        delivered
    }

    fn parse_frame<'b>(&mut self, block: &'b [u8], offset: usize) -> Option<(FrameMeta, &'b [u8], u32)> {
        let frame = block.get(offset..)?;
        let hdr = frame.get(..FRAME_HDR_LEN)?;
        let mac = u16_at(hdr, TP_MAC)? as usize;
        let snaplen = u32_at(hdr, TP_SNAPLEN)? as usize;
        let bytes = frame.get(mac..mac.checked_add(snaplen)?)?;
        let status = u32_at(hdr, TP_STATUS)?;
        let time = Timestamp::from_secs_nanos(u64::from(u32_at(hdr, TP_SEC)?), u32_at(hdr, TP_NSEC)?);
        let next = u32_at(hdr, TP_NEXT_OFFSET)?;
        self.frames += 1;
        let meta = FrameMeta {
            time,
            frame: self.frames,
            interface: self.interface_id,
            outgoing: hdr[FRAME_SLL + SLL_PKTTYPE] == libc::PACKET_OUTGOING,
            vlan: (status & libc::TP_STATUS_VLAN_VALID != 0)
                .then(|| u32_at(hdr, TP_VLAN_TCI).map_or(0, |tci| (tci & 0x0fff) as u16)),
        };
        Some((meta, bytes, next))
    }

    /// Kernel counters since the previous call (the kernel resets them on read); add them to
    /// monotonic counters. See [`RingStats`] for what each counts.
    pub fn stats(&mut self) -> Result<RingStats, CaptureError> {
        let mut st = libc::tpacket_stats_v3 { tp_packets: 0, tp_drops: 0, tp_freeze_q_cnt: 0 };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: st and len are valid for writes; the kernel writes at most len bytes of plain u32s.
        let rc = unsafe {
            let st = (&raw mut st).cast();
            libc::getsockopt(self.fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_STATISTICS, st, &mut len)
        };
        if rc != 0 {
            return Err(os_error("getsockopt(PACKET_STATISTICS)", &self.name, io::Error::last_os_error()));
        }
        Ok(RingStats {
            received: u64::from(st.tp_packets.saturating_sub(st.tp_drops)),
            dropped: u64::from(st.tp_drops),
            freeze_q: u64::from(st.tp_freeze_q_cnt),
            malformed: std::mem::take(&mut self.malformed),
        })
    }

    /// Transmits one complete Ethernet frame on the interface. This ring does not see it, other
    /// packet sockets on the host do (as outgoing). Never blocks: the capture thread sends its probes
    /// itself, and a stalled transmit queue must not stop capture, so a full queue is an error.
    pub fn send(&self, frame: &[u8]) -> Result<(), CaptureError> {
        send_frame(self.fd.as_fd(), self.ifindex, &self.name, frame, libc::MSG_DONTWAIT)
    }

    /// Reads and clears the socket's pending error, mapped like [`wait`] maps it.
    pub fn take_error(&self) -> Result<(), CaptureError> {
        match take_socket_error(self.fd.as_fd()) {
            Ok(None) => Ok(()),
            Ok(Some(e)) => {
                Err(link_error(self.ifindex, &self.name, e)
                    .unwrap_or_else(|e| os_error("poll", &self.name, e)))
            }
            Err(e) => Err(os_error("getsockopt(SO_ERROR)", &self.name, e)),
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: map and this length are exactly what mmap returned in open; no slice into the mapping
        // outlives a drain call, and the Ring is never used again.
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.block_size * self.block_count) };
    }
}

impl AsFd for Ring {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(*b.get(at..at.checked_add(4)?)?.first_chunk()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(*b.get(at..at.checked_add(2)?)?.first_chunk()?))
}

/// What [`wait`] saw on one ring.
#[derive(Debug, Default)]
pub struct Readiness {
    /// At least one block is in user space: call [`Ring::drain`].
    pub readable: bool,
    /// The socket reported an error, already read and cleared. [`CaptureError::InterfaceDown`]: keep
    /// the ring. [`CaptureError::InterfaceGone`]: close it and reopen by name later.
    pub error: Option<CaptureError>,
}

/// Waits up to `timeout` (rounded up to whole milliseconds) until one of `rings` has a block to drain
/// or an error, and fills `ready[i]` for `rings[i]`. Returns how many rings have something to report;
/// 0 on timeout or signal. Allocates nothing unless it reports an error.
pub fn wait(rings: &[&Ring], timeout: Duration, ready: &mut [Readiness]) -> Result<usize, CaptureError> {
    if rings.len() > MAX_WAIT || ready.len() < rings.len() {
        let why = format!("wait on {} rings with {} slots (at most {MAX_WAIT})", rings.len(), ready.len());
        return Err(CaptureError::InvalidConfig(why));
    }
    let mut fds = [libc::pollfd { fd: -1, events: 0, revents: 0 }; MAX_WAIT];
    for (p, r) in fds.iter_mut().zip(rings) {
        *p = libc::pollfd { fd: r.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    }
    ready.iter_mut().for_each(|r| *r = Readiness::default());
    let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: fds holds at least rings.len() initialised pollfd entries, which poll may write.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), rings.len() as libc::nfds_t, ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(os_error("poll", "all rings", err));
    }
    let mut count = 0;
    for ((p, ring), slot) in fds.iter().zip(rings).zip(ready.iter_mut()) {
        slot.readable = p.revents & libc::POLLIN != 0;
        if p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            slot.error = match ring.take_error() {
                Err(e) => Some(e),
                // A pending error someone else already read, or POLLERR from the error queue.
                Ok(()) if p.revents & libc::POLLERR != 0 => None,
                Ok(()) => Some(os_error("poll", &ring.name, io::Error::from_raw_os_error(libc::EBADF))),
            };
        }
        count += usize::from(slot.readable || slot.error.is_some());
    }
    Ok(count)
}

/// A send-only `AF_PACKET` socket for tools that only transmit. Bound with protocol 0 and without a
/// ring, it receives nothing, so it costs the kernel nothing per frame on the wire.
#[derive(Debug)]
pub struct Sender {
    fd: OwnedFd,
    ifindex: u32,
    name: String,
}

impl Sender {
    /// Opens a socket that sends on `ifname`.
    pub fn open(ifname: &str) -> Result<Sender, CaptureError> {
        let fd = packet_socket(ifname)?;
        let ifindex = interface_index(ifname)?;
        bind(fd.as_fd(), ifindex, 0, ifname)?;
        Ok(Sender { fd, ifindex, name: ifname.to_owned() })
    }

    /// Transmits one complete Ethernet frame. Packet sockets on the host, rings included, see it as
    /// outgoing. Blocks only while the socket's send buffer is full.
    pub fn send(&self, frame: &[u8]) -> Result<(), CaptureError> {
        send_frame(self.fd.as_fd(), self.ifindex, &self.name, frame, 0)
    }

    /// The interface name given at open.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl AsFd for Sender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Classic BPF opcodes used by [`neighbour_filter`] (`linux/bpf_common.h`).
const LDX_IMM: u32 = libc::BPF_LDX | libc::BPF_W | libc::BPF_IMM;
const LDH_ABS: u32 = libc::BPF_LD | libc::BPF_H | libc::BPF_ABS;
const LDB_IND: u32 = libc::BPF_LD | libc::BPF_B | libc::BPF_IND;
const JEQ: u32 = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
const RET: u32 = libc::BPF_RET | libc::BPF_K;

const fn op(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter { code: code as u16, jt: 0, jf: 0, k }
}

/// `if A == k` at instruction `pc`, jumping to the absolute instructions `yes` and `no`. cBPF jumps
/// are relative and forward only; the check fails the build (the filter is a `const`).
const fn jeq(pc: usize, k: u32, yes: usize, no: usize) -> libc::sock_filter {
    assert!(yes > pc && no > pc && yes - pc <= 256 && no - pc <= 256);
    libc::sock_filter { code: JEQ as u16, jt: (yes - pc - 1) as u8, jf: (no - pc - 1) as u8, k }
}

const IPV6: usize = 18;
const ACCEPT: usize = 23;
const REJECT: usize = 24;

/// Keeps `snaplen` bytes of frames that [`NEIGHBOUR_FILTER`] accepts.
fn neighbour_filter(snaplen: u32) -> [libc::sock_filter; 25] {
    let mut filter = NEIGHBOUR_FILTER;
    filter[ACCEPT].k = snaplen;
    filter
}

/// The kernel filter: ARP (0x0806), and ICMPv6 neighbour solicitation (135) and advertisement (136)
/// directly in IPv6 (0x86dd, next header 58, no extension headers, which ND never uses), untagged or
/// behind one or two VLAN tags (0x8100, 0x88a8, 0x9100) still in the bytes. The kernel strips the
/// outermost tag before packet sockets see a frame, so two tags in the bytes are three on the wire.
/// X holds the bytes of tags seen, so the IPv6 checks load relative to it. Returns the number of bytes
/// to keep (patched in by [`neighbour_filter`]) or 0 (drop); loads beyond the frame drop it too.
const NEIGHBOUR_FILTER: [libc::sock_filter; 25] = [
    op(LDX_IMM, 0),                // 0: no tags
    op(LDH_ABS, 12),               // 1: ethertype
    jeq(2, 0x0806, ACCEPT, 3),     // 2: ARP
    jeq(3, 0x86dd, IPV6, 4),       // 3: IPv6
    jeq(4, 0x8100, 7, 5),          // 4: 802.1Q
    jeq(5, 0x88a8, 7, 6),          // 5: 802.1ad
    jeq(6, 0x9100, 7, REJECT),     // 6: old QinQ
    op(LDX_IMM, 4),                // 7: one tag
    op(LDH_ABS, 16),               // 8: ethertype after it
    jeq(9, 0x0806, ACCEPT, 10),    // 9
    jeq(10, 0x86dd, IPV6, 11),     // 10
    jeq(11, 0x8100, 14, 12),       // 11
    jeq(12, 0x88a8, 14, 13),       // 12
    jeq(13, 0x9100, 14, REJECT),   // 13
    op(LDX_IMM, 8),                // 14: two tags
    op(LDH_ABS, 20),               // 15
    jeq(16, 0x0806, ACCEPT, 17),   // 16
    jeq(17, 0x86dd, IPV6, REJECT), // 17: a third tag is not followed
    op(LDB_IND, 14 + 6),           // 18 IPV6: next header
    jeq(19, 58, 20, REJECT),       // 19: ICMPv6
    op(LDB_IND, 14 + 40),          // 20: ICMPv6 type
    jeq(21, 135, ACCEPT, 22),      // 21: neighbour solicitation
    jeq(22, 136, ACCEPT, REJECT),  // 22: neighbour advertisement
    op(RET, u32::MAX),             // 23 ACCEPT
    op(RET, 0),                    // 24 REJECT
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    const B_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];
    const SECOND: Duration = Duration::from_secs(1);

    fn ip(args: &str) {
        let out = Command::new("ip").args(args.split_whitespace()).output().expect("run ip (iproute2)");
        assert!(out.status.success(), "ip {args}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Runs `f` on a thread in a new network namespace holding the veth pair a <-> b (up, fixed MACs,
    /// no IPv6 addresses so the kernel sends no ND of its own). Fails if the namespace cannot be made.
    fn in_netns(f: impl FnOnce() + Send + 'static) {
        let run = move || {
            let ns = || std::fs::read_link("/proc/thread-self/ns/net").expect("read thread-self/ns/net");
            let host = ns();
            // SAFETY: unshare takes no pointers; CLONE_NEWNET moves only this thread (and the processes
            // it spawns) into a new network namespace, which goes away when the thread and its sockets do.
            let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "unshare(CLONE_NEWNET): {} (run as root)", io::Error::last_os_error());
            assert_ne!(ns(), host, "still in the host's network namespace");
            ip("link add name a address 02:00:00:00:00:0a type veth peer name b address 02:00:00:00:00:0b");
            for dev in ["a", "b"] {
                ip(&format!("link set dev {dev} addrgenmode none"));
                ip(&format!("link set dev {dev} up"));
            }
            f();
        };
        std::thread::spawn(run).join().unwrap_or_else(|p| std::panic::resume_unwind(p));
    }

    fn arp(spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
        let mut f = [[0xff; 6], B_MAC].concat();
        f.extend([0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend(B_MAC.iter().chain(&spa).chain(&[0; 6]).chain(&tpa));
        f
    }

    /// An IPv6 ICMPv6 message of `kind` with a 32-byte body (checksum not filled in: nobody checks).
    fn icmp6(kind: u8) -> Vec<u8> {
        let mut f = [[0x33, 0x33, 0xff, 0, 0, 1], B_MAC].concat();
        f.extend([0x86, 0xdd, 0x60, 0, 0, 0, 0, 32, 58, 255]);
        f.extend([0xfe, 0x80].iter().chain(&[0; 13]).chain(&[0x0b])); // fe80::b
        f.extend([0xff, 2].iter().chain(&[0; 9]).chain(&[1, 0xff, 0, 0, 1])); // ff02::1:ff00:1
        f.extend([kind, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0x80].iter().chain(&[0; 13]).chain(&[1, 1, 1]));
        f.extend(B_MAC);
        f
    }

    fn udp4() -> Vec<u8> {
        let mut f = [[0xff; 6], B_MAC].concat();
        f.extend([0x08, 0, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 255]);
        f.extend([0, 68, 0, 67, 0, 8, 0, 0]);
        f
    }

    /// `inner` with VLAN tags (TPID, VLAN ID) inserted after the MAC addresses.
    fn tagged(inner: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
        let tags = tags.iter().flat_map(|&(tpid, vid)| [tpid.to_be_bytes(), vid.to_be_bytes()].concat());
        inner[..12].iter().copied().chain(tags).chain(inner[12..].iter().copied()).collect()
    }

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_nanos() as u64
    }

    type Got = Vec<(FrameMeta, Vec<u8>)>;

    /// wait + drain until `want` frames arrived or `timeout`, then once more to catch extras.
    fn collect(ring: &mut Ring, want: usize, timeout: Duration) -> Got {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut ready = [Readiness::default()];
        while got.len() < want && Instant::now() < deadline {
            wait(&[&*ring], Duration::from_millis(50), &mut ready).expect("wait");
            assert!(ready[0].error.is_none(), "{ready:?}");
            ring.drain(|m, b| got.push((*m, b.to_vec())));
        }
        std::thread::sleep(Duration::from_millis(80));
        ring.drain(|m, b| got.push((*m, b.to_vec())));
        got
    }

    fn check(got: &Got, want: &[&Vec<u8>], interface: u16, outgoing: bool, since: u64) {
        let bytes: Vec<&Vec<u8>> = got.iter().map(|(_, b)| b).collect();
        assert_eq!(bytes, want);
        for (i, (m, _)) in got.iter().enumerate() {
            assert_eq!((m.frame, m.interface, m.outgoing, m.vlan), (i as u64 + 1, interface, outgoing, None));
            assert!(m.time.0 + 1_000_000 >= since && m.time.0 <= now(), "{m:?} vs {since}");
        }
    }

    fn wait_one(ring: &Ring, timeout: Duration) -> (usize, Readiness) {
        let mut ready = [Readiness::default()];
        let n = wait(&[ring], timeout, &mut ready).expect("wait");
        let [r] = ready;
        (n, r)
    }

    #[test]
    fn layout_matches_kernel() {
        use std::mem::offset_of;
        assert_eq!(size_of::<libc::tpacket3_hdr>(), 48);
        assert_eq!(size_of::<libc::tpacket_block_desc>(), 48);
        assert_eq!(size_of::<libc::tpacket_req3>(), 28);
        assert_eq!(size_of::<libc::tpacket_stats_v3>(), 12);
        assert_eq!(size_of::<libc::sockaddr_ll>(), 20);
        let bh1 = offset_of!(libc::tpacket_block_desc, hdr);
        assert_eq!(bh1 + offset_of!(libc::tpacket_hdr_v1, block_status), BLOCK_STATUS);
        assert_eq!(bh1 + offset_of!(libc::tpacket_hdr_v1, num_pkts), BLOCK_NUM_PKTS);
        assert_eq!(bh1 + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt), BLOCK_FIRST_PKT);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_next_offset), TP_NEXT_OFFSET);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_sec), TP_SEC);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_nsec), TP_NSEC);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_snaplen), TP_SNAPLEN);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_status), TP_STATUS);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_mac), TP_MAC);
        let tci = offset_of!(libc::tpacket3_hdr, hv1) + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci);
        assert_eq!(tci, TP_VLAN_TCI);
        assert_eq!(FRAME_SLL, size_of::<libc::tpacket3_hdr>().next_multiple_of(libc::TPACKET_ALIGNMENT));
        assert_eq!(offset_of!(libc::sockaddr_ll, sll_pkttype), SLL_PKTTYPE);
    }

    #[test]
    fn config_and_error_mapping() {
        let cfg = RingConfig::default();
        assert_eq!((cfg.block_size * cfg.block_count, cfg.block_timeout_ms, cfg.snaplen), (4 << 20, 20, 256));
        for bad in [RingConfig { block_size: 1000, ..cfg }, RingConfig { block_count: 0, ..cfg }] {
            assert!(matches!(Ring::open("lo", 0, &bad), Err(CaptureError::InvalidConfig(_))));
        }
        let e = |errno| os_error("socket", "a", io::Error::from_raw_os_error(errno));
        assert!(matches!(e(libc::EPERM), CaptureError::PermissionDenied));
        assert!(matches!(e(libc::EACCES), CaptureError::PermissionDenied));
        assert!(matches!(e(libc::EINVAL), CaptureError::Io { op: "socket", .. }));
        assert!(CaptureError::PermissionDenied.to_string().contains("CAP_NET_RAW"));
        let gone = link_error(u32::MAX, "a", io::Error::from_raw_os_error(libc::ENETDOWN));
        assert!(matches!(gone, Ok(CaptureError::InterfaceGone { .. })));
        for name in ["l2watch-nosuch0", "bad\0name", "much-too-long-interface-name"] {
            let err = Ring::open(name, 0, &cfg).expect_err("no such interface");
            assert_eq!(err.to_string(), format!("no network interface named {name}"));
            assert!(matches!(Sender::open(name), Err(CaptureError::NoSuchInterface(_))));
        }
    }

    #[test]
    #[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
    fn captures_arp_and_nd_in_both_directions() {
        in_netns(|| {
            let cfg = RingConfig::default();
            let (mut ra, mut rb) = (Ring::open("a", 7, &cfg).unwrap(), Ring::open("b", 8, &cfg).unwrap());
            assert_eq!((ra.name(), rb.name()), ("a", "b"));
            let tx = Sender::open("b").unwrap();
            let (request, garp) = (arp([10, 0, 0, 2], [10, 0, 0, 1]), arp([10, 0, 0, 2], [10, 0, 0, 2]));
            let (ns, na, ra_, udp) = (icmp6(135), icmp6(136), icmp6(134), udp4());
            let mut udp6 = icmp6(135);
            udp6[20] = 17; // next header UDP, with 135 where the ICMPv6 type would be
            let since = now();
            for f in [&request, &udp, &garp, &ns, &ra_, &udp6, &na] {
                tx.send(f).unwrap();
            }
            let want = [&request, &garp, &ns, &na];
            check(&collect(&mut ra, 4, 2 * SECOND), &want, 7, false, since);
            check(&collect(&mut rb, 4, 2 * SECOND), &want, 8, true, since);
            // A ring does not see what it sends itself (skb_loop_sk); the peer does.
            rb.send(&garp).unwrap();
            let got = collect(&mut ra, 1, 2 * SECOND);
            assert_eq!(got.iter().map(|(m, b)| (m.frame, b)).collect::<Vec<_>>(), [(5, &garp)]);
            assert!(collect(&mut rb, 0, SECOND).is_empty());
            let st = ra.stats().unwrap();
            assert_eq!(st, RingStats { received: 5, ..RingStats::default() });
        });
    }

    #[test]
    #[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
    fn skips_corrupt_frames() {
        in_netns(|| {
            let mut ring = Ring::open("a", 3, &RingConfig::default()).unwrap();
            let mut block = vec![0u8; 4096];
            let put = |b: &mut [u8], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
            put(&mut block, BLOCK_NUM_PKTS, 3);
            put(&mut block, BLOCK_FIRST_PKT, 48);
            for (at, next, mac, snaplen) in [(48, 128, 82, 42), (176, 128, 82, 4000), (304, 0, 82, 42)] {
                put(&mut block, at + TP_NEXT_OFFSET, next);
                put(&mut block, at + TP_SNAPLEN, snaplen);
                block[at + TP_MAC..at + TP_MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
            }
            let mut seen = Vec::new();
            assert_eq!(
                ring.read_block(&block, &mut |m: &FrameMeta, b: &[u8]| seen.push((m.frame, b.len()))),
                1
            );
            put(&mut block, BLOCK_FIRST_PKT, 4090); // header would cross the block's end
            assert_eq!(ring.read_block(&block, &mut |_: &FrameMeta, _: &[u8]| panic!()), 0);
            put(&mut block, BLOCK_FIRST_PKT, 48);
            put(&mut block, TP_NEXT_OFFSET + 48, 0); // ends before num_pkts frames
            assert_eq!(ring.read_block(&block, &mut |_: &FrameMeta, _: &[u8]| {}), 1);
            assert_eq!(seen, [(1, 42)]);
            assert_eq!(ring.stats().unwrap().malformed, 3);
        });
    }

    #[test]
    #[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
    fn vlan_tags() {
        // This kernel has no CONFIG_VLAN_8021Q (no vlan devices), so tagged frames are sent raw. The
        // receive path strips the outer tag in core code (skb_vlan_untag), with or without vlan devices.
        in_netns(|| {
            let cfg = RingConfig::default();
            let (mut ra, mut rb) = (Ring::open("a", 0, &cfg).unwrap(), Ring::open("b", 0, &cfg).unwrap());
            let (tx, garp) = (Sender::open("b").unwrap(), arp([10, 0, 0, 2], [10, 0, 0, 2]));
            let dot1q = tagged(&garp, &[(0x8100, 0xa014)]); // priority 5, VLAN 20
            tx.send(&dot1q).unwrap();
            // Received: the tag is in tp_vlan_tci and gone from the bytes. Sent: still in the bytes.
            let got = collect(&mut ra, 1, 2 * SECOND);
            assert_eq!(got.iter().map(|(m, b)| (m.vlan, b)).collect::<Vec<_>>(), [(Some(20), &garp)]);
            let got = collect(&mut rb, 1, 2 * SECOND);
            assert_eq!(got.iter().map(|(m, b)| (m.vlan, b)).collect::<Vec<_>>(), [(None, &dot1q)]);
            // QinQ: the outer tag goes to tp_vlan_tci, inner ones stay in the bytes. Two tags left in
            // the bytes still pass; three do not; neither does tagged UDP.
            let (qinq_arp, qinq_ns) =
                ([(0x88a8, 100), (0x8100, 200)], [(0x8100, 1), (0x9100, 2), (0x88a8, 3)]);
            let sent = [
                tagged(&garp, &qinq_arp),
                tagged(&icmp6(135), &qinq_ns),
                tagged(&garp, &[(0x8100, 1), (0x8100, 2), (0x8100, 3), (0x8100, 4)]),
                tagged(&udp4(), &[(0x8100, 5)]),
            ];
            sent.iter().for_each(|f| tx.send(f).unwrap());
            let got = collect(&mut ra, 2, 2 * SECOND);
            let seen: Vec<(Option<u16>, &Vec<u8>)> = got.iter().map(|(m, b)| (m.vlan, b)).collect();
            let (arp1, ns2) = (tagged(&garp, &qinq_arp[1..]), tagged(&icmp6(135), &qinq_ns[1..]));
            assert_eq!(seen, [(Some(100), &arp1), (Some(1), &ns2)]);
        });
    }

    #[test]
    #[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
    fn counts_drops_and_resets_on_read() {
        in_netns(|| {
            let cfg = RingConfig { block_size: page_size(), block_count: 2, ..RingConfig::default() };
            let mut ra = Ring::open("a", 0, &cfg).unwrap();
            let (tx, garp) = (Sender::open("b").unwrap(), arp([10, 0, 0, 2], [10, 0, 0, 2]));
            (0..5000).for_each(|_| tx.send(&garp).unwrap());
            std::thread::sleep(Duration::from_millis(100));
            let st = ra.stats().unwrap();
            assert!(st.received + st.dropped >= 5000 && st.dropped > 0 && st.freeze_q > 0, "{st:?}");
            assert_eq!(ra.drain(|_, b| assert_eq!(b, garp)) as u64, st.received);
            assert_eq!(ra.stats().unwrap(), RingStats::default());
        });
    }

    #[test]
    #[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
    fn reports_deleted_interface() {
        in_netns(|| {
            let ra = Ring::open("a", 0, &RingConfig::default()).unwrap();
            let start = Instant::now();
            ip("link del dev a");
            let (n, r) = wait_one(&ra, SECOND);
            assert!(matches!(r.error, Some(CaptureError::InterfaceGone { .. })), "{r:?}");
            assert!(n == 1 && start.elapsed() < SECOND && !ra.interface_present());
            // Reading the error cleared it: nothing more is reported.
            assert_eq!(wait_one(&ra, Duration::from_millis(200)).0, 0);
        });
    }

    #[test]
    #[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
    fn survives_down_and_up() {
        in_netns(|| {
            let mut ra = Ring::open("a", 0, &RingConfig::default()).unwrap();
            let (tx, garp) = (Sender::open("b").unwrap(), arp([10, 0, 0, 2], [10, 0, 0, 2]));
            ip("link set dev a down");
            let (_, r) = wait_one(&ra, SECOND);
            let Some(CaptureError::InterfaceDown { source, .. }) = r.error else { panic!("{r:?}") };
            assert_eq!(source.raw_os_error(), Some(libc::ENETDOWN));
            assert_eq!(wait_one(&ra, Duration::from_millis(100)).0, 0);
            ip("link set dev a up");
            // b's transmit queue comes back asynchronously (linkwatch), so the first sends may vanish.
            let flowing = (0..20).any(|_| {
                tx.send(&garp).unwrap();
                !collect(&mut ra, 1, Duration::from_millis(100)).is_empty()
            });
            assert!(flowing, "no frames on the same socket after up");
            // Deleted while down: the kernel reports nothing more; only interface_present tells.
            ip("link set dev a down");
            assert!(matches!(wait_one(&ra, SECOND).1.error, Some(CaptureError::InterfaceDown { .. })));
            ip("link del dev a");
            assert_eq!(wait_one(&ra, Duration::from_millis(300)).0, 0);
            assert!(!ra.interface_present());
            // Opening on an interface that is down works and reports it down straight away.
            ip("link add name c type veth peer name d");
            let rc = Ring::open("c", 0, &RingConfig::default()).unwrap();
            assert!(matches!(wait_one(&rc, SECOND).1.error, Some(CaptureError::InterfaceDown { .. })));
        });
    }

    #[test]
    fn needs_cap_net_raw() {
        in_netns(|| {
            // _LINUX_CAPABILITY_VERSION_3 for this thread; two {effective, permitted, inheritable}.
            let (header, mut data) = ([0x2008_0522u32, 0], [0u32; 6]);
            // SAFETY: header and data have the sizes and layout of the kernel's v3 capability structs.
            let rc = unsafe { libc::syscall(libc::SYS_capget, header.as_ptr(), data.as_mut_ptr()) };
            assert_eq!(rc, 0, "capget: {}", io::Error::last_os_error());
            data[0] &= !(1 << 13); // CAP_NET_RAW from the effective set
            // SAFETY: as above; capset only lowers this thread's effective set, which ends with it.
            let rc = unsafe { libc::syscall(libc::SYS_capset, header.as_ptr(), data.as_ptr()) };
            assert_eq!(rc, 0, "capset: {}", io::Error::last_os_error());
            assert!(matches!(
                Ring::open("a", 0, &RingConfig::default()),
                Err(CaptureError::PermissionDenied)
            ));
            assert!(matches!(Sender::open("a"), Err(CaptureError::PermissionDenied)));
        });
    }
}
