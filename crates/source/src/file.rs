//! Capture files as a source: relay frames or Jetstream lines, as fast as possible or paced by
//! event time.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use rayon::iter::{IntoParallelIterator, ParallelIterator};
use skystream_capture::{CaptureFormat, CaptureReader};
use skystream_event::{from_frame, jetstream, Event, FrameOptions};
use skystream_firehose::decode_frame;
use skystream_pipeline::{Envelope, Raw};
use tracing::warn;

/// Records decoded together; large enough to spread over every core, small enough to keep
/// memory flat.
const CHUNK: usize = skystream_pipeline::RUN_EVENTS;

use crate::{Source, SourceContext, SourceEnd};

/// How fast a capture is replayed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pace {
    /// As fast as the pipeline takes events.
    #[default]
    Fast,
    /// Spaced as the events' own times were.
    Realtime,
}

/// Replays a capture file.
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    pace: Pace,
    keep_raw: bool,
}

impl FileSource {
    /// A source reading `path`.
    pub fn new(path: impl Into<PathBuf>, pace: Pace, keep_raw: bool) -> Self {
        FileSource {
            path: path.into(),
            pace,
            keep_raw,
        }
    }
}

/// Decodes one capture record into its event (if it carries one): a relay frame with its
/// CIDs checked and records decoded, or a Jetstream line.
pub fn decode_capture_record(
    format: CaptureFormat,
    data: &[u8],
    opts: &FrameOptions,
) -> Result<Option<Event>, String> {
    match format {
        CaptureFormat::RelayFrames => {
            let frame = decode_frame(data).map_err(|e| e.to_string())?;
            Ok(from_frame(&frame, opts).map_err(|e| e.to_string())?.event)
        }
        CaptureFormat::JetstreamJson => {
            let line = std::str::from_utf8(data).map_err(|e| e.to_string())?;
            Ok(jetstream::parse_line(line)
                .map_err(|e| e.to_string())?
                .event)
        }
    }
}

/// Up to [`CHUNK`] records, and the error that stopped reading, if one did.
fn read_chunk<R: std::io::Read>(r: &mut CaptureReader<R>) -> (Vec<(u64, Vec<u8>)>, Option<String>) {
    let mut chunk = Vec::with_capacity(CHUNK);
    while chunk.len() < CHUNK {
        match r.next_record() {
            Ok(Some(rec)) => chunk.push((rec.index(), rec.data().to_vec())),
            Ok(None) => break,
            Err(e) => return (chunk, Some(e.to_string())),
        }
    }
    (chunk, None)
}

/// Decodes a chunk on every core, keeping record order.
fn decode_chunk(
    chunk: Vec<(u64, Vec<u8>)>,
    format: CaptureFormat,
    opts: &FrameOptions,
    start: Option<u64>,
    keep_raw: bool,
) -> Vec<Envelope> {
    chunk
        .into_par_iter()
        .filter_map(|(index, data)| {
            let event = match decode_capture_record(format, &data, opts) {
                Ok(Some(e)) => e,
                Ok(None) => return None,
                Err(e) => {
                    metrics::counter!("skystream_decode_errors_total", "reason" => "capture_record").increment(1);
                    warn!(record = index, error = %e, "skipping an undecodable capture record");
                    return None;
                }
            };
            if start.is_some_and(|s| event.cursor != 0 && event.cursor <= s) {
                return None;
            }
            let raw = keep_raw.then(|| match format {
                CaptureFormat::RelayFrames => Raw::Frame(data),
                CaptureFormat::JetstreamJson => Raw::JsonLine(String::from_utf8_lossy(&data).into_owned()),
            });
            Some(Envelope::with_raw(event, raw))
        })
        .collect()
}

#[async_trait]
impl Source for FileSource {
    fn cursor_key(&self) -> String {
        format!("file:{}", self.path.display())
    }

    async fn run(&mut self, start: Option<u64>, ctx: SourceContext) -> SourceEnd {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<Envelope>, String>>(8);
        let path = self.path.clone();
        let keep_raw = self.keep_raw;
        // Reading and decoding are blocking work; keep them off the async workers. Records are
        // read in chunks and each chunk is decoded on every core, in order.
        let reader = tokio::task::spawn_blocking(move || {
            let mut r = match CaptureReader::open(&path) {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e.to_string()));
                    return;
                }
            };
            let format = r.format();
            let opts = FrameOptions::default();
            // Reading the next chunk overlaps decoding this one (rayon::join), so the reader is
            // never idle while every core decodes.
            let mut current = read_chunk(&mut r);
            loop {
                let (chunk, failure) = current;
                let done = failure.is_some() || chunk.len() < CHUNK;
                let (envelopes, next) = rayon::join(
                    || decode_chunk(chunk, format, &opts, start, keep_raw),
                    || {
                        if done {
                            (Vec::new(), None)
                        } else {
                            read_chunk(&mut r)
                        }
                    },
                );
                if !envelopes.is_empty() && tx.blocking_send(Ok(envelopes)).is_err() {
                    return;
                }
                if let Some(e) = failure {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
                if done {
                    return;
                }
                current = next;
            }
        });
        let mut pacing: Option<(i64, tokio::time::Instant)> = None;
        let end = 'outer: loop {
            let item = tokio::select! {
                _ = ctx.shutdown.cancelled() => break SourceEnd::Shutdown,
                item = rx.recv() => item,
            };
            let chunk = match item {
                None => break SourceEnd::Exhausted,
                Some(Err(e)) => {
                    warn!(file = %self.path.display(), error = %e, "capture file ended with an error");
                    break SourceEnd::Exhausted;
                }
                Some(Ok(chunk)) => chunk,
            };
            if self.pace == Pace::Fast {
                for env in &chunk {
                    metrics::counter!("skystream_events_total", "kind" => env.event.kind_name())
                        .increment(1);
                }
                tokio::select! {
                    biased;
                    _ = ctx.shutdown.cancelled() => break SourceEnd::Shutdown,
                    sent = ctx.out.send_many(chunk) => if sent.is_err() { break SourceEnd::PipelineClosed },
                }
                continue;
            }
            for env in chunk {
                if env.event.time_us > 0 {
                    let (t0, at0) =
                        *pacing.get_or_insert((env.event.time_us, tokio::time::Instant::now()));
                    let offset =
                        Duration::from_micros(env.event.time_us.saturating_sub(t0).max(0) as u64);
                    tokio::select! {
                        _ = ctx.shutdown.cancelled() => break 'outer SourceEnd::Shutdown,
                        _ = tokio::time::sleep_until(at0 + offset) => {}
                    }
                }
                metrics::counter!("skystream_events_total", "kind" => env.event.kind_name())
                    .increment(1);
                tokio::select! {
                    biased;
                    _ = ctx.shutdown.cancelled() => break 'outer SourceEnd::Shutdown,
                    sent = ctx.out.send(env) => if sent.is_err() { break 'outer SourceEnd::PipelineClosed },
                }
            }
        };
        drop(rx);
        let _ = reader.await;
        end
    }
}
