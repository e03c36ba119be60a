//! End to end with the Kubernetes inventory: two nodes of a network-namespace LAN each run l2watch
//! against the test API server (tests/support/kube_api.rs, the real list/watch protocol) through a
//! kubeconfig, exactly as in a cluster. The objects are the shared real-schema fixtures, renamed to
//! this LAN. Needs root (CI runs as root); fails loudly without it.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::kube_api::ApiServer;
use support::kube_cluster::{l2status, layer2_pool, node};
use support::lan::{Host, Lan, Proc, http_get, poll_for, wait_for};
use support::metrics::{conflicts, value};

const MAC_A: &str = "02:4c:32:00:01:0a";
const MAC_B: &str = "02:4c:32:00:01:0b";
const MAC_FOREIGN: &str = "02:4c:32:00:01:f0";
const VIP: &str = "10.78.0.100";
const NS: &str = "l2watch";

/// The fixture Service web/nginx, assigned the LAN's VIP. The nodes' InternalIPs are on another
/// network than the LAN (as on the DGX Spark nodes this was built for), so only the peer Leases can
/// tell their LAN MACs.
fn service(ip: &str) -> Value {
    support::kube_cluster::service("nginx", ip)
}

struct Cluster {
    api: ApiServer,
    lan: Lan,
    a: Host,
    b: Host,
    foreign: Host,
    scrape_a: SocketAddr,
    scrape_b: SocketAddr,
    dir: tempfile::TempDir,
    daemons: Vec<Proc>,
}

impl Cluster {
    fn new() -> Cluster {
        support::lan::require_root();
        let mut lan = Lan::new();
        let a = lan.host("k8sa", MAC_A, "10.78.0.11/24");
        let b = lan.host("k8sb", MAC_B, "10.78.0.12/24");
        let foreign = lan.host("k8sf", MAC_FOREIGN, "10.78.0.50/24");
        let far_a = lan.mgmt(&a);
        let far_b = lan.mgmt(&b);
        // The API server listens on the root end of node-a's management link; node-b reaches it
        // through its own (the root namespace owns both addresses).
        let near = |far: Ipv4Addr| Ipv4Addr::from(u32::from(far) - 1);
        let api = ApiServer::start_on(IpAddr::V4(near(far_a))).expect("test API server");
        b.exec([
            "ip",
            "route",
            "add",
            &format!("{}/32", near(far_a)),
            "via",
            &near(far_b).to_string(),
            "dev",
            "mgmt0",
        ]);
        for obj in
            [node("node-a", "10.200.0.11"), node("node-b", "10.200.0.12"), service(VIP), l2status("node-b")]
                .into_iter()
                .chain(layer2_pool("10.78.0.96/28"))
        {
            api.apply(obj).expect("fixture object");
        }
        b.add_addr("eth0", &format!("{VIP}/32"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("l2watch.yaml"),
            "probe:\n  interval: 2s\n  reply_window: 500ms\n  unanswered_after: 2\ndetect:\n  announcer_grace: 3s\nkubernetes:\n  lease_duration: 6s\n",
        )
        .unwrap();
        Cluster {
            api,
            lan,
            a,
            b,
            foreign,
            scrape_a: SocketAddr::from((far_a, 9787)),
            scrape_b: SocketAddr::from((far_b, 9787)),
            dir,
            daemons: Vec::new(),
        }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.api.write_kubeconfig(self.dir.path(), NS).unwrap()
    }

    /// Starts l2watch on `host` as node `node`; waits for /readyz when `ready`.
    fn start(&mut self, host: &Host, node: &str, scrape: SocketAddr, ready: bool) -> Proc {
        let kubeconfig = format!("KUBECONFIG={}", self.kubeconfig().display());
        let config = self.dir.path().join("l2watch.yaml");
        let args = [
            kubeconfig.as_str(),
            env!("CARGO_BIN_EXE_l2watch"),
            "run",
            "-c",
            config.to_str().unwrap(),
            "--inventory",
            "kubernetes",
            "--node-name",
            node,
            "-i",
            "eth0",
            "--listen",
            "0.0.0.0:9787",
        ];
        let p = self.lan.spawn(host, "env", args);
        if ready {
            wait_for(Duration::from_secs(15), "l2watch /readyz to answer 200 after the first sync", || {
                assert!(p.is_running(), "l2watch exited:\n{}", p.logs());
                matches!(http_get(scrape, "/readyz"), Ok((200, _))).then_some(())
            });
        }
        self.daemons.push(p.clone());
        p
    }

    fn both(&mut self) {
        let (a, b) = (self.a.clone(), self.b.clone());
        self.start(&a, "node-a", self.scrape_a, true);
        self.start(&b, "node-b", self.scrape_b, true);
    }

    fn logs(&self) -> String {
        self.daemons.iter().map(Proc::logs).collect::<Vec<_>>().join("\n")
    }
}

fn metrics(at: SocketAddr) -> String {
    match http_get(at, "/metrics") {
        Ok((200, body)) => body,
        other => panic!("/metrics: {other:?}"),
    }
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn peers_share_their_macs_and_a_foreign_device_is_found_and_reported_on_the_service() {
    let mut c = Cluster::new();
    c.both();
    // Each sees the other through its Lease.
    for (at, peer) in [(c.scrape_a, "node-b"), (c.scrape_b, "node-a")] {
        wait_for(Duration::from_secs(10), &format!("l2watch_peer_up{{peer=\"{peer}\"}}"), || {
            (value(&metrics(at), "l2watch_peer_up", &[("peer", peer)]) == Some(1.0)).then_some(())
        });
    }
    let m = metrics(c.scrape_a);
    assert_eq!(value(&m, "l2watch_inventory_synced", &[("source", "kubernetes")]), Some(1.0), "{m}");
    let info = [
        ("namespace", "web"),
        ("service", "nginx"),
        ("ip", VIP),
        ("announcer", "node-b"),
        ("pool", "first-pool"),
    ];
    assert_eq!(value(&m, "l2watch_service_info", &info), Some(1.0), "{m}");
    // Node-b answers the probes with the MAC its Lease published: legitimate, on both daemons.
    wait_for(Duration::from_secs(6), "node-b answering node-a's probes", || {
        (value(&metrics(c.scrape_a), "l2watch_ip_responders", &[("ip", VIP)]) == Some(1.0)).then_some(())
    });
    assert!(conflicts(&metrics(c.scrape_a)).is_empty(), "{}", metrics(c.scrape_a));
    let lease = c.api.get("coordination.k8s.io/v1", "leases", NS, "l2watch-node-b").expect("node-b's Lease");
    let macs = lease["metadata"]["annotations"]["l2watch.io/macs"].as_str().unwrap_or("");
    assert!(macs.split(',').any(|m| m == MAC_B), "{lease}");

    // A foreign device takes the VIP quietly (no gratuitous ARP): only probing finds it.
    c.foreign.add_addr("eth0", &format!("{VIP}/32"));
    let labels = [
        ("kind", "foreign_mac"),
        ("ip", VIP),
        ("mac", MAC_FOREIGN),
        ("namespace", "web"),
        ("service", "nginx"),
    ];
    wait_for(Duration::from_secs(5), "foreign_mac on web/nginx", || {
        (value(&metrics(c.scrape_a), "l2watch_conflict_active", &labels) == Some(1.0)).then_some(())
    });
    // And one IPConflict Event on the Service (one node writes for the cluster), naming the IP and
    // the MAC.
    let event = wait_for(Duration::from_secs(5), "an IPConflict Event on web/nginx", || {
        c.api.objects("events.k8s.io/v1", "events").into_iter().find(|e| {
            e["reason"] == "IPConflict"
                && e["regarding"]["name"] == "nginx"
                && e["note"].as_str().is_some_and(|n| n.contains(MAC_FOREIGN))
        })
    });
    assert_eq!(event["metadata"]["namespace"], "web");
    assert_eq!(event["type"], "Warning");
    assert!(event["note"].as_str().unwrap().contains(VIP), "{event}");
    assert_eq!(event["regarding"]["uid"], service(VIP)["metadata"]["uid"], "kubectl describe needs the uid");
    std::thread::sleep(Duration::from_secs(2));
    let conflicts_written = c
        .api
        .objects("events.k8s.io/v1", "events")
        .into_iter()
        .filter(|e| {
            e["reason"] == "IPConflict" && e["note"].as_str().is_some_and(|n| n.contains(MAC_FOREIGN))
        })
        .count();
    assert_eq!(conflicts_written, 1, "both nodes see the conflict; one writes the Event");
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn a_failover_done_the_metallb_way_never_shows_a_conflict() {
    let mut c = Cluster::new();
    c.both();
    wait_for(Duration::from_secs(10), "both peers up", || {
        let m = metrics(c.scrape_a);
        (value(&m, "l2watch_peer_up", &[("peer", "node-b")]) == Some(1.0)).then_some(())
    });
    wait_for(Duration::from_secs(6), "node-b answering", || {
        (value(&metrics(c.scrape_a), "l2watch_ip_responders", &[("ip", VIP)]) == Some(1.0)).then_some(())
    });
    // The new node's gratuitous ARP comes first, the status after: the race every failover has.
    c.b.del_addr("eth0", &format!("{VIP}/32"));
    c.a.add_addr("eth0", &format!("{VIP}/32"));
    c.a.gratuitous_arp("eth0", VIP, 1);
    std::thread::sleep(Duration::from_millis(500));
    // MetalLB >= 0.14.6: each speaker owns its status, so the old one goes and a new one comes.
    let old = l2status("node-b");
    let old_name = old["metadata"]["name"].as_str().unwrap().to_owned();
    c.api.delete("metallb.io/v1beta1", "servicel2statuses", "metallb-system", &old_name).expect("old status");
    std::thread::sleep(Duration::from_millis(300));
    let mut new = l2status("node-a");
    new["metadata"]["name"] = json!("l2-n0dea");
    new["metadata"]["uid"] = json!("9d2e3f4a-6b7c-4d8e-9f0a-1b2c3d4e5f60");
    c.api.apply(new).unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        for at in [c.scrape_a, c.scrape_b] {
            let m = metrics(at);
            assert!(conflicts(&m).is_empty(), "a conflict during a failover:\n{m}\n{}", c.logs());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let m = metrics(c.scrape_b);
    assert_eq!(
        value(&m, "l2watch_service_announcer_changes_total", &[("service", "nginx")]),
        Some(1.0),
        "{m}"
    );
    let info = [("service", "nginx"), ("announcer", "node-a")];
    assert_eq!(value(&m, "l2watch_service_info", &info), Some(1.0), "{m}");
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn monitoring_goes_on_without_the_api_and_the_inventory_recovers() {
    let mut c = Cluster::new();
    c.both();
    // Node-b's Lease must be known before the outage: without it, its MACs are unknown and a device
    // answering for the Service it announces cannot be called foreign.
    wait_for(Duration::from_secs(10), "node-b's Lease seen by node-a", || {
        (value(&metrics(c.scrape_a), "l2watch_peer_up", &[("peer", "node-b")]) == Some(1.0)).then_some(())
    });
    c.api.set_down(true).unwrap();
    wait_for(Duration::from_secs(12), "inventory_synced 0 while the API is down", || {
        (value(&metrics(c.scrape_a), "l2watch_inventory_synced", &[("source", "kubernetes")]) == Some(0.0))
            .then_some(())
    });
    // Each daemon checks the API on its own clock: an outage that ends as soon as node-a notices
    // can fall between node-b's checks, and then node-b rightly says nothing about it.
    for d in &c.daemons {
        wait_for(Duration::from_secs(12), "every daemon noticed the outage", || {
            d.logs().contains("lost the Kubernetes API").then_some(())
        });
    }
    // The last inventory still knows the Service: a foreign device on its IP is found.
    c.foreign.add_addr("eth0", &format!("{VIP}/32"));
    let labels = [("kind", "foreign_mac"), ("ip", VIP), ("mac", MAC_FOREIGN), ("service", "nginx")];
    wait_for(Duration::from_secs(5), "foreign_mac with the API down", || {
        (value(&metrics(c.scrape_a), "l2watch_conflict_active", &labels) == Some(1.0)).then_some(())
    });
    // A Service created while it was down, and history lost (410 on the resumed watch): a relist.
    let mut other = service("10.78.0.101");
    other["metadata"]["name"] = json!("api");
    other["metadata"]["uid"] = json!("5c1b0d8f-2e3a-4b4c-9d6e-7f8091a2b3c4");
    c.api.apply(other).unwrap();
    c.api.compact();
    c.api.set_down(false).unwrap();
    let back = poll_for(Duration::from_secs(20), || {
        let m = metrics(c.scrape_a);
        (value(&m, "l2watch_service_info", &[("service", "api"), ("ip", "10.78.0.101")]) == Some(1.0)
            && value(&m, "l2watch_inventory_synced", &[("source", "kubernetes")]) == Some(1.0))
        .then_some(())
    });
    if back.is_none() {
        let paths: Vec<String> =
            c.api.requests().iter().map(|r| format!("{} {} {:?}", r.method, r.path, r.params)).collect();
        panic!(
            "the Service created during the outage never arrived:\n{:?}\n{}\n{}\nrequests:\n{}",
            c.api
                .objects("v1", "services")
                .iter()
                .map(|s| s["metadata"]["name"].to_string())
                .collect::<Vec<_>>(),
            metrics(c.scrape_a),
            c.logs(),
            paths[paths.len().saturating_sub(40)..].join("\n")
        );
    }
    for d in &c.daemons {
        let logs = d.logs();
        assert_eq!(logs.matches("lost the Kubernetes API").count(), 1, "one line per outage:\n{logs}");
        assert!(logs.contains("the Kubernetes API is back"), "{logs}");
        assert!(!logs.contains("failed with error"), "a client library logs every retry:\n{logs}");
    }
}

#[test]
fn without_a_reachable_api_it_does_not_start_blind() {
    let mut c = Cluster::new();
    c.api.set_down(true).unwrap();
    let a = c.a.clone();
    let p = c.start(&a, "node-a", c.scrape_a, false);
    let status = poll_for(Duration::from_secs(20), || p.wait_timeout(Duration::from_millis(100)))
        .unwrap_or_else(|| panic!("l2watch kept running without the API:\n{}", p.logs()));
    assert_eq!(status.code(), Some(2), "{}", p.logs());
    let err = p.stderr();
    assert!(err.contains("cannot reach the Kubernetes API") && err.lines().count() <= 3, "{err}");
}
