//! The pure core: it decides every finding. No I/O; the time comes in with each call.

pub mod detect;
pub mod drift;
pub mod engine;
pub mod finding;
mod ip_table;
pub mod probe;
pub mod state;
pub mod tally;

/// Inventories for the core's unit tests, built from neutral parts as every source builds them.
#[cfg(test)]
pub(crate) mod testing {
    use std::net::IpAddr;

    use crate::inventory::{Inventory, Machine, Parts, Pool, Service};

    /// Nodes as (name, MAC, IP; empty strings for none), pool ranges, Services as (namespace/name,
    /// IP), registry entries as (namespace/name, IP). Only watched addresses are tracked.
    pub fn inventory(
        nodes: &[(&str, &[&str], &str)],
        pools: &[&str],
        services: &[(&str, &str)],
        registry: &[(&str, &str)],
    ) -> Inventory {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let parts = Parts {
            nodes: nodes
                .iter()
                .map(|(name, macs, addr)| Machine {
                    name: (*name).into(),
                    macs: macs.iter().map(|m| m.parse().unwrap()).collect(),
                    ips: if addr.is_empty() { vec![] } else { vec![ip(addr)] },
                })
                .collect(),
            pools: vec![Pool {
                name: "p".into(),
                ranges: pools.iter().map(|r| r.parse().unwrap()).collect(),
            }],
            services: services
                .iter()
                .map(|(n, a)| Service::assigned(n.parse().unwrap(), vec![ip(a)]))
                .collect(),
            registry: registry.iter().map(|(n, a)| (n.parse().unwrap(), ip(a))).collect(),
            ..Parts::default()
        };
        Inventory::build(parts, None)
    }
}
