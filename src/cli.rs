//! Command-line interface: argument parsing and the commands' glue. `main.rs` only calls [`run`].

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{Config, InventorySource, Registry};
use crate::inventory::Inventory;

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
    /// Static when the config lists anything, else none.
    Auto,
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
}

/// Loads the config (or defaults), its registry, and builds the inventory.
pub fn load(config: Option<&Path>, inventory: Option<InventoryFlag>) -> anyhow::Result<(Config, Inventory)> {
    let mut cfg = match config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(flag) = inventory {
        cfg.inventory.source = match flag {
            InventoryFlag::Auto => InventorySource::Auto,
            InventoryFlag::Static => InventorySource::Static,
            InventoryFlag::None => InventorySource::None,
        };
    }
    let registry = match &cfg.registry {
        Some(p) => Some(Registry::load(p)?),
        None => None,
    };
    let path = config.unwrap_or(Path::new("(defaults)"));
    let inv = Inventory::from_config(path, &cfg, registry.as_ref())?;
    Ok((cfg, inv))
}

/// Runs the command; returns the process exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Analyze { files, config, format, inventory } => {
            let (cfg, inv) = load(config.as_deref(), inventory)?;
            let analysis = crate::analyze::analyze(&files, &inv, cfg.detect.clone());
            let status = crate::report::exit_status(&analysis);
            let mut out = std::io::stdout().lock();
            match format {
                Format::Text => out.write_all(crate::report::to_text(&analysis, &inv).as_bytes()),
                Format::Json => {
                    serde_json::to_writer_pretty(&mut out, &crate::report::to_json(&analysis, &inv))
                        .map_err(std::io::Error::other)
                        .and_then(|()| out.write_all(b"\n"))
                }
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
                        crate::replay::link_type_name(*lt)
                    );
                }
            }
            Ok(status)
        }
    }
}
