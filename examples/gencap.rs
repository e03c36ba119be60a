//! Generates large, deterministic ARP/ND captures for benchmarks.
//!
//! ```text
//! cargo run --release --example gencap -- <realistic|flood> OUT.pcap [--frames N] [--seed S]
//! ```
//!
//! - `realistic`: a 192.168.1.0/24 LAN of 200 hosts and a gateway. About half the frames are
//!   replies to the requests before them; the rest are requests, a few % gratuitous ARPs, ~1 %
//!   RFC 5227 probes and some IPv6 neighbour discovery. Ten IPv4 addresses are answered by two or
//!   three MACs throughout the capture (the conflicts a run should report). ~1 ms per frame.
//! - `flood`: every frame a gratuitous ARP or a reply from an IPv4 address and a MAC never seen
//!   before, ~10 µs apart: the worst case for the detector's tables.
//!
//! Frames stream to a classic pcap file (Ethernet, microseconds); nothing is held in memory, so
//! any frame count works. The same mode, count and seed always give the same file.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use l2watch::wire::synth::{self, Emitter, START_NANOS, SplitMix64};

const USAGE: &str = "usage: gencap <realistic|flood> OUT.pcap [--frames N] [--seed S]

  realistic    200-host LAN with ten conflicted IPv4 addresses, ~1 ms per frame
  flood        every frame from a new IPv4 address and a new MAC, ~10 us per frame
  --frames N   number of frames (default 1000000)
  --seed S     PRNG seed (default 1)";

const DEFAULT_FRAMES: u64 = 1_000_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Realistic,
    Flood,
}

struct Args {
    mode: Mode,
    out: String,
    frames: u64,
    seed: u64,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut mode = None;
    let mut out = None;
    let mut frames = DEFAULT_FRAMES;
    let mut seed = 1;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--frames" | "--seed" => {
                let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
                let n: u64 =
                    value.replace('_', "").parse().map_err(|_| format!("{arg}: not a number: {value:?}"))?;
                if arg == "--frames" {
                    frames = n;
                } else {
                    seed = n;
                }
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ if mode.is_none() => {
                mode = Some(match arg.as_str() {
                    "realistic" => Mode::Realistic,
                    "flood" => Mode::Flood,
                    other => return Err(format!("unknown mode {other:?}")),
                });
            }
            _ if out.is_none() => out = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    Ok(Args { mode: mode.ok_or("missing mode")?, out: out.ok_or("missing output file")?, frames, seed })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("gencap: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gencap: {}: {e}", args.out);
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&args.out)?);
    // Classic pcap header: microsecond resolution, snaplen 65535, LINKTYPE_ETHERNET.
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&[0; 8])?;
    w.write_all(&65_535u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    let mut bytes = 24u64;
    let mut failed: Option<io::Error> = None;
    let mut out = Emitter::new(|nanos: u64, frame: &[u8]| {
        if failed.is_some() {
            return;
        }
        let mut head = [0u8; 16];
        head[0..4].copy_from_slice(&((nanos / 1_000_000_000) as u32).to_le_bytes());
        head[4..8].copy_from_slice(&((nanos % 1_000_000_000 / 1_000) as u32).to_le_bytes());
        head[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        head[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        if let Err(e) = w.write_all(&head).and_then(|()| w.write_all(frame)) {
            failed = Some(e);
        }
        bytes += 16 + frame.len() as u64;
    });
    let mut rng = SplitMix64::new(args.seed);
    let summary = match args.mode {
        Mode::Realistic => synth::realistic(&mut out, &mut rng, args.frames),
        Mode::Flood => synth::flood(&mut out, &mut rng, args.frames),
    };
    let (frames, last) = (out.frames, out.last_nanos);
    if let Some(e) = failed {
        return Err(e);
    }
    w.flush()?;
    eprintln!(
        "gencap: wrote {frames} frames, {bytes} bytes, {:.3} s of capture time to {}",
        last.saturating_sub(START_NANOS) as f64 / 1e9,
        args.out
    );
    eprint!("{summary}");
    Ok(())
}
