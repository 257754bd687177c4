//! The Kafka sink: a pipeline [`Consumer`] that publishes each batch as CloudEvents and returns
//! only when the broker has acknowledged every message of it.
//!
//! The producer is idempotent with `acks=all`, so librdkafka's own retries neither duplicate
//! nor reorder within a partition. Failures are of two kinds ([`classify`]):
//! - **Transient** (the broker is down longer than `message.timeout.ms`, a leader moves, a
//!   queue is full): the failed messages are sent again, with backoff, until acknowledged;
//!   `handle` does not return meanwhile, so the pipeline's committed cursor stays behind the
//!   undelivered events and the source is slowed by the pipeline's bounded queues. A retry
//!   re-sends each partition from its first failed message on (acknowledged ones after it
//!   included), so a partition's log keeps the events' order: a create never lands after its
//!   delete.
//! - **Permanent** (too large for the topic, refused as invalid, not authorized for the
//!   topic): sending again cannot help, and retrying would stall the stream for good. The
//!   message goes to the dead-letter topic when one is set (a JSON record that says why, the
//!   event's cursor, id and subject, and the message itself when it fits), is counted in
//!   `skystream_kafka_dead_letters_total{reason}` and logged with its cursor; the cursor moves
//!   on. A message over `max_message_bytes` is one of these before it reaches the producer.
//!
//! A restart resumes from the last batch the broker took in full.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::util::Timeout;
use skystream_pipeline::{Batch, Consumer, ConsumerError};
use tracing::{info, warn};

use crate::cloudevent::{self, ContentMode, KafkaMessage, Mapping};
use crate::sample::Sampler;

/// How the sink connects and what it writes.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// librdkafka settings (`bootstrap.servers`, SASL, and `--kafka-option`s), applied after
    /// the sink's defaults so they can override them.
    pub client: Vec<(String, String)>,
    /// The topic.
    pub topic: String,
    /// Structured or binary CloudEvents.
    pub mode: ContentMode,
    /// Which events, and the `source` attribute.
    pub mapping: Mapping,
    /// Deterministic sampling.
    pub sampler: Sampler,
    /// First wait before sending failed messages again.
    pub retry_initial: Duration,
    /// Longest wait between attempts.
    pub retry_max: Duration,
    /// The largest message (key, value and headers) sent; a larger one is dead-lettered.
    /// Kafka's and librdkafka's default is 1,000,000 bytes; Event Hubs takes 1 MiB.
    pub max_message_bytes: usize,
    /// Where permanently failing messages go (`None`: they are skipped, counted and logged).
    pub dead_letter_topic: Option<String>,
}

/// Kafka's default largest message, and so the sink's.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_000_000;

/// Room for the record batch and record headers around the largest message, so librdkafka's
/// own limit (`message.max.bytes`) never refuses what `max_message_bytes` lets through.
const BATCH_OVERHEAD: usize = 1024;

impl SinkConfig {
    /// Defaults for `topic` on `bootstrap_servers`.
    pub fn new(bootstrap_servers: &str, topic: &str) -> Self {
        SinkConfig {
            client: vec![("bootstrap.servers".into(), bootstrap_servers.into())],
            topic: topic.into(),
            mode: ContentMode::Structured,
            mapping: Mapping::default(),
            sampler: Sampler::new(1.0),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            dead_letter_topic: None,
        }
    }
}

/// What a delivery error means for the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Sending again may succeed: retry (and stall rather than lose).
    Transient,
    /// Sending again cannot succeed; the reason is a metric label.
    Permanent(&'static str),
}

/// Sorts a delivery error into [`Delivery::Transient`] or [`Delivery::Permanent`]. Only errors
/// about the message itself (or this topic's authorization) are permanent: anything about the
/// connection, the cluster or timing is transient, since it passes.
pub fn classify(error: &KafkaError) -> Delivery {
    use RDKafkaErrorCode as C;
    match error.rdkafka_error_code() {
        Some(C::MessageSizeTooLarge | C::MessageBatchTooLarge | C::InvalidMessageSize) => {
            Delivery::Permanent("too_large")
        }
        Some(
            C::InvalidMessage
            | C::InvalidRecord
            | C::InvalidTimestamp
            | C::UnsupportedForMessageFormat
            | C::PolicyViolation
            | C::InvalidTopic,
        ) => Delivery::Permanent("invalid"),
        Some(C::TopicAuthorizationFailed) => Delivery::Permanent("unauthorized"),
        _ => Delivery::Transient,
    }
}

/// A message's size as the broker counts it, near enough: key, value and headers.
fn message_bytes(msg: &KafkaMessage) -> usize {
    msg.key.len()
        + msg.payload.len()
        + msg
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

/// After a round of deliveries, which messages to send again: every message of a partition
/// from its first transient failure on (acknowledged ones included, so the partition's log
/// keeps their order), and, when a failed message's partition is not known, every message from
/// it on. `partition[i]` is where message `i` went (known once acknowledged); `failed` lists
/// the transient failures with their partition when known. Returns indices in order.
fn resend_plan(
    sent: &[usize],
    partition: &[Option<i32>],
    failed: &[(usize, Option<i32>)],
) -> Vec<usize> {
    let mut first: std::collections::HashMap<i32, usize> = std::collections::HashMap::new();
    let mut unknown = usize::MAX;
    for &(i, p) in failed {
        match p {
            Some(p) => {
                let f = first.entry(p).or_insert(i);
                *f = (*f).min(i);
            }
            None => unknown = unknown.min(i),
        }
    }
    let failed_set: std::collections::HashSet<usize> = failed.iter().map(|(i, _)| *i).collect();
    let mut out: Vec<usize> = sent
        .iter()
        .copied()
        .filter(|&i| {
            failed_set.contains(&i)
                || i >= unknown
                || partition[i].is_some_and(|p| first.get(&p).is_some_and(|&f| i >= f))
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The producer settings: idempotence (which implies `acks=all` and ordered retries), a
/// short linger so batches form under load, and a delivery timeout short enough that an outage
/// shows in the logs within half a minute (the sink then sends again; nothing is dropped).
pub fn producer_config(client: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("client.id", "skystream")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .set("queue.buffering.max.messages", "200000")
        // Statistics are how `KafkaSink::connect` learns that the producer has its id.
        .set("statistics.interval.ms", "100");
    for (k, v) in client {
        c.set(k, v);
    }
    c
}

/// The producer's context: it keeps the idempotent producer's id from librdkafka's
/// statistics (-1 until the broker has assigned one), which no other API exposes.
#[derive(Clone)]
struct SinkContext {
    producer_id: Arc<AtomicI64>,
}

impl Default for SinkContext {
    fn default() -> Self {
        SinkContext {
            producer_id: Arc::new(AtomicI64::new(-1)),
        }
    }
}

impl ClientContext for SinkContext {
    fn stats(&self, statistics: Statistics) {
        if let Some(eos) = statistics.eos {
            self.producer_id.store(eos.producer_id, Ordering::Release);
        }
    }
}

/// Publishes batches to Kafka.
pub struct KafkaSink {
    cfg: SinkConfig,
    context: SinkContext,
    producer: FutureProducer<SinkContext>,
    produced: u64,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.cfg.topic)
            .field("produced", &self.produced)
            .finish_non_exhaustive()
    }
}

/// How one message's delivery ended.
enum Outcome {
    /// Acknowledged, on this partition.
    Acked(i32),
    /// Failed, on this partition when known.
    Failed(Option<i32>, KafkaError),
}

/// A message with what the logs and the dead-letter record say about it.
struct Outgoing {
    msg: KafkaMessage,
    id: String,
    ty: String,
    subject: String,
    cursor: u64,
}

impl KafkaSink {
    /// Creates the producer (it connects lazily; a wrong setting fails here).
    pub fn new(mut cfg: SinkConfig) -> Result<Self, KafkaError> {
        // librdkafka's own limit follows ours unless a client option sets it.
        if !cfg.client.iter().any(|(k, _)| k == "message.max.bytes") {
            let limit = cfg.max_message_bytes.saturating_add(BATCH_OVERHEAD);
            cfg.client
                .insert(0, ("message.max.bytes".into(), limit.to_string()));
        }
        let context = SinkContext::default();
        let producer = producer_config(&cfg.client).create_with_context(context.clone())?;
        Ok(KafkaSink {
            cfg,
            context,
            producer,
            produced: 0,
        })
    }

    /// Connects before the first batch and returns the topic's partition count: the
    /// topic's metadata is fetched now, so a wrong address, topic or credentials fail at
    /// start-up with the broker's reason rather than as delivery timeouts half a minute into
    /// the stream; then it waits (within `timeout`) for the idempotent producer's id, which
    /// librdkafka asks for again only every 500 ms when no broker was connected at the first
    /// try, so the first batch does not wait for either. The id is read from librdkafka's
    /// statistics, so a `statistics.interval.ms=0` passed as a client option makes this time
    /// out (the sink still works).
    pub async fn connect(&self, timeout: Duration) -> Result<usize, KafkaError> {
        let deadline = Instant::now() + timeout;
        let partitions = self.fetch_topic(&self.cfg.topic, timeout).await?;
        if let Some(dlq) = &self.cfg.dead_letter_topic {
            self.fetch_topic(dlq, timeout).await?;
        }
        while self.context.producer_id.load(Ordering::Acquire) < 0 {
            if Instant::now() >= deadline {
                return Err(KafkaError::MetadataFetch(
                    RDKafkaErrorCode::OperationTimedOut,
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(partitions)
    }

    /// The topic's partition count, from its metadata.
    async fn fetch_topic(&self, name: &str, timeout: Duration) -> Result<usize, KafkaError> {
        let producer = self.producer.clone();
        let topic = name.to_owned();
        let metadata = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), Timeout::After(timeout))
        })
        .await
        .map_err(|_| KafkaError::Canceled)??;
        let topic = metadata.topics().iter().find(|t| t.name() == name);
        match topic {
            Some(t) if t.error().is_none() => Ok(t.partitions().len()),
            Some(t) => Err(KafkaError::MetadataFetch(
                t.error()
                    .map_or(RDKafkaErrorCode::Unknown, RDKafkaErrorCode::from),
            )),
            None => Err(KafkaError::MetadataFetch(
                RDKafkaErrorCode::UnknownTopicOrPartition,
            )),
        }
    }

    /// Messages acknowledged so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// The messages for a batch, in order, after the collection filter and sampling.
    pub fn messages(&self, batch: &Batch) -> Vec<KafkaMessage> {
        self.outgoing(batch).into_iter().map(|o| o.msg).collect()
    }

    fn outgoing(&self, batch: &Batch) -> Vec<Outgoing> {
        let mut out = Vec::with_capacity(batch.items.len());
        for env in &batch.items {
            for ce in cloudevent::from_event(&env.event, &self.cfg.mapping) {
                if self.cfg.sampler.keep(&ce.id) {
                    out.push(Outgoing {
                        msg: ce.to_message(self.cfg.mode),
                        cursor: env.event.cursor,
                        id: ce.id,
                        ty: ce.ty,
                        subject: ce.subject,
                    });
                } else {
                    metrics::counter!("skystream_kafka_sampled_out_total").increment(1);
                }
            }
        }
        out
    }

    /// Sends `msgs[i]` to `topic` for each `i` in `which` and waits for every delivery report.
    async fn deliver(
        &self,
        topic: &str,
        msgs: &[&KafkaMessage],
        which: &[usize],
    ) -> Vec<(usize, Outcome)> {
        let mut done = Vec::with_capacity(which.len());
        let mut inflight: std::collections::VecDeque<(usize, DeliveryFuture)> =
            std::collections::VecDeque::with_capacity(which.len());
        for &index in which {
            let msg = msgs[index];
            let mut headers = OwnedHeaders::new_with_capacity(msg.headers.len());
            for (k, v) in &msg.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            let mut record = FutureRecord::to(topic)
                .key(msg.key.as_bytes())
                .payload(msg.payload.as_bytes())
                .headers(headers);
            loop {
                match self.producer.send_result(record) {
                    Ok(fut) => {
                        inflight.push_back((index, fut));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), rec)) => {
                        // The local queue is full: wait for the oldest message to be delivered
                        // (that frees room) and try again.
                        record = rec;
                        match inflight.pop_front() {
                            Some((i, fut)) => done.push((i, outcome(fut.await))),
                            None => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                    Err((e, _)) => {
                        done.push((index, Outcome::Failed(None, e)));
                        break;
                    }
                }
            }
        }
        for (i, fut) in inflight {
            done.push((i, outcome(fut.await)));
        }
        done.sort_by_key(|(i, _)| *i);
        done
    }

    /// Sends `msgs` to `topic` until each is acknowledged or has failed permanently; returns
    /// the permanent failures. Transient failures are sent again with backoff, each partition
    /// from its first failed message on.
    async fn deliver_all(
        &mut self,
        topic: &str,
        batch: u64,
        msgs: &[&KafkaMessage],
        mut which: Vec<usize>,
    ) -> Result<Vec<(usize, &'static str, String)>, ConsumerError> {
        let mut partition: Vec<Option<i32>> = vec![None; msgs.len()];
        let mut permanent = Vec::new();
        let mut backoff = self.cfg.retry_initial;
        loop {
            let outcomes = self.deliver(topic, msgs, &which).await;
            let mut transient = Vec::new();
            let mut first_error = None;
            let mut delivered = 0u64;
            for (i, o) in outcomes {
                match o {
                    Outcome::Acked(p) => {
                        partition[i] = Some(p);
                        delivered += 1;
                    }
                    Outcome::Failed(p, e) => match classify(&e) {
                        Delivery::Permanent(reason) => permanent.push((i, reason, e.to_string())),
                        Delivery::Transient => {
                            if first_error.is_none() {
                                first_error = Some(e.to_string());
                            }
                            transient.push((i, p.or(partition[i])));
                        }
                    },
                }
            }
            if topic == self.cfg.topic {
                self.produced += delivered;
                metrics::counter!("skystream_kafka_produced_total").increment(delivered);
            }
            let Some(first_error) = first_error else {
                permanent.sort_by_key(|(i, ..)| *i);
                return Ok(permanent);
            };
            metrics::counter!("skystream_kafka_delivery_failures_total")
                .increment(transient.len() as u64);
            let failed: std::collections::HashSet<usize> =
                permanent.iter().map(|(i, ..)| *i).collect();
            let sent: Vec<usize> = which
                .iter()
                .copied()
                .filter(|i| !failed.contains(i))
                .collect();
            which = resend_plan(&sent, &partition, &transient);
            warn!(batch, topic, failed = transient.len(), resending = which.len(), error = %first_error, retry_in_ms = backoff.as_millis() as u64,
                "Kafka did not acknowledge every message; sending each partition again from its first failed message (the cursor waits)");
            if let Some((code, reason)) = self.producer.client().fatal_error() {
                // A fatal error (e.g. the idempotent producer's sequence was lost) makes this
                // producer unusable: start a fresh one and send the failed messages with it.
                warn!(?code, %reason, "the Kafka producer hit a fatal error; creating a new one");
                self.context = SinkContext::default();
                self.producer =
                    producer_config(&self.cfg.client).create_with_context(self.context.clone())?;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.cfg.retry_max);
        }
    }

    /// The dead-letter record for `o`: a JSON object that says why, where it was going, the
    /// event's cursor, id, type and subject, and the message itself when it fits.
    fn dead_letter(&self, o: &Outgoing, reason: &str, error: &str) -> KafkaMessage {
        let size = message_bytes(&o.msg);
        let keep = size + 1024 <= self.cfg.max_message_bytes;
        let payload = serde_json::json!({
            "reason": reason,
            "error": error,
            "topic": self.cfg.topic,
            "cursor": o.cursor,
            "id": o.id,
            "type": o.ty,
            "subject": o.subject,
            "key": o.msg.key,
            "size": size,
            "message": keep.then_some(&o.msg.payload),
            "headers": keep.then(|| o.msg.headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<std::collections::BTreeMap<_, _>>()),
        })
        .to_string();
        KafkaMessage {
            key: o.msg.key.clone(),
            headers: vec![
                ("content-type", "application/json".to_owned()),
                ("skystream-dead-letter-reason", reason.to_owned()),
            ],
            payload,
        }
    }
}

/// A delivery report as an [`Outcome`]. (The error type of a dropped report is rdkafka's
/// oneshot `Canceled`; generic here so it need not be named.)
fn outcome<E>(report: Result<OwnedDeliveryResult, E>) -> Outcome {
    match report {
        Ok(Ok(delivery)) => Outcome::Acked(delivery.partition),
        Ok(Err((e, msg))) => {
            use rdkafka::Message as _;
            let p = msg.partition();
            Outcome::Failed((p >= 0).then_some(p), e)
        }
        Err(_) => Outcome::Failed(None, KafkaError::Canceled),
    }
}

#[async_trait]
impl Consumer for KafkaSink {
    fn name(&self) -> &str {
        "kafka"
    }

    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        let out = self.outgoing(batch);
        let mut too_large = Vec::new();
        let mut which = Vec::with_capacity(out.len());
        for (i, o) in out.iter().enumerate() {
            let size = message_bytes(&o.msg);
            if size > self.cfg.max_message_bytes {
                too_large.push((
                    i,
                    "too_large",
                    format!(
                        "the message is {size} bytes, over the {} allowed (--max-message-bytes)",
                        self.cfg.max_message_bytes
                    ),
                ));
            } else {
                which.push(i);
            }
        }
        let msgs: Vec<&KafkaMessage> = out.iter().map(|o| &o.msg).collect();
        let topic = self.cfg.topic.clone();
        let mut dead = self.deliver_all(&topic, batch.id, &msgs, which).await?;
        dead.extend(too_large);
        if dead.is_empty() {
            return Ok(());
        }
        dead.sort_by_key(|(i, ..)| *i);
        let letters: Vec<KafkaMessage> = dead
            .iter()
            .map(|(i, reason, error)| self.dead_letter(&out[*i], reason, error))
            .collect();
        let mut lost = std::collections::HashSet::new();
        if let Some(dlq) = self.cfg.dead_letter_topic.clone() {
            let refs: Vec<&KafkaMessage> = letters.iter().collect();
            for (j, reason, error) in self
                .deliver_all(&dlq, batch.id, &refs, (0..refs.len()).collect())
                .await?
            {
                warn!(cursor = out[dead[j].0].cursor, id = %out[dead[j].0].id, reason, error = %error,
                    "the dead-letter topic refused the record too; skipped");
                lost.insert(j);
            }
        }
        for (j, (i, reason, error)) in dead.iter().enumerate() {
            let o = &out[*i];
            metrics::counter!("skystream_kafka_dead_letters_total", "reason" => *reason)
                .increment(1);
            let to = match &self.cfg.dead_letter_topic {
                Some(t) if !lost.contains(&j) => t.as_str(),
                _ => "nowhere (skipped)",
            };
            warn!(cursor = o.cursor, id = %o.id, subject = %o.subject, reason = *reason, error = %error, dead_letter = to,
                "a message can never be delivered to its topic; the stream goes on without it");
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), ConsumerError> {
        // Every batch handed in was already acknowledged; this only drains bookkeeping.
        self.producer
            .flush(Timeout::After(Duration::from_secs(5)))?;
        info!(messages = self.produced, topic = %self.cfg.topic, "Kafka sink closed");
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_about_the_message_or_the_topics_rights_are_permanent() {
        use RDKafkaErrorCode as C;
        let p = |c| classify(&KafkaError::MessageProduction(c));
        assert_eq!(p(C::MessageSizeTooLarge), Delivery::Permanent("too_large"));
        assert_eq!(p(C::MessageBatchTooLarge), Delivery::Permanent("too_large"));
        assert_eq!(p(C::InvalidRecord), Delivery::Permanent("invalid"));
        assert_eq!(p(C::InvalidMessage), Delivery::Permanent("invalid"));
        assert_eq!(
            p(C::TopicAuthorizationFailed),
            Delivery::Permanent("unauthorized")
        );
        for transient in [
            C::MessageTimedOut,
            C::QueueFull,
            C::BrokerTransportFailure,
            C::NotLeaderForPartition,
            C::NotEnoughReplicas,
            C::RequestTimedOut,
            C::UnknownTopicOrPartition,
            C::ClusterAuthorizationFailed,
            C::OutOfOrderSequenceNumber,
        ] {
            assert_eq!(p(transient), Delivery::Transient, "{transient:?}");
        }
        assert_eq!(classify(&KafkaError::Canceled), Delivery::Transient);
    }

    #[test]
    fn a_retry_resends_each_partition_from_its_first_failure() {
        // Messages 0..8; partitions as acknowledged: 0,1,0,1,0,1,0,1 (3 and 5 failed).
        let partition = vec![
            Some(0),
            Some(1),
            Some(0),
            None,
            Some(0),
            None,
            Some(0),
            Some(1),
        ];
        let sent: Vec<usize> = (0..8).collect();
        // 3 and 5 failed on partition 1: partition 1 from 3 on (3, 5, 7); partition 0 kept.
        assert_eq!(
            resend_plan(&sent, &partition, &[(3, Some(1)), (5, Some(1))]),
            vec![3, 5, 7]
        );
        // A failure on partition 0 at 2: 2, 4, 6 (acknowledged after it) go again too.
        let partition = vec![Some(0), Some(1), None, Some(1), Some(0), Some(1), Some(0)];
        assert_eq!(
            resend_plan(&(0..7).collect::<Vec<_>>(), &partition, &[(2, Some(0))]),
            vec![2, 4, 6]
        );
        // A failure whose partition is unknown: everything from it on.
        assert_eq!(
            resend_plan(&(0..7).collect::<Vec<_>>(), &partition, &[(4, None)]),
            vec![4, 5, 6]
        );
        // Nothing failed: nothing to resend.
        assert!(resend_plan(&[0, 1], &[Some(0), Some(1)], &[]).is_empty());
    }

    #[test]
    fn an_oversized_message_becomes_a_small_dead_letter_that_names_it() {
        let mut cfg = SinkConfig::new("127.0.0.1:1", "events");
        cfg.max_message_bytes = 10_000;
        cfg.dead_letter_topic = Some("events-dead".into());
        let sink = KafkaSink::new(cfg).unwrap();
        let big = Outgoing {
            msg: KafkaMessage {
                key: "did:plc:a".into(),
                headers: vec![("content-type", "application/cloudevents+json".into())],
                payload: "x".repeat(50_000),
            },
            id: "at://did:plc:a/app.bsky.feed.post/1#rev".into(),
            ty: "Bluesky.Feed.Post".into(),
            subject: "at://did:plc:a/app.bsky.feed.post/1".into(),
            cursor: 42,
        };
        assert!(message_bytes(&big.msg) > 10_000);
        let letter = sink.dead_letter(&big, "too_large", "over the limit");
        assert!(message_bytes(&letter) < 10_000);
        let v: serde_json::Value = serde_json::from_str(&letter.payload).unwrap();
        assert_eq!(v["reason"], "too_large");
        assert_eq!(v["cursor"], 42);
        assert_eq!(v["subject"], "at://did:plc:a/app.bsky.feed.post/1");
        assert_eq!(v["topic"], "events");
        assert_eq!(v["size"], message_bytes(&big.msg));
        assert!(v["message"].is_null());
        // One that fits carries the message itself.
        let small = Outgoing {
            msg: KafkaMessage {
                payload: "{}".into(),
                ..big.msg.clone()
            },
            ..big
        };
        let v: serde_json::Value =
            serde_json::from_str(&sink.dead_letter(&small, "invalid", "no").payload).unwrap();
        assert_eq!(v["message"], "{}");
        // librdkafka's own limit follows the sink's.
        assert!(sink
            .cfg
            .client
            .contains(&("message.max.bytes".into(), "11024".into())));
    }
}
