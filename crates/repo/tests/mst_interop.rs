//! The interop MST and commit-proof fixtures.

use std::collections::HashMap;

use skystream_data::Cid;
use skystream_repo::mst::NoBlocks;
use skystream_repo::{key_height, Mst};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/interop");

fn load(rel: &str) -> Vec<serde_json::Value> {
    let path = format!("{DIR}/{rel}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: Vec<serde_json::Value> = serde_json::from_str(&text).expect("fixture JSON");
    assert!(!v.is_empty(), "{path} has no cases");
    v
}

fn cid(s: &serde_json::Value) -> Cid {
    s.as_str().expect("cid string").parse().expect("valid cid")
}

#[test]
fn key_heights() {
    for case in load("mst/key_heights.json") {
        let key = case["key"].as_str().expect("key");
        assert_eq!(
            u64::from(key_height(key.as_bytes())),
            case["height"].as_u64().expect("height"),
            "height of {key:?}"
        );
    }
}

fn all_blocks(t: &Mst) -> HashMap<Cid, Vec<u8>> {
    let mut blocks = HashMap::new();
    t.write_blocks(&mut |c, b| {
        blocks.insert(c, b);
    });
    blocks
}

#[test]
fn commit_proofs() {
    let cases = load("firehose/commit-proof-fixtures.json");
    for case in &cases {
        let name = case["comment"].as_str().expect("comment");
        let leaf = cid(&case["leafValue"]);
        let keys: Vec<&str> = case["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k.as_str().expect("key"))
            .collect();
        let adds: Vec<&str> = case["adds"]
            .as_array()
            .expect("adds")
            .iter()
            .map(|k| k.as_str().expect("key"))
            .collect();
        let dels: Vec<&str> = case["dels"]
            .as_array()
            .expect("dels")
            .iter()
            .map(|k| k.as_str().expect("key"))
            .collect();

        // Build the "before" tree from scratch.
        let before = Mst::from_entries(keys.iter().map(|k| (k.as_bytes(), leaf))).expect("build");
        assert_eq!(
            before.root_cid(),
            cid(&case["rootBeforeCommit"]),
            "{name}: root before"
        );

        // Apply the commit in memory.
        let mut after = before.clone();
        for k in &adds {
            assert_eq!(
                after.insert(k.as_bytes(), leaf, &NoBlocks).expect("add"),
                None,
                "{name}"
            );
        }
        for k in &dels {
            assert_eq!(
                after.remove(k.as_bytes(), &NoBlocks).expect("del"),
                Some(leaf),
                "{name}"
            );
        }
        assert_eq!(
            after.root_cid(),
            cid(&case["rootAfterCommit"]),
            "{name}: root after"
        );

        // Same result when built from scratch: the shape depends on the keys alone.
        let mut final_keys: Vec<&str> = keys
            .iter()
            .chain(&adds)
            .copied()
            .filter(|k| !dels.contains(k))
            .collect();
        final_keys.sort();
        let rebuilt =
            Mst::from_entries(final_keys.iter().map(|k| (k.as_bytes(), leaf))).expect("build");
        assert_eq!(rebuilt.root_cid(), after.root_cid(), "{name}: rebuilt");

        // Invert the commit on a partial tree that holds only the proof blocks.
        let full = all_blocks(&after);
        let proof: HashMap<Cid, Vec<u8>> = case["blocksInProof"]
            .as_array()
            .expect("blocksInProof")
            .iter()
            .map(|c| {
                let c = cid(c);
                let bytes = full
                    .get(&c)
                    .unwrap_or_else(|| panic!("{name}: proof block {c} not in tree"))
                    .clone();
                (c, bytes)
            })
            .collect();
        let mut partial = Mst::load(&after.root_cid(), &proof).expect("load partial");
        for k in &adds {
            assert_eq!(
                partial.remove(k.as_bytes(), &proof).expect("invert add"),
                Some(leaf),
                "{name}"
            );
        }
        for k in &dels {
            assert_eq!(
                partial
                    .insert(k.as_bytes(), leaf, &proof)
                    .expect("invert del"),
                None,
                "{name}"
            );
        }
        assert_eq!(
            partial.root_cid(),
            cid(&case["rootBeforeCommit"]),
            "{name}: inverted root"
        );
    }
    assert!(cases.len() >= 5);
}

#[test]
fn example_keys_round_trip_through_blocks() {
    let path = format!("{DIR}/mst/example_keys.txt");
    let text = std::fs::read_to_string(&path).expect("example keys");
    let keys: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert!(keys.len() > 100);
    let leaf: Cid = "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454"
        .parse()
        .expect("cid");
    let mut t = Mst::from_entries(keys.iter().map(|k| (k.as_bytes(), leaf))).expect("build");
    let blocks = all_blocks(&t);
    let mut loaded = Mst::load(&t.root_cid(), &blocks).expect("load");
    let walked = loaded.entries(&blocks).expect("walk");
    let mut sorted: Vec<&str> = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(walked.len(), sorted.len());
    for ((k, v), want) in walked.iter().zip(&sorted) {
        assert_eq!(k.as_slice(), want.as_bytes());
        assert_eq!(v, &leaf);
    }
    // Removing every key in a scrambled order ends at the empty tree.
    let empty = Mst::new().root_cid();
    for (i, k) in sorted
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .chain(sorted.iter().enumerate().filter(|(i, _)| i % 2 == 1))
    {
        let _ = i;
        assert_eq!(
            loaded.remove(k.as_bytes(), &blocks).expect("remove"),
            Some(leaf)
        );
    }
    assert_eq!(loaded.root_cid(), empty);
    let _ = t.entries(&blocks).expect("walk original");
}
