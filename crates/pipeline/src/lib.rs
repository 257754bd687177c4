//! The one pipeline every event flows through, from a source to every consumer.
//!
//! A source sends [`Envelope`]s into a bounded queue ([`PipelineInput::send`] waits when it is
//! full, so memory stays flat however far behind the consumers are). The pipeline groups them
//! into batches and hands each batch, in order, to every [`Consumer`]; a consumer's
//! [`Consumer::handle`] returns only once the batch is durably handled. The [`CursorTracker`]
//! then moves the committed cursor to the last event that *every* consumer has handled, and a
//! saver writes it to a [`CursorSink`] about once a second and at shutdown. A restart resumes
//! from that cursor, so delivery is at-least-once and never skips.
//!
//! The cursor bookkeeping is hand-written: it is small, must be exact, and no crate offers
//! "minimum acknowledged prefix across consumers" as a primitive.

mod consumer;
mod run;
mod tracker;

pub use consumer::{Consumer, ConsumerError, CursorSink, MemoryCursorSink};
pub use run::{
    DrainTimedOut, Pipeline, PipelineConfig, PipelineHandle, PipelineInput, PipelineSummary,
    RUN_EVENTS,
};
pub use tracker::CursorTracker;

use skystream_event::Event;

/// An event as it travels the pipeline, with the source's original bytes when a consumer may
/// want them verbatim (a capture writer records relay frames exactly as received).
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// The event.
    pub event: Event,
    /// The bytes the source received, if kept.
    pub raw: Option<Raw>,
    /// Where a partitioned upstream (Kafka) holds the message the event came from. The event's
    /// cursor is then a number local to this run, so a consumer that must not take an event
    /// twice across restarts goes by this position instead.
    pub position: Option<Position>,
}

impl Envelope {
    /// An envelope without raw bytes.
    pub fn new(event: Event) -> Self {
        Envelope {
            event,
            raw: None,
            position: None,
        }
    }

    /// An envelope carrying the source's original bytes.
    pub fn with_raw(event: Event, raw: Option<Raw>) -> Self {
        Envelope {
            event,
            raw,
            position: None,
        }
    }
}

/// A message's place in a partitioned log: ordered within its partition, unordered across.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// The partition.
    pub partition: u32,
    /// The message's offset within it.
    pub offset: u64,
}

/// A source's original encoding of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Raw {
    /// A relay firehose frame.
    Frame(Vec<u8>),
    /// A Jetstream JSON line (without the newline).
    JsonLine(String),
}

/// A run of consecutive envelopes, handed to every consumer as a unit.
#[derive(Debug)]
pub struct Batch {
    /// Position in the pipeline's sequence of batches (starting at 1).
    pub id: u64,
    /// The envelopes, in source order.
    pub items: Vec<Envelope>,
}

impl Batch {
    /// The cursor that covers this batch: the last non-zero event cursor in it.
    pub fn cursor(&self) -> Option<u64> {
        self.items
            .iter()
            .rev()
            .map(|e| e.event.cursor)
            .find(|c| *c != 0)
    }
}
