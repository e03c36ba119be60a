//! The joined cluster view as the inventory's neutral [`Parts`]: nodes with the MACs their peer
//! Leases publish, Services with their announcer, layer2 pools, kube-proxy's ARP mode.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::index::ClusterView;
use crate::inventory::{IgnoredKey, Machine, Parts, Pool, Service};

/// What the cluster says, as parts. `this_node` is this host's node: its MACs come from its own
/// interfaces, so a missing Lease of its own is no gap.
pub fn parts(view: &ClusterView, this_node: &str) -> Parts {
    let mut out = Parts::default();
    // A Service's or pool's address a node holds on an interface (kube-vip puts VIPs there; a test
    // LAN answers with the kernel) is the Service's, not the node's own.
    let service_ips: std::collections::HashSet<std::net::IpAddr> =
        view.services.iter().flat_map(|v| v.service.assigned.iter().copied()).collect();
    let in_pool = |ip: &std::net::IpAddr| {
        let key = crate::wire::iprange::IpKey::from(*ip);
        view.pools.iter().any(|p| p.pool.ranges.iter().any(|r| r.contains(key)))
    };
    let lan_ip = |ip: &&std::net::IpAddr| !service_ips.contains(ip) && !in_pool(ip);
    let mut peers: BTreeMap<&str, &super::PeerInfo> = BTreeMap::new();
    for p in &view.peers {
        peers.insert(p.peer.node.as_str(), &p.peer);
    }
    for n in &view.nodes {
        // A node's MACs do not change when its l2watch stops: an expired Lease still tells them.
        let peer = peers.remove(n.name.as_str());
        let mut ips = n.addresses.clone();
        let mut macs = Vec::new();
        if let Some(p) = peer {
            macs.extend(p.macs.iter().copied());
            for ip in p.ips.iter().filter(lan_ip) {
                if !ips.contains(ip) {
                    ips.push(*ip);
                }
            }
        }
        if macs.is_empty() && n.name != this_node {
            out.unverified_nodes.push(n.name.as_str().into());
        }
        out.nodes.push(Machine { name: n.name.as_str().into(), macs, ips });
    }
    // A Lease whose node the API does not list (yet): still a node of this cluster.
    for (name, p) in peers {
        let ips = p.ips.iter().filter(lan_ip).copied().collect();
        out.nodes.push(Machine { name: name.into(), macs: p.macs.clone(), ips });
    }
    for v in &view.services {
        let s = &v.service;
        let announcer = match v.announcer.nodes.as_slice() {
            [one] => Some(Arc::from(one.as_str())),
            [] => None,
            several => {
                // Several speakers report announcing it (a memberlist split): any of them may answer,
                // and the probe rounds show whether more than one does.
                out.warnings.push(format!(
                    "Service {} is reported announced from several nodes ({}); any node may answer for it",
                    s.name,
                    several.join(", ")
                ));
                None
            }
        };
        out.services.push(Service {
            name: Arc::new(s.name.clone()),
            ips: s.assigned.clone(),
            requested: s.requested.clone(),
            requested_from: s.requested_from.as_ref().map(|r| Arc::from(r.as_str())),
            ignored: s
                .ignored
                .iter()
                .map(|i| IgnoredKey {
                    key: i.key.as_str().into(),
                    expected_key: i.expected_key.as_str().into(),
                })
                .collect(),
            announcer,
            pool: s.allocated_from_pool.as_deref().or(s.pool.as_deref()).map(Arc::from),
        });
    }
    // Only layer2 pools are announced with ARP: a squatter on a BGP pool is not this tool's to judge.
    for p in view.pools.iter().filter(|p| p.layer2) {
        out.pools.push(Pool { name: p.pool.name.as_str().into(), ranges: p.pool.ranges.clone() });
    }
    out.kube_proxy = view.strict_arp.kube_proxy();
    // Every node judges the same LAN: one of them, the same for all, writes the Events.
    out.event_writer = view.peers.iter().filter(|p| p.alive).map(|p| Arc::from(p.peer.node.as_str())).min();
    out.warnings.extend(view.warnings.iter().map(ToString::to_string));
    for n in &out.unverified_nodes {
        out.warnings.push(format!(
            "node {n} has no l2watch Lease (is l2watch running there?): its MACs are unknown, so a device \
             answering for a Service IP it may announce is not called foreign"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::kubernetes::fixtures::one;
    use crate::inventory::kubernetes::index::{
        ClusterIndex, IndexConfig, IpAddressPools, KubeProxyConfigMaps, L2Advertisements, Leases, Nodes,
        ServiceL2Statuses, Services,
    };
    use crate::inventory::kubernetes::lease::peer_lease;
    use crate::inventory::{Inventory, Lookup};
    use crate::monitor::detect::{DetectConfig, Detector};
    use crate::monitor::finding::{FindingKind, NoSink};
    use crate::wire::iprange::IpKey;
    use crate::wire::mac::Mac;
    use crate::wire::observation::{Observation, Timestamp};
    use k8s_openapi::api::core::v1::Node;
    use std::time::Duration;

    fn node(name: &str, ip: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap()
    }

    /// The shared fixtures' cluster; worker-2 (the announcer of web/nginx) has a Lease when `lease`.
    fn cluster(lease: bool) -> ClusterView {
        let now: k8s_openapi::jiff::Timestamp = "2025-03-10T12:00:00Z".parse().unwrap();
        let mut idx = ClusterIndex::new(IndexConfig {
            lease_namespace: Some("l2watch".into()),
            ..IndexConfig::default()
        });
        for (n, ip) in
            [("worker-1", "192.168.1.11"), ("worker-2", "192.168.1.12"), ("worker-3", "192.168.1.13")]
        {
            idx.apply::<Nodes>(&node(n, ip));
        }
        idx.apply::<Services>(&one("05-service.yaml"));
        idx.apply::<ServiceL2Statuses>(&one("01-servicel2status.yaml"));
        idx.apply::<IpAddressPools>(&one("03-ipaddresspool.yaml"));
        idx.apply::<L2Advertisements>(&one("04-l2advertisement.yaml"));
        idx.apply::<KubeProxyConfigMaps>(&one("11-kube-proxy-configmap-ipvs-no-strictarp.yaml"));
        if lease {
            let mac: Mac = "52:54:00:6b:3c:02".parse().unwrap();
            let mut l = peer_lease(
                "worker-2",
                &[mac],
                &["eth0".into()],
                &["10.77.0.12".parse().unwrap()],
                now,
                Duration::from_secs(30),
            );
            l.metadata.namespace = Some("l2watch".into());
            idx.apply::<Leases>(&l);
        }
        idx.snapshot(now)
    }

    fn claim(inv: &Inventory, mac: &str) -> Vec<FindingKind> {
        let mac: Mac = mac.parse().unwrap();
        let ip = "192.168.1.240".parse().unwrap();
        let o = Observation::gratuitous(Timestamp(1), mac, ip);
        let mut d = Detector::new(DetectConfig::default());
        d.observe(&o, inv, &mut NoSink);
        d.findings().map(|f| f.kind).collect()
    }

    #[test]
    fn the_cluster_as_parts() {
        let p = parts(&cluster(true), "worker-1");
        let names: Vec<&str> = p.nodes.iter().map(|n| &*n.name).collect();
        assert_eq!(names, ["worker-1", "worker-2", "worker-3"]);
        let w2 = &p.nodes[1];
        assert_eq!(w2.macs, ["52:54:00:6b:3c:02".parse::<Mac>().unwrap()]);
        assert!(
            w2.ips.contains(&"10.77.0.12".parse().unwrap())
                && w2.ips.contains(&"192.168.1.12".parse().unwrap())
        );
        // This host's own node needs no Lease; worker-3 has none.
        assert_eq!(p.unverified_nodes, [Arc::from("worker-3")]);
        assert!(
            p.warnings.iter().any(|w| w.contains("worker-3") && w.contains("no l2watch Lease")),
            "{:?}",
            p.warnings
        );
        let s = &p.services[0];
        assert_eq!((s.name.to_string().as_str(), s.announcer.as_deref()), ("web/nginx", Some("worker-2")));
        assert_eq!(s.ips, ["192.168.1.240".parse::<std::net::IpAddr>().unwrap()]);
        assert!(p.pools.iter().any(|x| &*x.name == "first-pool"), "{:?}", p.pools);
        assert_eq!(p.event_writer.as_deref(), Some("worker-2"), "the only live peer writes the Events");
        let kp = p.kube_proxy.as_ref().unwrap();
        assert_eq!((&*kp.mode, kp.strict_arp), ("ipvs", false));
        // Built: the announcer's MAC is legitimate, another MAC is foreign.
        let inv = Inventory::build(p, None);
        let Lookup::Watched(w) =
            inv.lookup(IpKey::from("192.168.1.240".parse::<std::net::IpAddr>().unwrap()))
        else {
            panic!()
        };
        assert_eq!(w.announcers.len(), 1);
        assert!(claim(&inv, "52:54:00:6b:3c:02").is_empty());
        assert_eq!(claim(&inv, "02:00:00:00:00:f0"), [FindingKind::ForeignMac]);
    }

    #[test]
    fn an_announcer_without_a_lease_is_not_called_foreign() {
        let inv = Inventory::build(parts(&cluster(false), "worker-1"), None);
        assert!(claim(&inv, "02:00:00:00:00:f0").is_empty());
    }
}
