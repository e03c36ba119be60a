//! `l2watch run`: sets everything up, reporting each problem once and clearly, starts the capture
//! thread ([`crate::cmd::capture_loop`]), and runs the async side: the HTTP endpoint, signals, the
//! Kubernetes source, and the inventory feed (sources and this host's interfaces → a new snapshot →
//! the capture thread).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use crate::capture::Ring;
use crate::capture::netif::Sys;
use crate::capture::open::{interfaces, open_rings, ring_config};
use crate::cmd::capture_loop::{CaptureLoop, Reconfigure, Setup};
use crate::config::{Config, InventorySource};
use crate::export::log::FindingLog;
use crate::export::metrics::Metrics;
use crate::export::shared::{Shared, wall_clock};
use crate::export::state_file::{StateError, StateFile};
use crate::inventory::kubernetes::source::{self as kube_source, Publish};
use crate::inventory::{Inventory, Owner, Parts, ThisHost};
use crate::monitor::engine::{Monitor, Settings};
use crate::wire::mac::Mac;

/// Most MACs recognised as this host's.
const MAX_OWN_MACS: usize = 256;

/// How often the host's MACs and addresses are re-read (interfaces come and go).
const RESCAN: Duration = Duration::from_secs(5);

/// Findings waiting for the Kubernetes Event writer; more are counted and left out.
const EVENT_QUEUE: usize = 256;

/// This host as its interfaces show it, re-read every [`RESCAN`].
struct HostScan {
    sys: Sys,
    exclude: Vec<String>,
    this: ThisHost,
    /// Interfaces it answers ARP on, and the addresses they hold (for its Lease).
    publish: Publish,
}

impl HostScan {
    fn new(sys: Sys, exclude: Vec<String>, node: &str, macs: Vec<Mac>) -> HostScan {
        let this = ThisHost { node: node.into(), macs, addresses: sys.local_v6(&exclude) };
        let mut scan = HostScan { sys, exclude, this, publish: Publish::default() };
        scan.rescan();
        scan
    }

    /// Re-reads the answering MACs and addresses; returns whether anything changed. MACs that went
    /// away stay: old evidence and neighbours' caches still carry them. The cap only matters on a
    /// host whose (not excluded) interfaces churn MACs.
    fn rescan(&mut self) -> bool {
        let mut changed = false;
        let addresses = self.sys.local_v6(&self.exclude);
        if addresses != self.this.addresses {
            self.this.addresses = addresses;
            changed = true;
        }
        let Ok(answering) = self.sys.answering_macs(&self.exclude) else { return changed };
        let interfaces: Vec<String> = answering.iter().map(|(n, _)| n.clone()).collect();
        let publish = Publish {
            macs: answering.iter().map(|(_, m)| *m).collect(),
            ips: self.sys.addresses_of(&interfaces),
            interfaces,
        };
        if publish != self.publish {
            self.publish = publish;
            changed = true;
        }
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

/// Builds snapshots from the sources' parts and this host, and hands each to the capture thread, the
/// inventory metrics and the Event writer.
struct Feed {
    /// What the config file lists.
    config: Parts,
    /// What the Kubernetes API says, once it has said it.
    cluster: Option<Parts>,
    host: HostScan,
    to_capture: Sender<Arc<Inventory>>,
    latest: tokio::sync::watch::Sender<Arc<Inventory>>,
    shared: Arc<Shared>,
    warnings: HashSet<String>,
}

impl Feed {
    fn build(&mut self) -> Arc<Inventory> {
        let mut parts = self.config.clone();
        if let Some(cluster) = &self.cluster {
            // The API's word first: the config's nodes, pools and Services are added to it.
            let mut joined = cluster.clone();
            joined.track_all = parts.track_all;
            joined.extend(std::mem::take(&mut parts));
            parts = joined;
        }
        let inv = Arc::new(Inventory::build(parts, Some(&self.host.this)));
        // Each warning once while it lasts, not once per snapshot.
        let now: HashSet<String> = inv.warnings.iter().cloned().collect();
        for w in now.difference(&self.warnings) {
            tracing::warn!(warning = %w, "the inventory is incomplete or does not fit together; monitoring goes on with what is known");
        }
        self.warnings = now;
        self.shared.metrics.set_inventory(&inv);
        self.latest.send_replace(inv.clone());
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
/// `reload` reads the config again (with the command line's overrides) on SIGHUP.
pub fn start(
    config: Config,
    parts: Parts,
    node: &str,
    named: bool,
    flags: Vec<String>,
    reload: impl Fn() -> anyhow::Result<(Config, Parts)>,
) -> anyhow::Result<i32> {
    let mut config = config;
    let sys = Sys::default();
    let names = interfaces(flags, &config.capture.interfaces, &sys)?;
    let kubernetes = config.inventory.source == InventorySource::Kubernetes;
    let source = match config.inventory.source {
        InventorySource::Kubernetes => "kubernetes",
        _ if parts.is_empty() => "none",
        _ => "static",
    };
    if kubernetes && !named {
        anyhow::bail!(
            "the Kubernetes inventory needs this node's name as Kubernetes knows it: set $NODE_NAME (from the downward API: spec.nodeName) or --node-name"
        );
    }
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
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // The API first: without it there is nothing worth starting.
    let connection = if kubernetes {
        let c = runtime.block_on(kube_source::connect(
            config.kubernetes.connect_timeout,
            config.kubernetes.read_timeout,
        ))?;
        tracing::info!(api = %c.url, namespace = %c.namespace, "connected to the Kubernetes API");
        Some(c)
    } else {
        None
    };
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
    let vendors = Arc::new(vendors);
    let shared = Arc::new(Shared::new(Metrics::new()?, names.len()));
    let (to_capture, from_feed) = std::sync::mpsc::channel();
    let host = HostScan::new(sys.clone(), exclude, &node, own_macs);
    let (latest, latest_rx) = tokio::sync::watch::channel(Arc::new(Inventory::default()));
    let mut feed = Feed {
        config: parts,
        cluster: None,
        host,
        to_capture,
        latest,
        shared: shared.clone(),
        warnings: HashSet::new(),
    };
    let inv = feed.build();
    // A file is in sync once read; the API only after its first full list.
    shared.set_inventory_synced(source, !kubernetes);
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
    let t0 = wall_clock();
    let settings = Settings {
        detect: config.detect.clone(),
        probe: config.probe.clone(),
        interfaces: names.len(),
        seed: t0.0 ^ u64::from(std::process::id()),
    };
    let (events_tx, events_rx) = tokio::sync::mpsc::channel(EVENT_QUEUE);
    let mut log = match (&connection, config.kubernetes.events) {
        (Some(_), true) => FindingLog::with_events(events_tx),
        _ => FindingLog::default(),
    };
    let mut monitor = Monitor::new(settings, inv, t0, &mut log);
    if kubernetes {
        // Only a live inventory catches up with a failover's gratuitous ARP.
        monitor.set_announcer_grace(config.detect.announcer_grace);
    }
    let state = config.state.path.clone().map(StateFile::new);
    if let Some(file) = &state {
        restore_state(file, &mut monitor, t0);
    }
    if let Some(p) = monitor.prober() {
        tracing::info!(
            addresses = p.len(),
            skipped_pool_addresses = %p.skipped_pool_addresses(),
            interval_s = config.probe.interval.as_secs_f64(),
            "probing watched addresses"
        );
    }
    let (reconfigure_tx, reconfigure_rx) = std::sync::mpsc::channel();
    let setup = Setup {
        monitor,
        inventory: from_feed,
        rings: rings.into_iter().zip(names.iter().cloned()).collect(),
        ring_config,
        sys,
        vendors: vendors.clone(),
        max_series: config.metrics.max_series,
        source,
        log,
        reconfigure: reconfigure_rx,
        state: state.map(|f| (f, config.state.interval)),
    };
    let capture_loop = CaptureLoop::new(shared.clone(), setup);
    let capture = std::thread::Builder::new().name("capture".into()).spawn(move || capture_loop.run())?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let status = runtime.block_on(async {
        let server = tokio::spawn(crate::export::http::serve(listener, shared.clone(), stop_rx));
        let (publish_tx, publish_rx) = tokio::sync::watch::channel(feed.host.publish.clone());
        let cluster = connection.as_ref().map(|c| {
            let settings = kube_source::Settings {
                node: node.clone(),
                namespace: c.namespace.clone(),
                metallb_namespace: config.kubernetes.metallb_namespace.clone(),
                lease_duration: config.kubernetes.lease_duration,
            };
            kube_source::start(c, settings, publish_rx)
        });
        if let (Some(c), true) = (&connection, config.kubernetes.events) {
            tokio::spawn(crate::export::event_writer::run(
                c.client.clone(),
                node.clone(),
                events_rx,
                latest_rx,
                vendors.clone(),
            ));
        }
        let (mut parts_rx, mut synced_rx, mut peers_rx) = match cluster {
            Some(c) => (Some(c.parts), Some(c.synced), Some(c.peers)),
            None => (None, None, None),
        };
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut check = tokio::time::interval(Duration::from_secs(1));
        let mut rescan = tokio::time::interval(RESCAN);
        let status = loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break 0 }
                _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break 0 }
                _ = hup.recv() => match reload() {
                    Ok((new, parts)) => {
                        warn_fixed_settings(&config, &new);
                        let _ = reconfigure_tx.send(Reconfigure {
                            detect: new.detect.clone(),
                            probe: new.probe.clone(),
                            max_series: new.metrics.max_series,
                            state_interval: new.state.interval,
                        });
                        feed.config = parts;
                        feed.publish();
                        shared.metrics.config_reloaded(true);
                        tracing::info!("SIGHUP: config reloaded; the new inventory and settings are in force");
                        config = new;
                    }
                    Err(e) => {
                        shared.metrics.config_reloaded(false);
                        tracing::error!(
                            error = %format!("{e:#}"),
                            "SIGHUP: the config cannot be used; the running config stays in force (fix the file and send SIGHUP again)"
                        );
                    }
                },
                _ = check.tick() => {
                    if capture.is_finished() {
                        tracing::error!("the capture thread ended unexpectedly; exiting so the supervisor restarts l2watch");
                        break 2;
                    }
                }
                _ = rescan.tick() => {
                    if feed.host.rescan() {
                        publish_tx.send_replace(feed.host.publish.clone());
                        feed.publish();
                    }
                }
                Ok(()) = changed(parts_rx.as_mut()) => {
                    let parts = parts_rx.as_ref().and_then(|rx| rx.borrow().clone());
                    if parts.is_some() {
                        feed.cluster = parts;
                        feed.publish();
                    }
                }
                Ok(()) = changed(synced_rx.as_mut()) => {
                    let synced = synced_rx.as_ref().is_some_and(|rx| *rx.borrow());
                    // Ready only with the cluster in the snapshot, whichever news came first.
                    if synced && feed.cluster.is_none() {
                        feed.cluster = parts_rx.as_ref().and_then(|rx| rx.borrow().clone());
                        feed.publish();
                    }
                    shared.set_inventory_synced(source, synced);
                }
                Ok(()) = changed(peers_rx.as_mut()) => {
                    if let Some(rx) = &peers_rx {
                        let peers = rx.borrow();
                        shared.metrics.set_peers(peers.iter().map(|(n, up)| (n.as_str(), *up)));
                    }
                }
            }
        };
        // Capture stops first (within one wakeup): nothing it sees after the signal would be reported.
        // Then HTTP, whose drain is bounded, so a client holding a half-sent request cannot hold the
        // exit up.
        shared.request_stop();
        let _ = stop_tx.send(true);
        let _ = server.await;
        anyhow::Ok(status)
    })?;
    if capture.join().is_err() {
        return Ok(2);
    }
    Ok(status)
}

/// Reads the state file into the monitor at start. A file that cannot be used is set aside and
/// warned about: the daemon starts clean rather than not at all.
fn restore_state(file: &StateFile, monitor: &mut Monitor, now: crate::wire::observation::Timestamp) {
    let path = file.path().display().to_string();
    match file.load() {
        Ok(None) => {
            tracing::info!(path = %path, "no state file yet; starting clean (it is written as l2watch runs)")
        }
        Ok(Some(state)) => {
            let r = monitor.restore(&state, now);
            tracing::info!(
                path = %path,
                addresses = r.addresses,
                findings = r.findings,
                skipped = r.skipped,
                age_s = now.since(crate::wire::observation::Timestamp(state.taken)).as_secs(),
                "state restored: the MAC history and active findings from before the restart"
            );
        }
        Err(StateError::Io { source, .. }) if source.kind() != std::io::ErrorKind::InvalidData => {
            tracing::warn!(
                path = %path, error = %source,
                "cannot read the state file; starting clean (check the volume and its permissions)"
            )
        }
        Err(e) => match file.set_aside() {
            Ok(bad) => tracing::warn!(
                error = %e, set_aside = %bad.display(),
                "the state file is unusable; it was set aside and l2watch starts clean"
            ),
            Err(moved) => tracing::warn!(
                error = %e, cannot_set_aside = %moved,
                "the state file is unusable and cannot be moved aside; l2watch starts clean and will overwrite it"
            ),
        },
    }
}

/// Says which changed settings a reload cannot apply: they need a restart.
fn warn_fixed_settings(old: &Config, new: &Config) {
    let mut fixed = Vec::new();
    if old.capture != new.capture {
        fixed.push("capture");
    }
    if old.metrics.listen != new.metrics.listen {
        fixed.push("metrics.listen");
    }
    if old.inventory.source != new.inventory.source {
        fixed.push("inventory.source");
    }
    if old.kubernetes != new.kubernetes {
        fixed.push("kubernetes");
    }
    if old.state.path != new.state.path {
        fixed.push("state.path");
    }
    if old.node_name != new.node_name {
        fixed.push("node_name");
    }
    if old.oui_files != new.oui_files {
        fixed.push("oui_files");
    }
    if !fixed.is_empty() {
        tracing::warn!(
            settings = %fixed.join(", "),
            "SIGHUP: these settings changed but apply only after a restart; the rest is in force"
        );
    }
}

/// Waits for a change on `rx`; never returns without one (no source: pends forever).
async fn changed<T>(
    rx: Option<&mut tokio::sync::watch::Receiver<T>>,
) -> Result<(), tokio::sync::watch::error::RecvError> {
    match rx {
        Some(rx) => rx.changed().await,
        None => std::future::pending().await,
    }
}
