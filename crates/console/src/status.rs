//! `/console/api/status` and `/console/api/history`: the status page's figures.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use skystream_feeds::Ranking;

use crate::history::names;
use crate::prom::Exposition;
use crate::sampler::now_ms;
use crate::ConsoleState;

/// The status now, with the per-second history after `since` (all of it without).
pub(crate) async fn status(
    State(st): State<ConsoleState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let since = q.get("since").and_then(|s| s.parse::<i64>().ok());
    (no_store(), Json(build(&st, since))).into_response()
}

/// The per-ten-seconds history (the last hour).
pub(crate) async fn history(State(st): State<ConsoleState>) -> Response {
    let body = st
        .sampler
        .with_history(|h| h.tens.columns(None))
        .unwrap_or(Value::Null);
    (no_store(), Json(body)).into_response()
}

/// Polled figures must not be cached by a proxy.
fn no_store() -> [(&'static str, &'static str); 1] {
    [("cache-control", "no-store")]
}

fn opt(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |v| json!(v))
}

/// Builds the status document. Every figure is read from the metrics exposition (what
/// `/metrics` serves), the history computed from it, or the ingest health function.
pub(crate) fn build(st: &ConsoleState, since: Option<i64>) -> Value {
    let e = st.sampler.exposition();
    let health = st.sampler.health();
    let (latest, seconds) = st
        .sampler
        .with_history(|h| (h.seconds.latest().cloned(), h.seconds.columns(since)))
        .unwrap_or((None, Value::Null));
    let now_value = |key: &str| latest.as_ref().and_then(|p| p.values.get(key).copied());

    let events_total = e.by_label(names::EVENTS, "kind", &[]);
    let mut per_second = Map::new();
    for (kind, _) in &events_total {
        per_second.insert(kind.clone(), opt(now_value(&format!("events.{kind}"))));
    }
    let cursors: Vec<Value> = e
        .by_label(names::CURSOR, "source", &[])
        .into_iter()
        .map(|(source, cursor)| json!({"source": source, "cursor": cursor}))
        .collect();

    // `null` (not an empty list) when this process serves no feeds: the page then hides the
    // feeds table and the preview instead of showing an empty one.
    let feeds = st.feed_set().map(|set| {
        set.feeds
            .iter()
            .map(|f| feed_status(&e, f.id(), f.ranking(), &now_value))
            .collect::<Vec<Value>>()
    });
    let store = st
        .feeds
        .as_ref()
        .map(|_| json!({"size_bytes": opt(e.sum(names::STORE_BYTES, &[]))}));

    let sections: Vec<Value> = st
        .sections
        .iter()
        .map(|s| json!({"name": s.name, "figures": (s.figures)(&e)}))
        .collect();

    json!({
        "now_ms": now_ms(),
        "source": {
            "kind": st.source.kind,
            "hosts": st.source.hosts,
            "connected": health.connected,
            "lag_seconds": health.lag_seconds,
            "cursors": cursors,
            "source_connected_gauge": opt(e.sum("skystream_source_connected", &[])),
            "reconnects_total": opt(e.sum("skystream_source_reconnects_total", &[])),
        },
        "ingest": {
            "events_per_second": per_second,
            "events_total": events_total.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<Map<_, _>>(),
            "decode_errors_per_second": opt(now_value("decode_errors")),
            "decode_errors_total": e.by_label(names::DECODE_ERRORS, "reason", &[]).into_iter().map(|(k, v)| (k, json!(v))).collect::<Map<_, _>>(),
            "queue_depth": opt(e.sum(names::QUEUE_DEPTH, &[])),
            "pipeline_events_total": opt(e.sum("skystream_pipeline_events_total", &[])),
        },
        "store": store,
        "feeds": feeds,
        "sections": sections,
        "history": seconds,
    })
}

fn feed_status(
    e: &Exposition,
    id: &str,
    ranking: Ranking,
    now_value: &dyn Fn(&str) -> Option<f64>,
) -> Value {
    let skeleton = ("endpoint", names::SKELETON);
    json!({
        "id": id,
        "ranking": ranking.name(),
        "items": opt(e.sum(names::FEED_ITEMS, &[("feed", id)])),
        "requests_total": opt(e.sum(names::REQUESTS, &[skeleton, ("feed", id)])),
        "requests_per_second": opt(now_value(&format!("requests.{id}"))),
        "p99_seconds": opt(e.sum(names::LATENCY, &[skeleton, ("feed", id), ("quantile", "0.99")])),
    })
}
