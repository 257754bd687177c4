//! Firehose decoding throughput on the shared relay corpus, one core.
//!
//! Run with `cargo bench -p skystream-event --bench firehose`. Three stages, each measured as
//! the best of several timed passes over all 150 frames:
//! - framing: header, body and the CAR block index (no hashing, records not decoded);
//! - decode: framing plus every block's CID checked and every record decoded into an event;
//! - verify: decode plus the signature and the prevData inversion of every commit.

use std::hint::black_box;
use std::time::{Duration, Instant};

use skystream_capture::CaptureReader;
use skystream_event::verify::check_commit;
use skystream_event::{from_frame, FrameOptions};
use skystream_firehose::{decode_frame, Frame};
use skystream_identity::MemoryDirectory;

// The same allocator as the binary, so the figures are the binary's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/relay-corpus");

fn measure(name: &str, frames: &[Vec<u8>], budget: Duration, mut f: impl FnMut(&[u8])) {
    let bytes: usize = frames.iter().map(Vec::len).sum();
    // Warm up, then find how many passes fill about a tenth of the budget.
    for fr in frames {
        f(fr);
    }
    let mut best = f64::INFINITY;
    let deadline = Instant::now() + budget;
    let mut rounds = 0;
    while Instant::now() < deadline || rounds < 5 {
        let passes = 20;
        let start = Instant::now();
        for _ in 0..passes {
            for fr in frames {
                f(fr);
            }
        }
        let per_pass = start.elapsed().as_secs_f64() / passes as f64;
        best = best.min(per_pass);
        rounds += 1;
    }
    let fps = frames.len() as f64 / best;
    let mbps = bytes as f64 / best / 1e6;
    println!(
        "{name:<28} {fps:>12.0} frames/s {mbps:>10.1} MB/s  ({:.2} µs/frame)",
        best / frames.len() as f64 * 1e6
    );
}

fn main() {
    let mut reader = CaptureReader::open(format!("{DIR}/frames.bin.zst")).expect("corpus");
    let mut frames = Vec::new();
    while let Some(r) = reader.next_record().expect("record") {
        frames.push(r.data().to_vec());
    }
    let docs = std::fs::read_to_string(format!("{DIR}/did_docs.json")).expect("docs");
    let dir = MemoryDirectory::from_json_map(&docs).expect("docs parse");
    let bytes: usize = frames.iter().map(Vec::len).sum();
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 300 } else { 3000 });
    println!(
        "relay corpus: {} frames, {:.1} KB average",
        frames.len(),
        bytes as f64 / frames.len() as f64 / 1e3
    );

    measure("framing (header+body+CAR)", &frames, budget, |b| {
        let frame = decode_frame(b).expect("frame");
        if let Frame::Commit(c) = &frame {
            black_box(c.car().expect("car").blocks().len());
        }
        black_box(frame);
    });
    let opts = FrameOptions::default();
    measure("decode + CIDs + records", &frames, budget, |b| {
        let frame = decode_frame(b).expect("frame");
        black_box(from_frame(&frame, &opts).expect("event"));
    });
    measure("full verification", &frames, budget, |b| {
        let frame = decode_frame(b).expect("frame");
        if let Frame::Commit(c) = &frame {
            let check = check_commit(c, &dir);
            assert!(check.signature.is_ok());
        }
        black_box(from_frame(&frame, &opts).expect("event"));
    });
}
