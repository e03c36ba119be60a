//! Every capture in ../shared/testdata/pcap replayed through `l2watch analyze`, asserting what the
//! capture really contains (INDEX.md there, checked frame by frame).

mod support;

use std::path::PathBuf;

use serde_json::Value;
use support::{alerting_kinds, analyze, findings, l2watch, testdata};

fn pcap(name: &str) -> PathBuf {
    testdata().join("pcap").join(name)
}

fn by_kind(r: &Value, kind: &str) -> u64 {
    r["frames"]["by_kind"][kind].as_u64().unwrap_or_else(|| panic!("no count for {kind}"))
}

fn malformed_total(r: &Value) -> u64 {
    r["frames"]["malformed"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum()
}

/// Runs a capture without inventory and checks nothing of warning or above is found.
fn quiet(name: &str) -> Value {
    let (status, r) = analyze(&[&pcap(name)], None);
    assert_eq!(alerting_kinds(&r), Vec::<String>::new(), "{name}: {:#}", r["findings"]);
    assert_eq!(status, 0, "{name}");
    r
}

const COVERED: &[&str] = &[
    "chrissanders_arp_resolution.pcapng",
    "chrissanders_arppoison.pcapng",
    "ndpi_iphone.pcap",
    "ndpi_nest_log_sink.pcap",
    "suricata_detect-arp-03-vlan.pcap",
    "tcpdump_802.1ad_QinQ.pcap",
    "tcpdump_arp-oobr.pcap",
    "tcpdump_eapon1.pcap",
    "tcpdump_ipoib.pcap",
    "wireshark_arp-storm.pcap",
    "zeek_arp-who-has-radiotap.pcap",
    "zeek_communityid_icmp6.pcap",
    "zeek_icmp6-nd-options.pcap",
    "zeek_linux_dlt_sll2.pcap",
    "zeek_linuxsll-arp.pcap",
    "zeek_snap-arp.pcapng",
];

#[test]
fn every_shared_capture_has_a_test() {
    let mut names: Vec<String> = std::fs::read_dir(testdata().join("pcap"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    names.sort();
    assert_eq!(names, COVERED, "a capture was added or removed: write its test");
}

#[test]
fn arp_resolution_is_one_request_and_its_reply() {
    let r = quiet("chrissanders_arp_resolution.pcapng");
    assert_eq!((by_kind(&r, "request"), by_kind(&r, "reply")), (1, 1));
    assert_eq!(r["files"][0]["format"], "pcapng");
}

#[test]
fn arppoison_is_invisible_without_inventory() {
    // The real gateway MAC never appears in ARP: without knowing it, nothing conflicts.
    let r = quiet("chrissanders_arppoison.pcapng");
    assert_eq!(by_kind(&r, "reply") + by_kind(&r, "request"), 4);
}

#[test]
fn arppoison_spoof_found_with_the_gateway_in_the_inventory() {
    let cfg = "inventory:\n  hosts:\n    - name: gateway\n      macs: [\"00:26:0b:31:07:33\"]\n      ips: [172.16.0.1]\n";
    let (status, r) = analyze(&[&pcap("chrissanders_arppoison.pcapng")], Some(cfg));
    assert_eq!(status, 1);
    let f = findings(&r, "node_ip_conflict");
    assert_eq!(f.len(), 1, "{:#}", r["findings"]);
    assert_eq!(f[0]["ip"], "172.16.0.1");
    assert_eq!(f[0]["mac"], "00:25:b3:bf:91:ee");
    assert_eq!(f[0]["node"], "gateway");
    assert_eq!(f[0]["severity"], "critical");
    // Frame 54 is the attacker asking "who has .107? tell 172.16.0.1" from its own MAC (a request
    // claims its sender IP), frame 56 the unsolicited reply "172.16.0.1 is-at 00:25:b3:bf:91:ee".
    assert_eq!((f[0]["first_frame"].as_u64(), f[0]["last_frame"].as_u64()), (Some(54), Some(56)));
    assert_eq!(f[0]["count"], 2);
    // The attacker's own address (172.16.0.105) is not watched: no other alert.
    assert_eq!(alerting_kinds(&r), ["node_ip_conflict"]);
}

#[test]
fn the_report_names_the_vendor_of_every_mac_it_shows() {
    // Registries of our own, so the names cannot come from the machine's ieee-data: the attacker's
    // prefix under another name, neighbours around it, and a longer prefix that does not match.
    let dir = tempfile::tempdir().unwrap();
    let oui = dir.path().join("oui.csv");
    std::fs::write(
        &oui,
        "Registry,Assignment,Organization Name,Organization Address\n\
         MA-L,0025B2,Neighbour Below,\n\
         MA-L,0025B3,\"Attacker Devices, Ltd\",\"1 Road, Town\"\n\
         MA-L,0025B4,Neighbour Above,\n",
    )
    .unwrap();
    let oui36 = dir.path().join("oui36.csv");
    std::fs::write(
        &oui36,
        "Registry,Assignment,Organization Name,Organization Address\nMA-S,0025B3BF0,Not This One,\n",
    )
    .unwrap();
    let cfg = format!(
        "oui_files: [{:?}, {:?}]\ninventory:\n  hosts:\n    - name: gateway\n      macs: [\"00:26:0b:31:07:33\"]\n      ips: [172.16.0.1]\n",
        oui.display().to_string(),
        oui36.display().to_string()
    );
    let (_, r) = analyze(&[&pcap("chrissanders_arppoison.pcapng")], Some(&cfg));
    let f = findings(&r, "node_ip_conflict");
    assert_eq!(f.len(), 1, "{:#}", r["findings"]);
    assert_eq!(f[0]["vendor"], "Attacker Devices, Ltd");
    let macs = r["ips"][0]["macs"].as_array().unwrap();
    assert!(!macs.is_empty(), "{:#}", r["ips"]);
    for m in macs {
        assert_eq!(m["vendor"], "Attacker Devices, Ltd", "{m:#}");
    }
}

#[test]
fn iphone_joins_with_rfc5227_probes_and_announcements() {
    let r = quiet("ndpi_iphone.pcap");
    assert_eq!((by_kind(&r, "probe"), by_kind(&r, "gratuitous"), by_kind(&r, "nd_dad")), (3, 3, 1));
}

#[test]
fn iphone_joining_a_pool_address_is_a_foreign_probe_then_a_squatter() {
    let cfg = "inventory:\n  pools:\n    - name: lb\n      addresses: [192.168.2.16/30]\n";
    let (status, r) = analyze(&[&pcap("ndpi_iphone.pcap")], Some(cfg));
    assert_eq!(status, 1);
    let probe = findings(&r, "foreign_probe");
    assert_eq!(probe.len(), 1, "{:#}", r["findings"]);
    assert_eq!(
        (probe[0]["ip"].as_str(), probe[0]["mac"].as_str()),
        (Some("192.168.2.17"), Some("c4:61:8b:35:82:a9"))
    );
    assert_eq!((probe[0]["first_frame"].as_u64(), probe[0]["count"].as_u64()), (Some(37), Some(3)));
    let squat = findings(&r, "pool_squatter");
    assert_eq!(squat.len(), 1);
    assert_eq!(squat[0]["first_frame"], 41);
    assert_eq!(squat[0]["pool"], "lb");
}

#[test]
fn nest_refreshes_are_one_stable_binding() {
    let r = quiet("ndpi_nest_log_sink.pcap");
    assert_eq!((by_kind(&r, "request"), by_kind(&r, "reply")), (113, 113));
    assert_eq!(r["findings"].as_array().unwrap().len(), 0);
}

#[test]
fn stacked_vlans_are_reported() {
    let r = quiet("suricata_detect-arp-03-vlan.pcap");
    let stacks: Vec<Vec<u64>> = r["frames"]["vlans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["ids"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap()).collect())
        .collect();
    assert_eq!(stacks, vec![vec![1, 10], vec![1, 10, 100], vec![6]]);
    // Ethernet source differs from the ARP sender MAC: an info hint, with its VLAN.
    let m = findings(&r, "eth_sha_mismatch");
    assert_eq!(m.len(), 1);
    assert_eq!((m[0]["severity"].as_str(), m[0]["count"].as_u64()), (Some("info"), Some(3)));
    assert_eq!(m[0]["vlans"], serde_json::json!([6]));
}

#[test]
fn qinq_outer_and_inner_tags() {
    let r = quiet("tcpdump_802.1ad_QinQ.pcap");
    assert_eq!(r["frames"]["vlans"], serde_json::json!([{"ids": [200, 2001], "frames": 2}]));
    assert_eq!((by_kind(&r, "request"), by_kind(&r, "reply")), (1, 1));
}

#[test]
fn fuzzed_capture_counts_malformed_frames_and_does_not_panic() {
    let (status, r) = analyze(&[&pcap("tcpdump_arp-oobr.pcap")], None);
    assert!(status <= 1, "bit flips may look like conflicts, but nothing is an error");
    assert_eq!(r["frames"]["total"], 2282);
    let decoded: u64 =
        r["frames"]["by_kind"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    let malformed = malformed_total(&r);
    assert!(malformed > 100, "{:#}", r["frames"]);
    assert_eq!(decoded + malformed, 2282, "every frame is ARP: decoded or counted as malformed");
    for reason in ["unsupported_hardware", "unsupported_protocol", "unsupported_opcode", "bad_address_length"]
    {
        assert!(r["frames"]["malformed"][reason].as_u64().unwrap() > 0, "{reason}: {:#}", r["frames"]);
    }
}

#[test]
fn eapon1_host_changing_its_own_ip_is_not_a_conflict() {
    let r = quiet("tcpdump_eapon1.pcap");
    assert_eq!(by_kind(&r, "gratuitous"), 3);
}

#[test]
fn ipoib_arp_is_skipped_as_unsupported_hardware() {
    let r = quiet("tcpdump_ipoib.pcap");
    assert_eq!(r["frames"]["malformed"]["unsupported_hardware"], 4);
    let decoded: u64 =
        r["frames"]["by_kind"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(decoded, 0, "20-byte hardware addresses must never be misread");
}

#[test]
fn arp_storm_is_not_a_conflict() {
    let r = quiet("wireshark_arp-storm.pcap");
    assert_eq!(by_kind(&r, "request"), 622);
}

#[test]
fn radiotap_is_reported_as_unsupported() {
    let p = pcap("zeek_arp-who-has-radiotap.pcap");
    let run = l2watch(&["analyze", p.to_str().unwrap()]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("link type 127 (IEEE 802.11 radiotap) is not supported"), "{}", run.stderr);
}

#[test]
fn icmp6_solicitations_and_advertisements_are_consistent() {
    let r = quiet("zeek_communityid_icmp6.pcap");
    assert_eq!((by_kind(&r, "nd_ns"), by_kind(&r, "nd_na")), (9, 9));
    assert_eq!(r["findings"].as_array().unwrap().len(), 0);
}

#[test]
fn icmp6_dad_and_unsolicited_advertisements() {
    let r = quiet("zeek_icmp6-nd-options.pcap");
    assert_eq!((by_kind(&r, "nd_dad"), by_kind(&r, "nd_na")), (5, 2));
}

#[test]
fn linux_cooked_v2_is_decoded() {
    let r = quiet("zeek_linux_dlt_sll2.pcap");
    assert_eq!(r["files"][0]["link_types"], serde_json::json!([276]));
    assert_eq!(by_kind(&r, "request"), 1);
}

#[test]
fn linux_cooked_v1_is_decoded() {
    let r = quiet("zeek_linuxsll-arp.pcap");
    assert_eq!(r["files"][0]["link_types"], serde_json::json!([113]));
    assert_eq!((by_kind(&r, "request"), by_kind(&r, "gratuitous")), (10, 2));
}

#[test]
fn llc_snap_arp_on_two_interfaces() {
    let r = quiet("zeek_snap-arp.pcapng");
    assert_eq!(r["files"][0]["link_types"].as_array().unwrap().len(), 2);
    assert_eq!(by_kind(&r, "request") + by_kind(&r, "reply"), 4);
}

#[test]
fn several_files_replay_as_one_stream() {
    let (status, r) = analyze(&[&pcap("ndpi_nest_log_sink.pcap"), &pcap("tcpdump_eapon1.pcap")], None);
    assert_eq!(status, 0);
    assert_eq!(r["files"].as_array().unwrap().len(), 2);
    assert_eq!(r["frames"]["total"], 1114);
}
