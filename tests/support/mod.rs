//! Builds real capture files for integration tests.
//!
//! ```ignore
//! let mut cap = Capture::new();
//! cap.arp(ArpSpec::gratuitous(mac("02:00:00:00:00:01"), ip4("192.168.1.10")))
//!     .after(0.5)
//!     .arp(ArpSpec::reply(mac("02:00:00:00:00:02"), ip4("192.168.1.10"), mac("02:00:00:00:00:03"), ip4("192.168.1.3")));
//! let path = cap.temp_pcap();
//! ```
//!
//! Every test file that says `mod support;` compiles its own copy and uses only part of it.
#![allow(dead_code)]

pub mod daemon;
pub mod kube_api;
pub mod kube_cluster;
pub mod lan;
pub mod metrics;
pub mod repo;

use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use l2watch::wire::frame::{self, ArpSpec, NdSpec};
use l2watch::wire::mac::Mac;
use l2watch::wire::observation::Timestamp;

/// Parses a MAC address; panics on a typo, which is what a test wants.
pub fn mac(s: &str) -> Mac {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

/// Parses an IPv4 address.
pub fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap_or_else(|e| panic!("bad IPv4 address {s:?}: {e}"))
}

/// Parses an IPv6 address.
pub fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap_or_else(|e| panic!("bad IPv6 address {s:?}: {e}"))
}

/// A timestamp from seconds since the epoch, rounded to the microsecond like [`Capture::at`].
pub fn ts(secs: f64) -> Timestamp {
    Timestamp(secs_to_nanos(secs))
}

/// Where a capture starts unless told otherwise (2023-11-14, a round number of seconds).
pub const START_SECS: u64 = 1_700_000_000;

/// The link-layer header type written in the file header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1): frames as built.
    Ethernet,
    /// `LINKTYPE_LINUX_SLL` (113): each Ethernet frame behind a 16-byte Linux cooked header.
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): each Ethernet frame behind a 20-byte Linux cooked v2 header.
    LinuxSll2,
}

impl LinkType {
    /// The number a capture file stores.
    pub fn code(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
        }
    }
}

/// Resolution of the timestamps in a classic pcap file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Resolution {
    /// Magic `a1b2c3d4`: microseconds (the usual one).
    Micros,
    /// Magic `a1b23c4d`: nanoseconds.
    Nanos,
}

/// One record, link-layer header included.
#[derive(Clone, Debug)]
pub struct Record {
    /// Capture time.
    pub time: Timestamp,
    /// The record's bytes as written to the file.
    pub data: Vec<u8>,
}

/// A capture being built: a link type and a list of timed records.
#[derive(Clone, Debug)]
pub struct Capture {
    link: LinkType,
    resolution: Resolution,
    now: u64,
    outgoing: bool,
    ifindex: u32,
    records: Vec<Record>,
}

impl Default for Capture {
    fn default() -> Self {
        Capture::new()
    }
}

impl Capture {
    /// An empty Ethernet capture with microsecond timestamps starting at [`START_SECS`].
    pub fn new() -> Self {
        Capture {
            link: LinkType::Ethernet,
            resolution: Resolution::Micros,
            now: START_SECS * 1_000_000_000,
            outgoing: false,
            ifindex: 1,
            records: Vec::new(),
        }
    }

    /// An empty Linux cooked (SLL) capture, as `tcpdump -i any` writes.
    pub fn linux_sll() -> Self {
        Capture { link: LinkType::LinuxSll, ..Capture::new() }
    }

    /// An empty Linux cooked v2 (SLL2) capture, as newer `tcpdump -i any` writes.
    pub fn linux_sll2() -> Self {
        Capture { link: LinkType::LinuxSll2, ..Capture::new() }
    }

    /// Writes nanosecond timestamps in classic pcap (pcapng always stores nanoseconds).
    pub fn nanos(&mut self) -> &mut Self {
        self.resolution = Resolution::Nanos;
        self
    }

    /// The link type.
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// Time of the next frames, in seconds since the epoch, rounded to the microsecond because an
    /// `f64` near 1.7e9 cannot hold nanoseconds; use [`Capture::at_nanos`] for those.
    pub fn at(&mut self, secs: f64) -> &mut Self {
        self.now = secs_to_nanos(secs);
        self
    }

    /// Time of the next frames, exactly.
    pub fn at_nanos(&mut self, nanos: u64) -> &mut Self {
        self.now = nanos;
        self
    }

    /// Advances the time of the next frames by `secs` (rounded to the nanosecond).
    pub fn after(&mut self, secs: f64) -> &mut Self {
        assert!(secs >= 0.0, "time only moves forward; use at() to jump back");
        self.now += (secs * 1e9).round() as u64;
        self
    }

    /// The time the next frame gets.
    pub fn now(&self) -> Timestamp {
        Timestamp(self.now)
    }

    /// Marks the next frames as sent by this host (cooked captures only; Ethernet cannot say).
    pub fn outgoing(&mut self, yes: bool) -> &mut Self {
        self.outgoing = yes;
        self
    }

    /// Interface index written into SLL2 headers of the next frames (default 1).
    pub fn ifindex(&mut self, index: u32) -> &mut Self {
        self.ifindex = index;
        self
    }

    /// Appends an ARP frame.
    pub fn arp(&mut self, spec: ArpSpec) -> &mut Self {
        let mut buf = [0; frame::MAX_FRAME];
        let n = frame::write_arp(&mut buf, &spec).expect("MAX_FRAME fits every ARP frame");
        self.ethernet(&buf[..n])
    }

    /// Appends a neighbour-discovery frame.
    pub fn nd(&mut self, spec: NdSpec) -> &mut Self {
        let mut buf = [0; frame::MAX_FRAME];
        let n = frame::write_nd(&mut buf, &spec).expect("MAX_FRAME fits every ND frame");
        self.ethernet(&buf[..n])
    }

    /// Appends an Ethernet frame (any bytes from the destination MAC on), behind a cooked header
    /// when the capture is SLL or SLL2. A frame shorter than 14 bytes is stored as is.
    pub fn ethernet(&mut self, frame: &[u8]) -> &mut Self {
        let data = match self.link {
            LinkType::Ethernet => frame.to_vec(),
            _ if frame.len() < 14 => frame.to_vec(),
            LinkType::LinuxSll => self.sll(frame),
            LinkType::LinuxSll2 => self.sll2(frame),
        };
        self.raw(&data)
    }

    /// Appends `bytes` as one record exactly as given, link-layer header included: for malformed
    /// frames, or malformed cooked headers.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.records.push(Record { time: Timestamp(self.now), data: bytes.to_vec() });
        self
    }

    /// The records so far.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Number of records so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// No record yet.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The Linux packet type of a frame: what the kernel would have said about it.
    fn pkttype(&self, dst: Mac) -> u16 {
        if self.outgoing {
            4 // PACKET_OUTGOING
        } else if dst == Mac::BROADCAST {
            1 // PACKET_BROADCAST
        } else if dst.is_multicast() {
            2 // PACKET_MULTICAST
        } else {
            0 // PACKET_HOST
        }
    }

    fn sll(&self, frame: &[u8]) -> Vec<u8> {
        let dst = Mac::from_slice(frame).expect("checked length");
        let mut out = Vec::with_capacity(frame.len() + 2);
        out.extend_from_slice(&self.pkttype(dst).to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
        out.extend_from_slice(&6u16.to_be_bytes());
        out.extend_from_slice(&frame[6..12]);
        out.extend_from_slice(&[0, 0]); // the address field holds 8 bytes
        // The EtherType (0x8100 for a tagged frame, as libpcap writes after re-inserting the tag)
        // becomes the protocol; everything after it is the payload.
        out.extend_from_slice(&frame[12..]);
        out
    }

    fn sll2(&self, frame: &[u8]) -> Vec<u8> {
        let dst = Mac::from_slice(frame).expect("checked length");
        let mut out = Vec::with_capacity(frame.len() + 6);
        out.extend_from_slice(&frame[12..14]);
        out.extend_from_slice(&[0, 0]); // reserved
        out.extend_from_slice(&self.ifindex.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
        out.push(self.pkttype(dst) as u8);
        out.push(6);
        out.extend_from_slice(&frame[6..12]);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&frame[14..]);
        out
    }

    /// The capture as a classic pcap file (little-endian).
    pub fn pcap_bytes(&self) -> Vec<u8> {
        let (magic, per_sec) = match self.resolution {
            Resolution::Micros => (0xa1b2_c3d4u32, 1_000_000),
            Resolution::Nanos => (0xa1b2_3c4du32, 1_000_000_000),
        };
        let mut out = Vec::new();
        out.extend_from_slice(&magic.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        out.extend_from_slice(&SNAPLEN.to_le_bytes());
        out.extend_from_slice(&self.link.code().to_le_bytes());
        for r in &self.records {
            let secs = r.time.0 / 1_000_000_000;
            let frac = (r.time.0 % 1_000_000_000) / (1_000_000_000 / per_sec);
            out.extend_from_slice(&(secs as u32).to_le_bytes());
            out.extend_from_slice(&(frac as u32).to_le_bytes());
            out.extend_from_slice(&(r.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(r.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&r.data);
        }
        out
    }

    /// The capture as a pcapng file: one section, one interface, nanosecond timestamps.
    ///
    /// The interface declares `if_tsresol` 9 explicitly (the default is microseconds).
    pub fn pcapng_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Section header: byte-order magic, version 1.0, section length unknown (-1).
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        push_block(&mut out, 0x0a0d_0d0a, &shb);

        let mut idb = Vec::new();
        idb.extend_from_slice(&(self.link.code() as u16).to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&SNAPLEN.to_le_bytes());
        idb.extend_from_slice(&9u16.to_le_bytes()); // if_tsresol
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&[9, 0, 0, 0]); // 10^-9, padded to 4 bytes
        idb.extend_from_slice(&[0; 4]); // opt_endofopt
        push_block(&mut out, 1, &idb);

        for r in &self.records {
            let mut epb = Vec::with_capacity(20 + r.data.len() + 3);
            epb.extend_from_slice(&0u32.to_le_bytes()); // interface 0
            epb.extend_from_slice(&((r.time.0 >> 32) as u32).to_le_bytes());
            epb.extend_from_slice(&(r.time.0 as u32).to_le_bytes());
            epb.extend_from_slice(&(r.data.len() as u32).to_le_bytes());
            epb.extend_from_slice(&(r.data.len() as u32).to_le_bytes());
            epb.extend_from_slice(&r.data);
            epb.resize(epb.len().next_multiple_of(4), 0);
            push_block(&mut out, 6, &epb);
        }
        out
    }

    /// Writes the capture as a classic pcap file.
    pub fn write_pcap(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.pcap_bytes())
    }

    /// Writes the capture as a pcapng file.
    pub fn write_pcapng(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.pcapng_bytes())
    }

    /// Writes the capture as classic pcap to a fresh temporary file, deleted when the returned
    /// path is dropped.
    pub fn temp_pcap(&self) -> tempfile::TempPath {
        temp_file(".pcap", &self.pcap_bytes())
    }

    /// Writes the capture as pcapng to a fresh temporary file, deleted when the returned path is
    /// dropped.
    pub fn temp_pcapng(&self) -> tempfile::TempPath {
        temp_file(".pcapng", &self.pcapng_bytes())
    }
}

/// Largest record a reader should expect; ours are all far smaller.
const SNAPLEN: u32 = 65_535;

fn secs_to_nanos(secs: f64) -> u64 {
    assert!(secs >= 0.0, "time before the epoch: {secs}");
    let whole = secs.trunc();
    let micros = ((secs - whole) * 1e6).round() as u64;
    whole as u64 * 1_000_000_000 + micros * 1_000
}

fn push_block(out: &mut Vec<u8>, block_type: u32, body: &[u8]) {
    let total = (12 + body.len()) as u32;
    out.extend_from_slice(&block_type.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&total.to_le_bytes());
}

fn temp_file(suffix: &str, bytes: &[u8]) -> tempfile::TempPath {
    let mut f = tempfile::Builder::new()
        .prefix("l2watch-test-")
        .suffix(suffix)
        .tempfile()
        .expect("create temp capture");
    f.write_all(bytes).expect("write temp capture");
    f.flush().expect("flush temp capture");
    f.into_temp_path()
}

// ---------------------------------------------------------------------------------------------
// Running the l2watch binary.

/// What one run of the binary gave.
pub struct Run {
    /// Exit status (-1 when killed by a signal).
    pub status: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

/// Runs the l2watch binary with `args`.
pub fn l2watch(args: &[&str]) -> Run {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_l2watch")).args(args).output().expect("run l2watch");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A YAML config in a temporary file.
pub fn config_file(yaml: &str) -> tempfile::TempPath {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().expect("temp config");
    std::io::Write::write_all(&mut f, yaml.as_bytes()).expect("write config");
    f.into_temp_path()
}

/// `l2watch analyze --format json` on `files`, with `config` (YAML) if given. Panics unless the exit
/// status is 0, 1 or 2 and stdout is JSON.
pub fn analyze(files: &[&Path], config: Option<&str>) -> (i32, serde_json::Value) {
    let cfg = config.map(config_file);
    let mut args: Vec<String> = vec!["analyze".into(), "--format".into(), "json".into()];
    if let Some(c) = &cfg {
        args.push("--config".into());
        args.push(c.to_str().expect("utf-8 path").into());
    }
    args.extend(files.iter().map(|f| f.to_str().expect("utf-8 path").to_owned()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = l2watch(&argv);
    assert!((0..=2).contains(&run.status), "status {}; stderr:\n{}", run.status, run.stderr);
    assert!(!run.stderr.contains("panicked"), "panic:\n{}", run.stderr);
    let json = run.json();
    assert_eq!(
        json["summary"]["exit_status"].as_i64(),
        Some(i64::from(run.status)),
        "report and exit status disagree"
    );
    (run.status, json)
}

/// Builds `capture` into a temp pcap and analyzes it.
pub fn analyze_capture(capture: &Capture, config: Option<&str>) -> (i32, serde_json::Value) {
    let path = capture.temp_pcap();
    analyze(&[&path], config)
}

/// The findings of `report` of one kind.
pub fn findings<'a>(report: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    report["findings"].as_array().expect("findings array").iter().filter(|f| f["kind"] == kind).collect()
}

/// Every finding kind present in `report` of warning or critical severity, sorted.
pub fn alerting_kinds(report: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = report["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| f["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The shared test data directory (`shared/testdata`), found by walking up from the crate. Panics when
/// it is missing: tests that need it must fail, not pass silently.
pub fn testdata() -> std::path::PathBuf {
    let mut dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join("shared/testdata");
        if candidate.is_dir() {
            return candidate;
        }
        dir = dir.parent().unwrap_or_else(|| {
            panic!(
                "shared/testdata not found above {}: check out ../shared beside the repo",
                env!("CARGO_MANIFEST_DIR")
            )
        });
    }
}
