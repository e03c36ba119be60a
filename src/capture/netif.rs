//! The host's network interfaces, read from sysfs and procfs (no netlink, no `unsafe`): which interface
//! carries the default route, and which MACs this node answers ARP with.
//!
//! MetalLB answers from every interface that is up, has BROADCAST, is not NOARP and is not enslaved to
//! a bond or bridge, minus its exclude list (FACTS.md). l2watch applies the same rules so that the
//! node's own replies are recognised as the node's.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::wire::mac::Mac;

const IFF_UP: u32 = 0x1;
const IFF_BROADCAST: u32 = 0x2;
const IFF_NOARP: u32 = 0x80;

/// One network interface as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface name.
    pub name: String,
    /// Kernel interface index.
    pub ifindex: u32,
    /// Hardware address, when it is a 6-byte one.
    pub mac: Option<Mac>,
    /// `IFF_*` flags.
    pub flags: u32,
    /// Enslaved to a bond, bridge or team (has a `master`).
    pub enslaved: bool,
}

impl Link {
    /// Administratively up.
    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }

    /// Whether MetalLB would answer ARP on it (before the exclude list).
    pub fn answers_arp(&self) -> bool {
        self.is_up()
            && self.flags & IFF_BROADCAST != 0
            && self.flags & IFF_NOARP == 0
            && !self.enslaved
            && self.mac.is_some_and(|m| m != Mac([0; 6]))
    }
}

/// Where to read interface data from; tests point it at a fake tree.
#[derive(Debug, Clone)]
pub struct Sys {
    /// Usually `/sys/class/net`.
    pub class_net: PathBuf,
    /// Usually `/proc/net`.
    pub proc_net: PathBuf,
}

impl Default for Sys {
    fn default() -> Self {
        Sys { class_net: "/sys/class/net".into(), proc_net: "/proc/net".into() }
    }
}

fn read_trim(path: &Path) -> io::Result<String> {
    Ok(fs::read_to_string(path)?.trim().to_owned())
}

fn parse_hex_u32(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

impl Sys {
    /// One interface, or `None` when it does not exist (or vanished while being read).
    pub fn link(&self, name: &str) -> Option<Link> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return None;
        }
        let dir = self.class_net.join(name);
        let ifindex = read_trim(&dir.join("ifindex")).ok()?.parse().ok()?;
        let flags = parse_hex_u32(&read_trim(&dir.join("flags")).ok()?)?;
        let mac = read_trim(&dir.join("address")).ok().and_then(|a| a.parse::<Mac>().ok());
        let enslaved = dir.join("master").exists();
        Some(Link { name: name.to_owned(), ifindex, mac, flags, enslaved })
    }

    /// Every interface, sorted by index.
    pub fn links(&self) -> io::Result<Vec<Link>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.class_net)? {
            let name = entry?.file_name();
            if let Some(link) = name.to_str().and_then(|n| self.link(n)) {
                out.push(link);
            }
        }
        out.sort_by_key(|l| l.ifindex);
        Ok(out)
    }

    /// The interfaces (name, MAC) this node answers ARP with, by MetalLB's rules and `exclude` globs.
    pub fn answering_macs(&self, exclude: &[String]) -> io::Result<Vec<(String, Mac)>> {
        Ok(self.answering_links(exclude)?.into_iter().filter_map(|l| l.mac.map(|m| (l.name, m))).collect())
    }

    /// The interfaces MetalLB would answer ARP on: [`Link::answers_arp`] and not matching `exclude`.
    /// Excluded names are dropped before their files are read: a busy node has hundreds of veths.
    pub fn answering_links(&self, exclude: &[String]) -> io::Result<Vec<Link>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.class_net)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if exclude.iter().any(|p| glob(p, name)) {
                continue;
            }
            if let Some(link) = self.link(name).filter(Link::answers_arp) {
                out.push(link);
            }
        }
        out.sort_by_key(|l| l.ifindex);
        Ok(out)
    }

    /// Every IPv4 address of this host, from the kernel's local routing table (loopback left out),
    /// sorted. `fib_trie` does not say which interface holds one: an address on a dummy interface
    /// (kube-proxy's `kube-ipvs0` holds every Service IP) is listed too.
    pub fn local_v4(&self) -> Vec<IpAddr> {
        fs::read_to_string(self.proc_net.join("fib_trie")).map(|t| local_v4(&t)).unwrap_or_default()
    }

    /// The IPv6 addresses held by interfaces that answer neighbour discovery on the LAN (the
    /// [`Sys::answering_links`] rules), sorted.
    pub fn local_v6(&self, exclude: &[String]) -> Vec<IpAddr> {
        let names: Vec<String> =
            self.answering_links(exclude).unwrap_or_default().into_iter().map(|l| l.name).collect();
        let mut out = fs::read_to_string(self.proc_net.join("if_inet6"))
            .map(|t| local_v6(&t, &names))
            .unwrap_or_default();
        out.sort();
        out.dedup();
        out
    }

    /// The addresses held by the interfaces named `names` (IPv6 link-local left out), sorted: what
    /// this node announces as its LAN addresses. Read with getifaddrs, which, unlike procfs, says
    /// which interface holds an IPv4 address (kube-proxy's `kube-ipvs0` holds every Service IP).
    pub fn addresses_of(&self, names: &[String]) -> Vec<IpAddr> {
        let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
        let mut out: Vec<IpAddr> = addrs
            .filter(|a| names.contains(&a.interface_name))
            .filter_map(|a| {
                let sa = a.address?;
                if let Some(v4) = sa.as_sockaddr_in() {
                    return Some(IpAddr::V4(v4.ip()));
                }
                let v6 = sa.as_sockaddr_in6()?.ip();
                // fe80::/10 is on every link and says nothing about the LAN.
                ((v6.segments()[0] & 0xffc0) != 0xfe80).then_some(IpAddr::V6(v6))
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The interface of the IPv4 default route (lowest metric), else of the IPv6 one.
    pub fn default_route_interface(&self) -> Option<String> {
        let v4 = fs::read_to_string(self.proc_net.join("route")).ok().and_then(|t| default_v4(&t));
        v4.or_else(|| fs::read_to_string(self.proc_net.join("ipv6_route")).ok().and_then(|t| default_v6(&t)))
    }
}

/// The IPv4 addresses of this host: `/32 host LOCAL` leaves of `/proc/net/fib_trie`.
fn local_v4(trie: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut last: Option<IpAddr> = None;
    for line in trie.lines() {
        let t = line.trim_start();
        if let Some(ip) = t.strip_prefix("|-- ") {
            last = ip.trim().parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4);
        } else if t.starts_with("/32 host LOCAL")
            && let Some(ip) = last
            && !ip.is_loopback()
        {
            out.push(ip);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The IPv6 addresses of interfaces `on` in `/proc/net/if_inet6` (32 hex digits, index, prefix length,
/// scope, flags, interface name).
fn local_v6(table: &str, on: &[String]) -> Vec<IpAddr> {
    table
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = *f.get(5)?;
            on.iter().any(|n| n == name).then_some(())?;
            u128::from_str_radix(f.first()?, 16).ok()
        })
        .map(|v| IpAddr::V6(std::net::Ipv6Addr::from(v)))
        .filter(|ip| !ip.is_loopback())
        .collect()
}

/// `/proc/net/route`: `Iface Destination Gateway Flags RefCnt Use Metric Mask ...`, hex fields.
fn default_v4(table: &str) -> Option<String> {
    const RTF_UP: u32 = 0x1;
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (dest, flags, metric, mask) =
                (f.get(1)?, parse_hex_u32(f.get(3)?)?, f.get(6)?.parse::<u32>().ok()?, f.get(7)?);
            (*dest == "00000000" && *mask == "00000000" && flags & RTF_UP != 0).then(|| (metric, f[0]))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, name)| name.to_owned())
}

/// `/proc/net/ipv6_route`: `dest dest_len src src_len next_hop metric refcnt use flags iface`.
fn default_v6(table: &str) -> Option<String> {
    table
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let iface = *f.get(9)?;
            let default = f[0].bytes().all(|b| b == b'0') && f.get(1)? == &"00" && iface != "lo";
            let metric = u32::from_str_radix(f.get(5)?, 16).unwrap_or(u32::MAX);
            default.then_some((metric, iface))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, name)| name.to_owned())
}

/// Shell-style match where `*` is any run of characters and everything else is literal.
pub fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_metallb_excludes() {
        assert!(glob("veth*", "veth1a2b"));
        assert!(glob("lo", "lo"));
        assert!(!glob("lo", "lo0"));
        assert!(!glob("veth*", "eth0"));
        assert!(glob("*calico*", "vxlan.calico"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(glob("*", ""));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn default_routes_pick_lowest_metric() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  eth1\t00000000\t0100A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
                  eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                  eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(default_v4(v4).as_deref(), Some("eth0"));
        assert_eq!(default_v4("Iface\tDestination\n"), None);
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
                  fe800000000000000000000000000001 00000400 00000001 00000000 00000003 ens3\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
                  00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n";
        assert_eq!(default_v6(v6).as_deref(), Some("ens3"));
    }

    #[test]
    fn local_addresses_from_procfs() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 10.0.0.0\n        /24 link UNICAST\n     |-- 10.0.0.7\n        /32 host LOCAL\n           |-- 127.0.0.1\n              /32 host LOCAL\nLocal:\n     |-- 10.0.0.7\n        /32 host LOCAL\n     |-- 10.0.0.100\n        /32 host LOCAL\n     |-- 10.0.0.255\n        /32 link BROADCAST\n";
        let v4: Vec<String> = local_v4(trie).iter().map(ToString::to_string).collect();
        assert_eq!(v4, ["10.0.0.7", "10.0.0.100"]);
        let v6 = "fd000000000000000000000000000002 04 40 00 82     eth0\n\
                  00000000000000000000000000000001 01 80 10 80       lo\n\
                  fd000000000000000000000000000100 09 80 00 80 kube-ipvs0\n";
        let on = ["eth0".to_owned(), "lo".to_owned()];
        let v6: Vec<String> = local_v6(v6, &on).iter().map(ToString::to_string).collect();
        // Loopback never; kube-proxy's dummy interface is not one that answers on the LAN.
        assert_eq!(v6, ["fd00::2"]);
    }

    #[test]
    fn fake_sysfs_gives_answering_macs() {
        let dir = tempfile::tempdir().unwrap();
        let mk = |name: &str, idx: u32, flags: &str, mac: &str, master: bool| {
            let d = dir.path().join(name);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("ifindex"), format!("{idx}\n")).unwrap();
            fs::write(d.join("flags"), format!("{flags}\n")).unwrap();
            fs::write(d.join("address"), format!("{mac}\n")).unwrap();
            if master {
                fs::write(d.join("master"), "").unwrap();
            }
        };
        mk("lo", 1, "0x9", "00:00:00:00:00:00", false);
        mk("eth0", 2, "0x1003", "52:54:00:00:00:01", false);
        mk("eth1", 3, "0x1002", "52:54:00:00:00:02", false); // down
        mk("bond-slave", 4, "0x1803", "52:54:00:00:00:03", true);
        mk("kube-ipvs0", 5, "0x82", "52:54:00:00:00:04", false); // NOARP
        mk("veth9", 6, "0x1003", "52:54:00:00:00:05", false);
        mk("eth0.20", 7, "0x1003", "52:54:00:00:00:01", false);
        let sys = Sys { class_net: dir.path().into(), proc_net: dir.path().into() };
        let macs = sys.answering_macs(&crate::config::CaptureConfig::default().exclude).unwrap();
        let names: Vec<&str> = macs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["eth0", "eth0.20"]);
        assert_eq!(sys.link("eth1").map(|l| l.is_up()), Some(false));
        assert!(sys.link("nope").is_none());
        assert!(sys.link("../etc").is_none());
    }
}
