//! Hand-made MSTs that a hostile export could carry: one node under many parents (a "DAG
//! bomb": a 150 KB export naming ~10⁶ node copies), keys that rise within each node but not
//! across subtrees, and a block that is not what its CID names. The walk refuses each with a
//! reason, after a bounded amount of work.

use std::collections::HashMap;

use skystream_data::{cid_for, encode_to_vec, Cid, Map, Value, DAG_CBOR};
use skystream_repo::{key_height, Mst, RepoErrorKind};

/// Keys of `height`, in increasing order, from a numbered sequence under `prefix`.
fn keys_of_height(prefix: &str, height: u32, n: usize) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = (0..)
        .map(|i| format!("app.bsky.feed.post/{prefix}{i:08}").into_bytes())
        .filter(|k| key_height(k) == height)
        .take(n)
        .collect();
    out.sort();
    out
}

/// Encodes a node: `left`, then each key with its right child.
fn node(left: Option<Cid>, entries: &[(Vec<u8>, Option<Cid>)], value: Cid) -> Vec<u8> {
    let mut prev: &[u8] = &[];
    let mut e = Vec::new();
    for (k, right) in entries {
        let p = prev.iter().zip(k).take_while(|(a, b)| a == b).count();
        e.push(Value::Map(
            Map::new()
                .with("p", p as i64)
                .with("k", k[p..].to_vec())
                .with("v", value)
                .with("t", right.map_or(Value::Null, Value::Link)),
        ));
        prev = k;
    }
    encode_to_vec(&Value::Map(
        Map::new()
            .with("l", left.map_or(Value::Null, Value::Link))
            .with("e", Value::Array(e)),
    ))
}

fn put(blocks: &mut HashMap<Cid, Vec<u8>>, bytes: Vec<u8>) -> Cid {
    let cid = cid_for(DAG_CBOR, &bytes);
    blocks.insert(cid, bytes);
    cid
}

fn record() -> Cid {
    cid_for(
        DAG_CBOR,
        &encode_to_vec(&Value::Map(Map::new().with("x", 1i64))),
    )
}

#[test]
fn one_node_under_many_parents_is_refused_before_it_is_read_twice() {
    let mut blocks = HashMap::new();
    let v = record();
    let leaf = put(
        &mut blocks,
        node(None, &[(keys_of_height("a", 0, 1)[0].clone(), None)], v),
    );
    // 500 keys at layer 1, every pointer naming the same leaf; 500 at layer 2 naming that node.
    let mid_keys = keys_of_height("b", 1, 500);
    let mid = put(
        &mut blocks,
        node(
            Some(leaf),
            &mid_keys
                .iter()
                .map(|k| (k.clone(), Some(leaf)))
                .collect::<Vec<_>>(),
            v,
        ),
    );
    let root_keys = keys_of_height("c", 2, 500);
    let root = put(
        &mut blocks,
        node(
            Some(mid),
            &root_keys
                .iter()
                .map(|k| (k.clone(), Some(mid)))
                .collect::<Vec<_>>(),
            v,
        ),
    );
    let bytes: usize = blocks.values().map(Vec::len).sum();
    let mut mst = Mst::load(&root, &blocks).expect("the root itself is well formed");
    let mut visited = 0usize;
    let err = mst
        .walk(&blocks, &mut |_, _| {
            visited += 1;
            Ok(())
        })
        .expect_err("a node named twice is refused");
    assert_eq!(err.kind, RepoErrorKind::MstNode, "{err}");
    assert!(err.to_string().contains("more than one pointer"), "{err}");
    // The export is a few KB; without the check the walk would visit 250,000 leaf copies.
    assert!(
        visited <= 2,
        "{visited} entries visited from a {bytes}-byte bomb"
    );
}

#[test]
fn keys_must_rise_across_subtrees_not_only_within_a_node() {
    let mut blocks = HashMap::new();
    let v = record();
    let mid_key = keys_of_height("m", 1, 1)[0].clone();
    // A leaf whose only key sorts after its parent's first key, yet sits on the parent's left.
    let late = keys_of_height("z", 0, 1)[0].clone();
    assert!(late > mid_key);
    let leaf = put(&mut blocks, node(None, &[(late, None)], v));
    let root = put(&mut blocks, node(Some(leaf), &[(mid_key, None)], v));
    let mut mst = Mst::load(&root, &blocks).expect("root");
    let err = mst
        .walk(&blocks, &mut |_, _| Ok(()))
        .expect_err("out of order across subtrees");
    assert!(err.to_string().contains("out of order"), "{err}");
}

#[test]
fn a_node_block_that_is_not_what_its_cid_names_is_refused() {
    let mut blocks = HashMap::new();
    let v = record();
    let leaf_bytes = node(None, &[(keys_of_height("a", 0, 1)[0].clone(), None)], v);
    let leaf = cid_for(DAG_CBOR, &leaf_bytes);
    let other = node(None, &[(keys_of_height("q", 0, 1)[0].clone(), None)], v);
    blocks.insert(leaf, other);
    let root = put(
        &mut blocks,
        node(
            Some(leaf),
            &[(keys_of_height("m", 1, 1)[0].clone(), None)],
            v,
        ),
    );
    let mut mst = Mst::load(&root, &blocks).expect("root");
    let err = mst
        .walk(&blocks, &mut |_, _| Ok(()))
        .expect_err("a swapped block");
    assert!(err.to_string().contains("does not match its CID"), "{err}");
}
