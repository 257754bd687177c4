//! The writing side, checked by the reading side: commits signed by `RepoWriter`, framed by
//! `write`, decode and pass every verification, across creates, updates and deletes.

use skystream_crypto::{Algorithm, PrivateKey};
use skystream_data::{Map, Value};
use skystream_event::verify::check_commit;
use skystream_firehose::{decode_frame, write, Frame};
use skystream_identity::{DidDocument, MemoryDirectory};
use skystream_repo::{Car, Mst, RepoWriter, WriteOp};
use skystream_syntax::Tid;

fn doc(did: &str, key: &PrivateKey, legacy: bool) -> DidDocument {
    let (kind, mb) = if legacy {
        (
            key.algorithm().legacy_did_doc_type().to_owned(),
            key.public_key().to_legacy_multibase(),
        )
    } else {
        ("Multikey".to_owned(), key.public_key().to_multikey())
    };
    DidDocument::from_json(
        &serde_json::json!({
            "id": did,
            "verificationMethod": [{"id": format!("{did}#atproto"), "type": kind,
                "controller": did, "publicKeyMultibase": mb}],
        })
        .to_string(),
    )
    .expect("doc")
}

fn post(i: u64) -> Value<'static> {
    Value::Map(
        Map::new()
            .with("$type", "app.bsky.feed.post")
            .with("text", format!("post number {i}"))
            .with("createdAt", "2026-07-04T14:38:06.240Z"),
    )
}

#[test]
fn signed_commits_round_trip_through_frames() {
    for (alg, legacy) in [
        (Algorithm::K256, false),
        (Algorithm::P256, false),
        (Algorithm::K256, true),
        (Algorithm::P256, true),
    ] {
        let did = "did:plc:abcdefghijklmnopqrstuvwx";
        let key = PrivateKey::from_seed(alg, 7);
        let mut dir = MemoryDirectory::new();
        dir.insert(doc(did, &key, legacy));
        let mut repo = RepoWriter::new(did, key);
        let mut seq = 0;
        let mut live: Vec<String> = Vec::new();
        for round in 0..40u64 {
            let mut ops = Vec::new();
            // A few creates every round, an update and a delete when there is something to touch.
            for j in 0..3 {
                let rkey = Tid::from_parts(1_700_000_000_000_000 + round * 10 + j, 0).to_string();
                let path = format!("app.bsky.feed.post/{rkey}");
                ops.push(WriteOp::Create {
                    path: path.clone(),
                    record: post(round * 10 + j),
                });
                live.push(path);
            }
            if round % 3 == 1 {
                let path = live[(round as usize * 7) % (live.len() - 3)].clone();
                ops.push(WriteOp::Update {
                    path,
                    record: post(9999 + round),
                });
            }
            if round % 4 == 2 {
                let path = live.remove((round as usize * 5) % (live.len() - 3));
                ops.push(WriteOp::Delete { path });
            }
            let rev = Tid::from_parts(1_800_000_000_000_000 + round, 0).to_string();
            let diff = repo.apply(&ops, &rev).expect("apply");
            seq += 1;
            let bytes = write::commit_frame(seq, did, &diff, "2026-07-04T14:38:07.877Z");
            let Frame::Commit(msg) = decode_frame(&bytes).expect("our frame decodes") else {
                panic!("not a commit")
            };
            assert_eq!(msg.ops.len(), ops.len());
            let check = check_commit(&msg, &dir);
            check
                .signature
                .unwrap_or_else(|e| panic!("{alg:?} round {round}: {e}"));
            check
                .prev_data
                .expect("prevData present")
                .unwrap_or_else(|e| panic!("{alg:?} round {round}: prevData: {e}"));
        }
        // The full export walks to exactly the live records.
        let car_bytes = repo.export_car().expect("export").expect("has a commit");
        let car = Car::parse(&car_bytes).expect("car");
        car.verify_cids().expect("cids");
        let commit = skystream_repo::Commit::decode(car.get(&car.roots()[0]).expect("commit"))
            .expect("commit");
        commit
            .verify_signature(&repo.key().public_key())
            .expect("signed");
        let blocks = car.block_map();
        let mut tree = Mst::load(&commit.unsigned.data, &blocks).expect("tree");
        let mut keys: Vec<String> = tree
            .entries(&blocks)
            .expect("walk")
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).expect("utf8"))
            .collect();
        keys.sort();
        live.sort();
        assert_eq!(keys, live);
        // And the sync frame carries that commit.
        let sync = write::sync_frame(
            seq + 1,
            did,
            repo.commit_car().expect("commit car"),
            repo.rev().expect("rev"),
            "2026-07-04T14:38:07.877Z",
        );
        assert!(matches!(decode_frame(&sync), Ok(Frame::Sync(_))));
    }
}

#[test]
fn other_frames_round_trip() {
    let did = "did:plc:abcdefghijklmnopqrstuvwx";
    let f = write::identity_frame(5, did, Some("alice.test"), "2026-07-04T14:38:07.877Z");
    assert!(
        matches!(decode_frame(&f), Ok(Frame::Identity(m)) if m.handle == Some("alice.test") && m.seq == 5)
    );
    let f = write::account_frame(
        6,
        did,
        false,
        Some("deactivated"),
        "2026-07-04T14:38:07.877Z",
    );
    assert!(
        matches!(decode_frame(&f), Ok(Frame::Account(m)) if !m.active && m.status == Some("deactivated"))
    );
    let f = write::info_frame("OutdatedCursor", Some("too old"));
    assert!(matches!(decode_frame(&f), Ok(Frame::Info(m)) if m.name == "OutdatedCursor"));
    let f = write::encode_error("FutureCursor", None);
    assert!(matches!(decode_frame(&f), Ok(Frame::Error(m)) if m.error == "FutureCursor"));
}
