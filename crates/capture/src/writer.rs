//! Capture writer.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::error::{CaptureError, CaptureErrorKind};
use crate::{
    is_cbor_map_head, CaptureFormat, Compression, DEFAULT_MAX_FRAME_LEN, DEFAULT_MAX_LINE_LEN,
    DEFAULT_ZSTD_LEVEL,
};

/// Settings for [`CaptureWriter`].
///
/// The limits default to the reader's, so that everything written can be
/// read back with [`crate::ReaderOptions::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterOptions {
    /// zstd compression level (1..=22; 0 means zstd's default). Only used
    /// with [`Compression::Zstd`]. Default [`DEFAULT_ZSTD_LEVEL`].
    pub zstd_level: i32,
    /// Largest relay frame accepted by [`CaptureWriter::write_frame`], in
    /// bytes (capped at `u32::MAX` by the format). Default
    /// [`DEFAULT_MAX_FRAME_LEN`].
    pub max_frame_len: usize,
    /// Longest line accepted by [`CaptureWriter::write_line`], in bytes.
    /// Default [`DEFAULT_MAX_LINE_LEN`].
    pub max_line_len: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            zstd_level: DEFAULT_ZSTD_LEVEL,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_line_len: DEFAULT_MAX_LINE_LEN,
        }
    }
}

impl WriterOptions {
    /// The default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`zstd_level`](Self::zstd_level).
    pub fn with_zstd_level(mut self, level: i32) -> Self {
        self.zstd_level = level;
        self
    }

    /// Sets [`max_frame_len`](Self::max_frame_len).
    pub fn with_max_frame_len(mut self, max: usize) -> Self {
        self.max_frame_len = max;
        self
    }

    /// Sets [`max_line_len`](Self::max_line_len).
    pub fn with_max_line_len(mut self, max: usize) -> Self {
        self.max_line_len = max;
        self
    }
}

enum Sink<W: Write> {
    Plain(W),
    Zstd(Box<zstd::stream::write::Encoder<'static, W>>),
}

impl<W: Write> Sink<W> {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Plain(w) => w,
            Sink::Zstd(e) => e.as_mut(),
        }
    }

    /// Ends the zstd stream (if any) and flushes; returns the inner writer.
    fn finish(self) -> io::Result<W> {
        let mut w = match self {
            Sink::Plain(w) => w,
            Sink::Zstd(e) => e.finish()?,
        };
        w.flush()?;
        Ok(w)
    }
}

/// Writes a capture file record by record.
///
/// Every record is validated so that [`crate::CaptureReader`] reads the
/// file back byte-identically: relay frames must be non-empty, within
/// [`WriterOptions::max_frame_len`], and start with a CBOR map head; JSON
/// lines must start (after optional whitespace) with `{`, contain no `\n`,
/// not end in `\r`, and fit [`WriterOptions::max_line_len`]. A rejected
/// record writes nothing.
///
/// Call [`finish`](Self::finish) at the end: it ends the zstd stream and
/// flushes, reporting errors. Dropping the writer without it does the same
/// on a best-effort basis, ignoring errors. After an I/O error while writing
/// a record, the file may end in a partial record, and every later write
/// fails.
pub struct CaptureWriter<W: Write> {
    /// `None` only once `finish` has taken it.
    sink: Option<Sink<W>>,
    format: CaptureFormat,
    compression: Compression,
    options: WriterOptions,
    records: u64,
    bytes: u64,
    failed: bool,
}

impl<W: Write> std::fmt::Debug for CaptureWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureWriter")
            .field("format", &self.format)
            .field("compression", &self.compression)
            .field("options", &self.options)
            .field("records", &self.records)
            .field("bytes", &self.bytes)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl CaptureWriter<BufWriter<File>> {
    /// Creates (or truncates) the file at `path` and writes a capture to it
    /// through a [`BufWriter`], with default options.
    pub fn create(
        path: impl AsRef<Path>,
        format: CaptureFormat,
        compression: Compression,
    ) -> Result<Self, CaptureError> {
        Self::create_with_options(path, format, compression, WriterOptions::default())
    }

    /// Like [`create`](Self::create), with the given options.
    pub fn create_with_options(
        path: impl AsRef<Path>,
        format: CaptureFormat,
        compression: Compression,
        options: WriterOptions,
    ) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|e| {
            CaptureError::new(
                CaptureErrorKind::Io,
                None,
                None,
                format!("cannot create capture file {}: {e}", path.display()),
            )
            .with_io(e)
        })?;
        Self::with_options(BufWriter::new(file), format, compression, options)
    }
}

impl<W: Write> CaptureWriter<W> {
    /// Starts a capture of `format` on `writer`, compressed with zstd at
    /// level [`DEFAULT_ZSTD_LEVEL`] if asked. Nothing is written until the
    /// first record (there is no file header).
    pub fn new(
        writer: W,
        format: CaptureFormat,
        compression: Compression,
    ) -> Result<Self, CaptureError> {
        Self::with_options(writer, format, compression, WriterOptions::default())
    }

    /// Like [`new`](Self::new), with the given options.
    pub fn with_options(
        writer: W,
        format: CaptureFormat,
        compression: Compression,
        options: WriterOptions,
    ) -> Result<Self, CaptureError> {
        let sink = match compression {
            Compression::None => Sink::Plain(writer),
            Compression::Zstd => {
                let start = |e: io::Error| {
                    CaptureError::new(
                        CaptureErrorKind::Io,
                        Some(0),
                        Some(0),
                        format!(
                            "cannot start zstd compression at level {}: {e}",
                            options.zstd_level
                        ),
                    )
                    .with_io(e)
                };
                let mut encoder =
                    zstd::stream::write::Encoder::new(writer, options.zstd_level).map_err(start)?;
                // A content checksum lets readers tell corruption from data.
                encoder.include_checksum(true).map_err(start)?;
                Sink::Zstd(Box::new(encoder))
            }
        };
        Ok(CaptureWriter {
            sink: Some(sink),
            format,
            compression,
            options,
            records: 0,
            bytes: 0,
            failed: false,
        })
    }

    /// The payload format being written.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// The compression being applied.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The options in force.
    pub fn options(&self) -> &WriterOptions {
        &self.options
    }

    /// Records written so far.
    pub fn records_written(&self) -> u64 {
        self.records
    }

    /// Uncompressed bytes written so far (length prefixes and newlines
    /// included); the offset the next record will have when read back.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Appends one raw relay frame as `[u32 LE length][frame]`.
    ///
    /// Errors: [`CaptureErrorKind::WrongFormat`] on a JSON-lines writer,
    /// [`CaptureErrorKind::EmptyFrame`], [`CaptureErrorKind::FrameTooLarge`]
    /// (over [`WriterOptions::max_frame_len`] or `u32::MAX`),
    /// [`CaptureErrorKind::InvalidFrame`] (first byte not a CBOR map head),
    /// and [`CaptureErrorKind::Io`].
    pub fn write_frame(&mut self, frame: &[u8]) -> Result<(), CaptureError> {
        self.expect_format(CaptureFormat::RelayFrames, "write_frame")?;
        let Some(&first) = frame.first() else {
            return Err(self.invalid(
                CaptureErrorKind::EmptyFrame,
                "cannot write an empty frame".to_owned(),
            ));
        };
        let len = match u32::try_from(frame.len()) {
            Ok(len) if frame.len() <= self.options.max_frame_len => len,
            _ => {
                return Err(self.invalid(
                    CaptureErrorKind::FrameTooLarge,
                    format!(
                        "cannot write a {}-byte frame: the maximum is {} bytes",
                        frame.len(),
                        self.options.max_frame_len.min(u32::MAX as usize)
                    ),
                ))
            }
        };
        if !is_cbor_map_head(first) {
            return Err(self.invalid(
                CaptureErrorKind::InvalidFrame,
                format!(
                    "cannot write a frame starting with byte 0x{first:02x}: a relay frame starts \
                     with a CBOR map head (0xa0..=0xbf)"
                ),
            ));
        }
        self.write_parts(&[&len.to_le_bytes(), frame])
    }

    /// Appends one JSON line followed by `\n`.
    ///
    /// Errors: [`CaptureErrorKind::WrongFormat`] on a relay-frames writer,
    /// [`CaptureErrorKind::InvalidLine`] (blank, contains `\n`, ends in
    /// `\r`, or does not start with `{` after optional whitespace),
    /// [`CaptureErrorKind::LineTooLong`], and [`CaptureErrorKind::Io`].
    pub fn write_line(&mut self, line: &str) -> Result<(), CaptureError> {
        self.write_line_bytes(line.as_bytes())
    }

    /// Like [`write_line`](Self::write_line) for a line given as bytes (as
    /// returned by [`crate::Record::data`]); the bytes are not checked to be
    /// UTF-8.
    pub fn write_line_bytes(&mut self, line: &[u8]) -> Result<(), CaptureError> {
        self.expect_format(CaptureFormat::JetstreamJson, "write_line")?;
        if line.len() > self.options.max_line_len {
            return Err(self.invalid(
                CaptureErrorKind::LineTooLong,
                format!(
                    "cannot write a {}-byte line: the maximum is {} bytes",
                    line.len(),
                    self.options.max_line_len
                ),
            ));
        }
        let problem = if let Some(i) = line.iter().position(|&b| b == b'\n') {
            Some(format!("it contains a newline at byte {i}"))
        } else if line.last() == Some(&b'\r') {
            Some("it ends in '\\r'".to_owned())
        } else {
            match line.iter().find(|b| !b.is_ascii_whitespace()) {
                None => Some("it is blank".to_owned()),
                Some(b'{') => None,
                Some(_) => Some("it does not start with '{' (a JSON object)".to_owned()),
            }
        };
        if let Some(problem) = problem {
            return Err(self.invalid(
                CaptureErrorKind::InvalidLine,
                format!("cannot write JSON line: {problem}"),
            ));
        }
        self.write_parts(&[line, b"\n"])
    }

    /// Appends one record in the writer's format: [`write_frame`] for relay
    /// frames, [`write_line_bytes`] for JSON lines. Copies a
    /// [`crate::Record`] from a reader of the same format.
    ///
    /// [`write_frame`]: Self::write_frame
    /// [`write_line_bytes`]: Self::write_line_bytes
    pub fn write_record(&mut self, data: &[u8]) -> Result<(), CaptureError> {
        match self.format {
            CaptureFormat::RelayFrames => self.write_frame(data),
            CaptureFormat::JetstreamJson => self.write_line_bytes(data),
        }
    }

    /// Flushes everything written so far to the underlying writer (for zstd,
    /// ends the current block so a concurrent reader can decode it; frequent
    /// flushes cost compression ratio).
    pub fn flush(&mut self) -> Result<(), CaptureError> {
        self.check_usable()?;
        let result = match self.sink.as_mut() {
            Some(sink) => sink.writer().flush(),
            None => Ok(()),
        };
        result.map_err(|e| {
            self.failed = true;
            self.io_failure(e, "flushing")
        })
    }

    /// The underlying writer (e.g. to `sync_data` the file after [`flush`](Self::flush), so
    /// everything written so far survives a crash). `None` once finished.
    pub fn get_ref(&self) -> Option<&W> {
        match self.sink.as_ref()? {
            Sink::Plain(w) => Some(w),
            Sink::Zstd(e) => Some(e.get_ref()),
        }
    }

    /// Ends the capture (completing the zstd stream), flushes, and returns
    /// the underlying writer. Also finishes a writer that failed earlier, so
    /// the records written before the failure stay readable.
    pub fn finish(mut self) -> Result<W, CaptureError> {
        let Some(sink) = self.sink.take() else {
            return Err(CaptureError::new(
                CaptureErrorKind::Io,
                Some(self.bytes),
                Some(self.records),
                "capture writer already finished".to_owned(),
            ));
        };
        sink.finish().map_err(|e| self.io_failure(e, "finishing"))
    }

    fn expect_format(&self, wanted: CaptureFormat, call: &str) -> Result<(), CaptureError> {
        if self.format == wanted {
            Ok(())
        } else {
            Err(self.invalid(
                CaptureErrorKind::WrongFormat,
                format!("{call} called on a capture writer for {}", self.format),
            ))
        }
    }

    fn check_usable(&self) -> Result<(), CaptureError> {
        if self.failed {
            Err(CaptureError::new(
                CaptureErrorKind::Io,
                Some(self.bytes),
                Some(self.records),
                "capture writer is unusable after an earlier I/O error".to_owned(),
            ))
        } else {
            Ok(())
        }
    }

    fn write_parts(&mut self, parts: &[&[u8]]) -> Result<(), CaptureError> {
        self.check_usable()?;
        let mut result = Ok(());
        if let Some(sink) = self.sink.as_mut() {
            let w = sink.writer();
            for part in parts {
                result = w.write_all(part);
                if result.is_err() {
                    break;
                }
            }
        }
        if let Err(e) = result {
            self.failed = true;
            return Err(self.io_failure(e, "writing"));
        }
        self.records += 1;
        self.bytes += parts.iter().map(|p| p.len() as u64).sum::<u64>();
        Ok(())
    }

    fn invalid(&self, kind: CaptureErrorKind, message: String) -> CaptureError {
        CaptureError::new(
            kind,
            Some(self.bytes),
            Some(self.records),
            format!("{message} (record {})", self.records),
        )
    }

    fn io_failure(&self, e: io::Error, doing: &str) -> CaptureError {
        CaptureError::new(
            CaptureErrorKind::Io,
            Some(self.bytes),
            Some(self.records),
            format!(
                "I/O error {doing} capture at offset {} (record {}): {e}",
                self.bytes, self.records
            ),
        )
        .with_io(e)
    }
}

impl<W: Write> Drop for CaptureWriter<W> {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            // Best effort; `finish` is the way to see errors.
            let _ = sink.finish();
        }
    }
}
