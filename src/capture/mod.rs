//! Frames in: the TPACKET_V3 ring (the only `unsafe` code in l2watch), capture files, and the
//! interfaces of this host.

pub mod netif;
pub mod open;
pub mod replay;
#[allow(unsafe_code)]
pub mod ring;

pub use ring::{CaptureError, Readiness, Ring, RingConfig, RingStats, Sender, wait};
