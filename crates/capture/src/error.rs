//! The one error type of the crate.

use std::io;

/// What went wrong, for callers that branch on the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CaptureErrorKind {
    /// An I/O error from the underlying reader, writer or file system
    /// ([`CaptureError::io_error`] has it), or a writer used after one.
    Io,
    /// The capture holds no data at all (zero bytes, a zstd stream that
    /// decompresses to nothing, or only whitespace).
    Empty,
    /// The content is neither relay frames nor Jetstream JSON lines.
    UnknownFormat,
    /// A relay frame's declared length exceeds the configured maximum (the
    /// reader reports this before allocating anything for the frame).
    FrameTooLarge,
    /// A relay frame's length prefix is zero.
    EmptyFrame,
    /// A relay frame does not start with a CBOR map head (`0xa0..=0xbf`),
    /// which usually means the length prefixes are out of step with the data.
    InvalidFrame,
    /// The capture ends in the middle of a record: inside a length prefix,
    /// inside a frame, or (for zstd) inside the compressed stream. The records
    /// before it were valid.
    Truncated,
    /// The zstd stream is corrupt (not a truncation).
    Decompress,
    /// A JSON line is longer than the configured maximum.
    LineTooLong,
    /// A line given to the writer cannot be stored as one JSON line (blank,
    /// contains a newline, ends in `\r`, or does not start with `{`).
    InvalidLine,
    /// A write call does not match the writer's format (e.g.
    /// [`crate::CaptureWriter::write_frame`] on a JSON-lines writer).
    WrongFormat,
}

/// An error reading or writing a capture file.
///
/// The message says what happened and where (byte offset in the
/// decompressed stream and zero-based record index, when known); the same
/// facts are available as [`kind`](Self::kind), [`offset`](Self::offset) and
/// [`record`](Self::record). For [`CaptureErrorKind::Io`] the message already
/// includes the underlying error's text, so [`std::error::Error::source`] is
/// `None`; use [`io_error`](Self::io_error) to inspect it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CaptureError {
    kind: CaptureErrorKind,
    offset: Option<u64>,
    record: Option<u64>,
    message: String,
    io: Option<io::Error>,
}

impl CaptureError {
    pub(crate) fn new(
        kind: CaptureErrorKind,
        offset: Option<u64>,
        record: Option<u64>,
        message: String,
    ) -> Self {
        CaptureError {
            kind,
            offset,
            record,
            message,
            io: None,
        }
    }

    pub(crate) fn with_io(mut self, err: io::Error) -> Self {
        self.io = Some(err);
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> CaptureErrorKind {
        self.kind
    }

    /// Byte offset in the (decompressed) capture stream where the failure was
    /// detected: the start of the offending record for format errors, the
    /// position reached for I/O and truncation errors. For the writer, the
    /// number of uncompressed bytes written before the failing call.
    pub fn offset(&self) -> Option<u64> {
        self.offset
    }

    /// Zero-based index of the record being read or written when the failure
    /// happened; equals the number of records successfully handled before it.
    pub fn record(&self) -> Option<u64> {
        self.record
    }

    /// The underlying I/O error, if this error came from one.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.io.as_ref()
    }
}
