//! The relay scenarios with verification on: frames marked `drop` are dropped (out-of-order
//! seq or rev, inactive account), frames marked `invalid` are rejected, and every other frame
//! is accepted and verifies.

use serde_json::Value as J;
use skystream_data::{encode_to_vec, json};
use skystream_event::validate::Validator;
use skystream_event::verify::check_commit;
use skystream_firehose::{decode_frame, Frame};
use skystream_identity::{DidDocument, MemoryDirectory};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/relay-scenarios"
);

fn directory(s: &J) -> MemoryDirectory {
    let mut dir = MemoryDirectory::new();
    for a in s["accounts"].as_array().expect("accounts") {
        let id = &a["identity"];
        let did = id["did"].as_str().expect("did");
        let key = &id["keys"]["atproto"];
        let doc = serde_json::json!({
            "id": did,
            "alsoKnownAs": [format!("at://{}", id["handle"].as_str().unwrap_or("handle.invalid"))],
            "verificationMethod": [{"id": format!("{did}#atproto"), "type": key["type"],
                "controller": did, "publicKeyMultibase": key["publicKeyMultibase"]}],
        });
        dir.insert(DidDocument::from_json(&doc.to_string()).expect("doc"));
    }
    dir
}

#[test]
fn scenarios_behave_as_marked() {
    let mut files: Vec<_> = std::fs::read_dir(DIR)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 7);
    let (mut accepted, mut dropped) = (0, 0);
    for path in files {
        let s: J =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let strict = !s["lenient"].as_bool().expect("lenient");
        let dir = directory(&s);
        let mut validator = Validator::new(strict, 1000);
        for (i, m) in s["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .enumerate()
        {
            let mut bytes = encode_to_vec(&json::from_json(&m["frame"]["header"]).expect("header"));
            bytes.extend(encode_to_vec(
                &json::from_json(&m["frame"]["body"]).expect("body"),
            ));
            let want_drop = m["drop"].as_bool() == Some(true);
            let want_invalid = m["invalid"].as_bool() == Some(true);
            let frame = match decode_frame(&bytes) {
                Ok(f) => f,
                Err(e) => {
                    assert!(
                        want_invalid,
                        "{name}#{i}: rejected but not marked invalid: {e}"
                    );
                    continue;
                }
            };
            let verdict = validator
                .check(&frame)
                .map_err(|r| r.as_str().to_owned())
                .and_then(|()| {
                    if let Frame::Commit(c) = &frame {
                        let check = check_commit(c, &dir);
                        check.signature?;
                        if let Some(p) = check.prev_data {
                            p?;
                        }
                    }
                    Ok(())
                });
            match verdict {
                Ok(()) => {
                    assert!(
                        !want_drop && !want_invalid,
                        "{name}#{i}: accepted but marked drop/invalid"
                    );
                    accepted += 1;
                }
                Err(why) => {
                    assert!(
                        want_drop || want_invalid,
                        "{name}#{i}: dropped ({why}) but not marked"
                    );
                    dropped += 1;
                }
            }
        }
    }
    assert!(
        accepted >= 25 && dropped >= 5,
        "accepted {accepted}, dropped {dropped}"
    );
}
