//! `read_capture_bytes` (captures in memory, as the fuzz target feeds them) reads exactly what
//! `read_capture` reads from the file, frame for frame, and fails the same way.

use std::path::{Path, PathBuf};

use l2watch::capture::replay::{self, FileInfo, ReplayError};

type Frame = (u32, u16, u64, u64, Vec<u8>);

fn frames(
    read: impl FnOnce(&mut dyn FnMut(replay::RawFrame<'_>)) -> Result<FileInfo, ReplayError>,
) -> (Vec<Frame>, String) {
    let mut out = Vec::new();
    let result = read(&mut |f| out.push((f.link_type, f.interface, f.number, f.time.0, f.data.to_vec())));
    let summary = match result {
        Ok(info) => format!("{} {:?} {}", info.format, info.link_types, info.frames),
        Err(e) => e.to_string(),
    };
    (out, summary)
}

fn both(path: &Path, bytes: &[u8]) {
    let name = path.display().to_string();
    let from_file = frames(|each| replay::read_capture(path, each));
    let from_bytes = frames(|each| replay::read_capture_bytes(bytes, &name, each));
    assert_eq!(from_file, from_bytes, "{name}");
}

#[test]
fn bytes_read_like_files() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/pcap"));
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.extension().is_some_and(|e| e == "pcap" || e == "pcapng") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        both(&path, &bytes);
        // Cut short (in a record, in a header, before the magic ends): the same error after the
        // same frames.
        let tmp = tempfile::tempdir().unwrap();
        for cut in [bytes.len() * 2 / 3, 30, 3, 0] {
            let short = tmp.path().join(format!("cut-{cut}"));
            std::fs::write(&short, &bytes[..cut]).unwrap();
            both(&short, &bytes[..cut]);
        }
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} captures in {}", dir.display());
}

#[test]
fn not_a_capture() {
    let (read, error) = frames(|each| replay::read_capture_bytes(b"GIF89a", "x.gif", each));
    assert!(read.is_empty());
    assert!(error.contains("x.gif: not a pcap or pcapng capture (it starts with 47 49 46 38)"), "{error}");
    let (_, error) = frames(|each| replay::read_capture_bytes(b"", "empty", each));
    assert!(error.contains("nothing: the file is empty"), "{error}");
}
