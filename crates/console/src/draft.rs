//! `/console/api/draft`: a draft filter tried against the indexer's recent-post window.
//!
//! The draft is compiled by the feeds crate exactly as a `[[feed]]` table would be
//! (`Feed::new` normalizes and checks languages, hashtags and keywords), so what matches here
//! is what would match once the filter is in the config; nothing is written anywhere.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use skystream_feeds::{Feed, FeedConfig, FeedError, PostFeatures};

use crate::preview::{embed_name, error, limit, no_feeds, Shown};
use crate::ConsoleState;

/// How long one evaluation may take; past it the answer says how far it got. Posts without
/// `langs` need language detection under a `languages` filter, which is slow the first time.
const BUDGET: Duration = Duration::from_secs(2);

/// A list parameter: entries separated by commas or new lines, trimmed, empty ones dropped.
fn list(q: &HashMap<String, String>, key: &str) -> Vec<String> {
    q.get(key)
        .map(|v| {
            v.split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Compiles the draft from the query: `keywords`, `keywords_out`, `languages`, `hashtags`.
pub(crate) fn compile(q: &HashMap<String, String>) -> Result<Feed, FeedError> {
    let mut config = FeedConfig::new("draft", "Draft");
    config.filters.keywords = list(q, "keywords");
    config.filters.keywords_out = list(q, "keywords_out");
    config.filters.languages = list(q, "languages");
    config.filters.hashtags = list(q, "hashtags");
    Feed::new(config)
}

/// A post of the window, copied out so the lock is held only for the copy.
struct Candidate {
    uri: String,
    post: Arc<PostFeatures>,
    likes: u64,
    reposts: u64,
    created_s: f64,
    feeds: Vec<String>,
}

pub(crate) async fn draft(
    State(st): State<ConsoleState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(view) = &st.feeds else {
        return no_feeds();
    };
    let feed = match compile(&q) {
        Ok(f) => f,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string(), "field": e.field, "index": e.index})),
            )
                .into_response()
        }
    };
    let Some(window) = view.window.clone() else {
        return error(
            StatusCode::CONFLICT,
            "this process does not ingest, so it has no recent posts to try a draft on",
        );
    };
    let Ok(_permit) = st.draft_gate.clone().try_acquire_owned() else {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "another draft is being evaluated; try again in a moment",
        );
    };
    let n = limit(&q);
    let candidates: Vec<Candidate> = match window.lock() {
        Ok(w) => w
            .newest_first()
            .map(|(uri, p)| Candidate {
                uri: uri.to_owned(),
                post: p.features.clone(),
                likes: p.likes,
                reposts: p.reposts,
                created_s: p.created_s,
                feeds: p.feeds.clone(),
            })
            .collect(),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "window lock poisoned"),
    };
    let result = tokio::task::spawn_blocking(move || evaluate(&feed, &candidates, n, BUDGET)).await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "draft evaluation failed"),
    }
}

/// Matches `candidates` (newest first) until `budget` runs out: the first `n` matches in full,
/// and how many of those scanned matched.
fn evaluate(feed: &Feed, candidates: &[Candidate], n: usize, budget: Duration) -> Value {
    let started = Instant::now();
    let mut items = Vec::new();
    let mut matched = 0usize;
    let mut pending = 0usize;
    let mut scanned = 0usize;
    for c in candidates {
        if started.elapsed() > budget {
            break;
        }
        scanned += 1;
        let m = feed.matches(&c.post, c.likes);
        if m.is_pending() {
            pending += 1;
        }
        if !m.is_match() {
            continue;
        }
        matched += 1;
        if items.len() < n {
            let mut v = Shown {
                uri: &c.uri,
                post: &c.post,
                likes: c.likes,
                reposts: c.reposts,
                created_s: c.created_s,
                embed: embed_name(&c.post),
            }
            .json(feed);
            v["in_feeds"] = json!(c.feeds);
            items.push(v);
        }
    }
    json!({
        "window": candidates.len(),
        "scanned": scanned,
        "complete": scanned == candidates.len(),
        "matched": matched,
        "pending": pending,
        "elapsed_ms": started.elapsed().as_millis() as u64,
        "filters": {
            "keywords": feed.filters().keywords,
            "keywords_out": feed.filters().keywords_out,
            "languages": feed.filters().languages,
            "hashtags": feed.filters().hashtags,
        },
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn post(text: &str, langs: &[&str], tags: &[&str]) -> Candidate {
        let mut p = PostFeatures::default();
        p.did = "did:plc:author".into();
        p.rkey = text.len().to_string();
        p.text = text.into();
        p.langs = langs.iter().map(|s| s.to_string()).collect();
        p.hashtags = tags.iter().map(|s| s.to_string()).collect();
        Candidate {
            uri: p.uri(),
            post: Arc::new(p),
            likes: 0,
            reposts: 0,
            created_s: 0.0,
            feeds: vec![],
        }
    }

    #[test]
    fn the_draft_is_normalized_like_a_feed() {
        let f = compile(&query(&[
            ("keywords", "fjell, ski tur\n"),
            ("languages", "NB,"),
            ("hashtags", "#Norge"),
        ]))
        .expect("a valid draft");
        assert_eq!(f.filters().keywords, vec!["fjell", "ski tur"]);
        assert_eq!(f.filters().languages, vec!["nb"]);
        assert_eq!(f.filters().hashtags, vec!["norge"]);
    }

    #[test]
    fn a_bad_draft_names_its_field() {
        let e = compile(&query(&[("languages", "xx-not-a-language")])).expect_err("refused");
        assert_eq!(e.field, "languages");
        assert_eq!(e.index, Some(0));
    }

    #[test]
    fn matches_count_and_explain() {
        let feed = compile(&query(&[("hashtags", "norge")])).expect("draft");
        let posts = vec![
            post("til fjells", &["nb"], &["norge"]),
            post("hello", &["en"], &[]),
            post("<script>window.__pwned=1</script>", &["nb"], &["norge"]),
        ];
        let v = evaluate(&feed, &posts, 1, BUDGET);
        assert_eq!(v["matched"], 2);
        assert_eq!(v["scanned"], 3);
        assert_eq!(v["complete"], true);
        let items = v["items"].as_array().expect("items");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["match"]["verdict"], "yes");
        assert_eq!(items[0]["match"]["reasons"][0]["filter"], "hashtags");
        // Texts go out as JSON strings; the page puts them in with textContent.
        let text = evaluate(&feed, &posts[2..], 1, BUDGET)["items"][0]["text"].clone();
        assert_eq!(text, "<script>window.__pwned=1</script>");
    }

    #[test]
    fn the_budget_bounds_the_scan() {
        let feed = compile(&query(&[])).expect("draft");
        let posts: Vec<Candidate> = (0..10)
            .map(|i| post(&"x".repeat(i + 1), &[], &[]))
            .collect();
        let v = evaluate(&feed, &posts, 5, Duration::ZERO);
        assert_eq!(v["complete"], false);
        let matched = v["matched"].as_u64().expect("matched") as usize;
        assert_eq!(v["items"].as_array().map(Vec::len), Some(matched.min(5)));
    }
}
