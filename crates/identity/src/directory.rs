use std::collections::HashMap;
use std::sync::Arc;

use crate::document::{DidDocument, IdentityError};

/// Where DID documents come from. Implementations cache as they see fit; [`Directory::purge`]
/// drops a cached document (an `#identity` event means it may have changed).
pub trait Directory: Send + Sync {
    /// The document for `did`, if it can be found.
    fn lookup(&self, did: &str) -> Option<Arc<DidDocument>>;

    /// Forgets any cached document for `did`.
    fn purge(&self, _did: &str) {}
}

/// A fixed set of documents held in memory.
#[derive(Clone, Debug, Default)]
pub struct MemoryDirectory {
    docs: HashMap<String, Arc<DidDocument>>,
}

impl MemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a document.
    pub fn insert(&mut self, doc: DidDocument) {
        self.docs.insert(doc.id.clone(), Arc::new(doc));
    }

    /// Loads a JSON object mapping each DID to its document (the `did_docs.json` layout).
    pub fn from_json_map(json: &str) -> Result<Self, IdentityError> {
        let map: HashMap<String, DidDocument> =
            serde_json::from_str(json).map_err(|e| IdentityError::Malformed(e.to_string()))?;
        Ok(MemoryDirectory {
            docs: map.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        })
    }

    /// How many documents it holds.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

impl Directory for MemoryDirectory {
    fn lookup(&self, did: &str) -> Option<Arc<DidDocument>> {
        self.docs.get(did).cloned()
    }
}
