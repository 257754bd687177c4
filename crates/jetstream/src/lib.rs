//! A Jetstream v1 compatible server: `GET /subscribe` serves the v1 JSON wire (filters,
//! `maxMessageSizeBytes`, `cursor`, zstd with the v1 dictionary, `requireHello`,
//! `options_update`) from a durable replay log, plus the `informCursorSeconds` heartbeat that
//! Jetstream proposed and never shipped.
//!
//! The crate owns what happens between the pipeline and a subscriber's socket: sequencing
//! (`time_us`, [`sequencer`]), the replay log on SQLite with retention ([`log`]) and its memory
//! tail ([`tail`], [`hub`]), what a subscriber asked for ([`filter`], [`heartbeat`]), per-IP
//! limits ([`limits`]), the connection loop, and the axum router ([`router`]). Events are
//! rendered and compressed once, when appended; subscribers pull from the log by position, so
//! replay-to-live has no seam to lose or repeat events at and a slow subscriber costs no
//! memory. Hand-written parts, and why: the replay log's schema and range trim (small, and it
//! is the durability contract), the read-by-position cursor logic (no crate offers it), and the
//! WebSocket upgrade (see [`server`]), which keeps the build on one tungstenite.

pub mod consumer;
pub mod entry;
pub mod filter;
pub mod heartbeat;
pub mod hub;
pub mod limits;
pub mod log;
pub mod sequencer;
pub mod server;
mod subscriber;
pub mod tail;
mod telemetry;

pub use consumer::LogConsumer;
pub use hub::{Hub, HubError};
pub use limits::IpLimits;
pub use server::{router, subscribe_router, Server, ServerConfig};
