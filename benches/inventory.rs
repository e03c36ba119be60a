//! What a change in the cluster costs, and what a scrape costs:
//!
//! - `inventory/build`: a snapshot for 5,000 Services and 500 nodes (2 MACs each) from neutral parts;
//! - `inventory/cluster`: the whole rebuild after one watch event: the index's view, the parts, and
//!   the snapshot, for the same cluster;
//! - `monitor/set_inventory`: what the capture thread does with a new snapshot of that cluster;
//! - `metrics/render`: `/metrics` with 10,000 bounded series.
//!
//! `cargo bench --bench inventory` prints the times; before them, the resident memory one snapshot of
//! that cluster holds (read from /proc/self/statm around building and keeping 8 of them).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Service as K8sService};
use l2watch::export::metrics::{Metrics, SeriesBook};
use l2watch::inventory::kubernetes::index::{
    ClusterIndex, IndexConfig, Leases, Nodes, ServiceL2Statuses, Services,
};
use l2watch::inventory::kubernetes::lease::peer_lease;
use l2watch::inventory::kubernetes::parts::parts;
use l2watch::inventory::{Inventory, Machine, Parts, Pool, Service};
use l2watch::monitor::detect::DetectConfig;
use l2watch::monitor::engine::{Monitor, Settings};
use l2watch::monitor::finding::NoSink;
use l2watch::monitor::probe::ProbeConfig;
use l2watch::wire::mac::Mac;
use l2watch::wire::observation::Timestamp;

const SERVICES: u32 = 5_000;
const NODES: u32 = 500;

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
}

fn mac(n: u32, i: u8) -> Mac {
    let b = n.to_be_bytes();
    Mac([0x02, i, b[0], b[1], b[2], b[3]])
}

fn neutral() -> Parts {
    let nodes = (0..NODES)
        .map(|n| Machine {
            name: format!("node-{n}").into(),
            macs: vec![mac(n, 1), mac(n, 2)],
            ips: vec![ip(n + 1)],
        })
        .collect();
    let services = (0..SERVICES)
        .map(|s| {
            let mut svc =
                Service::assigned(format!("ns-{}/svc-{s}", s % 50).parse().unwrap(), vec![ip(0x1_0000 + s)]);
            svc.announcer = Some(format!("node-{}", s % NODES).into());
            svc.requested = vec![ip(0x1_0000 + s)];
            svc
        })
        .collect();
    let pools = vec![Pool { name: "lan".into(), ranges: vec!["10.1.0.0/16".parse().unwrap()] }];
    Parts { nodes, services, pools, ..Parts::default() }
}

/// The same cluster as the API would show it, in the index.
fn index() -> ClusterIndex {
    let now: k8s_openapi::jiff::Timestamp = "2025-03-10T12:00:00Z".parse().unwrap();
    let mut idx =
        ClusterIndex::new(IndexConfig { lease_namespace: Some("l2watch".into()), ..IndexConfig::default() });
    for n in 0..NODES {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("node-{n}")},
            "status": {"addresses": [{"type": "InternalIP", "address": ip(n + 1).to_string()}],
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        idx.apply::<Nodes>(&node);
        let mut lease: Lease = peer_lease(
            &format!("node-{n}"),
            &[mac(n, 1), mac(n, 2)],
            &["eth0".into(), "eth1".into()],
            &[ip(0x2_0000 + n)],
            now,
            std::time::Duration::from_secs(30),
        );
        lease.metadata.namespace = Some("l2watch".into());
        idx.apply::<Leases>(&lease);
    }
    for s in 0..SERVICES {
        let ns = format!("ns-{}", s % 50);
        let name = format!("svc-{s}");
        let svc: K8sService = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns,
                         "annotations": {"metallb.io/loadBalancerIPs": ip(0x1_0000 + s).to_string()}},
            "spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": [{"ip": ip(0x1_0000 + s).to_string()}]}}
        }))
        .unwrap();
        idx.apply::<Services>(&svc);
        let status: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "ServiceL2Status",
            "metadata": {"name": format!("l2-{s}"), "namespace": "metallb-system",
                         "labels": {"metallb.io/node": format!("node-{}", s % NODES),
                                    "metallb.io/service-name": name, "metallb.io/service-namespace": ns}},
            "status": {"node": format!("node-{}", s % NODES), "serviceName": name, "serviceNamespace": ns}
        }))
        .unwrap();
        idx.apply::<ServiceL2Statuses>(&status);
    }
    idx
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn memory() {
    let p = neutral();
    let before = resident_bytes();
    let kept: Vec<Arc<Inventory>> = (0..8).map(|_| Arc::new(Inventory::build(p.clone(), None))).collect();
    let after = resident_bytes();
    eprintln!(
        "inventory: one snapshot of {SERVICES} Services and {NODES} nodes holds about {:.1} MiB ({} watched addresses)",
        after.saturating_sub(before) as f64 / 8.0 / 1048576.0,
        kept[0].watched().count()
    );
}

fn bench(c: &mut Criterion) {
    memory();
    let p = neutral();
    c.bench_function("inventory/build 5000 Services 500 nodes", |b| {
        b.iter(|| black_box(Inventory::build(black_box(p.clone()), None)))
    });
    let idx = index();
    let now: k8s_openapi::jiff::Timestamp = "2025-03-10T12:00:05Z".parse().unwrap();
    c.bench_function("inventory/cluster view + parts + build", |b| {
        b.iter(|| {
            let view = idx.snapshot(now);
            black_box(Inventory::build(parts(&view, "node-0"), None))
        })
    });
    // What the capture thread does with a new snapshot: probe targets, re-judged findings, drift.
    let a = Arc::new(Inventory::build(p.clone(), None));
    let b = Arc::new(Inventory::build(p.clone(), None));
    let settings =
        Settings { detect: DetectConfig::default(), probe: ProbeConfig::default(), interfaces: 1, seed: 1 };
    let t0 = Timestamp(1_700_000_000_000_000_000);
    let mut monitor = Monitor::new(settings, a.clone(), t0, &mut NoSink);
    let mut flip = false;
    c.bench_function("monitor/set_inventory 5000 Services 500 nodes", |bch| {
        bch.iter(|| {
            flip = !flip;
            monitor.set_inventory(if flip { b.clone() } else { a.clone() }, t0, &mut NoSink);
        })
    });
    let m = Metrics::new().unwrap();
    let mut book = SeriesBook::default();
    for n in 0..10_000 {
        m.probe_round(&mut book, &ip(n).to_string(), 1, None, 20_000);
    }
    c.bench_function("metrics/render 10000 series", |b| b.iter(|| black_box(m.render())));
}

criterion_group!(benches, bench);
criterion_main!(benches);
