//! Live capture: the TPACKET_V3 ring (the only `unsafe` code in l2watch) and what the daemon needs of it.

pub mod ring;

pub use ring::{CaptureError, Readiness, Ring, RingConfig, RingStats, Sender, wait};
