//! l2watch: a Layer 2 conflict monitor for bare-metal Kubernetes clusters using MetalLB in layer2 mode.
//!
//! The folders follow the data flow of DESIGN.md:
//!
//! - [`capture`]: frames in, from the TPACKET_V3 ring (the only `unsafe` code) or capture files, and
//!   this host's interfaces;
//! - [`wire`]: frames parsed into [`wire::observation::Observation`]s and built (probes), and the value
//!   types they carry (MACs, IP ranges, vendors);
//! - [`inventory`]: the immutable snapshot of what is watched and who may answer for it, built from
//!   neutral parts by its sources (the config file, the IP registry);
//! - [`monitor`]: the pure core that decides everything (detector, probe schedule and rounds, this
//!   host's identity, findings, drift), with the time passed in;
//! - [`export`]: what leaves the process (metrics and their bounds, HTTP, reports, logs);
//! - [`cmd`]: the commands, which only wire the rest together.
#![deny(unsafe_code)]

pub mod capture;
pub mod cmd;
pub mod config;
pub mod export;
pub mod humane;
pub mod inventory;
pub mod monitor;
pub mod wire;
