//! One simulated account: identity, keys, repository and what it has written.

use skystream_crypto::{Algorithm, PrivateKey};
use skystream_repo::RepoWriter;
use skystream_syntax::Tid;

use crate::rng::{mix, Rng};
use crate::text::{lang_weights, NAMES};

const MICROS_MASK: u64 = (1 << 53) - 1;
const DID_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The collections an account's deletable records live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coll {
    Post,
    Like,
    Repost,
    Follow,
    Block,
}

impl Coll {
    pub(crate) fn nsid(self) -> &'static str {
        match self {
            Coll::Post => "app.bsky.feed.post",
            Coll::Like => "app.bsky.feed.like",
            Coll::Repost => "app.bsky.feed.repost",
            Coll::Follow => "app.bsky.graph.follow",
            Coll::Block => "app.bsky.graph.block",
        }
    }
}

/// A record that exists in the account's repository and may be deleted.
#[derive(Clone, Debug)]
pub(crate) struct Live {
    pub path: String,
    pub coll: Coll,
}

/// One account.
#[derive(Debug)]
pub(crate) struct Account {
    /// Serial number across the run (replacements get new ones).
    pub no: u64,
    pub did: String,
    pub handle: String,
    pub name: &'static str,
    /// The DID document lists the key in the legacy `EcdsaSecp256*VerificationKey2019` form.
    pub legacy_doc: bool,
    pub pds: String,
    pub repo: RepoWriter,
    pub home_lang: usize,
    pub live: Vec<Live>,
    pub has_profile: bool,
    pub active: bool,
    /// Records created or updated so far (the repository writer keeps every one in memory).
    pub writes: usize,
    last_tid: u64,
    clock_id: u16,
}

impl Account {
    /// Account number `no` of the run seeded with `seed`: everything about it derives from
    /// those two numbers alone.
    pub(crate) fn new(seed: u64, no: u64) -> Self {
        let mut r = Rng::new(mix(seed ^ mix(no.wrapping_add(0x5eed))));
        let did: String = "did:plc:"
            .chars()
            .chain((0..24).map(|_| char::from(DID_ALPHABET[r.index(32)])))
            .collect();
        // Most of the network is on K-256; P-256 keys are a minority.
        let alg = if r.chance(250) {
            Algorithm::P256
        } else {
            Algorithm::K256
        };
        let key = PrivateKey::from_seed(alg, r.next_u64());
        let legacy_doc = r.chance(200);
        let home_lang = r.weighted(&lang_weights());
        let name = *r.pick(NAMES);
        let pds = format!("https://pds{}.sim.test", 1 + r.below(8));
        let clock_id = r.below(1024) as u16;
        Account {
            no,
            handle: format!("user{no}.sim.test"),
            repo: RepoWriter::new(did.clone(), key),
            did,
            name,
            legacy_doc,
            pds,
            home_lang,
            live: Vec::new(),
            has_profile: false,
            active: true,
            writes: 0,
            last_tid: 0,
            clock_id,
        }
    }

    /// The next TID from this account's clock: from `time_us` when that is ahead of the last
    /// one, else one past the last, so record keys and revisions strictly increase.
    pub(crate) fn next_tid(&mut self, time_us: i64) -> Tid {
        let micros = u64::try_from(time_us).unwrap_or(0) & MICROS_MASK;
        let candidate = (micros << 10) | u64::from(self.clock_id);
        self.last_tid = candidate.max(self.last_tid + 1);
        Tid::from_u64(self.last_tid)
    }

    /// The DID document as JSON (the `did_docs.json` layout's values).
    pub(crate) fn doc_json(&self) -> serde_json::Value {
        let public = self.repo.key().public_key();
        let (kind, multibase) = if self.legacy_doc {
            (
                public.algorithm().legacy_did_doc_type().to_owned(),
                public.to_legacy_multibase(),
            )
        } else {
            ("Multikey".to_owned(), public.to_multikey())
        };
        let did = &self.did;
        serde_json::json!({
            "@context": [
                "https://www.w3.org/ns/did/v1",
                "https://w3id.org/security/multikey/v1",
                "https://w3id.org/security/suites/secp256k1-2019/v1"
            ],
            "id": did,
            "alsoKnownAs": [format!("at://{}", self.handle)],
            "verificationMethod": [{
                "id": format!("{did}#atproto"),
                "type": kind,
                "controller": did,
                "publicKeyMultibase": multibase,
            }],
            "service": [{
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": self.pds,
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_valid_and_stable() {
        let a = Account::new(1, 7);
        let b = Account::new(1, 7);
        assert_eq!(a.did, b.did);
        assert_ne!(a.did, Account::new(2, 7).did);
        assert_ne!(a.did, Account::new(1, 8).did);
        assert!(skystream_syntax::is_valid_did(&a.did));
        assert_eq!(a.did.len(), "did:plc:".len() + 24);
        assert!(skystream_syntax::is_valid_handle(&a.handle));
        let doc =
            skystream_identity::DidDocument::from_json(&a.doc_json().to_string()).expect("doc");
        assert_eq!(doc.handle(), Some(a.handle.as_str()));
        assert_eq!(doc.signing_key().expect("key"), a.repo.key().public_key());
    }

    #[test]
    fn tids_strictly_increase() {
        let mut a = Account::new(3, 0);
        let t0 = a.next_tid(1_700_000_000_000_000);
        let t1 = a.next_tid(1_700_000_000_000_000);
        let t2 = a.next_tid(1_600_000_000_000_000);
        let t3 = a.next_tid(1_700_000_000_000_100);
        assert!(t0 < t1 && t1 < t2 && t2 < t3);
        assert!(skystream_syntax::is_valid_tid(t3.as_str()));
    }
}
