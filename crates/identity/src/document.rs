use serde::Deserialize;
use skystream_crypto::PublicKey;

/// Why a DID document could not give what was asked of it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The document has no `#atproto` verification method.
    #[error("DID document for {0} has no #atproto verification method")]
    NoSigningKey(String),
    /// The `#atproto` key could not be parsed.
    #[error("DID document for {did}: bad #atproto key: {reason}")]
    BadKey {
        /// The document's DID.
        did: String,
        /// What was wrong with the key.
        reason: String,
    },
    /// The document is not valid JSON of the expected shape.
    #[error("invalid DID document: {0}")]
    Malformed(String),
}

/// A verification method entry.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMethod {
    /// `did:…#atproto` or `#atproto`.
    pub id: String,
    /// `Multikey` or a legacy suite name.
    #[serde(rename = "type")]
    pub kind: String,
    /// The controlling DID.
    #[serde(default)]
    pub controller: Option<String>,
    /// The key, multibase-encoded.
    #[serde(default)]
    pub public_key_multibase: Option<String>,
}

/// A service entry.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// e.g. `#atproto_pds`.
    pub id: String,
    /// e.g. `AtprotoPersonalDataServer`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The endpoint URL (kept as JSON: the spec allows objects too).
    pub service_endpoint: serde_json::Value,
}

/// The parts of a DID document atproto uses.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DidDocument {
    /// The DID.
    pub id: String,
    /// `at://handle` entries.
    #[serde(default)]
    pub also_known_as: Vec<String>,
    /// Keys.
    #[serde(default)]
    pub verification_method: Vec<VerificationMethod>,
    /// Services.
    #[serde(default)]
    pub service: Vec<Service>,
}

fn is_fragment(id: &str, did: &str, fragment: &str) -> bool {
    id == fragment || id.strip_prefix(did) == Some(fragment)
}

impl DidDocument {
    /// Parses a document from JSON.
    pub fn from_json(json: &str) -> Result<Self, IdentityError> {
        serde_json::from_str(json).map_err(|e| IdentityError::Malformed(e.to_string()))
    }

    /// The `#atproto` signing key.
    pub fn signing_key(&self) -> Result<PublicKey, IdentityError> {
        let vm = self
            .verification_method
            .iter()
            .find(|vm| is_fragment(&vm.id, &self.id, "#atproto"))
            .ok_or_else(|| IdentityError::NoSigningKey(self.id.clone()))?;
        let mb = vm
            .public_key_multibase
            .as_deref()
            .ok_or_else(|| IdentityError::BadKey {
                did: self.id.clone(),
                reason: "no publicKeyMultibase".into(),
            })?;
        PublicKey::from_did_document_method(&vm.kind, mb).map_err(|e| IdentityError::BadKey {
            did: self.id.clone(),
            reason: e.to_string(),
        })
    }

    /// The first `at://` handle in `alsoKnownAs` (unverified: a handle is confirmed only by
    /// resolving it back to this DID).
    pub fn handle(&self) -> Option<&str> {
        self.also_known_as
            .iter()
            .find_map(|aka| aka.strip_prefix("at://"))
    }

    /// The `#atproto_pds` service endpoint.
    pub fn pds_endpoint(&self) -> Option<&str> {
        self.service
            .iter()
            .find(|s| {
                is_fragment(&s.id, &self.id, "#atproto_pds")
                    && s.kind == "AtprotoPersonalDataServer"
            })
            .and_then(|s| s.service_endpoint.as_str())
    }
}
