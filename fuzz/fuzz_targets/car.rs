//! Any bytes as a CAR: index, check CIDs, and walk the MST of the first root's commit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skystream_repo::{Car, Commit, Mst};

fuzz_target!(|data: &[u8]| {
    let Ok(car) = Car::parse(data) else { return };
    let _ = car.verify_cids();
    let Some(root) = car.roots().first() else {
        return;
    };
    let Some(block) = car.get(root) else { return };
    let Ok(commit) = Commit::decode(block) else {
        return;
    };
    if let Ok(mut tree) = Mst::load(&commit.unsigned.data, &car) {
        let _ = tree.entries(&car);
        let _ = tree.root_cid();
    }
});
