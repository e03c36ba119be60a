//! l2watch: a Layer 2 conflict monitor for bare-metal Kubernetes clusters using MetalLB in layer2 mode.
//!
//! The data flow follows DESIGN.md: frames are decoded ([`decode`]) into [`observation::Observation`]s,
//! the [`detect`] engine turns them into findings against an [`inventory::Inventory`], and the edges
//! ([`replay`], [`analyze`]) feed and report it.

pub mod analyze;
pub mod capture;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod decode;
pub mod detect;
pub mod finding;
pub mod frame;
pub mod http;
pub mod inventory;
pub mod iprange;
pub mod mac;
pub mod metrics;
pub mod netif;
pub mod observation;
pub mod probe;
pub mod replay;
pub mod report;
pub mod scan;
pub mod synth;
pub mod vendor;
