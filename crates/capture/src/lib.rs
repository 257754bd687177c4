//! Capture files: the on-disk format skystream uses to record and replay
//! streams. This crate owns reading and writing them through
//! [`std::io::Read`]/[`std::io::Write`] (the only I/O in the protocol stack),
//! and nothing about what the records mean. A capture holds one of two
//! payload formats: **relay frames** ([`CaptureFormat::RelayFrames`]), a
//! sequence of `[u32 little-endian length][raw WebSocket binary frame]` with
//! no file header, where each frame is the two DAG-CBOR values the relay sent
//! (header map then body map, so its first byte is a CBOR map head
//! `0xa0..=0xbf`); or **Jetstream JSON lines**
//! ([`CaptureFormat::JetstreamJson`]), one JSON object per `\n`-terminated
//! line. Either may be zstd-compressed as a whole ([`Compression::Zstd`]): a
//! zstd stream (one or more concatenated zstd frames) over the entire file.
//! Nothing is taken from the file name: the reader recognizes zstd by its
//! magic bytes `28 B5 2F FD`, then the payload by its first bytes (first
//! non-whitespace byte `{` means JSON lines; a plausible length prefix
//! followed by a CBOR map head means relay frames). [`CaptureReader`] streams
//! records out of a reusable buffer with bounded memory and precise errors on
//! hostile or truncated input; [`CaptureWriter`] produces files it reads back
//! byte-identically.
//!
//! ```
//! use skystream_capture::{CaptureFormat, CaptureReader, CaptureWriter, Compression};
//!
//! let frame = [0xa2, 0x61, 0x74, 0x67, 0x23, 0x63, 0x6f, 0x6d, 0x6d, 0x69, 0x74];
//! let mut writer = CaptureWriter::new(Vec::new(), CaptureFormat::RelayFrames, Compression::Zstd)?;
//! writer.write_frame(&frame)?;
//! let bytes = writer.finish()?;
//!
//! let mut reader = CaptureReader::new(bytes.as_slice())?;
//! assert_eq!(reader.format(), CaptureFormat::RelayFrames);
//! assert_eq!(reader.compression(), Compression::Zstd);
//! while let Some(record) = reader.next_record()? {
//!     assert_eq!(record.data(), &frame);
//!     assert_eq!(record.offset(), 0);
//! }
//! # Ok::<(), skystream_capture::CaptureError>(())
//! ```

#![deny(missing_docs)]

mod error;
mod reader;
mod writer;

use std::fmt;

pub use error::{CaptureError, CaptureErrorKind};
pub use reader::{CaptureReader, OwnedRecord, ReaderOptions, Record, Records, MAX_ZSTD_WINDOW_LOG};
pub use writer::{CaptureWriter, WriterOptions};

/// Default largest relay frame accepted, in bytes (5 MiB), by both
/// [`ReaderOptions`] and [`WriterOptions`].
pub const DEFAULT_MAX_FRAME_LEN: usize = 5 * 1024 * 1024;

/// Default longest Jetstream JSON line accepted, in bytes (8 MiB, not
/// counting the line terminator), by both [`ReaderOptions`] and
/// [`WriterOptions`].
pub const DEFAULT_MAX_LINE_LEN: usize = 8 * 1024 * 1024;

/// Default zstd compression level used by [`CaptureWriter`].
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// The magic bytes that start every zstd frame (`0xFD2FB528` little-endian).
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The payload format of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaptureFormat {
    /// Raw relay (`com.atproto.sync.subscribeRepos`) WebSocket binary frames,
    /// each written as `[u32 little-endian length][frame bytes]`.
    RelayFrames,
    /// Jetstream events, one JSON object per `\n`-terminated line.
    JetstreamJson,
}

impl fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CaptureFormat::RelayFrames => "relay frames",
            CaptureFormat::JetstreamJson => "Jetstream JSON lines",
        })
    }
}

/// Whole-file compression of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// The payload is stored as is.
    None,
    /// The whole payload is one zstd stream (detected by [`ZSTD_MAGIC`]).
    Zstd,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Zstd => "zstd",
        })
    }
}

/// Whether `byte` can start a relay frame: a CBOR map head (major type 5,
/// `0xa0..=0xbf`).
pub(crate) fn is_cbor_map_head(byte: u8) -> bool {
    (0xa0..=0xbf).contains(&byte)
}
