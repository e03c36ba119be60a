//! For every finding kind that frames can show: a capture where it fires and a near miss where it must
//! not. Captures are built frame by frame and replayed through `l2watch analyze`.

mod support;

use l2watch::wire::frame::{ArpSpec, NdSpec};
use serde_json::Value;
use support::{Capture, alerting_kinds, analyze_capture, findings, ip4, ip6, mac};

const INVENTORY: &str = r#"
inventory:
  nodes:
    - {name: worker-1, macs: ["52:54:00:6b:3c:01"], ips: [192.168.1.11]}
    - {name: worker-2, macs: ["52:54:00:6b:3c:02", "52:54:00:6b:3c:12"], ips: [192.168.1.12]}
  hosts:
    - {name: gateway, macs: ["00:26:0b:31:07:33"], ips: [192.168.1.1]}
  pools:
    - {name: first-pool, addresses: [192.168.1.240/28, "fd00:1::/120"]}
  services:
    - {name: web/nginx, ips: [192.168.1.240], announcer: worker-2}
    - {name: web/api, ips: [192.168.1.241, "fd00:1::1"]}
allow:
  - {mac: "00:00:5e:00:01:00/40", ips: [192.168.1.1], note: VRRP gateway}
  - {mac: "02:aa:00:00:00:01", note: appliance}
"#;

const W1: &str = "52:54:00:6b:3c:01";
const W2: &str = "52:54:00:6b:3c:02";
const W2B: &str = "52:54:00:6b:3c:12";
const FOREIGN: &str = "02:00:00:00:00:66";
const OTHER: &str = "02:00:00:00:00:67";
const CLIENT: &str = "02:00:00:00:00:77";
const CLIENT_IP: &str = "192.168.1.50";

fn reply(from: &str, ip: &str) -> ArpSpec {
    ArpSpec::reply(mac(from), ip4(ip), mac(CLIENT), ip4(CLIENT_IP))
}

fn garp(from: &str, ip: &str) -> ArpSpec {
    ArpSpec::gratuitous(mac(from), ip4(ip))
}

fn with_inventory(c: &Capture) -> (i32, Value) {
    analyze_capture(c, Some(INVENTORY))
}

fn one<'a>(r: &'a Value, kind: &str) -> &'a Value {
    let f = findings(r, kind);
    assert_eq!(f.len(), 1, "expected one {kind}: {:#}", r["findings"]);
    f[0]
}

#[test]
fn foreign_mac_answering_for_a_service_ip() {
    let mut c = Capture::new();
    c.arp(reply(W2, "192.168.1.240"))
        .after(1.0)
        .arp(reply(FOREIGN, "192.168.1.240"))
        .after(1.0)
        .arp(reply(FOREIGN, "192.168.1.240"));
    let (status, r) = with_inventory(&c);
    assert_eq!(status, 1);
    let f = one(&r, "foreign_mac");
    assert_eq!((f["ip"].as_str(), f["mac"].as_str()), (Some("192.168.1.240"), Some(FOREIGN)));
    assert_eq!(
        (f["namespace"].as_str(), f["service"].as_str(), f["role"].as_str()),
        (Some("web"), Some("nginx"), Some("service"))
    );
    assert_eq!(
        (f["severity"].as_str(), f["count"].as_u64(), f["first_frame"].as_u64()),
        (Some("critical"), Some(2), Some(2))
    );
}

#[test]
fn near_miss_announcer_and_allow_listed_mac_answer_for_a_service_ip() {
    let mut c = Capture::new();
    c.arp(reply(W2, "192.168.1.240"))
        .after(1.0)
        .arp(reply(W2B, "192.168.1.240"))
        .after(1.0)
        .arp(reply("02:aa:00:00:00:01", "192.168.1.241"));
    let (status, r) = with_inventory(&c);
    assert_eq!(alerting_kinds(&r), Vec::<String>::new(), "{:#}", r["findings"]);
    assert_eq!(status, 0);
    // Two MACs of one node (MetalLB answers from each interface) are not a MAC change either.
    assert!(findings(&r, "mac_changed").is_empty());
}

#[test]
fn wrong_announcer_when_another_node_claims_a_pinned_service_ip() {
    let mut c = Capture::new();
    c.arp(garp(W2, "192.168.1.240")).after(5.0).arp(garp(W1, "192.168.1.240"));
    let (status, r) = with_inventory(&c);
    assert_eq!(status, 1);
    let f = one(&r, "wrong_announcer");
    assert_eq!((f["mac"].as_str(), f["node"].as_str()), (Some(W1), Some("worker-1")));
    assert!(findings(&r, "foreign_mac").is_empty(), "a node is not foreign");
    let m = one(&r, "mac_changed");
    assert_eq!(m["expected"], false, "the announcer did not change");
}

#[test]
fn near_miss_failover_between_nodes_is_expected_when_any_node_may_announce() {
    // web/api has no announcer: worker-1 announces, then worker-2 takes over with gratuitous ARPs.
    let mut c = Capture::new();
    for _ in 0..3 {
        c.arp(garp(W1, "192.168.1.241")).after(1.0);
    }
    c.after(30.0);
    for _ in 0..5 {
        c.arp(garp(W2, "192.168.1.241")).arp(ArpSpec { op: 2, ..garp(W2, "192.168.1.241") }).after(1.0);
    }
    let (status, r) = with_inventory(&c);
    assert_eq!(alerting_kinds(&r), Vec::<String>::new(), "{:#}", r["findings"]);
    assert_eq!(status, 0);
    let m = one(&r, "mac_changed");
    assert_eq!((m["mac"].as_str(), m["other_mac"].as_str()), (Some(W2), Some(W1)));
    assert_eq!((m["expected"].as_bool(), m["flip_flop"].as_bool()), (Some(true), Some(false)));
}

#[test]
fn multiple_responders_when_an_ip_flips_back_and_forth_without_inventory() {
    let mut c = Capture::new();
    for _ in 0..3 {
        c.arp(reply(FOREIGN, "10.0.0.5")).after(2.0).arp(reply(OTHER, "10.0.0.5")).after(2.0);
    }
    let (status, r) = analyze_capture(&c, None);
    assert_eq!(status, 1);
    let f = findings(&r, "multiple_responders");
    let mut macs: Vec<&str> = f.iter().map(|f| f["mac"].as_str().unwrap()).collect();
    macs.sort();
    assert_eq!(macs, [FOREIGN, OTHER], "one series per MAC involved");
    let m = findings(&r, "mac_changed");
    assert!(m.iter().any(|m| m["flip_flop"] == true), "{m:#?}");
}

#[test]
fn near_miss_an_address_reused_by_a_new_device_is_only_a_mac_change() {
    // DHCP gives 10.0.0.5 to a new device; the old one is gone. And a flip back long after the window
    // is a flip flop, not two responders.
    let mut c = Capture::new();
    c.arp(reply(FOREIGN, "10.0.0.5"))
        .after(60.0)
        .arp(reply(OTHER, "10.0.0.5"))
        .after(1.0)
        .arp(reply(OTHER, "10.0.0.5"));
    c.after(3600.0).arp(reply(FOREIGN, "10.0.0.5"));
    let (status, r) = analyze_capture(&c, None);
    assert_eq!(alerting_kinds(&r), Vec::<String>::new(), "{:#}", r["findings"]);
    assert_eq!(status, 0);
    let m = findings(&r, "mac_changed");
    let new = m.iter().find(|m| m["mac"] == OTHER).expect("change to the new device");
    assert_eq!(new["flip_flop"], false);
    let back = m.iter().find(|m| m["mac"] == FOREIGN).expect("flip flop back");
    assert_eq!(back["flip_flop"], true);
}

#[test]
fn pool_squatter_on_an_unassigned_pool_address() {
    let mut c = Capture::new();
    c.arp(garp(FOREIGN, "192.168.1.250"));
    let (status, r) = with_inventory(&c);
    assert_eq!(status, 1);
    let f = one(&r, "pool_squatter");
    assert_eq!((f["pool"].as_str(), f["severity"].as_str()), (Some("first-pool"), Some("warning")));
}

#[test]
fn near_miss_a_node_claiming_a_pool_address_is_a_fresh_assignment() {
    let mut c = Capture::new();
    c.arp(garp(W1, "192.168.1.250")).after(1.0).arp(reply(FOREIGN, "192.168.1.100"));
    let (status, r) = with_inventory(&c);
    assert_eq!(alerting_kinds(&r), Vec::<String>::new(), "{:#}", r["findings"]);
    assert_eq!(status, 0);
}

#[test]
fn node_ip_conflict_and_host_spoofing() {
    let mut c = Capture::new();
    c.arp(reply(FOREIGN, "192.168.1.11"))
        .after(1.0)
        .arp(reply("00:00:5e:00:01:07", "192.168.1.12"))
        .after(1.0)
        .arp(reply(FOREIGN, "192.168.1.1"));
    let (status, r) = with_inventory(&c);
    assert_eq!(status, 1);
    let f = findings(&r, "node_ip_conflict");
    let got: Vec<(&str, &str, &str)> = f
        .iter()
        .map(|f| (f["ip"].as_str().unwrap(), f["mac"].as_str().unwrap(), f["node"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("192.168.1.1", FOREIGN, "gateway"),
            ("192.168.1.11", FOREIGN, "worker-1"),
            ("192.168.1.12", "00:00:5e:00:01:07", "worker-2")
        ],
        "the VRRP allowance is limited to 192.168.1.1"
    );
}

#[test]
fn near_miss_owners_and_allowed_macs_claim_their_own_addresses() {
    let mut c = Capture::new();
    c.arp(reply(W1, "192.168.1.11")).after(1.0).arp(reply(W2B, "192.168.1.12")).after(1.0);
    c.arp(reply("00:26:0b:31:07:33", "192.168.1.1"))
        .after(1.0)
        .arp(reply("00:00:5e:00:01:07", "192.168.1.1"));
    let (status, r) = with_inventory(&c);
    assert_eq!(alerting_kinds(&r), Vec::<String>::new(), "{:#}", r["findings"]);
    assert_eq!(status, 0);
}

#[test]
fn foreign_probe_for_watched_addresses_v4_and_v6() {
    let mut c = Capture::new();
    c.arp(ArpSpec::probe(mac(FOREIGN), ip4("192.168.1.241")))
        .after(1.0)
        .nd(NdSpec::dad(mac(OTHER), ip6("fd00:1::1")));
    let (status, r) = with_inventory(&c);
    assert_eq!(status, 1);
    let f = findings(&r, "foreign_probe");
    let got: Vec<(&str, &str)> =
        f.iter().map(|f| (f["ip"].as_str().unwrap(), f["mac"].as_str().unwrap())).collect();
    assert_eq!(got, [("192.168.1.241", FOREIGN), ("fd00:1::1", OTHER)]);
    assert!(f.iter().all(|f| f["severity"] == "warning"));
    assert_eq!(alerting_kinds(&r), ["foreign_probe"], "a probe claims nothing");
}

#[test]
fn near_miss_probes_from_nodes_or_for_unwatched_addresses() {
    let mut c = Capture::new();
    c.arp(ArpSpec::probe(mac(W1), ip4("192.168.1.240")))
        .after(1.0)
        .arp(ArpSpec::probe(mac(FOREIGN), ip4("192.168.1.77")));
    c.after(1.0).arp(ArpSpec::probe(mac("00:26:0b:31:07:33"), ip4("192.168.1.1")));
    let (status, r) = with_inventory(&c);
    assert_eq!(r["findings"].as_array().unwrap().len(), 0, "{:#}", r["findings"]);
    assert_eq!(status, 0);
}

#[test]
fn foreign_neighbour_advertisement_for_an_ipv6_service_ip() {
    let mut c = Capture::new();
    c.nd(NdSpec::unsolicited(mac(FOREIGN), ip6("fd00:1::1")))
        .after(1.0)
        .nd(NdSpec::unsolicited(mac(W1), ip6("fd00:1::1")));
    let (status, r) = with_inventory(&c);
    assert_eq!(status, 1);
    let f = one(&r, "foreign_mac");
    assert_eq!((f["ip"].as_str(), f["mac"].as_str()), (Some("fd00:1::1"), Some(FOREIGN)));
}

#[test]
fn eth_sha_mismatch_is_info_only() {
    let mut c = Capture::new();
    c.arp(reply(FOREIGN, "10.0.0.9").with_eth_src(mac(OTHER))).after(1.0).arp(reply(CLIENT, "10.0.0.10"));
    let (status, r) = analyze_capture(&c, None);
    assert_eq!(status, 0, "info does not change the exit status");
    let f = one(&r, "eth_sha_mismatch");
    assert_eq!(
        (f["mac"].as_str(), f["other_mac"].as_str(), f["severity"].as_str()),
        (Some(FOREIGN), Some(OTHER), Some("info"))
    );
}

#[test]
fn findings_clear_after_the_hold_time_and_stay_while_evidence_arrives() {
    let cfg = format!("{INVENTORY}\ndetect:\n  hold: 60s\n");
    let mut c = Capture::new();
    c.arp(reply(FOREIGN, "192.168.1.240")).after(50.0).arp(reply(FOREIGN, "192.168.1.240"));
    c.arp(reply(FOREIGN, "192.168.1.241")).after(61.0).arp(reply(W1, "192.168.1.11"));
    let (_, r) = analyze_capture(&c, Some(&cfg));
    let f = findings(&r, "foreign_mac");
    let active = |ip: &str| f.iter().find(|f| f["ip"] == ip).map(|f| f["active"].as_bool().unwrap());
    assert_eq!(active("192.168.1.240"), Some(false), "61 s after its last evidence it is cleared");
    assert_eq!(active("192.168.1.241"), Some(false));
    let mut c2 = Capture::new();
    c2.arp(reply(FOREIGN, "192.168.1.240"))
        .after(50.0)
        .arp(reply(FOREIGN, "192.168.1.240"))
        .after(50.0)
        .arp(reply(W1, "192.168.1.11"));
    let (_, r2) = analyze_capture(&c2, Some(&cfg));
    assert_eq!(one(&r2, "foreign_mac")["active"], true, "evidence 50 s ago keeps it active");
}

#[test]
fn a_scan_is_not_a_conflict() {
    // One host asks for every address of the subnet, as arp-scan or a router's ARP storm does.
    let mut c = Capture::new();
    for i in 1..=254u8 {
        c.arp(ArpSpec::request(mac(CLIENT), ip4(CLIENT_IP), ip4(&format!("192.168.1.{i}")))).after(0.001);
    }
    let (status, r) = with_inventory(&c);
    assert_eq!(r["findings"].as_array().unwrap().len(), 0, "{:#}", r["findings"]);
    assert_eq!(status, 0);
}

#[test]
fn findings_carry_the_vlan_of_their_evidence() {
    let mut c = Capture::new();
    c.arp(reply(FOREIGN, "192.168.1.240").with_vlans(&[100, 20]).with_qinq(true));
    let (_, r) = with_inventory(&c);
    assert_eq!(one(&r, "foreign_mac")["vlans"], serde_json::json!([100, 20]));
}

#[test]
fn cooked_captures_detect_the_same() {
    for mut c in [Capture::linux_sll(), Capture::linux_sll2()] {
        c.arp(reply(FOREIGN, "192.168.1.240"));
        let (status, r) = with_inventory(&c);
        assert_eq!(status, 1);
        one(&r, "foreign_mac");
    }
}

#[test]
fn a_random_flood_stays_within_the_state_caps() {
    let cfg = "detect:\n  max_tracked_ips: 1024\n  max_findings: 64\n";
    let mut c = Capture::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_be_bytes();
        let m = l2watch::wire::mac::Mac([0x02, b[0], b[1], b[2], b[3], b[4]]);
        let ip = std::net::Ipv4Addr::new(10, b[5], b[6], b[7].max(1));
        c.arp(ArpSpec::reply(m, ip, mac(CLIENT), ip4(CLIENT_IP)).with_eth_src(mac(OTHER))).after(0.0001);
    }
    let (_, r) = analyze_capture(&c, Some(cfg));
    let tracked = r["summary"]["tracked_ips"].as_u64().unwrap();
    assert!(tracked <= 1024, "tracked {tracked}");
    assert!(r["summary"]["evicted"].as_u64().unwrap() > 10_000, "{:#}", r["summary"]);
    assert!(findings(&r, "eth_sha_mismatch").len() <= 20_000);
}
