//! Findings in the log: every warning or critical finding as it is raised (with what to do about it)
//! and as it clears, at most [`LINES_PER_SECOND`] lines a second, so a flood of findings cannot turn
//! into a flood of log lines; the rest are counted and summed up in one line.

use crate::monitor::finding::{Finding, FindingKind, Severity, Sink};

/// Finding log lines per second; more are counted and reported in one line.
pub const LINES_PER_SECOND: u32 = 10;

/// A [`Sink`] that logs findings and remembers that something changed (so the capture thread
/// publishes early).
pub struct FindingLog {
    /// A finding was raised or cleared since the last publish.
    pub changed: bool,
    budget: u32,
    unlogged: u64,
}

impl Default for FindingLog {
    fn default() -> Self {
        FindingLog { changed: false, budget: LINES_PER_SECOND, unlogged: 0 }
    }
}

impl FindingLog {
    fn spend(&mut self) -> bool {
        if self.budget == 0 {
            self.unlogged += 1;
            return false;
        }
        self.budget -= 1;
        true
    }

    /// Starts a new second: logs how many findings went unlogged in the last one.
    pub fn new_second(&mut self) {
        if self.unlogged > 0 {
            tracing::warn!(
                more = self.unlogged,
                "more findings were raised or cleared than are logged; see /findings and /metrics"
            );
        }
        self.budget = LINES_PER_SECOND;
        self.unlogged = 0;
    }
}

fn service(f: &Finding) -> String {
    f.service.as_deref().map(ToString::to_string).unwrap_or_default()
}

impl Sink for FindingLog {
    fn raised(&mut self, f: &Finding) {
        self.changed = true;
        if f.severity() >= Severity::Warning && self.spend() {
            tracing::warn!(
                kind = f.kind.as_str(),
                ip = %f.ip,
                mac = %if f.kind == FindingKind::Unanswered { String::new() } else { f.mac.to_string() },
                service = %service(f),
                node = f.node.as_deref().unwrap_or(""),
                what = %f.describe(),
                "{}", f.kind.advice()
            );
        }
    }

    fn cleared(&mut self, f: &Finding) {
        self.changed = true;
        if f.severity() >= Severity::Warning && self.spend() {
            tracing::info!(
                kind = f.kind.as_str(), ip = %f.ip, mac = %f.mac, service = %service(f), count = f.count,
                "finding cleared"
            );
        }
    }
}
