//! What keeping state across restarts costs, at the largest state the default limits allow: 12,288
//! addresses with 4 MACs each and 1,024 active findings.
//!
//! - `state/take`: the capture thread taking the state (at most once per `state.interval`, 60 s by
//!   default, and only when something changed);
//! - `state/encode`: the writer thread turning it into the file's bytes (then it writes and fsyncs);
//! - `state/restore`: reading the bytes back and restoring them into a detector, once at start.
//!
//! `cargo bench --bench state` prints the file size first.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use l2watch::export::state_file::{decode, encode};
use l2watch::inventory::Inventory;
use l2watch::monitor::detect::{DetectConfig, Detector};
use l2watch::monitor::finding::NoSink;
use l2watch::wire::mac::Mac;
use l2watch::wire::observation::{Observation, Timestamp};

/// A detector at its default caps: every address claimed by 4 MACs in turn (the flips make findings).
fn full() -> (Detector, Inventory) {
    let inv = Inventory::none();
    let mut d = Detector::new(DetectConfig::default());
    let t0 = 1_700_000_000_000_000_000u64;
    let mut t = t0;
    for ip in 0..DetectConfig::default().max_tracked_ips as u32 {
        for m in 0..4u8 {
            let mac = Mac([2, 0, (ip >> 16) as u8, (ip >> 8) as u8, ip as u8, m]);
            t += 1_000;
            let obs =
                Observation::gratuitous(Timestamp(t), mac, IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + ip)));
            d.observe(&obs, &inv, &mut NoSink);
        }
    }
    (d, inv)
}

fn bench(c: &mut Criterion) {
    let (d, inv) = full();
    let now = Timestamp(1_700_000_000_000_000_000 + 600_000_000_000);
    let bytes = encode(&d.save(now));
    eprintln!(
        "state file: {} bytes for {} addresses and {} findings",
        bytes.len(),
        d.tracked_ips(),
        d.findings().count()
    );
    let mut g = c.benchmark_group("state");
    g.sample_size(20);
    g.bench_function("take", |b| b.iter(|| black_box(d.save(now))));
    let state = d.save(now);
    g.bench_function("encode", |b| b.iter(|| black_box(encode(&state))));
    g.bench_function("restore", |b| {
        b.iter(|| {
            let state = decode("bench", &bytes).expect("own encoding reads back");
            let mut back = Detector::new(DetectConfig::default());
            black_box(back.restore(&state, &inv, now))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
