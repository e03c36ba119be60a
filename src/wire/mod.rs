//! Frames on the wire: parsed into observations ([`decode`]), built for probes ([`frame`]), and the
//! value types they carry.

pub mod decode;
pub mod frame;
pub mod iprange;
pub mod mac;
pub mod observation;
pub mod synth;
pub mod vendor;
