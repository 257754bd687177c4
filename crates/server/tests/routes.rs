//! The routes, driven through the router without a socket, over the in-memory feed store and
//! real service-auth tokens.

use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use skystream_auth::{mint, ServiceAuth};
use skystream_crypto::{Algorithm, PrivateKey};
use skystream_identity::{DidDocument, MemoryDirectory};
use skystream_server::{
    router, AppState, AuthMode, Catalog, FeedInfo, HealthStatus, RankingKind, ServiceIdentity,
};
use skystream_store::{FeedStore, FeedWrite, Membership, MemoryStore, PostRow};
use tower::ServiceExt;

const SERVICE: &str = "did:web:feeds.test";
const PUBLISHER: &str = "did:plc:publisherpublisherpublis";
const USER: &str = "did:plc:useruseruseruseruseruser";

fn state(store: Arc<dyn FeedStore>, key: &PrivateKey) -> AppState {
    let mut dir = MemoryDirectory::new();
    let doc = serde_json::json!({"id": USER, "verificationMethod": [{"id": format!("{USER}#atproto"),
        "type": "Multikey", "publicKeyMultibase": key.public_key().to_multikey()}]});
    dir.insert(DidDocument::from_json(&doc.to_string()).expect("doc"));
    let feeds = vec![
        FeedInfo {
            id: "chrono".into(),
            ranking: RankingKind::Chronological,
            auth: AuthMode::Off,
        },
        FeedInfo {
            id: "ranked".into(),
            ranking: RankingKind::Engagement,
            auth: AuthMode::Off,
        },
        FeedInfo {
            id: "private".into(),
            ranking: RankingKind::Chronological,
            auth: AuthMode::Required,
        },
        FeedInfo {
            id: "maybe".into(),
            ranking: RankingKind::Chronological,
            auth: AuthMode::Optional,
        },
    ];
    AppState {
        identity: ServiceIdentity {
            hostname: "feeds.test".into(),
            service_did: SERVICE.into(),
            publisher_did: PUBLISHER.into(),
        },
        catalog: Arc::new(RwLock::new(Arc::new(Catalog { feeds }))),
        store,
        auth: Some(Arc::new(ServiceAuth::new(SERVICE, Arc::new(dir)))),
        health: Arc::new(|| HealthStatus {
            connected: true,
            lag_seconds: Some(1.0),
        }),
        max_lag_seconds: 60.0,
        metrics: None,
    }
}

fn post(i: usize) -> PostRow {
    PostRow {
        uri: format!("at://did:plc:author/app.bsky.feed.post/{i:013}"),
        cid: "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454".into(),
        author: "did:plc:author".into(),
        rkey: format!("{i:013}"),
        created_at_ms: 1_700_000_000_000 + i as i64,
        indexed_at_ms: 1_700_000_000_000 + i as i64,
        text: format!("post {i}"),
        ..PostRow::default()
    }
}

async fn seeded(n: usize) -> Arc<dyn FeedStore> {
    let store = MemoryStore::new();
    let writes = (0..n)
        .map(|i| FeedWrite::UpsertPost {
            post: post(i),
            feeds: ["chrono", "ranked", "private", "maybe"]
                .iter()
                .map(|f| Membership {
                    feed: (*f).into(),
                    // A chronological feed's score is the post's time, as the indexer gives it.
                    score: if *f == "chrono" {
                        post(i).created_at_ms as f64 / 1000.0
                    } else {
                        (i % 7) as f64
                    },
                    min_likes: 0,
                    half_life_s: None,
                })
                .collect(),
        })
        .collect();
    store.apply(writes).await.expect("seed");
    Arc::new(store)
}

async fn get(state: &AppState, uri: &str, auth: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::builder().uri(uri);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = router(state.clone())
        .oneshot(req.body(Body::empty()).expect("req"))
        .await
        .expect("resp");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn feed_uri(id: &str) -> String {
    format!("at://{PUBLISHER}/app.bsky.feed.generator/{id}")
}

fn skeleton(id: &str, extra: &str) -> String {
    format!(
        "/xrpc/app.bsky.feed.getFeedSkeleton?feed={}{extra}",
        feed_uri(id)
    )
}

#[tokio::test]
async fn did_document_and_description() {
    let key = PrivateKey::from_seed(Algorithm::K256, 1);
    let st = state(seeded(0).await, &key);
    let (code, doc) = get(&st, "/.well-known/did.json", None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(doc["id"], SERVICE);
    assert_eq!(doc["service"][0]["id"], "#bsky_fg");
    assert_eq!(doc["service"][0]["type"], "BskyFeedGenerator");
    assert_eq!(doc["service"][0]["serviceEndpoint"], "https://feeds.test");
    let (code, d) = get(&st, "/xrpc/app.bsky.feed.describeFeedGenerator", None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(d["did"], SERVICE);
    let uris: Vec<&str> = d["feeds"]
        .as_array()
        .expect("feeds")
        .iter()
        .map(|f| f["uri"].as_str().expect("uri"))
        .collect();
    assert_eq!(
        uris,
        vec![
            feed_uri("chrono"),
            feed_uri("ranked"),
            feed_uri("private"),
            feed_uri("maybe")
        ]
    );
}

#[tokio::test]
async fn chronological_pages_serve_every_item_once() {
    let key = PrivateKey::from_seed(Algorithm::K256, 1);
    let st = state(seeded(95).await, &key);
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (code, page) = get(
            &st,
            &skeleton("chrono", &format!("&limit=30{cursor}")),
            None,
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{page}");
        assert!(page["reqId"].is_string());
        for item in page["feed"].as_array().expect("feed") {
            assert_eq!(item["feedContext"], "chrono");
            seen.push(item["post"].as_str().expect("post").to_owned());
        }
        match page["cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let want: Vec<String> = (0..95).rev().map(|i| post(i).uri).collect();
    assert_eq!(seen, want, "newest first, no repeat, no skip");
}

#[tokio::test]
async fn repost_items_carry_the_repost_as_reason() {
    let key = PrivateKey::from_seed(Algorithm::K256, 1);
    let store = seeded(2).await;
    let repost = "at://did:plc:fan/app.bsky.feed.repost/3kfan".to_owned();
    store
        .apply(vec![FeedWrite::UpsertPost {
            post: PostRow {
                uri: repost.clone(),
                author: "did:plc:fan".into(),
                rkey: "3kfan".into(),
                repost_of: Some(post(0).uri),
                ..PostRow::default()
            },
            feeds: vec![Membership {
                feed: "chrono".into(),
                // Reposted after both posts were made.
                score: 1_800_000_000.0,
                min_likes: 0,
                half_life_s: None,
            }],
        }])
        .await
        .expect("repost");
    let st = state(store, &key);
    let (code, page) = get(&st, &skeleton("chrono", "&limit=10"), None).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    let feed = page["feed"].as_array().expect("feed");
    assert_eq!(feed.len(), 3);
    // The newest item is the repost: the reposted post, with the lexicon's reason.
    assert_eq!(
        feed[0],
        serde_json::json!({
            "post": post(0).uri,
            "reason": {"$type": "app.bsky.feed.defs#skeletonReasonRepost", "repost": repost},
            "feedContext": "chrono",
        })
    );
    assert!(feed[1].get("reason").is_none());
    assert_eq!(feed[2]["post"], post(0).uri);
}

#[tokio::test]
async fn ranked_pages_follow_a_snapshot() {
    let key = PrivateKey::from_seed(Algorithm::K256, 1);
    let store = seeded(50).await;
    let st = state(store.clone(), &key);
    let (code, first) = get(&st, &skeleton("ranked", "&limit=20"), None).await;
    assert_eq!(code, StatusCode::OK, "{first}");
    let cursor = first["cursor"].as_str().expect("cursor").to_owned();
    // The ranking changes after page one: the snapshot keeps later pages consistent.
    store
        .apply(vec![FeedWrite::SetScore {
            feed: "ranked".into(),
            uri: post(0).uri,
            score: 1000.0,
        }])
        .await
        .expect("rescore");
    let mut all: Vec<String> = first["feed"]
        .as_array()
        .expect("feed")
        .iter()
        .map(|i| i["post"].as_str().expect("p").to_owned())
        .collect();
    let mut c = cursor;
    loop {
        let (code, page) = get(
            &st,
            &skeleton("ranked", &format!("&limit=20&cursor={c}")),
            None,
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{page}");
        all.extend(
            page["feed"]
                .as_array()
                .expect("feed")
                .iter()
                .map(|i| i["post"].as_str().expect("p").to_owned()),
        );
        match page["cursor"].as_str() {
            Some(n) => c = n.to_owned(),
            None => break,
        }
    }
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        50,
        "every item exactly once across the snapshot's pages"
    );
    assert_eq!(all.len(), 50);
}

#[tokio::test]
async fn bad_input_is_an_xrpc_400_never_a_500() {
    let key = PrivateKey::from_seed(Algorithm::K256, 1);
    let st = state(seeded(3).await, &key);
    let cases = [
        ("/xrpc/app.bsky.feed.getFeedSkeleton", "InvalidRequest"),
        (&skeleton("chrono", "&limit=0") as &str, "InvalidRequest"),
        (&skeleton("chrono", "&limit=101"), "InvalidRequest"),
        (&skeleton("chrono", "&limit=abc"), "InvalidRequest"),
        (&skeleton("chrono", "&cursor=c.1%27%20OR%201%3D1"), "InvalidRequest"),
        (&skeleton("chrono", "&cursor=r.0123456789abcdef0123456789abcdef.0"), "InvalidRequest"),
        (&skeleton("ranked", "&cursor=r.0123456789abcdef0123456789abcdef.0"), "InvalidRequest"),
        (&skeleton("nope", ""), "UnknownFeed"),
        ("/xrpc/app.bsky.feed.getFeedSkeleton?feed=at://did:plc:someoneelse/app.bsky.feed.generator/chrono", "UnknownFeed"),
        (&format!("/xrpc/app.bsky.feed.getFeedSkeleton?feed=at://{PUBLISHER}/app.bsky.feed.post/chrono"), "UnknownFeed"),
        ("/xrpc/app.bsky.feed.getFeedSkeleton?feed=not-a-uri", "InvalidRequest"),
    ];
    for (uri, name) in cases {
        let (code, body) = get(&st, uri, None).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["error"], name, "{uri}");
        assert!(body["message"].is_string());
    }
}

#[tokio::test]
async fn requester_auth_per_feed() {
    let key = PrivateKey::from_seed(Algorithm::P256, 9);
    let st = state(seeded(3).await, &key);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
        + 60;
    let good = format!(
        "Bearer {}",
        mint(&key, USER, SERVICE, "app.bsky.feed.getFeedSkeleton", exp)
    );
    let wrong_aud = format!(
        "Bearer {}",
        mint(
            &key,
            USER,
            "did:web:other.test",
            "app.bsky.feed.getFeedSkeleton",
            exp
        )
    );
    let wrong_lxm = format!(
        "Bearer {}",
        mint(&key, USER, SERVICE, "app.bsky.feed.getTimeline", exp)
    );
    let expired = format!(
        "Bearer {}",
        mint(
            &key,
            USER,
            SERVICE,
            "app.bsky.feed.getFeedSkeleton",
            exp - 3600
        )
    );
    let forged = format!(
        "Bearer {}",
        mint(
            &PrivateKey::from_seed(Algorithm::P256, 10),
            USER,
            SERVICE,
            "app.bsky.feed.getFeedSkeleton",
            exp
        )
    );

    assert_eq!(
        get(&st, &skeleton("private", ""), Some(&good)).await.0,
        StatusCode::OK
    );
    for (token, name) in [
        (None, "AuthenticationRequired"),
        (Some(wrong_aud.as_str()), "BadJwtAudience"),
        (Some(wrong_lxm.as_str()), "BadJwtLexiconMethod"),
        (Some(expired.as_str()), "JwtExpired"),
        (Some(forged.as_str()), "BadJwtSignature"),
        (Some("Bearer not.a.jwt"), "BadJwt"),
    ] {
        let (code, body) = get(&st, &skeleton("private", ""), token).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{name}: {body}");
        assert_eq!(body["error"], name);
    }
    // Optional: nothing is fine, a bad token is still refused.
    assert_eq!(
        get(&st, &skeleton("maybe", ""), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&st, &skeleton("maybe", ""), Some(&forged)).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Off: tokens are not looked at.
    assert_eq!(
        get(&st, &skeleton("chrono", ""), Some(&forged)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn health_reports_lag() {
    let key = PrivateKey::from_seed(Algorithm::K256, 1);
    let mut st = state(seeded(0).await, &key);
    assert_eq!(get(&st, "/health", None).await.0, StatusCode::OK);
    st.health = Arc::new(|| HealthStatus {
        connected: true,
        lag_seconds: Some(600.0),
    });
    let (code, body) = get(&st, "/health", None).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unhealthy");
    st.health = Arc::new(|| HealthStatus {
        connected: false,
        lag_seconds: None,
    });
    assert_eq!(
        get(&st, "/health", None).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}
