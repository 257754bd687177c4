//! Kafka throughput against a real Kafka-protocol broker (tansu, started on a free loopback
//! port with in-memory storage, as the broker tests do).
//!
//! 1. The shared relay corpus, decoded once and repeated with distinct cursors, is fed through
//!    the pipeline into the real `KafkaSink` (idempotent producer, `acks=all`): events/s and
//!    MB/s of CloudEvents whose delivery reports all came back.
//! 2. End to end from a `file:` source (the corpus's frames repeated in a capture file, every
//!    frame decoded on the way, as `skystream kafka --source file:…` does) into the sink.
//! 3. The first topic read back through the `kafka:` source as a consumer group into a
//!    consumer that only counts: events/s from the first event to the last.
//!
//! Beside each figure, the CPU time the broker process and this process used. Figures are
//! printed, nothing is asserted about speed. Without tansu it says so and exits non-zero.
//!
//! `cargo bench -p skystream-kafka --bench kafka [-- --quick]`

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use skystream_capture::{CaptureFormat, CaptureReader, CaptureWriter, Compression};
use skystream_event::Event;
use skystream_kafka::cloudevent::{self, ContentMode, Mapping};
use skystream_kafka::{Collection, KafkaSink, KafkaSource, KafkaSourceConfig, SinkConfig};
use skystream_pipeline::{
    Batch, Consumer, ConsumerError, Envelope, MemoryCursorSink, Pipeline, PipelineConfig,
};
use skystream_source::{FileSource, Pace, Source, SourceContext};
use tokio_util::sync::CancellationToken;

// The same allocator as the binary, so the figures are the binary's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU seconds (user + system) a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
        return f64::NAN;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU used by the broker and by this process over a stretch of work.
struct Cpu {
    broker: String,
    start: (f64, f64),
}

impl Cpu {
    fn start(broker_pid: u32) -> Cpu {
        let broker = broker_pid.to_string();
        let start = (cpu_seconds(&broker), cpu_seconds("self"));
        Cpu { broker, start }
    }

    /// "broker X.XX s CPU (NN% of a core), us Y.YY s (MM%)" over `wall`.
    fn report(&self, wall: Duration) -> String {
        let b = cpu_seconds(&self.broker) - self.start.0;
        let us = cpu_seconds("self") - self.start.1;
        let w = wall.as_secs_f64();
        format!(
            "broker {b:.2} s CPU ({:.0}% of a core), skystream {us:.2} s ({:.0}%)",
            100.0 * b / w,
            100.0 * us / w
        )
    }
}

fn sink_config(bootstrap: &str, topic: &str) -> SinkConfig {
    let mut c = SinkConfig::new(bootstrap, topic);
    c.mode = ContentMode::Structured;
    c.mapping = mapping();
    c
}

fn mapping() -> Mapping {
    Mapping {
        collections: Collection::ALL.to_vec(),
        ..Mapping::default()
    }
}

/// Feeds `events` through a pipeline into the Kafka sink; returns when every batch was
/// acknowledged by the broker. Returns the total time, and the events and time after the
/// first batch was acknowledged (the steady state, without the producer's start-up: metadata
/// and the idempotent producer's id). The cursors are distinct and increasing, so the first
/// committed cursor says how many events that first batch held.
async fn produce(
    bootstrap: &str,
    topic: &str,
    events: Vec<Event>,
) -> (Duration, Duration, u64, Duration) {
    let sink = KafkaSink::new(sink_config(bootstrap, topic)).unwrap();
    let connecting = Instant::now();
    sink.connect(Duration::from_secs(10)).await.unwrap();
    println!("  connected in {:.2} s", connecting.elapsed().as_secs_f64());
    let last = events.last().map(|e| e.cursor);
    let started = Instant::now();
    let (input, handle) = Pipeline::start(
        PipelineConfig::default(),
        "bench",
        None,
        vec![Box::new(sink)],
        Arc::new(MemoryCursorSink::new()),
    );
    let mut committed = handle.committed();
    let first = tokio::spawn(async move {
        let c = committed.wait_for(|c| c.is_some()).await.map(|c| *c);
        (Instant::now(), c.ok().flatten().unwrap_or(0))
    });
    let feeder = tokio::spawn(async move {
        for chunk in events.chunks(1024) {
            input
                .send_many(chunk.iter().cloned().map(Envelope::new).collect())
                .await
                .unwrap();
        }
    });
    feeder.await.unwrap();
    let summary = handle.finish().await;
    let end = Instant::now();
    assert_eq!(summary.cursor, last, "every batch delivered");
    let (t0, c0) = first.await.unwrap();
    (
        end - started,
        t0.saturating_duration_since(started),
        last.unwrap_or(0).saturating_sub(c0),
        end.saturating_duration_since(t0),
    )
}

/// A `file:` source into the Kafka sink.
async fn produce_from_file(
    bootstrap: &str,
    topic: &str,
    path: &std::path::Path,
) -> (u64, Duration) {
    let sink = KafkaSink::new(sink_config(bootstrap, topic)).unwrap();
    sink.connect(Duration::from_secs(10)).await.unwrap();
    let mut source = FileSource::new(path, Pace::Fast, false);
    let started = Instant::now();
    let (input, handle) = Pipeline::start(
        PipelineConfig::default(),
        source.cursor_key(),
        None,
        vec![Box::new(sink)],
        Arc::new(MemoryCursorSink::new()),
    );
    let ctx = SourceContext {
        out: input,
        committed: handle.committed(),
        shutdown: CancellationToken::new(),
    };
    source.run(None, ctx).await;
    let summary = handle.finish().await;
    (summary.events, started.elapsed())
}

/// Counts events and notes when the first and the latest arrived.
#[derive(Clone, Default)]
struct Count {
    n: Arc<AtomicU64>,
    times: Arc<Mutex<Option<(Instant, Instant)>>>,
}

#[async_trait]
impl Consumer for Count {
    fn name(&self) -> &str {
        "count"
    }
    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        let now = Instant::now();
        {
            let mut t = self.times.lock().unwrap();
            let first = t.map_or(now, |(f, _)| f);
            *t = Some((first, now));
        }
        self.n
            .fetch_add(batch.items.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Reads `topic` back as a consumer group until `want` events arrived (or two minutes
/// passed). Returns the events read, the time from first to last, and the time from start.
async fn consume(bootstrap: &str, topic: &str, want: u64) -> (u64, Duration, Duration) {
    let mut source = KafkaSource::new(KafkaSourceConfig {
        brokers: bootstrap.into(),
        topic: topic.into(),
        group: "bench".into(),
        // tansu's group coordinator needs short timeouts to admit members reliably.
        client: vec![
            ("session.timeout.ms".into(), "6000".into()),
            ("max.poll.interval.ms".into(), "8000".into()),
            ("heartbeat.interval.ms".into(), "1000".into()),
        ],
        backoff_max: Duration::from_secs(2),
    });
    let count = Count::default();
    let started = Instant::now();
    let (input, handle) = Pipeline::start(
        PipelineConfig::default(),
        source.cursor_key(),
        None,
        vec![Box::new(count.clone())],
        Arc::new(MemoryCursorSink::new()),
    );
    let shutdown = CancellationToken::new();
    let ctx = SourceContext {
        out: input,
        committed: handle.committed(),
        shutdown: shutdown.clone(),
    };
    let task = tokio::spawn(async move { source.run(None, ctx).await });
    let deadline = Instant::now() + Duration::from_secs(120);
    while count.n.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let total = started.elapsed();
    shutdown.cancel();
    task.await.unwrap();
    handle.finish().await;
    let n = count.n.load(Ordering::Relaxed);
    let span = count
        .times
        .lock()
        .unwrap()
        .map_or(Duration::ZERO, |(f, l)| l - f);
    (n, span, total)
}

fn main() -> ExitCode {
    let quick = std::env::args().any(|a| a == "--quick");
    let repeats: usize = if quick { 100 } else { 400 };
    let Some(bin) = common::tansu_bin() else {
        eprintln!(
            "the Kafka benchmark needs the tansu broker: cargo install tansu --locked --features dynostore (or bash .ci/kafka), or set SKYSTREAM_TANSU"
        );
        return ExitCode::FAILURE;
    };

    // The corpus decoded once, repeated with distinct, increasing cursors.
    let base = common::corpus();
    let mut events: Vec<Event> = Vec::with_capacity(repeats * base.len());
    for _ in 0..repeats {
        for e in &base {
            let mut e = e.clone();
            e.cursor = events.len() as u64 + 1;
            events.push(e);
        }
    }
    let map = mapping();
    let (mut messages, mut bytes) = (0u64, 0u64);
    for e in &events {
        for ce in cloudevent::from_event(e, &map) {
            let m = ce.to_message(ContentMode::Structured);
            messages += 1;
            bytes += (m.key.len()
                + m.payload.len()
                + m.headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>()) as u64;
        }
    }

    // The same frames in a capture file, for the `file:` source.
    let mut frames = Vec::new();
    let mut r = CaptureReader::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/relay-corpus/frames.bin.zst"
    ))
    .unwrap();
    while let Some(rec) = r.next_record().unwrap() {
        frames.push(rec.data().to_vec());
    }
    let capture =
        std::env::temp_dir().join(format!("skystream-kafka-bench-{}.bin", std::process::id()));
    let mut w =
        CaptureWriter::create(&capture, CaptureFormat::RelayFrames, Compression::None).unwrap();
    for _ in 0..repeats {
        for f in &frames {
            w.write_frame(f).unwrap();
        }
    }
    w.finish().unwrap();

    let broker = common::Broker::start_with(bin);
    let bootstrap = broker.bootstrap();
    broker.create_topic("bench");
    broker.create_topic("bench-file");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "tansu (memory storage, {} partitions) on {bootstrap}; {} events = the relay corpus x{repeats}, {messages} CloudEvents (structured), {:.1} MB",
        common::PARTITIONS,
        events.len(),
        bytes as f64 / 1e6
    );

    let n = events.len() as u64;
    let cpu = Cpu::start(broker.pid());
    let (took, first, steady_n, steady) = rt.block_on(produce(&bootstrap, "bench", events));
    let s = took.as_secs_f64();
    println!(
        "produce (decoded events -> pipeline -> Kafka sink, delivery confirmed): {:>8.0} events/s, {:.1} MB/s (first batch acknowledged after {:.2} s, then {:.0} events/s); {}",
        n as f64 / s,
        bytes as f64 / 1e6 / s,
        first.as_secs_f64(),
        steady_n as f64 / steady.as_secs_f64().max(1e-9),
        cpu.report(took)
    );

    let cpu = Cpu::start(broker.pid());
    let (read, took) = rt.block_on(produce_from_file(&bootstrap, "bench-file", &capture));
    assert_eq!(read, n, "the file source read every frame");
    let s = took.as_secs_f64();
    println!(
        "produce end to end (file: source, frames decoded -> Kafka sink):         {:>8.0} events/s, {:.1} MB/s; {}",
        n as f64 / s,
        bytes as f64 / 1e6 / s,
        cpu.report(took)
    );
    let _ = std::fs::remove_file(&capture);

    let cpu = Cpu::start(broker.pid());
    let (got, span, total) = rt.block_on(consume(&bootstrap, "bench", messages));
    println!(
        "consume back (kafka: source, consumer group -> pipeline -> counter):     {:>8.0} events/s first to last ({got} of {messages} events, {:.1} s with the group join); {}",
        got as f64 / span.as_secs_f64().max(1e-9),
        total.as_secs_f64(),
        cpu.report(total)
    );
    if got < messages {
        eprintln!("only {got} of {messages} events came back within two minutes");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
