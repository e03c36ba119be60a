//! Findings in the log: every warning or critical finding as it is raised (with what to do about it)
//! and as it clears, at most [`LINES_PER_SECOND`] lines a second, so a flood of findings cannot turn
//! into a flood of log lines; the rest are counted and summed up in one line.

use crate::monitor::finding::{Finding, Severity, Sink};

/// Finding log lines per second; more are counted and reported in one line.
pub const LINES_PER_SECOND: u32 = 10;

/// A [`Sink`] that logs findings, remembers that something changed (so the capture thread publishes
/// early), and hands findings about Services to the Kubernetes Event writer, when there is one.
pub struct FindingLog {
    /// A finding was raised or cleared since the last publish.
    pub changed: bool,
    budget: u32,
    unlogged: u64,
    events: Option<tokio::sync::mpsc::Sender<Finding>>,
    /// Findings the Event writer had no room for (it is behind, or the API is slow).
    pub events_dropped: u64,
}

impl Default for FindingLog {
    fn default() -> Self {
        FindingLog { changed: false, budget: LINES_PER_SECOND, unlogged: 0, events: None, events_dropped: 0 }
    }
}

impl FindingLog {
    /// Also sends every warning or critical finding about a Service, as it is raised, to `events`
    /// (never blocking: when it is full the finding is counted and left out).
    pub fn with_events(events: tokio::sync::mpsc::Sender<Finding>) -> FindingLog {
        FindingLog { events: Some(events), ..FindingLog::default() }
    }

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

fn mac(f: &Finding) -> String {
    f.shown_mac().map(|m| m.to_string()).unwrap_or_default()
}

fn service(f: &Finding) -> String {
    f.service.as_deref().map(ToString::to_string).unwrap_or_default()
}

impl Sink for FindingLog {
    fn raised(&mut self, f: &Finding) {
        self.changed = true;
        if let Some(tx) = &self.events
            && f.severity() >= Severity::Warning
            && f.service.is_some()
            && tx.try_send(f.clone()).is_err()
        {
            self.events_dropped += 1;
        }
        if f.severity() >= Severity::Warning && self.spend() {
            tracing::warn!(
                kind = f.kind.as_str(),
                ip = %f.ip,
                mac = %mac(f),
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
                kind = f.kind.as_str(), ip = %f.ip, mac = %mac(f), service = %service(f), count = f.count,
                "finding cleared"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::monitor::finding::FindingKind;
    use crate::wire::mac::Mac;
    use crate::wire::observation::{Timestamp, Vlans};

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_finding_without_a_mac_is_logged_without_one_when_raised_and_cleared() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber =
            tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        let f = Finding {
            kind: FindingKind::Unanswered,
            ip: "10.0.0.5".parse().unwrap(),
            mac: Mac::ZERO,
            other_mac: None,
            role: None,
            service: None,
            node: None,
            pool: None,
            expected: false,
            flip_flop: false,
            detail: None,
            vlans: Vlans::default(),
            interface: 0,
            first_seen: Timestamp(1),
            last_seen: Timestamp(1),
            first_frame: 0,
            last_frame: 0,
            count: 1,
        };
        tracing::subscriber::with_default(subscriber, || {
            let mut log = FindingLog::default();
            log.raised(&f);
            log.cleared(&f);
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        for line in text.lines() {
            assert!(line.contains("mac= "), "{line}");
            assert!(!line.contains("00:00:00:00:00:00"), "{line}");
        }
    }
}
