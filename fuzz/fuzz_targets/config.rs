//! The config file and the IP registry, and everything `run` and `analyze` build from a config that
//! parses: the static inventory and the monitor (detector caps, probe schedule). A config file is
//! operator input: a mistake in it must be an error with line and column, never a panic, a hang or
//! an allocation the file does not justify.
//!
//! Input: the config's YAML, optionally followed by a NUL byte and the registry's YAML.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use l2watch::config::{Config, Registry};
use l2watch::monitor::engine::{Monitor, Settings};
use l2watch::monitor::finding::NoSink;
use l2watch::wire::observation::Timestamp;
use libfuzzer_sys::fuzz_target;

/// The process's metrics, as `run` keeps one for its lifetime; every snapshot is published into it.
fn metrics() -> &'static l2watch::export::metrics::Metrics {
    static METRICS: std::sync::OnceLock<l2watch::export::metrics::Metrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| l2watch::export::metrics::Metrics::new().expect("the metrics register"))
}

fuzz_target!(|data: &[u8]| {
    let (config, registry) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let config = String::from_utf8_lossy(config);
    let registry = registry.map(|r| Registry::parse(Path::new("registry.yaml"), &String::from_utf8_lossy(r)));
    let registry = match registry {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            assert!(!e.to_string().contains('\n'), "{e}");
            None
        }
        None => None,
    };
    let path = Path::new("l2watch.yaml");
    let config = match Config::parse(path, &config) {
        Ok(c) => c,
        Err(e) => {
            // `l2watch: error: <this>` is one line.
            assert!(!e.to_string().contains('\n'), "{e}");
            return;
        }
    };
    let inventory = match config.static_inventory(path, registry.as_ref()) {
        Ok(inv) => inv,
        Err(e) => {
            assert!(!e.to_string().contains('\n'), "{e}");
            return;
        }
    };
    metrics().set_inventory(&inventory);
    let settings =
        Settings { detect: config.detect.clone(), probe: config.probe.clone(), interfaces: 1, seed: 1 };
    let now = Timestamp::from_secs_nanos(1_700_000_000, 0);
    let mut monitor = Monitor::new(settings, Arc::new(inventory), now, &mut NoSink);
    monitor.probe(now, |_| true, &mut NoSink, |_| {});
});
