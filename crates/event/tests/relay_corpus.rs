//! The shared relay corpus: real frames decoded with the manifest's counts, rendered exactly
//! as production Jetstream served them, and every commit verified.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value as J;
use skystream_capture::CaptureReader;
use skystream_event::jetstream::{self, TimeSequencer};
use skystream_event::verify::check_commit;
use skystream_event::{from_frame, EventKind, FrameOptions, OpAction};
use skystream_firehose::{decode_frame, Frame};
use skystream_identity::MemoryDirectory;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/relay-corpus");

fn frames() -> Vec<Vec<u8>> {
    let mut r = CaptureReader::open(format!("{DIR}/frames.bin.zst")).expect("open corpus");
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().expect("read corpus") {
        out.push(rec.data().to_vec());
    }
    out
}

fn manifest() -> J {
    serde_json::from_str(
        &std::fs::read_to_string(format!("{DIR}/manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON")
}

#[test]
fn decodes_with_manifest_counts() {
    let m = manifest();
    let frames = frames();
    assert_eq!(frames.len() as u64, m["frames"].as_u64().expect("frames"));
    let mut types: BTreeMap<String, u64> = BTreeMap::new();
    let mut actions: HashMap<OpAction, u64> = HashMap::new();
    let mut seqs = Vec::new();
    let mut commit_dids = std::collections::BTreeSet::new();
    for bytes in &frames {
        let frame = decode_frame(bytes).expect("every corpus frame decodes");
        *types.entry(frame.type_name().to_owned()).or_default() += 1;
        seqs.push(frame.seq().expect("seq"));
        let out = from_frame(&frame, &FrameOptions::default()).expect("CIDs check out");
        assert!(out.op_errors.is_empty(), "{:?}", out.op_errors);
        if let Some(EventKind::Commit(c)) = out.event.map(|e| e.kind) {
            commit_dids.insert(c.did.clone());
            for op in &c.ops {
                *actions.entry(op.action).or_default() += 1;
                assert_eq!(op.record.is_some(), op.action != OpAction::Delete);
            }
        }
    }
    assert_eq!(
        types["#commit"],
        m["commit_frames"].as_u64().expect("commit_frames")
    );
    assert_eq!(
        types["#identity"],
        m["identity"].as_u64().expect("identity")
    );
    assert_eq!(types["#account"], m["account"].as_u64().expect("account"));
    assert_eq!(
        actions[&OpAction::Create],
        m["creates"].as_u64().expect("creates")
    );
    assert_eq!(
        actions[&OpAction::Update],
        m["updates"].as_u64().expect("updates")
    );
    assert_eq!(
        actions[&OpAction::Delete],
        m["deletes"].as_u64().expect("deletes")
    );
    assert_eq!(seqs.first().copied(), m["seq_first"].as_i64());
    assert_eq!(seqs.last().copied(), m["seq_last"].as_i64());
    let want: std::collections::BTreeSet<String> = m["commit_dids"]
        .as_array()
        .expect("commit_dids")
        .iter()
        .map(|d| d.as_str().expect("did").to_owned())
        .collect();
    assert_eq!(commit_dids, want);
}

/// The pairing rule from testdata/README.md.
fn pair_key(e: &J) -> String {
    let kind = e["kind"].as_str().expect("kind");
    if kind == "commit" {
        let c = &e["commit"];
        format!(
            "{}|{}|{}|{}|{}",
            e["did"], c["rev"], c["collection"], c["rkey"], c["operation"]
        )
    } else {
        format!("{kind}|{}|{}", e["did"], e[kind]["seq"])
    }
}

fn without_clock(mut e: J) -> J {
    let o = e.as_object_mut().expect("object");
    o.remove("time_us");
    o.remove("cursor");
    e
}

#[test]
fn jetstream_rendering_equals_production() {
    let expected_text =
        std::fs::read_to_string(format!("{DIR}/expected_v1.jsonl")).expect("expected");
    let expected: HashMap<String, J> = expected_text
        .lines()
        .map(|l| serde_json::from_str::<J>(l).expect("expected line"))
        .map(|e| (pair_key(&e), without_clock(e)))
        .collect();
    assert_eq!(
        expected.len() as u64,
        manifest()["v1_events"].as_u64().expect("v1_events")
    );

    let mut seq = TimeSequencer::new();
    let mut out = String::new();
    for bytes in frames() {
        let frame = decode_frame(&bytes).expect("decodes");
        let event = from_frame(&frame, &FrameOptions::default())
            .expect("event")
            .event
            .expect("some");
        let t = event.time_us;
        jetstream::write_event(&event, &mut || seq.next(t), &mut out);
    }
    let ours: Vec<J> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("our line is JSON"))
        .collect();
    assert_eq!(ours.len(), expected.len());
    let mut last = 0;
    for e in ours {
        let t = e["time_us"].as_i64().expect("time_us");
        assert!(t > last, "time_us must strictly increase");
        last = t;
        let key = pair_key(&e);
        let want = expected
            .get(&key)
            .unwrap_or_else(|| panic!("unexpected event {key}"));
        assert_eq!(&without_clock(e), want, "{key}");
    }
}

#[test]
fn jetstream_lines_parse_back_to_the_same_lines() {
    let expected_text =
        std::fs::read_to_string(format!("{DIR}/expected_v1.jsonl")).expect("expected");
    for line in expected_text.lines() {
        let parsed = jetstream::parse_line(line).expect("production line parses");
        let event = parsed.event.expect("an event");
        let mut out = String::new();
        jetstream::write_event(&event, &mut || parsed.time_us, &mut out);
        let a: J = serde_json::from_str(out.trim_end()).expect("ours");
        let b: J = serde_json::from_str(line).expect("theirs");
        assert_eq!(a, b);
    }
}

#[test]
fn every_commit_verifies() {
    let docs = std::fs::read_to_string(format!("{DIR}/did_docs.json")).expect("did docs");
    let dir = MemoryDirectory::from_json_map(&docs).expect("did docs parse");
    let mut verified = 0;
    for bytes in frames() {
        if let Frame::Commit(msg) = decode_frame(&bytes).expect("decodes") {
            let check = check_commit(&msg, &dir);
            check
                .signature
                .unwrap_or_else(|e| panic!("seq {}: signature: {e}", msg.seq));
            check
                .prev_data
                .expect("Sync 1.1 commits carry prevData")
                .unwrap_or_else(|e| panic!("seq {}: prevData: {e}", msg.seq));
            verified += 1;
        }
    }
    assert_eq!(verified, 148);
}

#[test]
fn tampered_commits_fail_verification() {
    let docs = std::fs::read_to_string(format!("{DIR}/did_docs.json")).expect("did docs");
    let dir = MemoryDirectory::from_json_map(&docs).expect("did docs parse");
    let frames = frames();
    let bytes = frames
        .iter()
        .find(|b| matches!(decode_frame(b), Ok(Frame::Commit(_))))
        .expect("a commit");
    let Ok(Frame::Commit(mut msg)) = decode_frame(bytes) else {
        unreachable!()
    };
    // A wrong prevData must be caught by the inversion.
    let good_prev = msg.prev_data;
    msg.prev_data = Some(msg.commit);
    assert!(matches!(check_commit(&msg, &dir).prev_data, Some(Err(_))));
    msg.prev_data = good_prev;
    // Another author's key must not verify the signature.
    msg.repo = "did:plc:2a7ygipkrbh544aqhcav53oy";
    assert!(check_commit(&msg, &dir).signature.is_err());
}
