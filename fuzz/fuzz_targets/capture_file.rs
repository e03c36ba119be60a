//! The capture-file reader (pcap and pcapng) on arbitrary bytes, each frame it yields decoded as
//! `analyze` does. A capture file is untrusted input: whatever it holds must end in frames or an
//! error, never a panic, a hang or an allocation the file's size does not justify.
#![no_main]

use l2watch::capture::replay;
use l2watch::wire::decode::{self, FrameMeta, LinkType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut frames = 0u64;
    let result = replay::read_capture_bytes(data, "fuzz.pcap", |raw| {
        frames += 1;
        assert_eq!(raw.number, frames, "frames are numbered 1, 2, ... in file order");
        if let Some(link) = LinkType::from_linktype(raw.link_type) {
            let meta = FrameMeta {
                time: raw.time,
                frame: raw.number,
                interface: raw.interface,
                ..FrameMeta::default()
            };
            let _ = decode::decode(link, raw.data, &meta);
        }
    });
    // Every error has a one-line message for the operator.
    match result {
        Ok(info) => assert_eq!(info.frames, frames),
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
    }
});
