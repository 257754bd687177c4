//! `skystream convert --to jetstream`: Jetstream v1 JSON lines on stdout, in firehose order,
//! with `time_us` taken from each frame's `time` and made strictly increasing.

use std::io::Write as _;
use std::process::ExitCode;

use skystream_event::jetstream::{self, TimeSequencer};
use skystream_event::FrameOptions;
use skystream_source::decode_capture_record;

use crate::cli::ConvertArgs;

pub fn run(args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    let mut reader = super::open_capture(&args.file)?;
    let format = reader.format();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut seq = TimeSequencer::new();
    let opts = FrameOptions::default();
    let mut line = String::with_capacity(4096);
    let (mut written, mut skipped) = (0u64, 0u64);
    let mut read_error = None;
    loop {
        let rec = match reader.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => break,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        };
        let event = decode_capture_record(format, rec.data(), &opts);
        let event = match event {
            Ok(Some(e)) => e,
            Ok(None) => continue,
            Err(e) => {
                skipped += 1;
                eprintln!("skystream: skipping record {}: {e}", rec.index());
                continue;
            }
        };
        line.clear();
        let t = event.time_us;
        written += jetstream::write_event(&event, &mut || seq.next(t), &mut line) as u64;
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    if skipped > 0 {
        eprintln!("skystream: {skipped} records could not be decoded and were skipped");
    }
    if let Some(e) = read_error {
        eprintln!("skystream: {e}");
        eprintln!("skystream: wrote {written} events from the records before that point");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
