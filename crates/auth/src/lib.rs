//! Service auth: verifying the inter-service JWTs a feed generator receives.
//!
//! This crate owns atproto service authentication on the receiving side. A request from the
//! AppView carries `Authorization: Bearer <jwt>`, a compact JWS minted by the requesting user's
//! PDS and signed (ES256K or ES256) with the user's `#atproto` key; [`ServiceAuth`] checks its
//! header, its claims (`aud` = our service DID, `lxm` = the method called, `exp`/`iat` with clock
//! leeway, `iss` a DID) and its signature against the issuer's DID document, found through a
//! [`Resolver`](skystream_identity::Resolver) — re-resolving once when the signature fails,
//! since keys rotate — and remembers verified tokens until they expire. Refusals are
//! [`AuthError`]s carrying the XRPC error names of the reference implementation. [`mint`]
//! makes tokens the way a PDS does, for tests and tools. It does no I/O of its own.
//!
//! ```
//! use std::sync::Arc;
//! use skystream_auth::{mint, ServiceAuth};
//! use skystream_crypto::{Algorithm, PrivateKey};
//! use skystream_identity::{DidDocument, MemoryDirectory};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let user = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
//! let key = PrivateKey::from_seed(Algorithm::K256, 1);
//! let mut directory = MemoryDirectory::new();
//! directory.insert(DidDocument::from_json(&format!(
//!     r#"{{"id": "{user}", "verificationMethod": [{{"id": "{user}#atproto",
//!         "type": "Multikey", "publicKeyMultibase": "{}"}}]}}"#,
//!     key.public_key().to_multikey()
//! )).unwrap());
//!
//! let auth = ServiceAuth::new("did:web:feed.example.com", Arc::new(directory));
//! let lxm = "app.bsky.feed.getFeedSkeleton";
//! let exp = std::time::SystemTime::now()
//!     .duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 + 60;
//! let token = mint(&key, user, "did:web:feed.example.com", lxm, exp);
//! let requester = auth.verify(Some(&format!("Bearer {token}")), lxm).await.unwrap();
//! assert_eq!(requester.did, user);
//!
//! let refused = auth.verify(None, lxm).await.unwrap_err();
//! assert_eq!((refused.status(), refused.error_name()), (401, "AuthenticationRequired"));
//! # }
//! ```

mod error;
mod jwt;
mod verify;

pub use error::{AuthError, AuthErrorKind};
pub use jwt::mint;
pub use verify::{Requester, ServiceAuth, DEFAULT_LEEWAY, DEFAULT_TOKEN_CACHE_ENTRIES};
