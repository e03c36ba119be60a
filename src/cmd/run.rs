//! `l2watch run`: sets everything up, reporting each problem once and clearly, starts the capture
//! thread ([`crate::cmd::capture_loop`]), and runs the async side: the HTTP endpoint, signals, and the
//! inventory feed (sources and this host's interfaces → a new snapshot → the capture thread).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use crate::capture::Ring;
use crate::capture::netif::Sys;
use crate::capture::open::{interfaces, open_rings, ring_config};
use crate::cmd::capture_loop::{CaptureLoop, Setup, now};
use crate::config::Config;
use crate::export::metrics::Metrics;
use crate::export::shared::Shared;
use crate::inventory::{Inventory, Owner, Parts, ThisHost};
use crate::monitor::engine::{Monitor, Settings};
use crate::wire::mac::Mac;

/// Most MACs recognised as this host's.
const MAX_OWN_MACS: usize = 256;

/// How often the host's MACs and addresses are re-read (interfaces come and go).
const RESCAN: Duration = Duration::from_secs(5);

/// This host as its interfaces show it, re-read every [`RESCAN`].
struct HostScan {
    sys: Sys,
    exclude: Vec<String>,
    this: ThisHost,
}

impl HostScan {
    /// Re-reads the answering MACs and IPv6 addresses; returns whether anything changed. MACs that
    /// went away stay: old evidence and neighbours' caches still carry them. The cap only matters on a
    /// host whose (not excluded) interfaces churn MACs.
    fn rescan(&mut self) -> bool {
        let mut changed = false;
        let addresses = self.sys.local_v6(&self.exclude);
        if addresses != self.this.addresses {
            self.this.addresses = addresses;
            changed = true;
        }
        let Ok(answering) = self.sys.answering_macs(&self.exclude) else { return changed };
        let mut new: Vec<Mac> =
            answering.into_iter().map(|(_, m)| m).filter(|m| !self.this.macs.contains(m)).collect();
        new.sort_unstable();
        new.dedup();
        new.truncate(MAX_OWN_MACS.saturating_sub(self.this.macs.len()));
        if !new.is_empty() {
            tracing::info!(
                macs = %new.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
                node = %self.this.node,
                "new interface MACs of this host added to its node"
            );
            self.this.macs.extend(new);
            changed = true;
        }
        changed
    }
}

/// Builds snapshots from the sources' parts and this host, and hands each to the capture thread and
/// the inventory metrics.
struct Feed {
    parts: Parts,
    host: HostScan,
    to_capture: Sender<Arc<Inventory>>,
    shared: Arc<Shared>,
    warnings: HashSet<String>,
}

impl Feed {
    fn build(&mut self) -> Arc<Inventory> {
        let inv = Arc::new(Inventory::build(self.parts.clone(), Some(&self.host.this)));
        // Each warning once while it lasts, not once per snapshot.
        let now: HashSet<String> = inv.warnings.iter().cloned().collect();
        for w in now.difference(&self.warnings) {
            tracing::warn!(warning = %w, "the inventory does not fit together; l2watch keeps monitoring with the first word");
        }
        self.warnings = now;
        self.shared.metrics.set_inventory(&inv);
        inv
    }

    fn publish(&mut self) {
        let inv = self.build();
        // The capture thread is gone only when the process is stopping.
        let _ = self.to_capture.send(inv);
    }
}

/// `l2watch run`: returns the exit status. `named` says whether the node name was given (flag,
/// config or `$NODE_NAME`) rather than guessed from the hostname.
pub fn start(
    config: Config,
    parts: Parts,
    node: &str,
    named: bool,
    flags: Vec<String>,
) -> anyhow::Result<i32> {
    let sys = Sys::default();
    let names = interfaces(flags, &config.capture.interfaces, &sys)?;
    let source = if parts.is_empty() { "none" } else { "static" };
    let exclude = config.capture.exclude.clone();
    let answering = sys.answering_macs(&exclude)?;
    let own_macs: Vec<Mac> = answering.iter().map(|(_, m)| *m).collect();
    // Without an explicit name, a configured node that owns one of this host's MACs is this node.
    let node = if named {
        node.to_owned()
    } else {
        let known = Inventory::build(parts.clone(), None);
        own_macs
            .iter()
            .find_map(|m| match known.owner(*m) {
                Some(o @ Owner::Node(_)) => Some(known.owner_name(o).to_string()),
                _ => None,
            })
            .unwrap_or_else(|| node.to_owned())
    };
    let this = ThisHost { node: node.as_str().into(), macs: own_macs, addresses: sys.local_v6(&exclude) };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let listener = runtime.block_on(crate::export::http::bind(config.metrics.listen))?;
    let ring_config = ring_config(config.capture.ring_mib);
    let rings: Vec<Ring> = open_rings(&sys, &names, &ring_config)?.into_iter().map(|(r, _)| r).collect();
    let (vendors, loaded) = crate::wire::vendor::Vendors::load(&config.oui_files);
    for e in &loaded.errors {
        tracing::warn!(error = %e, "cannot read a MAC vendor registry; vendor names from it are missing");
    }
    if vendors.is_empty() {
        tracing::info!(
            "no MAC vendor registry found (Debian: apt-get install ieee-data); vendor labels stay empty"
        );
    }
    let shared = Arc::new(Shared::new(Metrics::new()?, names.len()));
    let (to_capture, from_feed) = std::sync::mpsc::channel();
    let mut feed = Feed {
        parts,
        host: HostScan { sys: sys.clone(), exclude, this },
        to_capture,
        shared: shared.clone(),
        warnings: HashSet::new(),
    };
    let inv = feed.build();
    shared.set_inventory_synced(source, true);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        node = %node,
        interfaces = %names.join(","),
        own_macs = %answering.iter().map(|(n, m)| format!("{n}={m}")).collect::<Vec<_>>().join(","),
        listen = %config.metrics.listen,
        inventory = source,
        probing = config.probe.enabled,
        "l2watch started"
    );
    let t0 = now();
    let settings = Settings {
        detect: config.detect.clone(),
        probe: config.probe.clone(),
        interfaces: names.len(),
        seed: t0.0 ^ u64::from(std::process::id()),
    };
    let mut log = crate::export::log::FindingLog::default();
    let monitor = Monitor::new(settings, inv, t0, &mut log);
    if let Some(p) = monitor.prober() {
        tracing::info!(
            addresses = p.len(),
            skipped_pool_addresses = %p.skipped_pool_addresses(),
            interval_s = config.probe.interval.as_secs_f64(),
            "probing watched addresses"
        );
    }
    let setup = Setup {
        monitor,
        inventory: from_feed,
        rings: rings.into_iter().zip(names.iter().cloned()).collect(),
        ring_config,
        sys,
        vendors,
        max_series: config.metrics.max_series,
        source,
        log,
    };
    let capture_loop = CaptureLoop::new(shared.clone(), setup);
    let capture = std::thread::Builder::new().name("capture".into()).spawn(move || capture_loop.run())?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let status = runtime.block_on(async {
        let server = tokio::spawn(crate::export::http::serve(listener, shared.clone(), stop_rx));
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut check = tokio::time::interval(Duration::from_secs(1));
        let mut rescan = tokio::time::interval(RESCAN);
        let status = loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break 0 }
                _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break 0 }
                _ = check.tick() => {
                    if capture.is_finished() {
                        tracing::error!("the capture thread ended unexpectedly; exiting so the supervisor restarts l2watch");
                        break 2;
                    }
                }
                _ = rescan.tick() => {
                    if feed.host.rescan() {
                        feed.publish();
                    }
                }
            }
        };
        let _ = stop_tx.send(true);
        let _ = server.await;
        anyhow::Ok(status)
    })?;
    shared.request_stop();
    if capture.join().is_err() {
        return Ok(2);
    }
    Ok(status)
}
