//! Against a real Kafka-protocol broker: tansu (crates.io), started on a free loopback port by
//! each test with its in-memory storage. The binary comes from `SKYSTREAM_TANSU`, else
//! `~/.cargo/bin/tansu`, else `PATH` (`.ci/kafka` installs it). The tests are ignored unless
//! asked for (`-- --include-ignored`), and then a missing tansu fails them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use skystream_event::Event;
use skystream_kafka::cloudevent::{self, CloudEvent, ContentMode, Mapping};
use skystream_kafka::{Collection, KafkaSink, KafkaSource, KafkaSourceConfig, SinkConfig};
use skystream_pipeline::{
    Batch, Consumer, ConsumerError, Envelope, MemoryCursorSink, Pipeline, PipelineConfig,
};
use skystream_source::{Source, SourceContext, SourceEnd};
use tokio_util::sync::CancellationToken;

mod common;

use common::{corpus, Broker, PARTITIONS};

fn all_collections() -> Mapping {
    Mapping {
        collections: Collection::ALL.to_vec(),
        ..Mapping::default()
    }
}

fn expected(events: &[Event], mapping: &Mapping) -> Vec<CloudEvent> {
    events
        .iter()
        .flat_map(|e| cloudevent::from_event(e, mapping))
        .collect()
}

/// A message as read back.
#[derive(Debug)]
struct Read {
    partition: i32,
    key: String,
    id: String,
    ty: String,
    data: serde_json::Value,
}

/// Reads `count` messages from every partition of `topic`, from the beginning (manual
/// assignment, no group), in partition-then-offset order; fails after 30 s.
/// Exactly `count` messages of `topic`, from the start of every partition, each through
/// `read`; fails if more arrive.
fn read_messages<T>(
    bootstrap: &str,
    topic: &str,
    count: usize,
    read: impl Fn(&rdkafka::message::BorrowedMessage<'_>) -> T,
) -> Vec<T> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "read {} of {count} messages from {topic}",
            out.len()
        );
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        out.push(read(&m.expect("message")));
    }
    // Nothing more arrives (no duplicates).
    let extra = consumer.poll(Duration::from_secs(1));
    assert!(extra.is_none(), "more messages than expected in {topic}");
    out
}

/// Our CloudEvents in `topic`, with their partition and key.
fn read_topic(bootstrap: &str, topic: &str, count: usize) -> Vec<Read> {
    read_messages(bootstrap, topic, count, |m| {
        let headers: Vec<(&str, &[u8])> = m
            .headers()
            .map(|h| h.iter().filter_map(|h| Some((h.key, h.value?))).collect())
            .unwrap_or_default();
        let got = cloudevent::read_message(&headers, m.payload()).expect("our CloudEvent");
        Read {
            partition: m.partition(),
            key: String::from_utf8(m.key().expect("key").to_vec()).expect("utf8"),
            id: got.id,
            ty: got.ty,
            data: got.data,
        }
    })
}

fn pipeline_config() -> PipelineConfig {
    PipelineConfig {
        batch_max: 32,
        save_interval: Duration::from_millis(50),
        retry_initial: Duration::from_millis(50),
        ..PipelineConfig::default()
    }
}

fn sink_config(bootstrap: &str, topic: &str, mode: ContentMode) -> SinkConfig {
    let mut c = SinkConfig::new(bootstrap, topic);
    c.mode = mode;
    c.mapping = all_collections();
    c.retry_initial = Duration::from_millis(100);
    c.retry_max = Duration::from_secs(1);
    c
}

/// Runs `events` through a pipeline whose only consumer is a Kafka sink. Returns the final
/// cursor.
async fn publish(cfg: SinkConfig, events: &[Event]) -> Option<u64> {
    let sink = KafkaSink::new(cfg).expect("producer");
    let (input, handle) = Pipeline::start(
        pipeline_config(),
        "test",
        None,
        vec![Box::new(sink)],
        Arc::new(MemoryCursorSink::new()),
    );
    input
        .send_many(events.iter().cloned().map(Envelope::new).collect())
        .await
        .expect("send");
    drop(input);
    handle.finish().await.cursor
}

fn check_against(read: &[Read], want: &[CloudEvent]) {
    assert_eq!(read.len(), want.len());
    let by_id: HashMap<&str, &CloudEvent> = want.iter().map(|c| (c.id.as_str(), c)).collect();
    assert_eq!(by_id.len(), want.len(), "ids are unique");
    let mut seen = HashSet::new();
    for r in read {
        let w = by_id
            .get(r.id.as_str())
            .unwrap_or_else(|| panic!("unexpected id {}", r.id));
        assert!(seen.insert(r.id.clone()), "duplicate {}", r.id);
        assert_eq!(r.ty, w.ty, "{}", r.id);
        assert_eq!(r.key, w.key, "key = author DID");
        let want_data: serde_json::Value = serde_json::from_str(&w.data).expect("json");
        assert_eq!(r.data, want_data, "{}", r.id);
    }
    // Per-DID order: one author's events are on one partition, in firehose order.
    let mut got_order: BTreeMap<&str, Vec<(&str, i32)>> = BTreeMap::new();
    for r in read {
        got_order
            .entry(r.key.as_str())
            .or_default()
            .push((r.id.as_str(), r.partition));
    }
    let mut want_order: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for w in want {
        want_order
            .entry(w.key.as_str())
            .or_default()
            .push(w.id.as_str());
    }
    for (did, ids) in &got_order {
        let parts: HashSet<i32> = ids.iter().map(|(_, p)| *p).collect();
        assert_eq!(parts.len(), 1, "{did} is on one partition");
        let ids: Vec<&str> = ids.iter().map(|(i, _)| *i).collect();
        assert_eq!(&ids, &want_order[did], "{did}'s order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu (SKYSTREAM_TANSU; bash .ci/kafka installs it)"]
async fn corpus_round_trip_in_both_modes_and_replays_give_the_same_ids() {
    let broker = Broker::start();
    let events = corpus();
    let want = expected(&events, &all_collections());
    let types: HashSet<&str> = want.iter().map(|c| c.ty.as_str()).collect();
    assert!(want.len() >= 140, "{} CloudEvents", want.len());
    for ty in [
        "Bluesky.Feed.Post",
        "Bluesky.Feed.Like",
        "Bluesky.Identity",
        "Bluesky.Account",
    ] {
        assert!(types.contains(ty), "the corpus yields {ty}: {types:?}");
    }
    let last = events.last().map(|e| e.cursor);
    let n = want.len();
    for (mode, name) in [
        (ContentMode::Structured, "structured"),
        (ContentMode::Binary, "binary"),
    ] {
        let topic = format!("corpus-{name}");
        broker.create_topic(&topic);
        let cursor = publish(sink_config(&broker.bootstrap(), &topic, mode), &events).await;
        assert_eq!(cursor, last, "the cursor reaches the last event");
        let bootstrap = broker.bootstrap();
        let read = tokio::task::spawn_blocking(move || read_topic(&bootstrap, &topic, n))
            .await
            .expect("read");
        check_against(&read, &want);

        // A replay (a restart from an older cursor) produces exactly the same ids.
        let topic = format!("replay-{name}");
        broker.create_topic(&topic);
        publish(sink_config(&broker.bootstrap(), &topic, mode), &events).await;
        let bootstrap = broker.bootstrap();
        let replay = tokio::task::spawn_blocking(move || read_topic(&bootstrap, &topic, n))
            .await
            .expect("read");
        let a: Vec<(i32, &str)> = read.iter().map(|r| (r.partition, r.id.as_str())).collect();
        let mut a = a;
        let mut b: Vec<(i32, &str)> = replay
            .iter()
            .map(|r| (r.partition, r.id.as_str()))
            .collect();
        a.sort_by_key(|(p, _)| *p);
        b.sort_by_key(|(p, _)| *p);
        assert_eq!(a, b, "same ids, same partitions, same order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu (SKYSTREAM_TANSU; bash .ci/kafka installs it)"]
async fn connect_reads_the_topic_or_says_why_not() {
    let broker = Broker::start();
    broker.create_topic("connect");
    let sink = KafkaSink::new(sink_config(
        &broker.bootstrap(),
        "connect",
        ContentMode::Structured,
    ))
    .expect("sink");
    let partitions = sink
        .connect(Duration::from_secs(10))
        .await
        .expect("connect");
    assert_eq!(partitions, common::PARTITIONS as usize);
    // Nothing listens on port 1: the error comes within the timeout, not a hang.
    let nowhere = KafkaSink::new(sink_config(
        "127.0.0.1:1",
        "connect",
        ContentMode::Structured,
    ))
    .expect("sink");
    let started = Instant::now();
    assert!(nowhere.connect(Duration::from_secs(2)).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu (SKYSTREAM_TANSU; bash .ci/kafka installs it)"]
async fn a_frozen_broker_stalls_the_cursor_and_loses_nothing() {
    let broker = Broker::start();
    let events = corpus();
    let want = expected(&events, &all_collections());
    broker.create_topic("outage");
    let sink = KafkaSink::new(sink_config(
        &broker.bootstrap(),
        "outage",
        ContentMode::Structured,
    ))
    .expect("producer");
    let cursors = MemoryCursorSink::new();
    let (input, handle) = Pipeline::start(
        // Small queues, so a stalled consumer holds the source back within a few dozen events.
        PipelineConfig {
            batch_max: 4,
            consumer_queue: 2,
            input_capacity: 16,
            ..pipeline_config()
        },
        "outage",
        None,
        vec![Box::new(sink)],
        Arc::new(cursors.clone()),
    );
    let mut committed = handle.committed();
    let feed = events.clone();
    let feeder = tokio::spawn(async move {
        for e in feed {
            input.send(Envelope::new(e)).await.expect("send");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    // Let some events through, then freeze the broker.
    tokio::time::timeout(Duration::from_secs(30), committed.wait_for(|c| c.is_some()))
        .await
        .expect("first delivery")
        .expect("watch");
    broker.signal("-STOP");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let frozen_at = *committed.borrow();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = *committed.borrow();
    let last = events.last().map(|e| e.cursor);
    assert!(
        !feeder.is_finished(),
        "backpressure: the source is held back while the broker is frozen"
    );
    assert_eq!(frozen_at, still, "no progress while the broker is frozen");
    assert!(
        still < last,
        "the cursor stayed behind undelivered events ({still:?} < {last:?})"
    );
    assert!(cursors.last("outage") <= still, "the saved cursor too");
    broker.signal("-CONT");
    feeder.await.expect("feeder");
    let summary = tokio::time::timeout(Duration::from_secs(90), handle.finish())
        .await
        .expect("drains after the broker thaws");
    assert_eq!(summary.cursor, last);
    let bootstrap = broker.bootstrap();
    let n = want.len();
    let read = tokio::task::spawn_blocking(move || read_topic(&bootstrap, "outage", n))
        .await
        .expect("read");
    // Retries after an outage may duplicate (at-least-once); the ids make that harmless. Here
    // every message must be present and none foreign.
    let got: HashSet<&str> = read.iter().map(|r| r.id.as_str()).collect();
    let want_ids: HashSet<&str> = want.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(got, want_ids, "nothing lost");
}

/// Collects every event it is handed.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Event>>>);

#[async_trait]
impl Consumer for Collect {
    fn name(&self) -> &str {
        "collect"
    }
    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        let mut v = self.0.lock().map_err(|_| "poisoned")?;
        v.extend(batch.items.iter().map(|e| e.event.clone()));
        Ok(())
    }
}

fn group_source(broker: &Broker, topic: &str, group: &str) -> KafkaSource {
    KafkaSource::new(KafkaSourceConfig {
        brokers: broker.bootstrap(),
        topic: topic.into(),
        group: group.into(),
        // tansu's group coordinator needs short timeouts to admit members reliably.
        client: vec![
            ("session.timeout.ms".into(), "6000".into()),
            ("max.poll.interval.ms".into(), "8000".into()),
            ("heartbeat.interval.ms".into(), "1000".into()),
        ],
        backoff_max: Duration::from_secs(2),
    })
}

/// Runs a group source into a collecting pipeline until `until` events arrived (or `wait`
/// passed), then shuts down. Returns the events.
async fn consume(mut source: KafkaSource, until: usize, wait: Duration) -> Vec<Event> {
    let collect = Collect::default();
    let (input, handle) = Pipeline::start(
        pipeline_config(),
        source.cursor_key(),
        None,
        vec![Box::new(collect.clone())],
        Arc::new(MemoryCursorSink::new()),
    );
    let shutdown = CancellationToken::new();
    let ctx = SourceContext {
        out: input,
        committed: handle.committed(),
        shutdown: shutdown.clone(),
    };
    let task = tokio::spawn(async move { source.run(None, ctx).await });
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if collect.0.lock().map(|v| v.len()).unwrap_or(0) >= until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    let end = task.await.expect("source");
    assert_eq!(end, SourceEnd::Shutdown);
    handle.finish().await;
    let v = collect.0.lock().expect("lock").clone();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu (SKYSTREAM_TANSU; bash .ci/kafka installs it)"]
async fn kafka_source_feeds_the_pipeline_and_commits_what_was_acknowledged() {
    let broker = Broker::start();
    let events = corpus();
    let mapping = all_collections();
    let want = expected(&events, &mapping);
    broker.create_topic("bus");
    publish(
        sink_config(&broker.bootstrap(), "bus", ContentMode::Binary),
        &events,
    )
    .await;

    let got = consume(
        group_source(&broker, "bus", "indexers"),
        want.len(),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        got.len(),
        want.len(),
        "every CloudEvent came back as an event"
    );
    // The events read back map to the same CloudEvents (their cursor is the source's own).
    let mut again: Vec<CloudEvent> = got
        .iter()
        .flat_map(|e| cloudevent::from_event(e, &mapping))
        .collect();
    let strip = |c: &mut CloudEvent| {
        let mut d: serde_json::Value = serde_json::from_str(&c.data).expect("json");
        d.as_object_mut().map(|o| o.remove("cursor"));
        c.data = d.to_string();
    };
    let mut want_sorted = want.clone();
    for c in again.iter_mut().chain(want_sorted.iter_mut()) {
        strip(c);
    }
    again.sort_by(|a, b| a.id.cmp(&b.id));
    want_sorted.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(again, want_sorted);
    // Cursors are the source's own sequence: strictly increasing.
    assert!(got.windows(2).all(|w| w[0].cursor < w[1].cursor));

    // The group committed every partition to its end: a second run reads nothing.
    let again = consume(
        group_source(&broker, "bus", "indexers"),
        1,
        Duration::from_secs(15),
    )
    .await;
    assert!(
        again.is_empty(),
        "resumed after the committed offsets, read {}",
        again.len()
    );

    // A new group starts from the beginning.
    let fresh = consume(
        group_source(&broker, "bus", "other"),
        want.len(),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(fresh.len(), want.len());
}

/// A post of 900 KB of control characters: each one is six bytes of JSON (`\u0001`), so its
/// CloudEvent is over 5 MB, five times what Kafka takes by default.
fn poison_post(events: &[Event]) -> Event {
    let mut e = events
        .iter()
        .find(|e| {
            matches!(&e.kind, skystream_event::EventKind::Commit(c)
                if c.ops.iter().any(|o| o.collection == "app.bsky.feed.post" && o.record.is_some()))
        })
        .expect("the corpus has a post")
        .clone();
    let skystream_event::EventKind::Commit(c) = &mut e.kind else {
        unreachable!()
    };
    c.ops
        .retain(|o| o.collection == "app.bsky.feed.post" && o.record.is_some());
    c.ops.truncate(1);
    c.ops[0].rkey = "3poisonpoison".into();
    let text: String = std::iter::repeat_n('\u{1}', 900_000).collect();
    c.ops[0].record = Some(
        skystream_data::json::from_json(&serde_json::json!({
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": "2026-01-01T00:00:00Z",
        }))
        .expect("record"),
    );
    e
}

/// Reads `count` raw messages of `topic` (every partition, from the beginning).
/// The JSON payloads in `topic` (the dead-letter records).
fn read_raw(bootstrap: &str, topic: &str, count: usize) -> Vec<serde_json::Value> {
    read_messages(bootstrap, topic, count, |m| {
        serde_json::from_slice(m.payload().expect("payload")).expect("JSON")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu (SKYSTREAM_TANSU; bash .ci/kafka installs it)"]
async fn a_message_too_large_goes_to_the_dead_letter_topic_and_the_stream_goes_on() {
    let broker = Broker::start();
    let mut events = corpus();
    let poison = poison_post(&events);
    let poison_ce = cloudevent::from_event(&poison, &all_collections()).remove(0);
    let want = expected(&events, &all_collections());
    // In the middle of the stream, with a cursor between its neighbours'.
    let mid = events.len() / 2;
    let mut poison = poison;
    poison.cursor = events[mid - 1].cursor;
    events.insert(mid, poison);
    for (topic, dlq) in [("poison", Some("poison-dead")), ("poison-skip", None)] {
        broker.create_topic(topic);
        let mut cfg = sink_config(&broker.bootstrap(), topic, ContentMode::Structured);
        if let Some(d) = dlq {
            broker.create_topic(d);
            cfg.dead_letter_topic = Some(d.to_owned());
        }
        let cursor = tokio::time::timeout(Duration::from_secs(60), publish(cfg, &events))
            .await
            .expect("the bridge does not stall on the oversized message");
        assert_eq!(
            cursor,
            events.last().map(|e| e.cursor),
            "the cursor moves past it"
        );
        let (bootstrap, t, n) = (broker.bootstrap(), topic.to_owned(), want.len());
        let read = tokio::task::spawn_blocking(move || read_topic(&bootstrap, &t, n))
            .await
            .expect("reader");
        check_against(&read, &want);
        if let Some(d) = dlq {
            let (bootstrap, d) = (broker.bootstrap(), d.to_owned());
            let letters = tokio::task::spawn_blocking(move || read_raw(&bootstrap, &d, 1))
                .await
                .expect("reader");
            let l = &letters[0];
            assert_eq!(l["reason"], "too_large");
            assert_eq!(l["topic"], topic);
            assert_eq!(l["id"], poison_ce.id.as_str());
            assert_eq!(l["subject"], poison_ce.subject.as_str());
            assert!(
                l["size"].as_u64().expect("size") > 5_000_000,
                "{}",
                l["size"]
            );
        }
    }
}
