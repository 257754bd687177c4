//! `/console/api/feeds` and `/console/api/feeds/{id}/items`: each feed's newest items as
//! `getFeedSkeleton` would serve them, with the post and why it matched.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use skystream_feeds::{Feed, Match, PostFeatures, Ranking, ReplyRef};
use skystream_store::{FeedItem, PostRow};

use crate::sampler::now_ms;
use crate::ConsoleState;

/// Items a preview shows unless asked for fewer or more.
const DEFAULT_ITEMS: usize = 30;
/// The most items a preview shows (getFeedSkeleton's page limit).
const MAX_ITEMS: usize = 100;

/// A JSON error with a status.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// The answer of the feed routes in a process that serves no feeds.
pub(crate) fn no_feeds() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "this process serves no feeds (it is skystream jetstream): the feed preview is part of skystream serve",
    )
}

/// The `limit` parameter, bounded.
pub(crate) fn limit(q: &HashMap<String, String>) -> usize {
    q.get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(DEFAULT_ITEMS)
        .clamp(1, MAX_ITEMS)
}

/// The feeds, in config order, with what they filter on.
pub(crate) async fn feeds(State(st): State<ConsoleState>) -> Response {
    let Some(set) = st.feed_set() else {
        return no_feeds();
    };
    let list: Vec<Value> = set
        .feeds
        .iter()
        .map(|f| {
            let c = f.config();
            let fl = f.filters();
            json!({
                "id": f.id(),
                "display_name": c.display_name,
                "description": c.description,
                "ranking": f.ranking().name(),
                "half_life_s": match f.ranking() {
                    Ranking::Engagement { half_life } => Some(half_life.as_secs_f64()),
                    Ranking::Chronological => None,
                },
                "filters": {
                    "languages": fl.languages,
                    "keywords": fl.keywords,
                    "keywords_out": fl.keywords_out,
                    "hashtags": fl.hashtags,
                    "regex": fl.regex,
                    "authors": fl.authors.len(),
                    "min_likes": fl.min_likes,
                },
            })
        })
        .collect();
    Json(json!({"feeds": list, "window": window_len(&st)})).into_response()
}

fn window_len(st: &ConsoleState) -> Option<usize> {
    st.feeds
        .as_ref()
        .and_then(|v| v.window.as_ref())
        .and_then(|w| w.lock().ok().map(|w| w.len()))
}

/// The features of a stored post, rebuilt from its row when the window no longer has it. The
/// row keeps what feeds filter on most (text, langs, hashtags, mentions, reply, labels); links
/// and media are not stored, so a verdict from a row says so (`features: "store"`).
fn features_from_row(row: &PostRow) -> PostFeatures {
    let mut p = PostFeatures::default();
    p.did = row.author.clone();
    p.rkey = row.rkey.clone();
    p.text = row.text.clone();
    p.langs = row.langs.clone();
    p.hashtags = row.hashtags.clone();
    p.mentions = row.mentions.clone();
    p.self_labels = row.labels.clone();
    if row.reply_parent.is_some() || row.reply_root.is_some() {
        p.reply = Some(ReplyRef {
            parent: row.reply_parent.clone(),
            root: row.reply_root.clone(),
        });
    }
    p
}

/// The embed kind as the store names it (`images`, `recordwithmedia`, `none`).
pub(crate) fn embed_name(post: &PostFeatures) -> String {
    format!("{:?}", post.embed).to_lowercase()
}

/// A verdict as JSON: `yes`, `pending` or `no`, the reasons, and the sentence.
pub(crate) fn verdict(m: &Match) -> Value {
    let (kind, reasons) = match m {
        Match::Yes(reasons) => ("yes", reasons.clone()),
        Match::Pending { .. } => ("pending", Vec::new()),
        Match::No(reason) => ("no", vec![reason.clone()]),
    };
    json!({
        "verdict": kind,
        "summary": m.to_string(),
        "reasons": reasons.iter().map(|r| json!({"filter": r.filter.name(), "detail": r.detail})).collect::<Vec<_>>(),
    })
}

/// What a post shows as: its text and features, counts, and, for a feed, why it matched and
/// its score.
pub(crate) struct Shown<'a> {
    pub uri: &'a str,
    pub post: &'a PostFeatures,
    pub likes: u64,
    pub reposts: u64,
    pub created_s: f64,
    pub embed: String,
}

impl Shown<'_> {
    pub(crate) fn json(&self, feed: &Feed) -> Value {
        let m = feed.matches(self.post, self.likes);
        let age = (now_ms() as f64 / 1000.0 - self.created_s).max(0.0);
        let ranking = feed.ranking();
        json!({
            "uri": self.uri,
            "author": self.post.did,
            "text": self.post.text,
            "langs": self.post.langs,
            "hashtags": self.post.hashtags,
            "embed": self.embed,
            "reply": self.post.is_reply(),
            "likes": self.likes,
            "reposts": self.reposts,
            "created_ms": (self.created_s * 1000.0) as i64,
            "match": verdict(&m),
            "score": match ranking {
                Ranking::Engagement { .. } => Some(ranking.score(self.likes, self.reposts, age)),
                Ranking::Chronological => None,
            },
        })
    }
}

/// The first page of feed `id`, newest (or best) first.
pub(crate) async fn items(
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (Some(view), Some(set)) = (&st.feeds, st.feed_set()) else {
        return no_feeds();
    };
    let Some(feed) = set.feeds.iter().find(|f| f.id() == id).cloned() else {
        return error(StatusCode::NOT_FOUND, format!("no feed {id:?}"));
    };
    let n = limit(&q);
    // The queries getFeedSkeleton's first page is made from.
    let page = match feed.ranking() {
        Ranking::Chronological => view.store.chronological_page(&id, None, n).await,
        Ranking::Engagement { .. } => view.store.ranked_top(&id, n).await,
    };
    let page: Vec<FeedItem> = match page {
        Ok(p) => p,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")),
    };
    let mut rows = Vec::with_capacity(page.len());
    for item in &page {
        match view.store.post(&item.uri).await {
            Ok(Some((row, likes, reposts))) => {
                rows.push((item.clone(), row, likes, reposts, true));
            }
            // A repost of a post the store does not keep: shown by its uri alone.
            Ok(None) if item.repost.is_some() => {
                let row = PostRow {
                    uri: item.uri.clone(),
                    author: author_of(&item.uri).to_owned(),
                    ..PostRow::default()
                };
                rows.push((item.clone(), row, item.likes, item.reposts, false));
            }
            Ok(None) => {}
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")),
        }
    }
    let from_window: Vec<Option<Arc<PostFeatures>>> = match &view.window {
        Some(w) => match w.lock() {
            Ok(mut w) => rows
                .iter()
                .map(|(i, ..)| w.get_mut(&i.uri).map(|p| p.features.clone()))
                .collect(),
            Err(_) => vec![None; rows.len()],
        },
        None => vec![None; rows.len()],
    };
    // Matching may detect languages, which is CPU work: off the async workers.
    let shown = tokio::task::spawn_blocking(move || {
        rows.iter()
            .zip(from_window)
            .map(|((item, row, likes, reposts, stored), features)| {
                let origin = if features.is_some() {
                    "window"
                } else {
                    "store"
                };
                let known = features.is_some() || *stored;
                let post = features.unwrap_or_else(|| Arc::new(features_from_row(row)));
                let mut v = Shown {
                    uri: &item.uri,
                    post: &post,
                    likes: *likes,
                    reposts: *reposts,
                    created_s: row.created_at_ms as f64 / 1000.0,
                    embed: row.embed_kind.clone().unwrap_or_else(|| "none".into()),
                }
                .json(&feed);
                v["features"] = json!(origin);
                v["sort_key"] = json!(item.score);
                if let Some(repost) = &item.repost {
                    // Judged as the indexer judged it: the reposter against the author
                    // filters, the post (when known) against the rest.
                    let reposter = author_of(repost);
                    let m = feed.matches_repost(reposter, known.then_some(&*post), *likes);
                    v["match"] = verdict(&m);
                    v["repost"] = json!(repost);
                    v["reposter"] = json!(reposter);
                    if !known {
                        v["features"] = json!("unknown");
                    }
                }
                v
            })
            .collect::<Vec<_>>()
    })
    .await;
    match shown {
        Ok(items) => Json(json!({
            "feed": id,
            "ranking": set.feeds.iter().find(|f| f.id() == id).map(|f| f.ranking().name()),
            "items": items,
        }))
        .into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "preview failed"),
    }
}

/// The DID of an `at://DID/...` uri (empty when it has none).
fn author_of(uri: &str) -> &str {
    uri.strip_prefix("at://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_keeps_what_feeds_filter_on() {
        let row = PostRow {
            uri: "at://did:plc:a/app.bsky.feed.post/1".into(),
            author: "did:plc:a".into(),
            rkey: "1".into(),
            text: "hei".into(),
            langs: vec!["nb".into()],
            hashtags: vec!["norge".into()],
            reply_parent: Some("at://did:plc:b/app.bsky.feed.post/2".into()),
            ..PostRow::default()
        };
        let p = features_from_row(&row);
        assert_eq!(p.uri(), row.uri);
        assert!(p.is_reply());
        assert_eq!(p.hashtags, vec!["norge".to_string()]);
    }
}
