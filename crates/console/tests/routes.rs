//! The console's routes without a socket: the page and its assets (headers, relative URLs, no
//! HTML built from data), the status document read back from the metrics, the feed preview
//! over the store with match reasons and scores, draft filters over the recent window, and the
//! status-only console of a process that serves no feeds (`skystream jetstream`) with its
//! Jetstream section.

use std::sync::{Arc, Mutex, OnceLock, RwLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::Value;
use skystream_console::{jetstream_section, ConsoleState, Sampler, SourceInfo};
use skystream_feeds::{Config, PostFeatures};
use skystream_indexer::{FeedSet, RecentPost, RecentWindow};
use skystream_server::HealthStatus;
use skystream_store::{FeedStore, FeedWrite, Membership, MemoryStore, PostRow};
use tower::ServiceExt;

const CONFIG: &str = r#"
[[feed]]
id = "norge"
display_name = "Norge"
hashtags = ["norge"]

[[feed]]
id = "hot"
display_name = "Hot"
keywords = ["fjell"]
ranking = "engagement"
"#;

const HOSTILE: &str = "<script>window.__pwned=1</script> #norge";

/// The process's one metrics recorder (the exporter installs it globally, as `serve` does).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .expect("install the recorder")
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

fn features(rkey: &str, text: &str, tags: &[&str]) -> PostFeatures {
    let mut p = PostFeatures::default();
    p.did = "did:plc:author".into();
    p.rkey = rkey.into();
    p.text = text.into();
    p.langs = vec!["nb".into()];
    p.hashtags = tags.iter().map(|t| t.to_string()).collect();
    p
}

fn row(p: &PostFeatures) -> PostRow {
    PostRow {
        uri: p.uri(),
        cid: "bafy".into(),
        author: p.did.clone(),
        rkey: p.rkey.clone(),
        created_at_ms: now_ms(),
        indexed_at_ms: now_ms(),
        langs: p.langs.clone(),
        text: p.text.clone(),
        embed_kind: Some("none".into()),
        hashtags: p.hashtags.clone(),
        ..PostRow::default()
    }
}

async fn state(with_window: bool) -> ConsoleState {
    handle();
    let config = Config::from_toml_str(CONFIG, "test.toml").expect("config");
    let feeds = Arc::new(RwLock::new(Arc::new(FeedSet {
        version: 0,
        feeds: config.feeds,
    })));
    let store = Arc::new(MemoryStore::new());
    let posts = [
        features("1", "første innlegg #norge", &["norge"]),
        features("2", "til fjell i dag", &[]),
        features("3", HOSTILE, &["norge"]),
    ];
    let mut window = RecentWindow::new(100);
    let mut writes = Vec::new();
    for p in &posts {
        let mut member = Vec::new();
        if p.hashtags.iter().any(|t| t == "norge") {
            member.push("norge");
        }
        if p.text.contains("fjell") {
            member.push("hot");
        }
        writes.push(FeedWrite::UpsertPost {
            post: row(p),
            feeds: member
                .iter()
                .map(|f| Membership {
                    feed: f.to_string(),
                    score: 1.0,
                    min_likes: 0,
                    half_life_s: None,
                })
                .collect(),
        });
        window.insert(
            p.uri(),
            RecentPost {
                features: Arc::new(p.clone()),
                cid: "bafy".into(),
                likes: 0,
                reposts: 0,
                created_s: now_ms() as f64 / 1000.0,
                indexed_ms: now_ms(),
                feeds: member.iter().map(|f| f.to_string()).collect(),
            },
        );
    }
    writes.push(FeedWrite::AddLike {
        uri: "at://did:plc:fan/app.bsky.feed.like/1".into(),
        subject: posts[1].uri(),
    });
    store.apply(writes).await.expect("apply");
    let feed_store: Arc<dyn FeedStore> = store;
    let render = Arc::new(|| handle().render());
    let health = Arc::new(|| HealthStatus {
        connected: true,
        lag_seconds: Some(0.5),
    });
    let sampler = Sampler::new(render, health, feed_store.clone(), feeds.clone());
    ConsoleState::new(
        SourceInfo {
            kind: "simulate".into(),
            hosts: vec!["2000 events/s".into()],
        },
        feed_store,
        feeds,
        with_window.then(|| Arc::new(Mutex::new(window))),
        sampler,
    )
    .with_section(jetstream_section())
}

async fn get(st: &ConsoleState, uri: &str) -> (StatusCode, String, axum::http::HeaderMap) {
    let res = skystream_console::router(st.clone())
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        String::from_utf8(body.to_vec()).expect("utf-8"),
        headers,
    )
}

async fn json(st: &ConsoleState, uri: &str) -> (StatusCode, Value) {
    let (status, body, _) = get(st, uri).await;
    (status, serde_json::from_str(&body).expect("json"))
}

#[tokio::test]
async fn the_page_and_assets_are_self_contained() {
    let st = state(true).await;
    let (status, html, headers) = get(&st, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(html.contains("src=\"console/console.js\""));
    assert!(html.contains("href=\"console/console.css\""));
    for (path, kind) in [
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        let (status, body, headers) = get(&st, path).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with(kind));
        assert!(!body.is_empty());
    }
    // Relative URLs only (a reverse proxy may add a prefix), and nothing from elsewhere.
    let (_, js, _) = get(&st, "/console/console.js").await;
    let (_, css, _) = get(&st, "/console/console.css").await;
    for text in [&html, &js, &css] {
        for absolute in [
            "src=\"/",
            "href=\"/",
            "fetch(\"/",
            "url(",
            "https://",
            "@import",
        ] {
            assert!(!text.contains(absolute), "found {absolute:?}");
        }
    }
    // The only http:// is the SVG namespace name, which is never fetched.
    assert_eq!(js.matches("http://").count(), 1);
    assert!(js.contains("\"http://www.w3.org/2000/svg\""));
    // Data never becomes markup.
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "DOMParser",
    ] {
        assert!(!js.contains(sink), "console.js uses {sink}");
    }
    assert!(css.contains("unicode-bidi: isolate") && css.contains("overflow-wrap: anywhere"));
}

#[tokio::test]
async fn status_reads_the_metrics() {
    let st = state(true).await;
    metrics::counter!("skystream_events_total", "kind" => "commit").increment(10);
    st.sampler.publish_store_gauges().await;
    st.sampler.sample();
    tokio::time::sleep(std::time::Duration::from_millis(1_050)).await;
    metrics::counter!("skystream_events_total", "kind" => "commit").increment(100);
    st.sampler.sample();
    let (status, s) = json(&st, "/console/api/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s["source"]["kind"], "simulate");
    assert_eq!(s["source"]["connected"], true);
    assert_eq!(s["source"]["lag_seconds"], 0.5);
    let t = s["history"]["t"].as_array().expect("history times");
    assert!(t.len() >= 2, "{s}");
    let commits = s["ingest"]["events_per_second"]["commit"]
        .as_f64()
        .expect("a commit rate");
    assert!(commits > 50.0 && commits <= 100.0, "{commits}");
    assert!(s["ingest"]["events_total"]["commit"].as_f64() >= Some(110.0));
    let feeds = s["feeds"].as_array().expect("feeds");
    assert_eq!(feeds[0]["id"], "norge");
    assert_eq!(feeds[0]["items"], 2.0);
    assert_eq!(feeds[1]["ranking"], "engagement");
    assert_eq!(s["sections"][0]["name"], "Jetstream");
    let keys: Vec<&str> = s["sections"][0]["figures"]
        .as_array()
        .expect("figures")
        .iter()
        .filter_map(|f| f["key"].as_str())
        .collect();
    assert!(keys.contains(&"subscribers_zstd") && keys.contains(&"bytes_sent_json"));
    assert!(s["store"]["size_bytes"].as_f64().is_some(), "{s}");
    // What /metrics would show is what the status shows.
    let text = handle().render();
    assert!(
        text.contains("skystream_feed_items{feed=\"norge\"} 2"),
        "{text}"
    );
    // Only newer points when asked.
    let last = t.last().and_then(Value::as_i64).expect("a time");
    let (_, newer) = json(&st, &format!("/console/api/status?since={last}")).await;
    assert_eq!(newer["history"]["t"], serde_json::json!([]));
    let (status, hour) = json(&st, "/console/api/history").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hour["step_s"], 10.0);
}

#[tokio::test]
async fn preview_serves_items_with_reasons() {
    let st = state(true).await;
    let (status, list) = json(&st, "/console/api/feeds").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["feeds"][0]["filters"]["hashtags"][0], "norge");
    assert_eq!(list["window"], 3);

    let (status, page) = json(&st, "/console/api/feeds/norge/items").await;
    assert_eq!(status, StatusCode::OK);
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    // Newest first, as getFeedSkeleton serves it; the text comes back exactly as written.
    assert_eq!(items[0]["text"], HOSTILE);
    assert_eq!(items[0]["match"]["verdict"], "yes");
    assert_eq!(items[0]["match"]["reasons"][0]["filter"], "hashtags");
    assert_eq!(items[0]["features"], "window");
    assert_eq!(items[0]["score"], Value::Null);

    let (_, hot) = json(&st, "/console/api/feeds/hot/items").await;
    let item = &hot["items"][0];
    assert_eq!(item["likes"], 1);
    assert_eq!(item["match"]["reasons"][0]["filter"], "keywords");
    assert!(item["score"].as_f64().is_some_and(|s| s > 0.0));

    let (status, _) = json(&st, "/console/api/feeds/nope/items").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Without the window (a server that does not ingest), verdicts come from stored rows.
    let st = state(false).await;
    let (_, page) = json(&st, "/console/api/feeds/norge/items").await;
    assert_eq!(page["items"][0]["features"], "store");
    assert_eq!(page["items"][0]["match"]["verdict"], "yes");
}

#[tokio::test]
async fn drafts_run_against_the_window() {
    let st = state(true).await;
    let (status, d) = json(&st, "/console/api/draft?keywords=fjell").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(d["matched"], 1);
    assert_eq!(d["window"], 3);
    assert_eq!(d["items"][0]["in_feeds"][0], "hot");

    let (_, d) = json(&st, "/console/api/draft?hashtags=%23Norge&languages=nb").await;
    assert_eq!(d["matched"], 2);
    assert_eq!(d["filters"]["hashtags"][0], "norge");

    let (status, e) = json(&st, "/console/api/draft?languages=not-a-language-code").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["field"], "languages");

    let st = state(false).await;
    let (status, _) = json(&st, "/console/api/draft?keywords=fjell").await;
    assert_eq!(status, StatusCode::CONFLICT);
}

/// The value of the Jetstream section's figure `key` in a status document.
fn figure(status: &Value, key: &str) -> Value {
    status["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .find(|s| s["name"] == "Jetstream")
        .and_then(|s| s["figures"].as_array())
        .and_then(|f| f.iter().find(|f| f["key"] == key))
        .unwrap_or_else(|| panic!("no Jetstream figure {key}: {status}"))
        .clone()
}

#[tokio::test]
async fn a_process_without_feeds_shows_status_and_its_section_only() {
    handle();
    let render = Arc::new(|| handle().render());
    let health = Arc::new(|| HealthStatus {
        connected: true,
        lag_seconds: Some(0.1),
    });
    let sampler = Sampler::without_feeds(render, health);
    // Without a store there is nothing to publish, and nothing fails.
    sampler.publish_store_gauges().await;
    let st = ConsoleState::without_feeds(
        SourceInfo {
            kind: "relay".into(),
            hosts: vec!["wss://relay.example".into()],
        },
        sampler,
    )
    .with_section(jetstream_section());

    // What the Jetstream server records when a filtered zstd subscriber is live and a JSON
    // one replays (labels as its telemetry writes them); only this test records these.
    metrics::gauge!("skystream_jetstream_subscribers", "encoding" => "zstd", "filter" => "filtered", "phase" => "live")
        .increment(1.0);
    metrics::gauge!("skystream_jetstream_subscribers", "encoding" => "json", "filter" => "all", "phase" => "replay")
        .increment(1.0);
    metrics::counter!("skystream_jetstream_bytes_sent_total", "encoding" => "zstd", "phase" => "live")
        .increment(5_000);
    metrics::gauge!("skystream_jetstream_log_size_bytes").set(65_536.0);

    let (status, s) = json(&st, "/console/api/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s["feeds"], Value::Null, "no feeds, not an empty list: {s}");
    assert_eq!(s["store"], Value::Null);
    assert_eq!(s["source"]["kind"], "relay");
    assert_eq!(figure(&s, "subscribers")["value"], 2.0);
    assert_eq!(figure(&s, "subscribers_zstd")["value"], 1.0);
    assert_eq!(figure(&s, "subscribers_json")["value"], 1.0);
    assert_eq!(figure(&s, "subscribers_filtered")["value"], 1.0);
    assert_eq!(figure(&s, "subscribers_all")["value"], 1.0);
    assert_eq!(figure(&s, "subscribers_live")["value"], 1.0);
    assert_eq!(figure(&s, "bytes_sent_zstd")["value"], 5_000.0);
    assert_eq!(figure(&s, "bytes_sent_zstd")["unit"], "bytes");
    assert_eq!(figure(&s, "log_size_bytes")["value"], 65_536.0);
    assert_eq!(figure(&s, "log_size_bytes")["label"], "Replay log on disk");

    // The feed routes say why they have nothing, as JSON the page can show.
    for uri in [
        "/console/api/feeds",
        "/console/api/feeds/norge/items",
        "/console/api/draft?keywords=fjell",
    ] {
        let (status, e) = json(&st, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(
            e["error"]
                .as_str()
                .is_some_and(|m| m.contains("serves no feeds")),
            "{uri}: {e}"
        );
    }
    // The page itself is the same page.
    let (status, html, _) = get(&st, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("console/console.js"));
}
