//! Streaming capture reader with format detection.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};
use std::iter::FusedIterator;
use std::path::Path;
use std::str::Utf8Error;

use crate::error::{CaptureError, CaptureErrorKind};
use crate::{
    is_cbor_map_head, CaptureFormat, Compression, DEFAULT_MAX_FRAME_LEN, DEFAULT_MAX_LINE_LEN,
    ZSTD_MAGIC,
};

/// Capacity of the buffer over the decompressed stream.
const BUF_CAPACITY: usize = 64 * 1024;

/// How far format detection looks for the first non-whitespace byte.
const PEEK_LIMIT: usize = 64 * 1024;

/// Bytes format detection needs for the relay-frame test: a 4-byte length
/// prefix and the first byte of the frame.
const RELAY_PEEK: usize = 5;

/// Limits applied by [`CaptureReader`].
///
/// ```
/// use skystream_capture::ReaderOptions;
///
/// let options = ReaderOptions::default().with_max_frame_len(1 << 20);
/// assert_eq!(options.max_frame_len, 1 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaderOptions {
    /// Largest relay frame accepted, in bytes; a larger length prefix is a
    /// [`CaptureErrorKind::FrameTooLarge`] error, raised before any memory is
    /// allocated for the frame. Also bounds format detection's length test.
    /// Default [`DEFAULT_MAX_FRAME_LEN`].
    pub max_frame_len: usize,
    /// Longest JSON line accepted, in bytes, not counting its `\n` or `\r\n`
    /// terminator; a longer one is a [`CaptureErrorKind::LineTooLong`] error,
    /// raised without buffering more than this. Default
    /// [`DEFAULT_MAX_LINE_LEN`].
    pub max_line_len: usize,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_line_len: DEFAULT_MAX_LINE_LEN,
        }
    }
}

impl ReaderOptions {
    /// The default options.
    pub fn new() -> Self {
        Self::default()
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

/// One record borrowed from a [`CaptureReader`]'s internal buffer; valid
/// until the next call to [`CaptureReader::next_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    data: &'a [u8],
    offset: u64,
    index: u64,
}

impl<'a> Record<'a> {
    /// The record's bytes: a whole raw relay frame (without its length
    /// prefix), or one JSON line (without its `\n` / `\r\n` terminator).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Byte offset of the record in the decompressed capture stream: where
    /// its length prefix starts (relay frames; the frame itself starts 4
    /// bytes later) or where its line starts (JSON lines).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Zero-based index of the record in the capture (blank JSON lines are
    /// not records and are not counted).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The bytes as UTF-8 text (JSON lines are UTF-8; relay frames are not).
    pub fn as_str(&self) -> Result<&'a str, Utf8Error> {
        std::str::from_utf8(self.data)
    }

    /// Copies the record out of the reader's buffer.
    pub fn into_owned(self) -> OwnedRecord {
        OwnedRecord {
            data: self.data.to_vec(),
            offset: self.offset,
            index: self.index,
        }
    }
}

/// A record copied out of a [`CaptureReader`], as yielded by [`Records`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnedRecord {
    data: Vec<u8>,
    offset: u64,
    index: u64,
}

impl OwnedRecord {
    /// The record's bytes (see [`Record::data`]).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Takes the record's bytes.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// Byte offset in the decompressed stream (see [`Record::offset`]).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Zero-based record index (see [`Record::index`]).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The bytes as UTF-8 text.
    pub fn as_str(&self) -> Result<&str, Utf8Error> {
        std::str::from_utf8(&self.data)
    }

    /// Borrows this record as a [`Record`].
    pub fn as_record(&self) -> Record<'_> {
        Record {
            data: &self.data,
            offset: self.offset,
            index: self.index,
        }
    }
}

/// The raw input with the bytes already read for zstd detection put back.
type Prefixed<R> = Chain<Cursor<Vec<u8>>, R>;

/// The payload stream: the input as is, or decompressed.
enum Decompressed<R: Read> {
    Plain(Prefixed<R>),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<Prefixed<R>>>>),
}

impl<R: Read> Read for Decompressed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decompressed::Plain(r) => r.read(buf),
            Decompressed::Zstd(d) => d.read(buf),
        }
    }
}

/// Streaming reader of a capture file.
///
/// [`new`](Self::new) (or [`open`](Self::open)) detects the compression and
/// the format from the content; [`next_record`](Self::next_record) then
/// yields one record at a time from a reusable buffer, never holding more
/// than one record (plus fixed-size I/O buffers) in memory. Offsets are in
/// the decompressed stream.
///
/// After an error, or once the end is reached, `next_record` returns
/// `Ok(None)`: a truncated or corrupt capture reports its error once, after
/// every valid record before it.
pub struct CaptureReader<R: Read> {
    input: BufReader<Chain<Cursor<Vec<u8>>, Decompressed<R>>>,
    format: CaptureFormat,
    compression: Compression,
    options: ReaderOptions,
    /// Bytes of the decompressed stream consumed so far.
    offset: u64,
    /// Records returned so far.
    records: u64,
    done: bool,
    buf: Vec<u8>,
}

impl<R: Read> std::fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("format", &self.format)
            .field("compression", &self.compression)
            .field("options", &self.options)
            .field("offset", &self.offset)
            .field("records", &self.records)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Largest zstd window accepted (2^25 = 32 MiB): above every level's default, including
/// level 19, yet a bound on what a crafted frame header can make the reader allocate.
pub const MAX_ZSTD_WINDOW_LOG: u32 = 25;

impl CaptureReader<File> {
    /// Opens the capture file at `path` with default options and detects its
    /// compression and format.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        Self::open_with_options(path, ReaderOptions::default())
    }

    /// Opens the capture file at `path` with the given options.
    pub fn open_with_options(
        path: impl AsRef<Path>,
        options: ReaderOptions,
    ) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| {
            CaptureError::new(
                CaptureErrorKind::Io,
                None,
                None,
                format!("cannot open capture file {}: {e}", path.display()),
            )
            .with_io(e)
        })?;
        Self::with_options(file, options)
    }
}

impl<R: Read> CaptureReader<R> {
    /// Wraps `reader` with default options, reading just enough of it to
    /// detect the compression and the format.
    pub fn new(reader: R) -> Result<Self, CaptureError> {
        Self::with_options(reader, ReaderOptions::default())
    }

    /// Wraps `reader` with the given options, reading just enough of it to
    /// detect the compression and the format.
    ///
    /// Errors: [`CaptureErrorKind::Empty`] for an empty capture,
    /// [`CaptureErrorKind::UnknownFormat`] for anything that is neither
    /// relay frames nor JSON lines, and the read errors of
    /// [`next_record`](Self::next_record).
    pub fn with_options(mut reader: R, options: ReaderOptions) -> Result<Self, CaptureError> {
        let mut magic = [0u8; 4];
        let (n, err) = read_up_to(&mut reader, &mut magic);
        if let Some(e) = err {
            return Err(CaptureError::new(
                CaptureErrorKind::Io,
                Some(0),
                Some(0),
                format!("I/O error reading the start of the capture: {e}"),
            )
            .with_io(e));
        }
        if n == 0 {
            return Err(CaptureError::new(
                CaptureErrorKind::Empty,
                Some(0),
                Some(0),
                "capture file is empty".to_owned(),
            ));
        }
        let compression = if magic == ZSTD_MAGIC {
            Compression::Zstd
        } else {
            Compression::None
        };
        let prefixed = Cursor::new(magic[..n].to_vec()).chain(reader);
        let mut source = match compression {
            Compression::None => Decompressed::Plain(prefixed),
            // A zstd frame header chooses the decoder's window size; cap it so a hostile file
            // cannot make the reader allocate more than MAX_ZSTD_WINDOW_LOG allows.
            Compression::Zstd => match zstd::stream::read::Decoder::new(prefixed)
                .and_then(|mut d| d.window_log_max(MAX_ZSTD_WINDOW_LOG).map(|()| d))
            {
                Ok(d) => Decompressed::Zstd(Box::new(d)),
                Err(e) => {
                    return Err(CaptureError::new(
                        CaptureErrorKind::Io,
                        Some(0),
                        Some(0),
                        format!("cannot start zstd decompression: {e}"),
                    )
                    .with_io(e))
                }
            },
        };

        let mut peek = Vec::new();
        let format = detect(&mut source, &mut peek, &options, compression)?;
        Ok(CaptureReader {
            input: BufReader::with_capacity(BUF_CAPACITY, Cursor::new(peek).chain(source)),
            format,
            compression,
            options,
            offset: 0,
            records: 0,
            done: false,
            buf: Vec::new(),
        })
    }

    /// The detected payload format.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// The detected whole-file compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The options in force.
    pub fn options(&self) -> &ReaderOptions {
        &self.options
    }

    /// Bytes of the decompressed stream consumed so far (the offset the next
    /// record would start at, blank lines aside).
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// Records returned so far.
    pub fn records_read(&self) -> u64 {
        self.records
    }

    /// Reads the next record, or `Ok(None)` at the clean end of the capture
    /// (and after any error). The record borrows the reader's buffer.
    ///
    /// Errors: [`CaptureErrorKind::Truncated`] if the capture ends inside a
    /// record (relay frames: inside a length prefix or a frame; zstd: inside
    /// the compressed stream), [`CaptureErrorKind::FrameTooLarge`],
    /// [`CaptureErrorKind::EmptyFrame`], [`CaptureErrorKind::InvalidFrame`],
    /// [`CaptureErrorKind::LineTooLong`], [`CaptureErrorKind::Decompress`] and
    /// [`CaptureErrorKind::Io`]. A JSON capture's final line needs no `\n`.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let result = match self.format {
            CaptureFormat::RelayFrames => self.read_frame(),
            CaptureFormat::JetstreamJson => self.read_line(),
        };
        match result {
            Ok(Some((start, end, offset))) => {
                let index = self.records;
                self.records += 1;
                Ok(Some(Record {
                    data: &self.buf[start..end],
                    offset,
                    index,
                }))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    /// Turns the reader into an iterator of owned records (one copy per
    /// record). It ends after the first error.
    pub fn into_records(self) -> Records<R> {
        Records { reader: self }
    }

    /// Reads one relay frame into `self.buf`; returns the data range and the
    /// record offset.
    fn read_frame(&mut self) -> Result<Option<(usize, usize, u64)>, CaptureError> {
        let start = self.offset;
        let index = self.records;
        let mut prefix = [0u8; 4];
        let (got, err) = read_up_to(&mut self.input, &mut prefix);
        self.offset += got as u64;
        if let Some(e) = err {
            let place = if got == 0 {
                format!("at offset {start}, before record {index}")
            } else {
                format!(
                    "{got} bytes into the 4-byte length prefix at offset {start} (record {index})"
                )
            };
            return Err(self.read_error(e, start + got as u64, &place));
        }
        match got {
            0 => return Ok(None),
            4 => {}
            _ => {
                return Err(self.truncated_eof(
                    start + got as u64,
                    &format!(
                    "{got} bytes into the 4-byte length prefix at offset {start} (record {index})"
                ),
                ))
            }
        }

        let len = u32::from_le_bytes(prefix);
        if len == 0 {
            return Err(CaptureError::new(
                CaptureErrorKind::EmptyFrame,
                Some(start),
                Some(index),
                format!("zero-length frame at offset {start} (record {index})"),
            ));
        }
        if u64::from(len) > self.options.max_frame_len as u64 {
            return Err(CaptureError::new(
                CaptureErrorKind::FrameTooLarge,
                Some(start),
                Some(index),
                format!(
                    "frame at offset {start} (record {index}) declares {len} bytes, more than the \
                     maximum of {} bytes",
                    self.options.max_frame_len
                ),
            ));
        }

        self.buf.clear();
        // Grows with the data actually present, so a lying length prefix on a
        // short file costs no more memory than the file.
        let res = (&mut self.input)
            .take(u64::from(len))
            .read_to_end(&mut self.buf);
        let got = self.buf.len();
        self.offset += got as u64;
        let place =
            format!("{got} bytes into a {len}-byte frame at offset {start} (record {index})");
        if let Err(e) = res {
            return Err(self.read_error(e, self.offset, &place));
        }
        if got < len as usize {
            return Err(self.truncated_eof(self.offset, &place));
        }
        let first = self.buf[0];
        if !is_cbor_map_head(first) {
            return Err(CaptureError::new(
                CaptureErrorKind::InvalidFrame,
                Some(start),
                Some(index),
                format!(
                    "frame at offset {start} (record {index}) starts with byte 0x{first:02x}, not \
                     a CBOR map head (0xa0..=0xbf); the length prefixes are probably out of step \
                     with the data"
                ),
            ));
        }
        Ok(Some((0, got, start)))
    }

    /// Reads the next non-blank line into `self.buf`; returns the data range
    /// (terminator stripped) and the record offset.
    fn read_line(&mut self) -> Result<Option<(usize, usize, u64)>, CaptureError> {
        let max = self.options.max_line_len;
        loop {
            let start = self.offset;
            let index = self.records;
            self.buf.clear();
            let mut terminated = false;
            loop {
                let available = match self.input.fill_buf() {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let place = format!("inside the line at offset {start} (record {index})");
                        let at = self.offset;
                        return Err(self.read_error(e, at, &place));
                    }
                };
                if available.is_empty() {
                    break;
                }
                let (take, found) = match available.iter().position(|&b| b == b'\n') {
                    Some(i) => (i, true),
                    None => (available.len(), false),
                };
                // One byte of slack for a `\r` that will be stripped.
                if self.buf.len() + take > max.saturating_add(1) {
                    return Err(self.line_too_long(start, index));
                }
                self.buf.extend_from_slice(&available[..take]);
                let consumed = take + usize::from(found);
                self.input.consume(consumed);
                self.offset += consumed as u64;
                if found {
                    terminated = true;
                    break;
                }
            }
            if !terminated && self.buf.is_empty() {
                return Ok(None);
            }
            let mut end = self.buf.len();
            if end > 0 && self.buf[end - 1] == b'\r' {
                end -= 1;
            }
            if end > max {
                return Err(self.line_too_long(start, index));
            }
            if self.buf[..end].iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some((0, end, start)));
        }
    }

    fn line_too_long(&self, start: u64, index: u64) -> CaptureError {
        CaptureError::new(
            CaptureErrorKind::LineTooLong,
            Some(start),
            Some(index),
            format!(
                "line at offset {start} (record {index}) is longer than the maximum of {} bytes",
                self.options.max_line_len
            ),
        )
    }

    /// The payload ended (clean EOF of the decompressed stream) inside a
    /// record described by `place`.
    fn truncated_eof(&self, at: u64, place: &str) -> CaptureError {
        CaptureError::new(
            CaptureErrorKind::Truncated,
            Some(at),
            Some(self.records),
            format!(
                "truncated capture: file ends {place}; {}",
                records_before(self.records)
            ),
        )
    }

    /// Classifies an error from the decompressed stream.
    fn read_error(&self, err: io::Error, at: u64, place: &str) -> CaptureError {
        classify_read_error(err, self.compression, at, self.records, place)
    }
}

/// Iterator of owned records, from [`CaptureReader::into_records`] or
/// `IntoIterator`. Yields each record, then at most one error, then ends.
#[derive(Debug)]
pub struct Records<R: Read> {
    reader: CaptureReader<R>,
}

impl<R: Read> Records<R> {
    /// The underlying reader (for its format, position, ...).
    pub fn reader(&self) -> &CaptureReader<R> {
        &self.reader
    }
}

impl<R: Read> Iterator for Records<R> {
    type Item = Result<OwnedRecord, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.reader.next_record() {
            Ok(Some(record)) => Some(Ok(record.into_owned())),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

impl<R: Read> FusedIterator for Records<R> {}

impl<R: Read> IntoIterator for CaptureReader<R> {
    type Item = Result<OwnedRecord, CaptureError>;
    type IntoIter = Records<R>;

    fn into_iter(self) -> Records<R> {
        self.into_records()
    }
}

/// "the N records before it were read", with the grammar right.
fn records_before(n: u64) -> String {
    match n {
        0 => "no record before it was complete".to_owned(),
        1 => "the 1 record before it was read".to_owned(),
        n => format!("the {n} records before it were read"),
    }
}

/// Maps an error from the (possibly decompressing) payload stream:
/// a zstd stream cut short is `Truncated`, other zstd failures are
/// `Decompress`, anything else is `Io`.
fn classify_read_error(
    err: io::Error,
    compression: Compression,
    at: u64,
    record: u64,
    place: &str,
) -> CaptureError {
    let (kind, message) = match (compression, err.kind()) {
        (Compression::Zstd, io::ErrorKind::UnexpectedEof) => (
            CaptureErrorKind::Truncated,
            format!(
                "truncated capture: the zstd stream is cut off {place} ({err}); {}",
                records_before(record)
            ),
        ),
        (Compression::Zstd, io::ErrorKind::Other) => (
            CaptureErrorKind::Decompress,
            format!(
                "corrupt zstd stream {place}: {err}; {}",
                records_before(record)
            ),
        ),
        _ => (
            CaptureErrorKind::Io,
            format!("I/O error reading capture {place}: {err}"),
        ),
    };
    CaptureError::new(kind, Some(at), Some(record), message).with_io(err)
}

/// Reads until `buf` is full, EOF, or an error; returns the bytes read and
/// the error, if any. Retries on `Interrupted`.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

/// Reads the start of the payload into `peek` and decides the format.
fn detect<R: Read>(
    source: &mut Decompressed<R>,
    peek: &mut Vec<u8>,
    options: &ReaderOptions,
    compression: Compression,
) -> Result<CaptureFormat, CaptureError> {
    let mut chunk = [0u8; 4096];
    let mut eof = false;
    loop {
        let enough = peek.len() >= RELAY_PEEK && peek.iter().any(|b| !b.is_ascii_whitespace());
        if enough || peek.len() >= PEEK_LIMIT {
            break;
        }
        match source.read(&mut chunk) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(k) => peek.extend_from_slice(&chunk[..k]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let at = peek.len() as u64;
                return Err(classify_read_error(
                    e,
                    compression,
                    at,
                    0,
                    &format!("at decompressed offset {at}, before the first record"),
                ));
            }
        }
    }

    if peek.is_empty() {
        let message = match compression {
            Compression::None => "capture file is empty",
            Compression::Zstd => "capture file is empty: its zstd stream decompresses to nothing",
        };
        return Err(CaptureError::new(
            CaptureErrorKind::Empty,
            Some(0),
            Some(0),
            message.to_owned(),
        ));
    }
    // The relay test goes first: it is strict (length in 1..=max, then a
    // CBOR map head, which is a UTF-8 continuation byte and so cannot follow
    // the NUL a small length's high byte must be), so it never matches JSON
    // text, whereas a frame length whose low byte is 0x7b would pass the
    // JSON test.
    if peek.len() >= RELAY_PEEK {
        let len = u32::from_le_bytes([peek[0], peek[1], peek[2], peek[3]]);
        if len > 0 && u64::from(len) <= options.max_frame_len as u64 && is_cbor_map_head(peek[4]) {
            return Ok(CaptureFormat::RelayFrames);
        }
    }
    match peek.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(CaptureFormat::JetstreamJson),
        None if eof => Err(CaptureError::new(
            CaptureErrorKind::Empty,
            Some(0),
            Some(0),
            "capture file is empty: it contains only whitespace".to_owned(),
        )),
        _ => Err(CaptureError::new(
            CaptureErrorKind::UnknownFormat,
            Some(0),
            Some(0),
            "unrecognized capture format: expected relay frames ([u32 LE length][frame]) or \
             Jetstream JSON lines, optionally zstd-compressed"
                .to_owned(),
        )),
    }
}
