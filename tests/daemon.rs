//! End-to-end tests of `l2watch run` and `l2watch scan` on real kernel networking: a LAN of network
//! namespaces joined by a bridge, with two nodes (node-a runs l2watch, node-b answers for the service IP
//! through its kernel), a foreign device and a client (see `support::daemon`). Everything is asserted
//! through `/metrics` and `/findings`, as an operator would see it. Needs root (CI runs as root); fails
//! loudly without it.

mod support;

use std::process::Command;
use std::time::Duration;

use support::daemon::*;
use support::lan::{http_get, wait_for};
use support::metrics::{conflicts, value};

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn foreign_device_answering_for_a_service_ip_is_found_within_one_interval() {
    let env = setup(None, &[]);
    // Only the right node answers: a few rounds go by without anything firing.
    wait_for(Duration::from_secs(6), "a probe round answered by node-b", || {
        (responders_of_vip(&env) == Some(1.0)).then_some(())
    });
    std::thread::sleep(INTERVAL * 2);
    let m = env.metrics();
    assert!(conflicts(&m).is_empty(), "conflicts while only node-b answers:\n{}\n{}", m, env.logs());
    assert_eq!(value(&m, "l2watch_foreign_mac_replies_total", &[]), None);
    assert!(value(&m, "l2watch_probes_sent_total", &[("interface", "eth0")]).unwrap() >= 2.0);
    assert!(value(&m, "l2watch_probe_rtt_seconds_count", &[("interface", "eth0")]).unwrap() >= 1.0);
    assert_eq!(value(&m, "l2watch_capture_up", &[("interface", "eth0")]), Some(1.0));

    // The foreign device takes the VIP too (a static IP on a laptop). Its kernel answers probes.
    env.foreign.add_addr("eth0", &format!("{VIP}/32"));
    let found = [
        ("kind", "foreign_mac"),
        ("ip", VIP),
        ("mac", MAC_FOREIGN),
        ("namespace", "web"),
        ("service", "nginx"),
    ];
    // One probe interval (with its +10% jitter) + 1 s, and the 100 ms the test polls at.
    wait_for(
        INTERVAL * 11 / 10 + Duration::from_secs(1) + Duration::from_millis(100),
        "foreign_mac on /metrics",
        || {
            let m = env.metrics();
            (value(&m, "l2watch_conflict_active", &found) == Some(1.0)).then_some(())
        },
    );
    let m = env.metrics();
    // Test MACs are locally administered, which is what the vendor label says of them.
    let labels = [("ip", VIP), ("mac", MAC_FOREIGN), ("vendor", "locally administered")];
    let replies = value(&m, "l2watch_foreign_mac_replies_total", &labels).unwrap();
    // The log says what happened and what to do about it.
    let logs = env.logs();
    assert!(
        logs.lines().any(|l| l.contains("WARN")
            && l.contains("foreign_mac")
            && l.contains(MAC_FOREIGN)
            && l.contains("find it by its MAC")),
        "{logs}"
    );
    assert!(replies >= 1.0, "{m}");
    // Both answered one round: multiple_responders for each MAC; node-b is not blamed otherwise.
    let f = kinds(&env.findings());
    assert!(f.contains(&("foreign_mac".into(), VIP.into(), MAC_FOREIGN.into())), "{f:?}");
    wait_for(INTERVAL * 2, "multiple_responders for both MACs", || {
        let f = kinds(&env.findings());
        let mr = |mac: &str| f.contains(&("multiple_responders".into(), VIP.into(), mac.into()));
        (mr(MAC_FOREIGN) && mr(MAC_B)).then_some(())
    });
    assert!(!kinds(&env.findings()).iter().any(|(k, _, m)| k == "foreign_mac" && m == MAC_B));
    // The counter keeps growing while the device keeps answering.
    wait_for(INTERVAL * 2, "l2watch_foreign_mac_replies_total to grow", || {
        value(&env.metrics(), "l2watch_foreign_mac_replies_total", &[("ip", VIP), ("mac", MAC_FOREIGN)])
            .filter(|v| *v > replies)
    });
}

/// Moves the VIP from node-b to node-a the way a failover does: drop it on b, add it on a, and
/// announce it with gratuitous ARP from a.
fn fail_over_to_a(env: &Env) {
    env.b.del_addr("eth0", &format!("{VIP}/32"));
    env.a.add_addr("eth0", &format!("{VIP}/32"));
    env.a.gratuitous_arp("eth0", VIP, 2);
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn failover_between_nodes_is_an_expected_mac_change_when_any_node_may_announce() {
    let env = setup(None, &[]);
    wait_for(Duration::from_secs(6), "node-b answering", || {
        (responders_of_vip(&env) == Some(1.0)).then_some(())
    });
    fail_over_to_a(&env);
    wait_for(Duration::from_secs(3), "l2watch_ip_mac_changes_total{expected=\"true\"}", || {
        value(&env.metrics(), "l2watch_ip_mac_changes_total", &[("ip", VIP), ("expected", "true")])
            .filter(|v| *v >= 1.0)
    });
    // Several rounds later: no conflict, and node-a (which now announces it) does not call it unanswered.
    std::thread::sleep(INTERVAL * 3);
    let m = env.metrics();
    assert!(conflicts(&m).is_empty(), "a failover raised conflicts:\n{m}\n{}", env.logs());
    assert_eq!(value(&m, "l2watch_ip_mac_changes_total", &[("ip", VIP), ("expected", "false")]), None);
    let f = env.findings();
    let changed = f["findings"].as_array().unwrap().iter().find(|x| x["kind"] == "mac_changed").unwrap();
    assert_eq!(changed["mac"], MAC_A);
    assert_eq!(changed["other_mac"], MAC_B);
    assert_eq!(changed["expected"], true);
    assert_eq!(changed["severity"], "info");
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn failover_to_a_node_that_is_not_the_announcer_is_wrong_announcer() {
    let env = setup(Some("node-b"), &[]);
    wait_for(Duration::from_secs(6), "node-b answering", || {
        (responders_of_vip(&env) == Some(1.0)).then_some(())
    });
    assert!(conflicts(&env.metrics()).is_empty());
    fail_over_to_a(&env);
    wait_for(Duration::from_secs(3), "wrong_announcer for node-a's MAC", || {
        let m = env.metrics();
        (value(&m, "l2watch_conflict_active", &[("kind", "wrong_announcer"), ("ip", VIP), ("mac", MAC_A)])
            == Some(1.0))
        .then_some(())
    });
    let m = env.metrics();
    assert_eq!(
        value(&m, "l2watch_ip_mac_changes_total", &[("ip", VIP), ("expected", "false")]),
        Some(1.0),
        "{m}"
    );
    assert_eq!(value(&m, "l2watch_conflict_active", &[("kind", "foreign_mac")]), None, "{m}");
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn a_service_ip_nobody_answers_is_unanswered_and_clears_when_answered() {
    // A registry address no Service has is watched for conflicts, but nobody owes it an answer.
    let registry = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(registry.path(), "web/planned: 10.77.0.101\n").unwrap();
    let yaml = format!("{}registry: {}\n", config(Some("node-b"), ""), registry.path().display());
    let env = setup_yaml(yaml, &[]);
    wait_for(Duration::from_secs(6), "node-b answering", || {
        (responders_of_vip(&env) == Some(1.0)).then_some(())
    });
    env.b.del_addr("eth0", &format!("{VIP}/32"));
    // unanswered_after: 2 rounds of 2 s, plus the round in flight and the reply window.
    let labels =
        [("kind", "unanswered"), ("ip", VIP), ("mac", ""), ("namespace", "web"), ("service", "nginx")];
    wait_for(INTERVAL * 4, "unanswered on /metrics", || {
        (value(&env.metrics(), "l2watch_conflict_active", &labels) == Some(1.0)).then_some(())
    });
    let m = env.metrics();
    assert!(value(&m, "l2watch_ip_unanswered", &[("ip", VIP), ("service", "nginx")]).unwrap() >= 2.0, "{m}");
    assert_eq!(value(&m, "l2watch_ip_responders", &[("ip", VIP)]), Some(0.0));
    let f = kinds(&env.findings());
    assert!(f.contains(&("unanswered".into(), VIP.into(), String::new())), "{f:?}");
    assert!(!f.iter().any(|(_, ip, _)| ip == "10.77.0.101"), "registry-only address judged: {f:?}");
    assert_eq!(
        value(&m, "l2watch_ip_responders", &[("ip", "10.77.0.101")]),
        Some(0.0),
        "probed all the same"
    );
    // The node takes it back: the next answered round clears it.
    env.b.add_addr("eth0", &format!("{VIP}/32"));
    wait_for(INTERVAL * 2, "unanswered to clear", || {
        let m = env.metrics();
        (value(&m, "l2watch_conflict_active", &labels).is_none()
            && value(&m, "l2watch_ip_unanswered", &[("ip", VIP)]) == Some(0.0))
        .then_some(())
    });
}

/// A VLAN trunk: frames tagged 802.1Q (and QinQ) reach the capture interface. The kernel strips the
/// outer tag into the ring header (this machine's kernel has no 802.1Q module, so VLAN sub-interfaces
/// cannot be made; tagged frames on the wire are what a trunk port delivers either way).
#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn conflicts_on_a_tagged_vlan_are_found_with_their_vlan_id() {
    use l2watch::wire::frame::{ArpSpec, write_arp};
    let env = setup_with(
        None,
        "    - {name: web/tagged, ips: [10.78.0.100], announcer: node-b}\n",
        &["--no-probe"],
    );
    let tagged = |mac: &str, ids: &[u16], qinq: bool| {
        let mut buf = [0u8; 128];
        let spec = ArpSpec::gratuitous(mac.parse().unwrap(), "10.78.0.100".parse().unwrap())
            .with_vlans(ids)
            .with_qinq(qinq);
        let n = write_arp(&mut buf, &spec).unwrap();
        buf[..n].to_vec()
    };
    // node-b announces its service IP on VLAN 20 (it is the announcer): nothing fires.
    env.b.inject("eth0", [tagged(MAC_B, &[20], false)]);
    wait_for(Duration::from_secs(3), "node-b's tagged announcement to be counted", || {
        value(&env.metrics(), "l2watch_frames_total", &[("interface", "eth0"), ("kind", "gratuitous")])
            .filter(|v| *v >= 1.0)
    });
    std::thread::sleep(Duration::from_millis(300));
    let m = env.metrics();
    assert_eq!(value(&m, "l2watch_conflict_active", &[("ip", "10.78.0.100"), ("mac", MAC_B)]), None, "{m}");
    // The foreign device claims it on VLAN 20, then through a QinQ trunk (S-tag 100, C-tag 20).
    env.foreign.inject("eth0", [tagged(MAC_FOREIGN, &[20], false), tagged(MAC_FOREIGN, &[100, 20], true)]);
    let labels =
        [("kind", "foreign_mac"), ("ip", "10.78.0.100"), ("mac", MAC_FOREIGN), ("service", "tagged")];
    wait_for(Duration::from_secs(3), "foreign_mac for the VLAN 20 service IP", || {
        (value(&env.metrics(), "l2watch_conflict_active", &labels) == Some(1.0)).then_some(())
    });
    let f = env.findings();
    let finding = f["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "foreign_mac" && x["ip"] == "10.78.0.100")
        .unwrap();
    assert_eq!(finding["vlans"], serde_json::json!([20]), "{f}");
    let vlans = f["frames"]["vlans"].as_array().unwrap();
    assert!(vlans.iter().any(|v| v["ids"] == serde_json::json!([20]) && v["frames"] == 2), "{f}");
    assert!(vlans.iter().any(|v| v["ids"] == serde_json::json!([100, 20]) && v["frames"] == 1), "{f}");
}

/// IPv6 service addresses are probed with DAD neighbour solicitations; the owner's kernel answers
/// with a neighbour advertisement to all nodes, which is how a second owner shows up.
#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn ipv6_service_addresses_are_probed_with_neighbour_solicitations() {
    const VIP6: &str = "fd00:77::100";
    let env = setup_with(None, "    - {name: web/v6, ips: ['fd00:77::100']}\n", &[]);
    for (host, me) in [(&env.a, "fd00:77::a"), (&env.b, "fd00:77::b"), (&env.foreign, "fd00:77::f0")] {
        host.add_addr("eth0", &format!("{me}/64"));
    }
    env.b.add_addr("eth0", &format!("{VIP6}/128"));
    wait_for(Duration::from_secs(6), "node-b answering the IPv6 probe", || {
        (value(&env.metrics(), "l2watch_ip_responders", &[("ip", VIP6)]) == Some(1.0)).then_some(())
    });
    // Frame counters are published once a second.
    wait_for(Duration::from_secs(2), "neighbour advertisements counted", || {
        value(&env.metrics(), "l2watch_frames_total", &[("interface", "eth0"), ("kind", "nd_na")])
            .filter(|v| *v >= 1.0)
    });
    let m = env.metrics();
    assert!(conflicts(&m).is_empty(), "{m}");
    env.foreign.add_addr("eth0", &format!("{VIP6}/128"));
    let labels = [("kind", "foreign_mac"), ("ip", VIP6), ("mac", MAC_FOREIGN), ("service", "v6")];
    wait_for(INTERVAL + Duration::from_millis(1300), "foreign_mac for the IPv6 service address", || {
        (value(&env.metrics(), "l2watch_conflict_active", &labels) == Some(1.0)).then_some(())
    });
    wait_for(INTERVAL * 2, "two responders in one IPv6 round", || {
        (value(&env.metrics(), "l2watch_ip_responders", &[("ip", VIP6)]) == Some(2.0)).then_some(())
    });
}

/// Sends `n` gratuitous ARPs from random MACs for random addresses of 10.0.0.0/16 out of `dev`.
const RANDOM_FLOOD: &str = include_str!("../bench/random-arp.py");

/// A flood of random squatters on a pool: findings, series and memory stay within their caps, and
/// what is evicted is counted.
#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn a_flood_of_random_squatters_stays_within_every_cap() {
    let yaml = config(None, "")
        .replace("  services:\n", "  pools: [{name: lan, addresses: [10.0.0.0/16]}]\n  services:\n")
        .replace(
            "probe:\n",
            "metrics:\n  max_series: 64\ndetect:\n  max_findings: 256\nprobe:\n  enabled: false\n",
        );
    let env = setup_turn(yaml, &[], turn(true));
    // Memory is judged by what the flood adds: the idle size is mostly the (debug) binary's pages.
    let idle = value(&env.metrics(), "process_resident_memory_bytes", &[]).unwrap();
    const N: u64 = 20_000;
    env.foreign.exec(["python3", "-c", RANDOM_FLOOD, "eth0", &N.to_string()]);
    let m = wait_for(Duration::from_secs(5), "every flood frame counted", || {
        let m = env.metrics();
        value(&m, "l2watch_frames_total", &[("kind", "gratuitous")]).filter(|v| *v >= N as f64).map(|_| m)
    });
    let active = conflicts(&m).len();
    assert!((1..=64).contains(&active), "{active} conflict series with max_series 64");
    // The cap governs the series the LAN can create; `l2watch_service_info` (one per Service IP) is the
    // inventory's and outside it.
    let series: Vec<&str> = m
        .lines()
        .filter(|l| {
            l.starts_with("l2watch_") && l.contains("ip=\"") && !l.starts_with("l2watch_service_info")
        })
        .collect();
    assert!(series.len() <= 64, "{} series with IP labels:\n{}", series.len(), series.join("\n"));
    assert!(value(&m, "l2watch_series_evicted_total", &[]).unwrap() > 0.0);
    let rss = value(&m, "process_resident_memory_bytes", &[]).unwrap();
    let mib = |b: f64| b / 1048576.0;
    assert!(rss - idle < 16.0 * 1048576.0, "RSS grew from {:.1} to {:.1} MiB", mib(idle), mib(rss));
    // `/findings` is rendered once a second, so it may still be a render behind the counters.
    let f = wait_for(Duration::from_secs(3), "every flood frame in /findings", || {
        let f = env.findings();
        (f["frames"]["total"].as_u64() >= Some(N)).then_some(f)
    });
    assert!(f["findings"].as_array().unwrap().len() <= 256);
    assert!(f["summary"]["evicted"].as_u64().unwrap() >= N - 256, "{} {}", f["summary"], f["frames"]);
    // Conflicts are logged, but at most ten lines a second; the rest are summed up (once a second).
    let logs = wait_for(Duration::from_secs(3), "the summary of findings not logged", || {
        let logs = env.logs();
        logs.contains("more findings were raised or cleared than are logged").then_some(logs)
    });
    let lines = logs.lines().filter(|l| l.contains("pool_squatter")).count();
    assert!((1..=60).contains(&lines), "{lines} log lines for a 20k-finding flood");
    // Some random addresses repeat with another MAC: mac_changed. Nothing else can come of this flood.
    let kinds = kinds(&f);
    assert!(kinds.iter().all(|(k, _, _)| k == "pool_squatter" || k == "mac_changed"), "{kinds:?}");
    assert!(kinds.iter().any(|(k, _, _)| k == "pool_squatter"));
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn scan_lists_who_answers_and_flags_a_shared_address() {
    let env = setup(None, &[]);
    env.foreign.add_addr("eth0", &format!("{VIP}/32"));
    let scan = |format: &str| {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &env.a.ns,
                env!("CARGO_BIN_EXE_l2watch"),
                "scan",
                "10.77.0.96/28",
                "10.77.0.12",
                "10.77.0.11",
            ])
            .args(["-c", &env.config, "-i", "eth0", "--wait", "0.5", "--format", format])
            .output()
            .unwrap()
    };
    let out = scan("json");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["schema"], "l2watch.scan/v1");
    assert_eq!(r["probed"], 18);
    let used = r["used"].as_array().unwrap();
    let find =
        |ip: &str| used.iter().find(|u| u["ip"] == ip).unwrap_or_else(|| panic!("{ip} missing: {text}"));
    let vip = find(VIP);
    assert_eq!(vip["conflict"], true);
    let who: Vec<(String, String)> = vip["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["mac"].as_str().unwrap().to_owned(), a["who"]["kind"].as_str().unwrap().to_owned()))
        .collect();
    assert!(who.contains(&(MAC_B.into(), "node".into())), "{who:?}");
    assert!(who.contains(&(MAC_FOREIGN.into(), "unknown".into())), "{who:?}");
    assert!(vip["answers"].as_array().unwrap().iter().all(|a| a["vendor"] == "locally administered"));
    assert_eq!(find("10.77.0.12")["answers"][0]["who"]["name"], "node-b");
    assert_eq!(find("10.77.0.99")["conflict"], false);
    assert_eq!(r["conflicts"], 1);
    assert_eq!(r["free"], 18 - used.len() as u64);
    // node-a's own address: it never answers its own probes, yet it is not free.
    assert_eq!(find("10.77.0.11")["answers"][0]["who"]["kind"], "this_host");
    assert!(find("10.77.0.11")["answers"][0]["rtt_ms"].is_null());
    // RTTs are per address, not since the start of the sweep.
    for u in used.iter().filter(|u| u["ip"] != "10.77.0.11") {
        for a in u["answers"].as_array().unwrap() {
            assert!(a["rtt_ms"].as_f64().is_some_and(|ms| ms < 500.0), "{a}");
        }
    }
    let text = scan("text");
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(t.contains("CONFLICT") && t.contains("node node-b") && t.contains(MAC_FOREIGN), "{t}");
    // The daemon on this node probes the VIP every 2 s from the same MAC: the answers to its probes
    // are not the scan's. Two rounds, waiting long enough for two of the daemon's rounds: two replies
    // from each device.
    let out = Command::new("ip")
        .args(["netns", "exec", &env.a.ns, env!("CARGO_BIN_EXE_l2watch"), "scan", VIP, "--rounds", "2"])
        .args(["-c", &env.config, "-i", "eth0", "--wait", "4.5", "--format", "json"])
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let answers = r["used"][0]["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 2, "{r}");
    for a in answers {
        assert_eq!(a["replies"], 2, "{r}\n{}", env.daemon.as_ref().unwrap().logs());
    }
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn interface_that_disappears_is_reported_and_reopened_without_restart() {
    let mut env = setup(None, &["--no-probe"]);
    env.daemon.take().unwrap().stop();
    // A second interface on node-a: a veth pair whose far end stays in node-a to send from.
    let add = |env: &Env| {
        env.a.exec(["ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"]);
        env.a.exec(["ip", "link", "set", "eth1", "up"]);
        env.a.exec(["ip", "link", "set", "eth1p", "up"]);
    };
    add(&env);
    env.start(&["-i", "eth0", "-i", "eth1"]);
    let pid = env.daemon.as_ref().unwrap().pid();
    let up = |env: &Env| value(&env.metrics(), "l2watch_capture_up", &[("interface", "eth1")]);
    // Down first: reported, and the same socket resumes when it comes back up.
    env.a.exec(["ip", "link", "set", "eth1", "down"]);
    wait_for(Duration::from_secs(3), "capture_up 0 for the downed interface", || {
        (up(&env) == Some(0.0)).then_some(())
    });
    wait_for(Duration::from_secs(2), "/readyz 503 while down", || {
        (http_get(env.scrape, "/readyz").unwrap().0 == 503).then_some(())
    });
    env.a.exec(["ip", "link", "set", "eth1", "up"]);
    wait_for(Duration::from_secs(3), "capture_up 1 after up", || (up(&env) == Some(1.0)).then_some(()));
    // Deleted: reported; /healthz stays fine (the process is alive), /readyz is not.
    env.a.exec(["ip", "link", "del", "eth1"]);
    wait_for(Duration::from_secs(3), "capture_up 0 for the deleted interface", || {
        (up(&env) == Some(0.0)).then_some(())
    });
    let body = wait_for(Duration::from_secs(2), "/readyz 503 while gone", || {
        let (status, body) = http_get(env.scrape, "/readyz").unwrap();
        (status == 503).then_some(body)
    });
    assert!(body.contains("1 of 2"), "{body}");
    assert_eq!(http_get(env.scrape, "/healthz").unwrap().0, 200, "still alive while an interface is gone");
    add(&env);
    wait_for(Duration::from_secs(4), "capture_up 1 again", || (up(&env) == Some(1.0)).then_some(()));
    // Frames flow on the reopened ring.
    env.a.gratuitous_arp("eth1p", "10.79.0.12", 1);
    wait_for(Duration::from_secs(3), "frames on the reopened interface", || {
        value(&env.metrics(), "l2watch_frames_total", &[("interface", "eth1"), ("kind", "gratuitous")])
            .filter(|v| *v >= 1.0)
    });
    assert_eq!(env.daemon.as_ref().unwrap().pid(), pid);
    assert!(env.daemon.as_ref().unwrap().is_running());
    assert_eq!(http_get(env.scrape, "/readyz").unwrap().0, 200);
    assert!(env.logs().contains("capture reopened"), "{}", env.logs());
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn metrics_pass_promtool_and_endpoints_answer() {
    // The registry expects web/nginx on .101: IP drift, from the inventory alone.
    let yaml = format!("registry: registry.yaml\n{}", config(None, ""));
    let env = setup_files(yaml, &[("registry.yaml", "web/nginx: 10.77.0.101\n")], &[], turn(false));
    env.foreign.add_addr("eth0", &format!("{VIP}/32"));
    wait_for(INTERVAL * 3, "conflict and responder series to check too", || {
        let m = env.metrics();
        (!conflicts(&m).is_empty() && value(&m, "l2watch_ip_responders", &[("ip", VIP)]).is_some())
            .then_some(())
    });
    let m = env.metrics();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed: apt-get install prometheus");
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(m.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool check metrics failed:\n{said}\n{m}");
    for name in [
        "l2watch_frames_total",
        "l2watch_frames_dropped_total",
        "l2watch_frames_malformed_total",
        "l2watch_capture_up",
        "l2watch_probes_sent_total",
        "l2watch_probe_rtt_seconds",
        "l2watch_foreign_mac_replies_total",
        "l2watch_conflict_active",
        "l2watch_ip_responders",
        "l2watch_service_info",
        "l2watch_service_ip_drift",
        "l2watch_watched_ips",
        "l2watch_inventory_synced",
        "l2watch_series_evicted_total",
        "l2watch_build_info",
        "process_cpu_seconds_total",
    ] {
        assert!(m.contains(&format!("# TYPE {name} ")), "{name} missing");
    }
    assert_eq!(http_get(env.scrape, "/healthz").unwrap().0, 200);
    assert_eq!(http_get(env.scrape, "/nope").unwrap().0, 404);
    let f = env.findings();
    assert_eq!(f["schema"], "l2watch.findings/v1");
    assert_eq!(f["files"][0]["path"], "eth0");
    assert!(f["summary"]["by_severity"]["critical"].as_u64().unwrap() >= 1);
    let drift = [
        ("namespace", "web"),
        ("service", "nginx"),
        ("expected_ip", "10.77.0.101"),
        ("actual_ip", VIP),
        ("source", "registry"),
    ];
    assert_eq!(value(&m, "l2watch_service_ip_drift", &drift), Some(1.0), "{m}");
    let d = f["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "ip_drift")
        .expect("ip_drift in /findings");
    assert_eq!((d["expected_ip"].as_str(), d["actual_ip"].as_str()), (Some("10.77.0.101"), Some(VIP)), "{d}");
    assert!(p_logs_contain(&env, "ip_drift"));
    // SIGTERM: a clean exit, status 0.
    let p = env.daemon.as_ref().unwrap();
    let status = p.stop();
    assert!(status.success(), "{status:?}\n{}", p.logs());
    assert!(p.logs().contains("SIGTERM: shutting down"));
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn bad_setups_fail_with_one_clear_error_each() {
    let env = setup(None, &[]);
    let run = |pre: &[&str], args: &[&str]| {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &env.a.ns])
            .args(pre)
            .arg(env!("CARGO_BIN_EXE_l2watch"))
            .arg("run")
            .args(args);
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&[], &["-i", "nope0", "--listen", "0.0.0.0:9788"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no network interface named \"nope0\"") && err.contains("eth0"), "{err}");
    let (code, err) = run(&[], &["-i", "eth0", "--listen", "0.0.0.0:9787"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot listen on 0.0.0.0:9787") && err.contains("in use"), "{err}");
    // Root without CAP_NET_RAW: drop it from the bounding set, so exec leaves it out.
    let (code, err) =
        run(&["setpriv", "--bounding-set=-net_raw", "--"], &["-i", "eth0", "--listen", "0.0.0.0:9789"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("needs CAP_NET_RAW"), "{err}");
    // Each failure is one error line, not a log dump.
    assert_eq!(err.lines().filter(|l| l.contains("error")).count(), 1, "{err}");
    // The running daemon was not disturbed, and Ctrl-C (SIGINT) stops it cleanly.
    assert_eq!(http_get(env.scrape, "/healthz").unwrap().0, 200);
    let p = env.daemon.as_ref().unwrap();
    let kill = Command::new("kill").args(["-INT", &p.pid().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = p.wait_timeout(Duration::from_secs(5)).expect("l2watch did not stop on SIGINT");
    assert!(status.success(), "{status:?}\n{}", p.logs());
    assert!(p.logs().contains("SIGINT: shutting down"), "{}", p.logs());
}
