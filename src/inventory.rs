//! The inventory: which IPs are watched, who is expected to answer for each, which MACs belong to
//! cluster nodes, and the allow-list. It is an immutable snapshot: sources (the static config now, the
//! Kubernetes API later) build a new one and swap it in; the per-frame path only reads it.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::config::{self, Config, ConfigError, InventorySource, MacPattern, Registry, ServiceName, Track};
use crate::iprange::{IpKey, IpRange};
use crate::mac::Mac;

/// The role of a watched IP (DESIGN.md "Inventory").
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A LoadBalancer IP assigned to a Service.
    Service,
    /// A cluster node's own address.
    Node,
    /// A known machine outside the cluster (gateway, DNS server).
    Host,
    /// An address from the IP registry that no Service has (yet).
    Registry,
    /// An unassigned address of a pool.
    Pool,
}

impl Role {
    /// Every role, in label order.
    pub const ALL: [Role; 5] = [Role::Service, Role::Node, Role::Host, Role::Registry, Role::Pool];

    /// The `role` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Service => "service",
            Role::Node => "node",
            Role::Host => "host",
            Role::Registry => "registry",
            Role::Pool => "pool",
        }
    }
}

/// A node or known host.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Its name.
    pub name: Arc<str>,
    /// The MACs it answers with.
    pub macs: Vec<Mac>,
    /// Its own IPs.
    pub ips: Vec<IpAddr>,
}

/// A LoadBalancer Service.
#[derive(Debug, Clone)]
pub struct Service {
    /// `namespace/name`.
    pub name: Arc<ServiceName>,
    /// Assigned IPs.
    pub ips: Vec<IpAddr>,
    /// The announcing node, when known. `None`: any node may announce.
    pub announcer: Option<Arc<str>>,
    /// The pool it came from.
    pub pool: Option<Arc<str>>,
}

/// An address pool.
#[derive(Debug, Clone)]
pub struct Pool {
    /// Its name.
    pub name: Arc<str>,
    /// Its ranges.
    pub ranges: Vec<IpRange>,
}

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

/// One allow-list entry, compiled.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// Which MACs.
    pub mac: MacPattern,
    /// Which addresses; empty means any.
    pub ips: Vec<IpRange>,
    /// Why.
    pub note: String,
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
    /// Whether per-IP history is kept for every address, not only watched ones.
    pub track_all: bool,
    watched: FxHashMap<IpKey, Watched>,
    macs: FxHashMap<Mac, Owner>,
    allow_exact: FxHashMap<Mac, Vec<u32>>,
    allow_prefix: Vec<u32>,
    pool_ranges: Vec<(IpRange, u32)>,
}

impl Inventory {
    /// An empty inventory: nothing watched, every address tracked (arpwatch mode).
    pub fn none() -> Inventory {
        Inventory { track_all: true, ..Inventory::default() }
    }

    /// Builds the static inventory from a config (and its registry, if any). `path` is the config
    /// file, for error messages.
    pub fn from_config(
        path: &Path,
        config: &Config,
        registry: Option<&Registry>,
    ) -> Result<Inventory, ConfigError> {
        let inv = &config.inventory;
        let mut b = Inventory::default();
        let has_static = !(inv.nodes.is_empty()
            && inv.hosts.is_empty()
            && inv.pools.is_empty()
            && inv.services.is_empty());
        let use_static = match inv.source {
            InventorySource::Static => true,
            InventorySource::None => false,
            InventorySource::Auto => has_static,
        };
        if use_static {
            for (list, target, what) in
                [(&inv.nodes, &mut b.nodes, "node"), (&inv.hosts, &mut b.hosts, "host")]
            {
                for m in list {
                    if target.iter().any(|x: &Machine| *x.name == *m.value.name) {
                        return Err(config::invalid(
                            path,
                            &m.referenced,
                            format!("{what} {:?} is listed twice", m.value.name),
                        ));
                    }
                    target.push(Machine {
                        name: m.value.name.as_str().into(),
                        macs: m.value.macs.clone(),
                        ips: m.value.ips.clone(),
                    });
                }
            }
            for p in &inv.pools {
                b.pools.push(Pool { name: p.name.as_str().into(), ranges: p.addresses.clone() });
            }
            for s in &inv.services {
                let s_ = &s.value;
                if let Some(a) = &s_.announcer
                    && !b.nodes.iter().any(|n| *n.name == **a)
                {
                    return Err(config::invalid(
                        path,
                        &s.referenced,
                        format!("service {} names announcer {a:?}, which is not in inventory.nodes", s_.name),
                    ));
                }
                b.services.push(Service {
                    name: Arc::new(s_.name.clone()),
                    ips: s_.ips.clone(),
                    announcer: s_.announcer.as_deref().map(Arc::from),
                    pool: s_.pool.as_deref().map(Arc::from),
                });
            }
            // A MAC that belongs to two machines would make every verdict about it arbitrary.
            for (list, what) in [(&inv.nodes, "node"), (&inv.hosts, "host")] {
                for m in list {
                    for mac in &m.value.macs {
                        let owners = b.nodes.iter().chain(&b.hosts).filter(|x| x.macs.contains(mac)).count();
                        if owners > 1 {
                            return Err(config::invalid(
                                path,
                                &m.referenced,
                                format!(
                                    "MAC {mac} of {what} {:?} also belongs to another node or host",
                                    m.value.name
                                ),
                            ));
                        }
                    }
                }
            }
        }
        for a in &config.allow {
            b.allow.push(Allowed { mac: a.mac, ips: a.ips.clone(), note: a.note.clone() });
        }
        b.track_all = match config.detect.track {
            Track::All => true,
            Track::Watched => false,
            Track::Auto => !use_static,
        };
        b.index(registry);
        Ok(b)
    }

    /// Builds the lookup tables. Called once per snapshot, never per frame.
    fn index(&mut self, registry: Option<&Registry>) {
        for (i, n) in self.nodes.iter().enumerate() {
            for m in &n.macs {
                self.macs.insert(*m, Owner::Node(i as u32));
            }
        }
        for (i, h) in self.hosts.iter().enumerate() {
            for m in &h.macs {
                self.macs.insert(*m, Owner::Host(i as u32));
            }
        }
        for (i, p) in self.pools.iter().enumerate() {
            for r in &p.ranges {
                self.pool_ranges.push((*r, i as u32));
            }
        }
        self.pool_ranges.sort_by_key(|(r, _)| (r.first(), r.last()));
        // Order of precedence when one address has several roles: a node's own address beats all, then a
        // host's, then a Service's; registry only fills addresses nobody has.
        let mut services: Vec<&Service> = self.services.iter().collect();
        services.sort_by(|a, b| a.name.cmp(&b.name));
        // Services sharing an IP may be announced from different nodes (externalTrafficPolicy Local):
        // any of their announcers may answer, and one Service without an announcer opens it to all.
        let mut open = Vec::new();
        for s in services {
            let announcer = s.announcer.as_ref().and_then(|a| self.nodes.iter().position(|n| n.name == *a));
            for ip in &s.ips {
                let key = IpKey::from(*ip);
                let pool = s.pool.clone().or_else(|| self.pool_of(key));
                let w = self.watched.entry(key).or_insert_with(|| Watched {
                    role: Role::Service,
                    service: Some(s.name.clone()),
                    announcers: Vec::new(),
                    owner: None,
                    pool,
                });
                match announcer {
                    Some(i) => w.announcers.push(i as u32),
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
        if let Some(reg) = registry {
            for (name, ip) in &reg.entries {
                let key = IpKey::from(*ip);
                if self.watched.contains_key(&key) {
                    continue;
                }
                let svc = self.services.iter().find(|s| *s.name == *name);
                let announcers = svc
                    .and_then(|s| s.announcer.as_ref())
                    .and_then(|a| self.nodes.iter().position(|n| n.name == *a))
                    .map(|i| vec![i as u32])
                    .unwrap_or_default();
                let pool = self.pool_of(key);
                self.watched.insert(
                    key,
                    Watched {
                        role: Role::Registry,
                        service: Some(Arc::new(name.clone())),
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
    #[inline]
    pub fn lookup(&self, ip: IpKey) -> Lookup<'_> {
        if let Some(w) = self.watched.get(&ip) {
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
        counts[Role::Pool as usize].1 = self.pool_ranges.iter().map(|(r, _)| r.len()).sum::<u128>();
        counts
    }

    /// Adds this host's MACs to the node called `name`, or adds that node, so the node's own replies and
    /// probes are recognised as a node's. Returns the node's index and the MACs left out because the
    /// inventory gives them to another machine (the config wins; the caller says so).
    pub fn add_self(&mut self, name: &str, macs: &[Mac]) -> (u32, Vec<(Mac, Arc<str>)>) {
        let idx = match self.nodes.iter().position(|n| &*n.name == name) {
            Some(i) => i,
            None => {
                self.nodes.push(Machine { name: name.into(), macs: Vec::new(), ips: Vec::new() });
                self.nodes.len() - 1
            }
        };
        let mut conflicts = Vec::new();
        for &mac in macs {
            match self.macs.get(&mac) {
                Some(&Owner::Node(i)) if i as usize == idx => {}
                Some(&other) => conflicts.push((mac, self.owner_name(other))),
                None => {
                    self.macs.insert(mac, Owner::Node(idx as u32));
                    self.nodes[idx].macs.push(mac);
                }
            }
        }
        (idx as u32, conflicts)
    }

    /// Whether there is any inventory at all (nodes, hosts, pools, services, registry).
    pub fn is_empty(&self) -> bool {
        self.watched.is_empty() && self.pools.is_empty() && self.nodes.is_empty()
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

    fn inv(yaml: &str) -> Inventory {
        let p = Path::new("t.yaml");
        let c = Config::parse(p, yaml).unwrap();
        Inventory::from_config(p, &c, None).unwrap()
    }

    const BASE: &str = "inventory:\n  nodes:\n    - {name: worker-1, macs: [\"52:54:00:6b:3c:01\"], ips: [192.168.1.11]}\n    - {name: worker-2, macs: [\"52:54:00:6b:3c:02\", \"52:54:00:6b:3c:12\"], ips: [192.168.1.12]}\n  hosts:\n    - {name: gateway, macs: [\"00:26:0b:31:07:33\"], ips: [192.168.1.1]}\n  pools:\n    - {name: first-pool, addresses: [192.168.1.240/28]}\n  services:\n    - {name: web/nginx, ips: [192.168.1.240], announcer: worker-2}\n    - {name: web/api, ips: [192.168.1.241]}\nallow:\n  - {mac: \"00:00:5e:00:01:00/40\", ips: [192.168.1.1], note: VRRP}\n";

    fn k(s: &str) -> IpKey {
        IpKey::from(s.parse::<IpAddr>().unwrap())
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
        let i = Inventory::from_config(p, &c, Some(&r)).unwrap();
        let Lookup::Watched(w) = i.lookup(k("192.168.1.245")) else { panic!() };
        assert_eq!((w.role, w.announcers.as_slice()), (Role::Registry, &[1][..]));
        assert!(matches!(i.lookup(k("192.168.1.241")), Lookup::Watched(w) if w.role == Role::Service));
    }

    #[test]
    fn contradictions_are_rejected_with_a_location() {
        let p = Path::new("t.yaml");
        let c = Config::parse(p, "inventory:\n  nodes:\n    - {name: a}\n  services:\n    - {name: x/y, ips: [10.0.0.1], announcer: b}\n").unwrap();
        let e = Inventory::from_config(p, &c, None).unwrap_err().to_string();
        assert!(e.starts_with("t.yaml:5:7: ") && e.contains("announcer \"b\""), "{e}");
        let c = Config::parse(p, "inventory:\n  nodes:\n    - {name: a, macs: [\"02:00:00:00:00:01\"]}\n    - {name: b, macs: [\"02:00:00:00:00:01\"]}\n").unwrap();
        let e = Inventory::from_config(p, &c, None).unwrap_err().to_string();
        assert!(e.contains("02:00:00:00:00:01"), "{e}");
    }

    #[test]
    fn empty_config_tracks_everything() {
        let i = inv("");
        assert!(i.track_all && i.is_empty());
    }
}
