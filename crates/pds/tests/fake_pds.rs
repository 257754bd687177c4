//! The client against a loopback PDS that keeps records in memory. (The end-to-end test against
//! the reference PDS from @atproto/dev-env is still to come; this pins the wire shapes.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use skystream_pds::PdsClient;

type Records = Arc<Mutex<HashMap<String, Value>>>;
const DID: &str = "did:plc:publisherpublisherpublis";

fn authed(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer access-token")
}

async fn fake_pds() -> (String, Records) {
    let records: Records = Arc::new(Mutex::new(HashMap::new()));
    let app = Router::new()
        .route(
            "/xrpc/com.atproto.server.createSession",
            post(|Json(b): Json<Value>| async move {
                if b["identifier"] == "alice.test" && b["password"] == "app-pass-word" {
                    (StatusCode::OK, Json(json!({"did": DID, "handle": "alice.test", "accessJwt": "access-token", "refreshJwt": "r"})))
                } else {
                    (StatusCode::UNAUTHORIZED, Json(json!({"error": "AuthenticationRequired", "message": "Invalid identifier or password"})))
                }
            }),
        )
        .route(
            "/xrpc/com.atproto.repo.putRecord",
            post(|State(r): State<Records>, h: HeaderMap, Json(b): Json<Value>| async move {
                if !authed(&h) {
                    return (StatusCode::UNAUTHORIZED, Json(json!({"error": "AuthenticationRequired"})));
                }
                let uri = format!("at://{}/{}/{}", b["repo"].as_str().unwrap_or(""), b["collection"].as_str().unwrap_or(""), b["rkey"].as_str().unwrap_or(""));
                r.lock().expect("lock").insert(uri.clone(), b["record"].clone());
                (StatusCode::OK, Json(json!({"uri": uri, "cid": "bafy"})))
            }),
        )
        .route(
            "/xrpc/com.atproto.repo.deleteRecord",
            post(|State(r): State<Records>, h: HeaderMap, Json(b): Json<Value>| async move {
                if !authed(&h) {
                    return (StatusCode::UNAUTHORIZED, Json(json!({"error": "AuthenticationRequired"})));
                }
                let uri = format!("at://{}/{}/{}", b["repo"].as_str().unwrap_or(""), b["collection"].as_str().unwrap_or(""), b["rkey"].as_str().unwrap_or(""));
                r.lock().expect("lock").remove(&uri);
                (StatusCode::OK, Json(json!({})))
            }),
        )
        .route(
            "/xrpc/com.atproto.repo.uploadBlob",
            post(|h: HeaderMap, body: axum::body::Bytes| async move {
                let mime = h.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                Json(json!({"blob": {"$type": "blob", "ref": {"$link": "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity"}, "mimeType": mime, "size": body.len()}}))
            }),
        )
        .route(
            "/xrpc/com.atproto.repo.getRecord",
            get(|State(r): State<Records>, Query(q): Query<HashMap<String, String>>| async move {
                let uri = format!("at://{}/{}/{}", q["repo"], q["collection"], q["rkey"]);
                match r.lock().expect("lock").get(&uri) {
                    Some(v) => (StatusCode::OK, Json(json!({"uri": uri, "value": v}))),
                    None => (StatusCode::BAD_REQUEST, Json(json!({"error": "RecordNotFound", "message": "Could not locate record"}))),
                }
            }),
        )
        .with_state(records.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), records)
}

#[tokio::test]
async fn publish_read_and_unpublish() {
    let (url, records) = fake_pds().await;
    let pds = PdsClient::new(&url).expect("client");
    let bad = pds
        .create_session("alice.test", "wrong")
        .await
        .expect_err("wrong password");
    assert_eq!(bad.status, Some(401));
    assert!(bad.message.contains("app password"), "{bad}");

    let s = pds
        .create_session("alice.test", "app-pass-word")
        .await
        .expect("session");
    assert_eq!(s.did, DID);
    let blob = pds
        .upload_blob(&s, vec![0x89, b'P', b'N', b'G'], "image/png")
        .await
        .expect("blob");
    assert_eq!(blob["mimeType"], "image/png");
    let record = json!({"$type": "app.bsky.feed.generator", "did": "did:web:feeds.test", "displayName": "Bokmål", "avatar": blob, "createdAt": "2026-11-22T00:00:00.000Z"});
    let uri = pds
        .put_record(&s, "app.bsky.feed.generator", "bokmaal", record)
        .await
        .expect("put");
    assert_eq!(uri, format!("at://{DID}/app.bsky.feed.generator/bokmaal"));
    let got = pds
        .get_record(DID, "app.bsky.feed.generator", "bokmaal")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got["did"], "did:web:feeds.test");
    pds.delete_record(&s, "app.bsky.feed.generator", "bokmaal")
        .await
        .expect("delete");
    assert_eq!(
        pds.get_record(DID, "app.bsky.feed.generator", "bokmaal")
            .await
            .expect("get"),
        None
    );
    assert!(records.lock().expect("lock").is_empty());
}
