//! A directory of the simulated accounts' DID documents that follows the simulator live.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use skystream_identity::{DidDocument, Directory};

/// The simulator's DID documents, shared: clones see every account the simulator creates
/// and every handle it changes, so a verifier on another thread stays current.
#[derive(Clone, Debug, Default)]
pub struct SimDirectory {
    docs: Arc<RwLock<HashMap<String, Arc<DidDocument>>>>,
}

impl SimDirectory {
    pub(crate) fn insert(&self, doc: DidDocument) {
        let mut docs = self.docs.write().unwrap_or_else(PoisonError::into_inner);
        docs.insert(doc.id.clone(), Arc::new(doc));
    }

    /// How many documents it holds (every account ever created, deleted ones included).
    pub fn len(&self) -> usize {
        self.docs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Directory for SimDirectory {
    fn lookup(&self, did: &str) -> Option<Arc<DidDocument>> {
        let docs = self.docs.read().unwrap_or_else(PoisonError::into_inner);
        docs.get(did).cloned()
    }
}
