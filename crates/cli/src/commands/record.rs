//! `skystream record`: a source written to a capture file, each batch on disk (fsync) before
//! the cursor may move past it, so a crash or restart leaves no gap.

use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use async_trait::async_trait;
use skystream_capture::{
    CaptureErrorKind, CaptureFormat, CaptureReader, CaptureWriter, Compression,
};
use skystream_pipeline::{Batch, Consumer, ConsumerError, Raw};
use skystream_source::SourceSpec;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cli::RecordArgs;
use crate::ingest;

struct CaptureConsumer {
    writer: CaptureWriter<BufWriter<File>>,
    format: CaptureFormat,
    written: u64,
}

#[async_trait]
impl Consumer for CaptureConsumer {
    fn name(&self) -> &str {
        "capture"
    }

    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        // Small, sequential file writes: cheaper inline than a hop to the blocking pool.
        for env in &batch.items {
            match (&env.raw, self.format) {
                (Some(Raw::Frame(b)), CaptureFormat::RelayFrames) => self.writer.write_frame(b)?,
                (Some(Raw::JsonLine(l)), CaptureFormat::JetstreamJson) => {
                    self.writer.write_line(l)?
                }
                (None, _) => continue, // position-only events
                _ => {
                    warn!("an event of the other capture format was not recorded");
                    continue;
                }
            }
            self.written += 1;
        }
        self.writer.flush()?;
        if let Some(w) = self.writer.get_ref() {
            w.get_ref().sync_data()?;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), ConsumerError> {
        self.writer.flush()?;
        info!(events = self.written, "capture file written");
        Ok(())
    }
}

/// Cuts a torn last record (a crash mid-write) off an existing uncompressed capture, so
/// appending continues a valid file. Returns the number of intact records.
fn repair(path: &Path, format: CaptureFormat) -> anyhow::Result<u64> {
    let mut reader = match CaptureReader::open(path) {
        Ok(r) => r,
        Err(e) if e.kind() == CaptureErrorKind::Empty => return Ok(0),
        Err(e) => {
            return Err(e).with_context(|| {
                format!("{} exists but is not a readable capture", path.display())
            })
        }
    };
    if reader.format() != format {
        anyhow::bail!(
            "{} holds {} but this source records {}; choose another --out",
            path.display(),
            reader.format(),
            format
        );
    }
    if reader.compression() != Compression::None {
        anyhow::bail!(
            "{} is compressed and cannot be appended to; choose another --out",
            path.display()
        );
    }
    let mut good_end = 0u64;
    let mut records = 0u64;
    loop {
        match reader.next_record() {
            Ok(Some(_)) => {
                records += 1;
                good_end = reader.position();
            }
            Ok(None) => return Ok(records),
            Err(e) if e.kind() == CaptureErrorKind::Truncated => {
                warn!(file = %path.display(), keep_bytes = good_end, "cutting a torn record off the end of the capture");
                OpenOptions::new()
                    .write(true)
                    .open(path)?
                    .set_len(good_end)?;
                return Ok(records);
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("{} is damaged before its end", path.display()))
            }
        }
    }
}

pub async fn run(args: &RecordArgs) -> anyhow::Result<ExitCode> {
    let spec_text = args
        .ingest
        .source
        .as_deref()
        .context("record needs --source (relay:wss://HOST, jetstream:wss://HOST, file:PATH or simulate:RATE)")?;
    let spec = SourceSpec::parse(spec_text)?;
    ingest::start_metrics(args.ingest.metrics_listen)?;
    let format = match &spec {
        SourceSpec::Jetstream { .. } => CaptureFormat::JetstreamJson,
        SourceSpec::File { path } => CaptureReader::open(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .format(),
        _ => CaptureFormat::RelayFrames,
    };
    let compressed = args.out.extension().is_some_and(|e| e == "zst");
    let writer = if args.out.exists() && std::fs::metadata(&args.out)?.len() > 0 {
        if compressed {
            anyhow::bail!("{} already exists and compressed captures cannot be appended to; choose another --out", args.out.display());
        }
        let kept = repair(&args.out, format)?;
        info!(file = %args.out.display(), records = kept, "appending to the existing capture");
        let file = OpenOptions::new().append(true).open(&args.out)?;
        CaptureWriter::new(BufWriter::new(file), format, Compression::None)?
    } else {
        let compression = if compressed {
            Compression::Zstd
        } else {
            Compression::None
        };
        CaptureWriter::create(&args.out, format, compression)
            .with_context(|| format!("cannot create {}", args.out.display()))?
    };
    let store = ingest::open_store(&args.ingest.database).await?;
    let source = ingest::build_source(&spec, &args.ingest, true)?;
    let stop = CancellationToken::new();
    ingest::cancel_on_signals(stop.clone());
    if let Some(d) = args.duration {
        let t = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            info!("--duration reached");
            t.cancel();
        });
    }
    let consumer = CaptureConsumer {
        writer,
        format,
        written: 0,
    };
    let outcome = ingest::run(
        &store,
        source,
        vec![Box::new(consumer)],
        &args.ingest,
        args.max_events,
        stop,
    )
    .await?;
    info!(events = outcome.summary.events, end = ?outcome.end, file = %args.out.display(), "recording finished");
    Ok(ExitCode::SUCCESS)
}
