//! Events per second from a `file:` source through the pipeline to a consumer that does
//! nothing, and memory while a fast source feeds a slow consumer.
//!
//! Run with `cargo bench -p skystream-source --bench pipeline` (`-- --quick` for a short run).
//! The capture is the shared relay corpus repeated to 60,000 frames; every frame is fully
//! decoded (CIDs checked, records decoded) on the way, as in production.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use skystream_capture::{CaptureFormat, CaptureReader, CaptureWriter, Compression};
use skystream_pipeline::{
    Batch, Consumer, ConsumerError, MemoryCursorSink, Pipeline, PipelineConfig,
};
use skystream_source::{FileSource, Pace, Source, SourceContext};
use tokio_util::sync::CancellationToken;

// The same allocator as the binary, so the figures are the binary's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/relay-corpus");

struct Noop;

#[async_trait]
impl Consumer for Noop {
    fn name(&self) -> &str {
        "noop"
    }
    async fn handle(&mut self, _: &Batch) -> Result<(), ConsumerError> {
        Ok(())
    }
}

struct Slow;

#[async_trait]
impl Consumer for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        // 20 µs per event: a consumer an order of magnitude slower than the source.
        tokio::time::sleep(Duration::from_micros(20 * batch.items.len() as u64)).await;
        Ok(())
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn run(
    path: &std::path::Path,
    consumer: Box<dyn Consumer>,
    sample_rss: bool,
) -> (u64, Duration, u64) {
    let mut source = FileSource::new(path, Pace::Fast, false);
    let (input, handle) = Pipeline::start(
        PipelineConfig::default(),
        source.cursor_key(),
        None,
        vec![consumer],
        Arc::new(MemoryCursorSink::new()),
    );
    let ctx = SourceContext {
        out: input,
        committed: handle.committed(),
        shutdown: CancellationToken::new(),
    };
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = sample_rss.then(|| {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    });
    let started = Instant::now();
    source.run(None, ctx).await;
    let summary = handle.finish().await;
    let took = started.elapsed();
    if let Some(s) = sampler {
        s.abort();
    }
    (
        summary.events,
        took,
        peak.load(std::sync::atomic::Ordering::Relaxed),
    )
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let repeats = if quick { 100 } else { 400 };
    let mut frames = Vec::new();
    let mut r = CaptureReader::open(format!("{DIR}/frames.bin.zst")).expect("corpus");
    while let Some(rec) = r.next_record().expect("record") {
        frames.push(rec.data().to_vec());
    }
    let path = std::env::temp_dir().join(format!("skystream-bench-{}.bin", std::process::id()));
    let mut w = CaptureWriter::create(&path, CaptureFormat::RelayFrames, Compression::None)
        .expect("create");
    for _ in 0..repeats {
        for f in &frames {
            w.write_frame(f).expect("write");
        }
    }
    w.finish().expect("finish");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let total = (frames.len() * repeats) as u64;
    println!("capture: {total} relay frames (the shared corpus x{repeats}), decoded in full");
    // Best of five passes: a single pass is short enough for the scheduler to skew.
    let mut rates: Vec<f64> = (0..5)
        .map(|_| {
            let (events, took, _) = rt.block_on(run(&path, Box::new(Noop), false));
            assert_eq!(events, total);
            events as f64 / took.as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    println!(
        "file source -> pipeline -> no-op consumer: {:>9.0} events/s best of 5 (median {:.0})",
        rates[4], rates[2]
    );
    let before = rss_kib();
    let (events, took, peak) = rt.block_on(run(&path, Box::new(Slow), true));
    println!(
        "file source -> pipeline -> slow consumer:  {:>9.0} events/s, resident memory {} MiB before, {} MiB peak",
        events as f64 / took.as_secs_f64(),
        before / 1024,
        peak / 1024
    );
    let _ = std::fs::remove_file(&path);
}
