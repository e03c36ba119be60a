//! One l2watch daemon with the Kubernetes inventory on a namespace LAN, against the test API server
//! (`support::kube_api`), for tests that break the API under it: node `node-a` runs l2watch and
//! announces the Service `web/nginx` (its ServiceL2Status says so), and a device outside the cluster
//! can take the Service's IP, which is a `foreign_mac` finding to carry across the fault.
//!
//! ```ignore
//! let mut c = KubeLan::new();
//! c.start();
//! let before = c.raise_conflict();
//! c.api.set_down(true).unwrap();
//! // ...
//! c.assert_nothing_lost(&before);
//! ```
//!
//! Needs root (namespaces); the API server listens on the root end of node-a's management link, so
//! nothing leaves the machine.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::kube_api::{ApiServer, parse_yaml_documents};
use super::lan::{Host, Lan, Proc, http_get, poll_for, wait_for};
use super::metrics::value;

pub const MAC_A: &str = "02:4c:32:00:02:0a";
pub const MAC_FOREIGN: &str = "02:4c:32:00:02:f0";
pub const VIP: &str = "10.79.0.100";
/// l2watch's namespace (its Leases).
pub const NS: &str = "l2watch";
/// The daemon's config: fast probing, and a short read timeout so a silent API is given up on in
/// seconds (the default is 90 s).
pub const CONFIG: &str = "probe:\n  interval: 2s\n  reply_window: 500ms\n  unanswered_after: 2\n\
    detect:\n  announcer_grace: 3s\nkubernetes:\n  lease_duration: 6s\n  read_timeout: 3s\n";

/// A shared MetalLB fixture (the first document of `testdata/metallb/<name>`).
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/../shared/testdata/metallb/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse_yaml_documents(&text).unwrap_or_else(|e| panic!("{path}: {e}")).remove(0)
}

/// A Node as the kubelet writes it.
pub fn node(name: &str, internal: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "addresses": [{"type": "InternalIP", "address": internal}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    })
}

/// The fixture Service `web/nginx` renamed to `name` (with a uid of its own, so several can exist)
/// and assigned `ip`.
pub fn service(name: &str, ip: &str) -> Value {
    let mut s = fixture("05-service.yaml");
    if name != "nginx" {
        s["metadata"]["name"] = json!(name);
        let tail = name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        s["metadata"]["uid"] = json!(format!("4b0a9c7e-1d2f-4a3b-8c5d-{:012x}", tail & 0xffff_ffff_ffff));
    }
    s["metadata"]["annotations"]["metallb.io/loadBalancerIPs"] = json!(ip);
    s["status"]["loadBalancer"]["ingress"] = json!([{"ip": ip, "ipMode": "VIP"}]);
    s
}

/// The fixture IPAddressPool holding `addresses`, and the fixture L2Advertisement announcing it.
pub fn layer2_pool(addresses: &str) -> [Value; 2] {
    let mut pool = fixture("03-ipaddresspool.yaml");
    pool["spec"]["addresses"] = json!([addresses]);
    [pool, fixture("04b-l2advertisement-minimal.yaml")]
}

/// The fixture ServiceL2Status (MetalLB >= 0.14.6 layout) for `web/nginx`, naming `node`.
pub fn l2status(node: &str) -> Value {
    let mut s = fixture("01-servicel2status.yaml");
    s["metadata"]["labels"]["metallb.io/node"] = json!(node);
    s["status"]["node"] = json!(node);
    s
}

/// Counters that must never go back across a fault.
#[derive(Debug, Clone)]
pub struct Counters {
    pub probes_sent: f64,
    pub replies: f64,
    pub foreign_replies: f64,
}

pub struct KubeLan {
    pub api: ApiServer,
    pub lan: Lan,
    pub node: Host,
    pub foreign: Host,
    pub scrape: SocketAddr,
    pub dir: tempfile::TempDir,
    pub daemon: Option<Proc>,
}

impl KubeLan {
    /// The LAN, the API server with node-a, `web/nginx` on [`VIP`] announced by node-a, its pool and
    /// L2Advertisement; l2watch not started yet.
    pub fn new() -> KubeLan {
        KubeLan::with_config(CONFIG)
    }

    /// [`KubeLan::new`] with another daemon config.
    pub fn with_config(config: &str) -> KubeLan {
        super::lan::require_root();
        let mut lan = Lan::new();
        let node = lan.host("kfa", MAC_A, "10.79.0.11/24");
        let foreign = lan.host("kff", MAC_FOREIGN, "10.79.0.50/24");
        let far = lan.mgmt(&node);
        let near = Ipv4Addr::from(u32::from(far) - 1);
        let api = ApiServer::start_on(IpAddr::V4(near)).expect("test API server");
        for obj in [node_a(), service("nginx", VIP), l2status("node-a")]
            .into_iter()
            .chain(layer2_pool("10.79.0.96/28"))
        {
            api.apply(obj).expect("fixture object");
        }
        // As MetalLB's speaker on the announcing node does.
        node.add_addr("eth0", &format!("{VIP}/32"));
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("l2watch.yaml"), config).expect("config");
        KubeLan { api, lan, node, foreign, scrape: SocketAddr::from((far, 9787)), dir, daemon: None }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.api.write_kubeconfig(self.dir.path(), NS).expect("kubeconfig")
    }

    /// Starts l2watch as node-a and waits for /readyz.
    pub fn start(&mut self) -> Proc {
        let p = self.spawn();
        wait_for(Duration::from_secs(20), "l2watch /readyz to answer 200 after the first sync", || {
            assert!(p.is_running(), "l2watch exited:\n{}", p.logs());
            matches!(http_get(self.scrape, "/readyz"), Ok((200, _))).then_some(())
        });
        p
    }

    /// Starts l2watch as node-a without waiting for anything.
    pub fn spawn(&mut self) -> Proc {
        let kubeconfig = format!("KUBECONFIG={}", self.kubeconfig().display());
        let config = self.dir.path().join("l2watch.yaml");
        let args = [
            kubeconfig.as_str(),
            env!("CARGO_BIN_EXE_l2watch"),
            "run",
            "-c",
            config.to_str().expect("UTF-8 temp path"),
            "--inventory",
            "kubernetes",
            "--node-name",
            "node-a",
            "-i",
            "eth0",
            "--listen",
            "0.0.0.0:9787",
        ];
        let node = self.node.clone();
        let p = self.lan.spawn(&node, "env", args);
        self.daemon = Some(p.clone());
        p
    }

    pub fn daemon(&self) -> &Proc {
        self.daemon.as_ref().expect("l2watch started")
    }

    /// The daemon's stderr (its log).
    pub fn log(&self) -> String {
        self.daemon().stderr()
    }

    /// Lines of the log that contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// /metrics; panics (with the log) unless it answers 200.
    pub fn metrics(&self) -> String {
        match http_get(self.scrape, "/metrics") {
            Ok((200, body)) => body,
            other => panic!("/metrics: {other:?}\n{}", self.daemon().logs()),
        }
    }

    /// The `inventory` part of /findings: `source`, `synced`, `nodes`, `services`, `pools`,
    /// `warnings`.
    pub fn inventory(&self) -> Value {
        match http_get(self.scrape, "/findings") {
            Ok((200, body)) => {
                let v: Value =
                    serde_json::from_str(&body).unwrap_or_else(|e| panic!("/findings: {e}\n{body}"));
                v["inventory"].clone()
            }
            other => panic!("/findings: {other:?}\n{}", self.daemon().logs()),
        }
    }

    /// The inventory's warnings that mention `needle`.
    pub fn warnings_about(&self, needle: &str) -> Vec<String> {
        let inv = self.inventory();
        let all = inv["warnings"].as_array().cloned().unwrap_or_default();
        all.iter().filter_map(Value::as_str).filter(|w| w.contains(needle)).map(str::to_owned).collect()
    }

    /// `l2watch_inventory_synced{source="kubernetes"}`.
    pub fn synced(&self) -> Option<f64> {
        value(&self.metrics(), "l2watch_inventory_synced", &[("source", "kubernetes")])
    }

    /// Waits until the inventory is (1) or is not (0) in sync; returns how long that took.
    pub fn wait_synced(&self, want: f64, within: Duration, what: &str) -> Duration {
        let t0 = Instant::now();
        let ok = poll_for(within, || (self.synced() == Some(want)).then_some(()));
        if ok.is_none() {
            panic!(
                "inventory_synced never became {want} within {within:?} ({what}):\n{}\n{}",
                self.metrics(),
                self.daemon().logs()
            );
        }
        t0.elapsed()
    }

    /// Whether the inventory has the Service `web/<name>` (its `l2watch_service_info` series), with
    /// `announcer` when given.
    pub fn has_service(&self, name: &str, announcer: Option<&str>) -> bool {
        let mut labels = vec![("namespace", "web"), ("service", name)];
        if let Some(a) = announcer {
            labels.push(("announcer", a));
        }
        value(&self.metrics(), "l2watch_service_info", &labels) == Some(1.0)
    }

    /// Waits until `cond` holds on the daemon; returns how long that took. Panics with the metrics,
    /// the log and the API server's last requests otherwise.
    pub fn wait(&self, within: Duration, what: &str, mut cond: impl FnMut(&KubeLan) -> bool) -> Duration {
        let t0 = Instant::now();
        if poll_for(within, || cond(self).then_some(())).is_none() {
            panic!(
                "not within {within:?}: {what}\n{}\n{}\nlast requests:\n{}",
                self.metrics(),
                self.daemon().logs(),
                self.last_requests(30)
            );
        }
        t0.elapsed()
    }

    /// The API server's last `n` requests, one a line.
    pub fn last_requests(&self, n: usize) -> String {
        let all = self.api.requests();
        let lines: Vec<String> =
            all.iter().map(|r| format!("{} {} {:?}", r.method, r.path, r.params)).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The counters that must never go back.
    pub fn counters(&self) -> Counters {
        let m = self.metrics();
        let get = |name: &str, labels: &[(&str, &str)]| value(&m, name, labels).unwrap_or(0.0);
        Counters {
            probes_sent: get("l2watch_probes_sent_total", &[("interface", "eth0")]),
            replies: get("l2watch_frames_total", &[("interface", "eth0"), ("kind", "reply")]),
            foreign_replies: get("l2watch_foreign_mac_replies_total", &[("ip", VIP), ("mac", MAC_FOREIGN)]),
        }
    }

    /// Whether the `foreign_mac` finding on the Service's IP is active.
    pub fn conflict_active(&self) -> bool {
        let labels = [
            ("kind", "foreign_mac"),
            ("ip", VIP),
            ("mac", MAC_FOREIGN),
            ("namespace", "web"),
            ("service", "nginx"),
        ];
        value(&self.metrics(), "l2watch_conflict_active", &labels) == Some(1.0)
    }

    /// A device outside the cluster takes the Service's IP; waits for the `foreign_mac` finding and
    /// returns the counters then.
    pub fn raise_conflict(&self) -> Counters {
        self.foreign.add_addr("eth0", &format!("{VIP}/32"));
        self.wait(Duration::from_secs(10), "foreign_mac on web/nginx", KubeLan::conflict_active);
        let c = self.counters();
        assert!(c.probes_sent > 0.0 && c.foreign_replies > 0.0, "{c:?}\n{}", self.metrics());
        c
    }

    /// The finding raised before the fault is still active, and no counter went back; probing still
    /// goes on (waits for one more probe round when needed).
    pub fn assert_nothing_lost(&self, before: &Counters) {
        assert!(
            self.conflict_active(),
            "the foreign_mac finding was lost:\n{}\n{}",
            self.metrics(),
            self.log()
        );
        let now = self.counters();
        assert!(
            now.probes_sent >= before.probes_sent
                && now.replies >= before.replies
                && now.foreign_replies >= before.foreign_replies,
            "a counter went back: before {before:?}, now {now:?}"
        );
        self.wait(Duration::from_secs(6), "probing going on", |c| {
            c.counters().foreign_replies > now.foreign_replies
        });
        assert!(self.daemon().is_running(), "{}", self.daemon().logs());
    }
}

fn node_a() -> Value {
    node("node-a", "10.200.0.11")
}
