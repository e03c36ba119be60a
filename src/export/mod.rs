//! What leaves the process: Prometheus metrics (and their bounds), the HTTP endpoint, reports, logs,
//! Kubernetes Events, and the state file a restart reads back.

pub mod event_writer;
pub mod events;
pub mod http;
pub mod log;
pub mod metrics;
pub mod report;
pub mod shared;
pub mod state_file;
