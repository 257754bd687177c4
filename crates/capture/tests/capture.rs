//! Reads the shared relay corpus, round-trips it through the writer, and
//! feeds the reader hostile input.

use std::fs::File;
use std::io::{self, BufWriter, Read};

use proptest::prelude::*;
use skystream_capture::{
    CaptureError, CaptureErrorKind, CaptureFormat, CaptureReader, CaptureWriter, Compression,
    OwnedRecord, ReaderOptions, WriterOptions,
};

const FRAMES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/relay-corpus/frames.bin.zst"
);
const JSONL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/relay-corpus/expected_v1.jsonl"
);

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Reads every record, returning them and the error that ended the read, if
/// any.
fn read_all_from(mut reader: CaptureReader<impl Read>) -> (Vec<OwnedRecord>, Option<CaptureError>) {
    let mut records = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(r)) => records.push(r.into_owned()),
            Ok(None) => return (records, None),
            Err(e) => {
                // Fused after an error.
                assert!(matches!(reader.next_record(), Ok(None)));
                return (records, Some(e));
            }
        }
    }
}

fn corpus_frames() -> Result<Vec<Vec<u8>>, CaptureError> {
    CaptureReader::open(FRAMES)?
        .into_records()
        .map(|r| r.map(OwnedRecord::into_data))
        .collect()
}

fn corpus_lines() -> Result<Vec<Vec<u8>>, CaptureError> {
    CaptureReader::open(JSONL)?
        .into_records()
        .map(|r| r.map(OwnedRecord::into_data))
        .collect()
}

/// A CBOR-ish frame: map head then filler.
fn frame(len: usize, fill: u8) -> Vec<u8> {
    let mut f = vec![fill; len];
    f[0] = 0xa2;
    f
}

fn relay_bytes(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

fn write_capture(
    format: CaptureFormat,
    compression: Compression,
    records: &[Vec<u8>],
) -> Result<Vec<u8>, CaptureError> {
    let mut w = CaptureWriter::new(Vec::new(), format, compression)?;
    for r in records {
        w.write_record(r)?;
    }
    w.finish()
}

fn zstd(bytes: &[u8]) -> io::Result<Vec<u8>> {
    zstd::stream::encode_all(bytes, 3)
}

fn open_err(bytes: &[u8]) -> CaptureError {
    match CaptureReader::new(bytes) {
        Ok(r) => panic!("expected an error, got a {:?} reader", r.format()),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------- corpus

#[test]
fn corpus_relay_frames() -> TestResult {
    let mut reader = CaptureReader::open(FRAMES)?;
    assert_eq!(reader.format(), CaptureFormat::RelayFrames);
    assert_eq!(reader.compression(), Compression::Zstd);
    let mut count = 0u64;
    let mut expected_offset = 0u64;
    while let Some(record) = reader.next_record()? {
        assert_eq!(record.index(), count);
        assert_eq!(record.offset(), expected_offset);
        let first = record.data()[0];
        assert!(
            (0xa0..=0xbf).contains(&first),
            "record {count}: 0x{first:02x}"
        );
        expected_offset += 4 + record.data().len() as u64;
        count += 1;
    }
    assert_eq!(count, 150);
    assert_eq!(reader.records_read(), 150);
    assert_eq!(reader.position(), expected_offset);
    Ok(())
}

#[test]
fn corpus_jetstream_lines() -> TestResult {
    let mut reader = CaptureReader::open(JSONL)?;
    assert_eq!(reader.format(), CaptureFormat::JetstreamJson);
    assert_eq!(reader.compression(), Compression::None);
    let mut count = 0;
    while let Some(record) = reader.next_record()? {
        let value: serde_json::Value = serde_json::from_slice(record.data())?;
        assert!(value.get("did").is_some(), "record {count} has no did");
        assert!(value.get("time_us").is_some());
        assert!(value.get("kind").is_some());
        assert!(!record.data().ends_with(b"\r"));
        count += 1;
    }
    assert_eq!(count, 152);
    Ok(())
}

#[test]
fn one_byte_at_a_time_reader() -> TestResult {
    /// Returns at most one byte per read, to exercise detection and framing
    /// across short reads.
    struct Trickle<R>(R);
    impl<R: Read> Read for Trickle<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }
    let expected = corpus_frames()?;
    let reader = CaptureReader::new(Trickle(File::open(FRAMES)?))?;
    let got: Vec<Vec<u8>> = reader
        .into_records()
        .map(|r| r.map(OwnedRecord::into_data))
        .collect::<Result<_, _>>()?;
    assert_eq!(got, expected);

    let expected = corpus_lines()?;
    let reader = CaptureReader::new(Trickle(File::open(JSONL)?))?;
    let got: Vec<Vec<u8>> = reader
        .into_records()
        .map(|r| r.map(OwnedRecord::into_data))
        .collect::<Result<_, _>>()?;
    assert_eq!(got, expected);
    Ok(())
}

// ---------------------------------------------------------------- round trips

#[test]
fn relay_round_trip_through_files() -> TestResult {
    let frames = corpus_frames()?;
    assert_eq!(frames.len(), 150);
    let dir = tempfile::tempdir()?;
    for compression in [Compression::None, Compression::Zstd] {
        let path = dir.path().join(format!("frames-{compression}.bin"));
        let mut w = CaptureWriter::create(&path, CaptureFormat::RelayFrames, compression)?;
        for f in &frames {
            w.write_frame(f)?;
        }
        assert_eq!(w.records_written(), 150);
        let bytes_written = w.bytes_written();
        w.finish()?;

        let mut reader = CaptureReader::open(&path)?;
        assert_eq!(reader.format(), CaptureFormat::RelayFrames);
        assert_eq!(reader.compression(), compression);
        let mut i = 0;
        while let Some(r) = reader.next_record()? {
            assert_eq!(r.data(), frames[i].as_slice(), "frame {i} ({compression})");
            i += 1;
        }
        assert_eq!(i, 150);
        assert_eq!(reader.position(), bytes_written);
    }

    // The uncompressed file is exactly the corpus payload, and the
    // compressed one decodes to it with the plain zstd decoder.
    let corpus_payload = zstd::stream::decode_all(File::open(FRAMES)?)?;
    let plain = std::fs::read(dir.path().join("frames-uncompressed.bin"))?;
    assert_eq!(plain, corpus_payload);
    let packed = std::fs::read(dir.path().join("frames-zstd.bin"))?;
    assert_eq!(&packed[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    assert_eq!(zstd::stream::decode_all(packed.as_slice())?, corpus_payload);
    Ok(())
}

#[test]
fn json_round_trip_through_files() -> TestResult {
    let lines = corpus_lines()?;
    assert_eq!(lines.len(), 152);
    let original = std::fs::read(JSONL)?;
    let dir = tempfile::tempdir()?;
    for compression in [Compression::None, Compression::Zstd] {
        let path = dir.path().join(format!("events-{compression}.jsonl"));
        let mut w = CaptureWriter::create(&path, CaptureFormat::JetstreamJson, compression)?;
        for line in &lines {
            w.write_line(std::str::from_utf8(line)?)?;
        }
        w.finish()?;

        let reader = CaptureReader::open(&path)?;
        assert_eq!(reader.format(), CaptureFormat::JetstreamJson);
        assert_eq!(reader.compression(), compression);
        let got: Vec<Vec<u8>> = reader
            .into_iter()
            .map(|r| r.map(OwnedRecord::into_data))
            .collect::<Result<_, _>>()?;
        assert_eq!(got, lines);

        let payload = match compression {
            Compression::None => std::fs::read(&path)?,
            Compression::Zstd => zstd::stream::decode_all(File::open(&path)?)?,
        };
        assert_eq!(payload, original);
    }
    Ok(())
}

/// The `zstd` command-line tool, an independent decoder, decompresses what the writer
/// produces, content checksum included.
#[test]
#[ignore = "needs the zstd command-line tool (apt-get install zstd)"]
fn zstd_cli_reads_written_captures() -> TestResult {
    let status = std::process::Command::new("zstd")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("this test needs the zstd command-line tool: {e}"))?;
    assert!(status.success());
    let frames = corpus_frames()?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("frames.bin.zst");
    let mut w = CaptureWriter::create(&path, CaptureFormat::RelayFrames, Compression::Zstd)?;
    for f in &frames {
        w.write_frame(f)?;
    }
    w.finish()?;
    let out = std::process::Command::new("zstd")
        .args(["-q", "-d", "-c", "--"])
        .arg(&path)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, relay_bytes(&frames));
    Ok(())
}

#[test]
fn in_memory_round_trip_offsets() -> TestResult {
    let frames = vec![frame(10, 1), frame(1, 0), frame(300, 7)];
    for compression in [Compression::None, Compression::Zstd] {
        let bytes = write_capture(CaptureFormat::RelayFrames, compression, &frames)?;
        let (records, err) = read_all_from(CaptureReader::new(bytes.as_slice())?);
        assert!(err.is_none());
        let offsets: Vec<u64> = records.iter().map(OwnedRecord::offset).collect();
        assert_eq!(offsets, [0, 14, 19]);
        let data: Vec<&[u8]> = records.iter().map(OwnedRecord::data).collect();
        assert_eq!(data, frames.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }
    Ok(())
}

#[test]
fn zstd_without_finish_is_still_completed_on_drop() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dropped.zst");
    {
        let mut w = CaptureWriter::create(&path, CaptureFormat::RelayFrames, Compression::Zstd)?;
        w.write_frame(&frame(20, 3))?;
        w.flush()?;
        w.write_frame(&frame(30, 4))?;
    }
    let (records, err) = read_all_from(CaptureReader::open(&path)?);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(records.len(), 2);
    Ok(())
}

#[test]
fn concatenated_zstd_streams_read_as_one_capture() -> TestResult {
    let a = write_capture(
        CaptureFormat::RelayFrames,
        Compression::Zstd,
        &[frame(8, 1)],
    )?;
    let b = write_capture(
        CaptureFormat::RelayFrames,
        Compression::Zstd,
        &[frame(9, 2), frame(10, 3)],
    )?;
    let joined = [a, b].concat();
    let (records, err) = read_all_from(CaptureReader::new(joined.as_slice())?);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].offset(), 12 + 13);
    Ok(())
}

#[test]
fn json_lines_crlf_blank_and_unterminated() -> TestResult {
    let input = b"\r\n  \n{\"a\":1}\r\n\n\t\n  {\"b\":2}\n{\"c\":3}";
    let mut reader = CaptureReader::new(&input[..])?;
    assert_eq!(reader.format(), CaptureFormat::JetstreamJson);
    let mut got = Vec::new();
    while let Some(r) = reader.next_record()? {
        got.push((r.as_str()?.to_owned(), r.offset(), r.index()));
    }
    assert_eq!(
        got,
        [
            ("{\"a\":1}".to_owned(), 5, 0),
            ("  {\"b\":2}".to_owned(), 17, 1),
            ("{\"c\":3}".to_owned(), 27, 2),
        ]
    );
    Ok(())
}

#[test]
fn frame_length_with_json_brace_low_byte_is_relay() -> TestResult {
    // 0x7b is '{': a JSON-first check would misdetect this file.
    let frames = vec![frame(0x7b, 0x20)];
    let bytes = relay_bytes(&frames);
    assert_eq!(bytes[0], b'{');
    let reader = CaptureReader::new(bytes.as_slice())?;
    assert_eq!(reader.format(), CaptureFormat::RelayFrames);
    let (records, err) = read_all_from(reader);
    assert!(err.is_none());
    assert_eq!(records.len(), 1);
    Ok(())
}

#[test]
fn records_iterator_yields_error_then_ends() -> TestResult {
    let mut bytes = relay_bytes(&[frame(6, 1), frame(6, 2)]);
    bytes.truncate(bytes.len() - 1);
    let mut records = CaptureReader::new(bytes.as_slice())?.into_records();
    assert!(matches!(records.next(), Some(Ok(_))));
    match records.next() {
        Some(Err(e)) => assert_eq!(e.kind(), CaptureErrorKind::Truncated),
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(records.next().is_none());
    assert!(records.next().is_none());
    Ok(())
}

#[test]
fn reader_and_writer_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<CaptureReader<File>>();
    assert_send::<CaptureWriter<BufWriter<File>>>();
    assert_send::<CaptureError>();
}

// ---------------------------------------------------------------- hostile input

#[test]
fn truncated_at_every_cut_point_uncompressed() -> TestResult {
    let frames = vec![frame(10, 1), frame(3, 2), frame(7, 3)];
    let full = relay_bytes(&frames);
    let boundaries = [0usize, 14, 21, 32];
    assert_eq!(full.len(), 32);
    for cut in 0..=full.len() {
        let bytes = &full[..cut];
        let reader = match CaptureReader::new(bytes) {
            Ok(r) => r,
            Err(e) => {
                // Too short to recognize: nothing, or less than a length
                // prefix plus one frame byte.
                assert!(cut < 5, "cut {cut}: {e}");
                // (The first length byte, 0x0a, is a newline: alone it
                // reads as a whitespace-only, hence empty, file.)
                let want = if cut <= 1 {
                    CaptureErrorKind::Empty
                } else {
                    CaptureErrorKind::UnknownFormat
                };
                assert_eq!(e.kind(), want, "cut {cut}");
                continue;
            }
        };
        let (records, err) = read_all_from(reader);
        let complete = boundaries.iter().filter(|&&b| b > 0 && b <= cut).count();
        assert_eq!(records.len(), complete, "cut {cut}");
        for (r, f) in records.iter().zip(&frames) {
            assert_eq!(r.data(), f.as_slice());
        }
        if boundaries.contains(&cut) {
            assert!(err.is_none(), "cut {cut}: {err:?}");
        } else {
            let err = err.ok_or_else(|| format!("cut {cut}: no error"))?;
            assert_eq!(err.kind(), CaptureErrorKind::Truncated, "cut {cut}: {err}");
            assert_eq!(err.record(), Some(complete as u64));
            assert_eq!(err.offset(), Some(cut as u64));
            assert!(err.to_string().starts_with("truncated capture: file ends "));
        }
    }
    Ok(())
}

#[test]
fn truncated_at_every_cut_point_zstd() -> TestResult {
    let frames = vec![frame(10, 1), frame(3, 2), frame(7, 3)];
    let full = write_capture(CaptureFormat::RelayFrames, Compression::Zstd, &frames)?;
    for cut in 0..full.len() {
        let bytes = &full[..cut];
        let reader = match CaptureReader::new(bytes) {
            Ok(r) => r,
            Err(e) => {
                let ok = match cut {
                    0 => e.kind() == CaptureErrorKind::Empty,
                    1..=3 => e.kind() == CaptureErrorKind::UnknownFormat,
                    _ => matches!(
                        e.kind(),
                        CaptureErrorKind::Truncated | CaptureErrorKind::Decompress
                    ),
                };
                assert!(ok, "cut {cut}: {:?} {e}", e.kind());
                continue;
            }
        };
        assert_eq!(reader.compression(), Compression::Zstd);
        let (records, err) = read_all_from(reader);
        for (r, f) in records.iter().zip(&frames) {
            assert_eq!(r.data(), f.as_slice());
        }
        let err = err.ok_or_else(|| format!("cut {cut}: no error"))?;
        assert!(
            matches!(
                err.kind(),
                CaptureErrorKind::Truncated | CaptureErrorKind::Decompress
            ),
            "cut {cut}: {:?} {err}",
            err.kind()
        );
    }
    // Cutting only the checksum / end of the stream is a truncation too.
    let (records, err) = read_all_from(CaptureReader::new(&full[..full.len() - 1])?);
    assert_eq!(records.len(), 3);
    let err = err.ok_or("no error")?;
    assert_eq!(err.kind(), CaptureErrorKind::Truncated);
    assert!(err.to_string().contains("zstd stream is cut off"), "{err}");
    Ok(())
}

#[test]
fn truncation_message_says_where() -> TestResult {
    let mut bytes = relay_bytes(&[frame(10, 1), frame(10, 2)]);
    bytes.truncate(14 + 4 + 3);
    let (records, err) = read_all_from(CaptureReader::new(bytes.as_slice())?);
    assert_eq!(records.len(), 1);
    let err = err.ok_or("no error")?;
    assert_eq!(
        err.to_string(),
        "truncated capture: file ends 3 bytes into a 10-byte frame at offset 14 (record 1); \
         the 1 record before it was read"
    );

    let mut bytes = relay_bytes(&[frame(10, 1), frame(10, 2), frame(10, 3)]);
    bytes.truncate(28 + 2);
    let (_, err) = read_all_from(CaptureReader::new(bytes.as_slice())?);
    let err = err.ok_or("no error")?;
    assert_eq!(
        err.to_string(),
        "truncated capture: file ends 2 bytes into the 4-byte length prefix at offset 28 \
         (record 2); the 2 records before it were read"
    );
    Ok(())
}

#[test]
fn huge_length_prefix_is_frame_too_large() -> TestResult {
    let mut bytes = relay_bytes(&[frame(10, 1)]);
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    for compressed in [false, true] {
        let input = if compressed {
            zstd(&bytes)?
        } else {
            bytes.clone()
        };
        let (records, err) = read_all_from(CaptureReader::new(input.as_slice())?);
        assert_eq!(records.len(), 1);
        let err = err.ok_or("no error")?;
        assert_eq!(err.kind(), CaptureErrorKind::FrameTooLarge, "{err}");
        assert_eq!(err.offset(), Some(14));
        assert_eq!(err.record(), Some(1));
        assert!(err.to_string().contains("4294967295"), "{err}");
    }
    // A file that starts with such a prefix is not recognized at all.
    let mut bytes = u32::MAX.to_le_bytes().to_vec();
    bytes.push(0xa1);
    assert_eq!(open_err(&bytes).kind(), CaptureErrorKind::UnknownFormat);
    Ok(())
}

#[test]
fn configurable_frame_limit() -> TestResult {
    let bytes = relay_bytes(&[frame(100, 1), frame(101, 2)]);
    let options = ReaderOptions::default().with_max_frame_len(100);
    let (records, err) = read_all_from(CaptureReader::with_options(
        bytes.as_slice(),
        options.clone(),
    )?);
    assert_eq!(records.len(), 1);
    assert_eq!(
        err.ok_or("no error")?.kind(),
        CaptureErrorKind::FrameTooLarge
    );

    // A first frame over the limit makes the file unrecognizable.
    let bytes = relay_bytes(&[frame(101, 1)]);
    let err = CaptureReader::with_options(bytes.as_slice(), options)
        .err()
        .ok_or("no error")?;
    assert_eq!(err.kind(), CaptureErrorKind::UnknownFormat);

    // A lying (but allowed) length on a short file is a truncation, found
    // without reading more than the file holds.
    let mut bytes = relay_bytes(&[frame(10, 1)]);
    bytes.extend_from_slice(&(5u32 * 1024 * 1024).to_le_bytes());
    bytes.extend_from_slice(&[0xa1; 10]);
    let (_, err) = read_all_from(CaptureReader::new(bytes.as_slice())?);
    let err = err.ok_or("no error")?;
    assert_eq!(err.kind(), CaptureErrorKind::Truncated);
    assert!(
        err.to_string()
            .contains("10 bytes into a 5242880-byte frame at offset 14 (record 1)"),
        "{err}"
    );
    Ok(())
}

#[test]
fn zero_length_and_misaligned_frames() -> TestResult {
    let mut bytes = relay_bytes(&[frame(10, 1)]);
    bytes.extend_from_slice(&0u32.to_le_bytes());
    let (records, err) = read_all_from(CaptureReader::new(bytes.as_slice())?);
    assert_eq!(records.len(), 1);
    assert_eq!(err.ok_or("no error")?.kind(), CaptureErrorKind::EmptyFrame);

    let mut bytes = relay_bytes(&[frame(10, 1)]);
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&[0x00, 0xa1, 0xa2]);
    let (records, err) = read_all_from(CaptureReader::new(bytes.as_slice())?);
    assert_eq!(records.len(), 1);
    let err = err.ok_or("no error")?;
    assert_eq!(err.kind(), CaptureErrorKind::InvalidFrame);
    assert_eq!(err.offset(), Some(14));
    Ok(())
}

#[test]
fn empty_and_whitespace_files() -> TestResult {
    let err = open_err(b"");
    assert_eq!(err.kind(), CaptureErrorKind::Empty);
    assert_eq!(err.to_string(), "capture file is empty");

    let err = open_err(&zstd(b"")?);
    assert_eq!(err.kind(), CaptureErrorKind::Empty);
    assert!(err.to_string().starts_with("capture file is empty"));

    assert_eq!(open_err(b" \n\r\n\t").kind(), CaptureErrorKind::Empty);

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("empty.bin");
    File::create(&path)?;
    let err = CaptureReader::open(&path).err().ok_or("no error")?;
    assert_eq!(err.kind(), CaptureErrorKind::Empty);

    let err = CaptureReader::open(dir.path().join("missing.bin"))
        .err()
        .ok_or("no error")?;
    assert_eq!(err.kind(), CaptureErrorKind::Io);
    assert!(err.to_string().contains("missing.bin"), "{err}");
    assert!(err.io_error().is_some());
    Ok(())
}

#[test]
fn garbage_is_unknown_format() -> TestResult {
    let expected = "unrecognized capture format: expected relay frames ([u32 LE length][frame]) \
                    or Jetstream JSON lines, optionally zstd-compressed";
    for garbage in [
        &b"hello, world"[..],
        b"x",
        b"[1,2,3]\n",
        b"\x00\x00\x00\x00\x00\x00",
        b"\x05\x00\x00\x00\x01abcd",
        b"PK\x03\x04zipzipzip",
        b"\x28\xb5\x2f",
    ] {
        let err = open_err(garbage);
        assert_eq!(err.kind(), CaptureErrorKind::UnknownFormat, "{garbage:?}");
        assert_eq!(err.to_string(), expected);
    }
    // The same inside zstd.
    let err = open_err(&zstd(b"hello, world")?);
    assert_eq!(err.kind(), CaptureErrorKind::UnknownFormat);
    Ok(())
}

#[test]
fn corrupt_zstd_is_an_error_not_a_panic() -> TestResult {
    let frames = corpus_frames()?;
    let full = write_capture(CaptureFormat::RelayFrames, Compression::Zstd, &frames)?;
    let mut kinds = Vec::new();
    for pos in [4usize, 10, full.len() / 3, full.len() / 2, full.len() - 2] {
        let mut bytes = full.clone();
        bytes[pos] ^= 0x55;
        let result = CaptureReader::new(bytes.as_slice()).map(read_all_from);
        let err = match result {
            Ok((_, Some(e))) | Err(e) => e,
            Ok((records, None)) => {
                panic!(
                    "flipping byte {pos} went unnoticed ({} records)",
                    records.len()
                )
            }
        };
        kinds.push(err.kind());
    }
    assert!(kinds.contains(&CaptureErrorKind::Decompress), "{kinds:?}");
    Ok(())
}

#[test]
fn line_limits() -> TestResult {
    let options = ReaderOptions::default().with_max_line_len(10);
    let ok = b"{\"a\":1234}\r\n{\"b\":1234}";
    let (records, err) = read_all_from(CaptureReader::with_options(&ok[..], options.clone())?);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(records.len(), 2);

    let long = b"{\"a\":1}\n{\"b\":12345}\n{}";
    let (records, err) = read_all_from(CaptureReader::with_options(&long[..], options.clone())?);
    assert_eq!(records.len(), 1);
    let err = err.ok_or("no error")?;
    assert_eq!(err.kind(), CaptureErrorKind::LineTooLong);
    assert_eq!(err.offset(), Some(8));
    assert_eq!(err.record(), Some(1));

    // An endless line is refused without reading it all.
    let endless = std::iter::once(b'{').chain(std::iter::repeat(b'x'));
    struct Endless<I>(I);
    impl<I: Iterator<Item = u8>> Read for Endless<I> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            for (slot, b) in buf.iter_mut().zip(&mut self.0) {
                *slot = b;
            }
            Ok(buf.len())
        }
    }
    let reader = CaptureReader::with_options(
        Endless(endless),
        ReaderOptions::default().with_max_line_len(1 << 20),
    )?;
    let (_, err) = read_all_from(reader);
    assert_eq!(err.ok_or("no error")?.kind(), CaptureErrorKind::LineTooLong);
    Ok(())
}

// ---------------------------------------------------------------- writer validation

#[test]
fn writer_rejects_what_the_reader_could_not_read_back() -> TestResult {
    let mut w = CaptureWriter::new(Vec::new(), CaptureFormat::RelayFrames, Compression::None)?;
    let kind = |r: Result<(), CaptureError>| r.err().map(|e| e.kind());
    assert_eq!(kind(w.write_frame(&[])), Some(CaptureErrorKind::EmptyFrame));
    assert_eq!(
        kind(w.write_frame(&[0x01, 0x02])),
        Some(CaptureErrorKind::InvalidFrame)
    );
    assert_eq!(
        kind(w.write_frame(&frame(5 * 1024 * 1024 + 1, 0))),
        Some(CaptureErrorKind::FrameTooLarge)
    );
    assert_eq!(
        kind(w.write_line("{}")),
        Some(CaptureErrorKind::WrongFormat)
    );
    w.write_frame(&frame(5 * 1024 * 1024, 0))?;
    assert_eq!(w.records_written(), 1);
    let bytes = w.finish()?;
    assert_eq!(bytes.len(), 4 + 5 * 1024 * 1024);

    let mut w = CaptureWriter::with_options(
        Vec::new(),
        CaptureFormat::JetstreamJson,
        Compression::None,
        WriterOptions::default().with_max_line_len(16),
    )?;
    for bad in ["", "   ", "{\"a\":\n1}", "{\"a\":1}\r", "[1]", "\"str\""] {
        assert_eq!(
            kind(w.write_line(bad)),
            Some(CaptureErrorKind::InvalidLine),
            "{bad:?}"
        );
    }
    assert_eq!(
        kind(w.write_line("{\"a\":\"0123456789\"}")),
        Some(CaptureErrorKind::LineTooLong)
    );
    assert_eq!(
        kind(w.write_frame(&frame(4, 0))),
        Some(CaptureErrorKind::WrongFormat)
    );
    w.write_line(" {\"a\":\"\r\"}")?;
    w.write_line("{}")?;
    let bytes = w.finish()?;
    assert_eq!(bytes, b" {\"a\":\"\r\"}\n{}\n");
    let (records, err) = read_all_from(CaptureReader::new(bytes.as_slice())?);
    assert!(err.is_none());
    assert_eq!(records[0].data(), b" {\"a\":\"\r\"}");
    Ok(())
}

#[test]
fn writer_io_failure_poisons_it() -> TestResult {
    /// Accepts `n` bytes, then fails.
    struct Limited(usize);
    impl io::Write for Limited {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(self.0);
            self.0 -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut w = CaptureWriter::new(Limited(20), CaptureFormat::RelayFrames, Compression::None)?;
    w.write_frame(&frame(10, 1))?;
    let err = w.write_frame(&frame(10, 2)).err().ok_or("no error")?;
    assert_eq!(err.kind(), CaptureErrorKind::Io);
    assert!(err.to_string().contains("disk full"), "{err}");
    assert_eq!(err.record(), Some(1));
    let err = w.write_frame(&frame(10, 3)).err().ok_or("no error")?;
    assert!(err.to_string().contains("earlier I/O error"), "{err}");
    Ok(())
}

// ---------------------------------------------------------------- fuzzing

/// Reads everything from `bytes`, checking invariants; must never panic.
fn exercise(bytes: &[u8], options: ReaderOptions) {
    let Ok(mut reader) = CaptureReader::with_options(bytes, options) else {
        return;
    };
    let mut last_offset = None;
    for _ in 0..100_000 {
        match reader.next_record() {
            Ok(Some(r)) => {
                if let Some(prev) = last_offset {
                    assert!(r.offset() > prev);
                }
                last_offset = Some(r.offset());
            }
            Ok(None) | Err(_) => return,
        }
    }
    panic!("reader did not terminate");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&bytes, ReaderOptions::default());
        exercise(&bytes, ReaderOptions::default().with_max_frame_len(16).with_max_line_len(16));
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_start_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
        json in any::<bool>(),
        compress in any::<bool>(),
    ) {
        let mut bytes = if json { b"{\"a\":1}\n".to_vec() } else { relay_bytes(&[frame(6, 1)]) };
        bytes.extend_from_slice(&tail);
        if compress {
            bytes = zstd(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        exercise(&bytes, ReaderOptions::default());
        // Raw garbage after the zstd magic.
        let mut magic = vec![0x28, 0xb5, 0x2f, 0xfd];
        magic.extend_from_slice(&tail);
        exercise(&magic, ReaderOptions::default());
    }

    #[test]
    fn written_captures_read_back(
        frames in proptest::collection::vec(
            (1usize..600, any::<u8>()).prop_map(|(len, fill)| frame(len, fill)), 0..20),
        compress in any::<bool>(),
    ) {
        let compression = if compress { Compression::Zstd } else { Compression::None };
        let bytes = write_capture(CaptureFormat::RelayFrames, compression, &frames)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        match CaptureReader::new(bytes.as_slice()) {
            Ok(reader) => {
                let (records, err) = read_all_from(reader);
                prop_assert!(err.is_none());
                let data: Vec<Vec<u8>> = records.into_iter().map(OwnedRecord::into_data).collect();
                prop_assert_eq!(data, frames);
            }
            // Nothing written: an empty capture.
            Err(e) => {
                prop_assert!(frames.is_empty());
                prop_assert_eq!(e.kind(), CaptureErrorKind::Empty);
            }
        }
    }
}
