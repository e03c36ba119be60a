//! Command-line interface: argument parsing and the commands' glue. `main.rs` only calls [`run`].

pub mod analyze;
pub mod capture_loop;
pub mod run;
pub mod scan;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{Config, InventorySource, Registry};
use crate::inventory::{Inventory, Parts};

/// Layer 2 conflict monitor for bare-metal Kubernetes clusters using MetalLB in layer2 mode.
#[derive(Debug, Parser)]
#[command(name = "l2watch", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs (schema l2watch.findings/v1, see README).
    Json,
}

/// Inventory source override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InventoryFlag {
    /// `run`: the Kubernetes API when in a cluster or `$KUBECONFIG` is set; else static when the config
    /// lists anything, else none.
    Auto,
    /// The Kubernetes API (`run` only), plus what the config lists.
    Kubernetes,
    /// From the config file.
    Static,
    /// No inventory: arpwatch-like monitoring of every address.
    None,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay pcap/pcapng captures through the detectors and report findings.
    ///
    /// Exit status: 0 nothing of warning or above, 1 a finding of warning or above, 2 an error.
    Analyze {
        /// Capture files (pcap or pcapng), replayed in order as one stream.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Config file (inventory, allow-list, registry, detection settings).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// Report format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Inventory source; overrides `inventory.source` of the config.
        #[arg(long, value_enum)]
        inventory: Option<InventoryFlag>,
    },
    /// Run the daemon: capture ARP/ND, probe watched addresses, serve /metrics, /findings, /healthz, /readyz.
    ///
    /// Needs CAP_NET_RAW. Stops cleanly on SIGTERM or SIGINT.
    Run {
        /// Config file (inventory, allow-list, registry, capture, probe and metric settings).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// Interface to capture and probe on (repeatable). Default: `capture.interfaces`, else the
        /// interface of the default route.
        #[arg(long, short = 'i', value_name = "IF")]
        interface: Vec<String>,
        /// HTTP address. Default: `metrics.listen` (0.0.0.0:9787).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<std::net::SocketAddr>,
        /// This node's name. Default: `node_name`, then $NODE_NAME, then the configured node owning one of
        /// this host's MACs, then the hostname.
        #[arg(long, value_name = "NAME")]
        node_name: Option<String>,
        /// Inventory source; overrides `inventory.source` of the config.
        #[arg(long, value_enum)]
        inventory: Option<InventoryFlag>,
        /// Do not send probes: passive monitoring only.
        #[arg(long)]
        no_probe: bool,
        /// Keep per-IP MAC history and active findings in FILE across restarts. Default: `state.path`.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        /// Log filter: a level (error, warn, info, debug, trace) or `RUST_LOG`-style directives such
        /// as `info,l2watch=debug`. Default: `$RUST_LOG`, else `info`.
        #[arg(long, value_name = "FILTER")]
        log_level: Option<String>,
    },
    /// Probe address ranges once (RFC 5227 / DAD) and list who answers: for choosing a safe pool.
    ///
    /// Exit status: 0 no address answered by two devices, 1 some address was, 2 an error.
    Scan {
        /// CIDRs (10.0.0.240/28), ranges (10.0.0.240-10.0.0.250) or single addresses; IPv4 or IPv6.
        #[arg(required = true, value_name = "RANGE")]
        ranges: Vec<crate::wire::iprange::IpRange>,
        /// Config file: names nodes, hosts and allow-listed MACs in the report.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// Interface to probe on (repeatable). Default: the interface of the default route.
        #[arg(long, short = 'i', value_name = "IF")]
        interface: Vec<String>,
        /// Probes per address.
        #[arg(long, default_value_t = 2)]
        rounds: u32,
        /// Probes per second.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// Seconds to wait for replies after the last probe.
        #[arg(long, default_value_t = 1.0)]
        wait: f64,
        /// Report format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

fn node_name(flag: Option<String>, config: &Config) -> String {
    flag.or_else(|| config.node_name.clone())
        .or_else(|| std::env::var("NODE_NAME").ok().filter(|n| !n.is_empty()))
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Whether the Kubernetes API can be found the usual way: in a cluster, or through `$KUBECONFIG`.
pub fn cluster_reachable() -> bool {
    ["KUBERNETES_SERVICE_HOST", "KUBECONFIG"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
}

/// Loads the config (or defaults) and its registry: what they know of the inventory. `auto` is resolved
/// here: to `kubernetes` only when `cluster` (the API may be used) is true.
pub fn load(
    config: Option<&Path>,
    inventory: Option<InventoryFlag>,
    cluster: bool,
) -> anyhow::Result<(Config, Parts)> {
    let mut cfg = match config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(flag) = inventory {
        cfg.inventory.source = match flag {
            InventoryFlag::Auto => InventorySource::Auto,
            InventoryFlag::Kubernetes => InventorySource::Kubernetes,
            InventoryFlag::Static => InventorySource::Static,
            InventoryFlag::None => InventorySource::None,
        };
    }
    cfg.inventory.source = cfg.inventory.source.resolve(cluster, cfg.inventory.lists_anything());
    let registry = match &cfg.registry {
        Some(p) => Some(Registry::load(p)?),
        None => None,
    };
    let path = config.unwrap_or(Path::new("(defaults)"));
    let parts = cfg.inventory_parts(path, registry.as_ref())?;
    Ok((cfg, parts))
}

/// The log filter without `--log-level` or `$RUST_LOG`: l2watch at info; the HTTP and Kubernetes
/// client libraries only for errors, since they log every retry of a connection l2watch reports once
/// per outage itself.
pub const DEFAULT_LOG_FILTER: &str = "info,hyper=error,hyper_util=error,kube_client=error,kube_client::client::builder=off,kube_runtime=error,tower=error";

/// Logs go to stderr, filtered by `--log-level`, else `$RUST_LOG`, else [`DEFAULT_LOG_FILTER`].
fn init_logging(flag: Option<&str>) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let filter = match flag {
        Some(f) => EnvFilter::try_new(f).with_context(|| format!("--log-level {f:?}: not a log filter"))?,
        None => match std::env::var("RUST_LOG") {
            Ok(f) if !f.trim().is_empty() => {
                EnvFilter::try_new(&f).with_context(|| format!("RUST_LOG={f:?}: not a log filter"))?
            }
            _ => EnvFilter::new(DEFAULT_LOG_FILTER),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

/// Runs the command; returns the process exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run {
            config,
            interface,
            listen,
            node_name: node,
            inventory,
            no_probe,
            state,
            log_level,
        } => {
            init_logging(log_level.as_deref())?;
            let cluster = cluster_reachable();
            // The flags override the file the same way at start and at every reload (SIGHUP).
            let load_run = move || {
                let (mut cfg, parts) = load(config.as_deref(), inventory, cluster)?;
                if no_probe {
                    cfg.probe.enabled = false;
                }
                if let Some(l) = listen {
                    cfg.metrics.listen = l;
                }
                if let Some(s) = &state {
                    cfg.state.path = Some(s.clone());
                }
                anyhow::Ok((cfg, parts))
            };
            let (cfg, parts) = load_run()?;
            let named = node.is_some()
                || cfg.node_name.is_some()
                || std::env::var("NODE_NAME").is_ok_and(|n| !n.is_empty());
            let node = node_name(node, &cfg);
            crate::cmd::run::start(cfg, parts, &node, named, interface, load_run)
        }
        Command::Scan { ranges, config, interface, rounds, rate, wait, format } => {
            let (cfg, parts) = load(config.as_deref(), None, false)?;
            let inv = Inventory::build(parts, None);
            let ips = crate::cmd::scan::addresses(&ranges).map_err(anyhow::Error::msg)?;
            let sys = crate::capture::netif::Sys::default();
            let names = crate::capture::open::interfaces(interface, &cfg.capture.interfaces, &sys)?;
            let ring_config = crate::capture::open::ring_config(cfg.capture.ring_mib);
            let mut rings = crate::capture::open::open_rings(&sys, &names, &ring_config)?;
            let own: Vec<crate::wire::mac::Mac> =
                sys.answering_macs(&[])?.into_iter().map(|(_, m)| m).collect();
            if !(0.0..=60.0).contains(&wait) {
                anyhow::bail!("--wait must be 0 to 60 seconds");
            }
            let opts = crate::cmd::scan::ScanOptions {
                rounds,
                rate,
                wait: std::time::Duration::from_secs_f64(wait),
            };
            let (vendors, _) = crate::wire::vendor::Vendors::load(&cfg.oui_files);
            let mut local = sys.local_v4();
            local.extend(sys.local_v6(&cfg.capture.exclude));
            let mut report = crate::cmd::scan::sweep(&mut rings, &ips, &opts, &inv, &own, &vendors, &local)?;
            report.ranges = ranges.iter().map(ToString::to_string).collect();
            let text = match format {
                Format::Text => crate::cmd::scan::to_text(&report),
                Format::Json => serde_json::to_string_pretty(&report)? + "\n",
            };
            std::io::stdout()
                .lock()
                .write_all(text.as_bytes())
                .or_else(|e| if e.kind() == std::io::ErrorKind::BrokenPipe { Ok(()) } else { Err(e) })
                .context("writing the report")?;
            Ok(i32::from(report.conflicts > 0))
        }
        Command::Analyze { files, config, format, inventory } => {
            if inventory == Some(InventoryFlag::Kubernetes) {
                anyhow::bail!(
                    "analyze reads the inventory from the config file; --inventory kubernetes is for `l2watch run`"
                );
            }
            let (cfg, parts) = load(config.as_deref(), inventory, false)?;
            let inv = Inventory::build(parts, None);
            let (analysis, detector) = crate::cmd::analyze::analyze(&files, &inv, cfg.detect.clone());
            // Only the vendors the report names: a scan of the registries once the captures are read,
            // instead of loading all of them on a thread that competes with reading (see `load_for`).
            let (vendors, _) = crate::wire::vendor::Vendors::load_for(
                &cfg.oui_files,
                crate::export::report::named_macs(&analysis, &detector),
            );
            let status = crate::export::report::exit_status(&analysis);
            let mut out = std::io::stdout().lock();
            match format {
                Format::Text => out.write_all(
                    crate::export::report::to_text(&analysis, &detector, &inv, &vendors).as_bytes(),
                ),
                // Built whole, then one write: stdout is line-buffered, and serializing into it made
                // a system call per line (1,700 for the realistic benchmark capture's report).
                Format::Json => serde_json::to_vec_pretty(&crate::export::report::to_json(
                    &analysis, &detector, &inv, &vendors,
                ))
                .map_err(std::io::Error::other)
                .and_then(|mut json| {
                    json.push(b'\n');
                    out.write_all(&json)
                }),
            }
            .or_else(|e| {
                // A reader that stops early (`| head`) is not an error of ours.
                if e.kind() == std::io::ErrorKind::BrokenPipe { Ok(()) } else { Err(e) }
            })
            .context("writing the report")?;
            for f in &analysis.files {
                if let Some(e) = &f.error {
                    eprintln!("l2watch: error: {e}");
                }
                for (lt, n) in &f.unsupported {
                    eprintln!(
                        "l2watch: error: {}: link type {lt} ({}) is not supported: {n} frames skipped",
                        f.path.display(),
                        crate::capture::replay::link_type_name(*lt)
                    );
                }
            }
            Ok(status)
        }
    }
}
