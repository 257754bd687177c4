//! The relay-scenario fixtures: every frame not marked invalid decodes, and its blocks check.

use skystream_data::{encode_to_vec, json};
use skystream_firehose::{decode_frame, Frame};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/relay-scenarios"
);

fn frame_bytes(frame: &serde_json::Value) -> Vec<u8> {
    let mut out = encode_to_vec(&json::from_json(&frame["header"]).expect("header JSON"));
    out.extend(encode_to_vec(
        &json::from_json(&frame["body"]).expect("body JSON"),
    ));
    out
}

#[test]
fn scenario_frames_decode() {
    let mut files: Vec<_> = std::fs::read_dir(DIR)
        .expect("scenario dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "expected the seven scenarios");
    let mut decoded = 0;
    for path in files {
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        for (i, m) in s["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .enumerate()
        {
            let bytes = frame_bytes(&m["frame"]);
            let result = decode_frame(&bytes);
            if m["invalid"].as_bool() == Some(true) {
                continue;
            }
            let frame = result.unwrap_or_else(|e| panic!("{}#{i}: {e}", path.display()));
            assert_eq!(
                frame.type_name(),
                m["frame"]["header"]["t"].as_str().expect("t")
            );
            match &frame {
                Frame::Commit(c) => {
                    let car = c.car().expect("CAR parses");
                    car.verify_cids().expect("CIDs check");
                    assert_eq!(car.roots().first(), Some(&c.commit));
                }
                Frame::Sync(s) => {
                    let car = skystream_repo::Car::parse(s.blocks).expect("CAR parses");
                    car.verify_cids().expect("CIDs check");
                }
                _ => {}
            }
            decoded += 1;
        }
    }
    assert!(decoded >= 30, "only {decoded} frames decoded");
}
