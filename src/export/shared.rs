//! What the capture thread publishes for the HTTP side: metrics, the `/findings` document, and the
//! state behind `/healthz` and `/readyz`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::export::metrics::Metrics;
use crate::wire::observation::Timestamp;

/// The wall clock as a capture timestamp (the kernel stamps frames with the same realtime clock).
pub fn wall_clock() -> Timestamp {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp::from_secs_nanos(d.as_secs(), d.subsec_nanos())
}

/// Nanoseconds on a monotonic clock (never 0 once started): scheduling and the heartbeat must not
/// stall or fire early when the wall clock is stepped.
pub fn monotonic_nanos() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// The capture thread is considered hung when its heartbeat is older than this.
const HEARTBEAT_LIMIT: Duration = Duration::from_secs(10);

/// State shared by the capture thread, the inventory sources and the HTTP endpoint.
pub struct Shared {
    /// Every metric.
    pub metrics: Metrics,
    findings: Mutex<Bytes>,
    heartbeat: AtomicU64,
    open: AtomicUsize,
    interfaces: usize,
    inventory_loaded: AtomicBool,
    inventory_synced: AtomicBool,
    stop: AtomicBool,
}

impl Shared {
    /// State for `interfaces` capture interfaces.
    pub fn new(metrics: Metrics, interfaces: usize) -> Shared {
        Shared {
            metrics,
            findings: Mutex::new(Bytes::from_static(b"{}")),
            heartbeat: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            interfaces,
            inventory_loaded: AtomicBool::new(false),
            inventory_synced: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        }
    }

    /// `/healthz`: the capture thread is alive and looping.
    pub fn health(&self) -> Result<(), String> {
        let beat = self.heartbeat.load(Ordering::Relaxed);
        if beat == 0 {
            return Err("capture thread not started yet".into());
        }
        let age = Duration::from_nanos(monotonic_nanos().saturating_sub(beat));
        if age > HEARTBEAT_LIMIT {
            return Err(format!("capture thread stalled: no heartbeat for {:.0} s", age.as_secs_f64()));
        }
        Ok(())
    }

    /// `/readyz`: alive, every interface captured, and the inventory loaded.
    pub fn readiness(&self) -> Result<(), String> {
        self.health()?;
        let open = self.open.load(Ordering::Relaxed);
        if open < self.interfaces {
            return Err(format!("{open} of {} capture interfaces are up", self.interfaces));
        }
        if !self.inventory_loaded.load(Ordering::Relaxed) {
            return Err("inventory not loaded".into());
        }
        Ok(())
    }

    /// The `/findings` document (schema `l2watch.findings/v1`).
    pub fn findings_json(&self) -> Bytes {
        self.findings.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Replaces the `/findings` document.
    pub fn set_findings_json(&self, doc: Bytes) {
        if let Ok(mut slot) = self.findings.lock() {
            *slot = doc;
        }
    }

    /// The capture thread is alive; `open` of the interfaces are captured.
    pub fn beat(&self, open: usize) {
        self.open.store(open, Ordering::Relaxed);
        self.heartbeat.store(monotonic_nanos(), Ordering::Relaxed);
    }

    /// Asks the capture thread to stop.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether the capture thread was asked to stop.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Marks the inventory as loaded: its source was in sync once (`/readyz` waits for it).
    pub fn set_inventory_loaded(&self, loaded: bool) {
        self.inventory_loaded.store(loaded, Ordering::Relaxed);
    }

    /// Whether the inventory source is in sync now (a lost API connection turns it false while the
    /// last inventory stays in use), also as `l2watch_inventory_synced`.
    pub fn set_inventory_synced(&self, source: &str, synced: bool) {
        if synced {
            self.inventory_loaded.store(true, Ordering::Relaxed);
        }
        self.inventory_synced.store(synced, Ordering::Relaxed);
        self.metrics.set_synced(source, synced);
    }

    /// Whether the inventory source is in sync now.
    pub fn inventory_synced(&self) -> bool {
        self.inventory_synced.load(Ordering::Relaxed)
    }
}
