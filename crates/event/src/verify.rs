//! Checking one firehose commit against a directory of DID documents, with each check's
//! outcome kept apart so reports can say which one failed.

use skystream_crypto::PublicKey;
use skystream_firehose::CommitMsg;
use skystream_identity::{DidDocument, Directory};
use skystream_repo::{check_commit_block, check_prev_data, Car, CommitOp};

/// The outcome of each check on one commit.
#[derive(Debug)]
pub struct CommitCheck {
    /// Block CIDs, commit shape and the signature.
    pub signature: Result<(), String>,
    /// Inverting the ops to prevData; `None` when the commit has no prevData or the signature
    /// step already failed.
    pub prev_data: Option<Result<(), String>>,
}

/// Runs every check on `msg`, looking the author's key up in `dir`.
pub fn check_commit(msg: &CommitMsg<'_>, dir: &dyn Directory) -> CommitCheck {
    match dir.lookup(msg.repo) {
        Some(doc) => check_commit_with_doc(msg, &doc),
        None => CommitCheck {
            signature: Err(format!("no DID document for {}", msg.repo)),
            prev_data: None,
        },
    }
}

/// Runs every check on `msg` against the author's DID document.
pub fn check_commit_with_doc(msg: &CommitMsg<'_>, doc: &DidDocument) -> CommitCheck {
    match doc.signing_key() {
        Ok(key) => check_commit_with_key(msg, &key),
        Err(e) => CommitCheck {
            signature: Err(e.to_string()),
            prev_data: None,
        },
    }
}

/// Runs every check on `msg` against the author's signing key.
pub fn check_commit_with_key(msg: &CommitMsg<'_>, key: &PublicKey) -> CommitCheck {
    let failed = |e: String| CommitCheck {
        signature: Err(e),
        prev_data: None,
    };
    let car = match Car::parse(msg.blocks) {
        Ok(c) => c,
        Err(e) => return failed(e.to_string()),
    };
    let commit = match check_commit_block(&car, &msg.commit, msg.repo, msg.rev) {
        Ok(c) => c,
        Err(e) => return failed(e.to_string()),
    };
    if let Err(e) = commit.verify_signature(key) {
        return failed(e.to_string());
    }
    let prev_data = msg.prev_data.as_ref().map(|prev| {
        let paths: Vec<String> = msg.ops.iter().map(|o| o.path()).collect();
        let ops: Vec<CommitOp<'_>> = msg
            .ops
            .iter()
            .zip(&paths)
            .map(|(o, path)| CommitOp {
                action: o.action,
                path,
                cid: o.cid,
                prev: o.prev,
            })
            .collect();
        check_prev_data(&car, &commit, &ops, prev).map_err(|e| e.to_string())
    });
    CommitCheck {
        signature: Ok(()),
        prev_data,
    }
}
