//! One Jetstream v1 event as the log keeps it: its `time_us`, what filters look at (the DID
//! and, for commits, the collection), and its two wire forms, JSON and a zstd frame made with
//! the v1 dictionary. Both forms are made once, when the event is sequenced, and every
//! subscriber is sent the same bytes.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use skystream_event::{jetstream, Event, EventKind};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// One v1 event, shared (behind an `Arc`) by the log's memory tail and every subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The server's sequence number for the event, and the cursor that resumes at it.
    pub time_us: i64,
    /// The account the event is about (`wantedDids` matches it).
    pub did: Box<str>,
    /// The record collection of a commit operation; `None` for identity and account events,
    /// which `wantedCollections` does not filter.
    pub collection: Option<Box<str>>,
    /// The event as a JSON text frame.
    pub json: Utf8Bytes,
    /// The event as one zstd frame made with the dictionary; empty when no dictionary is
    /// configured.
    pub zstd: Bytes,
}

impl Entry {
    /// Bytes the entry holds in memory, for the tail's budget.
    pub fn weight(&self) -> usize {
        self.json.len() + self.zstd.len() + self.did.len() + 64
    }
}

/// An event rendered as JSON but not yet compressed (compression runs off the async
/// workers, with the log write).
#[derive(Debug)]
pub struct Rendered {
    /// See [`Entry::time_us`].
    pub time_us: i64,
    /// See [`Entry::did`].
    pub did: Box<str>,
    /// See [`Entry::collection`].
    pub collection: Option<Box<str>>,
    /// The JSON line, without a newline.
    pub json: String,
}

/// Renders `event` as its v1 lines (one per commit operation, one per identity or account
/// event, none for `#sync` and `#info`), drawing a `time_us` for each from `next_time_us`.
pub fn render(event: &Event, next_time_us: &mut dyn FnMut() -> i64, out: &mut Vec<Rendered>) {
    match &event.kind {
        EventKind::Commit(c) => {
            for op in &c.ops {
                let time_us = next_time_us();
                let mut json = String::with_capacity(512);
                jetstream::write_commit_op(c, op, time_us, &mut json);
                out.push(Rendered {
                    time_us,
                    did: c.did.as_str().into(),
                    collection: Some(op.collection.as_str().into()),
                    json,
                });
            }
        }
        EventKind::Identity(i) => {
            let time_us = next_time_us();
            let mut json = String::with_capacity(256);
            jetstream::write_identity(i, time_us, &mut json);
            out.push(Rendered {
                time_us,
                did: i.did.as_str().into(),
                collection: None,
                json,
            });
        }
        EventKind::Account(a) => {
            let time_us = next_time_us();
            let mut json = String::with_capacity(256);
            jetstream::write_account(a, time_us, &mut json);
            out.push(Rendered {
                time_us,
                did: a.did.as_str().into(),
                collection: None,
                json,
            });
        }
        EventKind::Sync(_) | EventKind::Info(_) => {}
    }
}

/// The zstd side of the wire: one compressor primed with the v1 dictionary, shared by the
/// writer (every event) and subscribers (their cursor heartbeats).
pub struct Codec {
    compressor: Option<Mutex<zstd::bulk::Compressor<'static>>>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("dictionary", &self.compressor.is_some())
            .finish()
    }
}

/// Jetstream v1's encoder window: 128 KiB (a decoder that bounds its window to that accepts
/// every frame).
const WINDOW_LOG: u32 = 17;

impl Codec {
    /// A codec with the dictionary's bytes, or none (then nothing is compressed and
    /// compressed subscriptions are refused).
    pub fn new(dictionary: Option<&[u8]>) -> std::io::Result<Codec> {
        let compressor = match dictionary {
            Some(d) => {
                let mut c = zstd::bulk::Compressor::with_dictionary(0, d)?;
                c.set_parameter(zstd::zstd_safe::CParameter::WindowLog(WINDOW_LOG))?;
                Some(Mutex::new(c))
            }
            None => None,
        };
        Ok(Codec { compressor })
    }

    /// Whether a dictionary is configured.
    pub fn enabled(&self) -> bool {
        self.compressor.is_some()
    }

    /// Compresses each of `items` as its own frame (empty results when disabled).
    pub fn compress_all<'a>(
        &self,
        items: impl IntoIterator<Item = &'a [u8]>,
    ) -> std::io::Result<Vec<Bytes>> {
        let Some(c) = &self.compressor else {
            return Ok(items.into_iter().map(|_| Bytes::new()).collect());
        };
        let mut c = c
            .lock()
            .map_err(|_| std::io::Error::other("zstd compressor lock poisoned"))?;
        items
            .into_iter()
            .map(|i| c.compress(i).map(Bytes::from))
            .collect()
    }

    /// Compresses one message (a heartbeat); empty when disabled.
    pub fn compress(&self, data: &[u8]) -> std::io::Result<Bytes> {
        Ok(self
            .compress_all([data])?
            .into_iter()
            .next()
            .unwrap_or_default())
    }
}

/// Builds entries from rendered events and their compressed frames.
pub fn entries(rendered: Vec<Rendered>, zstd: Vec<Bytes>) -> Vec<Arc<Entry>> {
    rendered
        .into_iter()
        .zip(zstd)
        .map(|(r, z)| {
            Arc::new(Entry {
                time_us: r.time_us,
                did: r.did,
                collection: r.collection,
                json: r.json.into(),
                zstd: z,
            })
        })
        .collect()
}
