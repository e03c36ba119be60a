//! Confirmation probes on real kernel networking, without any inventory (`--inventory none`): when an
//! address changes MAC, l2watch probes it at once. Two hosts that both hold the address answer, which
//! is `multiple_responders` within 2 s of the second announcement; a host that hands the address over
//! (the old one lets go first) leaves only the new one answering, which is a move, not a conflict.
//! Needs root (CI runs as root); fails loudly without it.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use l2watch::wire::frame::{ArpSpec, write_arp};
use support::lan::{Host, Lan, Proc, http_get, poll_for, wait_for};
use support::metrics::total;

const MAC_1: &str = "02:4c:32:00:01:01";
const MAC_2: &str = "02:4c:32:00:01:02";

struct Env {
    _lan: Lan,
    one: Host,
    two: Host,
    scrape: SocketAddr,
    daemon: Proc,
}

fn setup() -> Env {
    let mut lan = Lan::new();
    let watcher = lan.host("watcher", "02:4c:32:00:01:0a", "10.77.1.10/24");
    let one = lan.host("one", MAC_1, "10.77.1.11/24");
    let two = lan.host("two", MAC_2, "10.77.1.12/24");
    let scrape = SocketAddr::from((lan.mgmt(&watcher), 9787));
    let daemon = lan.spawn(
        &watcher,
        env!("CARGO_BIN_EXE_l2watch"),
        ["run", "-i", "eth0", "--inventory", "none", "--listen", "0.0.0.0:9787"],
    );
    wait_for(Duration::from_secs(10), "l2watch /readyz to answer 200", || {
        assert!(daemon.is_running(), "l2watch exited:\n{}", daemon.logs());
        matches!(http_get(scrape, "/readyz"), Ok((200, _))).then_some(())
    });
    Env { _lan: lan, one, two, scrape, daemon }
}

impl Env {
    /// Waits until l2watch has counted `n` gratuitous ARPs.
    fn wait_for_gratuitous(&self, n: f64) {
        wait_for(Duration::from_secs(5), "l2watch to count the announcement", || {
            let (_, m) = http_get(self.scrape, "/metrics").ok()?;
            (total(&m, "l2watch_frames_total", &[("kind", "gratuitous")]) >= n).then_some(())
        });
    }

    /// The kinds of the active findings about `ip`.
    fn kinds(&self, ip: &str) -> Vec<String> {
        let (status, body) = http_get(self.scrape, "/findings").expect("GET /findings");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("/findings is JSON");
        v["findings"]
            .as_array()
            .expect("findings array")
            .iter()
            .filter(|f| f["ip"] == ip)
            .filter_map(|f| f["kind"].as_str().map(str::to_owned))
            .collect()
    }
}

/// `host` takes `ip` and announces it once with a gratuitous ARP.
fn take_and_announce(host: &Host, ip: &str) {
    host.add_addr("eth0", &format!("{ip}/24"));
    let mac = host.mac.parse().expect("host MAC");
    let mut frame = [0u8; 64];
    let n = write_arp(&mut frame, &ArpSpec::gratuitous(mac, ip.parse().expect("IPv4"))).expect("ARP frame");
    host.inject("eth0", [&frame[..n]]);
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn both_hosts_answering_is_a_conflict_within_two_seconds() {
    support::lan::require_root();
    let env = setup();
    let ip = "10.77.1.60";
    take_and_announce(&env.one, ip);
    env.wait_for_gratuitous(1.0);
    take_and_announce(&env.two, ip);
    let announced = Instant::now();
    let found = poll_for(Duration::from_secs(2), || {
        env.kinds(ip).iter().any(|k| k == "multiple_responders").then_some(())
    });
    assert!(
        found.is_some(),
        "no multiple_responders for {ip} within 2 s ({:?} since the second announcement); findings: {:?}\n{}",
        announced.elapsed(),
        env.kinds(ip),
        env.daemon.logs()
    );
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn a_handover_is_a_move_not_a_conflict() {
    support::lan::require_root();
    let env = setup();
    let ip = "10.77.1.61";
    take_and_announce(&env.one, ip);
    env.wait_for_gratuitous(1.0);
    // The old holder lets go first, then the new one takes over.
    env.one.del_addr("eth0", &format!("{ip}/24"));
    take_and_announce(&env.two, ip);
    wait_for(Duration::from_secs(3), "mac_changed for the move", || {
        env.kinds(ip).iter().any(|k| k == "mac_changed").then_some(())
    });
    // Longer than a confirmation round (reply window 1 s) takes to close.
    std::thread::sleep(Duration::from_secs(2));
    let kinds = env.kinds(ip);
    assert!(!kinds.iter().any(|k| k == "multiple_responders"), "{kinds:?}\n{}", env.daemon.logs());
    // The probe went out and was answered by the new holder alone.
    let (_, metrics) = http_get(env.scrape, "/metrics").expect("GET /metrics");
    let probes = total(&metrics, "l2watch_probes_sent_total", &[]);
    assert!(probes >= 1.0, "no confirmation probe was sent:\n{metrics}");
}
