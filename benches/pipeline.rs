//! decode + detect per frame, in memory, on the synthetic workloads of `l2watch::wire::synth`.
//!
//! `cargo bench --bench pipeline` prints time per batch and throughput in frames/s.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use l2watch::inventory::Inventory;
use l2watch::monitor::detect::DetectConfig;
use l2watch::monitor::detect::Detector;
use l2watch::monitor::finding::NoSink;
use l2watch::wire::decode::{Decoded, FrameMeta, LinkType, decode};
use l2watch::wire::observation::Timestamp;
use l2watch::wire::synth::{self, Emitter, SplitMix64};

const FRAMES: u64 = 100_000;

/// Frames laid out back to back, as a capture ring or a file buffer holds them.
struct Batch {
    bytes: Vec<u8>,
    frames: Vec<(u64, usize, usize)>,
}

fn batch(realistic: bool) -> Batch {
    let mut b = Batch { bytes: Vec::new(), frames: Vec::new() };
    let mut out = Emitter::new(|t: u64, f: &[u8]| {
        b.frames.push((t, b.bytes.len(), f.len()));
        b.bytes.extend_from_slice(f);
    });
    let mut rng = SplitMix64::new(1);
    if realistic {
        synth::realistic(&mut out, &mut rng, FRAMES);
    } else {
        synth::flood(&mut out, &mut rng, FRAMES);
    }
    b
}

fn run(b: &Batch, detector: Option<(&mut Detector, &Inventory)>) -> usize {
    let mut n = 0;
    let mut det = detector;
    for (i, &(t, at, len)) in b.frames.iter().enumerate() {
        let meta = FrameMeta { time: Timestamp(t), frame: i as u64 + 1, ..FrameMeta::default() };
        if let Decoded::Frame(obs) = decode(LinkType::Ethernet, &b.bytes[at..at + len], &meta) {
            n += 1;
            if let Some((d, inv)) = det.as_mut() {
                d.observe(&obs, inv, &mut NoSink);
            }
        }
    }
    n
}

fn pipeline(c: &mut Criterion) {
    let inv = Inventory::none();
    for (name, realistic) in [("realistic", true), ("flood", false)] {
        let b = batch(realistic);
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(FRAMES));
        g.bench_function("decode", |bench| bench.iter(|| black_box(run(black_box(&b), None))));
        // One detector across iterations: steady state, as in a long capture (tables full, evicting).
        let mut d = Detector::new(DetectConfig::default());
        g.bench_function("decode+detect", |bench| {
            bench.iter(|| black_box(run(black_box(&b), Some((&mut d, &inv)))))
        });
        g.finish();
    }
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
