//! Sources: where events come from, all behind one interface.
//!
//! This crate owns talking to upstreams and turning what they send into the event model:
//! the relay firehose (`relay:wss://HOST`), Jetstream (`jetstream:wss://HOST[,HOST…]`), capture
//! files (`file:PATH`) and the simulator (`simulate:RATE`). Every source resumes from a cursor,
//! feeds a [`skystream_pipeline::PipelineInput`] (so a slow consumer slows the source instead of
//! growing a queue), and for network sources never stalls silently: an idle watchdog and
//! ping/pong deadlines close a quiet connection, and reconnects back off exponentially with
//! jitter, resuming from the last durably handled event.
//!
//! Parsing a `--source` value is [`SourceSpec::parse`]; running one is [`Source::run`].

mod backoff;
mod failures;
mod file;
mod jetstream;
mod lookahead;
mod relay;
mod simulate;
mod spec;
mod ws;

pub use backoff::Backoff;
pub use file::{decode_capture_record, FileSource, Pace};
pub use jetstream::{JetstreamConfig, JetstreamSource};
pub use relay::{RelayConfig, RelaySource};
pub use simulate::SimulateSource;
pub use spec::{SourceSpec, SpecError};
pub use ws::WatchdogConfig;

use async_trait::async_trait;
use skystream_pipeline::PipelineInput;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How a source's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceEnd {
    /// A finite source (a capture file) delivered everything.
    Exhausted,
    /// Shutdown was requested.
    Shutdown,
    /// The pipeline stopped taking events.
    PipelineClosed,
}

/// What a running source is given.
#[derive(Clone, Debug)]
pub struct SourceContext {
    /// The pipeline's input.
    pub out: PipelineInput,
    /// The pipeline's committed cursor: the last event every consumer durably handled.
    /// Network sources resume from it when they reconnect.
    pub committed: watch::Receiver<Option<u64>>,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
}

/// A source of events.
#[async_trait]
pub trait Source: Send {
    /// A stable key for this source's saved cursor (e.g. `relay:wss://bsky.network`).
    fn cursor_key(&self) -> String;

    /// Runs until shutdown, until the pipeline closes, or (finite sources) until exhausted,
    /// starting after `start` (a cursor saved earlier, or none for the live tail).
    async fn run(&mut self, start: Option<u64>, ctx: SourceContext) -> SourceEnd;
}
