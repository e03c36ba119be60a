//! The immutable inventory snapshot and its lookups (read per frame: no lock, no allocation).

use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::{Allowed, Machine, Parts, Pool, Role, Service, ServiceName, ThisHost};
use crate::wire::iprange::{IpKey, IpRange};
use crate::wire::mac::Mac;

/// Who a MAC belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Owner {
    /// Cluster node, by index in [`Inventory::nodes`].
    Node(u32),
    /// Known host, by index in [`Inventory::hosts`].
    Host(u32),
}

/// What the inventory says about one watched IP.
#[derive(Clone, Debug)]
pub struct Watched {
    /// Why it is watched.
    pub role: Role,
    /// The Service that has (or, for `registry`, expects) it; the first by name when several share it.
    pub service: Option<Arc<ServiceName>>,
    /// Nodes allowed to announce it (service and registry roles). Empty: any node.
    pub announcers: Vec<u32>,
    /// The node or host that owns it (node and host roles).
    pub owner: Option<Owner>,
    /// The pool it belongs to, if any.
    pub pool: Option<Arc<str>>,
}

/// The immutable inventory snapshot.
#[derive(Debug, Default, Clone)]
pub struct Inventory {
    /// Cluster nodes.
    pub nodes: Vec<Machine>,
    /// Known hosts outside the cluster.
    pub hosts: Vec<Machine>,
    /// LoadBalancer Services.
    pub services: Vec<Service>,
    /// Address pools.
    pub pools: Vec<Pool>,
    /// The allow-list.
    pub allow: Vec<Allowed>,
    /// The IP registry: the address each Service is expected to have.
    pub registry: Vec<(Arc<ServiceName>, IpAddr)>,
    /// Whether per-IP history is kept for every address, not only watched ones.
    pub track_all: bool,
    /// kube-proxy's mode and strictARP setting, when known.
    pub kube_proxy: Option<super::KubeProxy>,
    /// The node that writes Kubernetes Events; `None`: every node does.
    pub event_writer: Option<Arc<str>>,
    /// What did not fit together while building (a MAC given to two machines, an unknown announcer).
    pub warnings: Vec<String>,
    /// This host's node, by index in `nodes`.
    pub this_node: Option<u32>,
    /// The MACs this host answers ARP with, sorted.
    pub own_macs: Vec<Mac>,
    /// Addresses this host holds on its LAN interfaces, sorted.
    pub local_addresses: Vec<IpAddr>,
    /// Nodes whose MACs are unknown (no l2watch Lease), by index in `nodes`, sorted.
    pub unverified: Vec<u32>,
    watched: FxHashMap<IpKey, Watched>,
    macs: FxHashMap<Mac, Owner>,
    allow_exact: FxHashMap<Mac, Vec<u32>>,
    allow_prefix: Vec<u32>,
    pool_ranges: Vec<(IpRange, u32)>,
}

/// Joins machines listed more than once under one name (a node from the API and from the config).
fn merge_machines(list: Vec<Machine>) -> Vec<Machine> {
    let mut out: Vec<Machine> = Vec::with_capacity(list.len());
    let mut at: FxHashMap<Arc<str>, usize> = FxHashMap::default();
    for m in list {
        match at.get(&m.name) {
            Some(&i) => {
                let t = &mut out[i];
                for mac in m.macs {
                    if !t.macs.contains(&mac) {
                        t.macs.push(mac);
                    }
                }
                for ip in m.ips {
                    if !t.ips.contains(&ip) {
                        t.ips.push(ip);
                    }
                }
            }
            None => {
                at.insert(m.name.clone(), out.len());
                out.push(m);
            }
        }
    }
    out
}

impl Inventory {
    /// An empty inventory: nothing watched, every address tracked (arpwatch mode).
    pub fn none() -> Inventory {
        Inventory::build(Parts { track_all: true, ..Parts::default() }, None)
    }

    /// Joins the sources' parts and this host into a snapshot. Contradictions do not fail the build:
    /// the first word wins and the rest is in [`Inventory::warnings`].
    pub fn build(parts: Parts, this: Option<&ThisHost>) -> Inventory {
        let Parts {
            nodes,
            hosts,
            mut services,
            pools,
            registry,
            allow,
            track_all,
            kube_proxy,
            unverified_nodes,
            warnings: source_warnings,
            event_writer,
        } = parts;
        let mut inv = Inventory {
            kube_proxy,
            event_writer,
            nodes: merge_machines(nodes),
            hosts: merge_machines(hosts),
            pools,
            allow,
            track_all,
            ..Inventory::default()
        };
        // A MAC that belongs to two machines would make every verdict about it arbitrary: the first
        // (nodes before hosts) keeps it.
        let mut warnings = source_warnings;
        for (is_node, list) in [(true, &mut inv.nodes), (false, &mut inv.hosts)] {
            for (i, m) in list.iter_mut().enumerate() {
                let owner = if is_node { Owner::Node(i as u32) } else { Owner::Host(i as u32) };
                m.macs.retain(|mac| match inv.macs.get(mac) {
                    Some(_) => {
                        warnings.push(format!(
                            "MAC {mac} of {} {:?} also belongs to another node or host; it is kept for the first",
                            if is_node { "node" } else { "host" },
                            m.name
                        ));
                        false
                    }
                    None => {
                        inv.macs.insert(*mac, owner);
                        true
                    }
                });
            }
        }
        if let Some(this) = this {
            inv.add_this_host(this, &mut warnings);
        }
        inv.unverified = inv
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| {
                n.macs.is_empty() && Some(*i as u32) != inv.this_node && unverified_nodes.contains(&n.name)
            })
            .map(|(i, _)| i as u32)
            .collect();
        let node_names: rustc_hash::FxHashSet<&str> = inv.nodes.iter().map(|n| &*n.name).collect();
        for s in &mut services {
            if let Some(a) = &s.announcer
                && !node_names.contains(&**a)
            {
                warnings.push(format!(
                    "Service {} is announced from {a:?}, which is not a known node; any node may answer for it",
                    s.name
                ));
            }
        }
        inv.services = services;
        let mut seen = rustc_hash::FxHashSet::default();
        let by_name: FxHashMap<&ServiceName, &Arc<ServiceName>> =
            inv.services.iter().map(|s| (&*s.name, &s.name)).collect();
        let registry = registry
            .into_iter()
            .filter(|(name, _)| seen.insert(name.clone()))
            .map(|(name, ip)| {
                let shared = by_name.get(&name).map(|n| Arc::clone(n));
                (shared.unwrap_or_else(|| Arc::new(name)), ip)
            })
            .collect();
        inv.registry = registry;
        inv.warnings = warnings;
        inv.index();
        inv
    }

    /// Adds this host's MACs to its node (created if the sources do not list it), so its own replies
    /// and probes are recognised as a node's. A MAC the sources give to another machine stays theirs.
    fn add_this_host(&mut self, this: &ThisHost, warnings: &mut Vec<String>) {
        let idx = match self.nodes.iter().position(|n| n.name == this.node) {
            Some(i) => i,
            None => {
                self.nodes.push(Machine { name: this.node.clone(), macs: Vec::new(), ips: Vec::new() });
                self.nodes.len() - 1
            }
        };
        for &mac in &this.macs {
            match self.macs.get(&mac) {
                Some(&Owner::Node(i)) if i as usize == idx => {}
                Some(&other) => warnings.push(format!(
                    "MAC {mac} of this host is given to {:?} by the inventory; keeping the inventory's word",
                    self.owner_name(other)
                )),
                None => {
                    self.macs.insert(mac, Owner::Node(idx as u32));
                    self.nodes[idx].macs.push(mac);
                }
            }
        }
        self.this_node = Some(idx as u32);
        self.own_macs = this.macs.clone();
        self.own_macs.sort_unstable();
        self.own_macs.dedup();
        self.local_addresses = this.addresses.clone();
        self.local_addresses.sort_unstable();
        self.local_addresses.dedup();
    }

    /// Builds the lookup tables. Called once per snapshot, never per frame.
    fn index(&mut self) {
        for (i, p) in self.pools.iter().enumerate() {
            for r in &p.ranges {
                self.pool_ranges.push((*r, i as u32));
            }
        }
        self.pool_ranges.sort_by_key(|(r, _)| (r.first(), r.last()));
        // A Service that does not name its pool is in the pool its address falls in. Settled here, once,
        // so the metrics, the findings and the reports all name the same pool.
        for i in 0..self.services.len() {
            if self.services[i].pool.is_none() {
                let pool = self.services[i].ips.iter().find_map(|ip| self.pool_of(IpKey::from(*ip)));
                self.services[i].pool = pool;
            }
        }
        // Order of precedence when one address has several roles: a node's own address beats all, then a
        // host's, then a Service's; registry only fills addresses nobody has.
        let node_index: FxHashMap<&str, u32> =
            self.nodes.iter().enumerate().map(|(i, n)| (&*n.name, i as u32)).collect();
        let mut services: Vec<&Service> = self.services.iter().collect();
        services.sort_by(|a, b| a.name.cmp(&b.name));
        // Services sharing an IP may be announced from different nodes (externalTrafficPolicy Local):
        // any of their announcers may answer, and one Service without an announcer opens it to all.
        let mut open = Vec::new();
        for s in services {
            let announcer = s.announcer.as_deref().and_then(|a| node_index.get(a).copied());
            for ip in &s.ips {
                let key = IpKey::from(*ip);
                let pool = s.pool.clone();
                let w = self.watched.entry(key).or_insert_with(|| Watched {
                    role: Role::Service,
                    service: Some(s.name.clone()),
                    announcers: Vec::new(),
                    owner: None,
                    pool,
                });
                match announcer {
                    Some(i) => w.announcers.push(i),
                    None => open.push(key),
                }
            }
        }
        for key in open {
            if let Some(w) = self.watched.get_mut(&key) {
                w.announcers.clear();
            }
        }
        for (list, is_node) in [(&self.hosts, false), (&self.nodes, true)] {
            for (i, m) in list.iter().enumerate() {
                for ip in &m.ips {
                    let owner = if is_node { Owner::Node(i as u32) } else { Owner::Host(i as u32) };
                    let role = if is_node { Role::Node } else { Role::Host };
                    self.watched.insert(
                        IpKey::from(*ip),
                        Watched {
                            role,
                            service: None,
                            announcers: Vec::new(),
                            owner: Some(owner),
                            pool: None,
                        },
                    );
                }
            }
        }
        {
            let by_name: FxHashMap<&ServiceName, &Service> =
                self.services.iter().map(|s| (&*s.name, s)).collect();
            for (name, ip) in &self.registry {
                let key = IpKey::from(*ip);
                if self.watched.contains_key(&key) {
                    continue;
                }
                let announcers = by_name
                    .get(&**name)
                    .and_then(|s| s.announcer.as_deref())
                    .and_then(|a| node_index.get(a).copied())
                    .map(|i| vec![i])
                    .unwrap_or_default();
                let pool = self.pool_of(key);
                self.watched.insert(
                    key,
                    Watched {
                        role: Role::Registry,
                        service: Some(name.clone()),
                        announcers,
                        owner: None,
                        pool,
                    },
                );
            }
        }
        for (i, a) in self.allow.iter().enumerate() {
            if a.mac.bits == 48 {
                self.allow_exact.entry(a.mac.mac).or_default().push(i as u32);
            } else {
                self.allow_prefix.push(i as u32);
            }
        }
    }

    fn pool_of(&self, ip: IpKey) -> Option<Arc<str>> {
        self.pool_index(ip).map(|i| self.pools[i as usize].name.clone())
    }

    fn pool_index(&self, ip: IpKey) -> Option<u32> {
        // Ranges are sorted by start; overlaps are rare, so scan back from the last range starting at or
        // before `ip` only while ranges could still contain it.
        let end = self.pool_ranges.partition_point(|(r, _)| r.first() <= ip);
        self.pool_ranges[..end].iter().rev().find(|(r, _)| r.contains(ip)).map(|(_, i)| *i)
    }

    /// What the inventory says about `ip`: a watched address, an unassigned pool address, or nothing.
    // Every claim asks. Without an inventory (`analyze`, `--inventory none`) it is two emptiness
    // checks, cheaper than the call `#[inline]` left in `analyze`'s loop: always inlined.
    #[inline(always)]
    pub fn lookup(&self, ip: IpKey) -> Lookup<'_> {
        if !self.watched.is_empty()
            && let Some(w) = self.watched.get(&ip)
        {
            return Lookup::Watched(w);
        }
        if self.pool_ranges.is_empty() {
            return Lookup::Unwatched;
        }
        match self.pool_index(ip) {
            Some(i) => Lookup::Pool(&self.pools[i as usize]),
            None => Lookup::Unwatched,
        }
    }

    /// Whether a device answering for `w` might be a node whose MACs are unknown: one of its
    /// announcers (any node, when it has none) has no l2watch Lease.
    #[inline]
    pub fn may_be_unverified_node(&self, w: &Watched) -> bool {
        !self.unverified.is_empty()
            && (w.announcers.is_empty()
                || w.announcers.iter().any(|a| self.unverified.binary_search(a).is_ok()))
    }

    /// Who `mac` belongs to, if it is a node's or a known host's.
    #[inline]
    pub fn owner(&self, mac: Mac) -> Option<Owner> {
        if self.macs.is_empty() {
            return None;
        }
        self.macs.get(&mac).copied()
    }

    /// Whether the allow-list lets `mac` claim `ip`.
    #[inline]
    pub fn allowed(&self, mac: Mac, ip: IpKey) -> bool {
        self.allowed_by(mac, ip).is_some()
    }

    /// The allow-list entry that lets `mac` claim `ip`, if any.
    #[inline]
    pub fn allowed_by(&self, mac: Mac, ip: IpKey) -> Option<&Allowed> {
        if self.allow.is_empty() {
            return None;
        }
        let fits = |i: &&u32| {
            let a = &self.allow[**i as usize];
            a.mac.matches(mac) && (a.ips.is_empty() || a.ips.iter().any(|r| r.contains(ip)))
        };
        let i = self
            .allow_exact
            .get(&mac)
            .and_then(|v| v.iter().find(fits))
            .or_else(|| self.allow_prefix.iter().find(fits))?;
        Some(&self.allow[*i as usize])
    }

    /// The name of a node or host.
    pub fn owner_name(&self, owner: Owner) -> Arc<str> {
        match owner {
            Owner::Node(i) => self.nodes[i as usize].name.clone(),
            Owner::Host(i) => self.hosts[i as usize].name.clone(),
        }
    }

    /// Every watched address with what is known about it (unordered).
    pub fn watched(&self) -> impl Iterator<Item = (IpKey, &Watched)> {
        self.watched.iter().map(|(k, w)| (*k, w))
    }

    /// Number of watched addresses per role (pool addresses counted by range size).
    pub fn watched_counts(&self) -> [(Role, u128); 5] {
        let mut counts = Role::ALL.map(|r| (r, 0u128));
        for w in self.watched.values() {
            counts[w.role as usize].1 += 1;
        }
        // IPv6 pools can hold more than 2^128 addresses together: the count stops at the top.
        counts[Role::Pool as usize].1 =
            self.pool_ranges.iter().fold(0u128, |n, (r, _)| n.saturating_add(r.len()));
        counts
    }

    /// Whether there is any inventory at all (nodes, hosts, pools, services, registry).
    pub fn is_empty(&self) -> bool {
        self.watched.is_empty()
            && self.pools.is_empty()
            && (0..self.nodes.len()).all(|i| Some(i as u32) == self.this_node)
    }
}

/// The result of [`Inventory::lookup`].
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// A service, node, host or registry address.
    Watched(&'a Watched),
    /// An address of a pool that no Service has.
    Pool(&'a Pool),
    /// Nothing the inventory knows.
    Unwatched,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Registry};
    use crate::inventory::ThisHost;
    use std::path::Path;

    fn inv(yaml: &str) -> Inventory {
        let p = Path::new("t.yaml");
        let c = Config::parse(p, yaml).unwrap();
        c.static_inventory(p, None).unwrap()
    }

    const BASE: &str = "inventory:\n  nodes:\n    - {name: worker-1, macs: [\"52:54:00:6b:3c:01\"], ips: [192.168.1.11]}\n    - {name: worker-2, macs: [\"52:54:00:6b:3c:02\", \"52:54:00:6b:3c:12\"], ips: [192.168.1.12]}\n  hosts:\n    - {name: gateway, macs: [\"00:26:0b:31:07:33\"], ips: [192.168.1.1]}\n  pools:\n    - {name: first-pool, addresses: [192.168.1.240/28]}\n  services:\n    - {name: web/nginx, ips: [192.168.1.240], announcer: worker-2}\n    - {name: web/api, ips: [192.168.1.241]}\nallow:\n  - {mac: \"00:00:5e:00:01:00/40\", ips: [192.168.1.1], note: VRRP}\n";

    fn k(s: &str) -> IpKey {
        IpKey::from(s.parse::<IpAddr>().unwrap())
    }

    /// Found by reading the code and checked with the fuzz target `config` (which feeds every config
    /// snapshot to `Metrics::set_inventory`): IPv6 pools larger than 2^128 addresses together
    /// overflowed the sum (a panic with overflow checks, a wrong gauge without).
    #[test]
    fn pool_count_saturates() {
        let i = inv(
            "inventory:\n  source: static\n  pools:\n    - {name: a, addresses: [\"::/1\", \"8000::/1\"]}\n    - {name: b, addresses: [\"::/1\"]}\n",
        );
        let pools = i.watched_counts().into_iter().find(|(r, _)| *r == Role::Pool).unwrap().1;
        assert_eq!(pools, u128::MAX);
    }

    #[test]
    fn roles_and_owners() {
        let i = inv(BASE);
        let Lookup::Watched(w) = i.lookup(k("192.168.1.240")) else { panic!() };
        assert_eq!((w.role, w.announcers.as_slice()), (Role::Service, &[1][..]));
        assert_eq!(w.pool.as_deref(), Some("first-pool"));
        let Lookup::Watched(w) = i.lookup(k("192.168.1.241")) else { panic!() };
        assert!(w.announcers.is_empty());
        assert!(matches!(i.lookup(k("192.168.1.250")), Lookup::Pool(p) if &*p.name == "first-pool"));
        assert!(matches!(i.lookup(k("192.168.1.100")), Lookup::Unwatched));
        assert!(matches!(i.lookup(k("192.168.1.1")), Lookup::Watched(w) if w.role == Role::Host));
        assert_eq!(i.owner("52:54:00:6b:3c:12".parse().unwrap()), Some(Owner::Node(1)));
        assert_eq!(i.owner("00:26:0b:31:07:33".parse().unwrap()), Some(Owner::Host(0)));
        assert!(!i.track_all);
    }

    #[test]
    fn allow_list_prefix_and_ip_limits() {
        let i = inv(BASE);
        let vrrp: Mac = "00:00:5e:00:01:07".parse().unwrap();
        assert!(i.allowed(vrrp, k("192.168.1.1")));
        assert!(!i.allowed(vrrp, k("192.168.1.240")));
        assert!(!i.allowed("00:00:5e:00:02:07".parse().unwrap(), k("192.168.1.1")));
    }

    #[test]
    fn registry_fills_only_free_addresses() {
        let p = Path::new("t.yaml");
        let c = Config::parse(p, BASE).unwrap();
        let r = Registry::parse(p, "web/nginx: 192.168.1.245\nweb/api: 192.168.1.241\n").unwrap();
        let i = c.static_inventory(p, Some(&r)).unwrap();
        let Lookup::Watched(w) = i.lookup(k("192.168.1.245")) else { panic!() };
        assert_eq!((w.role, w.announcers.as_slice()), (Role::Registry, &[1][..]));
        assert!(matches!(i.lookup(k("192.168.1.241")), Lookup::Watched(w) if w.role == Role::Service));
    }

    #[test]
    fn contradictions_are_rejected_with_a_location() {
        let p = Path::new("t.yaml");
        let c = Config::parse(p, "inventory:\n  nodes:\n    - {name: a}\n  services:\n    - {name: x/y, ips: [10.0.0.1], announcer: b}\n").unwrap();
        let e = c.static_inventory(p, None).unwrap_err().to_string();
        assert!(e.starts_with("t.yaml:5:7: ") && e.contains("announcer \"b\""), "{e}");
        let c = Config::parse(p, "inventory:\n  nodes:\n    - {name: a, macs: [\"02:00:00:00:00:01\"]}\n    - {name: b, macs: [\"02:00:00:00:00:01\"]}\n").unwrap();
        let e = c.static_inventory(p, None).unwrap_err().to_string();
        assert!(e.contains("02:00:00:00:00:01"), "{e}");
    }

    #[test]
    fn empty_config_tracks_everything() {
        let i = inv("");
        assert!(i.track_all && i.is_empty());
    }

    #[test]
    fn sources_merge_and_contradictions_become_warnings() {
        let m = |s: &str| s.parse::<Mac>().unwrap();
        let node = |name: &str, macs: &[&str], ips: &[&str]| Machine {
            name: name.into(),
            macs: macs.iter().map(|s| m(s)).collect(),
            ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        };
        let mut svc = Service::assigned("web/nginx".parse().unwrap(), vec!["10.0.0.100".parse().unwrap()]);
        svc.announcer = Some("ghost".into());
        let parts = Parts {
            // The same node from two sources, and a MAC given to a node and a host.
            nodes: vec![
                node("a", &["02:00:00:00:00:01"], &["10.0.0.1"]),
                node("a", &["02:00:00:00:00:02"], &[]),
            ],
            hosts: vec![node("gw", &["02:00:00:00:00:02"], &["10.0.0.254"])],
            services: vec![svc],
            ..Parts::default()
        };
        let me = ThisHost {
            node: "b".into(),
            macs: vec![m("02:00:00:00:00:01"), m("02:00:00:00:00:0b")],
            addresses: vec![],
        };
        let inv = Inventory::build(parts, Some(&me));
        assert_eq!(inv.nodes.len(), 2, "{:?}", inv.nodes);
        assert_eq!(inv.nodes[0].macs.len(), 2);
        assert_eq!(inv.owner(m("02:00:00:00:00:02")), Some(Owner::Node(0)));
        // This host is node b; the MAC the sources give to node a stays a's.
        assert_eq!(inv.this_node, Some(1));
        assert_eq!(inv.owner(m("02:00:00:00:00:0b")), Some(Owner::Node(1)));
        assert_eq!(inv.owner(m("02:00:00:00:00:01")), Some(Owner::Node(0)));
        let w = inv.warnings.join("\n");
        assert!(w.contains("02:00:00:00:00:02") && w.contains("\"gw\""), "{w}");
        assert!(w.contains("02:00:00:00:00:01") && w.contains("this host"), "{w}");
        assert!(w.contains("ghost"), "{w}");
        assert_eq!(inv.warnings.len(), 3, "{w}");
        // An unknown announcer opens the address to every node rather than failing the build.
        let Lookup::Watched(w) = inv.lookup(k("10.0.0.100")) else { panic!() };
        assert!(w.announcers.is_empty());
    }
}
