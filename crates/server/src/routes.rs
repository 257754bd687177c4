//! The routes.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use skystream_store::FeedWrite;
use skystream_syntax::AtUri;

use crate::cursor::PageCursor;
use crate::error::XrpcError;
use crate::state::{AppState, AuthMode, FeedInfo, RankingKind};

const SKELETON: &str = "app.bsky.feed.getFeedSkeleton";
const INTERACTIONS: &str = "app.bsky.feed.sendInteractions";
/// How many items a ranking snapshot holds (deeper pages end there).
const SNAPSHOT_DEPTH: usize = 1000;

/// Builds the feed generator's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/.well-known/did.json", get(did_json))
        .route("/xrpc/app.bsky.feed.describeFeedGenerator", get(describe))
        .route("/xrpc/app.bsky.feed.getFeedSkeleton", get(skeleton))
        .route("/xrpc/app.bsky.feed.sendInteractions", post(interactions))
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// 128 random bits as hex (std's randomly keyed hasher; ids need uniqueness, not secrecy).
fn random_hex() -> String {
    let s = std::collections::hash_map::RandomState::new();
    let mut a = s.build_hasher();
    a.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let mut b = s.build_hasher();
    b.write_u64(a.finish() ^ 0x9e37_79b9_7f4a_7c15);
    format!("{:016x}{:016x}", a.finish(), b.finish())
}

async fn did_json(State(st): State<AppState>) -> Response {
    let id = &st.identity.service_did;
    if !id.starts_with("did:web:") {
        return XrpcError {
            status: 404,
            error: "NotFound".into(),
            message: format!(
                "the service DID {id} is not a did:web; its document lives in its own directory"
            ),
        }
        .into_response();
    }
    Json(json!({
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": id,
        "service": [{
            "id": "#bsky_fg",
            "type": "BskyFeedGenerator",
            "serviceEndpoint": format!("https://{}", st.identity.hostname),
        }],
    }))
    .into_response()
}

async fn describe(State(st): State<AppState>) -> Response {
    let catalog = st.catalog();
    let feeds: Vec<Value> = catalog
        .feeds
        .iter()
        .map(|f| json!({"uri": st.identity.feed_uri(&f.id)}))
        .collect();
    Json(json!({"did": st.identity.service_did, "feeds": feeds})).into_response()
}

/// Finds the feed a URI names, or says why not.
fn resolve_feed(st: &AppState, uri: &str) -> Result<FeedInfo, XrpcError> {
    let parsed =
        AtUri::parse(uri).map_err(|e| XrpcError::invalid(format!("feed is not an AT-URI: {e}")))?;
    let (Some(collection), Some(rkey)) = (parsed.collection(), parsed.rkey()) else {
        return Err(XrpcError::unknown_feed(format!(
            "{uri} does not name a feed record"
        )));
    };
    if parsed.authority() != st.identity.publisher_did || collection != "app.bsky.feed.generator" {
        return Err(XrpcError::unknown_feed(format!(
            "{uri} is not a feed of this service"
        )));
    }
    st.catalog()
        .get(rkey)
        .cloned()
        .ok_or_else(|| XrpcError::unknown_feed(format!("no feed {rkey:?} here")))
}

async fn check_auth(
    st: &AppState,
    headers: &HeaderMap,
    mode: AuthMode,
    lxm: &str,
) -> Result<Option<String>, XrpcError> {
    let header = headers.get("authorization").and_then(|v| v.to_str().ok());
    let Some(auth) = &st.auth else {
        return Ok(None);
    };
    match (mode, header) {
        (AuthMode::Off, _) | (AuthMode::Optional, None) => Ok(None),
        _ => Ok(Some(auth.verify(header, lxm).await?.did)),
    }
}

async fn skeleton(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let started = Instant::now();
    let result = skeleton_inner(&st, &headers, &q).await;
    let (feed, code) = match &result {
        Ok((feed, _)) => (feed.clone(), 200),
        Err(e) => ("-".to_owned(), e.status),
    };
    metrics::counter!("skystream_http_requests_total", "endpoint" => SKELETON, "feed" => feed.clone(), "status" => code.to_string()).increment(1);
    metrics::histogram!("skystream_http_request_seconds", "endpoint" => SKELETON, "feed" => feed)
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok((_, body)) => Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn skeleton_inner(
    st: &AppState,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<(String, Value), XrpcError> {
    let uri = q
        .get("feed")
        .ok_or_else(|| XrpcError::invalid("the feed parameter is required"))?;
    let limit = match q.get("limit") {
        None => 50,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return Err(XrpcError::invalid("limit must be an integer from 1 to 100")),
        },
    };
    let cursor = match q.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            Some(PageCursor::parse(c).ok_or_else(|| XrpcError::invalid("malformed cursor"))?)
        }
    };
    let feed = resolve_feed(st, uri)?;
    check_auth(st, headers, feed.auth, SKELETON).await?;
    let (posts, next): (Vec<(String, Option<String>)>, _) = match (feed.ranking, cursor) {
        (_, Some(PageCursor::Outdated)) => {
            return Err(XrpcError::invalid(
                "the cursor has expired; start again from the first page",
            ))
        }
        (RankingKind::Chronological, Some(PageCursor::Snapshot { .. }))
        | (RankingKind::Engagement, Some(PageCursor::After(_))) => {
            return Err(XrpcError::invalid(
                "the cursor belongs to another kind of feed",
            ))
        }
        (RankingKind::Chronological, c) => {
            let after = match c {
                Some(PageCursor::After(p)) => Some(p),
                _ => None,
            };
            let items = st.store.chronological_page(&feed.id, after, limit).await?;
            let next = (items.len() == limit)
                .then(|| items.last().map(|i| PageCursor::After(i.position())))
                .flatten();
            let posts = items.into_iter().map(|i| (i.uri, i.repost)).collect();
            (posts, next)
        }
        (RankingKind::Engagement, c) => {
            let (id, offset) = match c {
                Some(PageCursor::Snapshot { id, offset }) => (id, offset),
                _ => {
                    let top = st.store.ranked_top(&feed.id, SNAPSHOT_DEPTH).await?;
                    let uris: Vec<String> = top.into_iter().map(|i| i.uri).collect();
                    let id = random_hex();
                    st.store
                        .save_snapshot(&id, &feed.id, &uris, now_ms())
                        .await?;
                    (id, 0)
                }
            };
            let slice = st
                .store
                .snapshot_slice(&id, offset, limit)
                .await?
                .ok_or_else(|| {
                    XrpcError::invalid("the cursor has expired; start again from the first page")
                })?;
            let served = slice.len();
            let live = st.store.live_posts(&slice).await?;
            let posts: Vec<(String, Option<String>)> = slice
                .into_iter()
                .filter(|u| live.contains(u))
                .map(|u| (u, None))
                .collect();
            let next = (served == limit).then(|| PageCursor::Snapshot {
                id,
                offset: offset + served,
            });
            (posts, next)
        }
    };
    let context = feed.id.clone();
    let items: Vec<Value> = posts
        .into_iter()
        .map(|(post, repost)| match repost {
            None => json!({"post": post, "feedContext": context}),
            Some(repost) => json!({
                "post": post,
                "reason": {"$type": "app.bsky.feed.defs#skeletonReasonRepost", "repost": repost},
                "feedContext": context,
            }),
        })
        .collect();
    let mut body = json!({"feed": items, "reqId": random_hex()});
    if let Some(n) = next {
        body["cursor"] = Value::String(n.to_string());
    }
    Ok((feed.id, body))
}

/// Longest interaction `item` kept (an AT-URI; the spec caps those at 8 KB).
const MAX_INTERACTION_ITEM: usize = 8 * 1024;
/// Longest interaction `event` kept (the known ones are under 40 bytes).
const MAX_INTERACTION_EVENT: usize = 256;

/// The interaction events `app.bsky.feed.defs` names (its `interaction.event` known values).
const INTERACTION_EVENTS: &[&str] = &[
    "app.bsky.feed.defs#requestLess",
    "app.bsky.feed.defs#requestMore",
    "app.bsky.feed.defs#clickthroughItem",
    "app.bsky.feed.defs#clickthroughAuthor",
    "app.bsky.feed.defs#clickthroughReposter",
    "app.bsky.feed.defs#clickthroughEmbed",
    "app.bsky.feed.defs#interactionSeen",
    "app.bsky.feed.defs#interactionLike",
    "app.bsky.feed.defs#interactionRepost",
    "app.bsky.feed.defs#interactionReply",
    "app.bsky.feed.defs#interactionQuote",
    "app.bsky.feed.defs#interactionShare",
];

/// The metric label for a client's `event`: one of the lexicon's known values, else `other`,
/// so no client can mint metric series (each one costs memory and every console poll).
fn interaction_label(event: &str) -> &'static str {
    INTERACTION_EVENTS
        .iter()
        .find(|known| **known == event)
        .copied()
        .unwrap_or("other")
}

async fn interactions(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = async {
        let Some(auth) = &st.auth else {
            return Err(XrpcError::invalid("interactions need requester auth, which is not configured"));
        };
        let header = headers.get("authorization").and_then(|v| v.to_str().ok());
        let requester = auth.verify(header, INTERACTIONS).await?.did;
        let v: Value = serde_json::from_slice(&body).map_err(|_| XrpcError::invalid("the body must be JSON"))?;
        let list = v
            .get("interactions")
            .and_then(Value::as_array)
            .ok_or_else(|| XrpcError::invalid("interactions must be an array"))?;
        if list.len() > 1000 {
            return Err(XrpcError::invalid("too many interactions in one request"));
        }
        let catalog = st.catalog();
        let mut writes = Vec::with_capacity(list.len());
        for i in list {
            let s = |k: &str| i.get(k).and_then(Value::as_str).map(str::to_owned);
            let (Some(item), Some(event)) = (s("item"), s("event")) else {
                return Err(XrpcError::invalid("each interaction needs item and event"));
            };
            if item.len() > MAX_INTERACTION_ITEM || event.len() > MAX_INTERACTION_EVENT {
                return Err(XrpcError::invalid("an interaction's item or event is too long"));
            }
            let context = s("feedContext");
            let feed = context.as_deref().filter(|c| catalog.get(c).is_some()).map(str::to_owned);
            metrics::counter!("skystream_interactions_total", "feed" => feed.clone().unwrap_or_else(|| "-".into()), "event" => interaction_label(&event)).increment(1);
            writes.push(FeedWrite::Interaction {
                feed,
                requester: requester.clone(),
                item,
                event,
                feed_context: context,
                at_ms: now_ms(),
            });
        }
        st.store.apply(writes).await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Json(json!({})).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn health(State(st): State<AppState>) -> Response {
    let h = (st.health)();
    let lagging = h.lag_seconds.is_some_and(|l| l > st.max_lag_seconds);
    let ok = h.connected && !lagging;
    let body = json!({
        "status": if ok { "ok" } else { "unhealthy" },
        "connected": h.connected,
        "lag_seconds": h.lag_seconds,
        "max_lag_seconds": st.max_lag_seconds,
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics_text(State(st): State<AppState>) -> Response {
    match &st.metrics {
        Some(render) => ([("content-type", "text/plain; version=0.0.4")], render()).into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

#[cfg(test)]
mod interaction_label_tests {
    use super::*;

    #[test]
    fn client_event_strings_cannot_mint_metric_series() {
        let labels: std::collections::BTreeSet<&str> = (0..10_000)
            .map(|i| format!("app.bsky.feed.defs#made-up-{i}"))
            .map(|e| interaction_label(&e))
            .collect();
        assert_eq!(labels, ["other"].into_iter().collect());
        assert_eq!(
            interaction_label("app.bsky.feed.defs#interactionLike"),
            "app.bsky.feed.defs#interactionLike"
        );
    }
}
