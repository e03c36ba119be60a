//! Opening capture interfaces, with errors an operator can act on.

use crate::capture::netif::Sys;
use crate::capture::ring::MAX_WAIT;
use crate::capture::{CaptureError, Ring, RingConfig};
use crate::wire::mac::Mac;

/// Most interfaces one process captures on: as many rings as one `wait` watches.
pub const MAX_INTERFACES: usize = MAX_WAIT;

/// The capture interfaces: the flags, else the configured ones, else the default-route interface.
pub fn interfaces(flags: Vec<String>, configured: &[String], sys: &Sys) -> anyhow::Result<Vec<String>> {
    let mut names = if !flags.is_empty() { flags } else { configured.to_vec() };
    if names.is_empty() {
        match sys.default_route_interface() {
            Some(n) => names.push(n),
            None => anyhow::bail!(
                "this host has no default route, so l2watch cannot pick an interface: name one with --interface"
            ),
        }
    }
    // The same interface twice would count every frame and send every probe twice.
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    if names.len() > MAX_INTERFACES {
        anyhow::bail!("at most {} interfaces", MAX_INTERFACES);
    }
    Ok(names)
}

/// Opens a ring on each interface, with the interface's MAC.
pub fn open_rings(sys: &Sys, names: &[String], cfg: &RingConfig) -> anyhow::Result<Vec<(Ring, Mac)>> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match open(sys, name, i, cfg) {
            Ok(r) => out.push(r),
            Err(CaptureError::NoSuchInterface(n)) => {
                let known: Vec<String> =
                    sys.links().unwrap_or_default().into_iter().map(|l| l.name).collect();
                anyhow::bail!("no network interface named {n:?} (this host has: {})", known.join(", "));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Ring sizes for `mib` MiB per interface: 1 MiB blocks, or 256 KiB ones for rings under 4 MiB so
/// there are always at least four. The thread wakes once per block, and on a VM a wakeup costs more
/// than the frames: 1 MiB blocks measured 63-99 ns per frame where 256 KiB ones measured 83-131.
pub fn ring_config(mib: usize) -> RingConfig {
    let block = if mib >= 4 { 1 << 20 } else { 256 << 10 };
    RingConfig { block_count: (mib << 20) / block, block_size: block, ..Default::default() }
}

/// Opens the capture ring on interface `index` of the process, with the interface's MAC.
pub fn open(sys: &Sys, name: &str, index: usize, cfg: &RingConfig) -> Result<(Ring, Mac), CaptureError> {
    let ring = Ring::open(name, crate::monitor::tally::interface_id(index, 0), cfg)?;
    let mac = sys.link(name).and_then(|l| l.mac).unwrap_or(Mac::ZERO);
    Ok((ring, mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_are_deduplicated_in_order_and_capped() {
        let sys = Sys { class_net: "/nonexistent".into(), proc_net: "/nonexistent".into() };
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = interfaces(names(&["eth0", "eth1", "eth0"]), &[], &sys).unwrap();
        assert_eq!(got, ["eth0", "eth1"]);
        let err = interfaces(Vec::new(), &[], &sys).unwrap_err().to_string();
        assert!(err.contains("no default route") && err.contains("--interface"), "{err}");
        let many: Vec<String> = (0..17).map(|i| format!("eth{i}")).collect();
        assert!(interfaces(many, &[], &sys).is_err());
    }

    #[test]
    fn ring_blocks_are_1_mib_from_4_mib_up() {
        assert_eq!(ring_config(8).block_size, 1 << 20);
        assert_eq!(ring_config(8).block_count, 8);
        assert_eq!(ring_config(2).block_size, 256 << 10);
        assert_eq!(ring_config(2).block_count, 8);
    }
}
