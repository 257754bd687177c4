//! The binary, run as a user would: `inspect` and `convert` on the shared corpus and on bad
//! input.

use std::path::PathBuf;
use std::process::{Command, Output};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/relay-corpus");

fn skystream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skystream"))
        .args(args)
        .env_remove("SKYSTREAM_VERIFY")
        .env_remove("SKYSTREAM_JSON")
        .output()
        .expect("run skystream")
}

fn frames() -> String {
    format!("{CORPUS}/frames.bin.zst")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("skystream-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

#[test]
fn inspect_reports_counts_and_verification() {
    let docs = format!("{CORPUS}/did_docs.json");
    let out = skystream(&[
        "inspect",
        &frames(),
        "--verify",
        "--did-docs",
        &docs,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(r["records"], 150);
    assert_eq!(r["types"]["#commit"], 148);
    assert_eq!(r["types"]["#identity"], 1);
    assert_eq!(r["types"]["#account"], 1);
    assert_eq!(r["ops"]["create"], 144);
    assert_eq!(r["ops"]["update"], 2);
    assert_eq!(r["ops"]["delete"], 4);
    assert_eq!(r["collections"]["app.bsky.feed.like"], 105);
    assert_eq!(r["verify"]["signature_passed"], 148);
    assert_eq!(r["verify"]["prev_data_passed"], 148);
    assert_eq!(
        r["verify"]["failures"].as_array().expect("failures").len(),
        0
    );

    let text = skystream(&["inspect", &frames()]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).expect("utf8");
    assert!(
        text.contains("#commit") && text.contains("app.bsky.feed.post"),
        "{text}"
    );
}

#[test]
fn inspect_verify_reports_failures_with_reasons() {
    // DID documents for one author only: every other commit fails, each with its reason.
    let all: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{CORPUS}/did_docs.json")).expect("docs"),
    )
    .expect("json");
    let (did, doc) = all.as_object().expect("map").iter().next().expect("one");
    let docs = scratch("one_doc.json");
    std::fs::write(&docs, serde_json::json!({ did: doc }).to_string()).expect("write");
    let out = skystream(&[
        "inspect",
        &frames(),
        "--verify",
        "--did-docs",
        docs.to_str().expect("path"),
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let passed = r["verify"]["signature_passed"].as_u64().expect("passed");
    let failed = r["verify"]["signature_failed"].as_u64().expect("failed");
    assert!(
        passed >= 1 && failed >= 100 && passed + failed == 148,
        "{passed} {failed}"
    );
    let f = &r["verify"]["failures"][0];
    assert!(
        f["reason"]
            .as_str()
            .expect("reason")
            .contains("no DID document"),
        "{f}"
    );
}

#[test]
fn convert_matches_production_jetstream() {
    let out = skystream(&["convert", &frames(), "--to", "jetstream"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .expect("utf8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("line is JSON"))
        .collect();
    let theirs: Vec<serde_json::Value> =
        std::fs::read_to_string(format!("{CORPUS}/expected_v1.jsonl"))
            .expect("expected")
            .lines()
            .map(|l| serde_json::from_str(l).expect("line is JSON"))
            .collect();
    assert_eq!(ours.len(), 152);
    assert_eq!(ours.len(), theirs.len());
    let strip = |mut v: serde_json::Value| {
        v.as_object_mut().expect("obj").remove("time_us");
        v
    };
    let mut a: Vec<String> = ours
        .iter()
        .cloned()
        .map(strip)
        .map(|v| v.to_string())
        .collect();
    let mut b: Vec<String> = theirs
        .into_iter()
        .map(strip)
        .map(|v| v.to_string())
        .collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let times: Vec<i64> = ours
        .iter()
        .map(|v| v["time_us"].as_i64().expect("time_us"))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "time_us strictly increases"
    );
}

#[test]
fn convert_of_jetstream_lines_is_stable() {
    let out = skystream(&["convert", &format!("{CORPUS}/expected_v1.jsonl")]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).expect("utf8").lines().count(),
        152
    );
}

#[test]
fn missing_file_is_a_one_line_error() {
    let out = skystream(&["inspect", "/nonexistent/capture.bin"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).expect("utf8");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/capture.bin"), "{err}");
}

#[test]
fn wrong_format_is_a_clear_error() {
    let path = scratch("not_a_capture.txt");
    std::fs::write(&path, "hello, this is not a capture\n").expect("write");
    let out = skystream(&["convert", path.to_str().expect("path")]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).expect("utf8");
    assert!(
        err.contains("relay frames") && err.contains("Jetstream"),
        "{err}"
    );
}

#[test]
fn truncated_file_reports_partial_results_and_fails() {
    // Decompress the corpus, cut it inside the last frame.
    let mut reader = skystream_capture_bytes(&frames());
    reader.truncate(reader.len() - 100);
    let path = scratch("truncated.bin");
    std::fs::write(&path, &reader).expect("write");
    let out = skystream(&["inspect", path.to_str().expect("path"), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("partial JSON report");
    assert_eq!(r["records"], 149);
    assert!(r["read_error"]
        .as_str()
        .expect("read_error")
        .contains("truncated"));
    let err = String::from_utf8(out.stderr).expect("utf8");
    assert!(err.contains("truncated"), "{err}");

    let out = skystream(&["convert", path.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stdout).expect("utf8").lines().count() >= 140);
}

#[test]
fn help_is_available_for_every_command() {
    for cmd in [
        &["--help"][..],
        &["inspect", "--help"],
        &["convert", "--help"],
    ] {
        let out = skystream(cmd);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).expect("utf8");
        assert!(text.contains("Usage"), "{text}");
    }
    let out = skystream(&["inspect", "--help"]);
    assert!(String::from_utf8(out.stdout)
        .expect("utf8")
        .contains("SKYSTREAM_DID_DOCS"));
}

/// The corpus as plain (uncompressed) capture bytes.
fn skystream_capture_bytes(path: &str) -> Vec<u8> {
    let compressed = std::fs::read(path).expect("corpus");
    zstd_decode(&compressed)
}

fn zstd_decode(b: &[u8]) -> Vec<u8> {
    let mut r = skystream_capture::CaptureReader::new(b).expect("reader");
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().expect("record") {
        out.extend_from_slice(&(rec.data().len() as u32).to_le_bytes());
        out.extend_from_slice(rec.data());
    }
    out
}
