//! Sends synthetic ARP/ND traffic out of an interface as fast as it can (or at a set rate), for the
//! live benchmark (`bench/live-flood.sh`). Only ever run it on an interface inside a network namespace
//! you created: it floods the segment.
//!
//! ```text
//! cargo run --release --example flood -- --interface IF [--mode realistic|flood] [--seconds 10]
//!                                        [--frames 1000000] [--pps 0] [--seed 1] [--once]
//! ```
//!
//! Frames are generated up front (the same workloads as `gencap`), then sent in a loop from one
//! AF_PACKET socket: `--once` sends each frame once (a 1M random-pair flood is `--mode flood --once`),
//! otherwise the set repeats until `--seconds` pass. Prints what it sent as one JSON line.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use l2watch::capture::Sender;
use l2watch::wire::synth::{self, Emitter, SplitMix64};

const USAGE: &str = "usage: flood --interface IF [--mode realistic|flood] [--seconds S] [--frames N] [--pps N] [--seed S] [--once]";

struct Args {
    interface: String,
    realistic: bool,
    seconds: f64,
    frames: u64,
    pps: u64,
    seed: u64,
    once: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        interface: String::new(),
        realistic: true,
        seconds: 10.0,
        frames: 1_000_000,
        pps: 0,
        seed: 1,
        once: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--once" {
            a.once = true;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--interface" => a.interface = v,
            "--mode" => {
                a.realistic = match v.as_str() {
                    "realistic" => true,
                    "flood" => false,
                    _ => return Err(format!("unknown mode {v}")),
                }
            }
            "--seconds" => a.seconds = v.parse().map_err(|e| format!("--seconds {v}: {e}"))?,
            "--frames" => a.frames = num(&v)?,
            "--pps" => a.pps = num(&v)?,
            "--seed" => a.seed = num(&v)?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.interface.is_empty() {
        return Err("--interface is required".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("flood: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut data: Vec<u8> = Vec::new();
    let mut frames: Vec<(usize, usize)> = Vec::new();
    {
        let mut out = Emitter::new(|_, f: &[u8]| {
            frames.push((data.len(), f.len()));
            data.extend_from_slice(f);
        });
        let mut rng = SplitMix64::new(args.seed);
        if args.realistic {
            synth::realistic(&mut out, &mut rng, args.frames);
        } else {
            synth::flood(&mut out, &mut rng, args.frames);
        }
    }
    let sender = match Sender::open(&args.interface) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("flood: {e}");
            return ExitCode::from(2);
        }
    };
    let limit = Duration::from_secs_f64(args.seconds);
    let gap = (args.pps > 0).then(|| Duration::from_secs_f64(1.0 / args.pps as f64));
    let start = Instant::now();
    let (mut sent, mut failed) = (0u64, 0u64);
    'outer: loop {
        for (i, &(off, len)) in frames.iter().enumerate() {
            if i % 1024 == 0 && start.elapsed() >= limit {
                break 'outer;
            }
            if let Some(gap) = gap {
                // Pace by schedule, not by sleeping per frame: stay on time at high rates.
                let due = start + gap.mul_f64(sent as f64);
                while Instant::now() < due {
                    std::hint::spin_loop();
                }
            }
            match sender.send(&data[off..off + len]) {
                Ok(()) => sent += 1,
                Err(_) => failed += 1,
            }
        }
        if args.once {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"sent\": {sent}, \"failed\": {failed}, \"seconds\": {secs:.3}, \"pps\": {:.0}, \"distinct_frames\": {}}}",
        sent as f64 / secs,
        frames.len()
    );
    ExitCode::SUCCESS
}
