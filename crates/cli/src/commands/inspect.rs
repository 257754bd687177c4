//! `skystream inspect`: what a capture file holds, and whether its commits verify.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;
use skystream_capture::CaptureFormat;
use skystream_event::{from_frame, jetstream, EventKind, FrameOptions};
use skystream_firehose::{decode_frame, Frame};
use skystream_identity::MemoryDirectory;

use crate::cli::InspectArgs;
use skystream_event::verify::check_commit;

/// Everything `inspect` reports.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub file: String,
    pub format: String,
    pub compression: String,
    pub records: u64,
    pub bytes: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// Frames (or Jetstream events) by type.
    pub types: BTreeMap<String, u64>,
    /// Record operations by action.
    pub ops: BTreeMap<String, u64>,
    /// Record operations by collection.
    pub collections: BTreeMap<String, u64>,
    /// CAR blocks across all commits.
    pub blocks: u64,
    /// Records that could not be decoded, by reason.
    pub decode_errors: BTreeMap<String, u64>,
    /// Operations left out of otherwise good commits, by reason.
    pub skipped_ops: BTreeMap<String, u64>,
    /// Present with --verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
    /// Why reading stopped before the end of the file, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub commits: u64,
    pub signature_passed: u64,
    pub signature_failed: u64,
    pub prev_data_passed: u64,
    pub prev_data_failed: u64,
    pub prev_data_absent: u64,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub seq: i64,
    pub did: String,
    pub check: &'static str,
    pub reason: String,
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    *map.entry(key.to_owned()).or_default() += 1;
}

pub fn run(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let dir = match &args.did_docs {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read DID documents from {}", path.display()))?;
            Some(MemoryDirectory::from_json_map(&text).with_context(|| {
                format!(
                    "{} is not a JSON object mapping DIDs to DID documents",
                    path.display()
                )
            })?)
        }
        None => None,
    };
    let dir = if args.verify { dir } else { None };
    let report = inspect(args, dir.as_ref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    if let Some(e) = &report.read_error {
        eprintln!("skystream: {e}");
        eprintln!("skystream: the report above covers the records before that point");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(args: &InspectArgs, dir: Option<&MemoryDirectory>) -> anyhow::Result<Report> {
    let mut reader = super::open_capture(&args.file)?;
    let mut r = Report {
        file: args.file.display().to_string(),
        format: reader.format().to_string(),
        compression: reader.compression().to_string(),
        verify: dir.map(|_| VerifyReport::default()),
        ..Report::default()
    };
    let format = reader.format();
    let opts = FrameOptions::default();
    loop {
        let rec = match reader.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => break,
            Err(e) => {
                r.read_error = Some(e.to_string());
                break;
            }
        };
        r.records += 1;
        r.bytes += rec.data().len() as u64;
        match format {
            CaptureFormat::RelayFrames => inspect_frame(rec.data(), &opts, dir, &mut r),
            CaptureFormat::JetstreamJson => inspect_line(rec.data(), &mut r),
        }
    }
    Ok(r)
}

fn inspect_frame(bytes: &[u8], opts: &FrameOptions, dir: Option<&MemoryDirectory>, r: &mut Report) {
    let frame = match decode_frame(bytes) {
        Ok(f) => f,
        Err(e) => {
            bump(&mut r.decode_errors, e.kind.as_str());
            return;
        }
    };
    bump(&mut r.types, frame.type_name());
    if let Some(seq) = frame.seq() {
        r.first_seq.get_or_insert(seq);
        r.last_seq = Some(seq);
    }
    if let Frame::Commit(msg) = &frame {
        if let Ok(car) = msg.car() {
            r.blocks += car.blocks().len() as u64;
        }
        if let (Some(dir), Some(v)) = (dir, r.verify.as_mut()) {
            v.commits += 1;
            let check = check_commit(msg, dir);
            let mut fail = |check: &'static str, reason: String| {
                v.failures.push(Failure {
                    seq: msg.seq,
                    did: msg.repo.to_owned(),
                    check,
                    reason,
                })
            };
            match check.signature {
                Ok(()) => v.signature_passed += 1,
                Err(e) => {
                    v.signature_failed += 1;
                    fail("signature", e);
                }
            }
            match check.prev_data {
                Some(Ok(())) => v.prev_data_passed += 1,
                Some(Err(e)) => {
                    v.prev_data_failed += 1;
                    fail("prev_data", e);
                }
                None => v.prev_data_absent += 1,
            }
        }
    }
    match from_frame(&frame, opts) {
        Ok(outcome) => {
            for e in &outcome.op_errors {
                bump(&mut r.skipped_ops, e.kind.as_str());
            }
            if let Some(EventKind::Commit(c)) = outcome.event.as_ref().map(|e| &e.kind) {
                for op in &c.ops {
                    bump(&mut r.ops, op.action.as_str());
                    bump(&mut r.collections, &op.collection);
                }
            }
        }
        Err(e) => bump(&mut r.decode_errors, e.kind.as_str()),
    }
}

fn inspect_line(bytes: &[u8], r: &mut Report) {
    let parsed = std::str::from_utf8(bytes)
        .map_err(|_| "invalid_utf8".to_owned())
        .and_then(|s| jetstream::parse_line(s).map_err(|_| "invalid_event".to_owned()));
    let parsed = match parsed {
        Ok(p) => p,
        Err(reason) => {
            bump(&mut r.decode_errors, &reason);
            return;
        }
    };
    let Some(event) = parsed.event else {
        bump(&mut r.types, "cursor");
        return;
    };
    bump(&mut r.types, event.kind_name());
    if let EventKind::Commit(c) = &event.kind {
        for op in &c.ops {
            bump(&mut r.ops, op.action.as_str());
            bump(&mut r.collections, &op.collection);
        }
    }
}

fn print_map(title: &str, map: &BTreeMap<String, u64>) {
    if map.is_empty() {
        return;
    }
    println!("{title}:");
    let mut rows: Vec<_> = map.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (k, v) in rows {
        println!("  {v:>10}  {k}");
    }
}

fn print_text(r: &Report) {
    println!("file:        {} ({}, {})", r.file, r.format, r.compression);
    println!("records:     {} ({} bytes)", r.records, r.bytes);
    if let (Some(a), Some(b)) = (r.first_seq, r.last_seq) {
        println!("seq:         {a}..{b}");
    }
    if r.blocks > 0 {
        println!("CAR blocks:  {}", r.blocks);
    }
    print_map("types", &r.types);
    print_map("operations", &r.ops);
    print_map("collections", &r.collections);
    print_map("decode errors", &r.decode_errors);
    print_map("skipped operations", &r.skipped_ops);
    if let Some(v) = &r.verify {
        println!("verification ({} commits):", v.commits);
        println!(
            "  signature  passed {:>6}  failed {:>6}",
            v.signature_passed, v.signature_failed
        );
        println!(
            "  prevData   passed {:>6}  failed {:>6}  absent {:>6}",
            v.prev_data_passed, v.prev_data_failed, v.prev_data_absent
        );
        for f in &v.failures {
            println!("  FAIL seq {} {} {}: {}", f.seq, f.did, f.check, f.reason);
        }
    }
}
