//! `skystream record` as a user runs it: from a capture file, from the simulator, with metrics.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/relay-corpus");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("skystream-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

fn skystream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skystream"))
        .args(args)
        .env_remove("SKYSTREAM_SOURCE")
        .output()
        .expect("run")
}

fn records(path: &Path) -> Vec<Vec<u8>> {
    let mut r = skystream_capture::CaptureReader::open(path).expect("open");
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().expect("record") {
        out.push(rec.data().to_vec());
    }
    out
}

#[test]
fn recording_a_capture_file_copies_it_exactly_and_resumes_past_it() {
    let (out, db) = (scratch("copy.bin"), scratch("copy.db"));
    let src = format!("file:{CORPUS}/frames.bin.zst");
    let args = [
        "record",
        "--source",
        &src,
        "--out",
        out.to_str().expect("p"),
        "--database",
        db.to_str().expect("p"),
    ];
    let o = skystream(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        records(&out),
        records(Path::new(&format!("{CORPUS}/frames.bin.zst")))
    );
    // The cursor was saved: a second run finds nothing new and appends nothing.
    let o = skystream(&args);
    assert!(o.status.success());
    assert_eq!(records(&out).len(), 150);
    assert!(String::from_utf8_lossy(&o.stderr).contains("resuming from the saved cursor"));
}

#[test]
fn recording_jetstream_lines_keeps_them_as_lines() {
    let (out, db) = (scratch("lines.jsonl"), scratch("lines.db"));
    let src = format!("file:{CORPUS}/expected_v1.jsonl");
    let o = skystream(&[
        "record",
        "--source",
        &src,
        "--out",
        out.to_str().expect("p"),
        "--database",
        db.to_str().expect("p"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = std::fs::read_to_string(format!("{CORPUS}/expected_v1.jsonl")).expect("read");
    assert_eq!(std::fs::read_to_string(&out).expect("read"), want);
}

#[test]
fn recording_the_simulator_stops_at_max_events_and_verifies() {
    let (out, db) = (scratch("sim.bin.zst"), scratch("sim.db"));
    let o = skystream(&[
        "record",
        "--source",
        "simulate:0",
        "--out",
        out.to_str().expect("p"),
        "--database",
        db.to_str().expect("p"),
        "--max-events",
        "400",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let frames = records(&out);
    assert_eq!(frames.len(), 400);
    let seqs: Vec<i64> = frames
        .iter()
        .map(|f| {
            skystream_firehose::decode_frame(f)
                .expect("decodes")
                .seq()
                .expect("seq")
        })
        .collect();
    assert_eq!(seqs, (1..=400).collect::<Vec<_>>());
}

#[test]
fn record_without_a_source_says_what_to_give() {
    let out = scratch("none.bin");
    let o = skystream(&[
        "record",
        "--out",
        out.to_str().expect("p"),
        "--database",
        "sqlite::memory:",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--source") && err.contains("relay:wss://"),
        "{err}"
    );
    let o = skystream(&[
        "record",
        "--source",
        "relay:https://x",
        "--out",
        out.to_str().expect("p"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ws:// or wss://")
            || String::from_utf8_lossy(&o.stderr).contains("ws or wss")
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn metrics_are_served_while_ingesting() {
    let (out, db) = (scratch("metrics.bin"), scratch("metrics.db"));
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_skystream"))
        .args([
            "record",
            "--source",
            "simulate:500",
            "--metrics-listen",
            &addr,
            "--cursor-save-interval",
            "100ms",
        ])
        .arg("--out")
        .arg(&out)
        .arg("--database")
        .arg(&db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    while Instant::now() < deadline {
        if let Some(t) = http_get(&addr, "/metrics") {
            if t.contains("skystream_cursor") && t.contains("skystream_events_total") {
                text = t;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "SIGTERM exits 0: {status}");
    for name in [
        "skystream_events_total",
        "skystream_pipeline_events_total",
        "skystream_cursor",
        "skystream_pipeline_queue_depth",
        "skystream_consumer_batch_seconds",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
}
