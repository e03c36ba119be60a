//! The pure core: it decides every finding. No I/O; the time comes in with each call.

pub mod detect;
pub mod drift;
pub mod engine;
pub mod finding;
pub mod probe;
pub mod tally;
