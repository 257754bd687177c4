//! A small XRPC client for a PDS: what publishing feed generator records needs.
//!
//! This crate owns the calls `skystream publish`, `unpublish` and `verify` make to the
//! publisher's PDS — `com.atproto.server.createSession` (an app password),
//! `com.atproto.repo.uploadBlob`, `putRecord`, `deleteRecord` and `getRecord` — with XRPC
//! errors turned into messages that say what to check. Requests time out; nothing is retried
//! silently.

use std::time::Duration;

use serde_json::{json, Value};

/// A failed XRPC call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{method}: {message}")]
pub struct XrpcError {
    /// The XRPC method.
    pub method: String,
    /// The HTTP status, if the server answered.
    pub status: Option<u16>,
    /// The XRPC error name, if the server gave one.
    pub error: Option<String>,
    /// What happened.
    pub message: String,
}

/// A logged-in session on a PDS.
#[derive(Clone, Debug)]
pub struct Session {
    /// The account's DID.
    pub did: String,
    /// The account's handle.
    pub handle: String,
    access_jwt: String,
}

/// An XRPC client for one PDS.
#[derive(Clone, Debug)]
pub struct PdsClient {
    base: String,
    http: reqwest::Client,
}

impl PdsClient {
    /// A client for the PDS at `base` (e.g. `https://bsky.social`).
    pub fn new(base: &str) -> Result<Self, XrpcError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("skystream/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| XrpcError {
                method: "client".into(),
                status: None,
                error: None,
                message: e.to_string(),
            })?;
        Ok(PdsClient {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    fn url(&self, method: &str) -> String {
        format!("{}/xrpc/{method}", self.base)
    }

    async fn finish(
        method: &str,
        resp: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<Value, XrpcError> {
        let fail = |status: Option<u16>, error: Option<String>, message: String| XrpcError {
            method: method.to_owned(),
            status,
            error,
            message,
        };
        let resp = resp.map_err(|e| fail(None, None, format!("cannot reach the PDS: {e}")))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let error = body.get("error").and_then(Value::as_str).map(str::to_owned);
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_owned();
        let hint = match (status, error.as_deref()) {
            (401, _) | (_, Some("AuthenticationRequired")) => {
                " (check the handle and the app password)"
            }
            (404, _) => " (is this the account's PDS?)",
            _ => "",
        };
        Err(fail(
            Some(status),
            error.clone(),
            format!(
                "HTTP {status} {}: {message}{hint}",
                error.unwrap_or_default()
            ),
        ))
    }

    /// Logs in with a handle (or DID) and an app password.
    pub async fn create_session(
        &self,
        identifier: &str,
        password: &str,
    ) -> Result<Session, XrpcError> {
        let m = "com.atproto.server.createSession";
        let v = Self::finish(
            m,
            self.http
                .post(self.url(m))
                .json(&json!({"identifier": identifier, "password": password}))
                .send()
                .await,
        )
        .await?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        match (s("did"), s("accessJwt")) {
            (Some(did), Some(access_jwt)) => Ok(Session {
                did,
                handle: s("handle").unwrap_or_default(),
                access_jwt,
            }),
            _ => Err(XrpcError {
                method: m.into(),
                status: None,
                error: None,
                message: "the session has no did or accessJwt".into(),
            }),
        }
    }

    /// Uploads a blob; returns the blob object to put in a record.
    pub async fn upload_blob(
        &self,
        session: &Session,
        bytes: Vec<u8>,
        mime: &str,
    ) -> Result<Value, XrpcError> {
        let m = "com.atproto.repo.uploadBlob";
        let v = Self::finish(
            m,
            self.http
                .post(self.url(m))
                .bearer_auth(&session.access_jwt)
                .header("content-type", mime)
                .body(bytes)
                .send()
                .await,
        )
        .await?;
        v.get("blob").cloned().ok_or_else(|| XrpcError {
            method: m.into(),
            status: None,
            error: None,
            message: "the answer has no blob".into(),
        })
    }

    /// Creates or replaces a record in the session's repository; returns its URI.
    pub async fn put_record(
        &self,
        session: &Session,
        collection: &str,
        rkey: &str,
        record: Value,
    ) -> Result<String, XrpcError> {
        let m = "com.atproto.repo.putRecord";
        let v = Self::finish(
            m,
            self.http
                .post(self.url(m))
                .bearer_auth(&session.access_jwt)
                .json(&json!({"repo": session.did, "collection": collection, "rkey": rkey, "record": record}))
                .send()
                .await,
        )
        .await?;
        Ok(v.get("uri")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }

    /// Deletes a record from the session's repository.
    pub async fn delete_record(
        &self,
        session: &Session,
        collection: &str,
        rkey: &str,
    ) -> Result<(), XrpcError> {
        let m = "com.atproto.repo.deleteRecord";
        Self::finish(
            m,
            self.http
                .post(self.url(m))
                .bearer_auth(&session.access_jwt)
                .json(&json!({"repo": session.did, "collection": collection, "rkey": rkey}))
                .send()
                .await,
        )
        .await
        .map(drop)
    }

    /// Reads a record (no session needed); `None` when it does not exist.
    pub async fn get_record(
        &self,
        repo: &str,
        collection: &str,
        rkey: &str,
    ) -> Result<Option<Value>, XrpcError> {
        let m = "com.atproto.repo.getRecord";
        let resp = self
            .http
            .get(self.url(m))
            .query(&[("repo", repo), ("collection", collection), ("rkey", rkey)])
            .send()
            .await;
        match Self::finish(m, resp).await {
            Ok(v) => Ok(v.get("value").cloned()),
            Err(e) if e.error.as_deref() == Some("RecordNotFound") || e.status == Some(404) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}
