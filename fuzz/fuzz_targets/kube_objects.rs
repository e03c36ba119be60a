//! The Kubernetes source's pure part: objects as the API server sends them (JSON) through the
//! conversions, the index, the joined view, the inventory parts and the inventory, then into the
//! monitor (drift findings, probe targets). The API is outside l2watch's control (any user with
//! write access to a Service, an Event or a MetalLB CRD shapes it): nothing here may panic.
//!
//! Input: lines, each one watch event: a command byte, then the object as JSON (one line; JSON
//! escapes newlines inside strings). The command's low four bits pick the resource (modulo 9):
//! 0 Node, 1 Service, 2 IPAddressPool, 3 L2Advertisement, 4 ServiceL2Status, 5 Event, 6 Lease,
//! 7 ConfigMap (kube-proxy's table), 8 ConfigMap (MetalLB's legacy table). Bits 4-5 pick what
//! happens: 0 a relist holding just this object, 1 the object's deletion, 2 or 3 an apply. So the
//! digits `0`-`8` apply, `P`-`X` delete and `@`, `A`-`H` relist.
#![no_main]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff;
use l2watch::inventory::kubernetes::lease::peer_lease;
use l2watch::inventory::kubernetes::{
    ClusterIndex, Events, IndexConfig, IpAddressPools, KubeProxyConfigMaps, L2Advertisements, Leases,
    LegacyConfigMaps, Nodes, PeerInfo, Resource, ServiceL2Statuses, Services, parts,
};
use l2watch::inventory::{Inventory, ThisHost};
use l2watch::monitor::engine::{Monitor, Settings};
use l2watch::monitor::finding::NoSink;
use l2watch::wire::observation::Timestamp;
use libfuzzer_sys::fuzz_target;

/// The process's metrics, as `run` keeps one for its lifetime; every snapshot is published into it.
fn metrics() -> &'static l2watch::export::metrics::Metrics {
    static METRICS: std::sync::OnceLock<l2watch::export::metrics::Metrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| l2watch::export::metrics::Metrics::new().expect("the metrics register"))
}

/// What one line does to the index.
#[derive(Clone, Copy)]
enum Op {
    Reset,
    Delete,
    Apply,
}

/// Parses `json` as `R`'s object and applies `op`; JSON the API could not have sent is dropped, as
/// the watcher would.
fn event<R: Resource>(index: &mut ClusterIndex, op: Op, json: &[u8])
where
    R::Object: serde::de::DeserializeOwned,
{
    let Ok(obj) = serde_json::from_slice::<R::Object>(json) else { return };
    match op {
        Op::Apply => {
            let _ = R::relevant(index, &obj);
            let _ = index.apply::<R>(&obj);
        }
        Op::Delete => {
            let meta = kube::Resource::meta(&obj);
            let namespace = meta.namespace.clone().unwrap_or_default();
            let name = meta.name.clone().unwrap_or_default();
            let _ = index.delete::<R>(&namespace, &name);
        }
        Op::Reset => index.reset::<R>(std::slice::from_ref(&obj)),
    }
}

/// The peer Lease encoding both ways: what a Lease says, published again, reads the same.
fn lease_round_trip(json: &[u8]) {
    let Ok(lease) = serde_json::from_slice::<Lease>(json) else { return };
    let Some(peer) = PeerInfo::from_lease(&lease).value else { return };
    let (Some(renewed), Some(duration)) = (peer.renewed, peer.duration) else { return };
    let again = peer_lease(&peer.node, &peer.macs, &peer.interfaces, &peer.ips, renewed, duration);
    let back = PeerInfo::from_lease(&again).value.expect("a published Lease reads back");
    assert_eq!(back.node, peer.node);
    assert_eq!(back.macs, peer.macs);
    assert_eq!(back.ips, peer.ips);
    assert_eq!(back.renewed, peer.renewed);
}

fuzz_target!(|data: &[u8]| {
    let mut index = ClusterIndex::new(IndexConfig::default());
    for line in data.split(|&b| b == b'\n') {
        let Some((&command, json)) = line.split_first() else { continue };
        let op = match (command >> 4) & 3 {
            0 => Op::Reset,
            1 => Op::Delete,
            _ => Op::Apply,
        };
        match (command & 0x0f) % 9 {
            0 => event::<Nodes>(&mut index, op, json),
            1 => event::<Services>(&mut index, op, json),
            2 => event::<IpAddressPools>(&mut index, op, json),
            3 => event::<L2Advertisements>(&mut index, op, json),
            4 => event::<ServiceL2Statuses>(&mut index, op, json),
            5 => event::<Events>(&mut index, op, json),
            6 => {
                lease_round_trip(json);
                event::<Leases>(&mut index, op, json)
            }
            7 => event::<KubeProxyConfigMaps>(&mut index, op, json),
            _ => event::<LegacyConfigMaps>(&mut index, op, json),
        }
    }
    let now: jiff::Timestamp = jiff::Timestamp::from_second(1_741_608_000).expect("2025-03-10 in range");
    let view = index.snapshot(now);
    let this = ThisHost {
        node: "worker-1".into(),
        macs: vec!["52:54:00:6b:3c:01".parse().expect("a MAC")],
        addresses: Vec::new(),
    };
    let parts = parts::parts(&view, &this.node);
    let inventory = Arc::new(Inventory::build(parts, Some(&this)));
    metrics().set_inventory(&inventory);
    metrics().set_peers(view.peers.iter().map(|p| (p.peer.node.as_str(), p.alive)));
    // As `run` takes it: drift findings judged, every watched address scheduled for probing.
    let t = Timestamp::from_secs_nanos(1_741_608_000, 0);
    let settings = Settings { detect: Default::default(), probe: Default::default(), interfaces: 1, seed: 3 };
    let mut monitor = Monitor::new(settings, Arc::new(Inventory::none()), t, &mut NoSink);
    monitor.set_inventory(inventory, t, &mut NoSink);
    monitor.probe(t, |_: IpAddr| true, &mut NoSink, |_| {});
    let later = t.plus(Duration::from_secs(60));
    monitor.expire(later, &mut NoSink);
});
