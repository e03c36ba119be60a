//! Checks that the test capture builder writes files l2watch's reader accepts, with the frames, times
//! and link-layer headers asked for. (The reader itself is checked against tcpdump's reading of the
//! shared captures in its unit tests.)

mod support;

use l2watch::capture::replay::{FileInfo, read_capture};
use l2watch::wire::frame::{ArpSpec, NdSpec};
use support::{Capture, ip4, ip6, mac, ts};

fn sample(mut cap: Capture) -> Capture {
    cap.arp(ArpSpec::gratuitous(mac("02:00:00:00:00:01"), ip4("192.168.1.10")))
        .after(0.25)
        .arp(
            ArpSpec::reply(
                mac("02:00:00:00:00:02"),
                ip4("192.168.1.10"),
                mac("02:00:00:00:00:03"),
                ip4("192.168.1.3"),
            )
            .with_vlans(&[42]),
        )
        .at(1_700_000_100.000_001)
        .nd(NdSpec::dad(mac("02:00:00:00:00:04"), ip6("fe80::4")))
        .raw(&[1, 2, 3]);
    cap
}

const ETHERNET: u32 = 1;
const LINUX_SLL: u32 = 113;
const LINUX_SLL2: u32 = 276;

/// The file's format and interfaces, and its frames as (nanoseconds, bytes).
fn read(path: &std::path::Path) -> (FileInfo, Vec<(u64, Vec<u8>)>) {
    let mut out = Vec::new();
    let info = read_capture(path, |f| {
        assert_eq!(f.interface, 0);
        out.push((f.time.0, f.data.to_vec()));
    })
    .unwrap();
    (info, out)
}

/// A classic pcap file's link type and frames.
fn read_pcap(path: &std::path::Path) -> (u32, Vec<(u64, Vec<u8>)>) {
    let (info, frames) = read(path);
    assert_eq!(info.format, "pcap");
    assert_eq!(info.link_types.len(), 1);
    (info.link_types[0], frames)
}

#[test]
fn ethernet_pcap_round_trips() {
    let cap = sample(Capture::new());
    let path = cap.temp_pcap();
    let (link, packets) = read_pcap(&path);
    assert_eq!(link, ETHERNET);
    assert_eq!(packets.len(), 4);
    let times: Vec<_> = packets.iter().map(|p| p.0).collect();
    assert_eq!(
        times,
        [
            1_700_000_000_000_000_000,
            1_700_000_000_250_000_000,
            1_700_000_100_000_001_000,
            1_700_000_100_000_001_000
        ]
    );
    assert_eq!(times[2], ts(1_700_000_100.000_001).0);
    for (p, r) in packets.iter().zip(cap.records()) {
        assert_eq!(p.1, r.data);
    }
    assert_eq!(packets[0].1.len(), 60);
    assert_eq!(&packets[1].1[12..18], &[0x81, 0x00, 0x00, 42, 0x08, 0x06]);
    assert_eq!(&packets[2].1[12..14], &[0x86, 0xdd]);
    assert_eq!(packets[3].1, [1, 2, 3]);
}

#[test]
fn nanosecond_pcap_keeps_nanoseconds() {
    let mut cap = Capture::new();
    cap.nanos().at_nanos(1_700_000_000_123_456_789).raw(&[0; 60]);
    let path = cap.temp_pcap();
    let (_, packets) = read_pcap(&path);
    assert_eq!(packets[0].0, 1_700_000_000_123_456_789);
}

#[test]
fn linux_sll_wraps_frames() {
    let mut cap = sample(Capture::linux_sll());
    cap.outgoing(true).arp(ArpSpec::probe(mac("02:00:00:00:00:05"), ip4("192.168.1.5")));
    let path = cap.temp_pcap();
    let (link, p) = read_pcap(&path);
    assert_eq!(link, LINUX_SLL);
    // Broadcast gratuitous ARP: pkttype 1, ARPHRD_ETHER, halen 6, source MAC, protocol ARP.
    assert_eq!(&p[0].1[..16], &[0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x06]);
    assert_eq!(p[0].1.len(), 60 - 14 + 16);
    // Tagged unicast reply: pkttype host, protocol 0x8100, then the tag and the inner EtherType.
    assert_eq!(&p[1].1[..2], &[0, 0]);
    assert_eq!(&p[1].1[14..20], &[0x81, 0x00, 0x00, 42, 0x08, 0x06]);
    // DAD goes to a multicast group.
    assert_eq!(&p[2].1[..2], &[0, 2]);
    assert_eq!(&p[2].1[14..16], &[0x86, 0xdd]);
    assert_eq!(p[3].1, [1, 2, 3]);
    assert_eq!(&p[4].1[..2], &[0, 4]);
}

#[test]
fn linux_sll2_wraps_frames() {
    let mut cap = Capture::linux_sll2();
    cap.ifindex(7).arp(ArpSpec::gratuitous(mac("02:00:00:00:00:01"), ip4("192.168.1.10")));
    let path = cap.temp_pcap();
    let (link, p) = read_pcap(&path);
    assert_eq!(link, LINUX_SLL2);
    assert_eq!(&p[0].1[..20], &[0x08, 0x06, 0, 0, 0, 0, 0, 7, 0, 1, 1, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(p[0].1.len(), 60 - 14 + 20);
    assert_eq!(&p[0].1[20..28], &[0, 1, 8, 0, 6, 4, 0, 1]);
}

#[test]
fn pcapng_round_trips() {
    let cap = sample(Capture::new());
    let path = cap.temp_pcapng();
    let (info, packets) = read(&path);
    assert_eq!(info.format, "pcapng");
    assert_eq!(info.link_types, [ETHERNET]);
    assert_eq!(packets.len(), cap.len());
    for (p, rec) in packets.iter().zip(cap.records()) {
        assert_eq!(p.0, rec.time.0);
        assert_eq!(p.1, rec.data);
    }
}
