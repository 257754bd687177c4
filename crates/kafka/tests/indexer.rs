//! The Kafka source feeding the real indexer: the relay corpus goes through the Kafka sink into
//! tansu, comes back through a `kafka:` source (parsed from its spec, as `serve --source` does)
//! as a consumer group, and is indexed into a SQLite store. The store must hold exactly what
//! indexing the same corpus straight from a `file:` source gives, and the group, run again,
//! must read nothing. Ignored unless asked for (`-- --include-ignored`); then it needs tansu.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use skystream_event::{Event, EventKind, OpAction};
use skystream_feeds::Config;
use skystream_indexer::{FeedSet, Indexer, RecentWindow};
use skystream_kafka::cloudevent::{self, ContentMode, Mapping};
use skystream_kafka::{Collection, KafkaSink, KafkaSource, KafkaSourceConfig, SinkConfig};
use skystream_pipeline::{
    Batch, Consumer, ConsumerError, Envelope, MemoryCursorSink, Pipeline, PipelineConfig,
};
use skystream_source::{FileSource, Pace, Source, SourceContext, SourceEnd, SourceSpec};
use skystream_store::{FeedStore, Store};
use tokio_util::sync::CancellationToken;

mod common;

use common::{corpus, Broker};

/// One feed of English posts, one that takes every post. The corpus is from July 2026: a long
/// `max_age` keeps it in the feeds whatever today is.
const FEEDS: &str = r#"
[[feed]]
id = "english"
display_name = "English"
languages = ["en"]
max_age = "3650d"

[[feed]]
id = "everything"
display_name = "Everything"
max_age = "3650d"
"#;

const FEED_IDS: [&str; 2] = ["english", "everything"];

fn pipeline_config() -> PipelineConfig {
    PipelineConfig {
        batch_max: 32,
        save_interval: Duration::from_millis(50),
        retry_initial: Duration::from_millis(50),
        ..PipelineConfig::default()
    }
}

/// The real indexer over `store`, counting the events it was handed.
struct Counted {
    inner: Indexer,
    events: Arc<AtomicU64>,
}

#[async_trait]
impl Consumer for Counted {
    fn name(&self) -> &str {
        "indexer"
    }
    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        self.inner.handle(batch).await?;
        self.events
            .fetch_add(batch.items.len() as u64, Ordering::Relaxed);
        Ok(())
    }
    async fn close(&mut self) -> Result<(), ConsumerError> {
        self.inner.close().await
    }
}

fn indexer(store: &Store, events: Arc<AtomicU64>) -> Box<dyn Consumer> {
    let config = Config::from_toml_str(FEEDS, "feeds.toml").expect("feed config");
    let feeds = Arc::new(RwLock::new(Arc::new(FeedSet {
        version: 0,
        feeds: config.feeds,
    })));
    Box::new(Counted {
        inner: Indexer::new(
            Arc::new(store.clone()),
            feeds,
            Arc::new(Mutex::new(RecentWindow::new(1000))),
        ),
        events,
    })
}

/// Runs `source` into a pipeline whose consumer is the indexer over `store` until `until`
/// returns true for the count of events indexed (checked every 100 ms, up to `wait`), then
/// shuts the source down. Returns the events indexed.
async fn index(
    mut source: Box<dyn Source>,
    store: &Store,
    wait: Duration,
    until: impl Fn(u64) -> bool,
) -> u64 {
    let events = Arc::new(AtomicU64::new(0));
    let (input, handle) = Pipeline::start(
        pipeline_config(),
        source.cursor_key(),
        None,
        vec![indexer(store, events.clone())],
        Arc::new(MemoryCursorSink::new()),
    );
    let shutdown = CancellationToken::new();
    let ctx = SourceContext {
        out: input,
        committed: handle.committed(),
        shutdown: shutdown.clone(),
    };
    let task = tokio::spawn(async move { source.run(None, ctx).await });
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline && !task.is_finished() {
        if until(events.load(Ordering::Relaxed)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    let end = task.await.expect("source task");
    assert!(
        matches!(end, SourceEnd::Shutdown | SourceEnd::Exhausted),
        "source ended with {end:?}"
    );
    handle.finish().await;
    events.load(Ordering::Relaxed)
}

/// What a store holds, per feed: (uri, likes, reposts, score) sorted by uri, and each post's
/// stored fields that do not depend on when it was indexed.
async fn contents(store: &Store) -> BTreeMap<String, Vec<(String, u64, u64, String)>> {
    let mut out = BTreeMap::new();
    for feed in FEED_IDS {
        let mut items = Vec::new();
        for item in store
            .chronological_page(feed, None, 10_000)
            .await
            .expect("page")
        {
            let (row, likes, reposts) = store.post(&item.uri).await.expect("post").expect("kept");
            let fields = format!(
                "{} {} {:?} {:?} {}",
                row.cid, row.created_at_ms, row.langs, row.text, item.score
            );
            assert_eq!((likes, reposts), (item.likes, item.reposts));
            items.push((item.uri, likes, reposts, fields));
        }
        items.sort();
        out.insert(feed.to_owned(), items);
    }
    out
}

/// Post URIs the corpus creates and does not delete, and those with an English `langs` entry.
fn corpus_posts(events: &[Event]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut all = BTreeMap::new();
    for e in events {
        let EventKind::Commit(c) = &e.kind else {
            continue;
        };
        for op in c
            .ops
            .iter()
            .filter(|o| o.collection == "app.bsky.feed.post")
        {
            let uri = format!("at://{}/{}/{}", c.did, op.collection, op.rkey);
            match op.action {
                OpAction::Create => {
                    let english = op
                        .record
                        .as_ref()
                        .and_then(|r| r.get("langs"))
                        .and_then(|l| l.as_array())
                        .is_some_and(|l| {
                            l.iter().any(|v| {
                                v.as_str()
                                    .is_some_and(|s| s == "en" || s.starts_with("en-"))
                            })
                        });
                    all.insert(uri, english);
                }
                OpAction::Delete => {
                    all.remove(&uri);
                }
                OpAction::Update => {}
            }
        }
    }
    let english = all
        .iter()
        .filter(|(_, e)| **e)
        .map(|(u, _)| u.clone())
        .collect();
    (all.into_keys().collect(), english)
}

fn uris(items: &[(String, u64, u64, String)]) -> BTreeSet<String> {
    items.iter().map(|i| i.0.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu (SKYSTREAM_TANSU; bash .ci/kafka installs it)"]
async fn kafka_source_feeds_the_indexer_like_a_file_source() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let events = corpus();

    // The reference: the corpus indexed straight from a `file:` source.
    let direct = Store::open(&dir.path().join("direct.db").display().to_string())
        .await
        .expect("direct store");
    let frames = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/relay-corpus/frames.bin.zst");
    let n = index(
        Box::new(FileSource::new(frames, Pace::Fast, false)),
        &direct,
        Duration::from_secs(60),
        |_| false,
    )
    .await;
    assert_eq!(n, events.len() as u64, "the file source read the corpus");
    let want = contents(&direct).await;
    let (posts, english) = corpus_posts(&events);
    assert!(english.len() >= 5 && posts.len() > english.len());
    assert_eq!(uris(&want["everything"]), posts, "every live post");
    assert_eq!(uris(&want["english"]), english, "the English posts");

    // Corpus -> Kafka sink -> topic.
    broker.create_topic("firehose");
    let sink_mapping = Mapping {
        collections: Collection::ALL.to_vec(),
        ..Mapping::default()
    };
    let messages: usize = events
        .iter()
        .map(|e| cloudevent::from_event(e, &sink_mapping).len())
        .sum();
    let mut sink_cfg = SinkConfig::new(&broker.bootstrap(), "firehose");
    sink_cfg.mode = ContentMode::Binary;
    sink_cfg.mapping = sink_mapping.clone();
    let (input, handle) = Pipeline::start(
        pipeline_config(),
        "corpus",
        None,
        vec![Box::new(KafkaSink::new(sink_cfg).expect("producer"))],
        Arc::new(MemoryCursorSink::new()),
    );
    input
        .send_many(events.iter().cloned().map(Envelope::new).collect())
        .await
        .expect("send");
    drop(input);
    assert_eq!(
        handle.finish().await.cursor,
        events.last().map(|e| e.cursor)
    );

    // Topic -> `kafka:` source -> indexer over a SQLite file.
    let spec = format!(
        "kafka:{}/firehose?group=indexers&session.timeout.ms=6000&max.poll.interval.ms=8000&heartbeat.interval.ms=1000",
        broker.bootstrap()
    );
    let source = || -> Box<dyn Source> {
        let SourceSpec::Kafka {
            brokers,
            topic,
            group,
            options,
        } = SourceSpec::parse(&spec).expect("kafka spec")
        else {
            panic!("not a kafka spec");
        };
        Box::new(KafkaSource::new(KafkaSourceConfig {
            brokers,
            topic,
            group,
            client: options,
            backoff_max: Duration::from_secs(2),
        }))
    };
    let via_kafka = Store::open(&dir.path().join("kafka.db").display().to_string())
        .await
        .expect("kafka store");
    let read = index(source(), &via_kafka, Duration::from_secs(90), |n| {
        n >= messages as u64
    })
    .await;
    assert_eq!(
        read, messages as u64,
        "one event per CloudEvent, none twice"
    );
    let got = contents(&via_kafka).await;
    assert_eq!(
        got, want,
        "the store fed by Kafka holds what the file source gave"
    );

    // The group committed what the indexer made durable. One more event is published (a
    // replay of the last one, harmless to the indexer); run again, the group reads that one
    // alone (so it did join and read), and the store is unchanged.
    let last = events.last().cloned().expect("an event");
    let more = cloudevent::from_event(&last, &sink_mapping).len() as u64;
    assert!(more > 0);
    let mut sink_cfg = SinkConfig::new(&broker.bootstrap(), "firehose");
    sink_cfg.mode = ContentMode::Binary;
    sink_cfg.mapping = sink_mapping;
    let (input, handle) = Pipeline::start(
        pipeline_config(),
        "corpus",
        None,
        vec![Box::new(KafkaSink::new(sink_cfg).expect("producer"))],
        Arc::new(MemoryCursorSink::new()),
    );
    input.send(Envelope::new(last)).await.expect("send");
    drop(input);
    handle.finish().await;
    let again = index(source(), &via_kafka, Duration::from_secs(60), |n| n >= more).await;
    assert_eq!(
        again, more,
        "the group resumed after its committed offsets and read only the new event"
    );
    assert_eq!(contents(&via_kafka).await, want);
}
