//! The frame decoder on every link type, and what it decodes through the detection core.
//!
//! Input: one byte of settings, then frames, each as
//!
//! - a header byte: bits 0-1 the link type (Ethernet, Linux cooked v1, cooked v2, IP over
//!   InfiniBand), bit 2 "sent by this host", bit 3 a VLAN tag from the ring header (two big-endian
//!   bytes follow), bits 4-6 how far the clock moves before the frame (see `STEPS`), bit 7 "run the
//!   probe schedule after it";
//! - a length byte: the frame's length, or 0 for "the rest of the input" (so one seed can hold one
//!   long frame);
//! - the frame.
//!
//! Settings bit 0 picks the inventory of the monitor that sees the frames besides an arpwatch-like
//! detector (empty inventory): 0 empty, 1 the example config's cluster with this host as `worker-2`.
//! Frames a decoder could ever be handed come from the network, so nothing here may panic.
#![no_main]

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use l2watch::config::Config;
use l2watch::inventory::{Inventory, ThisHost};
use l2watch::monitor::detect::{DetectConfig, Detector};
use l2watch::monitor::engine::{Monitor, Settings};
use l2watch::monitor::finding::NoSink;
use l2watch::monitor::probe::ProbeConfig;
use l2watch::wire::decode::{self, Decoded, FrameMeta, LinkType};
use l2watch::wire::observation::Timestamp;
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 4] = [LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::Ipoib];

/// Clock steps: same instant, within a probe window, across sweeps, past the flip window and the hold.
const STEPS: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(300),
    Duration::from_secs(2),
    Duration::from_secs(11),
    Duration::from_secs(90),
    Duration::from_secs(400),
    Duration::from_secs(700),
];

/// The example config's inventory, as `run` would build it on worker-2 (built once: it is the
/// same for every input).
fn cluster() -> Arc<Inventory> {
    static INVENTORY: OnceLock<Arc<Inventory>> = OnceLock::new();
    INVENTORY
        .get_or_init(|| {
            let path = Path::new("examples/l2watch.yaml");
            let config = Config::parse(path, include_str!("../../examples/l2watch.yaml"))
                .expect("the example config parses");
            let parts = config.inventory_parts(path, None).expect("the example config is consistent");
            let this = ThisHost {
                node: "worker-2".into(),
                macs: vec!["52:54:00:6b:3c:02".parse().expect("a MAC")],
                addresses: vec!["fc00:f853:ccd:e799::2".parse().expect("an address")],
            };
            Arc::new(Inventory::build(parts, Some(&this)))
        })
        .clone()
}

fn empty() -> Arc<Inventory> {
    static INVENTORY: OnceLock<Arc<Inventory>> = OnceLock::new();
    INVENTORY.get_or_init(|| Arc::new(Inventory::none())).clone()
}

fuzz_target!(|data: &[u8]| {
    let Some((&settings, mut rest)) = data.split_first() else { return };
    // Small caps, so eviction of addresses, MACs and findings is reached within one input.
    let detect =
        DetectConfig { max_tracked_ips: 16, max_macs_per_ip: 2, max_findings: 16, ..DetectConfig::default() };
    let none = empty();
    let mut arpwatch = Detector::new(detect.clone());
    let inventory = if settings & 1 == 0 { none.clone() } else { cluster() };
    let mut now = Timestamp::from_secs_nanos(1_700_000_000, 0);
    let probe = ProbeConfig { rate: 1_000, ..ProbeConfig::default() };
    let mut monitor =
        Monitor::new(Settings { detect, probe, interfaces: 2, seed: 7 }, inventory, now, &mut NoSink);
    monitor.set_announcer_grace(Duration::from_secs(10));
    let mut frame = 0u64;
    while let Some((&header, after)) = rest.split_first() {
        rest = after;
        let vlan = if header & 0x08 != 0 {
            let Some((tci, after)) = rest.split_first_chunk::<2>() else { return };
            rest = after;
            Some(u16::from_be_bytes(*tci))
        } else {
            None
        };
        let Some((&len, after)) = rest.split_first() else { return };
        let len = if len == 0 { after.len() } else { usize::from(len).min(after.len()) };
        let (bytes, after) = after.split_at(len);
        rest = after;

        now = now.plus(STEPS[usize::from((header >> 4) & 7)]);
        frame += 1;
        let meta = FrameMeta { time: now, frame, interface: 0, outgoing: header & 0x04 != 0, vlan };
        let decoded = decode::decode(LINKS[usize::from(header & 3)], bytes, &meta);
        if let Decoded::Frame(obs) = decoded {
            arpwatch.observe(&obs, &none, &mut NoSink);
            monitor.observe(&obs, &mut NoSink);
        }
        if header & 0x80 != 0 {
            // The prober's own probes are not on the wire here: every one is "sent", and the rounds
            // close with whatever answers the next frames bring.
            monitor.probe(now, |_: IpAddr| true, &mut NoSink, |_| {});
        }
    }
    // A quiet LAN: everything expires, and the monitor takes the other inventory.
    let later = now.plus(Duration::from_secs(3600));
    arpwatch.expire(later, &mut NoSink);
    monitor.expire(later, &mut NoSink);
    let other = if settings & 1 == 0 { cluster() } else { none };
    monitor.set_inventory(other, later, &mut NoSink);
    monitor.probe(later, |_: IpAddr| true, &mut NoSink, |_| {});
});
